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
from functools import cached_property, lru_cache
from types import MappingProxyType

from sgadvisor.analysis.attribution import Attribution, Owner
from sgadvisor.analysis.direction import Confidence
from sgadvisor.analysis.flows import Flow, protocol_name
from sgadvisor.analysis.internet import InternetOptions, Naming, is_internet_address, name_flow
from sgadvisor.analysis.permits import (
    Addr,
    Net,
    Resolved,
    Span,
    admitted,
    covered,
    covered_within,
    identities_within,
    identity_addresses,
    parse_addr,
    permits,
    permits_at,
    resolve,
)
from sgadvisor.inventory.model import Inventory, SgRule
from sgadvisor.rules import DestKind, RuleKey, make_key, protocol_number

_PORTED = {6, 17}
# Destination kinds read once: reading an enum member through its class is slow in a per-flow loop.
_SG_REF, _PREFIX_LIST = DestKind.SECURITY_GROUP, DestKind.PREFIX_LIST
_CIDR4, _CIDR6 = DestKind.CIDR_IPV4, DestKind.CIDR_IPV6
_NOTHING: Mapping[Flow, tuple[tuple[SgRule, Resolved], ...]] = MappingProxyType({})
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
        self._never_wider: dict[str, dict[RuleKey, bool]] = {}  # per group: asked while it is planned
        self._admitted: dict[tuple[tuple[str, ...], str, int | None, int | None], tuple[Span, ...]] = {}
        self._identities: dict[tuple[str, str], tuple[tuple[Span, ...], ...]] = {}
        self._rule_sets: dict[str, list[tuple[tuple[str, ...], frozenset[str]]]] = {}
        self._by_rule: dict[tuple[RuleKey, str, int | None, int | None], tuple[Span, ...]] = {}
        self._families: dict[str, frozenset[int]] = {}
        self._referenced: dict[str, Resolved] = {}
        self._list_spans: dict[str, tuple[Span, ...]] = {}
        # Per carrying group (small, dropped after it): each flow's permitting (rule, resolved) pairs.
        self._carrier: dict[str, dict[Flow, tuple[tuple[SgRule, Resolved], ...]]] = {}
        self._pair_sets: dict[tuple[str, tuple[int, ...]], tuple[tuple[SgRule, Resolved], ...]] = {}

    @cached_property
    def vpc_networks(self) -> tuple[Net, ...]:
        """Every VPC's CIDR blocks (describe-vpcs): addresses inside them are not the internet."""
        return tuple(ipaddress.ip_network(c) for vpc in self.inventory.vpcs.values() for c in vpc.cidrs)

    def resolved(self, key: RuleKey) -> Resolved:
        found = self._resolved.get(key)
        if found is None:
            if key.kind is _SG_REF:
                # A group's members are resolved once, whatever the protocol and ports of the reference.
                members = self._referenced.get(key.value)
                if members is None:
                    members = self._referenced[key.value] = resolve(key, self.inventory)
                found = members.for_key(key)
            else:
                found = resolve(key, self.inventory)
            self._resolved[key] = found
        return found

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
        return [rule for rule, _ in self.permitting_resolved(group_id, flow)]

    def permitting_resolved(self, group_id: str, flow: Flow) -> Sequence[tuple[SgRule, Resolved]]:
        """The group's current rules that permit the flow, each with its resolved destination."""
        remembered = self._carrier.get(group_id, _NOTHING).get(flow)
        if remembered is not None:
            return remembered
        rules = self.group(group_id)
        if not rules:
            return []
        addr = flow.addr
        proto, version, value, low, high = flow.proto, addr.version, int(addr), flow.port_low, flow.port_high
        if not self.inventory.history:
            return [pair for pair in rules if permits_at(pair[1], proto, version, value, low, high)]
        return [
            pair
            for pair in rules
            if permits_at(pair[1], proto, version, value, low, high)
            or self._admitted_then(pair[1], flow, low, high)
        ]

    def remember_carrier(self, flow: Flow, group_id: str, pairs: Sequence[tuple[SgRule, Resolved]]) -> None:
        """Keep ``permitting_resolved``'s answer for the group that carries the flow: the synthesis and the
        report ask it again. The answers are shared (a group's flows are permitted by a few combinations
        of its rules), so a flow costs a dictionary entry."""
        ids = (group_id, tuple(map(id, pairs)))  # the group's own pairs, alive with the book
        entry = self._pair_sets.get(ids)
        if entry is None:
            entry = self._pair_sets[ids] = tuple(pairs)
        self._carrier.setdefault(group_id, {})[flow] = entry

    def forget_group(self, group_id: str) -> None:
        """Drop what was kept while the group was planned (``remember_carrier``, ``never_wider``): asked
        again, it is computed again."""
        self._carrier.pop(group_id, None)
        self._never_wider.pop(group_id, None)

    def permits_flow(
        self, rule: Resolved, flow: Flow, port_low: int | None = None, port_high: int | None = None
    ) -> bool:
        """Does ``rule`` permit the flow (on ``[port_low, port_high]``, by default its ports)?"""
        low = flow.port_low if port_low is None else port_low
        high = flow.port_high if port_high is None else port_high
        addr = flow.addr
        return permits_at(rule, flow.proto, addr.version, int(addr), low, high) or self._admitted_then(
            rule, flow, low, high
        )

    def _admitted_then(self, rule: Resolved, flow: Flow, low: int, high: int) -> bool:
        """An SG reference permits a flow to an ENI that was a member of the group when the flow happened,
        even when that ENI is gone now (DESIGN §6 "Identity over time"): the reference admitted it then."""
        key = rule.key
        if key.kind is not _SG_REF or not self.inventory.history:
            return False
        if not any(key.value in owner.groups for owner in self.attribution.owners(flow)):
            return False
        as_then = Resolved.of(key, (ipaddress.ip_network(flow.remote),))
        return permits(as_then, flow.proto, flow.addr, low, high)

    def prefix_list_spans(self, prefix_list_id: str) -> tuple[Span, ...]:
        """A prefix list's entries as integer spans (asked of every flow's destination)."""
        if prefix_list_id not in self._list_spans:
            nets = self.prefix_list_nets(prefix_list_id)
            self._list_spans[prefix_list_id] = tuple(
                (net.version, int(net.network_address), int(net.broadcast_address)) for net in nets
            )
        return self._list_spans[prefix_list_id]

    def prefix_list_nets(self, prefix_list_id: str) -> tuple[Net, ...]:
        if prefix_list_id not in self._lists:
            plist = self.inventory.prefix_lists[prefix_list_id]
            self._lists[prefix_list_id] = tuple(ipaddress.ip_network(c) for c in plist.entries or ())
        return self._lists[prefix_list_id]

    def never_wider(self, key: RuleKey, group_id: str) -> bool:
        """Is ``key`` (if added to the group) covered by every member's current rules? (memoised)"""
        memo = self._never_wider.setdefault(group_id, {})
        if key not in memo:
            if key.kind is _SG_REF:
                # One identity per member of the referenced group (DESIGN §6 "Invariants").
                identities = self.identities(key)
                memo[key] = not identities or self._every_rule_set(
                    group_id, lambda groups: identities_within(identities, self.admitted_for(groups, key))
                )
            else:
                candidate = self.resolved(key)
                memo[key] = self._every_rule_set(
                    group_id, lambda groups: covered_within(candidate, self.admitted_for(groups, key))
                )
        return memo[key]

    def _every_rule_set(self, group_id: str, admits: Callable[[tuple[str, ...]], bool]) -> bool:
        """Does ``admits`` hold for the rules of every member of the group? Members in the same groups
        have the same rules, so each set of groups is asked once; and more rules only ever admit more
        (``permits.admitted`` grows with them), so a set that holds a set already passed is not asked."""
        passed: list[frozenset[str]] = []
        for groups, held in self.member_rule_sets(group_id):
            if any(smaller <= held for smaller in passed):
                continue
            if not admits(groups):
                return False
            passed.append(held)
        return True

    def member_rule_sets(self, group_id: str) -> list[tuple[tuple[str, ...], frozenset[str]]]:
        """The distinct sets of groups the group's current members are in (each member's rules), fewest
        groups first, each with the same groups as a set."""
        if group_id not in self._rule_sets:
            members = self.inventory.members.get(group_id, ())
            interfaces = self.inventory.interfaces
            distinct = dict.fromkeys(interfaces[eni].group_ids for eni in members)
            self._rule_sets[group_id] = sorted(
                ((groups, frozenset(groups)) for groups in distinct), key=lambda pair: len(pair[1])
            )
        return self._rule_sets[group_id]

    def admitted_for(self, groups: tuple[str, ...], key: RuleKey) -> tuple[Span, ...]:
        """Where the current rules of ``groups`` (an ENI's) admit ``key``'s protocol and ports
        (``permits.admitted``), kept per set of groups and port part: every group asks it of each
        member for every candidate rule."""
        memo = (groups, key.ip_protocol, key.from_port, key.to_port)
        if memo not in self._admitted:
            rules = [res for gid in groups for _, res in self.group(gid)]
            self._admitted[memo] = admitted(rules, key, protocol_number(key.ip_protocol))
        return self._admitted[memo]

    def covers(self, wide: Resolved, narrow: Resolved) -> bool:
        """``permits.covered(narrow, [wide])``, with what ``wide`` admits kept per port part: every
        proposed rule of a group is compared with each of its current rules, both ways."""
        memo = (wide.key, narrow.key.ip_protocol, narrow.key.from_port, narrow.key.to_port)
        if memo not in self._by_rule:
            self._by_rule[memo] = admitted([wide], narrow.key, narrow.proto)
        return covered_within(narrow, self._by_rule[memo])

    def member_families(self, group_id: str) -> frozenset[int]:
        """The IP versions of the addresses of a group's current members."""
        if group_id not in self._families:
            inventory = self.inventory
            self._families[group_id] = frozenset(
                parse_addr(address).version
                for eni in inventory.members.get(group_id, ())
                for address in inventory.interfaces[eni].addresses
            )
        return self._families[group_id]

    def identities(self, key: RuleKey) -> tuple[tuple[Span, ...], ...]:
        """The member addresses an SG reference ``key`` must admit (``permits.identity_addresses``),
        kept per referenced group and protocol."""
        memo = (key.value, key.ip_protocol)
        if memo not in self._identities:
            self._identities[memo] = identity_addresses(key, self.inventory)
        return self._identities[memo]

    def permits_key(self, key: RuleKey, flow: Flow) -> bool:
        return self.permits_flow(self.resolved(key), flow)


