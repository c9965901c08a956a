"""The flow graph of one security group as geometry for an inline SVG, drawn in identities: the group on
the left, and on the right one box per proposed egress rule — its destination identity and port (``db
(sg-0abc…) tcp 5432``, a prefix list's name, a CIDR, ``internet`` for 0.0.0.0/0) — with one curve from the
group to each box, its width scaled by the rule's evidence records. Each curve and box links to the rule's
row in the group's evidence table (``rule_anchor``), so a reader goes from the picture to the evidence.

Built from the Recommendation alone (``GroupReport.proposed_egress`` and ``GroupReport.edges``):

- a kept rule without evidence (coverage is not ok, a pin, …) is drawn — not omitted — as a dashed curve
  of minimal width with no records, still linked to its row, which says why it stays;
- reply edges (class ``reply``: state-tracked answers to connections the clients opened) never become
  boxes of their own: they fold into one "replies to N clients" box, hidden by default (report.css shows
  it when the reader ticks the group's "show replies" box), and ``fold_replies`` lists the busiest of them
  for a ``<details>`` under the graph;
- initiated/unknown edges that no proposed rule carries (by protocol, port and destination: a CIDR that
  contains the address, or a group / prefix list whose evidence lists it) fold into one "other" box.

Why geometry and not markup: the report template draws the SVG with autoescape on, so every label (Name
tags, group names — user-controlled) is escaped in the one place that escapes everything else. This module
only decides *where* things go, deterministically (rules sorted by evidence records, then by their place in
``proposed_egress``; no hashing order, no randomness), so the same recommendation gives the same picture
byte for byte.

Readability bound: at most ``MAX_RULES`` rule boxes; beyond that the busiest ``MAX_RULES - 1`` are drawn and
the rest fold into one "+N more rules" box (linked to the evidence table), whose curve carries their
records. With the "other" and "replies" boxes that is at most 40 boxes on the right and one on the left.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sgadvisor.models import EdgeOut, GroupReport, ProposedRule
from sgadvisor.rules import DestKind, Rule, canonical_protocol

MAX_RULES = 38
REPLY_LIST_LIMIT = 10  # reply edges listed under the graph before "+N more"

_WIDTH = 960
SOURCE_WIDTH = 230  # the group's box; its height follows the column (set as attributes)
TARGET_BOX = (360, 20)  # width, height: report.css sizes the rects to match
_ROW = 26
_PAD = 12
_MIN_SOURCE = 36
_MAX_STROKE = 9.0
_MAX_TEXT = 36  # characters of a box's first line (mono)
_MAX_SUB = 18  # characters of a target box's right-aligned port text
_MAX_SOURCE_TEXT = 30
_INTERNET = {"0.0.0.0/0": "internet", "::/0": "internet (IPv6)"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Node:
    """One box at (x, top): its text, and a tooltip where the box does not show everything (clipped
    text, a fold). ``kind``: ``source`` (the group), ``rule`` (a proposed rule with evidence), ``kept``
    (a rule without evidence), ``more`` (folded rules), ``other`` (edges no rule carries), ``reply``
    (the folded replies). ``href`` is ``#`` and the anchor of the row the box stands for, or empty."""

    x: int
    top: int
    width: int
    height: int
    text: str
    subtext: str
    tooltip: str
    records: int
    kind: str
    href: str

    @property
    def side(self) -> str:
        return "source" if self.kind == "source" else "target"

    @property
    def summary(self) -> bool:
        return self.kind in ("more", "other", "reply")

    @property
    def middle(self) -> float:
        return self.top + self.height / 2


@dataclass(frozen=True)
class Link:
    """One curve from the group's box to a target box, its width scaled by records; ``kind`` as the
    target's, ``href`` as the target's."""

    path: str
    width: str
    kind: str
    records: int
    tooltip: str
    href: str


@dataclass(frozen=True)
class RepliesFold:
    """A group's reply edges folded into one: how many clients and records, and the busiest edges."""

    clients: int
    edges: int
    records: int
    listed: tuple[EdgeOut, ...]
    more: int


@dataclass(frozen=True)
class GraphLayout:
    """Everything the template needs to draw the picture, plus what was folded away."""

    width: int
    height: int
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    rules: int
    hidden_rules: int
    hidden_records: int
    kept_without_traffic: int
    other_edges: int
    other_records: int
    replies: RepliesFold | None
    edges_in_report: int
    edges_omitted: int


