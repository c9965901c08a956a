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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from sgadvisor.analysis.attribution import Attribution, Owner
from sgadvisor.analysis.direction import Confidence
from sgadvisor.analysis.flows import Flow, protocol_name
from sgadvisor.analysis.internet import InternetOptions, Naming, is_internet, name_flow
from sgadvisor.analysis.permits import Net, Resolved, covered, covered_per_identity, permits, resolve
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
    note: str | None = None  # what the rule admits beyond the observed, or why it is an address rule
    internet: str | None = None  # "port" | "pinned" for internet destinations (DESIGN §6)
    names: set[str] = field(default_factory=set)  # DNS names that resolved to its destinations
    forwarded: set[str] = field(default_factory=set)  # of those, names only a forwarding resolver asked
    unnamed: set[str] = field(default_factory=set)  # internet destinations no query named


@dataclass
class GroupPlan:
    group_id: str
    proposed: list[Placed]
    flows: list[Flow]  # the flows this group carries
    notes: list[str] = field(default_factory=list)


class RuleBook:
    """Current rules resolved on the snapshot, per group and per ENI (cached: used for every flow)."""

    def __init__(self, inventory: Inventory, attribution: Attribution | None = None) -> None:
        self.inventory = inventory
        # Who sent and who received a flow, at its time (without a window: the inventory's answer).
        self.attribution = attribution or Attribution(inventory, 0, 0)
        self._by_group: dict[str, list[tuple[SgRule, Resolved]]] = {}
        self._by_eni: dict[str, list[Resolved]] = {}
        self._lists: dict[str, tuple[Net, ...]] = {}
        self._resolved: dict[RuleKey, Resolved] = {}
        self._never_wider: dict[tuple[RuleKey, str], bool] = {}

    @cached_property
    def vpc_networks(self) -> tuple[Net, ...]:
        """Every VPC's CIDR blocks (describe-vpcs): addresses inside them are not the internet."""
        return tuple(ipaddress.ip_network(c) for vpc in self.inventory.vpcs.values() for c in vpc.cidrs)

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
        return [rule for rule, res in self.group(group_id) if self.permits_flow(res, flow)]

    def permits_flow(
        self, rule: Resolved, flow: Flow, port_low: int | None = None, port_high: int | None = None
    ) -> bool:
        """Does ``rule`` permit the flow (on ``[port_low, port_high]``, by default its ports)? An SG
        reference permits a flow to an ENI that was a member of the group when the flow happened, even
        when that ENI is gone now (DESIGN §6 "Identity over time"): the reference admitted it then."""
        low = flow.port_low if port_low is None else port_low
        high = flow.port_high if port_high is None else port_high
        if permits(rule, flow.proto, flow.addr, low, high):
            return True
        key = rule.key
        if key.kind is not DestKind.SECURITY_GROUP or not self.inventory.history:
            return False
        if not any(key.value in owner.groups for owner in self.attribution.owners(flow)):
            return False
        as_then = Resolved.of(key, (ipaddress.ip_network(flow.remote),))
        return permits(as_then, flow.proto, flow.addr, low, high)

    def prefix_list_nets(self, prefix_list_id: str) -> tuple[Net, ...]:
        if prefix_list_id not in self._lists:
            plist = self.inventory.prefix_lists[prefix_list_id]
            self._lists[prefix_list_id] = tuple(ipaddress.ip_network(c) for c in plist.entries or ())
        return self._lists[prefix_list_id]

    def never_wider(self, key: RuleKey, group_id: str) -> bool:
        """Is ``key`` (if added to the group) covered by every member's current rules? (memoised)"""
        memo = (key, group_id)
        if memo not in self._never_wider:
            members = self.inventory.members.get(group_id, ())
            if key.kind is DestKind.SECURITY_GROUP:
                # One identity per member of the referenced group (DESIGN §6 "Invariants").
                verdict = all(covered_per_identity(key, self.inventory, self.eni(eni)) for eni in members)
            else:
                candidate = self.resolved(key)
                verdict = all(covered(candidate, self.eni(eni)) for eni in members)
            self._never_wider[memo] = verdict
        return self._never_wider[memo]

    def permits_key(self, key: RuleKey, flow: Flow) -> bool:
        return self.permits_flow(self.resolved(key), flow)


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
        candidates = []
        for gid in book.attribution.source_groups(flow):
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
    for gid in book.attribution.source_groups(flow):
        rules = book.group(gid)
        if covered(candidate, [res for _, res in rules]):
            return [
                rule
                for rule, res in rules
                if any(book.permits_flow(res, flow, port, port) for port in (flow.port_low, flow.port_high))
                or (
                    rule.from_port is not None
                    and rule.to_port is not None
                    and flow.port_low <= rule.to_port
                    and rule.from_port <= flow.port_high
                    and book.permits_flow(res, flow, rule.from_port, rule.from_port)
                )
            ]
    return None


