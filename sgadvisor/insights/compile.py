"""Compile parsed Logs Insights commands into one lazy column-engine plan (no per-row Python).

Every command becomes a LazyFrame step, so filters, parse and aggregation run inside the engine and
the optimiser can push the time range and filters down and turn ``sort … | limit N`` into a top-k.

Types follow the service loosely but predictably (CWL_QuerySyntax-operations-functions):
- a value is a number, a string, a timestamp or a boolean; a field the events do not have is null;
- comparing a number with a string compares numbers when the string is numeric (``dstPort = '22'``
  equals 22) and text otherwise; a string field in arithmetic or ``sum``/``avg`` is read as a number
  (values from ``parse`` are strings, as in Insights);
- a comparison or function with a null operand is false in ``filter``; ``not`` of it is also dropped.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl

from sgadvisor.insights.language import (
    AGGREGATES,
    Binary,
    Call,
    Command,
    DedupCmd,
    DisplayCmd,
    Duration,
    Expr,
    Field,
    FieldsCmd,
    FilterCmd,
    InList,
    Item,
    Like,
    LimitCmd,
    Literal,
    ParseCmd,
    Query,
    QuerySyntaxError,
    Regex,
    SortCmd,
    SortKey,
    StatsCmd,
    Unary,
    UnsupportedQueryError,
)

TIMESTAMP = "@timestamp"
MESSAGE = "@message"
DEFAULT_COLUMNS = (TIMESTAMP, MESSAGE)  # what a query without fields/display/stats shows
NUMERIC_TEXT = r"^-?[0-9]+(\.[0-9]+)?$"  # a "number value" in the sort docs' sense
_NUMERIC_TEXT_RE = re.compile(NUMERIC_TEXT)


class Kind(StrEnum):
    NUM = "number"
    STR = "string"
    TIME = "timestamp"
    BOOL = "boolean"
    NULL = "null"


@dataclass(frozen=True, slots=True)
class Typed:
    """A compiled expression with what the query language sees it as."""

    expr: pl.Expr
    kind: Kind
    literal: str | int | float | None = None  # the value, when the expression is a literal


@dataclass
class Plan:
    """The compiled query: the result frame, the events that passed the filters, the columns shown."""

    result: pl.LazyFrame
    matched: pl.LazyFrame
    columns: list[str]
    final_limit: int | None  # a trailing `limit N`, applied by the executor as the cap
    warnings: list[str] = field(default_factory=list)


def kind_of(dtype: pl.DataType) -> Kind:
    if dtype.is_numeric():
        return Kind.NUM
    if isinstance(dtype, pl.Datetime | pl.Date):
        return Kind.TIME
    if dtype == pl.Boolean:
        return Kind.BOOL
    if dtype == pl.Null:
        return Kind.NULL
    return Kind.STR


def build_plan(query: Query, events: pl.LazyFrame) -> Plan:
    """Turn the commands into lazy steps over ``events`` (whose @timestamp is already a Datetime)."""
    return _Builder(query, events).build()


# ---------------------------------------------------------------------------------------------- commands


class _Builder:
    def __init__(self, query: Query, events: pl.LazyFrame) -> None:
        self.query = query
        self.lf = events
        self.schema: dict[str, pl.DataType] = dict(events.collect_schema())
        self.warnings: list[str] = []
        self.visible: list[str] | None = None  # None: the default @timestamp, @message
        self.sorted = False
        self.aggregated = False
        self.matched: pl.LazyFrame | None = None

    def build(self) -> Plan:
        commands = list(self.query.commands)
        final_limit: int | None = None
        last = commands[-1] if commands else None
        if isinstance(last, LimitCmd):
            final_limit = last.count
            commands.pop()
        for command in commands:
            self.apply(command)
        if self.matched is None:
            self.matched = self.lf
        if not self.sorted and not self.aggregated:
            self.sort_default()
        columns = list(DEFAULT_COLUMNS) if self.visible is None else self.visible
        return Plan(self.lf, self.matched, columns, final_limit, self.warnings)

    def refresh(self) -> None:
        self.schema = dict(self.lf.collect_schema())

    def apply(self, command: Command) -> None:
        if isinstance(command, StatsCmd | LimitCmd | DedupCmd) and self.matched is None:
            self.matched = self.lf  # records_matched: events that passed the filters before these
        if isinstance(command, FilterCmd):
            self.lf = self.lf.filter(self.condition(command.condition))
        elif isinstance(command, FieldsCmd):
            self.project(command.items, replace=False)
        elif isinstance(command, DisplayCmd):
            self.project(command.items, replace=True)
        elif isinstance(command, ParseCmd):
            self.parse(command)
        elif isinstance(command, StatsCmd):
            self.stats(command)
        elif isinstance(command, SortCmd):
            self.sort(command.keys)
        elif isinstance(command, DedupCmd):
            self.dedup(command)
        elif isinstance(command, LimitCmd):
            if not self.sorted and not self.aggregated:
                self.sort_default()
            self.lf = self.lf.head(command.count)
        self.refresh()

    def compiler(self) -> _ExprCompiler:
        return _ExprCompiler(self.query.text, self.schema, self.warnings)

    def condition(self, node: Expr) -> pl.Expr:
        typed = self.compiler().compile(node)
        return as_bool(typed, self.query.text, node).fill_null(False)

    def project(self, items: Sequence[Item], *, replace: bool) -> None:
        """fields/display: computed items become columns; the names join (or replace) what is shown."""
        compiler = self.compiler()
        exprs = []
        for item in items:
            if isinstance(item.expr, Field) and not item.aliased and item.name in self.schema:
                continue
            exprs.append(compiler.compile(item.expr).expr.alias(item.name))
        if exprs:
            self.lf = self.lf.with_columns(exprs)
        names = list(dict.fromkeys(item.name for item in items))
        if replace:  # display: exactly these, whatever fields said before
            self.visible = names
        else:  # fields: shown in addition to the fields of earlier commands
            shown = self.visible or []
            self.visible = [*shown, *(n for n in names if n not in shown)]

    def parse(self, command: ParseCmd) -> None:
        compiler = self.compiler()
        source = as_str(compiler.compile(command.source))
        separator = uniform_separator(command.pattern) if not command.regex else None
        if separator is not None:
            self.lf = self.lf.with_columns(split_fields(source, separator, list(command.names)))
            return
        if command.regex:
            regex, names = regex_groups(self.query.text, command)
        else:
            regex, names = glob_regex(command.pattern), list(command.names)
        check_regex(self.query.text, command.pattern_start, regex)
        extracted = source.str.extract_groups(regex)
        self.lf = self.lf.with_columns(
            extracted.struct.field(f"g{i}").alias(name) for i, name in enumerate(names)
        )

    def stats(self, command: StatsCmd) -> None:
        compiler = self.compiler()
        by = [compiler.compile(item.expr).expr.alias(item.name) for item in command.by]
        aggs = [compiler.compile_aggregate(item.expr).expr.alias(item.name) for item in command.aggregates]
        names = [item.name for item in (*command.by, *command.aggregates)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise QuerySyntaxError(
                self.query.text,
                command.start,
                f"stats produces {', '.join(duplicates)} twice; add 'as' aliases",
            )
        if by:
            keys = [item.name for item in command.by]
            # Deterministic order when no sort follows: by the group keys.
            self.lf = self.lf.group_by(by).agg(aggs).sort(keys, nulls_last=True)
        else:
            # One row over all matched events, none when nothing matched (the service shows no rows).
            counted = self.lf.select(*aggs, pl.len().alias("_n"))
            self.lf = counted.filter(pl.col("_n") > 0).drop("_n")
        self.visible = names
        self.aggregated = True
        self.sorted = False

    def sort(self, keys: Sequence[SortKey]) -> None:
        compiler = self.compiler()
        by: list[pl.Expr] = []
        descending: list[bool] = []
        for key in keys:
            typed = compiler.compile(key.expr)
            parts = sort_keys(typed)
            by.extend(parts)
            descending.extend([key.descending] * len(parts))
        self.lf = self.lf.sort(by, descending=descending, nulls_last=True, maintain_order=True)
        self.sorted = True

    def sort_default(self) -> None:
        """Without a sort, results come most recent first (CWL_QuerySyntax-Dedup: "the default
        descending sort order using @timestamp")."""
        if TIMESTAMP in self.schema:
            self.lf = self.lf.sort(TIMESTAMP, descending=True, nulls_last=True, maintain_order=True)
        self.sorted = True

    def dedup(self, command: DedupCmd) -> None:
        if not self.sorted and not self.aggregated:
            self.sort_default()
        compiler = self.compiler()
        columns = [compiler.compile(f).expr.alias(f"_d{i}") for i, f in enumerate(command.fields)]
        # CWL_QuerySyntax-Dedup: the first in sort order is kept; "Null values are not considered
        # duplicates for evaluation. Log events with null values for any of the specified fields are
        # retained."
        any_null = pl.any_horizontal(c.is_null() for c in columns)
        first = pl.struct(columns).is_first_distinct()
        self.lf = self.lf.filter(any_null | first)


# ---------------------------------------------------------------------------------------------- parse


def glob_regex(pattern: str) -> str:
    """A glob (``*`` wildcards) as an unanchored regex with groups g0…: each ``*`` takes the least
    text up to the literal that follows it; a trailing ``*`` takes the rest of the value."""
    parts = pattern.split("*")
    out = ["(?s)"]
    for index, literal in enumerate(parts):
        out.append(escape_regex(literal))
        if index < len(parts) - 1:
            greedy = index == len(parts) - 2 and parts[-1] == ""
            out.append(f"(?P<g{index}>.*)" if greedy else f"(?P<g{index}>.*?)")
    return "".join(out)


def uniform_separator(pattern: str) -> str | None:
    """The separator of a glob made only of wildcards and one repeated literal ("* * *", "*,*"), which
    a plain split reproduces exactly (the flow-log case, and much faster than the regex)."""
    parts = pattern.split("*")
    inner = parts[1:-1]
    if len(parts) < 3 or parts[0] or parts[-1] or len(set(inner)) != 1 or not inner[0]:
        return None
    return inner[0]


def split_fields(source: pl.Expr, separator: str, names: list[str]) -> list[pl.Expr]:
    """`*S*S*` on a value: each wildcard up to the next separator, the last takes the rest; a value
    with fewer separators does not match, and then every extracted field is null."""
    parts = source.str.splitn(separator, len(names))
    matched = source.str.count_matches(separator, literal=True) >= len(names) - 1
    return [pl.when(matched).then(parts.struct.field(f"field_{i}")).alias(n) for i, n in enumerate(names)]


_REGEX_META = set("\\.+*?()|[]{}^$#&-~")


def escape_regex(text: str) -> str:
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in text)


