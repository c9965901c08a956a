"""CIDR aggregation under an explicit tolerance, and the per-group rule budget (DESIGN §6 "Destinations").

Both widen the same way — merge rules of one protocol/port range into the smallest CIDR holding them —
and only ever to a rule that stays never wider (checked for every member of the group). Aggregation runs
only when the user gives a tolerance (addresses a merged CIDR may admit that no flow went to); the budget
(default 60 rules per IP family, prefix lists counted by MaxEntries or the AWS weight table) widens the
least costly way first and, when nothing never-wider is left, yields: the proposal is emitted over budget
with a warning.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sgadvisor.analysis.permits import Net
from sgadvisor.analysis.synthesis import Placed, RuleBook, key_order
from sgadvisor.rules import DestKind, RuleKey

DEFAULT_BUDGET = 60


@dataclass(frozen=True, slots=True)
class _Merge:
    added: int  # addresses the merged CIDR admits beyond the rules it replaces
    group: tuple[str, int | None, int | None, DestKind]
    supernet: Net
    members: tuple[int, ...]  # indices into the rule list


def aggregate(rules: list[Placed], group_id: str, book: RuleBook, tolerance: int) -> list[Placed]:
    """Merge CIDR rules while the cheapest merges admit at most ``tolerance`` new addresses."""
    while True:
        merges = [m for m in _merges(rules, group_id, book) if m.added <= tolerance]
        if not merges:
            return rules
        rules = _apply(rules, merges)


def enforce_budget(
    rules: list[Placed], group_id: str, book: RuleBook, budget: int
) -> tuple[list[Placed], str | None]:
    """Widen (never wider than today) until each IP family fits ``budget``; else say why not."""
    while True:
        usage = _usage(rules, book)
        excess = {family: used - budget for family, used in usage.items() if used > budget}
        if not excess:
            return rules, None
        merges = _merges(rules, group_id, book, families=set(excess), limit=max(excess.values()))
        if not merges:
            detail = ", ".join(f"IPv{f}: {usage[f]}" for f in sorted(excess))
            return rules, (
                f"{group_id}: proposal exceeds the rule budget of {budget} per IP family ({detail}); "
                "no never-wider widening is left, so it is emitted over budget"
            )
        rules = _apply(rules, merges)


def _usage(rules: Sequence[Placed], book: RuleBook) -> dict[int, int]:
    """Rules each IP family costs: one per rule, a prefix list its MaxEntries or AWS weight."""
    used = {4: 0, 6: 0}
    for rule in rules:
        key = rule.key
        if key.kind is DestKind.CIDR_IPV6:
            used[6] += 1
        elif key.kind is DestKind.PREFIX_LIST:
            plist = book.inventory.prefix_lists.get(key.value)
            family = 6 if plist is not None and plist.address_family == "IPv6" else 4
            used[family] += (plist.weight if plist is not None else None) or 1
        else:
            used[4] += 1
    return used


def _merges(
    rules: Sequence[Placed],
    group_id: str,
    book: RuleBook,
    families: set[int] | None = None,
    limit: int | None = None,
) -> list[_Merge]:
    """The cheapest never-wider merges of neighbouring CIDR rules, cheapest first, not overlapping
    (so one round can apply them all), at most ``limit`` of them."""
    buckets: dict[tuple[str, int | None, int | None, DestKind], list[tuple[Net, int]]] = defaultdict(list)
    for index, rule in enumerate(rules):
        key = rule.key
        if key.kind not in (DestKind.CIDR_IPV4, DestKind.CIDR_IPV6) or rule.kept_rule is not None:
            continue  # kept rules (pins, coverage) stay exactly as they are
        net = _network(key.value)
        if families is not None and net.version not in families:
            continue
        buckets[(key.ip_protocol, key.from_port, key.to_port, key.kind)].append((net, index))
    candidates: list[_Merge] = []
    for group, nets in sorted(buckets.items(), key=lambda item: str(item[0])):
        nets.sort(key=lambda pair: (int(pair[0].network_address), -pair[0].prefixlen))
        starts = [int(net.network_address) for net, _ in nets]
        for (left, _), (right, _) in itertools.pairwise(nets):
            supernet = _common_supernet(left, right)
            low, high = int(supernet.network_address), int(supernet.broadcast_address)
            first, last = bisect.bisect_left(starts, low), bisect.bisect_right(starts, high)
            inner = [(net, i) for net, i in nets[first:last] if net.subnet_of(supernet)]  # type: ignore[arg-type]
            blocks = [net for net, _ in inner]
            # Rules of one bucket do not overlap (distinct hosts, or blocks that absorbed their hosts).
            covered_size = sum(int(net.num_addresses) for net in blocks)
            inside = tuple(i for _, i in inner)
            candidates.append(_Merge(supernet.num_addresses - covered_size, group, supernet, inside))
    candidates.sort(
        key=lambda m: (
            m.added,
            m.supernet.version,
            int(m.supernet.network_address),
            m.supernet.prefixlen,
            str(m.group),
        )
    )
    chosen: list[_Merge] = []
    taken: set[int] = set()
    for merge in candidates:
        if limit is not None and len(chosen) >= limit:
            break
        if taken & set(merge.members):
            continue
        group = merge.group
        if book.never_wider(RuleKey(group[0], group[1], group[2], group[3], str(merge.supernet)), group_id):
            chosen.append(merge)
            taken.update(merge.members)
    return chosen


@lru_cache(maxsize=65536)
def _network(text: str) -> Net:
    return ipaddress.ip_network(text)


def _common_supernet(left: Net, right: Net) -> Net:
    bits = left.max_prefixlen
    diff = int(left.network_address) ^ int(right.network_address)
    prefix = min(left.prefixlen, right.prefixlen, bits - diff.bit_length())
    return left.supernet(new_prefix=prefix)


def _apply(rules: list[Placed], merges: Sequence[_Merge]) -> list[Placed]:
    replaced: set[int] = set()
    added: list[Placed] = []
    for merge in merges:
        group = merge.group
        merged = Placed(key=RuleKey(group[0], group[1], group[2], group[3], str(merge.supernet)))
        for index in merge.members:
            merged.flows.extend(rules[index].flows)
            merged.label = merged.label or rules[index].label
        replaced.update(merge.members)
        added.append(merged)
    kept = [rule for index, rule in enumerate(rules) if index not in replaced]
    return sorted([*kept, *added], key=lambda p: key_order(p.key))