def _icmp_rule(rules: Sequence[SgRule]) -> SgRule | None:
    for rule in rules:
        if rule.ip_protocol in ("icmp", "icmpv6"):
            return rule
    return None


def synthesize_group(
    group_id: str,
    flows: Sequence[Flow],
    book: RuleBook,
    vanished: list[Flow] | None = None,
    internet: InternetOptions | None = None,
) -> list[Placed]:
    """The least-privilege rules for the flows one group carries (each checked never wider).

    A flow whose destination ENIs are all gone and for which no group reference qualifies is never
    turned into an address rule (the address belongs to nothing now): it is appended to ``vanished``."""
    inventory = book.inventory
    placed: dict[RuleKey, Placed] = {}

    def put(key: RuleKey, flow: Flow, label: str | None = None, note: str | None = None) -> None:
        entry = placed.setdefault(key, Placed(key=key, label=label, note=note))
        entry.flows.append(flow)

    def put_internet(key: RuleKey, flow: Flow | None, kind: str, naming: Naming) -> None:
        entry = placed.setdefault(key, Placed(key=key, label=naming.names[0] if naming.names else None))
        if flow is not None:
            entry.flows.append(flow)
        entry.internet = "pinned" if "pinned" in (entry.internet, kind) else kind
        entry.names.update(naming.names)
        entry.forwarded.update(naming.forwarded)
        if flow is not None and not naming.names:
            entry.unnamed.add(flow.remote)
        if naming.why and entry.note is None:
            entry.note = naming.why

    # Group flows by what the rule's protocol/port part will be.
    by_ports: dict[RuleKey, list[Flow]] = defaultdict(list)
    icmp_source: dict[Flow, SgRule | None] = {}
    for flow in flows:
        icmp_from = _icmp_rule(book.permitting(group_id, flow)) if flow.proto in _ICMPS else None
        icmp_source[flow] = icmp_from
        template = flow_key(flow, DestKind.CIDR_IPV4, "0.0.0.0/0", icmp_from)
        by_ports[template].append(flow)

    for template in sorted(by_ports, key=_key_order):
        remaining = list(by_ports[template])
        # (1) SG references (DESIGN §6 "Destinations"): the destination ENIs at the time of each flow,
        #     current or former; the smallest group that held them all and passes never wider, else for
        #     each flow the smallest of its own destination ENIs' groups that does.
        owners = {f: book.attribution.owners(f) for f in remaining}
        chosen = _reference_groups(owners, group_id, template, book)
        for ref, ref_flows in chosen.items():
            key = _with_destination(template, DestKind.SECURITY_GROUP, ref)
            for f in ref_flows:
                put(key, f)
        carried_now = {f for ref_flows in chosen.values() for f in ref_flows}
        remaining = [f for f in remaining if f not in carried_now]
        # A destination whose ENIs are all gone: no address rule to what is no longer there.
        gone = [f for f in remaining if owners[f] and not any(o.current for o in owners[f])]
        if gone:
            if vanished is not None:
                vanished.extend(gone)
            remaining = [f for f in remaining if f not in set(gone)]
        # (2) An AWS-managed prefix list that contains the destination.
        for flow in list(remaining):
            plist = _managed_list_of(flow, book)
            if plist is None:
                continue
            key = _with_destination(template, DestKind.PREFIX_LIST, plist)
            if key in placed or book.never_wider(key, group_id):
                put(key, flow, inventory.prefix_lists[plist].name)
                remaining.remove(flow)
        # (4) The internet: port-scoped, pinned or named by DNS (DESIGN §6 "Internet destinations").
        internet_flows = [
            f
            for f in remaining
            if not owners[f] and not f.service and is_internet(f.remote, book.vpc_networks)
        ]
        for flow in internet_flows:
            _place_internet(flow, template, group_id, book, internet or InternetOptions(), put_internet)
        remaining = [f for f in remaining if f not in set(internet_flows)]
        # (3)/(5) The address itself, labelled with its AWS service when the flow log names one; an
        #     ENI's address only when no group of it qualifies, and labelled as such.
        for flow in remaining:
            note = None
            label = flow.service
            if owners[flow]:
                label = "address only"
                note = (
                    f"address rule: no group of the ENI holding {flow.remote} "
                    f"({', '.join(o.eni for o in owners[flow])}) can be referenced without widening"
                )
            put(host_key(flow, icmp_source[flow]), flow, label, note)
    for entry in placed.values():
        if entry.key.kind is DestKind.SECURITY_GROUP:
            entry.note = admits_note(entry.key.value, entry.flows, book)
    return prefer_current(_merge_ports(list(placed.values())), group_id, book)