@dataclass(frozen=True)
class _Target:
    """A right-hand box before placement: its texts, records, kind, anchor and the link's tooltip."""

    text: str
    subtext: str
    tooltip: str
    records: int
    kind: str
    href: str
    link_tooltip: str


def rule_anchor(anchor: str, index: int) -> str:
    """The id of proposed rule ``index``'s row in the evidence table of the group whose anchor is given."""
    return f"{anchor}-p{index + 1}"


def evidence_anchor(anchor: str) -> str:
    """The id of a group's evidence table (where the folded "+N more rules" box points)."""
    return f"{anchor}-evidence"


def port_text(protocol: str, port: int) -> str:
    """``tcp/443``; ICMP records carry no type/code in flow logs, so just ``icmp``; port 0 of tcp/udp is
    the bucket that edges put ephemeral ports in (DESIGN §4.2)."""
    if protocol in ("icmp", "icmpv6") or protocol == "-1":
        return protocol
    if port == 0 and protocol in ("tcp", "udp"):
        return f"{protocol}/ephemeral"
    return f"{protocol}/{port}"


def rule_what(rule: Rule) -> str:
    """Protocol and ports as a reviewer says them: ``tcp 443``, ``tcp 1024-65535``, ``all traffic``."""
    protocol = rule.ip_protocol
    if protocol == "-1":
        return "all traffic"
    if protocol in ("icmp", "icmpv6"):
        return _icmp_what(protocol, rule.from_port, rule.to_port)
    if protocol not in ("tcp", "udp"):
        return f"protocol {protocol}"
    low, high = rule.from_port, rule.to_port
    if low is None or (low in (0, -1) and high in (65535, -1)):
        return f"{protocol} all ports"
    return f"{protocol} {low}" if low == high else f"{protocol} {low}\u2013{high}"


def _icmp_what(protocol: str, icmp_type: int | None, code: int | None) -> str:
    if icmp_type in (None, -1):
        return f"{protocol} all types"
    return f"{protocol} type {icmp_type}" + ("" if code in (None, -1) else f" code {code}")


def identity(rule: Rule, labels: Mapping[str, str]) -> str:
    """A rule's destination as a reviewer names it, in full: ``db (sg-0abc…)``, a prefix list's name
    with its id, a CIDR, ``internet (0.0.0.0/0)``."""
    kind, value = rule.destination
    if kind in (DestKind.SECURITY_GROUP, DestKind.PREFIX_LIST):
        name = labels.get(value, "")
        return f"{name} ({value})" if name else value
    if value in _INTERNET:
        return f"{_INTERNET[value]} ({value})"
    return value


def _identity_text(rule: Rule, labels: Mapping[str, str]) -> str:
    """The box's first line: the group's name with its id (the name clipped first), the prefix list's
    name, the CIDR, or ``internet``."""
    kind, value = rule.destination
    name = labels.get(value, "") if kind in (DestKind.SECURITY_GROUP, DestKind.PREFIX_LIST) else ""
    if kind == DestKind.SECURITY_GROUP and name:
        room = max(_MAX_TEXT - len(value) - 3, 8)
        return _clip(f"{_clip(name, room)} ({value})")
    if name:
        return _clip(name)
    return _clip(_INTERNET.get(value, value))


def fold_replies(edges: Sequence[EdgeOut], limit: int = REPLY_LIST_LIMIT) -> RepliesFold | None:
    """A group's reply edges as one fold, the busiest ``limit`` listed; None when there are none."""
    replies = sorted(
        (e for e in edges if e.klass == "reply"),
        key=lambda e: (-e.records, e.eni, e.remote, e.protocol, e.port),
    )
    if not replies:
        return None
    return RepliesFold(
        clients=len({e.remote for e in replies}),
        edges=len(replies),
        records=sum(e.records for e in replies),
        listed=tuple(replies[:limit]),
        more=max(len(replies) - limit, 0),
    )


