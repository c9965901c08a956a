"""*The flows* of DESIGN §6, selected exactly as ``recommend`` selects them: accepted egress edges of the
in-scope, non-infrastructure ENIs of the inventory, classified as not a reply, with at least
``--min-confidence`` and ``--min-records``. The check is defined through these same flows, which is what
makes "apply a recommendation, check against it with the same flows" report no drift.
"""

from __future__ import annotations

from sgadvisor.analysis.attribution import Attribution
from sgadvisor.analysis.flows import Flow
from sgadvisor.analysis.recommend import AnalysisOptions
from sgadvisor.analysis.recommend import select_flows as select_recommend_flows
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.inventory.model import Inventory


def select_flows(
    flows: FlowEdges, inventory: Inventory, options: AnalysisOptions, attribution: Attribution | None = None
) -> list[Flow]:
    _, chosen, _ = select_recommend_flows(flows, inventory, options, attribution)
    return chosen
