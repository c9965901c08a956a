"""The check report: finding kinds with their default severities, findings with stable ids, the verdict.

The report is what every output format renders, so it carries everything they need (labels, the
baseline's file and the place of each baseline rule in it) and nothing they would have to recompute.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from sgadvisor.rules import Rule, RuleKey


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return {"low": 1, "medium": 2, "high": 3}[self.value]


class FindingKind(StrEnum):
    """The six kinds of DESIGN §3 (``check``), in order of specificity (most specific first)."""

    RULE_BROADER = "rule-broader-than-baseline"
    RULE_NOT_IN_BASELINE = "rule-not-in-baseline"
    GROUP_NOT_IN_BASELINE = "group-not-in-baseline"
    FLOW_NOT_IN_BASELINE = "flow-not-in-baseline"
    BASELINE_RULE_MISSING = "baseline-rule-missing"
    BASELINE_RULE_UNUSED = "baseline-rule-unused"


@dataclass(frozen=True)
class KindInfo:
    severity: Severity
    title: str
    help: str


KINDS: dict[FindingKind, KindInfo] = {
    FindingKind.RULE_NOT_IN_BASELINE: KindInfo(
        Severity.HIGH,
        "Current rule not in the baseline",
        "An egress rule in place that the approved baseline does not contain (matched by the normalised "
        "rule key, never by sgr- id): added out of band, or a baseline that was not updated.",
    ),
    FindingKind.RULE_BROADER: KindInfo(
        Severity.HIGH,
        "Rule broader than the baseline rule it replaces",
        "A baseline rule is gone and a current rule permits everything it permitted and more (ports, "
        "addresses or protocols), evaluated on the current snapshot.",
    ),
    FindingKind.GROUP_NOT_IN_BASELINE: KindInfo(
        Severity.MEDIUM,
        "Group in scope that the baseline does not know",
        "A security group in the checked scope has no entry in the baseline: its rules were never "
        "reviewed. Recommend for it and add it to the baseline, or narrow the scope.",
    ),
    FindingKind.FLOW_NOT_IN_BASELINE: KindInfo(
        Severity.MEDIUM,
        "Flow permitted by the current rules but not by the baseline",
        "Traffic the ENI initiated in the window (the flows of DESIGN §6) that the current rules permit "
        "and the baseline would not: a new dependency, or an attack path in use.",
    ),
    FindingKind.BASELINE_RULE_MISSING: KindInfo(
        Severity.LOW,
        "Baseline rule missing from the current state",
        "An approved rule is not in place: traffic that needs it may be blocked.",
    ),
    FindingKind.BASELINE_RULE_UNUSED: KindInfo(
        Severity.LOW,
        "Baseline rule no flow used",
        "No flow used this approved rule over a window whose coverage is ok: a candidate for removal "
        "(pin it in the config file when rare traffic needs it).",
    ),
}


def parse_severity_overrides(values: list[str]) -> dict[FindingKind, Severity]:
    """``KIND=LEVEL`` strings (``--severity``, or ``severity = [...]`` in the config's [check] table)."""
    from sgadvisor.errors import UsageError

    overrides: dict[FindingKind, Severity] = {}
    kinds = ", ".join(kind.value for kind in FindingKind)
    for value in values:
        name, sep, level = value.partition("=")
        try:
            kind = FindingKind(name.strip())
        except ValueError:
            raise UsageError(f"--severity {value!r}: unknown finding kind", hint=f"kinds: {kinds}") from None
        try:
            overrides[kind] = Severity(level.strip().lower())
        except ValueError:
            raise UsageError(
                f"--severity {value!r}: use KIND=low|medium|high"
                if sep
                else f"--severity {value!r}: no level",
                hint=f"e.g. --severity {FindingKind.BASELINE_RULE_UNUSED.value}=medium",
            ) from None
    return overrides


def rule_fields(key: RuleKey) -> list[object]:
    return [key.ip_protocol, key.from_port, key.to_port, key.kind.value, key.value]


def finding_id(kind: FindingKind, groups: list[str], key: RuleKey | None) -> str:
    """Stable across runs and re-created rules: sha256 of the kind, the sorted group ids and the
    normalised rule (never the sgr- id), as compact JSON; the first 16 hex digits."""
    payload = json.dumps(
        [kind.value, sorted(groups), rule_fields(key) if key is not None else None], separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Suppression(_Model):
    """An ``[[allow]]`` table that suppressed a finding."""

    reason: str
    expires: date | None = None


class Finding(_Model):
    id: str
    kind: FindingKind
    severity: Severity
    groups: list[str]
    rule: Rule | None = None
    message: str
    details: list[str] = []
    baseline_source: str | None = None  # where the baseline rule is written (resource address, JSON path)
    baseline_line: int | None = None  # its line in the baseline file (or the group's), when known
    suppressed: Suppression | None = None


class GroupResult(_Model):
    """One security group that was checked (one JUnit testcase)."""

    group_id: str
    label: str
    vpc_id: str | None = None
    exists: bool = True  # False: known to the baseline, absent from the inventory
    in_baseline: bool
    coverage: str | None = None  # ok | partial | none; None with --no-flows
    current_rules: int
    baseline_rules: int


class BaselineInfo(_Model):
    path: str
    format: str  # recommendation | terraform | terraform-json
    groups: int
    rules: int


class CheckReport(_Model):
    baseline: BaselineInfo
    window: tuple[str, str] | None = None  # ISO 8601 of the flows' window; None with --no-flows
    flows_checked: bool
    flows: int = 0
    fail_on: Severity
    severities: dict[FindingKind, Severity] = {}  # the effective severity of every kind
    groups: list[GroupResult]
    findings: list[Finding]
    warnings: list[str] = []

    def active(self) -> list[Finding]:
        return [f for f in self.findings if f.suppressed is None]

    def failing(self) -> list[Finding]:
        """The unsuppressed findings at or above ``--fail-on``: what makes the exit code 1."""
        return [f for f in self.active() if f.severity.rank >= self.fail_on.rank]

    @property
    def exit_code(self) -> int:
        return 1 if self.failing() else 0

    def for_group(self, group_id: str) -> list[Finding]:
        return [f for f in self.findings if group_id in f.groups]
