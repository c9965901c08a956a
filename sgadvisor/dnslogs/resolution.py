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


@dataclass
class DnsLog:
    """The query logs of a window, ready for questions. Every query name is sensitive: ``names()`` is
    for --show-all-names only."""

    tables: Tables
    sources: list[str] = field(default_factory=list)  # files read
    shapes: dict[str, str] = field(default_factory=dict)  # file -> shape it was read as
    accounting: DnsAccounting = field(default_factory=DnsAccounting)

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
        rows = tables.rows_for_answers(tables.address_answers.get(address_id, []))
        client_ids = self._address_ids(clients)
        forwarder_ids = self._address_ids(forwarders) - client_ids
        in_vpc: pl.Expr = pl.lit(True)
        if vpc_id is not None:
            vpc = tables.vpcs.get(vpc_id)
            in_vpc = pl.lit(False) if vpc is None else pl.col("vpc") == vpc
        by_address = pl.col("inbound") == 0
        direct = rows.filter(by_address & in_vpc & pl.col("client").is_in(sorted(client_ids)))
        via_forwarder = by_address & in_vpc & pl.col("client").is_in(sorted(forwarder_ids))
        forwarded = rows.filter((pl.col("inbound") == 1) | via_forwarder)

        names = set(direct.get_column("name").to_list())
        answers = set(direct.get_column("answer").to_list())
        targets = self._targets(answers, stop_at=None) - names
        forwarded_names = set(forwarded.get_column("name").to_list()) - names
        via = {
            tables.endpoints.values[endpoint] if inbound else tables.addresses.values[client]
            for endpoint, inbound, client in forwarded.filter(pl.col("name").is_in(sorted(forwarded_names)))
            .select("endpoint", "inbound", "client")
            .iter_rows()
        }
        return NameMatch(
            address=canonical,
            names=self._sorted_names(names),
            chain_targets=self._ordered_targets(answers, targets),
            forwarded=self._sorted_names(forwarded_names),
            forwarded_via=tuple(sorted(via)),
            queries=int(direct.get_column("count").sum()),
        )

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
