"""summary.md: the recommendation as a pull-request comment or CI step summary — totals first, then the
changes per group, the groups that could not be judged and the vanished destinations, bounded so that a
1,000-group estate, or one with hostile names, still fits a comment (GitHub allows 65,536 characters) and
stays readable.

Every value goes through the ``md`` or ``html`` filter (quoting.markdown_text / html_text: control
characters escaped, no mentions or autolinks, each value cut to MARKDOWN_VALUE_LIMIT characters) and
every line through safe_line. What does not fit is dropped by whole rows or whole groups, each list ending
with a line saying how many more are in recommendation.json."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sgadvisor import __version__
from sgadvisor.models import Change, Evidence, GroupReport, Recommendation, VanishedDestination
from sgadvisor.render import RenderContext, Rendered
from sgadvisor.render.quoting import safe_lines
from sgadvisor.render.templating import markdown_environment
from sgadvisor.render.terraform_domains import DOMAINS_FILE, plan_firewall
from sgadvisor.rules import RuleKey, describe_rule

FILE_NAME = "summary.md"
MAX_TABLE_GROUPS = 50
MAX_DETAILED_GROUPS = 25
MAX_UNJUDGED_GROUPS = 50
MAX_WARNINGS = 10
MAX_CHANGES_PER_GROUP = 15
MAX_REASONS_PER_GROUP = 3
MAX_VANISHED = 20
MAX_VANISHED_ITEMS = 5  # former groups, traffic and sending ENIs listed per vanished destination
MAX_NAMES_PER_RULE = 5  # DNS names listed beside an internet rule
MAX_CHARS = 60_000
_CUT_NOTE = "\n_(cut to fit the size limit: the rest is in recommendation.json)_\n"
_ENI_ID = re.compile(r"\beni-[0-9a-f]{8,17}\b")
ACTIONS = ("keep", "narrow", "remove", "add")


@dataclass(frozen=True)
class ChangeRow:
    """One change of the detailed list; for an added internet rule, how it names its destinations
    (``pinned`` or ``port``) and the DNS names that resolved to them (cut to MAX_NAMES_PER_RULE)."""

    change: Change
    internet: str | None = None
    names: tuple[str, ...] = ()
    names_omitted: int = 0


@dataclass(frozen=True)
class GroupRow:
    group: GroupReport
    label: str
    counts: Counter[str]
    changes: tuple[ChangeRow, ...]
    changes_omitted: int

    @property
    def changed(self) -> bool:
        return any(self.counts[a] for a in ("narrow", "remove", "add"))


@dataclass(frozen=True)
class UnjudgedRow:
    """A group whose coverage is ``none`` or ``partial``, with the first of its coverage reasons."""

    group: GroupReport
    label: str
    reasons: tuple[str, ...]
    reasons_omitted: int


@dataclass(frozen=True)
class VanishedRow:
    """A destination whose ENI and groups are gone, its lists cut to MAX_VANISHED_ITEMS each."""

    item: VanishedDestination
    groups: tuple[str, ...]
    groups_omitted: int
    traffic: tuple[str, ...]
    traffic_omitted: int
    sources: tuple[str, ...]
    sources_omitted: int


@dataclass(frozen=True)
class Limits:
    """How many entries of each list are shown; shrunk, list by list, until the summary fits."""

    detailed: int = MAX_DETAILED_GROUPS
    warnings: int = MAX_WARNINGS
    vanished: int = MAX_VANISHED
    unjudged: int = MAX_UNJUDGED_GROUPS
    table: int = MAX_TABLE_GROUPS

    def shrink(self) -> Limits | None:
        """Halve the first list still shown (detailed changes first, the table of changes last)."""
        for name in ("detailed", "warnings", "vanished", "unjudged", "table"):
            value: int = getattr(self, name)
            if value:
                return replace(self, **{name: value // 2})
        return None


def render(recommendation: Recommendation, context: RenderContext) -> Rendered:
    return Rendered({FILE_NAME: render_summary(recommendation)})


def render_summary(recommendation: Recommendation, max_chars: int = MAX_CHARS) -> str:
    """The summary, with fewer detailed groups, warnings, vanished destinations, groups not judged and
    table rows (in that order) until it fits ``max_chars``; every line passed through safe_line."""
    limits: Limits | None = Limits()
    text = ""
    while limits is not None:
        text = safe_lines(_render(recommendation, limits))
        if len(text) <= max_chars:
            return text
        limits = limits.shrink()
    return _cut(text, max_chars)


def _cut(text: str, max_chars: int) -> str:
    """Last resort (only the header left and still too long): whole lines up to the limit, an open
    ``<details>`` closed, and a note."""
    closing = "\n\n</details>\n"
    body = text[: max(0, max_chars - len(_CUT_NOTE) - len(closing))].rsplit("\n", 1)[0]
    if body.count("<details>") > body.count("</details>"):
        body += closing
    return body + _CUT_NOTE


def _render(recommendation: Recommendation, limits: Limits) -> str:
    rows = [_row(group, recommendation.labels) for group in recommendation.security_groups]
    unjudged = [
        _unjudged(group, recommendation.labels)
        for group in recommendation.security_groups
        if group.coverage.status != "ok"
    ]
    warnings = recommendation.warnings
    vanished = recommendation.vanished_destinations
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
        (len(vanished), "destinations whose ENI and groups are gone (never turned into rules)"),
        (accounting.malformed, "malformed flow-log records skipped"),
    ]
    if recommendation.dns is not None:
        attention.append((recommendation.dns.accounting.malformed, "malformed DNS query-log lines skipped"))
    return (
        markdown_environment()
        .get_template("summary.md.j2")
        .render(
            version=__version__,
            rec=recommendation,
            totals=totals,
            coverage=coverage,
            groups=len(rows),
            table=changed[: limits.table],
            table_omitted=max(0, len(changed) - limits.table),
            unchanged=len(rows) - len(changed),
            detailed=changed[: limits.detailed],
            detailed_omitted=max(0, len(changed) - limits.detailed),
            warnings=warnings[: limits.warnings],
            warnings_omitted=max(0, len(warnings) - limits.warnings),
            unjudged=unjudged[: limits.unjudged],
            unjudged_total=len(unjudged),
            unjudged_omitted=max(0, len(unjudged) - limits.unjudged),
            vanished=[_vanished(item, recommendation.labels) for item in vanished[: limits.vanished]],
            vanished_total=len(vanished),
            vanished_omitted=max(0, len(vanished) - limits.vanished),
            attention=[(count, what) for count, what in attention if count],
            describe_rule=describe_rule,
            actions=ACTIONS,
            domains_line=domains_line(recommendation),
        )
    )


def _label(group: GroupReport, labels: dict[str, str]) -> str:
    return labels.get(group.group_id) or group.name_tag or group.group_name


def _unjudged(group: GroupReport, labels: dict[str, str]) -> UnjudgedRow:
    reasons = group.coverage.reasons
    return UnjudgedRow(
        group,
        _label(group, labels),
        tuple(name_enis(reason, labels) for reason in reasons[:MAX_REASONS_PER_GROUP]),
        max(0, len(reasons) - MAX_REASONS_PER_GROUP),
    )


def _vanished(item: VanishedDestination, labels: Mapping[str, str]) -> VanishedRow:
    def named(value: str, form: str) -> str:
        label = labels.get(value)
        return form.format(value, label) if label else value

    groups = [named(g, "{} ({})") for g in item.former_groups]
    sources = [named(eni, "{} [{}]") for eni in item.sources]
    cap = MAX_VANISHED_ITEMS
    return VanishedRow(
        item,
        tuple(groups[:cap]),
        max(0, len(groups) - cap),
        tuple(item.traffic[:cap]),
        max(0, len(item.traffic) - cap),
        tuple(sources[:cap]),
        max(0, len(sources) - cap),
    )


def name_enis(text: str, labels: Mapping[str, str]) -> str:
    """Each ENI id in free text followed by its label, as the HTML report shows it:
    ``eni-0a62…: no flow-log record`` → ``eni-0a62… [bastion (instance)]: no flow-log record``."""
    return _ENI_ID.sub(lambda m: f"{m[0]} [{labels[m[0]]}]" if labels.get(m[0]) else m[0], text)


def _row(group: GroupReport, labels: dict[str, str]) -> GroupRow:
    counts: Counter[str] = Counter(change.action for change in group.changes)
    moving = [c for c in group.changes if c.action != "keep"]
    label = _label(group, labels)
    evidence = {rule.key(): rule.evidence for rule in group.proposed_egress}
    return GroupRow(
        group,
        label,
        counts,
        tuple(_change_row(c, evidence) for c in moving[:MAX_CHANGES_PER_GROUP]),
        max(0, len(moving) - MAX_CHANGES_PER_GROUP),
    )


def _change_row(change: Change, evidence: Mapping[RuleKey, Evidence | None]) -> ChangeRow:
    """An added rule's internet naming from its evidence (other changes are not proposed rules)."""
    found = evidence.get(change.rule.key()) if change.action == "add" else None
    if found is None or found.internet is None:
        return ChangeRow(change)
    names = found.names or []
    return ChangeRow(
        change,
        found.internet,
        tuple(names[:MAX_NAMES_PER_RULE]),
        max(0, len(names) - MAX_NAMES_PER_RULE),
    )


def domains_line(recommendation: Recommendation) -> str | None:
    """The one line on egress-domains.tf, when the Terraform output writes it (plain text: escaped by
    the template)."""
    plan = plan_firewall(recommendation)
    if plan is None:
        return None
    if not plan.vpcs:
        return f"{DOMAINS_FILE} allows no name: none of the DNS names is one DNS Firewall accepts."
    other = "BLOCK (NODATA)" if plan.action == "BLOCK" else "ALERT, not blocked"
    text = (
        f"{DOMAINS_FILE}: Route 53 Resolver DNS Firewall allows {_count(plan.names, 'DNS name')} in "
        f"{_count(len(plan.vpcs), 'VPC')}, whatever addresses they rotate to; every other name: {other}. "
        "It does not stop connections straight to an IP address."
    )
    if plan.dropped:
        text += f" {_count(plan.dropped, 'name')} left out: DNS Firewall would refuse them."
    return text


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"