def flow_key(flow: Flow, kind: DestKind, value: str, icmp_from: SgRule | None = None) -> RuleKey:
    """The rule that permits exactly this flow's ports to ``value`` (canonical: a group id, or the text
    of an ``ip_network``)."""
    proto = protocol_name(flow.proto)
    if flow.proto in _PORTED:
        return _canonical_key(proto, flow.port_low, flow.port_high, kind, value)
    if flow.proto in _ICMPS:
        # Flow logs carry no ICMP type/code: reuse the permitting rule's, so the rule is never wider.
        if icmp_from is not None and icmp_from.ip_protocol == proto:
            return _canonical_key(proto, icmp_from.from_port, icmp_from.to_port, kind, value)
        return _canonical_key(proto, -1, -1, kind, value)
    return _canonical_key(proto, None, None, kind, value)


def _canonical_key(proto: str, low: int | None, high: int | None, kind: DestKind, value: str) -> RuleKey:
    """``make_key`` for a destination already canonical: its protocol and ports normalised the same way,
    without parsing the address again (the synthesis builds a key per flow)."""
    protocol, from_port, to_port = _port_part(proto, low, high)
    return RuleKey(protocol, from_port, to_port, kind, value)


@lru_cache(maxsize=65536)
def _port_part(proto: str, low: int | None, high: int | None) -> tuple[str, int | None, int | None]:
    """The protocol and ports ``make_key`` normalises to (a few distinct ones per estate)."""
    key = make_key(proto, low, high, _SG_REF, "")
    return key.ip_protocol, key.from_port, key.to_port


