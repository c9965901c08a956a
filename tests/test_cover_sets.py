"""``covered`` and ``covered_per_identity`` answer from admitted-address sets (permits.py), computed once
per rule set and port part; this checks them against the piece-by-piece merge they replaced, kept here as
the oracle, on rules drawn from a small universe (overlapping, touching and disjoint blocks of both
families, every protocol kind, opaque prefix lists, port ranges that cut each other)."""

from __future__ import annotations

import bisect
import ipaddress
import itertools
from collections.abc import Iterable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from sgadvisor.analysis.permits import (
    Resolved,
    Span,
    admitted,
    covered,
    covered_per_identity,
    covered_within,
    identities_within,
    identity_addresses,
    parse_addr,
    permits,
)
from sgadvisor.inventory.model import Interface, Inventory, SecurityGroup
from sgadvisor.rules import DestKind, RuleKey

_BLOCKS = [
    "10.0.0.0/30", "10.0.0.4/30", "10.0.0.0/29", "10.0.0.5/32", "10.0.0.8/32", "10.0.0.9/32",
    "10.0.1.0/24", "0.0.0.0/0", "2001:db8::/126", "2001:db8::4/127", "2001:db8::5/128", "::/0",
]  # fmt: skip
_PROTOCOLS = ["-1", "tcp", "udp", "icmp", "icmpv6", "50"]
_PORTS = [None, -1, 0, 3, 22, 23, 24, 443, 65535]
_ICMP_FIELDS = [(-1, -1), (3, -1), (3, 4), (8, 0), (None, None)]


@st.composite
def _keys(draw: st.DrawFn) -> RuleKey:
    proto = draw(st.sampled_from(_PROTOCOLS))
    ports = sorted(
        draw(st.lists(st.sampled_from([p for p in _PORTS if p is not None]), min_size=2, max_size=2))
    )
    low: int | None = ports[0]
    high: int | None = ports[1]
    if proto == "-1":
        low = high = None
    elif proto in ("icmp", "icmpv6"):
        low, high = draw(st.sampled_from(_ICMP_FIELDS))
    return RuleKey(proto, low, high, DestKind.CIDR_IPV4, "x")


@st.composite
def _resolved(draw: st.DrawFn) -> Resolved:
    key = draw(_keys())
    if draw(st.integers(0, 9)) == 0:
        return Resolved.of(key, None)  # an opaque prefix list
    nets = tuple(ipaddress.ip_network(b) for b in draw(st.lists(st.sampled_from(_BLOCKS), max_size=3)))
    return Resolved.of(key, nets)


def _oracle_covered(candidate: Resolved, rules: Sequence[Resolved]) -> bool:
    """The previous implementation of ``covered``, in substance."""
    if candidate.spans is None:
        return False
    spans = candidate.spans
    if not spans:
        return True
    key = candidate.key
    proto = candidate.proto
    if proto is None:
        return _oracle_spans(spans, [r for r in rules if r.proto is None])
    same = [r for r in rules if r.nets is not None and (r.proto is None or r.proto == proto)]
    if proto in (6, 17):
        low = key.from_port if key.from_port is not None else 0
        high = key.to_port if key.to_port is not None else 65535
        return _oracle_ports(spans, low, high, same)
    if proto in (1, 58):
        family = 4 if proto == 1 else 6
        family_spans = tuple(span for span in spans if span[0] == family)
        fitting = [r for r in same if r.proto is None or _icmp_fits(r.key, key.from_port, key.to_port)]
        return _oracle_spans(family_spans, fitting)
    return _oracle_spans(spans, same)


def _icmp_fits(rule: RuleKey, icmp_type: int | None, icmp_code: int | None) -> bool:
    def field_covers(have: int | None, want: int | None) -> bool:
        return have is None or have == -1 or (want is not None and want != -1 and have == want)

    return field_covers(rule.from_port, icmp_type) and field_covers(rule.to_port, icmp_code)


def _oracle_ports(spans: tuple[Span, ...], low: int, high: int, rules: Sequence[Resolved]) -> bool:
    ranges = []
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
    for start, stop in itertools.pairwise(sorted(cuts)):
        piece_rules = [rule for r_low, r_high, rule in ranges if r_low <= start and stop - 1 <= r_high]
        if not _oracle_spans(spans, piece_rules):
            return False
    return True


