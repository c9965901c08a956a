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
    # For ``permits``, asked of every flow: the tcp/udp ports admitted, and the spans split into single
    # addresses (an SG reference's members: a set lookup) and wider blocks.
    low: int = 0
    high: int = 65535
    hosts: frozenset[tuple[int, int]] = frozenset()
    blocks: tuple[Span, ...] = ()

    @classmethod
    def of(cls, key: RuleKey, nets: tuple[Net, ...] | None) -> Resolved:
        spans = None if nets is None else tuple(_span(n) for n in nets)
        hosts = frozenset((v, first) for v, first, last in spans or () if first == last)
        blocks = tuple(span for span in spans or () if span[1] != span[2])
        return cls(key, nets, spans, None, 0, 65535, hosts, blocks).for_key(key)

    def for_key(self, key: RuleKey) -> Resolved:
        """The same destination under ``key``'s protocol and ports (every port part of a reference to
        one group resolves to the same members' addresses)."""
        low = key.from_port if key.from_port is not None else 0
        high = key.to_port if key.to_port is not None else 65535
        proto = protocol_number(key.ip_protocol)
        return Resolved(key, self.nets, self.spans, proto, low, high, self.hosts, self.blocks)


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
    return permits_at(rule, proto, addr.version, int(addr), port_low, port_high)


def permits_at(rule: Resolved, proto: int, version: int, value: int, port_low: int, port_high: int) -> bool:
    """``permits`` with the address as (IP version, integer value)."""
    if rule.nets is None:
        return False
    if (proto == _ICMP and version != 4) or (proto == _ICMPV6 and version != 6):
        return False  # ICMP reaches IPv4 addresses only, ICMPv6 IPv6 only
    rule_proto = rule.proto
    if rule_proto is not None:
        if rule_proto != proto:
            return False
        if proto in _PORTED and not (rule.low <= port_low and port_high <= rule.high):
            return False
    if (version, value) in rule.hosts:
        return True
    return any(v == version and low <= value <= high for v, low, high in rule.blocks)


def covered(candidate: Resolved, rules: Sequence[Resolved]) -> bool:
    """Is everything ``candidate`` permits also permitted by the union of ``rules``? (never wider)"""
    if candidate.spans is None:
        return False
    if not candidate.spans:
        return True
    return covered_within(candidate, admitted(rules, candidate.key, candidate.proto))


def covered_within(candidate: Resolved, admitted_spans: Sequence[Span]) -> bool:
    """``covered`` against the addresses some rules admit on the candidate's protocol and ports (from
    ``admitted``): callers that ask about many candidates of one port part against one rule set (every
    member's rules, per group) compute that set once."""
    if candidate.spans is None:
        return False
    spans = candidate.spans
    proto = candidate.proto
    if proto in (_ICMP, _ICMPV6):
        # ICMP reaches IPv4 addresses only, ICMPv6 IPv6 only: an SG reference's other family is moot.
        family = 4 if proto == _ICMP else 6
        spans = tuple(span for span in spans if span[0] == family)
    return _inside(spans, admitted_spans)


def admitted(rules: Sequence[Resolved], key: RuleKey, proto: int | None) -> tuple[Span, ...]:
    """The addresses to which the union of ``rules`` permits everything ``key``'s protocol (``proto``,
    its IANA number) and ports cover, as merged spans: a candidate rule with that protocol/port part is
    never wider exactly when its destination lies inside them. A set, so that a rule set's answer can be
    kept and asked of many destinations (every member of a referenced group, every flow's address)."""
    if proto is None:  # all protocols: only all-protocol rules can cover it
        return _merge([span for r in rules if r.proto is None for span in (r.spans or ())])
    same = [r for r in rules if r.nets is not None and (r.proto is None or r.proto == proto)]
    if proto in _PORTED:
        low = key.from_port if key.from_port is not None else 0
        high = key.to_port if key.to_port is not None else 65535
        return _ports_admitted(low, high, same)
    if proto in (_ICMP, _ICMPV6):
        icmp_type, icmp_code = key.from_port, key.to_port
        return _merge(
            [
                span
                for r in same
                if r.proto is None or _icmp_covers(r.key, icmp_type, icmp_code)
                for span in (r.spans or ())
            ]
        )
    return _merge([span for r in same for span in (r.spans or ())])


