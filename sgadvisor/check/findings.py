"""Drift findings: the current state (and *the flows*) against the approved baseline (DESIGN §3 ``check``).

Rules are matched by the normalised key of DESIGN §5, never by ``sgr-`` id (ids change when a rule is
re-created). Each rule gets one finding, of the most specific kind: a current rule that replaces a
baseline rule and permits more is *broader* (and the rule it replaced is not also *missing*); a baseline
rule that is missing is not also *unused*. Groups the baseline does not know (or that are out of scope)
have no baseline opinion: they count as permitting what they permit now, so their traffic is reported
once, as the group finding, not again as flows.

*Uncovered flows* are defined through the flows and the current rules — a flow counts only when the
current rules permit it — so applying a recommendation and checking against it with the same flows finds
nothing: the current rules are then the baseline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from sgadvisor.analysis.attribution import Attribution
from sgadvisor.analysis.flows import Flow
from sgadvisor.analysis.permits import Resolved, covered
from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.analysis.synthesis import RuleBook, host_key, key_order
from sgadvisor.check.baseline import Baseline, BaselineRule
from sgadvisor.check.exceptions import Exceptions, sort_exceptions
from sgadvisor.check.flows import select_flows
from sgadvisor.check.model import (
    KINDS,
    BaselineInfo,
    CheckReport,
    Finding,
    FindingKind,
    GroupResult,
    Severity,
    Suppression,
    finding_id,
)
from sgadvisor.config import RuleException
from sgadvisor.flowlogs.edges import FlowEdges, Window
from sgadvisor.inventory.model import Inventory, SgRule
from sgadvisor.models import CoverageOut
from sgadvisor.rules import DestKind, Rule, RuleKey, describe_rule
from sgadvisor.timeparse import format_instant

_PORTED = {6, 17}
_ANYWHERE = "0.0.0.0/0"
_KIND_ORDER = {kind: index for index, kind in enumerate(FindingKind)}
MAX_FLOWS_LISTED = 10


@dataclass(frozen=True)
class Policy:
    """How findings are judged: severities per kind, the build threshold, the config's exceptions."""

    fail_on: Severity = Severity.MEDIUM
    severities: Mapping[FindingKind, Severity] = field(default_factory=dict)
    allows: Sequence[RuleException] = ()
    pins: Sequence[RuleException] = ()
    today: date = field(default_factory=date.today)

    def severity(self, kind: FindingKind) -> Severity:
        return self.severities.get(kind, KINDS[kind].severity)


@dataclass
class _Raw:
    kind: FindingKind
    groups: list[str]
    key: RuleKey | None
    message: str
    details: list[str] = field(default_factory=list)
    description: str | None = None
    source: BaselineRule | None = None
    flows: list[Flow] = field(default_factory=list)


def check_drift(
    baseline: Baseline,
    inventory: Inventory,
    flows: FlowEdges | None,
    analysis: AnalysisOptions,
    policy: Policy,
) -> CheckReport:
    """All findings of the current state (and, unless ``flows`` is None, the flows) against ``baseline``."""
    exceptions = sort_exceptions(policy.allows, policy.pins, policy.today)
    state = _State.build(baseline, inventory, flows, analysis)
    raw: list[_Raw] = []
    for gid in state.in_scope:
        if gid not in baseline.groups:
            raw.append(_unknown_group(gid, state))
        else:
            raw.extend(_rule_findings(gid, state, exceptions))
    for gid in _vanished_groups(baseline, inventory, analysis):
        raw.extend(_vanished(gid, baseline))
    if flows is not None:
        raw.extend(_uncovered_flows(state))
    findings = [_finish(r, policy, exceptions, state) for r in _one_per_rule(raw)]
    findings.sort(key=_finding_order)
    warnings = list(exceptions.warnings) + _pin_warnings(baseline, exceptions)
    return CheckReport(
        baseline=BaselineInfo(
            path=str(baseline.path),
            format=baseline.format,
            groups=len(baseline.groups),
            rules=baseline.rule_count,
        ),
        window=state.window,
        flows_checked=flows is not None,
        flows=len(state.flows),
        fail_on=policy.fail_on,
        severities={kind: policy.severity(kind) for kind in FindingKind},
        groups=_group_results(state, baseline, inventory, analysis),
        findings=findings,
        warnings=sorted(set(warnings)),
    )