def host_key(flow: Flow, icmp_from: SgRule | None = None) -> RuleKey:
    addr = flow.addr
    kind = _CIDR4 if addr.version == 4 else _CIDR6
    return flow_key(flow, kind, _host_cidr(addr), icmp_from)


def _host_cidr(addr: Addr) -> str:
    """``str(ip_network(address))`` of a parsed address, without parsing it again."""
    return f"{addr}/{addr.max_prefixlen}"


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
            rules = book.permitting_resolved(gid, flow)
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
        _, gid, rules = min(candidates, key=lambda c: (c[0], c[1]))
        carried[gid].append(flow)
        book.remember_carrier(flow, gid, rules)
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
        entry = placed.get(key)
        if entry is None:
            entry = placed[key] = Placed(key=key, label=label, note=note)
        entry.flows.append(flow)

    def put_internet(key: RuleKey, flow: Flow | None, kind: str, naming: Naming) -> None:
        entry = placed.get(key)
        if entry is None:
            entry = placed[key] = Placed(key=key, label=naming.names[0] if naming.names else None)
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
        template = flow_key(flow, _CIDR4, "0.0.0.0/0", icmp_from)
        by_ports[template].append(flow)

    for template in sorted(by_ports, key=_key_order):
        remaining = list(by_ports[template])
        # (1) SG references (DESIGN §6 "Destinations"): the destination ENIs at the time of each flow,
        #     current or former; the smallest group that held them all and passes never wider, else for
        #     each flow the smallest of its own destination ENIs' groups that does.
        owners = {f: book.attribution.owners(f) for f in remaining}
        chosen = _reference_groups(owners, group_id, template, book)
        for ref, ref_flows in chosen.items():
            key = _with_destination(template, _SG_REF, ref)
            for f in ref_flows:
                put(key, f)
        carried_now = {f for ref_flows in chosen.values() for f in ref_flows}
        remaining = [f for f in remaining if f not in carried_now]
        # A destination whose ENIs are all gone: no address rule to what is no longer there.
        gone = [f for f in remaining if owners[f] and not any(o.current for o in owners[f])]
        if gone:
            if vanished is not None:
                vanished.extend(gone)
            gone_now = set(gone)
            remaining = [f for f in remaining if f not in gone_now]
        # (2) An AWS-managed prefix list that contains the destination.
        unlisted: list[Flow] = []
        for flow in remaining:
            plist = _managed_list_of(flow, book)
            if plist is not None:
                listed = _with_destination(template, _PREFIX_LIST, plist)
                if listed in placed or book.never_wider(listed, group_id):
                    put(listed, flow, inventory.prefix_lists[plist].name)
                    continue
            unlisted.append(flow)
        remaining = unlisted
        # (4) The internet: port-scoped, pinned or named by DNS (DESIGN §6 "Internet destinations").
        internet_flows = [
            f
            for f in remaining
            if not owners[f] and not f.service and is_internet_address(f.addr, book.vpc_networks)
        ]
        for flow in internet_flows:
            options = internet or InternetOptions()
            _place_internet(flow, icmp_source[flow], group_id, book, options, put_internet)
        internet_now = set(internet_flows)
        remaining = [f for f in remaining if f not in internet_now]
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
        if entry.key.kind is _SG_REF:
            entry.note = admits_note(entry.key.value, entry.flows, book)
    return prefer_current(_merge_ports(list(placed.values())), group_id, book)


