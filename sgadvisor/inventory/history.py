"""ENI history: which groups and addresses each ENI had, and when (DESIGN §4.3, §6 "Identity over time").

Built from AWS Config configuration items of ``AWS::EC2::NetworkInterface`` and CloudTrail events by
:mod:`sgadvisor.inventory.history_files`; plain frozen dataclasses here, so that attribution at the time
of a flow can ask:

* ``history.state_at(t)`` — what the ENI was at ``t`` (``None``: not alive then, or nothing known yet);
* ``history.life_in(start, end)`` — the window cut to the ENI's creation and deletion (§5 coverage);
* ``history.periods(start, end)`` / ``history.groups_during(start, end)`` — the pieces of its life in a
  span with the state of each, and the groups it held at any moment of it;
* ``histories.owner_of_address_at(address, t)`` — the ENI that held an address at ``t``.

Times are epoch seconds; spans are half-open ``[start, end)``. Every field of a state may be unknown
(``None``): a CloudTrail event says only what it changed, and a state before the first record that names
a field cannot be guessed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property

# EniState.instance_id when the ENI is known to be attached to no instance (None means unknown).
DETACHED = ""


@dataclass(frozen=True, slots=True, order=True)
class HistorySource:
    """One record that told us something: the file and the record's own identity."""

    file: str
    record: str  # "config <resourceId> <configurationStateId or capture time>" | "cloudtrail <eventID>"
    what: str = ""  # the Config status or the CloudTrail event name, for messages


@dataclass(frozen=True, slots=True)
class EniState:
    """What an ENI was from ``start`` until the next state (or its deletion). ``None`` = unknown."""

    start: int
    group_ids: tuple[str, ...] | None = None  # sorted
    addresses: tuple[str, ...] | None = None  # private IPv4 (primary first, then sorted) and IPv6, canonical
    vpc_id: str | None = None
    subnet_id: str | None = None
    interface_type: str | None = None
    requester_managed: bool | None = None
    description: str | None = None
    instance_id: str | None = None  # DETACHED ("") when known to be attached to no instance
    source: HistorySource | None = None  # the record this state comes from

    def same_facts(self, other: EniState) -> bool:
        """Equal in everything but when and who said it."""
        return all(getattr(self, name) == getattr(other, name) for name in STATE_FIELDS)


# The facts of a state (not its start or source), in a stable order for messages.
STATE_FIELDS: tuple[str, ...] = tuple(
    item.name for item in fields(EniState) if item.name not in ("start", "source")
)


@dataclass(frozen=True, slots=True)
class EniHistory:
    eni_id: str
    created: int | None = None  # epoch s; None = before anything we know
    deleted: int | None = None  # epoch s; None = still alive as far as we know
    states: tuple[EniState, ...] = ()  # sorted by start, none before created or at/after deleted
    sources: tuple[HistorySource, ...] = ()  # sorted

    def alive_at(self, t: int) -> bool:
        return (self.created is None or t >= self.created) and (self.deleted is None or t < self.deleted)

    def state_at(self, t: int) -> EniState | None:
        """The state holding at ``t``; None when the ENI was not alive then or nothing is known yet."""
        if not self.alive_at(t):
            return None
        found: EniState | None = None
        for state in self.states:
            if state.start > t:
                break
            found = state
        return found

    def life_in(self, window_start: int, window_end: int) -> tuple[int, int] | None:
        """The window cut to the ENI's creation and deletion; None when it did not live in it."""
        start = window_start if self.created is None else max(window_start, self.created)
        end = window_end if self.deleted is None else min(window_end, self.deleted)
        return (start, end) if start < end else None

    def periods(self, start: int, end: int) -> list[tuple[int, int, EniState | None]]:
        """The ENI's life in ``[start, end)`` cut at each state change: ``(from, to, state)``, with
        ``state`` None where nothing is known (before the first state)."""
        life = self.life_in(start, end)
        if life is None:
            return []
        lo, hi = life
        out: list[tuple[int, int, EniState | None]] = []
        cursor = lo
        current = self.state_at(lo)
        for state in self.states:
            if state.start <= lo:
                continue
            if state.start >= hi:
                break
            out.append((cursor, state.start, current))
            cursor, current = state.start, state
        out.append((cursor, hi, current))
        return out

    def groups_during(self, start: int, end: int) -> tuple[str, ...]:
        """Every group the ENI held at some moment of ``[start, end)`` (sorted). Spans whose groups are
        unknown add nothing: ask :meth:`unknown_groups_during` for them."""
        held = {gid for _, _, state in self.periods(start, end) if state and state.group_ids
                for gid in state.group_ids}  # fmt: skip
        return tuple(sorted(held))

    def unknown_groups_during(self, start: int, end: int) -> list[tuple[int, int]]:
        """The spans of the ENI's life in ``[start, end)`` where its groups are unknown."""
        return [(lo, hi) for lo, hi, state in self.periods(start, end)
                if state is None or state.group_ids is None]  # fmt: skip

    @property
    def last_state(self) -> EniState | None:
        return self.states[-1] if self.states else None


@dataclass(frozen=True)
class EniHistories(Mapping[str, EniHistory]):
    """ENI id → its history, with the by-address query attribution needs."""

    by_eni: Mapping[str, EniHistory] = field(default_factory=dict)

    def __getitem__(self, eni_id: str) -> EniHistory:
        return self.by_eni[eni_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_eni)

    def __len__(self) -> int:
        return len(self.by_eni)

    @cached_property
    def _by_address(self) -> Mapping[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for eni_id in sorted(self.by_eni):
            seen: set[str] = set()
            for state in self.by_eni[eni_id].states:
                for address in state.addresses or ():
                    if address not in seen:
                        seen.add(address)
                        out.setdefault(address, []).append(eni_id)
        return {address: tuple(enis) for address, enis in out.items()}

    def owner_of_address_at(self, address: str, t: int) -> str | None:
        return owner_of_address_at(self, address, t, _index=self._by_address)


def owner_of_address_at(
    histories: Mapping[str, EniHistory],
    address: str,
    t: int,
    *,
    _index: Mapping[str, tuple[str, ...]] | None = None,
) -> str | None:
    """The ENI that held ``address`` at ``t`` by its history (the lowest ENI id if several claim it),
    or None. ``address`` is compared in canonical form (``2A05::0310A`` == ``2a05::310a``)."""
    try:
        canonical = str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None
    candidates = _index.get(canonical, ()) if _index is not None else sorted(histories)
    for eni_id in candidates:
        state = histories[eni_id].state_at(t)
        if state is not None and state.addresses and canonical in state.addresses:
            return eni_id
    return None
