"""Least-privilege egress rules per security group, and the diff against the current rules (DESIGN §6).

Placement: a flow is carried by one group of its ENI — among the groups whose current rules permit it, the
one with the fewest members (ties: lowest id) where the new rule stays never wider for every member.
Identity: an SG reference when one group covers all destination ENIs of a port, an AWS-managed prefix
list, else /32 (/128); every candidate is checked never wider for every member of the group, and falls
back to something narrower when it is not. The most specific rule (the address and the observed ports)
is a subset of the rule that permits the flow today, so a fallback always exists — except for a range
of bucketed ports that no single rule spans, where the flow keeps its current rule and the report says so.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sgadvisor.analysis.direction import Confidence
from sgadvisor.analysis.flows import Flow, protocol_name
from sgadvisor.analysis.permits import Net, Resolved, covered, permits, resolve
from sgadvisor.inventory.model import Inventory, SgRule
from sgadvisor.rules import DestKind, RuleKey, make_key

_PORTED = {6, 17}
_ICMPS = {1, 58}


@dataclass
class Placed:
    """A proposed rule with the flows it carries."""

    key: RuleKey
    flows: list[Flow] = field(default_factory=list)
    kept_rule: SgRule | None = None  # a current rule kept unchanged (coverage, pin, or no narrower rule)
    reason: str | None = None  # why a rule without flows stays
    label: str | None = None  # AWS service or prefix-list name, for the description


@dataclass
class GroupPlan:
    group_id: str
    proposed: list[Placed]
    flows: list[Flow]  # the flows this group carries
    notes: list[str] = field(default_factory=list)


class RuleBook:
    """Current rules resolved on the snapshot, per group and per ENI (cached: used for every flow)."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._by_group: dict[str, list[tuple[SgRule, Resolved]]] = {}
        self._by_eni: dict[str, list[Resolved]] = {}
        self._lists: dict[str, tuple[Net, ...]] = {}
        self._resolved: dict[RuleKey, Resolved] = {}
        self._never_wider: dict[tuple[RuleKey, str], bool] = {}

    def resolved(self, key: RuleKey) -> Resolved:
        if key not in self._resolved:
            self._resolved[key] = resolve(key, self.inventory)
        return self._resolved[key]

    def group(self, group_id: str) -> list[tuple[SgRule, Resolved]]:
        if group_id not in self._by_group:
            sg = self.inventory.groups.get(group_id)
            rules = sg.egress if sg is not None else ()
            self._by_group[group_id] = [(r, self.resolved(r.key())) for r in rules]
        return self._by_group[group_id]

    def eni(self, eni: str) -> list[Resolved]:
        if eni not in self._by_eni:
            itf = self.inventory.interfaces[eni]
            self._by_eni[eni] = [res for gid in itf.group_ids for _, res in self.group(gid)]
        return self._by_eni[eni]

    def permitting(self, group_id: str, flow: Flow) -> list[SgRule]:
        return [
            rule
            for rule, res in self.group(group_id)
            if permits(res, flow.proto, flow.addr, flow.port_low, flow.port_high)
        ]

    def prefix_list_nets(self, prefix_list_id: str) -> tuple[Net, ...]:
        if prefix_list_id not in self._lists:
            plist = self.inventory.prefix_lists[prefix_list_id]
            self._lists[prefix_list_id] = tuple(ipaddress.ip_network(c) for c in plist.entries or ())
        return self._lists[prefix_list_id]

    def never_wider(self, key: RuleKey, group_id: str) -> bool:
        """Is ``key`` (if added to the group) covered by every member's current rules? (memoised)"""
        memo = (key, group_id)
        if memo not in self._never_wider:
            candidate = self.resolved(key)
            self._never_wider[memo] = all(
                covered(candidate, self.eni(eni)) for eni in self.inventory.members.get(group_id, ())
            )
        return self._never_wider[memo]

    def permits_key(self, key: RuleKey, flow: Flow) -> bool:
        return permits(self.resolved(key), flow.proto, flow.addr, flow.port_low, flow.port_high)