def identity_addresses(key: RuleKey, inventory: Inventory) -> tuple[tuple[Span, ...], ...]:
    """Per current member of the group an SG reference ``key`` names, the addresses a rule must admit
    one of (as single-address spans; ICMP (ICMPv6) reaches IPv4 (IPv6) addresses only); members with
    none of them are left out, as they constrain nothing."""
    family = {_ICMP: 4, _ICMPV6: 6}.get(protocol_number(key.ip_protocol) or -1)
    out = []
    for eni in inventory.members.get(key.value, ()):
        points = tuple(
            (addr.version, int(addr), int(addr))
            for addr in (parse_addr(a) for a in inventory.interfaces[eni].addresses)
            if family is None or addr.version == family
        )
        if points:
            out.append(points)
    return tuple(out)


def identities_within(identities: Iterable[tuple[Span, ...]], admitted_spans: Sequence[Span]) -> bool:
    """``covered_per_identity`` against an ``admitted`` set: every identity has an address inside it."""
    for points in identities:
        for version, value, _ in points:
            index = bisect.bisect_right(admitted_spans, (version, value, _TOP)) - 1
            if index >= 0 and admitted_spans[index][0] == version and value <= admitted_spans[index][2]:
                break
        else:
            return False
    return True


def covered_per_identity(key: RuleKey, inventory: Inventory, rules: Sequence[Resolved]) -> bool:
    """Never wider for an SG reference, judged per ENI identity (DESIGN §6 "Invariants"): every current
    member of the referenced group must be admitted by ``rules`` on the key's protocol and ports at one of
    its addresses at least. A reference to a dual-stack group is not wider than an IPv4-only rule that
    admitted its members; ICMP (ICMPv6) reaches a member's IPv4 (IPv6) addresses only."""
    identities = identity_addresses(key, inventory)
    if not identities:
        return True
    return identities_within(identities, admitted(rules, key, protocol_number(key.ip_protocol)))


def _icmp_covers(rule: RuleKey, icmp_type: int | None, icmp_code: int | None) -> bool:
    def field_covers(have: int | None, want: int | None) -> bool:
        return have is None or have == -1 or (want is not None and want != -1 and have == want)

    return field_covers(rule.from_port, icmp_type) and field_covers(rule.to_port, icmp_code)


def _ports_admitted(low: int, high: int, rules: Sequence[Resolved]) -> tuple[Span, ...]:
    """Split [low, high] at every rule boundary; an address is admitted when, for each piece, a rule
    spanning the piece holds it: the intersection over the pieces of the pieces' unions."""
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
    out: tuple[Span, ...] | None = None  # None: no piece yet, every address
    for start, stop in itertools.pairwise(points):
        piece = _merge(
            [
                span
                for r_low, r_high, rule in ranges
                if r_low <= start and stop - 1 <= r_high
                for span in (rule.spans or ())
            ]
        )
        out = piece if out is None else _intersect(out, piece)
        if not out:
            break
    return _EVERYWHERE if out is None else out


# Every address of both families: what an empty port range (no piece to cover) admits.
_EVERYWHERE: tuple[Span, ...] = ((4, 0, 2**32 - 1), (6, 0, 2**128 - 1))


def _merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Spans sorted and merged where they overlap or touch (integer addresses: 5 and 6 touch)."""
    merged: list[list[int]] = []
    for version, low, high in sorted(spans):
        if merged and merged[-1][0] == version and low <= merged[-1][2] + 1:
            merged[-1][2] = max(merged[-1][2], high)
        else:
            merged.append([version, low, high])
    return tuple((v, low, high) for v, low, high in merged)


def _intersect(left: Sequence[Span], right: Sequence[Span]) -> tuple[Span, ...]:
    """The addresses in both merged span lists (merged again)."""
    out: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        a, b = left[i], right[j]
        if (a[0], a[2]) < (b[0], b[1]):
            i += 1
        elif (b[0], b[2]) < (a[0], a[1]):
            j += 1
        else:  # same version, overlapping
            out.append((a[0], max(a[1], b[1]), min(a[2], b[2])))
            if (a[0], a[2]) < (b[0], b[2]):
                i += 1
            else:
                j += 1
    return _merge(out)


def _inside(spans: Iterable[Span], merged: Sequence[Span]) -> bool:
    """Each address range of ``spans`` lies inside one of the ``merged`` spans."""
    for version, low, high in spans:
        index = bisect.bisect_right(merged, (version, low, _TOP)) - 1
        if index < 0:
            return False
        m_version, _, m_high = merged[index]
        if m_version != version or high > m_high:
            return False
    return True


_TOP = 2**129  # above every address: bisects to the last merged span starting at or before a point