# ------------------------------------------------------------------------------------------ state


@dataclass
class _State:
    baseline: Baseline
    inventory: Inventory
    book: RuleBook
    in_scope: list[str]
    flows: list[Flow]
    coverage: dict[str, CoverageOut]
    window: tuple[str, str] | None
    scope_set: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls, baseline: Baseline, inventory: Inventory, flows: FlowEdges | None, analysis: AnalysisOptions
    ) -> _State:
        in_scope = analysis.scope.groups_in(inventory)
        coverage: dict[str, CoverageOut] = {}
        chosen: list[Flow] = []
        window = None
        book = RuleBook(inventory)
        if flows is not None:
            # Coverage exactly as recommend judges it (the same function, on the current state).
            current = build_recommendation(flows, inventory, analysis)
            coverage = {g.group_id: g.coverage for g in current.security_groups}
            window = (current.window.start, current.window.end)
            # Flows attributed to the groups their ENI had when they happened, as recommend does.
            span = flows.window or Window(0, 0)
            book = RuleBook(inventory, Attribution(inventory, span.start, span.end))
            chosen = select_flows(flows, inventory, analysis, book.attribution)
            # A destination gone with its groups is never a rule, so no baseline has one for it.
            chosen = [f for f in chosen if not book.attribution.vanished(f)]
        return cls(baseline, inventory, book, in_scope, chosen, coverage, window, frozenset(in_scope))

    def label(self, gid: str) -> str:
        sg = self.inventory.groups.get(gid)
        if sg is None:
            return gid
        name = sg.group_name
        if sg.name_tag and sg.name_tag != name:
            name += f" ({sg.name_tag})"
        return f"{gid} {name}"

    def current(self, gid: str) -> dict[RuleKey, SgRule]:
        out: dict[RuleKey, SgRule] = {}
        sg = self.inventory.groups.get(gid)
        for rule in sg.egress if sg is not None else ():
            out.setdefault(rule.key(), rule)
        return out

    def member_flows(self, gid: str) -> list[Flow]:
        """The flows of the group's members at the time they happened (former members included), as
        recommend attributes them."""
        return [f for f in self.flows if gid in self.book.attribution.source_groups(f)]

    def has_opinion(self, gid: str) -> bool:
        """Does the baseline speak for this group? (in scope and known to it)"""
        return gid in self.baseline.groups and gid in self.scope_set


def _unknown_group(gid: str, state: _State) -> _Raw:
    current = state.current(gid)
    members = len(state.inventory.members.get(gid, ()))
    return _Raw(
        FindingKind.GROUP_NOT_IN_BASELINE,
        [gid],
        None,
        f"{state.label(gid)}: the group is in scope but not in the baseline "
        f"({len(current)} egress rules, {members} member ENIs)",
        details=[describe_rule(Rule.from_key(key)) for key in sorted(current, key=key_order)][:20],
    )


# ------------------------------------------------------------------------------------------ rules