def uncarried(edges: Sequence[EdgeOut], rules: Sequence[ProposedRule]) -> list[EdgeOut]:
    """The initiated/unknown edges that no proposed rule carries: none permits their protocol, port and
    destination (a CIDR containing the address, or a group / prefix list whose evidence lists it)."""
    carriers = [_Carrier.of(rule) for rule in rules]
    out = []
    for edge in edges:
        if edge.klass == "reply":
            continue
        try:
            protocol = canonical_protocol(edge.protocol)
        except ValueError:
            protocol = ""
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(edge.remote)
        except ValueError:
            address = None
        if not any(c.carries(protocol, edge.port, edge.remote, address) for c in carriers):
            out.append(edge)
    return out


@dataclass(frozen=True)
class _Carrier:
    """What one proposed rule permits, as far as the model tells: protocol, ports, and its CIDR or the
    addresses its evidence lists (a group's or a prefix list's members are not in the model)."""

    protocol: str
    low: int  # tcp/udp ports; a rule without ports (all traffic) has all of them
    high: int
    network: Network | None
    destinations: frozenset[str]

    @classmethod
    def of(cls, rule: ProposedRule) -> _Carrier:
        kind, value = rule.destination
        network = None
        if kind in (DestKind.CIDR_IPV4, DestKind.CIDR_IPV6):
            try:
                network = ipaddress.ip_network(value, strict=False)
            except ValueError:
                network = None
        seen = frozenset(rule.evidence.destinations) if rule.evidence else frozenset()
        low = 0 if rule.from_port is None else rule.from_port
        high = 65535 if rule.to_port is None else rule.to_port
        return cls(rule.ip_protocol, low, high, network, seen)

    def carries(
        self,
        protocol: str,
        port: int,
        remote: str,
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    ) -> bool:
        if not protocol or self.protocol not in ("-1", protocol):
            return False
        if protocol in ("tcp", "udp") and not self.low <= port <= self.high:
            return False
        if remote in self.destinations:
            return True
        return self.network is not None and address is not None and address in self.network


def layout(group: GroupReport, labels: Mapping[str, str], anchor: str | None = None) -> GraphLayout | None:
    """The picture of one group, or None when it has neither proposed rules nor traffic other than
    replies (the replies are still listed by ``fold_replies``). ``anchor``: the group's anchor in the page
    (its id by default), from which the rows' anchors are made."""
    anchor = group.group_id if anchor is None else anchor
    others = uncarried(group.edges, group.proposed_egress)
    if not group.proposed_egress and not others:
        return None
    source_name = labels.get(group.group_id) or group.name_tag or group.group_name
    targets, hidden_rules, hidden_records = _rule_targets(group, labels, anchor, source_name)
    other_records = sum(e.records for e in others)
    if others:
        text = f"other traffic: {len(others)} edge{'s' if len(others) != 1 else ''}"
        note = (
            f"{len(others)} initiated/unknown edges ({other_records:,} records) that no proposed rule "
            "carries: see \u201cWould be blocked\u201d, \u201cNot permitted now\u201d and the edge table"
        )
        targets.append(_Target(text, f"{other_records:,} records", note, other_records, "other", "", note))
    replies = fold_replies(group.edges)
    if replies:
        text = f"replies to {replies.clients} client{'s' if replies.clients != 1 else ''}"
        note = (
            f"replies to {replies.clients} clients ({replies.records:,} records in {replies.edges} edges): "
            "answers to connections the clients opened, which state tracking lets out \u2014 not rules"
        )
        targets.append(
            _Target(text, f"{replies.records:,} records", note, replies.records, "reply", "", note)
        )
    height = max(len(targets) * _ROW, _MIN_SOURCE + 4) + 2 * _PAD
    source = _source_node(group, source_name, height)
    nodes = _target_nodes(targets, height)
    return GraphLayout(
        width=_WIDTH,
        height=height,
        nodes=(source, *nodes),
        links=_links(source, nodes, targets),
        rules=len(group.proposed_egress),
        hidden_rules=hidden_rules,
        hidden_records=hidden_records,
        kept_without_traffic=sum(rule.evidence is None for rule in group.proposed_egress),
        other_edges=len(others),
        other_records=other_records,
        replies=replies,
        edges_in_report=len(group.edges),
        edges_omitted=group.edges_omitted,
    )


def _records(rule: ProposedRule) -> int:
    return rule.evidence.records if rule.evidence else 0


