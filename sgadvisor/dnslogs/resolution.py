"""Which DNS names resolved to an internet address for an ENI's addresses, and is a name stable?

DESIGN §6 "Internet destinations": every internet address gets the names that resolved to it for that
ENI's addresses in the window, CNAME chains followed; a name is *stable* in an address family when every
answer for it in the window (after CNAMEs) was the same set of addresses and it was seen in at least
``MIN_QUERIES`` queries on at least ``MIN_DAYS`` UTC days. The logs hold only what the Resolver logged,
and a resolver that caches is asked again only when the TTL runs out, so evidence is sparse: a name seen
too rarely is not stable, whatever it answered.

Forwarders. A query is the client's own evidence only when its ``srcaddr`` is the client. Two kinds of
query are not, and their names are kept apart (``NameMatch.forwarded``) so that the caller can say so:

- queries that came in through an inbound Resolver endpoint (``srcids.resolver_endpoint`` not
  ``rslvr-out-…``): their ``srcaddr`` is whatever sent the query to the endpoint (an on-premises DNS
  server, another network's forwarder, or a host of an overlapping address range elsewhere), never
  attributed to an ENI, even one with that address;
- queries whose ``srcaddr`` is a forwarding resolver inside the VPC (a DNS server on an instance that
  forwards to the Resolver): the log shows the forwarder, not the workload that asked. The logs do not
  mark these; the caller names them (``forwarders``: addresses it knows serve DNS, e.g. ENIs receiving
  udp/53 from other ENIs, or custom DNS servers of a DHCP option set).

Queries an outbound endpoint forwarded (``rslvr-out-…``) stay the client's own: the Resolver logs them
with the client's ``srcaddr`` and instance id.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import polars as pl

from sgadvisor.dnslogs.records import ADDRESS_FAMILIES, RecordError, normalize_name
from sgadvisor.dnslogs.store import QueryStore, Tables, family
from sgadvisor.models import DnsAccounting

MIN_QUERIES = 3  # queries of a name (in one family) before it can be stable
MIN_DAYS = 2  # distinct UTC days those queries span
_FAMILY_TYPES = {number: kind for kind, number in ADDRESS_FAMILIES.items()}  # 4 -> "A", 6 -> "AAAA"


@dataclass(frozen=True, slots=True)
class NameMatch:
    """The names that resolved to ``address``.

    ``names`` are the names the clients asked for (query names) whose answer, CNAMEs followed, held the
    address; ``chain_targets`` the CNAME targets on the way (a target the clients also asked for is a
    name, not a target). ``forwarded`` are names that resolved to the address only in queries from
    forwarders (see the module docstring), ``forwarded_via`` those forwarders (inbound endpoint ids and
    forwarder addresses); ``queries`` counts the clients' queries behind ``names``.
    """

    address: str
    names: tuple[str, ...] = ()
    chain_targets: tuple[str, ...] = ()
    forwarded: tuple[str, ...] = ()
    forwarded_via: tuple[str, ...] = ()
    queries: int = 0


@dataclass(frozen=True, slots=True)
class Stability:
    """What the logs say about one name in one address family (4 or 6).

    ``addresses`` is the union of every answer of that family for the name (CNAMEs followed),
    ``answer_sets`` how many different sets of addresses it answered, ``queries`` and ``days`` the
    evidence (NOERROR queries of the family's type, A or AAAA, not blocked, and the UTC days they fell
    on). ``stable``: one set, not empty, at least ``MIN_QUERIES`` queries on ``MIN_DAYS`` days."""

    name: str
    family: int
    stable: bool
    addresses: frozenset[str] = frozenset()
    queries: int = 0
    days: int = 0
    answer_sets: int = 0


class _AnswerRow(NamedTuple):
    """One grouped query row, as ``names_for`` reads it (ids of the interned values)."""

    name: int
    answer: int
    client: int | None
    vpc: int | None
    inbound: int
    endpoint: int | None
    queries: int  # the row's ``count``


_ANSWER_ROW_COLUMNS = ["name", "answer", "client", "vpc", "inbound", "endpoint", "count"]


@dataclass
class DnsLog:
    """The query logs of a window, ready for questions. Every query name is sensitive: ``names()`` is
    for --show-all-names only."""

    tables: Tables
    sources: list[str] = field(default_factory=list)  # files read
    shapes: dict[str, str] = field(default_factory=dict)  # file -> shape it was read as
    accounting: DnsAccounting = field(default_factory=DnsAccounting)
    _by_address: dict[int, list[_AnswerRow]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def empty(cls) -> DnsLog:
        return cls(QueryStore().finish())

    def names(self) -> list[str]:
        """Every name queried in the window, resolved or not, sorted (sensitive)."""
        values = self.tables.names.values
        return sorted(values[name] for name in self.tables.query_names)

    def names_for(
        self,
        clients: Iterable[str],
        address: str,
        *,
        forwarders: Iterable[str] = (),
        vpc_id: str | None = None,
    ) -> NameMatch:
        """The names that resolved to ``address`` for queries from ``clients`` (an ENI's own addresses),
        and apart from them those seen only through forwarders.

        ``vpc_id`` limits the matching of ``clients`` and ``forwarders`` to queries logged in that VPC
        (private addresses repeat across VPCs); inbound-endpoint queries are never matched by address."""
        canonical = _canonical(address) or address
        tables = self.tables
        address_id = tables.addresses.get(canonical)
        if address_id is None:
            return NameMatch(address=canonical)
        client_ids = self._address_ids(clients)
        forwarder_ids = self._address_ids(forwarders) - client_ids
        vpc: int | bool | None = True  # True: any VPC; None: a VPC no query was logged in
        if vpc_id is not None:
            vpc = tables.vpcs.get(vpc_id)
        names: set[int] = set()
        answers: set[int] = set()
        queries = 0
        forwarded: list[_AnswerRow] = []
        for row in self._rows_of_address(address_id):
            by_address = row.inbound == 0 and (vpc is True or (vpc is not None and row.vpc == vpc))
            if by_address and row.client in client_ids:
                names.add(row.name)
                answers.add(row.answer)
                queries += row.queries
            elif row.inbound == 1 or (by_address and row.client in forwarder_ids):
                forwarded.append(row)
        targets = self._targets(answers, stop_at=None) - names
        forwarded_names = {row.name for row in forwarded} - names
        via = {self._forwarded_by(row) for row in forwarded if row.name in forwarded_names}
        return NameMatch(
            address=canonical,
            names=self._sorted_names(names),
            chain_targets=self._ordered_targets(answers, targets),
            forwarded=self._sorted_names(forwarded_names),
            forwarded_via=tuple(sorted(via)),
            queries=queries,
        )

    def _forwarded_by(self, row: _AnswerRow) -> str:
        """Who forwarded a query: the inbound endpoint it came through, else the forwarding client."""
        tables = self.tables
        if row.inbound:
            return tables.endpoints.values[row.endpoint] if row.endpoint is not None else "inbound endpoint"
        return tables.addresses.values[row.client] if row.client is not None else "unknown client"

    def _rows_of_address(self, address_id: int) -> list[_AnswerRow]:
        """The grouped queries whose answers held the address, read from the engine once per address:
        the analysis asks ``names_for`` of every internet flow, often of one address many times (its
        ports, its clients), and a few engine filters per question cost a millisecond each."""
        found = self._by_address.get(address_id)
        if found is None:
            tables = self.tables
            rows = tables.rows_for_answers(tables.address_answers.get(address_id, []))
            found = self._by_address[address_id] = [
                _AnswerRow(*values) for values in rows.select(_ANSWER_ROW_COLUMNS).iter_rows()
            ]
        return found

    def stability(self, name: str, family: int) -> Stability:
        """Whether ``name`` answered one set of addresses of ``family`` (4 or 6) over enough queries and
        days to pin that set (``MIN_QUERIES`` on ``MIN_DAYS``)."""
        kind = _FAMILY_TYPES.get(family)
        if kind is None:
            raise ValueError(f"address family {family}: 4 or 6")
        key = self._name_id(name)
        qtype = self.tables.qtypes.get(kind)
        shown = self._normal(name) or name
        if key is None or qtype is None:
            return Stability(name=shown, family=family, stable=False)
        rows = self.tables.rows_for_name(key).filter(pl.col("qtype") == qtype)
        queries = int(rows.get_column("count").sum())
        days = rows.get_column("day").n_unique()
        sets = {
            frozenset(a for a in self.tables.answers[answer][1] if self._family_of(a) == family)
            for answer in set(rows.get_column("answer").to_list())
        }
        union = frozenset(self.tables.addresses.values[a] for s in sets for a in s)
        stable = len(sets) == 1 and bool(union) and queries >= MIN_QUERIES and days >= MIN_DAYS
        return Stability(
            name=shown,
            family=family,
            stable=stable,
            addresses=union,
            queries=queries,
            days=days,
            answer_sets=len(sets),
        )

    def chain_targets(self, name: str) -> tuple[str, ...]:
        """The CNAME targets seen for ``name``: the chains of its own answers, and where it was itself a
        target, what followed it. In chain order (nearest first), for DNS Firewall, which inspects every
        domain of a chain."""
        key = self._name_id(name)
        if key is None:
            return ()
        own = set(self.tables.rows_for_name(key).get_column("answer").to_list())
        through = set(self.tables.target_answers.get(key, []))
        targets = self._targets(own, stop_at=None) | self._targets(through, stop_at=key)
        targets.discard(key)
        return self._ordered_targets(own | through, targets, after=key)

    # ------------------------------------------------------------------------------------------ helpers

    def _address_ids(self, addresses: Iterable[str]) -> set[int]:
        found = set()
        for text in addresses:
            canonical = _canonical(text)
            key = self.tables.addresses.get(canonical) if canonical else None
            if key is not None:
                found.add(key)
        return found

    def _name_id(self, name: str) -> int | None:
        normal = self._normal(name)
        return self.tables.names.get(normal) if normal else None

    @staticmethod
    def _normal(name: str) -> str | None:
        try:
            return normalize_name(name)
        except RecordError:
            return None

    def _family_of(self, address: int) -> int:
        return family(self.tables.addresses.values[address])

    def _targets(self, answers: Iterable[int], *, stop_at: int | None) -> set[int]:
        """The chain targets of these answer sets; with ``stop_at``, only those after that name."""
        found: set[int] = set()
        for answer in answers:
            chain = self.tables.answers[answer][0]
            if stop_at is not None:
                chain = chain[chain.index(stop_at) + 1 :] if stop_at in chain else ()
            found.update(chain)
        return found

    def _ordered_targets(
        self, answers: Iterable[int], targets: set[int], *, after: int | None = None
    ) -> tuple[str, ...]:
        """``targets`` by their nearest position in the chains of ``answers`` (counted after ``after``
        where it is in the chain), then by name."""
        position: dict[int, int] = {}
        for answer in answers:
            chain = self.tables.answers[answer][0]
            if after is not None and after in chain:
                chain = chain[chain.index(after) + 1 :]
            for index, target in enumerate(chain):
                if target in targets:
                    position[target] = min(position.get(target, index), index)
        values = self.tables.names.values
        ordered = sorted(targets, key=lambda t: (position.get(t, len(values)), values[t]))
        return tuple(values[t] for t in ordered)

    def _sorted_names(self, names: Iterable[int]) -> tuple[str, ...]:
        values = self.tables.names.values
        return tuple(sorted(values[name] for name in names))


def _canonical(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None
