"""Compact storage of the queries that resolved, for millions of log lines.

Only what the questions need is kept: per (query name, query type, answer set, VPC, client address,
Resolver endpoint, UTC day) how many queries and when the first and last were. Strings are interned once
(names, addresses, VPC ids, endpoint ids, types); an answer set is interned as (CNAME chain, sorted
addresses) of ids, since a name answers with the same few sets over and over. Rows go to typed arrays
(about 30 bytes a query) and every ``FLUSH_ROWS`` are folded into a polars frame grouped by the key, so
memory grows with distinct keys, not with lines: a workload querying the same name all day is one row a
day. Queries that resolve nothing (NXDOMAIN, SERVFAIL, blocked) keep only their query name, for
``names()``.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import polars as pl

from sgadvisor.dnslogs.records import DnsQuery

FLUSH_ROWS = 1_000_000
_MAX_PARTS = 8  # folded frames kept before they are folded together
KEYS = ("name", "qtype", "answer", "vpc", "client", "endpoint", "inbound", "day")
_TYPES: dict[str, type[pl.DataType]] = {
    "name": pl.Int32,
    "qtype": pl.Int32,
    "answer": pl.Int32,
    "vpc": pl.Int32,
    "client": pl.Int32,
    "endpoint": pl.Int32,
    "inbound": pl.Int8,
    "day": pl.Int32,
}
NO_ENDPOINT = 0  # endpoint id of queries that passed no Resolver endpoint
Chain = tuple[int, ...]
AnswerKey = tuple[Chain, tuple[int, ...]]  # (CNAME targets in order, sorted unique address ids)


@dataclass
class Interner:
    """Strings to dense ids and back."""

    ids: dict[str, int] = field(default_factory=dict)
    values: list[str] = field(default_factory=list)

    def id(self, value: str) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.values)
            self.values.append(value)
        return found

    def get(self, value: str) -> int | None:
        return self.ids.get(value)


def family(address: str) -> int:
    """4 or 6, for a canonical address (only IPv6 is written with colons)."""
    return 6 if ":" in address else 4


@dataclass(frozen=True)
class Tables:
    """The finished store: one frame of grouped rows, sorted two ways, and the interned values."""

    by_name: pl.DataFrame  # KEYS + count, first, last; sorted by name
    by_answer: pl.DataFrame  # the same rows sorted by answer
    name_rows: dict[int, tuple[int, int]]  # name id -> (offset, length) in by_name
    answer_rows: dict[int, tuple[int, int]]  # answer id -> (offset, length) in by_answer
    names: Interner
    addresses: Interner
    vpcs: Interner
    endpoints: Interner
    qtypes: Interner
    answers: list[AnswerKey]
    address_answers: dict[int, list[int]]  # address id -> the answer sets holding it
    target_answers: dict[int, list[int]]  # name id -> the answer sets whose chain holds it
    query_names: frozenset[int]  # every name asked for, resolved or not

    def rows_for_name(self, name: int) -> pl.DataFrame:
        offset, length = self.name_rows.get(name, (0, 0))
        return self.by_name.slice(offset, length)

    def rows_for_answers(self, answers: list[int]) -> pl.DataFrame:
        slices = [self.by_answer.slice(*self.answer_rows[a]) for a in answers if a in self.answer_rows]
        return pl.concat(slices) if slices else self.by_answer.clear()


class QueryStore:
    """Collects queries while the files are read; ``finish`` turns them into Tables."""

    def __init__(self) -> None:
        self.names = Interner()
        self.addresses = Interner()
        self.vpcs = Interner()
        self.endpoints = Interner()
        self.endpoints.id("")  # NO_ENDPOINT
        self.qtypes = Interner()
        self._answer_ids: dict[AnswerKey, int] = {}
        self.answers: list[AnswerKey] = []
        self.address_answers: dict[int, list[int]] = {}
        self.target_answers: dict[int, list[int]] = {}
        self.query_names: set[int] = set()
        self._columns = self._empty_columns()
        self._ts = array("q")
        self._parts: list[pl.DataFrame] = []

    @staticmethod
    def _empty_columns() -> dict[str, array[int]]:
        return {key: array("b" if key == "inbound" else "i") for key in KEYS}

    def add(self, query: DnsQuery) -> None:
        name = self.names.id(query.query_name)
        self.query_names.add(name)
        if not query.resolves:
            return
        columns = self._columns
        columns["name"].append(name)
        columns["qtype"].append(self.qtypes.id(query.query_type))
        columns["answer"].append(self._answer(query))
        columns["vpc"].append(self.vpcs.id(query.vpc_id))
        columns["client"].append(self.addresses.id(query.srcaddr))
        columns["endpoint"].append(self.endpoints.id(query.resolver_endpoint or ""))
        columns["inbound"].append(1 if query.inbound else 0)
        columns["day"].append(query.timestamp // 86400)
        self._ts.append(query.timestamp)
        if len(self._ts) >= FLUSH_ROWS:
            self._flush()

    def _answer(self, query: DnsQuery) -> int:
        chain = tuple(self.names.id(target) for target in query.chain())
        addresses = tuple(sorted({self.addresses.id(a) for a in query.addresses()}))
        key = (chain, addresses)
        found = self._answer_ids.get(key)
        if found is None:
            found = self._answer_ids[key] = len(self.answers)
            self.answers.append(key)
            for address in addresses:
                self.address_answers.setdefault(address, []).append(found)
            for target in set(chain):
                self.target_answers.setdefault(target, []).append(found)
        return found

    def _flush(self) -> None:
        if not self._ts:
            return
        raw = pl.DataFrame(
            [pl.Series(key, values, dtype=_TYPES[key]) for key, values in self._columns.items()]
            + [pl.Series("ts", self._ts, dtype=pl.Int64)]
        )
        self._columns = self._empty_columns()
        self._ts = array("q")
        self._parts.append(
            raw.group_by(KEYS).agg(
                pl.len().cast(pl.Int64).alias("count"),
                pl.col("ts").min().alias("first"),
                pl.col("ts").max().alias("last"),
            )
        )
        if len(self._parts) > _MAX_PARTS:
            self._parts = [_fold(self._parts)]

    def finish(self) -> Tables:
        self._flush()
        frame = _fold(self._parts) if self._parts else _empty_frame()
        self._parts = []
        by_name, name_rows = _sorted_index(frame, "name")
        by_answer, answer_rows = _sorted_index(frame, "answer")
        return Tables(
            by_name=by_name,
            by_answer=by_answer,
            name_rows=name_rows,
            answer_rows=answer_rows,
            names=self.names,
            addresses=self.addresses,
            vpcs=self.vpcs,
            endpoints=self.endpoints,
            qtypes=self.qtypes,
            answers=self.answers,
            address_answers=self.address_answers,
            target_answers=self.target_answers,
            query_names=frozenset(self.query_names),
        )


def _fold(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return (
        pl.concat(parts)
        .group_by(KEYS)
        .agg(pl.col("count").sum(), pl.col("first").min(), pl.col("last").max())
    )


def _empty_frame() -> pl.DataFrame:
    schema: dict[str, type[pl.DataType]] = {**_TYPES, "count": pl.Int64, "first": pl.Int64, "last": pl.Int64}
    return pl.DataFrame(schema=schema)


def _sorted_index(frame: pl.DataFrame, key: str) -> tuple[pl.DataFrame, dict[int, tuple[int, int]]]:
    """The frame sorted by ``key`` (then the rest of the key, for a deterministic order) and where each
    value's rows are: a lookup is a slice, not a scan of every row."""
    ordered = frame.sort([key, *(k for k in KEYS if k != key)])
    bounds = (
        ordered.select(key)
        .with_row_index("_row")
        .group_by(key)
        .agg(pl.col("_row").min().alias("offset"), pl.len().alias("length"))
    )
    return ordered, {value: (offset, length) for value, offset, length in bounds.iter_rows()}
