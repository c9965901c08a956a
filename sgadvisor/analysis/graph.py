"""The observed ENI → destination:port edges of each group's members, as the report lists them.

The report shows, per group, its members' busiest classified egress edges (replies and unknown ones
included: they are evidence too). They are chosen in the column engine, in one sort of the edge table:
a graph object with a node and an edge per flow cost a gigabyte at a million edges, for a question that is
a top-k per group. The analysis keeps it to itself: renderers see only the Recommendation model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from sgadvisor.inventory.model import Inventory

_COLUMNS = ["interface_id", "remote_addr", "protocol", "remote_port", "records", "class", "confidence"]
# The report's order: busiest first, then by ENI, peer, protocol, port and class (then the edge table's).
_ORDER = ["records", "interface_id", "remote_addr", "protocol", "remote_port", "class"]


@dataclass(frozen=True, slots=True)
class FlowEdge:
    eni: str
    remote: str
    protocol: int
    port: int
    records: int
    klass: str
    confidence: str


def busiest_by_group(
    classified: pl.DataFrame, inventory: Inventory, group_ids: Iterable[str], limit: int
) -> dict[str, list[FlowEdge]]:
    """Per group of ``group_ids``, the ``limit`` busiest classified egress edges of its current members
    (deterministic order: records descending, then ENI, peer, protocol, port and class; equal edges in
    the table's order)."""
    wanted = list(dict.fromkeys(group_ids))
    pairs = [(gid, eni) for gid in wanted for eni in inventory.members.get(gid, ())]
    out: dict[str, list[FlowEdge]] = {gid: [] for gid in wanted}
    if not pairs or classified.height == 0:
        return out
    membership = pl.DataFrame(
        {"_group": [g for g, _ in pairs], "interface_id": [e for _, e in pairs]},
        schema={"_group": pl.String, "interface_id": pl.String},
    )
    # One stable sort of the edges, each ranked; a group's busiest are among each member's ``limit``
    # busiest, so the rest is dropped before the edges are repeated once per group of their ENI.
    ranked = (
        classified.select(_COLUMNS)
        .sort(_ORDER, descending=[True, False, False, False, False, False], maintain_order=True)
        .with_row_index("_rank")
        .filter(pl.int_range(pl.len()).over("interface_id") < limit)
    )
    chosen = (
        membership.join(ranked, on="interface_id", how="inner")
        .sort("_group", "_rank")
        .filter(pl.int_range(pl.len()).over("_group") < limit)
    )
    for gid, eni, remote, protocol, port, records, klass, confidence in chosen.select(
        "_group", *_COLUMNS
    ).iter_rows():
        out[gid].append(FlowEdge(eni, remote, protocol, port, records, klass, confidence))
    return out
