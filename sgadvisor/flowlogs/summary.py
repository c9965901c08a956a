"""A short human summary of what a flow source read: stderr companion of every command that reads flows."""

from __future__ import annotations

from sgadvisor.accounting import InputAccounting
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.render.quoting import safe_text
from sgadvisor.timeparse import format_instant

_SHOWN_ISSUES = 10


def describe_flows(flows: FlowEdges, *, verbose: bool = False, with_warnings: bool = True) -> str:
    """Records by fate, edges and interfaces, the window, and where input was skipped or damaged (and the
    warnings, unless ``with_warnings`` is False: the CLI prints those itself, the first 20)."""
    acc = flows.accounting
    lines = [
        f"records {acc.records:,}: used {acc.used:,}, nodata {acc.nodata:,}, skipdata {acc.skipdata:,}, "
        f"malformed {acc.malformed:,}"
        + "".join(f", {reason} {count:,}" for reason, count in acc.filtered.items()),
        f"edges {flows.edges.height:,} on {flows.edges['interface_id'].n_unique():,} interfaces; "
        f"coverage for {flows.coverage.height:,} interfaces",
    ]
    if flows.window is not None:
        lines.append(f"window {format_instant(flows.window.start)} .. {format_instant(flows.window.end)}")
    if with_warnings:
        lines.extend(f"warning: {w}" for w in flows.warnings)
    lines.append(describe_accounting(acc, verbose=verbose, with_totals=False))
    return "\n".join(line for line in lines if line)


def describe_accounting(acc: InputAccounting, *, verbose: bool = False, with_totals: bool = True) -> str:
    """Where input was skipped or damaged (the first ten, or all kept with ``verbose``)."""
    lines = []
    if with_totals:
        lines.append(
            f"records {acc.records:,}: used {acc.used:,}, nodata {acc.nodata:,}, skipdata {acc.skipdata:,}, "
            f"malformed {acc.malformed:,}"
            + "".join(f", {reason} {count:,}" for reason, count in acc.filtered.items())
        )
    shown = acc.issues if verbose else acc.issues[:_SHOWN_ISSUES]
    for issue in shown:
        # File names and reasons may hold anything (a file named with a newline): one escaped line each.
        where = f"{safe_text(issue.file)}:{issue.line}" if issue.line is not None else safe_text(issue.file)
        lines.append(f"  {where}: {safe_text(issue.reason)}")
    hidden = len(acc.issues) - len(shown) + acc.issues_omitted
    if hidden:
        lines.append(f"  … and {hidden:,} more (--verbose lists the first 100)")
    return "\n".join(lines)