_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_@.]*)>")


def regex_groups(query: str, command: ParseCmd) -> tuple[str, list[str]]:
    """Rename the named groups of a parse regex to g0… (field names may hold @ or .)."""
    names: list[str] = []

    def rename(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"(?P<g{len(names) - 1}>"

    regex = _NAMED_GROUP.sub(rename, command.pattern)
    if not names:
        raise QuerySyntaxError(
            query, command.pattern_start, "a parse regular expression needs named groups such as (?<name>…)"
        )
    return regex, names


def check_regex(query: str, offset: int, regex: str) -> None:
    """Reject a pattern the engine cannot compile now, at its position, not at run time."""
    try:
        pl.select(pl.lit("").str.contains(regex))
    except pl.exceptions.PolarsError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "invalid"
        raise QuerySyntaxError(query, offset, f"invalid regular expression: {reason}") from None


# ---------------------------------------------------------------------------------------------- coercion


def as_num(typed: Typed) -> pl.Expr:
    if typed.kind is Kind.NUM:
        return typed.expr
    if typed.kind is Kind.TIME:
        return typed.expr.dt.epoch("ms")
    if typed.kind is Kind.BOOL:
        return typed.expr.cast(pl.Int64)
    if typed.kind is Kind.NULL:
        return typed.expr.cast(pl.Float64)
    return typed.expr.cast(pl.Float64, strict=False)


def as_str(typed: Typed) -> pl.Expr:
    if typed.kind is Kind.STR:
        return typed.expr
    if typed.kind is Kind.NUM:
        return render_number(typed.expr)
    if typed.kind is Kind.TIME:
        return typed.expr.dt.strftime("%Y-%m-%d %H:%M:%S%.3f")
    if typed.kind is Kind.BOOL:
        return pl.when(typed.expr).then(pl.lit("true")).when(~typed.expr).then(pl.lit("false"))
    return typed.expr.cast(pl.String)


def render_number(expr: pl.Expr) -> pl.Expr:
    """Numbers as the service prints them: integral values without a trailing .0."""
    as_float = expr.cast(pl.Float64)
    integral = as_float.is_finite() & (as_float == as_float.floor()) & (as_float.abs() < 1e15)
    return pl.when(integral).then(as_float.cast(pl.Int64).cast(pl.String)).otherwise(as_float.cast(pl.String))


def as_bool(typed: Typed, query: str, node: Expr) -> pl.Expr:
    if typed.kind is Kind.BOOL:
        return typed.expr
    if typed.kind is Kind.NUM:
        return typed.expr != 0
    if typed.kind is Kind.NULL:
        return typed.expr.cast(pl.Boolean)
    raise QuerySyntaxError(query, node.start, "expected a condition (a comparison or a true/false function)")


def numeric_literal(value: str | int | float | None) -> float | int | None:
    """The number a literal stands for: 22 for 22 and for '22'; None for text."""
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMERIC_TEXT_RE.match(value):
        return float(value) if "." in value else int(value)
    return None


def sort_keys(typed: Typed) -> list[pl.Expr]:
    """Sort keys that reproduce the service's order (CWL_QuerySyntax-Sort): numbers numerically; for
    text, "all non-number values come before all number values", numbers among them numerically, the
    others in natural order. Text is ranked once per distinct value (the cost follows the number of
    distinct values, never the number of events) and sorted by that rank."""
    if typed.kind is not Kind.STR:
        return [typed.expr]
    rank: pl.Expr = typed.expr.map_batches(natural_ranks, return_dtype=pl.UInt32)
    return [rank]


_CHUNKS = re.compile(r"([0-9]+)")


def natural_key(value: str) -> tuple[int, float, tuple[tuple[str, int, int], ...]]:
    """Number values last, by value; other text chunk by chunk: non-digit chunks by Unicode, digit
    chunks by length first and then by value (CWL_QuerySyntax-Sort)."""
    if _NUMERIC_TEXT_RE.match(value):
        return (1, float(value), ())
    chunks = tuple(
        ("0", len(chunk), int(chunk)) if chunk.isdigit() else (chunk, 0, 0)
        for chunk in _CHUNKS.split(value)
        if chunk
    )
    return (0, 0.0, chunks)


def natural_ranks(values: pl.Series) -> pl.Series:
    distinct = sorted(values.drop_nulls().unique().to_list(), key=natural_key)
    ranks = {value: rank for rank, value in enumerate(distinct)}
    return values.replace_strict(ranks, default=None, return_dtype=pl.UInt32)


# ---------------------------------------------------------------------------------------------- expressions

_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
_ARITHMETIC = ("+", "-", "*", "/", "%", "^")


class _ExprCompiler:
    """Compile one expression against the current columns; unknown fields warn and read as null."""

    def __init__(self, query: str, schema: dict[str, pl.DataType], warnings: list[str]) -> None:
        self.query = query
        self.schema = schema
        self.warnings = warnings
        self.in_aggregate = False

    def error(self, node: Expr, explanation: str) -> QuerySyntaxError:
        return QuerySyntaxError(self.query, node.start, explanation)

    def compile(self, node: Expr) -> Typed:
        if isinstance(node, Field):
            return self.field(node)
        if isinstance(node, Literal):
            if isinstance(node.value, str):
                return Typed(pl.lit(node.value, pl.String), Kind.STR, node.value)
            dtype = pl.Float64 if isinstance(node.value, float) else pl.Int64
            return Typed(pl.lit(node.value, dtype), Kind.NUM, node.value)
        if isinstance(node, Regex):
            raise self.error(node, "a regular expression is only valid after like, =~ or in parse")
        if isinstance(node, Duration):
            raise self.error(node, "a duration is only valid inside bin()")
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Like):
            return self.like(node)
        if isinstance(node, InList):
            return self.in_list(node)
        return self.call(node)

    def field(self, node: Field) -> Typed:
        dtype = self.schema.get(node.name)
        if dtype is None:
            self.warn_unknown(node.name)
            return Typed(pl.lit(None), Kind.NULL)
        return Typed(pl.col(node.name), kind_of(dtype))

    def warn_unknown(self, name: str) -> None:
        known = [n for n in self.schema if not n.startswith("_")]
        folded = {n.lower(): n for n in known}
        guess = folded.get(name.lower()) or next(iter(difflib.get_close_matches(name, known, n=1)), None)
        text = f"unknown field {name}" + (
            f" (did you mean {guess}?)" if guess else " (no such field in these events: it reads as null)"
        )
        if text not in self.warnings:
            self.warnings.append(text)

    def unary(self, node: Unary) -> Typed:
        operand = self.compile(node.operand)
        if node.op == "not":
            return Typed(~as_bool(operand, self.query, node.operand), Kind.BOOL)
        return Typed(-as_num(operand), Kind.NUM)

    def binary(self, node: Binary) -> Typed:
        left, right = self.compile(node.left), self.compile(node.right)
        if node.op in ("and", "or"):
            lhs, rhs = as_bool(left, self.query, node.left), as_bool(right, self.query, node.right)
            return Typed(lhs & rhs if node.op == "and" else lhs | rhs, Kind.BOOL)
        if node.op in _COMPARISONS:
            return Typed(compare(node.op, left, right), Kind.BOOL)
        return Typed(arithmetic(node.op, as_num(left), as_num(right)), Kind.NUM)

    def like(self, node: Like) -> Typed:
        subject = as_str(self.compile(node.subject))
        if isinstance(node.pattern, Regex):
            check_regex(self.query, node.pattern.start, node.pattern.pattern)
            matched = subject.str.contains(node.pattern.pattern)
        else:  # a quoted pattern is a case-sensitive substring (CWL_QuerySyntax: regular expressions)
            matched = subject.str.contains(str(node.pattern.value), literal=True)
        return Typed(~matched if node.negated else matched, Kind.BOOL)

    def in_list(self, node: InList) -> Typed:
        subject = self.compile(node.subject)
        numbers = [n for n in (numeric_literal(i.value) for i in node.items) if n is not None]
        texts = [str(i.value) for i in node.items if isinstance(i.value, str)]
        tests: list[pl.Expr] = []
        if subject.kind in (Kind.NUM, Kind.TIME) or (subject.kind is Kind.STR and numbers):
            tests.append(
                as_num(subject).cast(pl.Float64).is_in(pl.lit(pl.Series(numbers, dtype=pl.Float64)).implode())
            )
        if texts and subject.kind is not Kind.NUM:  # text never equals a number: skipped for numbers
            tests.append(as_str(subject).is_in(pl.lit(pl.Series(texts, dtype=pl.String)).implode()))
        found = pl.any_horizontal(tests) if tests else pl.lit(False)
        if subject.kind is Kind.NULL:
            found = pl.lit(None, pl.Boolean)
        return Typed(~found if node.negated else found, Kind.BOOL)

    # -- functions

    def call(self, node: Call) -> Typed:
        if node.name in AGGREGATES:
            if not self.in_aggregate:
                raise self.error(node, f"{node.name}() is an aggregate: it can only be used in stats")
            raise self.error(node, f"{node.name}() cannot be nested in another aggregate")
        handler = _SCALARS.get(node.name)
        if handler is None:  # the parser only lets through functions it knows
            raise UnsupportedQueryError(f"the function {node.name}()")
        return handler(self, node)

    def subnet_test(self, node: Call, family: int | None) -> Typed:
        target, cidr = node.args
        if not isinstance(cidr, Literal) or not isinstance(cidr.value, str):
            raise self.error(cidr, f'{node.name}() takes the subnet as a quoted string, e.g. "10.0.0.0/16"')
        try:
            network = ipaddress.ip_network(cidr.value.strip(), strict=False)
        except ValueError:
            raise self.error(cidr, f"{cidr.value!r} is not a subnet in CIDR notation") from None
        if family is not None and network.version != family:
            raise self.error(cidr, f"{cidr.value!r} is not an IPv{family} subnet")
        address = as_str(self.compile(target))
        if isinstance(network, ipaddress.IPv4Network):
            return Typed(ipv4_in_network(address, network).fill_null(False), Kind.BOOL)
        return Typed(ipv6_in_network(address, network), Kind.BOOL)

    def bin(self, node: Call) -> Typed:
        (duration,) = node.args
        assert isinstance(duration, Duration)
        if TIMESTAMP not in self.schema:
            self.warn_unknown(TIMESTAMP)
            return Typed(pl.lit(None), Kind.NULL)
        every = f"{duration.amount}{duration.unit}"
        return Typed(pl.col(TIMESTAMP).dt.truncate(every), Kind.TIME)

    def ispresent(self, node: Call) -> Typed:
        (target,) = node.args
        typed = self.compile(target)
        return Typed(typed.expr.is_not_null(), Kind.BOOL)

    def coalesce(self, node: Call) -> Typed:
        args = [self.compile(a) for a in node.args]
        kinds = {a.kind for a in args} - {Kind.NULL}
        if len(kinds) <= 1:
            kind = kinds.pop() if kinds else Kind.NULL
            return Typed(pl.coalesce([a.expr for a in args]), kind)
        return Typed(pl.coalesce([as_str(a) for a in args]), Kind.STR)

    def numeric(self, node: Call, apply: Callable[[pl.Expr], pl.Expr]) -> Typed:
        (arg,) = node.args
        return Typed(apply(as_num(self.compile(arg))), Kind.NUM)

    def extreme(self, node: Call, largest: bool) -> Typed:
        values = [as_num(self.compile(a)).cast(pl.Float64) for a in node.args]
        return Typed(pl.max_horizontal(values) if largest else pl.min_horizontal(values), Kind.NUM)

    # -- aggregates

    def compile_aggregate(self, node: Expr) -> Typed:
        """A stats item: aggregates, possibly combined with arithmetic and literals."""
        if isinstance(node, Call) and node.name in AGGREGATES:
            return self.aggregate(node)
        if isinstance(node, Binary) and node.op in _ARITHMETIC:
            left, right = self.compile_aggregate(node.left), self.compile_aggregate(node.right)
            return Typed(arithmetic(node.op, as_num(left), as_num(right)), Kind.NUM)
        if isinstance(node, Unary) and node.op == "-":
            return Typed(-as_num(self.compile_aggregate(node.operand)), Kind.NUM)
        if isinstance(node, Literal) and not isinstance(node.value, str):
            return self.compile(node)
        if isinstance(node, Call) and node.name in ("floor", "ceil", "abs", "greatest", "least"):
            args = [self.compile_aggregate(a) for a in node.args]
            return _aggregate_scalar(node.name, [as_num(a) for a in args])
        raise self.error(node, "stats takes aggregate functions (count, sum, avg, …) before 'by'")

    def aggregate(self, node: Call) -> Typed:
        self.in_aggregate = True
        try:
            if node.name == "count" and (node.star or not node.args):
                return Typed(pl.len().cast(pl.Int64), Kind.NUM)
            (arg,) = node.args
            value = self.compile(arg)
        finally:
            self.in_aggregate = False
        if node.name == "count":
            return Typed(value.expr.count().cast(pl.Int64), Kind.NUM)
        if node.name == "count_distinct":
            # The service may approximate for high cardinality; offline the count is exact.
            return Typed(value.expr.drop_nulls().n_unique().cast(pl.Int64), Kind.NUM)
        if node.name == "sum":
            return Typed(as_num(value).sum(), Kind.NUM)
        if node.name == "avg":
            return Typed(as_num(value).mean(), Kind.NUM)
        if node.name in ("min", "max"):
            if value.kind is Kind.STR:
                return Typed(_text_extreme(value.expr, node.name == "min"), Kind.STR)
            base = value.expr if value.kind is not Kind.BOOL else as_num(value)
            kind = value.kind if value.kind is not Kind.BOOL else Kind.NUM
            return Typed(base.min() if node.name == "min" else base.max(), kind)
        # earliest/latest: the value from the event with the earliest/latest @timestamp.
        if TIMESTAMP not in self.schema:
            raise self.error(node, f"{node.name}() needs @timestamp, which is gone after an earlier stats")
        stamp = pl.col(TIMESTAMP)
        index = stamp.arg_min() if node.name == "earliest" else stamp.arg_max()
        return Typed(value.expr.get(index), value.kind)


