"""The flow graph of one security group as geometry for an inline SVG: ENIs on the left, the
destination:port targets they talk to on the right, one curve per (ENI, target, class).

Why geometry and not markup: the report template draws the SVG with autoescape on, so every label (Name
tags, descriptions — user-controlled) is escaped in the one place that escapes everything else. This
module only decides *where* things go, deterministically (sorted by records, then by key; no hashing
order, no randomness), so the same recommendation gives the same picture byte for byte.

Readability bound: at most ``MAX_ENIS`` ENI nodes and ``MAX_TARGETS`` target nodes (about 50 in all);
beyond that the busiest are drawn and the rest fold into one "+N more (K records)" node per side, whose
curves carry the folded records.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sgadvisor.models import EdgeOut

MAX_ENIS = 12
MAX_TARGETS = 38
CLASSES = ("initiated", "reply", "unknown")

_WIDTH = 960
ENI_BOX = (250, 32)  # width, height: report.css sizes the rects to match
TARGET_BOX = (300, 20)
_NODE_W_LEFT = ENI_BOX[0]
_NODE_W_RIGHT = TARGET_BOX[0]
_ROW_LEFT = 40
_ROW_RIGHT = 26
_PAD = 12
_MAX_STROKE = 9.0
_MAX_TEXT = 38
_MORE = "\x00more"  # cannot collide with a real ENI id or address


@dataclass(frozen=True)
class Node:
    """One box (sized by the stylesheet per side) at (x, top): its text, and a tooltip only where the box
    does not already show everything (clipped text, a fold, a Name tag of an address)."""

    x: int
    top: int
    width: int
    height: int
    text: str
    subtext: str
    tooltip: str
    records: int
    summary: bool
    side: str  # "eni" | "target"

    @property
    def middle(self) -> float:
        return self.top + self.height / 2


@dataclass(frozen=True)
class Link:
    """One curve from an ENI box to a target box, its width scaled by records."""

    path: str
    width: str
    klass: str
    records: int
    tooltip: str
    summary: bool


@dataclass(frozen=True)
class GraphLayout:
    """Everything the template needs to draw the picture, plus what was folded away."""

    width: int
    height: int
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    edges_in_report: int
    hidden_enis: int
    hidden_targets: int
    hidden_records: int
    edges_omitted: int


@dataclass(frozen=True)
class _Side:
    """The keys kept on one side (in drawing order), the folded ones, and their records."""

    kept: list[str]
    folded: set[str]
    folded_records: int


def target_key(edge: EdgeOut) -> str:
    """The right-hand node of an edge: remote address and service port (ICMP has no port)."""
    return f"{edge.remote} {port_text(edge.protocol, edge.port)}"


def port_text(protocol: str, port: int) -> str:
    """``tcp/443``; ICMP records carry no type/code in flow logs, so just ``icmp``; port 0 of tcp/udp is
    the bucket that edges put ephemeral ports in (DESIGN §4.2)."""
    if protocol in ("icmp", "icmpv6") or protocol == "-1":
        return protocol
    if port == 0 and protocol in ("tcp", "udp"):
        return f"{protocol}/ephemeral"
    return f"{protocol}/{port}"


def layout(edges: Sequence[EdgeOut], labels: Mapping[str, str], edges_omitted: int = 0) -> GraphLayout | None:
    """The picture of one group's edges, or None when there is nothing to draw."""
    if not edges:
        return None
    eni_records = _totals(edges, lambda e: e.eni)
    target_records = _totals(edges, target_key)
    candidates = {target_key(e) for e in edges if e.klass != "reply"}
    left = _choose(eni_records, MAX_ENIS, set(eni_records))
    right = _choose(target_records, MAX_TARGETS, candidates)
    flows = _aggregate(edges, left, right)
    right = _order_by_barycentre(right, left, flows)
    height = max(len(left.kept) * _ROW_LEFT, len(right.kept) * _ROW_RIGHT) + 2 * _PAD
    left_nodes = _column(left, eni_records, labels, height, "eni")
    right_nodes = _column(right, target_records, labels, height, "target")
    links = _links(flows, left_nodes, right_nodes, labels)
    return GraphLayout(
        width=_WIDTH,
        height=height,
        nodes=(*left_nodes.values(), *right_nodes.values()),
        links=links,
        edges_in_report=len(edges),
        hidden_enis=len(left.folded),
        hidden_targets=len(right.folded),
        hidden_records=sum(r for (eni, target, _), r in flows.items() if _MORE in (eni, target)),
        edges_omitted=edges_omitted,
    )


