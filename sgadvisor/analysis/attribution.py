"""Attribution at the time of a flow (DESIGN §6 "Identity over time").

The inventory is the end of the window; the flows cover all of it. With ENI history a flow belongs to the
groups its ENI had *while it happened*, and its destination is the ENI that held that address *then*,
with that ENI's groups then. A flow is an aggregate: all we know of when it happened is
``[first, last]``, so every question here is asked over that span, and an answer may name several
states (an ENI that changed groups mid-flow, an address handed from one ENI to another).

Without history every answer is the inventory's, exactly as before: a current ENI held its current
groups and addresses for the whole window. With history, a span where the history knows nothing of a
current ENI (before its first record) falls back to the inventory too.

The one object answers for recommend and check alike, so that both attribute a flow the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from sgadvisor.analysis.flows import Flow
from sgadvisor.inventory.history import EniHistory
from sgadvisor.inventory.kinds import INFRASTRUCTURE_TYPES, canonical_interface_type
from sgadvisor.inventory.model import Inventory


@dataclass(frozen=True, slots=True)
class Owner:
    """An ENI that held a destination address during a flow, with the groups it had meanwhile."""

    eni: str
    groups: tuple[str, ...]  # every group it held then, sorted (deleted groups included)
    current: bool  # still in the end-of-window inventory
    last_held: int  # the last second of the flow's span at which it held the address


class Attribution:
    """Who sent a flow and who received it, at the time of the flow."""

    def __init__(self, inventory: Inventory, window_start: int, window_end: int) -> None:
        self.inventory = inventory
        self.start = window_start
        self.end = window_end
        self._groups: dict[tuple[str, int, int], tuple[str, ...]] = {}
        self._owners: dict[tuple[str, int, int], tuple[Owner, ...]] = {}
        # Without history, per ENI and per address: the answers do not depend on the flow's time.
        self._sources: dict[str, tuple[str, ...]] = {}
        self._holders: dict[str, tuple[str, tuple[str, ...]] | None] = {}

    # ------------------------------------------------------------------------------------- sources

    @cached_property
    def formers(self) -> Mapping[str, tuple[str, ...]]:
        """ENIs of the history that the inventory lacks, with the groups they held in the window (only
        those whose groups the history knows: the others stay unattributed)."""
        out: dict[str, tuple[str, ...]] = {}
        history = self.inventory.history
        for eni in sorted(history):
            if eni in self.inventory.interfaces:
                continue
            held = history[eni].groups_during(self.start, self.end)
            if held:
                out[eni] = held
        return out

    @cached_property
    def former_infrastructure(self) -> frozenset[str]:
        """Former ENIs whose InterfaceType (by the history) is a NAT or transit gateway's."""
        history = self.inventory.history
        return frozenset(
            eni
            for eni in self.formers
            if any(
                state.interface_type is not None
                and canonical_interface_type(state.interface_type) in INFRASTRUCTURE_TYPES
                for state in history[eni].states
            )
        )

    def known(self, eni: str) -> bool:
        """Can the ENI's flows be attributed to groups (in the inventory, or a former member)?"""
        return eni in self.inventory.interfaces or eni in self.formers

    def members_in_window(self, group_ids: Iterable[str]) -> set[str]:
        """The ENIs that held any of ``group_ids`` at some moment of the window: current members and
        former ones."""
        wanted = set(group_ids)
        members = {eni for gid in wanted for eni in self.inventory.members.get(gid, ())}
        members |= {eni for gid in wanted for eni in self._formers_of.get(gid, ())}
        return members

    @cached_property
    def _formers_of(self) -> Mapping[str, tuple[str, ...]]:
        """Group → the former ENIs that held it in the window (``formers`` inverted: asked per group)."""
        out: dict[str, list[str]] = {}
        for eni, held in self.formers.items():
            for gid in held:
                out.setdefault(gid, []).append(eni)
        return {gid: tuple(enis) for gid, enis in out.items()}

    def groups_then(self, eni: str, first: int | None, last: int | None) -> tuple[str, ...]:
        """Every group the ENI held while the flow happened (sorted; deleted groups included)."""
        lo, hi = self._span(first, last)
        memo = (eni, lo, hi)
        if memo not in self._groups:
            self._groups[memo] = self._held_groups(eni, lo, hi)
        return self._groups[memo]

    def source_groups(self, flow: Flow) -> tuple[str, ...]:
        """The groups that can carry the flow: those its ENI had then that still exist."""
        groups = self.inventory.groups
        if not self.inventory.history:  # the inventory's groups, whenever the flow happened
            found = self._sources.get(flow.eni)
            if found is None:
                held = self.groups_then(flow.eni, None, None)
                found = self._sources[flow.eni] = tuple(gid for gid in held if gid in groups)
            return found
        return tuple(gid for gid in self.groups_then(flow.eni, flow.first, flow.last) if gid in groups)

    def _held_groups(self, eni: str, lo: int, hi: int) -> tuple[str, ...]:
        itf = self.inventory.interfaces.get(eni)
        today = itf.group_ids if itf is not None else ()
        history = self.inventory.history.get(eni)
        if history is None:
            return tuple(sorted(today))
        held: set[str] = set()
        periods = history.periods(lo, hi)
        for _, _, state in periods:
            if state is None or state.group_ids is None:
                held.update(today)  # nothing known of that stretch: the inventory's, if any
            else:
                held.update(state.group_ids)
        if not periods:
            # Records outside the life the history knows: the history is incomplete, so fall back to the
            # inventory, else to the last groups the history saw.
            last = next((s.group_ids for s in reversed(history.states) if s.group_ids is not None), None)
            held.update(today or last or ())
        return tuple(sorted(held))

    def addresses_of(self, eni: str) -> tuple[str, ...]:
        """Every address the ENI had in the window: the inventory's, and its history's."""
        itf = self.inventory.interfaces.get(eni)
        out = list(itf.addresses) if itf is not None else []
        history = self.inventory.history.get(eni)
        for state in history.states if history is not None else ():
            out += [a for a in state.addresses or () if a not in out]
        return tuple(out)

    def vpc_of(self, eni: str) -> str | None:
        itf = self.inventory.interfaces.get(eni)
        if itf is not None:
            return itf.vpc_id
        history = self.inventory.history.get(eni)
        return next((s.vpc_id for s in reversed(history.states) if s.vpc_id), None) if history else None

    # --------------------------------------------------------------------------------- destinations

    def owners(self, flow: Flow) -> tuple[Owner, ...]:
        """The ENIs that held the flow's destination address while it happened, sorted by ENI id;
        empty when no ENI of the inventory or the history holds it."""
        lo, hi = self._span(flow.first, flow.last)
        address = flow.remote
        if not self.inventory.history:
            return self._current_owner(flow, hi)
        memo = (address, lo, hi)
        if memo not in self._owners:
            self._owners[memo] = self._find_owners(address, lo, hi)
        return self._owners[memo]

    def _current_owner(self, flow: Flow, hi: int) -> tuple[Owner, ...]:
        """``owners`` without history: the inventory's holder of the address all along, if any (kept per
        address; only the last second of the span differs from flow to flow)."""
        address = flow.remote
        if address not in self._holders:
            try:
                canonical = str(flow.addr)
            except ValueError:
                canonical = None
            eni = None if canonical is None else self.inventory.owner_of_address.get(canonical)
            held = () if eni is None else tuple(sorted(set(self.groups_then(eni, None, None))))
            self._holders[address] = None if eni is None else (eni, held)
        holder = self._holders[address]
        if holder is None:
            return ()
        return (Owner(holder[0], holder[1], True, hi - 1),)

    def vanished(self, flow: Flow) -> bool:
        """Was the flow's destination an ENI that is gone, with every group it had? Such a flow is never
        turned into a rule (DESIGN §6 "Destinations"), and no check asks a rule for it."""
        if not self.inventory.history:
            return False  # every holder is an ENI of the inventory: current
        owners = self.owners(flow)
        groups = self.inventory.groups
        return bool(owners) and not any(o.current or any(g in groups for g in o.groups) for o in owners)

    @cached_property
    def _history_holders(self) -> Mapping[str, tuple[str, ...]]:
        """Address (canonical) → ENIs whose history shows it at some time."""
        out: dict[str, set[str]] = {}
        for eni, history in self.inventory.history.items():
            for state in history.states:
                for address in state.addresses or ():
                    out.setdefault(address, set()).add(eni)
        return {address: tuple(sorted(enis)) for address, enis in out.items()}

    def _find_owners(self, address: str, lo: int, hi: int) -> tuple[Owner, ...]:
        try:
            canonical = str(ipaddress.ip_address(address))
        except ValueError:
            return ()
        found: dict[str, Owner] = {}
        claimed: list[tuple[int, int]] = []  # the stretches of [lo, hi) some history shows it held
        history = self.inventory.history
        current = self.inventory.owner_of_address.get(canonical)
        candidates = set(self._history_holders.get(canonical, ()))
        if current is not None and current in history:
            candidates.add(current)  # its history may know nothing of its addresses (CloudTrail)
        for eni in sorted(candidates):
            stretches = _holding(history[eni], canonical, lo, hi, eni == current)
            if stretches:
                claimed += stretches
                found[eni] = self._owner(eni, stretches)
        if current is not None and current not in found and current not in history:
            # A current ENI without history held its address all along, except where a history shows
            # another ENI holding it (an address handed over).
            rest = _uncovered(lo, hi, claimed)
            if rest:
                found[current] = self._owner(current, rest)
        if not found and current is None:
            # Traffic to an address no ENI held at the time, by the history: it is still the address of
            # the ENI that held it last before (else first after), never an address free for a rule.
            nearest = self._nearest_holder(canonical, lo)
            if nearest is not None:
                found[nearest.eni] = nearest
        return tuple(found[eni] for eni in sorted(found))

    def _nearest_holder(self, address: str, t: int) -> Owner | None:
        best: tuple[tuple[int, int], str, tuple[str, ...], int] | None = None
        for eni in self._history_holders.get(address, ()):
            for state in self.inventory.history[eni].states:
                if address in (state.addresses or ()) and state.group_ids is not None:
                    rank = (0, t - state.start) if state.start <= t else (1, state.start - t)
                    if best is None or (rank, eni) < (best[0], best[1]):
                        best = (rank, eni, state.group_ids, state.start)
        if best is None:
            return None
        _, eni, groups, start = best
        return Owner(eni, tuple(sorted(groups)), eni in self.inventory.interfaces, start)

    def _owner(self, eni: str, stretches: list[tuple[int, int]]) -> Owner:
        groups: set[str] = set()
        for start, stop in stretches:
            groups.update(self.groups_then(eni, start, stop - 1))
        return Owner(
            eni=eni,
            groups=tuple(sorted(groups)),
            current=eni in self.inventory.interfaces,
            last_held=max(stop for _, stop in stretches) - 1,
        )

    def _span(self, first: int | None, last: int | None) -> tuple[int, int]:
        """A flow's span as a half-open interval; the window when the format carries no times."""
        lo = self.start if first is None else first
        hi = self.end if last is None else last + 1
        return lo, max(hi, lo + 1)


def _holding(history: EniHistory, address: str, lo: int, hi: int, current: bool) -> list[tuple[int, int]]:
    """The stretches of ``[lo, hi)`` in which the ENI held ``address`` by its history; for the ENI that
    holds it today, stretches its history knows nothing of count as held too."""
    out: list[tuple[int, int]] = []
    for start, stop, state in history.periods(lo, hi):
        if state is None or state.addresses is None:
            if current:
                out.append((start, stop))
        elif address in state.addresses:
            out.append((start, stop))
    return out


def _uncovered(lo: int, hi: int, claimed: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[lo, hi)`` outside every claimed stretch."""
    out: list[tuple[int, int]] = []
    cursor = lo
    for start, stop in sorted(claimed):
        if start > cursor:
            out.append((cursor, min(start, hi)))
        cursor = max(cursor, stop)
        if cursor >= hi:
            break
    if cursor < hi:
        out.append((cursor, hi))
    return [(a, b) for a, b in out if a < b]
