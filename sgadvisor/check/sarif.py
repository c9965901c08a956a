"""SARIF 2.1.0 for code scanning (GitHub ``upload-sarif`` and others): one reporting rule per finding
kind, one result per finding, located at the baseline file (the approved rule's line when known) and
logically at the security groups concerned. The finding id is the partial fingerprint, so a finding
keeps its identity across runs and rule re-creations; ``[[allow]]`` becomes an accepted suppression.

Code scanning shows the message texts, and a CI job may print the file: in messages, justifications and
notifications every untrusted value goes through safe_text (no raw control, bidi or invisible
character) and every line through safe_line (no CI workflow command). The machine-read fields (group
ids, the rule, the baseline path) keep their values; json_safe writes their invisible characters and CI
command prefixes as JSON escapes, so the file itself prints safely too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sgadvisor import __version__
from sgadvisor.check.model import KINDS, CheckReport, Finding, FindingKind, Severity
from sgadvisor.render.quoting import json_safe, safe_line, safe_text

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}
# GitHub code scanning reads security-severity: >= 7.0 high, >= 4.0 medium, else low.
_SECURITY_SEVERITY = {Severity.HIGH: "8.0", Severity.MEDIUM: "5.0", Severity.LOW: "2.0"}
FINGERPRINT = "sgadvisorFindingId/v1"


def render_sarif(report: CheckReport) -> str:
    effective = {kind: report.severities.get(kind, info.severity) for kind, info in KINDS.items()}
    kinds = list(FindingKind)
    uri = artifact_uri(report.baseline.path)
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sgadvisor",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_descriptor(kind, effective[kind]) for kind in kinds],
                    }
                },
                "automationDetails": {"id": "sgadvisor/check/"},
                "invocations": [_invocation(report)],
                "artifacts": [{"location": {"uri": uri}}],
                "results": [_result(f, kinds.index(f.kind), uri) for f in report.findings],
                "properties": {
                    "baseline": report.baseline.model_dump(mode="json"),
                    "failOn": report.fail_on.value,
                    "flowsChecked": report.flows_checked,
                    "groupsChecked": len(report.groups),
                },
            }
        ],
    }
    return json_safe(json.dumps(log, indent=2, ensure_ascii=False)) + "\n"


def artifact_uri(path: str) -> str:
    """The baseline as a URI: relative to the working directory (the repository root in CI) when it
    lies inside it, so code scanning can link it; else an absolute file URI."""
    candidate = Path(path)
    if not candidate.is_absolute():
        return candidate.as_posix()
    try:
        return candidate.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return candidate.as_uri()


def _descriptor(kind: FindingKind, severity: Severity) -> dict[str, Any]:
    info = KINDS[kind]
    return {
        "id": kind.value,
        "name": "".join(part.capitalize() for part in kind.value.split("-")),
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.help},
        "help": {"text": info.help},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {
            "tags": ["security", "aws", "security-group"],
            "precision": "very-high",
            "security-severity": _SECURITY_SEVERITY[severity],
            "severity": severity.value,
        },
    }


def _invocation(report: CheckReport) -> dict[str, Any]:
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if report.warnings:
        invocation["toolExecutionNotifications"] = [
            {"level": "warning", "message": {"text": _text(warning)}} for warning in report.warnings
        ]
    return invocation


def _result(finding: Finding, rule_index: int, uri: str) -> dict[str, Any]:
    lines = [safe_line(safe_text(finding.message))]
    lines += [safe_line(f"- {safe_text(detail)}") for detail in finding.details]
    text = "\n".join(lines)
    result: dict[str, Any] = {
        "ruleId": finding.kind.value,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri, "index": 0},
                    "region": {"startLine": finding.baseline_line or 1},
                },
                "logicalLocations": [
                    {"name": group, "fullyQualifiedName": group, "kind": "resource"}
                    for group in finding.groups
                ],
            }
        ],
        "partialFingerprints": {FINGERPRINT: finding.id},
        "properties": {
            "findingId": finding.id,
            "severity": finding.severity.value,
            "groups": finding.groups,
            **({"rule": finding.rule.model_dump(exclude_none=True)} if finding.rule is not None else {}),
            **({"baselineSource": finding.baseline_source} if finding.baseline_source else {}),
        },
    }
    if finding.suppressed is not None:
        justification = _text(finding.suppressed.reason)
        if finding.suppressed.expires is not None:
            justification += f" (until {finding.suppressed.expires})"
        result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": justification}]
    return result


def _text(value: str) -> str:
    """One untrusted value as one safe line of a message."""
    return safe_line(safe_text(value))
