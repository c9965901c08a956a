"""The default output: the verdict and every finding as plain text for a terminal or a CI log.

Messages, details, reasons, warnings and the baseline path carry untrusted text (group names, tags,
descriptions, file names): each goes through safe_text, and every line through safe_line."""

from __future__ import annotations

from collections import Counter

from sgadvisor.check.model import CheckReport, Finding, Severity
from sgadvisor.render.quoting import safe_line, safe_text


def render_text(report: CheckReport) -> str:
    lines = [_header(report)]
    active = report.active()
    if active:
        lines.append("")
    for finding in active:
        lines.extend(_finding_lines(finding))
    suppressed = [f for f in report.findings if f.suppressed is not None]
    if suppressed:
        lines += ["", f"suppressed by [[allow]] ({len(suppressed)}):"]
        for finding in suppressed:
            assert finding.suppressed is not None
            until = f" until {finding.suppressed.expires}" if finding.suppressed.expires else ""
            lines.append(
                f"  {finding.id} {safe_text(finding.message)} — allowed{safe_text(until)}: "
                f"{safe_text(finding.suppressed.reason)}"
            )
    if report.warnings:
        lines += ["", "warnings:"] + [f"  {safe_text(warning)}" for warning in report.warnings]
    lines += ["", verdict(report)]
    return "\n".join(safe_line(line) for line in lines) + "\n"


def _header(report: CheckReport) -> str:
    base = report.baseline
    text = (
        f"sgadvisor check: baseline {safe_text(base.path)} "
        f"({base.format}: {base.groups} groups, {base.rules} rules); "
        f"{len(report.groups)} groups checked"
    )
    if report.flows_checked and report.window is not None:
        text += f"; {report.flows} flows in {safe_text(report.window[0])} .. {safe_text(report.window[1])}"
    else:
        text += "; configuration only (--no-flows)"
    return text


def _finding_lines(finding: Finding) -> list[str]:
    lines = [
        f"{finding.severity.upper():<6} {finding.kind} [{finding.id}]",
        f"       {safe_text(finding.message)}",
    ]
    lines += [f"       - {safe_text(detail)}" for detail in finding.details]
    return lines


def count_by_severity(findings: list[Finding]) -> str:
    counts = Counter(f.severity for f in findings)
    return ", ".join(f"{counts[s]} {s}" for s in (Severity.HIGH, Severity.MEDIUM, Severity.LOW) if counts[s])


def verdict(report: CheckReport) -> str:
    """One line a CI log ends with: the result and its exit code."""
    failing = report.failing()
    active = report.active()
    if failing:
        return (
            f"DRIFT: {len(failing)} finding(s) at or above --fail-on {report.fail_on} "
            f"({count_by_severity(active)}) — exit 1"
        )
    if active:
        return (
            f"no drift at or above --fail-on {report.fail_on} "
            f"({len(active)} below it: {count_by_severity(active)}) — exit 0"
        )
    return "no drift — exit 0"