def _rule_findings(gid: str, state: _State, exceptions: Exceptions) -> list[_Raw]:
    current = state.current(gid)
    approved = state.baseline.rules_by_key(gid)
    extra = [k for k in sorted(current, key=key_order) if k not in approved]
    missing = [k for k in sorted(approved, key=key_order) if k not in current]
    members_flows = state.member_flows(gid)
    out: list[_Raw] = []
    replaced_all: set[RuleKey] = set()
    for key in extra:
        rule = current[key]
        replaced = [b for b in missing if _covers(state.book, key, b)]
        wider = [b for b in replaced if not _covers(state.book, b, key)]
        replaced_all.update(replaced)
        details = [f"current rule {rule.rule_id}" if rule.rule_id else "current rule (no sgr- id known)"]
        details += _usage(state.book, state.book.resolved(key), members_flows)
        if wider:
            message = (
                f"{state.label(gid)}: current rule {describe_rule(Rule.from_key(key))} is broader than the "
                f"baseline rule it replaces: {'; '.join(describe_rule(Rule.from_key(b)) for b in wider)}"
            )
            source = approved[wider[0]]
            out.append(_Raw(FindingKind.RULE_BROADER, [gid], key, message, details, rule.description, source))
            continue
        message = (
            f"{state.label(gid)}: current rule {describe_rule(Rule.from_key(key))} is not in the baseline"
        )
        if replaced:
            same = "; ".join(describe_rule(Rule.from_key(b)) for b in replaced)
            details.append(f"permits the same as baseline rule {same} on the current snapshot")
        out.append(_Raw(FindingKind.RULE_NOT_IN_BASELINE, [gid], key, message, details, rule.description))
    for key in missing:
        if key in replaced_all:
            continue
        entry = approved[key]
        out.append(
            _Raw(
                FindingKind.BASELINE_RULE_MISSING,
                [gid],
                key,
                f"{state.label(gid)}: baseline rule {describe_rule(entry.rule)} is missing from the current "
                "rules",
                [f"approved in {entry.source}"],
                entry.rule.description,
                entry,
            )
        )
    coverage = state.coverage.get(gid)
    if coverage is not None and coverage.status == "ok":
        out.extend(_unused(gid, state, approved, current, members_flows, exceptions, coverage))
    return out


def _unused(
    gid: str,
    state: _State,
    approved: dict[RuleKey, BaselineRule],
    current: dict[RuleKey, SgRule],
    flows: list[Flow],
    exceptions: Exceptions,
    coverage: CoverageOut,
) -> list[_Raw]:
    out = []
    days = coverage.window_seconds / 86400
    for key in sorted(approved, key=key_order):
        if key not in current or (gid, key) in exceptions.pins:
            continue
        resolved = state.book.resolved(key)
        if any(_touches(state.book, resolved, f) for f in flows):
            continue
        entry = approved[key]
        details = [f"approved in {entry.source}", f"coverage ok over {days:.1f}d, {len(flows)} flows seen"]
        if (gid, key) in exceptions.expired_pins:
            details.append(f"its [[pin]] expired on {exceptions.expired_pins[(gid, key)].expires}")
        out.append(
            _Raw(
                FindingKind.BASELINE_RULE_UNUSED,
                [gid],
                key,
                f"{state.label(gid)}: baseline rule {describe_rule(entry.rule)} was used by no flow in the "
                "window",
                details,
                entry.rule.description,
                entry,
            )
        )
    return out


def _covers(book: RuleBook, wide: RuleKey, narrow: RuleKey) -> bool:
    """Does ``wide`` permit everything ``narrow`` permits, on the current snapshot? Rules to the same
    destination compare by protocol and ports alone (an empty SG or an opaque prefix list would make the
    address comparison vacuous or impossible); otherwise ``narrow`` must resolve to some address."""
    if (wide.kind, wide.value) == (narrow.kind, narrow.value):
        probe = {k: k._replace(kind=DestKind.CIDR_IPV4, value=_ANYWHERE) for k in (wide, narrow)}
        return covered(book.resolved(probe[narrow]), [book.resolved(probe[wide])])
    candidate = book.resolved(narrow)
    if not candidate.spans:
        return False
    return covered(candidate, [book.resolved(wide)])


def _touches(book: RuleBook, rule: Resolved, flow: Flow) -> bool:
    """Does the rule permit any part of the flow (a bucketed port range may span several rules)? A
    reference permits a flow to an ENI that was a member of its group then (``RuleBook.permits_flow``)."""
    key = rule.key
    if flow.proto in _PORTED and rule.proto == flow.proto:
        low = max(flow.port_low, key.from_port if key.from_port is not None else 0)
        high = min(flow.port_high, key.to_port if key.to_port is not None else 65535)
        return low <= high and book.permits_flow(rule, flow, low, low)
    return book.permits_flow(rule, flow)


def _usage(book: RuleBook, rule: Resolved, flows: Sequence[Flow]) -> list[str]:
    used = [f for f in flows if _touches(book, rule, f)]
    if not used:
        return []
    records = sum(f.records for f in used)
    return [f"used in the window by {len(used)} flow(s), {records} records"]


# ------------------------------------------------------------------------------------------ vanished


