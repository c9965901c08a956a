"""summary.md: the recommendation as a pull-request comment or CI step summary — totals first, then the
changes per group, bounded so that a 1,000-group estate still fits a comment (GitHub allows 65,536
characters) and stays readable."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sgadvisor import __version__
from sgadvisor.models import Change, GroupReport, Recommendation
from sgadvisor.render import RenderContext, Rendered
from sgadvisor.render.templating import text_environment
from sgadvisor.render.terraform import describe_rule

FILE_NAME = "summary.md"
MAX_TABLE_GROUPS = 50
MAX_DETAILED_GROUPS = 25
MAX_CHANGES_PER_GROUP = 15
MAX_CHARS = 60_000
ACTIONS = ("keep", "narrow", "remove", "add")


@dataclass(frozen=True)
class GroupRow:
    group: GroupReport
    label: str
    counts: Counter[str]
    changes: tuple[Change, ...]
    changes_omitted: int

    @property
    def changed(self) -> bool:
        return any(self.counts[a] for a in ("narrow", "remove", "add"))


def render(recommendation: Recommendation, context: RenderContext) -> Rendered:
    return Rendered({FILE_NAME: render_summary(recommendation)})


def render_summary(recommendation: Recommendation, max_chars: int = MAX_CHARS) -> str:
    """The summary, with fewer detailed groups until it fits ``max_chars`` (the table always stays)."""
    detailed = MAX_DETAILED_GROUPS
    while True:
        text = _render(recommendation, detailed)
        if len(text) <= max_chars or detailed == 0:
            return text
        detailed //= 2


def _render(recommendation: Recommendation, detailed: int) -> str:
    rows = [_row(group, recommendation.labels) for group in recommendation.security_groups]
    changed = [row for row in rows if row.changed]
    totals: Counter[str] = Counter()
    for row in rows:
        totals.update(row.counts)
    coverage = Counter(group.coverage.status for group in recommendation.security_groups)
    accounting = recommendation.input_accounting
    attention = [
        (
            len(recommendation.rejected_egress),
            "REJECTed egress destinations (security group or network ACL)",
        ),
        (len(recommendation.not_permitted_now), "accepted flows the current rules no longer permit"),
        (len(recommendation.unattributed), "ENIs with traffic but absent from the inventory"),
        (len(recommendation.would_be_blocked), "flows below the thresholds that the proposal would block"),
        (accounting.malformed, "malformed flow-log records skipped"),
    ]
    return (
        text_environment()
        .get_template("summary.md.j2")
        .render(
            version=__version__,
            rec=recommendation,
            totals=totals,
            coverage=coverage,
            groups=len(rows),
            table=changed[:MAX_TABLE_GROUPS],
            table_omitted=max(0, len(changed) - MAX_TABLE_GROUPS),
            unchanged=len(rows) - len(changed),
            detailed=changed[:detailed],
            detailed_omitted=max(0, len(changed) - detailed),
            attention=[(count, what) for count, what in attention if count],
            describe_rule=describe_rule,
            actions=ACTIONS,
        )
    )


def _row(group: GroupReport, labels: dict[str, str]) -> GroupRow:
    counts: Counter[str] = Counter(change.action for change in group.changes)
    moving = [c for c in group.changes if c.action != "keep"]
    label = labels.get(group.group_id) or group.name_tag or group.group_name
    return GroupRow(
        group,
        label,
        counts,
        tuple(moving[:MAX_CHANGES_PER_GROUP]),
        max(0, len(moving) - MAX_CHANGES_PER_GROUP),
    )
