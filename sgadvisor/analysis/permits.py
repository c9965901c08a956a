"""What a rule permits, evaluated on the snapshot, and the two questions the invariants ask of it:
does a rule permit this flow, and is a candidate rule covered by (never wider than) a set of rules?

A rule's destination resolves to address blocks: a CIDR is itself, an SG reference is its members'
current addresses (EC2: "allows the members' private IPs"), a prefix list is its current entries. A
prefix list whose entries are unknown is *opaque*: it permits nothing we can prove and covers nothing.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sgadvisor.inventory.model import Inventory
from sgadvisor.rules import DestKind, RuleKey, protocol_number

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address

_TCP, _UDP, _ICMP, _ICMPV6 = 6, 17, 1, 58
_PORTED = {_TCP, _UDP}


Span = tuple[int, int, int]  # (IP version, first address, last address) as integers


@dataclass(frozen=True, slots=True)
class Resolved:
    """A rule key with its destination resolved to address blocks (None: opaque)."""

    key: RuleKey
    nets: tuple[Net, ...] | None
    spans: tuple[Span, ...] | None = None  # the same blocks as integer ranges: what the checks use
    proto: int | None = None  # IANA number, None for all protocols

    @classmethod
    def of(cls, key: RuleKey, nets: tuple[Net, ...] | None) -> Resolved:
        spans = None if nets is None else tuple(_span(n) for n in nets)
        return cls(key, nets, spans, protocol_number(key.ip_protocol))


def _span(net: Net) -> Span:
    first = int(net.network_address)
    return net.version, first, first + net.num_addresses - 1


def resolve(key: RuleKey, inventory: Inventory) -> Resolved:
    """Resolve a rule's destination on the snapshot."""
    if key.kind in (DestKind.CIDR_IPV4, DestKind.CIDR_IPV6):
        return Resolved.of(key, (ipaddress.ip_network(key.value),))
    if key.kind is DestKind.SECURITY_GROUP:
        addresses = sorted(
            {a for eni in inventory.members.get(key.value, ()) for a in inventory.interfaces[eni].addresses},
            key=_addr_sort_key,
        )
        return Resolved.of(key, tuple(ipaddress.ip_network(a) for a in addresses))
    plist = inventory.prefix_lists.get(key.value)
    if plist is None or plist.entries is None:
        return Resolved.of(key, None)
    return Resolved.of(key, tuple(ipaddress.ip_network(c) for c in plist.entries))


def _addr_sort_key(text: str) -> tuple[int, int]:
    addr = ipaddress.ip_address(text)
    return addr.version, int(addr)


@lru_cache(maxsize=65536)
def parse_addr(text: str) -> Addr:
    return ipaddress.ip_address(text)


def permits(rule: Resolved, proto: int, addr: Addr, port_low: int, port_high: int) -> bool:
    """Does ``rule`` permit egress of ``proto`` to ``addr`` on every port in [port_low, port_high]?

    ICMP flows carry no type/code in flow logs: any ICMP rule to the destination counts (DESIGN §6).
    """
    if rule.nets is None:
        return False
    if (proto == _ICMP and addr.version != 4) or (proto == _ICMPV6 and addr.version != 6):
        return False  # ICMP reaches IPv4 addresses only, ICMPv6 IPv6 only
    key = rule.key
    rule_proto = rule.proto
    if rule_proto is not None:
        if rule_proto != proto:
            return False
        if proto in _PORTED:
            low = key.from_port if key.from_port is not None else 0
            high = key.to_port if key.to_port is not None else 65535
            if not (low <= port_low and port_high <= high):
                return False
    version, value = addr.version, int(addr)
    return any(v == version and low <= value <= high for v, low, high in rule.spans or ())