def _text_extreme(text: pl.Expr, smallest: bool) -> pl.Expr:
    """min/max of text values (e.g. fields from ``parse``): by number when every value is numeric, as
    Insights compares numeric text (9 < 10000), else by text. The original text of that row is kept."""
    number = text.cast(pl.Float64, strict=False)
    all_numeric = (number.is_not_null() | text.is_null()).all() & text.is_not_null().any()
    picked = text.get(number.arg_min() if smallest else number.arg_max())
    return pl.when(all_numeric).then(picked).otherwise(text.min() if smallest else text.max())


def _aggregate_scalar(name: str, args: list[pl.Expr]) -> Typed:
    if name == "floor":
        return Typed(args[0].cast(pl.Float64).floor(), Kind.NUM)
    if name == "ceil":
        return Typed(args[0].cast(pl.Float64).ceil(), Kind.NUM)
    if name == "abs":
        return Typed(args[0].abs(), Kind.NUM)
    floats = [a.cast(pl.Float64) for a in args]
    return Typed(pl.max_horizontal(floats) if name == "greatest" else pl.min_horizontal(floats), Kind.NUM)


_SCALARS: dict[str, Callable[[_ExprCompiler, Call], Typed]] = {
    "isipv4insubnet": lambda c, n: c.subnet_test(n, 4),
    "isipv6insubnet": lambda c, n: c.subnet_test(n, 6),
    "isipinsubnet": lambda c, n: c.subnet_test(n, None),
    "floor": lambda c, n: c.numeric(n, lambda e: e.cast(pl.Float64).floor()),
    "ceil": lambda c, n: c.numeric(n, lambda e: e.cast(pl.Float64).ceil()),
    "abs": lambda c, n: c.numeric(n, lambda e: e.abs()),
    "greatest": lambda c, n: c.extreme(n, True),
    "least": lambda c, n: c.extreme(n, False),
    "ispresent": lambda c, n: c.ispresent(n),
    "coalesce": lambda c, n: c.coalesce(n),
    "bin": lambda c, n: c.bin(n),
}