def _vanished_groups(baseline: Baseline, inventory: Inventory, analysis: AnalysisOptions) -> list[str]:
    """Baseline groups absent from the inventory that the scope would include if they existed."""
    scope = analysis.scope
    out = []
    for gid in sorted(baseline.groups):
        if gid in inventory.groups:
            continue
        if scope.enis:
            continue  # a vanished group has no ENIs: it cannot be in an ENI scope
        if scope.groups and gid not in scope.groups:
            continue
        if scope.vpcs and baseline.vpcs.get(gid) not in scope.vpcs:
            continue
        out.append(gid)
    return out


def _vanished(gid: str, baseline: Baseline) -> list[_Raw]:
    return [
        _Raw(
            FindingKind.BASELINE_RULE_MISSING,
            [gid],
            entry.rule.key(),
            f"{gid}: baseline rule {describe_rule(entry.rule)} is missing: the group no longer exists",
            [f"approved in {entry.source}"],
            entry.rule.description,
            entry,
        )
        for entry in baseline.groups[gid]
    ]


# ------------------------------------------------------------------------------------------ flows


def _uncovered_flows(state: _State) -> list[_Raw]:
    """The flows the current rules permit and the baseline does not, one finding per (groups, rule)."""
    book = state.book
    baseline_rules: dict[str, list[Resolved]] = {}

    def effective(gid: str) -> list[Resolved]:
        if not state.has_opinion(gid):
            return [res for _, res in book.group(gid)]
        if gid not in baseline_rules:
            baseline_rules[gid] = [book.resolved(k) for k in state.baseline.rules_by_key(gid)]
        return baseline_rules[gid]

    merged: dict[tuple[tuple[str, ...], RuleKey], list[Flow]] = defaultdict(list)
    for flow in state.flows:
        groups = book.attribution.source_groups(flow)
        if not _allowed(book, [r for gid in groups for _, r in book.group(gid)], flow):
            continue  # not permitted now: never a finding (it is not_permitted_now in recommend)
        if _allowed(book, [r for gid in groups for r in effective(gid)], flow):
            continue
        culprits = [
            gid
            for gid in groups
            if state.has_opinion(gid)
            and _allowed(book, [r for _, r in book.group(gid)], flow)
            and not _allowed(book, effective(gid), flow)
        ] or [
            gid
            for gid in groups
            if state.has_opinion(gid) and any(_touches(book, r, flow) for _, r in book.group(gid))
        ]
        merged[(tuple(sorted(culprits)), host_key(flow))].append(flow)
    out = []
    for (groups, key), flows in merged.items():
        records = sum(f.records for f in flows)
        enis = sorted({f.eni for f in flows})
        labels = ", ".join(state.label(g) for g in groups)
        permitting = sorted(
            {
                describe_rule(Rule.from_key(rule.key()))
                for gid in groups
                for rule, res in book.group(gid)
                if any(_touches(book, res, f) for f in flows)
            }
        )
        details = [f"{f.eni} → {_flow_text(f)}: {f.records} records, {f.confidence}" for f in flows]
        details = details[:MAX_FLOWS_LISTED] + (
            [f"… and {len(details) - MAX_FLOWS_LISTED} more"] if len(details) > MAX_FLOWS_LISTED else []
        )
        details.append(f"permitted now by: {'; '.join(permitting) or 'the rules of several groups together'}")
        first = min((f.first for f in flows if f.first is not None), default=None)
        last = max((f.last for f in flows if f.last is not None), default=None)
        if first is not None and last is not None:
            details.append(f"seen {format_instant(first)} .. {format_instant(last)}")
        out.append(
            _Raw(
                FindingKind.FLOW_NOT_IN_BASELINE,
                list(groups),
                key,
                f"{labels}: {', '.join(enis)} initiated {_flow_text(flows[0])} ({records} records), "
                "permitted by the current rules but not by the baseline",
                details,
                flows=flows,
            )
        )
    return out


def _flow_text(flow: Flow) -> str:
    proto = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(flow.proto, str(flow.proto))
    if flow.proto not in _PORTED:
        return f"{proto} to {flow.remote}"
    ports = str(flow.port_low) if flow.port_low == flow.port_high else f"{flow.port_low}-{flow.port_high}"
    return f"{proto} {flow.remote}:{ports}"