def _place_internet(
    flow: Flow,
    icmp_from: SgRule | None,
    group_id: str,
    book: RuleBook,
    options: InternetOptions,
    put: Callable[[RuleKey, Flow | None, str, Naming], None],
) -> None:
    """Name one internet flow per the policy: pinned /32s (the flow's own address, and a stable name's
    other addresses where never wider), or the observed ports to the widest CIDR of the group's current
    rules that permit it (0.0.0.0/0 when that is what it has), never wider by construction. ``icmp_from``:
    the group's rule whose ICMP type and code an ICMP flow's rules take."""
    naming = name_flow(
        flow.remote, book.attribution.addresses_of(flow.eni), options, book.attribution.vpc_of(flow.eni)
    )
    if naming.pinned:
        put(host_key(flow, icmp_from), flow, "pinned", naming)
        for address in naming.pinned:
            if address == flow.remote:
                continue
            network = ipaddress.ip_network(address)
            kind = _CIDR4 if network.version == 4 else _CIDR6
            key = _with_destination(host_key(flow, icmp_from), kind, str(network))
            if book.never_wider(key, group_id):
                put(key, None, "pinned", naming)  # the name's other addresses: where it goes next
        return
    widest: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    for rule, res in book.permitting_resolved(group_id, flow):
        if rule.kind in (_CIDR4, _CIDR6) and res.nets:
            network = res.nets[0]  # a CIDR rule resolves to itself
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
    kind = _CIDR4 if widest.version == 4 else _CIDR6
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
    # Flows to the same destination ENIs ask the same questions: each is answered once per call.
    known: dict[tuple[tuple[tuple[str, ...], bool], ...], frozenset[str]] = {}
    passing: dict[frozenset[str], str | None] = {}

    def candidates(flow_owners: tuple[Owner, ...]) -> frozenset[str]:
        # A holder that is gone with all its groups has no identity left to name (an address handed
        # over within the flow's span): the holders that still have one decide.
        memo = tuple((o.groups, o.current) for o in flow_owners)
        if memo not in known:
            held = [{g for g in o.groups if g in inventory.groups} for o in flow_owners]
            named = [groups for groups, o in zip(held, flow_owners, strict=True) if groups or o.current]
            known[memo] = frozenset(set.intersection(*named) if named else set())
        return known[memo]

    def first_passing(groups: frozenset[str]) -> str | None:
        if groups not in passing:
            passing[groups] = None
            for _, gid in sorted((len(inventory.members.get(g, ())), g) for g in groups):
                if book.never_wider(_with_destination(template, _SG_REF, gid), group_id):
                    passing[groups] = gid
                    break
        return passing[groups]

    per_flow = {f: candidates(o) for f, o in owners.items() if o}
    per_flow = {f: c for f, c in per_flow.items() if c}
    if not per_flow:
        return {}
    everyone = first_passing(frozenset.intersection(*per_flow.values()))
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
    seen_families = {f.addr.version for f in flows}
    for family in sorted(book.member_families(ref) - seen_families):
        parts.append(f"also their IPv{family} addresses")
    return "; ".join(parts)


