"""The estate as a graph: ENIs, security groups, prefix lists and external peers as nodes; group
membership, current egress rules and observed src → dst:port flows as edges (networkx).

The graph answers the questions the report asks per group — which member sends what to whom, and
whether a peer is another ENI of the estate, a prefix list's range, or the outside world — and it stays
inside the analysis: renderers see only the Recommendation model.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx
import polars as pl

from sgadvisor.inventory.model import Inventory

Node = tuple[str, str]  # (kind, id): ("eni", "eni-…"), ("sg", "sg-…"), ("pl", "pl-…"), ("peer", "10.0.2.15")


@dataclass(frozen=True, slots=True)
class FlowEdge:
    eni: str
    remote: str
    protocol: int
    port: int
    records: int
    klass: str
    confidence: str


def build_graph(
    classified: pl.DataFrame, inventory: Inventory, flows_per_eni: int | None = None
) -> nx.MultiDiGraph[Node]:
    """Nodes for every ENI, group and prefix list of the inventory and every observed peer; edges for
    membership (sg → eni), current egress rules (sg → destination) and classified egress flows
    (each ENI's ``flows_per_eni`` busiest only, when given)."""
    graph: nx.MultiDiGraph[Node] = nx.MultiDiGraph()
    for gid, sg in inventory.groups.items():
        graph.add_node(("sg", gid), name=sg.group_name)
        for rule in sg.egress:
            graph.add_edge(
                ("sg", gid), _rule_target(rule.kind.value, rule.value), kind="rule", rule=rule.key()
            )
    for pid, plist in inventory.prefix_lists.items():
        graph.add_node(("pl", pid), name=plist.name)
    for eni, itf in inventory.interfaces.items():
        graph.add_node(("eni", eni), type=itf.interface_type)
        for gid in itf.group_ids:
            graph.add_edge(("sg", gid), ("eni", eni), kind="member")
    owners = inventory.owner_of_address
    columns = ["interface_id", "remote_addr", "protocol", "remote_port", "records", "class", "confidence"]
    if flows_per_eni is not None:
        # A group's busiest flows are among its members' busiest: the rest need not be in memory.
        classified = classified.sort(
            ["records", *columns[:4], "class"], descending=[True, False, False, False, False, False]
        ).filter(pl.int_range(pl.len()).over("interface_id") < flows_per_eni)
    for eni, remote, protocol, port, records, klass, confidence in classified.select(columns).iter_rows():
        target: Node = ("eni", owners[remote]) if remote in owners else ("peer", remote)
        graph.add_edge(
            ("eni", eni),
            target,
            kind="flow",
            flow=FlowEdge(eni, remote, protocol, port, records, klass, confidence),
        )
    return graph


def _rule_target(kind: str, value: str) -> Node:
    if kind == "referenced_security_group_id":
        return ("sg", value)
    if kind == "prefix_list_id":
        return ("pl", value)
    return ("peer", str(ipaddress.ip_network(value)))


def members(graph: nx.MultiDiGraph[Node], group_id: str) -> list[str]:
    return sorted(
        target[1]
        for _, target, data in graph.out_edges(("sg", group_id), data=True)
        if data.get("kind") == "member"
    )


def member_flows(graph: nx.MultiDiGraph[Node], group_id: str) -> Iterator[FlowEdge]:
    """Every observed egress flow of the group's members."""
    for eni in members(graph, group_id):
        for _, _, data in graph.out_edges(("eni", eni), data=True):
            if data.get("kind") == "flow":
                yield data["flow"]


def busiest_flows(graph: nx.MultiDiGraph[Node], group_id: str, limit: int) -> tuple[list[FlowEdge], int]:
    """The group's ``limit`` busiest flows (deterministic order) and how many were left out."""
    flows = sorted(
        member_flows(graph, group_id),
        key=lambda f: (-f.records, f.eni, f.remote, f.protocol, f.port, f.klass),
    )
    return flows[:limit], max(len(flows) - limit, 0)