def _oracle_spans(spans: Iterable[Span], rules: Sequence[Resolved]) -> bool:
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


def _oracle_permits(rule: Resolved, proto: int, address: str, port_low: int, port_high: int) -> bool:
    """The previous ``permits``: every span tried in turn."""
    addr = ipaddress.ip_address(address)
    if rule.nets is None:
        return False
    if (proto == 1 and addr.version != 4) or (proto == 58 and addr.version != 6):
        return False
    key = rule.key
    if rule.proto is not None:
        if rule.proto != proto:
            return False
        if proto in (6, 17):
            low = key.from_port if key.from_port is not None else 0
            high = key.to_port if key.to_port is not None else 65535
            if not (low <= port_low and port_high <= high):
                return False
    return any(v == addr.version and low <= int(addr) <= high for v, low, high in rule.spans or ())


@settings(max_examples=3000)
@given(_resolved(), st.lists(_resolved(), max_size=6))
def test_covered_answers_as_the_piece_by_piece_merge(candidate: Resolved, rules: list[Resolved]) -> None:
    expected = _oracle_covered(candidate, rules)
    assert covered(candidate, rules) == expected
    assert covered_within(candidate, admitted(rules, candidate.key, candidate.proto)) == expected


_ADDRESSES = ["10.0.0.0", "10.0.0.5", "10.0.0.8", "10.0.0.10", "10.0.1.7", "9.9.9.9", "2001:db8::5", "::1"]


@settings(max_examples=1500)
@given(
    _resolved(),
    st.sampled_from([1, 6, 17, 50, 58]),
    st.sampled_from(_ADDRESSES),
    st.sampled_from([0, 3, 22, 23, 24, 443, 65535]),
    st.sampled_from([0, 3, 22, 23, 24, 443, 65535]),
)
def test_permits_answers_as_before(rule: Resolved, proto: int, address: str, first: int, second: int) -> None:
    low, high = sorted((first, second))
    expected = _oracle_permits(rule, proto, address, low, high)
    assert permits(rule, proto, parse_addr(address), low, high) == expected


_MEMBER_ADDRESSES = [("10.0.0.5",), ("10.0.0.8", "2001:db8::5"), ("2001:db8::4",), ("10.0.1.7",), ()]


@settings(max_examples=1500)
@given(
    _keys(),
    st.lists(st.sampled_from(_MEMBER_ADDRESSES), max_size=4),
    st.lists(_resolved(), max_size=6),
)
def test_covered_per_identity_answers_as_before(
    port_part: RuleKey, members: list[tuple[str, ...]], rules: list[Resolved]
) -> None:
    interfaces = {
        f"eni-{i:04d}": Interface(f"eni-{i:04d}", addresses, ("sg-ref",))
        for i, addresses in enumerate(members)
    }
    inventory = Inventory(groups={"sg-ref": SecurityGroup("sg-ref", "ref", None)}, interfaces=interfaces)
    key = port_part._replace(kind=DestKind.SECURITY_GROUP, value="sg-ref")
    family = {"icmp": 4, "icmpv6": 6}.get(key.ip_protocol)
    expected = True
    for eni in inventory.members["sg-ref"]:
        nets = [ipaddress.ip_network(a) for a in interfaces[eni].addresses]
        nets = [n for n in nets if family is None or n.version == family]
        if nets and not any(_oracle_covered(Resolved.of(key, (n,)), rules) for n in nets):
            expected = False
    assert covered_per_identity(key, inventory, rules) == expected
    identities = identity_addresses(key, inventory)
    assert identities_within(identities, admitted(rules, key, Resolved.of(key, ()).proto)) == expected


@settings(max_examples=1500)
@given(_keys(), st.lists(_resolved(), max_size=5), st.lists(_resolved(), max_size=3))
def test_more_rules_admit_more(port_part: RuleKey, rules: list[Resolved], more: list[Resolved]) -> None:
    """``RuleBook.never_wider`` skips a member whose groups include those of a member already passed:
    that holds only because adding rules never takes an address out of the admitted set."""
    proto = Resolved.of(port_part, ()).proto
    fewer = admitted(rules, port_part, proto)
    assert covered_within(Resolved(port_part, (), fewer, proto), admitted([*rules, *more], port_part, proto))