def _rule_targets(
    group: GroupReport, labels: Mapping[str, str], anchor: str, source_name: str
) -> tuple[list[_Target], int, int]:
    """One target per proposed rule, busiest first (rules without evidence last), the quietest folded
    into "+N more rules" beyond MAX_RULES; with how many rules and records were folded."""
    ranked = sorted(enumerate(group.proposed_egress), key=lambda item: (-_records(item[1]), item[0]))
    shown, folded = (
        (ranked, []) if len(ranked) <= MAX_RULES else (ranked[: MAX_RULES - 1], ranked[MAX_RULES - 1 :])
    )
    targets = []
    for index, rule in shown:
        what = rule_what(rule)
        full = identity(rule, labels)
        text, sub = _identity_text(rule, labels), _clip(what, _MAX_SUB)
        records = _records(rule)
        if rule.evidence is not None:
            detail = f"{records:,} records, {rule.evidence.confidence} confidence"
        else:
            detail = "kept without traffic in the window (its row says why)"
        link = f"{source_name} \u2192 {full} {what}: {detail}; rule #{index + 1}"
        tooltip = f"{full} {what}" if (text, sub) != (full, what) else ""
        kind = "rule" if rule.evidence is not None else "kept"
        targets.append(_Target(text, sub, tooltip, records, kind, "#" + rule_anchor(anchor, index), link))
    if folded:
        records = sum(_records(rule) for _, rule in folded)
        text = f"+{len(folded)} more rules"
        note = f"{text} ({records:,} records): see the evidence table"
        href = "#" + evidence_anchor(anchor)
        targets.append(_Target(text, f"{records:,} records", note, records, "more", href, note))
    return targets, len(folded), sum(_records(rule) for _, rule in folded)


def _source_node(group: GroupReport, name: str, height: int) -> Node:
    """The group's box, centred on the left, half as tall as the column of targets (so the curves fan
    out from it without crossing)."""
    inner = height - 2 * _PAD
    box = min(inner, max(_MIN_SOURCE, round(inner * 0.5)))
    enis = group.coverage.enis
    sub = f"{group.group_id} \u00b7 {enis} ENI{'s' if enis != 1 else ''}"
    text, subtext = _clip(name, _MAX_SOURCE_TEXT), _clip(sub, _MAX_SOURCE_TEXT + 4)
    tooltip = f"{name} ({sub})" if (text, subtext) != (name, sub) else ""
    top = _PAD + (inner - box) // 2
    return Node(_PAD, top, SOURCE_WIDTH, box, text, subtext, tooltip, 0, "source", "")


def _target_nodes(targets: Sequence[_Target], height: int) -> tuple[Node, ...]:
    """Boxes spread evenly down the right side, in the given order."""
    width, box = TARGET_BOX
    x = _WIDTH - _PAD - width
    slot = (height - 2 * _PAD) / len(targets)
    nodes = []
    for i, t in enumerate(targets):
        y = _PAD + slot * (i + 0.5)
        nodes.append(
            Node(x, round(y - box / 2), width, box, t.text, t.subtext, t.tooltip, t.records, t.kind, t.href)
        )
    return tuple(nodes)


def _links(source: Node, nodes: Sequence[Node], targets: Sequence[_Target]) -> tuple[Link, ...]:
    """Curves leaving the group's box at points spread down its right edge in the targets' order, drawn
    busiest first so thin ones stay visible on top of thick ones. Integer coordinates: a 1,000-group
    report carries tens of thousands of them."""
    busiest = max((t.records for t in targets if t.kind != "reply"), default=0)  # replies: hidden
    x1 = source.x + source.width
    drawn = []
    for i, (node, target) in enumerate(zip(nodes, targets, strict=True)):
        y1 = round(source.top + source.height * (i + 0.5) / len(nodes))
        x2, y2 = node.x, round(node.middle)
        mid = (x1 + x2) // 2
        path = f"M{x1} {y1}C{mid} {y1} {mid} {y2} {x2} {y2}"
        share = min(target.records / busiest, 1.0) if busiest else 0.0
        width = 1 + (_MAX_STROKE - 1) * math.sqrt(share)
        link = Link(
            path,
            f"{width:.1f}".removesuffix(".0"),
            target.kind,
            target.records,
            target.link_tooltip,
            target.href,
        )
        drawn.append((i, link))
    drawn.sort(key=lambda item: (-item[1].records, item[0]))
    return tuple(link for _, link in drawn)


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    """Keep a box's text inside the box; the tooltip carries the whole of it."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