def flow_key(flow: Flow, kind: DestKind, value: str, icmp_from: SgRule | None = None) -> RuleKey:
    """The rule that permits exactly this flow's ports to ``value``."""
    proto = protocol_name(flow.proto)
    if flow.proto in _PORTED:
        return make_key(proto, flow.port_low, flow.port_high, kind, value)
    if flow.proto in _ICMPS:
        # Flow logs carry no ICMP type/code: reuse the permitting rule's, so the rule is never wider.
        if icmp_from is not None and icmp_from.ip_protocol == proto:
            return make_key(proto, icmp_from.from_port, icmp_from.to_port, kind, value)
        return make_key(proto, -1, -1, kind, value)
    return make_key(proto, None, None, kind, value)


def host_key(flow: Flow, icmp_from: SgRule | None = None) -> RuleKey:
    network = ipaddress.ip_network(flow.remote)
    kind = DestKind.CIDR_IPV4 if network.version == 4 else DestKind.CIDR_IPV6
    return flow_key(flow, kind, str(network), icmp_from)


def place_flows(
    flows: Iterable[Flow], book: RuleBook, groups_in_play: set[str]
) -> tuple[dict[str, list[Flow]], list[tuple[Flow, list[SgRule]]], list[Flow]]:
    """Assign each flow to the group that carries it.

    Returns (flows per group, flows that keep their current rules because no group can carry a
    narrower rule, flows that no current rule permits).
    """
    carried: dict[str, list[Flow]] = defaultdict(list)
    stuck: list[tuple[Flow, list[SgRule]]] = []
    not_permitted: list[Flow] = []
    inventory = book.inventory
    for flow in flows:
        itf = inventory.interfaces[flow.eni]
        candidates = []
        for gid in itf.group_ids:
            rules = book.permitting(gid, flow)
            if rules:
                candidates.append((len(inventory.members.get(gid, ())), gid, rules))
        if not candidates:
            partial = _union_permitting(flow, book) if flow.port_low != flow.port_high else None
            if partial:
                stuck.append((flow, partial))  # several rules together cover the observed port range
            else:
                not_permitted.append(flow)
            continue
        # The smallest group that permits the flow carries it. Its most specific rule (the address and
        # the observed ports, ICMP type/code of the permitting rule) lies inside that permitting rule,
        # which every member of the group has: so it is never wider, and no further check is needed.
        _, gid, _ = min(candidates, key=lambda c: (c[0], c[1]))
        carried[gid].append(flow)
    return carried, stuck, not_permitted


def _union_permitting(flow: Flow, book: RuleBook) -> list[SgRule] | None:
    """For a range of bucketed ports no single rule spans: the rules of one of the ENI's groups that
    together cover it (kept as they are), or None."""
    candidate = book.resolved(host_key(flow))
    for gid in sorted(book.inventory.interfaces[flow.eni].group_ids):
        rules = book.group(gid)
        if covered(candidate, [res for _, res in rules]):
            return [
                rule
                for rule, res in rules
                if any(
                    permits(res, flow.proto, flow.addr, port, port)
                    for port in (flow.port_low, flow.port_high)
                )
                or (
                    rule.from_port is not None
                    and rule.to_port is not None
                    and flow.port_low <= rule.to_port
                    and rule.from_port <= flow.port_high
                    and permits(res, flow.proto, flow.addr, rule.from_port, rule.from_port)
                )
            ]
    return None


def _icmp_rule(rules: Sequence[SgRule]) -> SgRule | None:
    for rule in rules:
        if rule.ip_protocol in ("icmp", "icmpv6"):
            return rule
    return None