def covered(candidate: Resolved, rules: Sequence[Resolved]) -> bool:
    """Is everything ``candidate`` permits also permitted by the union of ``rules``? (never wider)"""
    if candidate.spans is None:
        return False
    spans = candidate.spans
    if not spans:
        return True
    key = candidate.key
    proto = candidate.proto
    if proto is None:  # all protocols: only all-protocol rules can cover it
        return _spans_covered(spans, [r for r in rules if r.proto is None])
    same = [r for r in rules if r.nets is not None and (r.proto is None or r.proto == proto)]
    if proto in _PORTED:
        low = key.from_port if key.from_port is not None else 0
        high = key.to_port if key.to_port is not None else 65535
        return _ports_covered(spans, low, high, same)
    if proto in (_ICMP, _ICMPV6):
        # ICMP reaches IPv4 addresses only, ICMPv6 IPv6 only: an SG reference's other family is moot.
        family = 4 if proto == _ICMP else 6
        family_spans = tuple(span for span in spans if span[0] == family)
        icmp_type, icmp_code = key.from_port, key.to_port
        fitting = [r for r in same if r.proto is None or _icmp_covers(r.key, icmp_type, icmp_code)]
        return _spans_covered(family_spans, fitting)
    return _spans_covered(spans, same)


def covered_per_identity(key: RuleKey, inventory: Inventory, rules: Sequence[Resolved]) -> bool:
    """Never wider for an SG reference, judged per ENI identity (DESIGN §6 "Invariants"): every current
    member of the referenced group must be admitted by ``rules`` on the key's protocol and ports at one of
    its addresses at least. A reference to a dual-stack group is not wider than an IPv4-only rule that
    admitted its members; ICMP (ICMPv6) reaches a member's IPv4 (IPv6) addresses only."""
    family = {_ICMP: 4, _ICMPV6: 6}.get(protocol_number(key.ip_protocol) or -1)
    for eni in inventory.members.get(key.value, ()):
        addresses = [
            net
            for net in (ipaddress.ip_network(a) for a in inventory.interfaces[eni].addresses)
            if family is None or net.version == family
        ]
        if addresses and not any(covered(Resolved.of(key, (net,)), rules) for net in addresses):
            return False
    return True


def _icmp_covers(rule: RuleKey, icmp_type: int | None, icmp_code: int | None) -> bool:
    def field_covers(have: int | None, want: int | None) -> bool:
        return have is None or have == -1 or (want is not None and want != -1 and have == want)

    return field_covers(rule.from_port, icmp_type) and field_covers(rule.to_port, icmp_code)


def _ports_covered(spans: tuple[Span, ...], low: int, high: int, rules: Sequence[Resolved]) -> bool:
    """Split [low, high] at every rule boundary; each piece needs its own address cover."""
    ranges: list[tuple[int, int, Resolved]] = []
    for rule in rules:
        if rule.proto is None:
            ranges.append((0, 65535, rule))
        else:
            r_low = rule.key.from_port if rule.key.from_port is not None else 0
            r_high = rule.key.to_port if rule.key.to_port is not None else 65535
            ranges.append((r_low, r_high, rule))
    cuts = {low, high + 1}
    for r_low, r_high, _ in ranges:
        for point in (r_low, r_high + 1):
            if low < point <= high:
                cuts.add(point)
    points = sorted(cuts)
    for start, stop in itertools.pairwise(points):
        piece_rules = [rule for r_low, r_high, rule in ranges if r_low <= start and stop - 1 <= r_high]
        if not _spans_covered(spans, piece_rules):
            return False
    return True


def _spans_covered(spans: Iterable[Span], rules: Sequence[Resolved]) -> bool:
    """Each address range of ``spans`` lies inside the union of the rules' ranges (merged)."""
    union = sorted(span for r in rules for span in (r.spans or ()))
    merged: list[list[int]] = []
    for version, low, high in union:
        if merged and merged[-1][0] == version and low <= merged[-1][2] + 1:
            merged[-1][2] = max(merged[-1][2], high)
        else:
            merged.append([version, low, high])
    keys = [(v, low) for v, low, _ in merged]
    for version, low, high in spans:
        index = bisect.bisect_right(keys, (version, low)) - 1
        if index < 0:
            return False
        m_version, _, m_high = merged[index]
        if m_version != version or high > m_high:
            return False
    return True