def _allowed(book: RuleBook, rules: Sequence[Resolved], flow: Flow) -> bool:
    """Do ``rules`` together permit the whole flow (a bucketed port range may need several)?"""
    if any(book.permits_flow(r, flow) for r in rules):
        return True
    if flow.proto in _PORTED and flow.port_low != flow.port_high:
        return covered(book.resolved(host_key(flow)), list(rules))
    return False


# ------------------------------------------------------------------------------------------ finishing


def _one_per_rule(raw: list[_Raw]) -> list[_Raw]:
    """One finding per (groups, rule): the most specific kind wins."""
    best: dict[tuple[tuple[str, ...], RuleKey | None, str], _Raw] = {}
    for item in raw:
        slot = (tuple(sorted(item.groups)), item.key, item.kind.value if item.key is None else "")
        held = best.get(slot)
        if held is None or _KIND_ORDER[item.kind] < _KIND_ORDER[held.kind]:
            best[slot] = item
    return list(best.values())


def _finish(raw: _Raw, policy: Policy, exceptions: Exceptions, state: _State) -> Finding:
    details = list(raw.details)
    suppression = None
    for allow, key in exceptions.allows:
        if _allow_matches(allow, key, raw, state.book):
            suppression = Suppression(reason=allow.reason, expires=allow.expires)
            break
    for allow, key in exceptions.expired_allows:
        if suppression is None and _allow_matches(allow, key, raw, state.book):
            details.append(f"an [[allow]] expired on {allow.expires} (reason was: {allow.reason})")
    rule = Rule.from_key(raw.key, description=raw.description) if raw.key is not None else None
    return Finding(
        id=finding_id(raw.kind, raw.groups, raw.key),
        kind=raw.kind,
        severity=policy.severity(raw.kind),
        groups=sorted(raw.groups),
        rule=rule,
        message=raw.message,
        details=details,
        baseline_source=raw.source.source if raw.source is not None else None,
        baseline_line=raw.source.line
        if raw.source is not None
        else state.baseline.group_lines.get(raw.groups[0] if raw.groups else ""),
        suppressed=suppression,
    )


def _allow_matches(allow: RuleException, key: RuleKey, raw: _Raw, book: RuleBook) -> bool:
    if allow.group not in raw.groups or raw.key is None:
        return False
    if key == raw.key:
        return True
    if raw.kind is FindingKind.FLOW_NOT_IN_BASELINE:
        resolved = book.resolved(key)
        return all(_allowed(book, [resolved], flow) for flow in raw.flows)
    return False


def _finding_order(finding: Finding) -> tuple[int, int, list[str], tuple[str, int, int, str, str]]:
    rule_order = key_order(finding.rule.key()) if finding.rule is not None else ("", -3, -3, "", "")
    return (-finding.severity.rank, _KIND_ORDER[finding.kind], finding.groups, rule_order)


def _pin_warnings(baseline: Baseline, exceptions: Exceptions) -> list[str]:
    return [
        f"[[pin]] for {gid} ({describe_rule(pin)}) matches no baseline rule of that group"
        for (gid, key), pin in exceptions.pins.items()
        if key not in baseline.rules_by_key(gid)
    ]


def _group_results(
    state: _State, baseline: Baseline, inventory: Inventory, analysis: AnalysisOptions
) -> list[GroupResult]:
    out = []
    for gid in state.in_scope:
        sg = inventory.groups[gid]
        coverage = state.coverage.get(gid)
        out.append(
            GroupResult(
                group_id=gid,
                label=state.label(gid),
                vpc_id=sg.vpc_id,
                in_baseline=gid in baseline.groups,
                coverage=coverage.status if coverage is not None else None,
                current_rules=len(state.current(gid)),
                baseline_rules=len(baseline.groups.get(gid, [])),
            )
        )
    for gid in _vanished_groups(baseline, inventory, analysis):
        out.append(
            GroupResult(
                group_id=gid,
                label=gid,
                vpc_id=baseline.vpcs.get(gid),
                exists=False,
                in_baseline=True,
                current_rules=0,
                baseline_rules=len(baseline.groups[gid]),
            )
        )
    return sorted(out, key=lambda g: g.group_id)