def synthesize_group(group_id: str, flows: Sequence[Flow], book: RuleBook) -> list[Placed]:
    """The least-privilege rules for the flows one group carries (each checked never wider)."""
    inventory = book.inventory
    placed: dict[RuleKey, Placed] = {}

    def put(key: RuleKey, flow: Flow, label: str | None = None) -> None:
        entry = placed.setdefault(key, Placed(key=key, label=label))
        entry.flows.append(flow)

    # Group flows by what the rule's protocol/port part will be.
    by_ports: dict[RuleKey, list[Flow]] = defaultdict(list)
    icmp_source: dict[Flow, SgRule | None] = {}
    for flow in flows:
        icmp_from = _icmp_rule(book.permitting(group_id, flow)) if flow.proto in _ICMPS else None
        icmp_source[flow] = icmp_from
        template = flow_key(flow, DestKind.CIDR_IPV4, "0.0.0.0/0", icmp_from)
        by_ports[template].append(flow)

    for template in sorted(by_ports, key=_key_order):
        bucket = by_ports[template]
        remaining = list(bucket)
        # (1) SG references: one group covering every destination ENI seen on this port when there is
        #     one, else each destination ENI's smallest group; each reference checked never wider.
        owners: dict[Flow, str] = {}
        for f in remaining:
            owner = inventory.owner_of_address.get(f.remote)
            if owner is not None and inventory.interfaces[owner].group_ids:
                owners[f] = owner
        for ref, ref_flows in _reference_groups(owners, inventory).items():
            key = RuleKey(
                template.ip_protocol, template.from_port, template.to_port, DestKind.SECURITY_GROUP, ref
            )
            if book.never_wider(key, group_id):
                for f in ref_flows:
                    put(key, f, None)
                carried_now = set(ref_flows)
                remaining = [f for f in remaining if f not in carried_now]
        # (2) An AWS-managed prefix list that contains the destination.
        for flow in list(remaining):
            plist = _managed_list_of(flow, book)
            if plist is None:
                continue
            key = RuleKey(
                template.ip_protocol, template.from_port, template.to_port, DestKind.PREFIX_LIST, plist
            )
            if key in placed or book.never_wider(key, group_id):
                put(key, flow, inventory.prefix_lists[plist].name)
                remaining.remove(flow)
        # (3)/(4) The address itself, labelled with its AWS service when the flow log names one.
        for flow in remaining:
            put(host_key(flow, icmp_source[flow]), flow, flow.service)
    return prefer_current(_merge_ports(list(placed.values())), group_id, book)


def _reference_groups(owners: Mapping[Flow, str], inventory: Inventory) -> dict[str, list[Flow]]:
    """Destination ENIs → the groups to reference: the smallest group holding them all, if any; else
    each ENI's own smallest group (fewest members, then lowest id)."""
    if not owners:
        return {}
    dest_enis = set(owners.values())

    def smallest(candidates: Iterable[str]) -> str | None:
        ranked = sorted((len(inventory.members.get(g, ())), g) for g in candidates)
        return ranked[0][1] if ranked else None

    # A group holds every destination ENI exactly when it is one of each destination's groups.
    common = set.intersection(*(set(inventory.interfaces[eni].group_ids) for eni in dest_enis))
    everyone = smallest(common)
    if everyone is not None:
        return {everyone: sorted(owners, key=_flow_order)}
    out: dict[str, list[Flow]] = defaultdict(list)
    for flow in sorted(owners, key=_flow_order):
        ref = smallest(inventory.interfaces[owners[flow]].group_ids)
        if ref is not None:
            out[ref].append(flow)
    return dict(sorted(out.items()))


def _flow_order(flow: Flow) -> tuple[str, int, str, int, int]:
    return (flow.eni, flow.proto, flow.remote, flow.port_low, flow.port_high)