def _place_internet(
    flow: Flow,
    template: RuleKey,
    group_id: str,
    book: RuleBook,
    options: InternetOptions,
    put: Callable[[RuleKey, Flow | None, str, Naming], None],
) -> None:
    """Name one internet flow per the policy: pinned /32s (the flow's own address, and a stable name's
    other addresses where never wider), or the observed ports to the widest CIDR of the group's current
    rules that permit it (0.0.0.0/0 when that is what it has), never wider by construction."""
    naming = name_flow(
        flow.remote, book.attribution.addresses_of(flow.eni), options, book.attribution.vpc_of(flow.eni)
    )
    icmp_from = _icmp_rule(book.permitting(group_id, flow)) if flow.proto in _ICMPS else None
    if naming.pinned:
        put(host_key(flow, icmp_from), flow, "pinned", naming)
        for address in naming.pinned:
            if address == flow.remote:
                continue
            network = ipaddress.ip_network(address)
            kind = DestKind.CIDR_IPV4 if network.version == 4 else DestKind.CIDR_IPV6
            key = _with_destination(host_key(flow, icmp_from), kind, str(network))
            if book.never_wider(key, group_id):
                put(key, None, "pinned", naming)  # the name's other addresses: where it goes next
        return
    widest: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    for rule in book.permitting(group_id, flow):
        if rule.kind in (DestKind.CIDR_IPV4, DestKind.CIDR_IPV6):
            network = ipaddress.ip_network(rule.value)
            if network.version == flow.addr.version and (
                widest is None or network.prefixlen < widest.prefixlen
            ):
                widest = network
    if widest is None:
        # Only a prefix list or a reference admits it today: the address itself is all that stays narrower.
        put(
            host_key(flow, icmp_from),
            flow,
            "pinned",
            replace(naming, why="pinned: no current CIDR rule admits it"),
        )
        return
    kind = DestKind.CIDR_IPV4 if widest.version == 4 else DestKind.CIDR_IPV6
    put(flow_key(flow, kind, str(widest), icmp_from), flow, "port", naming)


def _with_destination(template: RuleKey, kind: DestKind, value: str) -> RuleKey:
    return RuleKey(template.ip_protocol, template.from_port, template.to_port, kind, value)


