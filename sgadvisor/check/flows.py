"""*The flows* of DESIGN §6, selected exactly as ``recommend`` selects them: accepted egress edges of the
in-scope, non-infrastructure ENIs of the inventory, classified as not a reply, with at least
``--min-confidence`` and ``--min-records``. The check is defined through these same flows, which is what
makes "apply a recommendation, check against it with the same flows" report no drift.
"""

from __future__ import annotations

import polars as pl

from sgadvisor.analysis.direction import classify_edges
from sgadvisor.analysis.flows import Flow, edges_to_flows, iter_flows
from sgadvisor.analysis.recommend import AnalysisOptions
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.inventory.model import Inventory


def select_flows(flows: FlowEdges, inventory: Inventory, options: AnalysisOptions) -> list[Flow]:
    in_scope = options.scope.groups_in(inventory)
    scope_enis = {eni for gid in in_scope for eni in inventory.members.get(gid, ())}
    known = set(inventory.interfaces)
    infra = {eni for eni, itf in inventory.interfaces.items() if itf.is_infrastructure}
    edges_known = flows.edges.filter(pl.col("interface_id").is_in(sorted(known)))
    classified = classify_edges(edges_known, options.ephemeral)
    analysed = classified.filter(pl.col("interface_id").is_in(sorted(scope_enis - infra)))
    candidates = iter_flows(edges_to_flows(analysed.filter(pl.col("class") != "reply")))
    return [
        flow
        for flow in candidates
        if flow.confidence.rank >= options.min_confidence.rank and flow.records >= options.min_records
    ]
