"""Markdown for a pull-request comment or ``$GITHUB_STEP_SUMMARY``: the verdict, counts, then a findings
table, bounded in size (GitHub comments take 65,536 characters; the table, then the warnings, shrink by
whole rows until it fits). Untrusted text (messages, reasons, warnings, the baseline path) is cut to
MAX_CELL characters and quoted by markdown_text (control characters escaped, no mentions or autolinks);
every line goes through safe_line."""

from __future__ import annotations

from collections import Counter

from sgadvisor.check.model import CheckReport, Finding, FindingKind, Severity
from sgadvisor.check.text import verdict
from sgadvisor.render.quoting import clip, markdown_text, safe_lines, safe_text
from sgadvisor.rules import describe_rule

MAX_CHARS = 60_000
MAX_ROWS = 100
MAX_CELL = 300
MAX_WARNINGS = 20


def render_markdown(report: CheckReport, max_chars: int = MAX_CHARS) -> str:
    rows, warnings = MAX_ROWS, MAX_WARNINGS
    while True:
        text = safe_lines(_render(report, rows, warnings))
        if len(text) <= max_chars:
            return text
        if rows == 0 and warnings == 0:
            return _cut(text, max_chars)
        if rows:
            rows //= 2
        else:
            warnings //= 2


def _cut(text: str, max_chars: int) -> str:
    """Last resort: whole lines up to the limit, an open ``<details>`` closed, and a note."""
    note, closing = "\n\n_(truncated to fit)_\n", "\n\n</details>\n"
    body = text[: max(0, max_chars - len(note) - len(closing))].rsplit("\n", 1)[0]
    if body.count("<details>") > body.count("</details>"):
        body += closing
    return body + note


def _render(report: CheckReport, rows: int, warnings: int) -> str:
    failing = report.failing()
    active = report.active()
    icon = "❌" if failing else "✅"
    out = [f"## {icon} sgadvisor check: {'drift' if failing else 'no drift'}", ""]
    base = report.baseline
    scope = (
        f"{report.flows} flows, window {report.window[0]} .. {report.window[1]}"
        if report.flows_checked and report.window
        else "configuration only (`--no-flows`)"
    )
    out.append(
        f"Baseline `{_code(base.path)}` ({base.format}, {base.groups} groups, {base.rules} rules); "
        f"{len(report.groups)} groups checked; {scope}. Fails at `--fail-on {report.fail_on}`."
    )
    out += ["", f"**{markdown_text(verdict(report))}**", ""]
    if active:
        out += [*_counts(active), ""]
        out += ["| Severity | Kind | Groups | Rule | Finding | Id |", "|---|---|---|---|---|---|"]
        out += [_row(f) for f in active[:rows]]
        if len(active) > rows:
            out.append(f"\n_… and {len(active) - rows} more findings (see the SARIF or JUnit output)._")
        out.append("")
    suppressed = [f for f in report.findings if f.suppressed is not None]
    if suppressed:
        out += [f"<details><summary>{len(suppressed)} suppressed by [[allow]]</summary>", ""]
        out += ["| Kind | Groups | Rule | Reason | Id |", "|---|---|---|---|---|"]
        for finding in suppressed[:rows]:
            assert finding.suppressed is not None
            out.append(
                f"| {finding.kind.value} | {_cell(', '.join(finding.groups))} | {_rule(finding)} | "
                f"{_cell(finding.suppressed.reason)} | `{finding.id}` |"
            )
        if len(suppressed) > rows:
            out.append(f"\n_… and {len(suppressed) - rows} more._")
        out += ["", "</details>", ""]
    if report.warnings:
        out.append("**Warnings**")
        out += [f"- {_cell(w)}" for w in report.warnings[:warnings]]
        if len(report.warnings) > warnings:
            out.append(f"- … and {len(report.warnings) - warnings} more")
        out.append("")
    return "\n".join(out)


def _counts(findings: list[Finding]) -> list[str]:
    by_kind: Counter[tuple[FindingKind, Severity]] = Counter((f.kind, f.severity) for f in findings)
    lines = ["| Kind | Severity | Findings |", "|---|---|---|"]
    for kind in FindingKind:
        for severity in (Severity.HIGH, Severity.MEDIUM, Severity.LOW):
            if by_kind[(kind, severity)]:
                lines.append(f"| {kind.value} | {severity} | {by_kind[(kind, severity)]} |")
    return lines


def _row(finding: Finding) -> str:
    return (
        f"| {finding.severity} | {finding.kind.value} | {_cell(', '.join(finding.groups))} | "
        f"{_rule(finding)} | {_cell(finding.message)} | `{finding.id}` |"
    )


def _rule(finding: Finding) -> str:
    return _cell(describe_rule(finding.rule)) if finding.rule is not None else "—"


def _cell(value: str) -> str:
    return markdown_text(clip(value, MAX_CELL))


def _code(value: str) -> str:
    """Inside a code span: control characters escaped, backticks (which would end it) made quotes."""
    return safe_text(clip(value, MAX_CELL)).replace("`", "'")