def compare(op: str, left: Typed, right: Typed) -> pl.Expr:
    """Compare like Insights: numbers with numbers ('22' = 22), otherwise text with text."""
    kinds = {left.kind, right.kind}
    if Kind.NULL in kinds:
        return pl.lit(None, pl.Boolean)
    if Kind.NUM in kinds or kinds == {Kind.TIME}:
        other = right if left.kind is Kind.NUM else left
        if other.kind is Kind.STR and other.literal is not None and numeric_literal(other.literal) is None:
            return _apply_comparison(op, as_str(left), as_str(right))  # 22 = 'ssh': text, never equal
        return _apply_comparison(op, _num_side(left), _num_side(right))
    if Kind.TIME in kinds:  # a timestamp and a string: compare the printed forms
        return _apply_comparison(op, as_str(left), as_str(right))
    return _apply_comparison(op, as_str(left), as_str(right))


def _num_side(typed: Typed) -> pl.Expr:
    number = numeric_literal(typed.literal) if typed.literal is not None else None
    if number is not None:
        return pl.lit(number)
    return as_num(typed)


def _apply_comparison(op: str, left: pl.Expr, right: pl.Expr) -> pl.Expr:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def arithmetic(op: str, left: pl.Expr, right: pl.Expr) -> pl.Expr:
    """+ - * / % ^ on numbers; division or remainder by zero is null rather than infinity."""
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        return pl.when(right != 0).then(left.cast(pl.Float64) / right)
    if op == "%":
        return pl.when(right != 0).then(left % right)
    return left.cast(pl.Float64).pow(right)