def _flow_order(flow: Flow) -> tuple[str, int, str, int, int]:
    return (flow.eni, flow.proto, flow.remote, flow.port_low, flow.port_high)


def prefer_current(proposed: list[Placed], group_id: str, book: RuleBook) -> list[Placed]:
    """Where a current rule permits exactly what a proposed rule permits, keep the current one: same
    privilege, no churn (e.g. ``udp 53 10.0.2.53/32`` and a reference to the resolver's one-member group)."""
    current = book.group(group_id)
    current_keys = {rule.key() for rule, _ in current}
    out: list[Placed] = []
    for placed in proposed:
        if placed.kept_rule is None and placed.key not in current_keys:
            candidate = book.resolved(placed.key)
            # A reference to a group with no member today admits nothing now, like any other such rule:
            # equal on the snapshot, yet not the same rule (it names the identity the flows reached).
            for rule, res in current if candidate.spans else ():
                if (
                    res.spans
                    and _same_port_part(res, candidate)
                    and book.covers(res, candidate)
                    and book.covers(candidate, res)
                ):
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


def _same_port_part(left: Resolved, right: Resolved) -> bool:
    """Can two rules permit the same (non-empty) traffic? Not with different protocols, nor with different
    tcp/udp port ranges: each would permit something the other does not. (ICMP is left to ``covered``: a
    rule to addresses ICMP cannot reach permits nothing.)"""
    if left.proto in _ICMP_NUMBERS or right.proto in _ICMP_NUMBERS:
        return True
    if left.proto != right.proto:
        return False
    return left.proto not in _PORTED or (left.low, left.high) == (right.low, right.high)


_ICMP_NUMBERS = frozenset(_ICMPS)


def _managed_list_of(flow: Flow, book: RuleBook) -> str | None:
    """The smallest AWS-managed prefix list (known entries) that contains the destination."""
    best: tuple[int, str] | None = None
    addr = flow.addr
    version, value = addr.version, int(addr)
    for plist in book.inventory.prefix_lists.values():
        if not plist.aws_managed or plist.entries is None:
            continue
        spans = book.prefix_list_spans(plist.prefix_list_id)
        if any(v == version and low <= value <= high for v, low, high in spans):
            candidate = (len(spans), plist.prefix_list_id)
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
        _KIND_VALUES[key.kind],
        _value_order(key),
    )


_KIND_VALUES = {kind: kind.value for kind in DestKind}  # an enum's .value is slow to read in a sort key


def _value_order(key: RuleKey) -> str:
    if key.kind in (_CIDR4, _CIDR6):
        return _cidr_order(key.value)
    return key.value


@lru_cache(maxsize=65536)
def _cidr_order(value: str) -> str:
    net = ipaddress.ip_network(value)
    return f"{net.version}:{int(net.network_address):040d}/{net.prefixlen:03d}"


def key_order(key: RuleKey) -> tuple[str, int, int, str, str]:
    """Deterministic rule order for every output."""
    return _key_order(key)


def strongest(flows: Sequence[Flow]) -> Confidence:
    best = max((f.confidence for f in flows), key=lambda c: c.rank, default=Confidence.LOW)
    return best