def _reference_groups(
    owners: Mapping[Flow, tuple[Owner, ...]], group_id: str, template: RuleKey, book: RuleBook
) -> dict[str, list[Flow]]:
    """Flows (of one protocol/port) → the group each is referenced by: the smallest group (fewest
    current members, then lowest id) that held every destination ENI of all of them and passes never
    wider, else per flow the smallest such group of its own destination ENIs; flows with none are left
    out."""
    inventory = book.inventory

    def candidates(flow_owners: tuple[Owner, ...]) -> set[str]:
        # A holder that is gone with all its groups has no identity left to name (an address handed
        # over within the flow's span): the holders that still have one decide.
        held = [{g for g in o.groups if g in inventory.groups} for o in flow_owners]
        named = [groups for groups, o in zip(held, flow_owners, strict=True) if groups or o.current]
        return set.intersection(*named) if named else set()

    def first_passing(groups: set[str]) -> str | None:
        for _, gid in sorted((len(inventory.members.get(g, ())), g) for g in groups):
            if book.never_wider(_with_destination(template, DestKind.SECURITY_GROUP, gid), group_id):
                return gid
        return None

    per_flow = {f: candidates(o) for f, o in owners.items() if o}
    per_flow = {f: c for f, c in per_flow.items() if c}
    if not per_flow:
        return {}
    everyone = first_passing(set.intersection(*per_flow.values()))
    if everyone is not None:
        return {everyone: sorted(per_flow, key=_flow_order)}
    out: dict[str, list[Flow]] = defaultdict(list)
    for flow in sorted(per_flow, key=_flow_order):
        ref = first_passing(per_flow[flow])
        if ref is not None:
            out[ref].append(flow)
    return dict(sorted(out.items()))


def admits_note(ref: str, flows: Sequence[Flow], book: RuleBook) -> str:
    """What a reference admits beyond the observed: "admits 4 members, 2 observed; also their IPv6
    addresses" (DESIGN §6 "Destinations")."""
    inventory = book.inventory
    members = inventory.members.get(ref, ())
    observed = {o.eni for f in flows for o in book.attribution.owners(f) if ref in o.groups}
    current_seen = len(observed & set(members))
    former_seen = len({eni for eni in observed if eni not in inventory.interfaces})
    parts = [
        f"admits {len(members)} current member{'s' if len(members) != 1 else ''}, {current_seen} observed"
    ]
    if former_seen:
        parts[0] += f" (and {former_seen} former member{'s' if former_seen != 1 else ''} observed)"
    seen_families = {parse_family(f.remote) for f in flows}
    member_families = {
        parse_family(address) for eni in members for address in inventory.interfaces[eni].addresses
    }
    for family in sorted(member_families - seen_families):
        parts.append(f"also their IPv{family} addresses")
    return "; ".join(parts)


def parse_family(address: str) -> int:
    return ipaddress.ip_address(address).version


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
            # A reference to a group with no member today admits nothing now, like any other such rule:
            # equal on the snapshot, yet not the same rule (it names the identity the flows reached).
            for rule, res in current if candidate.spans else ():
                if res.spans and covered(candidate, [res]) and covered(res, [candidate]):
                    placed = Placed(
                        key=rule.key(),
                        flows=placed.flows,
                        kept_rule=rule,
                        label=placed.label,
                        # What a reference admits no longer describes the current rule kept instead.
                        note=placed.note if rule.kind is placed.key.kind else None,
                        internet=placed.internet,
                        names=placed.names,
                        forwarded=placed.forwarded,
                        unnamed=placed.unnamed,
                    )
                    break
        out.append(placed)
    merged: dict[RuleKey, Placed] = {}
    for placed in out:
        if placed.key in merged:
            merged[placed.key].flows.extend(placed.flows)
            merged[placed.key].names |= placed.names
            merged[placed.key].forwarded |= placed.forwarded
            merged[placed.key].unnamed |= placed.unnamed
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
                current = Placed(
                    key=key,
                    flows=current.flows + nxt.flows,
                    label=current.label or nxt.label,
                    note=current.note or nxt.note,
                    internet=current.internet or nxt.internet,
                    names=current.names | nxt.names,
                    forwarded=current.forwarded | nxt.forwarded,
                    unnamed=current.unnamed | nxt.unnamed,
                )
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
