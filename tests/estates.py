"""Hypothesis strategies for whole estates: groups with rules, ENIs with several groups, flow edges.

Small address and port universes keep the invariant checks exhaustive: every address, port and protocol
that appears anywhere (plus the boundaries next to them) is a probe point.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import polars as pl
from hypothesis import strategies as st

from sgadvisor.accounting import InputAccounting
from sgadvisor.flowlogs.edges import COVERAGE_SCHEMA, EDGE_KEY, EDGE_SCHEMA, FlowEdges, Window
from sgadvisor.flowlogs.spans import SPAN_SCHEMA
from sgadvisor.inventory.history import EniHistories, EniHistory, EniState
from sgadvisor.inventory.model import FlowLogConfig, Interface, Inventory, PrefixList, SecurityGroup, SgRule
from sgadvisor.rules import DestKind

T0 = 1_793_491_200
WINDOW = Window(T0, T0 + 8 * 86400)
S3_LIST = "pl-0s3"
S3_ENTRIES = ("52.0.0.0/30", "52.0.1.0/30")
EXTERNAL = ["52.0.0.1", "52.0.0.2", "52.0.1.1", "198.51.100.7", "198.51.100.8", "2001:db8::7"]
GONE_GROUP = "sg-gone"  # held by former ENIs only, absent from the inventory
PORTS = [22, 53, 123, 443, 5432, 8000, 8001, 8080, 50051]


@dataclass(frozen=True)
class RuleSpec:
    proto: str
    low: int | None
    high: int | None
    kind: DestKind
    value: str  # for SECURITY_GROUP: index of the group as text


_RULE_PALETTE = [
    RuleSpec("-1", None, None, DestKind.CIDR_IPV4, "0.0.0.0/0"),
    RuleSpec("-1", None, None, DestKind.CIDR_IPV6, "::/0"),
    RuleSpec("tcp", 443, 443, DestKind.CIDR_IPV4, "0.0.0.0/0"),
    RuleSpec("tcp", 443, 443, DestKind.PREFIX_LIST, S3_LIST),
    RuleSpec("tcp", 0, 65535, DestKind.CIDR_IPV4, "10.0.0.0/24"),
    RuleSpec("tcp", 8000, 8100, DestKind.CIDR_IPV4, "10.0.0.0/16"),
    RuleSpec("tcp", 5432, 5432, DestKind.SECURITY_GROUP, "0"),
    RuleSpec("tcp", 8080, 8080, DestKind.SECURITY_GROUP, "1"),
    RuleSpec("tcp", 50051, 50051, DestKind.SECURITY_GROUP, "2"),
    RuleSpec("udp", 53, 53, DestKind.CIDR_IPV4, "10.0.0.5/32"),
    RuleSpec("udp", 0, 65535, DestKind.CIDR_IPV4, "0.0.0.0/0"),
    RuleSpec("icmp", -1, -1, DestKind.CIDR_IPV4, "10.0.0.0/24"),
    RuleSpec("tcp", 22, 22, DestKind.CIDR_IPV4, "198.51.100.0/24"),
    RuleSpec("tcp", 443, 443, DestKind.CIDR_IPV6, "2001:db8::/64"),
]


@dataclass(frozen=True)
class Scenario:
    inventory: Inventory
    flows: FlowEdges


def _group_id(index: int) -> str:
    return f"sg-{index:04d}"


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n_groups = draw(st.integers(1, 4))
    n_enis = draw(st.integers(1, 5))
    groups_rules: list[list[RuleSpec]] = [
        draw(st.lists(st.sampled_from(_RULE_PALETTE), max_size=5, unique=True)) for _ in range(n_groups)
    ]
    memberships = [
        sorted(draw(st.sets(st.integers(0, n_groups - 1), min_size=1, max_size=2))) for _ in range(n_enis)
    ]
    interfaces: dict[str, Interface] = {}
    for index, member_of in enumerate(memberships):
        eni = f"eni-{index:04d}"
        addresses = [f"10.0.0.{10 + index}"]
        if draw(st.booleans()):
            addresses.append(f"2001:db8::{10 + index:x}")
        interfaces[eni] = Interface(
            eni,
            tuple(addresses),
            tuple(_group_id(g) for g in member_of),
            subnet_id="subnet-1",
            vpc_id="vpc-1",
        )
    # A resolver that is not in any analysed group's membership but is an inventory ENI with a group.
    interfaces["eni-dns"] = Interface(
        "eni-dns", ("10.0.0.5",), (_group_id(n_groups),), subnet_id="subnet-1", vpc_id="vpc-1"
    )
    groups: dict[str, SecurityGroup] = {}
    for g in range(n_groups + 1):
        gid = _group_id(g)
        rules: list[SgRule] = []
        for spec in groups_rules[g] if g < n_groups else []:
            value = spec.value
            if spec.kind is DestKind.SECURITY_GROUP:
                value = _group_id(int(spec.value) % (n_groups + 1))
            rules.append(
                SgRule.build(
                    gid, True, spec.proto, spec.low, spec.high, spec.kind, value, None, f"sgr-{g}{len(rules)}"
                )
            )
        groups[gid] = SecurityGroup(gid, f"group{g}", "vpc-1", egress=tuple(rules))
    # Optional history (DESIGN §6 "Identity over time"): former members the inventory lacks (a replaced
    # instance, ECS tasks), created and/or deleted inside the window, and current ENIs created inside it.
    histories: dict[str, EniHistory] = {}
    lives: dict[str, tuple[int, int]] = dict.fromkeys(interfaces, (WINDOW.start, WINDOW.end))
    for index in range(draw(st.integers(0, 2))):
        eni = f"eni-f{index:03d}"
        created = draw(st.none() | st.integers(WINDOW.start - 86400, WINDOW.end - 7200))
        start = WINDOW.start if created is None else max(WINDOW.start, created)
        deleted = draw(st.integers(start + 3600, WINDOW.end - 1))
        held_indices = draw(st.sets(st.integers(0, n_groups - 1), min_size=1, max_size=2))
        held = tuple(_group_id(g) for g in sorted(held_indices))
        if draw(st.integers(0, 2)) == 0:
            held = (GONE_GROUP,)  # a decommissioned tier: the ENI and its group are both gone now
        state = EniState(
            T0 - 86400 if created is None else created, held, (f"10.0.0.{100 + index}",), "vpc-1", "subnet-1"
        )
        histories[eni] = EniHistory(eni, created, deleted, (state,))
        lives[eni] = (start, deleted)
    for eni in sorted(interfaces):
        if eni != "eni-dns" and draw(st.integers(0, 3)) == 0:
            created = draw(st.integers(WINDOW.start + 3600, WINDOW.end - 3600))
            itf = interfaces[eni]
            histories[eni] = EniHistory(
                eni, created, None, (EniState(created, itf.group_ids, itf.addresses, "vpc-1", "subnet-1"),)
            )
            lives[eni] = (created, WINDOW.end)
    inventory = Inventory(
        groups=groups,
        interfaces=interfaces,
        prefix_lists={
            S3_LIST: PrefixList(S3_LIST, "com.amazonaws.eu-west-1.s3", "IPv4", "AWS", None, S3_ENTRIES)
        },
        flow_logs=(FlowLogConfig("fl-1", "vpc-1", "ALL", None, "s3", None, None, T0 - 86400),),
        has_rule_ids=True,
        history=EniHistories(histories),
    )
    former_addresses = [a for h in histories.values() if h.eni_id not in interfaces
                        for a in h.states[0].addresses or ()]  # fmt: skip
    peers = [a for itf in interfaces.values() for a in itf.addresses] + EXTERNAL + former_addresses
    edges = draw(st.lists(_edge(sorted(interfaces), peers), max_size=25))
    formers = sorted(set(lives) - set(interfaces))
    if formers:
        edges += draw(st.lists(_edge(formers, peers), max_size=6))
    frame = (
        pl.DataFrame(edges, schema=EDGE_SCHEMA, orient="row").unique(
            subset=list(EDGE_KEY),
            keep="first",
            maintain_order=True,
        )
        if edges
        else pl.DataFrame(schema=EDGE_SCHEMA)
    )
    # Local addresses: the ENI's own first address.
    own = {eni: itf.addresses[0] for eni, itf in interfaces.items()}
    own |= {eni: f"10.0.0.{100 + int(eni[-3:])}" for eni in formers}
    frame = frame.with_columns(pl.col("interface_id").replace_strict(own, default=None).alias("local_addr"))
    coverage = pl.DataFrame(
        [(eni, lo, hi - 1, 10, 0, 0, 0, None, None) for eni, (lo, hi) in sorted(lives.items())],
        schema=COVERAGE_SCHEMA,
        orient="row",
    )
    # Delivery as AWS writes it: records (NODATA included) over the ENI's whole life in the window, except
    # where a drawn outage (lost files, a stopped log) left a hole of several hours.
    spans: list[tuple[str, int, int]] = []
    for eni, (lo, hi) in sorted(lives.items()):
        if draw(st.integers(0, 4)) == 0:
            cut = draw(st.integers(lo, hi - 1))
            length = draw(st.integers(2 * 3600, 3 * 86400))
            spans += [(eni, lo, cut), (eni, cut + length, hi - 1)]
        else:
            spans.append((eni, lo, hi - 1))
    span_frame = pl.DataFrame([(e, a, b) for e, a, b in spans if b > a], schema=SPAN_SCHEMA, orient="row")
    records = int(frame["records"].sum() or 0) + 10 * len(lives)
    accounting = InputAccounting(records=records, used=records - 10 * len(lives), nodata=10 * len(lives))
    flows = FlowEdges(frame, coverage, WINDOW, accounting, "edges", spans=span_frame)
    return Scenario(inventory, flows)


def _edge(enis: list[str], peers: list[str]) -> st.SearchStrategy[tuple[object, ...]]:
    @st.composite
    def build(draw: st.DrawFn) -> tuple[object, ...]:
        eni = draw(st.sampled_from(enis))
        remote = draw(st.sampled_from(peers))
        proto = draw(st.sampled_from([6, 6, 6, 17, 1]))
        initiated = draw(st.booleans())
        service = draw(st.sampled_from(PORTS)) if proto != 1 else 0
        local_port, remote_port = (0, service) if initiated else (service, 0)
        if proto == 1:
            local_port = remote_port = 0
        direction = draw(st.sampled_from(["egress", "egress", "ingress"]))
        action = draw(st.sampled_from(["ACCEPT", "ACCEPT", "ACCEPT", "REJECT"]))
        records = draw(st.integers(1, 50))
        syn = records if (proto == 6 and initiated == (direction == "egress")) else 0
        synack = records if (proto == 6 and initiated != (direction == "egress")) else 0
        ephemeral = 40000
        return (
            eni, direction, action, proto, "", remote, local_port, remote_port, records, records * 2, records * 100,
            T0 + 3600, T0 + 7 * 86400,
            ephemeral if local_port == 0 and proto != 1 else local_port,
            ephemeral + 5 if local_port == 0 and proto != 1 else local_port,
            5 if local_port == 0 and proto != 1 else 1,
            ephemeral if remote_port == 0 and proto != 1 else remote_port,
            ephemeral + 5 if remote_port == 0 and proto != 1 else remote_port,
            5 if remote_port == 0 and proto != 1 else 1,
            syn if proto == 6 else None, synack if proto == 6 else None, 0 if proto == 6 else None,
            0 if proto == 6 else None, None,
        )  # fmt: skip

    return build()


def probe_points(inventory: Inventory, flows: FlowEdges) -> list[tuple[int, str, int]]:
    """(protocol, address, port) points that exercise every boundary of every rule and flow."""
    addresses = set(EXTERNAL) | {"0.0.0.1", "255.255.255.254", "10.0.1.1", "2001:db8::ffff", "2600::1"}
    for itf in inventory.interfaces.values():
        addresses.update(itf.addresses)
    for history in inventory.history.values():
        addresses.update(a for state in history.states for a in state.addresses or ())
    for cidr in S3_ENTRIES:
        net = ipaddress.ip_network(cidr)
        addresses.update(
            {str(net.network_address), str(net.broadcast_address), str(net.broadcast_address + 1)}
        )
    for sg in inventory.groups.values():
        for rule in sg.egress:
            if rule.kind in (DestKind.CIDR_IPV4, DestKind.CIDR_IPV6):
                net = ipaddress.ip_network(rule.value)
                addresses.update({str(net.network_address), str(net.broadcast_address)})
    ports = {0, 1, 65535, 40000, 40005, 40003}
    for port in [*PORTS, 8100, 8101, 7999]:
        ports.update({port - 1, port, port + 1})
    return [
        (proto, addr, port)
        for proto in (6, 17, 1, 50)
        for addr in sorted(addresses)
        for port in sorted(ports)
    ]