def _totals(edges: Sequence[EdgeOut], key: Callable[[EdgeOut], str]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for edge in edges:
        totals[key(edge)] += edge.records
    return dict(totals)


def _choose(records: Mapping[str, int], limit: int, first: set[str]) -> _Side:
    """The busiest ``limit`` keys, or the busiest ``limit - 1`` and one fold for the rest. Keys in
    ``first`` go before the others whatever their volume: a target reached only by replies can never
    become a rule, so it is the first to fold when the picture is full."""
    ranked = sorted(records, key=lambda k: (k not in first, -records[k], k))
    if len(ranked) <= limit:
        return _Side(ranked, set(), 0)
    kept, folded = ranked[: limit - 1], ranked[limit - 1 :]
    return _Side([*kept, _MORE], set(folded), sum(records[k] for k in folded))


def _aggregate(edges: Sequence[EdgeOut], left: _Side, right: _Side) -> dict[tuple[str, str, str], int]:
    """Records per (ENI node, target node, class), folded nodes merged into their "+N more" node."""
    flows: dict[tuple[str, str, str], int] = defaultdict(int)
    for edge in edges:
        eni = _MORE if edge.eni in left.folded else edge.eni
        target = target_key(edge)
        target = _MORE if target in right.folded else target
        flows[(eni, target, edge.klass)] += edge.records
    return dict(flows)


def _order_by_barycentre(right: _Side, left: _Side, flows: Mapping[tuple[str, str, str], int]) -> _Side:
    """Place each target near the ENIs that talk to it (one barycentre pass): fewer crossings, same
    determinism (ties broken by the busiest-first rank). The fold stays last."""
    rank = {key: i for i, key in enumerate(left.kept)}
    weight: dict[str, float] = defaultdict(float)
    moment: dict[str, float] = defaultdict(float)
    for (eni, target, _), records in flows.items():
        weight[target] += records
        moment[target] += records * rank[eni]
    real = [k for k in right.kept if k != _MORE]
    order = {k: i for i, k in enumerate(real)}
    real.sort(key=lambda k: (moment[k] / weight[k] if weight[k] else 0.0, order[k]))
    return _Side([*real, *([_MORE] if _MORE in right.kept else [])], right.folded, right.folded_records)


def _column(
    chosen: _Side, records: Mapping[str, int], labels: Mapping[str, str], height: int, kind: str
) -> dict[str, Node]:
    """Boxes spread evenly down one side, in the chosen order."""
    width = _NODE_W_LEFT if kind == "eni" else _NODE_W_RIGHT
    box = ENI_BOX[1] if kind == "eni" else TARGET_BOX[1]
    x = _PAD if kind == "eni" else _WIDTH - _PAD - width
    slot = (height - 2 * _PAD) / len(chosen.kept)
    nodes: dict[str, Node] = {}
    for i, key in enumerate(chosen.kept):
        y = _PAD + slot * (i + 0.5)
        nodes[key] = _node(key, chosen, records, labels, kind, x, y, width, box)
    return nodes


def _node(
    key: str,
    chosen: _Side,
    records: Mapping[str, int],
    labels: Mapping[str, str],
    kind: str,
    x: int,
    y: float,
    width: int,
    height: int,
) -> Node:
    text, subtext, tooltip = _node_text(key, chosen, records, labels, kind)
    count = chosen.folded_records if key == _MORE else records[key]
    return Node(x, round(y - height / 2), width, height, text, subtext, tooltip, count, key == _MORE, kind)


def _node_text(
    key: str, chosen: _Side, records: Mapping[str, int], labels: Mapping[str, str], kind: str
) -> tuple[str, str, str]:
    """(first line, second part, tooltip or "") of a box: ENI id and Name tag, or address and port."""
    if key == _MORE:
        noun = "ENIs" if kind == "eni" else "destinations"
        text = f"+{len(chosen.folded)} more {noun}"
        sub = f"{chosen.folded_records:,} records"
        return text, sub, f"{text} ({sub})"
    if kind == "eni":
        label = labels.get(key, "")
        clipped = _clip(label)
        return key, clipped, f"{key} ({label}): {records[key]:,} records" if clipped != label else ""
    remote, _, port = key.rpartition(" ")
    label = labels.get(remote, "")
    clipped = _clip(remote)
    if label or clipped != remote:
        return clipped, port, f"{remote} ({label}) {port}" if label else key
    return clipped, port, ""


def _links(
    flows: Mapping[tuple[str, str, str], int],
    left: Mapping[str, Node],
    right: Mapping[str, Node],
    labels: Mapping[str, str],
) -> tuple[Link, ...]:
    """Curves drawn busiest first, so thin ones stay visible on top of thick ones. Integer coordinates:
    a 1,000-group report carries tens of thousands of them."""
    busiest = max(flows.values())
    out = []
    for (eni, target, klass), records in sorted(flows.items(), key=lambda kv: (-kv[1], kv[0])):
        a, b = left[eni], right[target]
        offset = (CLASSES.index(klass) - 1) * 3 if klass in CLASSES else 0
        x1, y1 = a.x + a.width, round(a.middle + offset)
        x2, y2 = b.x, round(b.middle + offset)
        mid = (x1 + x2) // 2
        path = f"M{x1} {y1}C{mid} {y1} {mid} {y2} {x2} {y2}"
        width = 1 + (_MAX_STROKE - 1) * math.sqrt(records / busiest) if busiest else 1.0
        source = a.text if a.summary else labels.get(eni) or eni
        target_name = b.text if b.summary else f"{b.text} {b.subtext}"
        tooltip = f"{source} \u2192 {target_name}: {records:,} records, {klass}"
        out.append(
            Link(path, f"{width:.1f}".removesuffix(".0"), klass, records, tooltip, a.summary or b.summary)
        )
    return tuple(out)


def _clip(text: str) -> str:
    """Keep a box's text inside the box; the tooltip carries the whole of it."""
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "\u2026"