# ---------------------------------------------------------------------------------------------- addresses


def ipv4_in_network(text: pl.Expr, network: ipaddress.IPv4Network) -> pl.Expr:
    """Engine-side test: parse dotted quads into integers and compare the network part."""
    valid = text.str.contains(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$")
    parts = text.str.split_exact(".", 3)
    octets = [parts.struct.field(f"field_{i}").cast(pl.UInt8, strict=False).cast(pl.Int64) for i in range(4)]
    value = octets[0] * 16777216 + octets[1] * 65536 + octets[2] * 256 + octets[3]
    block = 1 << (32 - network.prefixlen)
    return valid & ((value // block) == (int(network.network_address) // block))


def ipv6_in_network(text: pl.Expr, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> pl.Expr:
    """IPv6 text has too many spellings to parse with expressions: decided once per distinct value
    (the cost follows the number of addresses, never the number of events)."""

    def decide(values: pl.Series) -> pl.Series:
        verdicts: dict[str, bool] = {}
        for value in values.drop_nulls().unique().to_list():
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                verdicts[value] = False
                continue
            verdicts[value] = address.version == network.version and address in network
        return values.replace_strict(verdicts, default=False, return_dtype=pl.Boolean).fill_null(False)

    result: pl.Expr = text.map_batches(decide, return_dtype=pl.Boolean)
    return result
