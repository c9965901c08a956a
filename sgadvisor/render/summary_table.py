"""The short per-group table printed after ``recommend``: what changes, and how sure we are.

It goes to a terminal or a CI log: every value from the inventory is passed through safe_text (one
visible line, no escape sequences) and every line through safe_line (no CI workflow command)."""

from __future__ import annotations

from collections import Counter

from sgadvisor.models import Recommendation
from sgadvisor.render.quoting import safe_line, safe_text

_HEADERS = ("group", "name", "current", "proposed", "keep", "narrow", "remove", "add", "coverage")


def format_summary(recommendation: Recommendation) -> str:
    rows: list[tuple[str, ...]] = []
    for group in recommendation.security_groups:
        actions = Counter(change.action for change in group.changes)
        rows.append(
            (
                safe_text(group.group_id),
                safe_text(group.group_name),
                str(len(group.current_egress)),
                str(len(group.proposed_egress)),
                str(actions["keep"]),
                str(actions["narrow"]),
                str(actions["remove"]),
                str(actions["add"]),
                safe_text(group.coverage.status),
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(_HEADERS)]
    numeric = {2, 3, 4, 5, 6, 7}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    out = [line(_HEADERS), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)]
    totals = Counter(change.action for g in recommendation.security_groups for change in g.changes)
    out.append(
        f"{len(rows)} groups: {totals['keep']} keep, {totals['narrow']} narrow, {totals['remove']} remove, "
        f"{totals['add']} add; window {safe_text(recommendation.window.start)} .. "
        f"{safe_text(recommendation.window.end)}"
    )
    extras = [
        (len(recommendation.rejected_egress), "rejected egress destinations"),
        (len(recommendation.not_permitted_now), "accepted flows not permitted now"),
        (len(recommendation.unattributed), "unattributed ENIs"),
        (len(recommendation.would_be_blocked), "flows below the thresholds that would be blocked"),
        (len(recommendation.warnings), "warnings"),
    ]
    listed = [f"{count} {what}" for count, what in extras if count]
    if listed:
        out.append("; ".join(listed))
    out += _not_judged(recommendation)
    return "\n".join(safe_line(line) for line in out)


# Groups whose reasons are printed in full; the rest are counted (all of them are in the outputs).
_REASONS_SHOWN = 10


def _not_judged(recommendation: Recommendation) -> list[str]:
    """Why each group that gets no removal was not judged: a status alone would hide that the data is
    missing (a lost day of files, an ENI that never delivered)."""
    groups = [g for g in recommendation.security_groups if g.coverage.status != "ok" and not g.unattached]
    if not groups:
        return []
    counted = f"{len(groups)} group{'s' if len(groups) != 1 else ''}"
    lines = [f"not judged ({counted}: no rule is removed or narrowed without evidence):"]
    for group in groups[:_REASONS_SHOWN]:
        reasons = group.coverage.reasons or ["no evidence"]
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        lines.append(f"  {safe_text(group.group_id)} {group.coverage.status}: {safe_text(reasons[0])}{more}")
    if len(groups) > _REASONS_SHOWN:
        lines.append(f"  … and {len(groups) - _REASONS_SHOWN} more groups: see summary.md or report.html")
    return lines