def prefer_current(proposed: list[Placed], group_id: str, book: RuleBook) -> list[Placed]:
    """Where a current rule permits exactly what a proposed rule permits, keep the current one: same
    privilege, no churn (e.g. ``udp 53 10.0.2.53/32`` and a reference to the resolver's one-member group)."""
    current = book.group(group_id)
    out: list[Placed] = []
    for placed in proposed:
        if placed.kept_rule is None and all(placed.key != rule.key() for rule, _ in current):
            candidate = book.resolved(placed.key)
            for rule, res in current:
                if covered(candidate, [res]) and covered(res, [candidate]):
                    placed = Placed(key=rule.key(), flows=placed.flows, kept_rule=rule, label=placed.label)
                    break
        out.append(placed)
    merged: dict[RuleKey, Placed] = {}
    for placed in out:
        if placed.key in merged:
            merged[placed.key].flows.extend(placed.flows)
        else:
            merged[placed.key] = placed
    return sorted(merged.values(), key=lambda p: _key_order(p.key))


def _managed_list_of(flow: Flow, book: RuleBook) -> str | None:
    """The smallest AWS-managed prefix list (known entries) that contains the destination."""
    best: tuple[int, str] | None = None
    for plist in book.inventory.prefix_lists.values():
        if not plist.aws_managed or plist.entries is None:
            continue
        nets = book.prefix_list_nets(plist.prefix_list_id)
        if any(net.version == flow.addr.version and flow.addr in net for net in nets):
            candidate = (len(nets), plist.prefix_list_id)
            best = candidate if best is None or candidate < best else best
    return best[1] if best else None


def _merge_ports(rules: list[Placed]) -> list[Placed]:
    """Merge rules to one destination whose port ranges touch: the union is exactly what they permit."""
    by_dest: dict[tuple[str, DestKind, str], list[Placed]] = defaultdict(list)
    others: list[Placed] = []
    for rule in rules:
        if rule.key.ip_protocol in ("tcp", "udp"):
            by_dest[(rule.key.ip_protocol, rule.key.kind, rule.key.value)].append(rule)
        else:
            others.append(rule)
    merged: list[Placed] = list(others)
    for (proto, kind, value), group in by_dest.items():
        group.sort(key=lambda r: (r.key.from_port or 0, r.key.to_port or 0))
        current = group[0]
        for nxt in group[1:]:
            cur_high = current.key.to_port if current.key.to_port is not None else 65535
            nxt_low = nxt.key.from_port if nxt.key.from_port is not None else 0
            if nxt_low <= cur_high + 1:
                high = max(cur_high, nxt.key.to_port if nxt.key.to_port is not None else 65535)
                key = RuleKey(proto, current.key.from_port, high, kind, value)
                current = Placed(key=key, flows=current.flows + nxt.flows, label=current.label or nxt.label)
            else:
                merged.append(current)
                current = nxt
        merged.append(current)
    return sorted(merged, key=lambda p: _key_order(p.key))


def _key_order(key: RuleKey) -> tuple[str, int, int, str, str]:
    return (
        key.ip_protocol,
        key.from_port if key.from_port is not None else -2,
        key.to_port if key.to_port is not None else -2,
        key.kind.value,
        _value_order(key),
    )


def _value_order(key: RuleKey) -> str:
    if key.kind in (DestKind.CIDR_IPV4, DestKind.CIDR_IPV6):
        net = ipaddress.ip_network(key.value)
        return f"{net.version}:{int(net.network_address):040d}/{net.prefixlen:03d}"
    return key.value


def key_order(key: RuleKey) -> tuple[str, int, int, str, str]:
    """Deterministic rule order for every output."""
    return _key_order(key)


def strongest(flows: Sequence[Flow]) -> Confidence:
    best = max((f.confidence for f in flows), key=lambda c: c.rank, default=Confidence.LOW)
    return best


def rules_permitting(rules: Mapping[RuleKey, Resolved], flow: Flow) -> list[RuleKey]:
    return [k for k, r in rules.items() if permits(r, flow.proto, flow.addr, flow.port_low, flow.port_high)]
