"""report.html: one self-contained page a reviewer opens offline to decide, rule by rule, with the
evidence beside each rule (DESIGN §1, §5).

Built from the Recommendation alone. Safety by construction: the page is rendered with autoescape on
(``html_environment``), the only script and style are static files of the package inlined verbatim, and a
Content-Security-Policy allows exactly those two (by their sha256 hashes) and nothing else — no network,
no inline handlers — so even a missed escape of a Name tag could not run a script. Nothing user-controlled
is ever written into the script; it reads the DOM. No render time is printed: the same recommendation
gives the same bytes.

Scale: groups are collapsed ``<details>`` (closed content costs parsing but no layout), each group's
graph is bounded to about 40 nodes (``graph_svg``: the group, one box per proposed rule, replies and
uncarried traffic folded), and long evidence lists are cut with a count.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from sgadvisor.models import (
    Change,
    DnsOut,
    EdgeOut,
    Evidence,
    GroupReport,
    ProposedRule,
    Recommendation,
)
from sgadvisor.render import RenderContext, Rendered
from sgadvisor.render.graph_svg import (
    GraphLayout,
    RepliesFold,
    evidence_anchor,
    fold_replies,
    layout,
    port_text,
    rule_anchor,
)
from sgadvisor.render.graph_svg import rule_what as rule_what  # drawn in the graph too; re-exported
from sgadvisor.render.quoting import inline_text
from sgadvisor.render.templating import Structured, html_environment
from sgadvisor.render.terraform_domains import DOMAINS_FILE, plan_firewall
from sgadvisor.resources import templates_dir
from sgadvisor.rules import DestKind, Rule, RuleKey

FILE_NAME = "report.html"
TEMPLATE = "report.html.j2"
ACTIONS = ("keep", "narrow", "remove", "add")
LIST_LIMIT = 12  # ENIs / destinations listed per proposed rule before "+N more"
DOMAINS_LIMIT = 200  # names per VPC listed in the DNS section before "+N more"
ALL_NAMES_LIMIT = 2000  # --show-all-names: names listed before "+N more in recommendation.json"

# Ids whose Name tag (from ``labels``) is shown beside them, also inside free text such as reasons.
_ID = re.compile(r"\b(?:sg|eni|pl|sgr|vpc|vpce|nat|subnet)-[0-9a-f]{8,17}\b")
_KIND = {
    DestKind.CIDR_IPV4: "IPv4",
    DestKind.CIDR_IPV6: "IPv6",
    DestKind.PREFIX_LIST: "prefix list",
    DestKind.SECURITY_GROUP: "security group",
}

Segments = tuple[tuple[str, str], ...]  # (text, label of the id it is, or "")


@dataclass(frozen=True)
class RuleView:
    """A rule as a reviewer reads it: ``tcp 443`` to a destination (with its name), and its description."""

    rule_id: str | None
    what: str
    dest_kind: str
    dest: str
    description: str


@dataclass(frozen=True)
class InternetView:
    """How an internet rule names its destinations: ``pinned`` (today's addresses, /32s) or ``port``
    (any address on these ports), and the DNS names that resolved to them (cut to LIST_LIMIT)."""

    kind: str
    names: tuple[str, ...]
    names_more: int


@dataclass(frozen=True)
class Replacement:
    """A proposed rule shown on the right of the diff: its number, anchor to its evidence, and why."""

    number: int
    anchor: str
    rule: RuleView
    reason: Segments
    also_replaces: tuple[str, ...]
    internet: InternetView | None = None


@dataclass(frozen=True)
class DiffRow:
    """One line of the side-by-side diff: a current rule (or none, for an add) and what it becomes."""

    action: str
    current: RuleView | None
    proposed: tuple[Replacement, ...]
    reason: Segments


@dataclass(frozen=True)
class EvidenceRow:
    """Why one proposed rule exists: the traffic it carries, or the reason it stays without any."""

    number: int
    anchor: str
    action: str
    rule: RuleView
    evidence: Evidence | None
    enis: tuple[str, ...]
    enis_more: int
    destinations: tuple[str, ...]
    destinations_more: int
    note: Segments
    internet: InternetView | None = None


@dataclass(frozen=True)
class GroupView:
    """Everything the template shows for one security group."""

    anchor: str
    group: GroupReport
    counts: Mapping[str, int]
    actions: str
    reasons: tuple[Segments, ...]
    diff: tuple[DiffRow, ...]
    evidence: tuple[EvidenceRow, ...]
    graph: GraphLayout | None
    replies: RepliesFold | None
    evidence_anchor: str
    edge_enis: str
    edge_rows: str


@dataclass(frozen=True)
class FirewallVpcView:
    """One VPC of egress-domains.tf as the DNS section lists it (names cut to DOMAINS_LIMIT)."""

    vpc_id: str
    names: tuple[str, ...]
    names_total: int
    targets: tuple[str, ...]
    targets_total: int
    dropped: tuple[str, ...]
    dropped_total: int
    written: bool


@dataclass(frozen=True)
class DnsView:
    """The DNS section: what the query logs contributed, and what egress-domains.tf enforces."""

    dns: DnsOut
    balanced: bool
    vpcs: tuple[FirewallVpcView, ...]
    all_names: tuple[str, ...]
    all_names_more: int


@dataclass(frozen=True)
class Totals:
    """The header's numbers: actions and coverage over the whole estate."""

    actions: Mapping[str, int]
    coverage: Mapping[str, int]
    unattached: int
    current_rules: int
    proposed_rules: int


def render(recommendation: Recommendation, context: RenderContext) -> Rendered:
    """The report as one HTML file."""
    return Rendered({FILE_NAME: render_html(recommendation)})


def render_html(recommendation: Recommendation) -> str:
    labels = recommendation.labels
    css, js = _asset("report.css"), _asset("report.js")
    groups = [_group_view(group, labels) for group in recommendation.security_groups]
    template = html_environment().get_template(TEMPLATE)
    return template.render(
        rec=recommendation,
        groups=groups,
        totals=_totals(recommendation),
        dns=dns_view(recommendation),
        domains_file=DOMAINS_FILE,
        css=Markup(css),
        js=Markup(js),
        csp=content_security_policy(css, js),
        label=lambda value: labels.get(value, ""),
        segments=lambda text: segments(text, labels),
        human_bytes=human_bytes,
        duration=duration,
        when=when,
        port_text=port_text,
        view=rule_view,
        list_limit=LIST_LIMIT,
    )


def content_security_policy(css: str, js: str) -> str:
    """Nothing may load or run but the page's own inline style and script (by hash): no network at all."""
    return (
        "default-src 'none'; "
        f"style-src '{_sha256(css)}'; "
        f"script-src '{_sha256(js)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _asset(name: str) -> str:
    """A static file inlined into the page; it must not be able to close its own element."""
    text = (templates_dir() / name).read_text(encoding="utf-8")
    if re.search(r"</(?:script|style)", text, re.IGNORECASE):
        raise ValueError(f"{name} must not contain a closing </script> or </style> tag")
    return text


def segments(text: str, labels: Mapping[str, str]) -> Segments:
    """Free text cut around the ids it mentions, so each id can show its Name tag beside it."""
    out: list[tuple[str, str]] = []
    position = 0
    for match in _ID.finditer(text):
        label = labels.get(match.group(0))
        if not label:
            continue
        if match.start() > position:
            out.append((text[position : match.start()], ""))
        out.append((match.group(0), label))
        position = match.end()
    if position < len(text):
        out.append((text[position:], ""))
    return tuple(out)


def human_bytes(count: int) -> str:
    """1,167,889 → ``1.1 MiB``: a reviewer compares magnitudes, the exact count is in the tooltip."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: int) -> str:
    """691,199 s → ``8d 0h``: coverage windows are read in days."""
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {rest // 60}m"


def when(timestamp: str | None) -> str:
    """``2026-11-01T07:10:10Z`` → ``2026-11-01 07:10:10Z`` (easier to scan in a table)."""
    return timestamp.replace("T", " ") if timestamp else "\u2014"


def rule_view(rule: Rule) -> RuleView:
    kind, value = rule.destination
    return RuleView(rule.security_group_rule_id, rule_what(rule), _KIND[kind], value, rule.description or "")


def _group_view(group: GroupReport, labels: Mapping[str, str]) -> GroupView:
    counts: Counter[str] = Counter(change.action for change in group.changes)
    anchor = group.group_id
    edge_enis, edge_rows = _edge_data(group.edges, labels)
    return GroupView(
        anchor=anchor,
        group=group,
        counts={action: counts[action] for action in ACTIONS},
        actions=" ".join(action for action in ACTIONS if counts[action]),
        reasons=tuple(segments(reason, labels) for reason in group.coverage.reasons),
        diff=tuple(_diff_rows(group, anchor, labels)),
        evidence=tuple(_evidence_rows(group, anchor, labels)),
        graph=layout(group, labels, anchor),
        replies=fold_replies(group.edges),
        evidence_anchor=evidence_anchor(anchor),
        edge_enis=edge_enis,
        edge_rows=edge_rows,
    )


def _edge_data(edges: Sequence[EdgeOut], labels: Mapping[str, str]) -> tuple[str, str]:
    """A group's edge table as two data attributes (ENIs with Name tags; one tab-separated line per edge
    naming its ENI by index) that the script turns into rows when the reader opens the table. The table
    is the report's bulk (up to 200 rows per group): as markup it made a 1,000-group page ten times larger.
    The script builds the rows with textContent, so the data is never parsed as markup."""
    enis = sorted({edge.eni for edge in edges})
    index = {eni: i for i, eni in enumerate(enis)}
    eni_lines = "\n".join(f"{_field(eni)}\t{_field(labels.get(eni, ''))}" for eni in enis)
    rows = "\n".join(
        "\t".join(
            (
                str(index[edge.eni]),
                _field(edge.remote),
                _field(labels.get(edge.remote, "")),
                port_text(edge.protocol, edge.port),
                str(edge.records),
                edge.klass,
                edge.confidence,
            )
        )
        for edge in edges
    )
    return Structured(eni_lines), Structured(rows)


def _field(value: str) -> str:
    """One field of the tab/newline-separated edge data: inert (one line, no tab: ``safe_text`` escapes
    both, so the separators stay the renderer's own)."""
    return inline_text(value)


def _proposed_index(group: GroupReport) -> dict[RuleKey, int]:
    return {rule.key(): i for i, rule in enumerate(group.proposed_egress)}


def _diff_rows(group: GroupReport, anchor: str, labels: Mapping[str, str]) -> list[DiffRow]:
    """Pair each current rule with what it becomes. Adds that replace a narrowed rule appear in that
    rule's row (so the reader sees the wide rule and its narrow successors side by side); other adds
    get rows of their own."""
    index = _proposed_index(group)
    adds = {index[c.rule.key()]: c for c in group.changes if c.action == "add" and c.rule.key() in index}
    under_narrow = {i for c in group.changes if c.action == "narrow" for i in c.replaced_by or []}
    rows: list[DiffRow] = []
    for change in group.changes:
        if change.action == "add":
            numbers = [index[change.rule.key()]] if change.rule.key() in index else []
            if numbers and numbers[0] in under_narrow:
                continue  # shown in the row of the rule it replaces
            rows.append(_row(change, None, numbers, adds, group, anchor, labels))
        elif change.action == "narrow":
            rows.append(_row(change, change.rule, change.replaced_by or [], adds, group, anchor, labels))
        elif change.action == "keep":
            numbers = [index[change.rule.key()]] if change.rule.key() in index else []
            rows.append(_row(change, change.rule, numbers, {}, group, anchor, labels))
        else:
            rows.append(_row(change, change.rule, [], {}, group, anchor, labels))
    return rows


def _row(
    change: Change,
    current: Rule | None,
    numbers: Sequence[int],
    adds: Mapping[int, Change],
    group: GroupReport,
    anchor: str,
    labels: Mapping[str, str],
) -> DiffRow:
    proposed = []
    for i in numbers:
        if not 0 <= i < len(group.proposed_egress):
            continue
        add = adds.get(i)
        others = tuple(r for r in (add.replaces or []) if r != change.security_group_rule_id) if add else ()
        reason = segments(add.reason, labels) if add and current is not None else ()
        rule = group.proposed_egress[i]
        proposed.append(
            Replacement(
                i + 1, rule_anchor(anchor, i), rule_view(rule), reason, others, internet_view(rule.evidence)
            )
        )
    return DiffRow(
        change.action,
        rule_view(current) if current else None,
        tuple(proposed),
        segments(change.reason, labels),
    )


def _evidence_rows(group: GroupReport, anchor: str, labels: Mapping[str, str]) -> list[EvidenceRow]:
    """One row per proposed rule; a kept rule without evidence shows the reason it stays."""
    kept = {c.rule.key(): c for c in group.changes if c.action == "keep"}
    rows = []
    for i, rule in enumerate(group.proposed_egress):
        keep = kept.get(rule.key())
        rows.append(_evidence_row(i, rule, keep, anchor, labels))
    return rows


def _evidence_row(
    i: int, rule: ProposedRule, keep: Change | None, anchor: str, labels: Mapping[str, str]
) -> EvidenceRow:
    evidence = rule.evidence
    enis = evidence.enis if evidence else []
    destinations = evidence.destinations if evidence else []
    note = segments(keep.reason, labels) if keep and evidence is None else ()
    return EvidenceRow(
        number=i + 1,
        anchor=rule_anchor(anchor, i),
        action="keep" if keep else "add",
        rule=rule_view(rule),
        evidence=evidence,
        enis=tuple(enis[:LIST_LIMIT]),
        enis_more=max(len(enis) - LIST_LIMIT, 0),
        destinations=tuple(destinations[:LIST_LIMIT]),
        destinations_more=max(len(destinations) - LIST_LIMIT, 0),
        note=note,
        internet=internet_view(evidence),
    )


def internet_view(evidence: Evidence | None) -> InternetView | None:
    """The internet naming of a rule's evidence, or None for a rule that is not to the internet."""
    if evidence is None or evidence.internet is None:
        return None
    names = evidence.names or []
    return InternetView(evidence.internet, tuple(names[:LIST_LIMIT]), max(len(names) - LIST_LIMIT, 0))


def dns_view(recommendation: Recommendation) -> DnsView | None:
    """The DNS section, or None without DNS evidence (then the page is what it was without it)."""
    dns = recommendation.dns
    if dns is None:
        return None
    accounting = dns.accounting
    accounted = accounting.used + accounting.malformed + sum(accounting.filtered.values())
    balanced = accounting.records == accounted
    plan = plan_firewall(recommendation)
    vpcs: list[FirewallVpcView] = []
    if plan is not None:
        for vpc in plan.vpcs:
            names = [d for domain_list in vpc.lists for d in domain_list.domains]
            targets = [d for domain_list in vpc.lists for d in domain_list.cname_targets]
            vpcs.append(_firewall_vpc(vpc.vpc_id, names, targets, [d.name for d in vpc.dropped], True))
        for skipped in plan.skipped:
            vpcs.append(_firewall_vpc(skipped.vpc_id, [], [], [d.name for d in skipped.dropped], False))
    all_names = dns.all_names or []
    return DnsView(
        dns=dns,
        balanced=balanced,
        vpcs=tuple(vpcs),
        all_names=tuple(all_names[:ALL_NAMES_LIMIT]),
        all_names_more=max(len(all_names) - ALL_NAMES_LIMIT, 0),
    )


def _firewall_vpc(
    vpc_id: str, names: Sequence[str], targets: Sequence[str], dropped: Sequence[str], written: bool
) -> FirewallVpcView:
    return FirewallVpcView(
        vpc_id=vpc_id,
        names=tuple(names[:DOMAINS_LIMIT]),
        names_total=len(names),
        targets=tuple(targets[:DOMAINS_LIMIT]),
        targets_total=len(targets),
        dropped=tuple(dropped[:LIST_LIMIT]),
        dropped_total=len(dropped),
        written=written,
    )


def _totals(recommendation: Recommendation) -> Totals:
    groups = recommendation.security_groups
    actions: Counter[str] = Counter(change.action for group in groups for change in group.changes)
    coverage = Counter(group.coverage.status for group in groups)
    return Totals(
        actions={action: actions[action] for action in ACTIONS},
        coverage={status: coverage[status] for status in ("ok", "partial", "none")},
        unattached=sum(group.unattached for group in groups),
        current_rules=sum(len(group.current_egress) for group in groups),
        proposed_rules=sum(len(group.proposed_egress) for group in groups),
    )
