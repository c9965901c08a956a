"""The Logs Insights query that computes flow edges in the service, and its rows turned into edges.

The aggregation is pushed into the query so result rows scale with edges, not connections (DESIGN §7):
one ``stats … by`` over the record key with the §4.2 port bucketing done in-query. Insights has no
``if`` and no bitwise operators, so everything is arithmetic on documented functions:

* ``step(x) = greatest(0, least(1, x))`` is 1 for x ≥ 1 and 0 for x ≤ 0 (ports are integers);
* a port p is in the bucketing range [lo, hi] when ``step(p - lo + 1) * step(hi - p + 1)`` is 1;
* the source port is bucketed (→ 0) when it is in the range and the destination port is not:
  ``sp = srcPort * (1 - sEph * (1 - dEph))``;
* tcp-flags bits: ``floor(tcpFlags / 2^k) % 2`` (SYN = bit 1, ACK = bit 4, FIN = bit 0).

Direction, pkt-address preference and the final orientation are applied after the query by the same code
that turns files into edges (``EdgeAggregator``), so both sources give identical edges.

Distinct ports merge exactly however the runner splits a query (README "Distinct ports"). The files carry
each side's port moments (Σ p and Σ p², centred) so that merged parts still tell 1, 2 and "3 or more"
ports apart; the analysis asks nothing finer. The query does not sum squares of ports: how the service
prints large sums (all digits, or an exponent with how many) is not documented, and Σ p² of a busy edge
passes 10^15 (about a million records over --since 14d), where a shortened print would break the test
"every port is the min or the max". Each row gives instead the small numbers that decide that answer for
its own records: min, max and ``count_distinct`` of each port (the service documents its distinct count
as approximate for high cardinalities; one, two or three values are counted exactly by any distinct-count
sketch in practice). From them :func:`rows_to_grouped` writes moments that stand for the row's ports
(min; min and max; min, min + 1 and max), which merge across rows, time splits and stream splits to the
answer the files give. Numbers are read however the service prints them (``12``, ``1.2E10``,
``1.2e+10``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from sgadvisor.aws.discovery import LogGroupFormat
from sgadvisor.flowlogs.edges import _CENTRE as PORT_CENTRE  # the files' centre of the port moments
from sgadvisor.flowlogs.edges import (
    PORT_MOMENTS,
    EdgeAggregator,
    PortRange,
    category_expr,
    keyed_exprs,
    record_exprs,
)
from sgadvisor.flowlogs.spans import MAX_RECORD_SECONDS, SPAN_RESOLUTION, SPAN_SCHEMA
from sgadvisor.insights.builder import insights_name, parse_clause, quote

# Record fields the edges need, by AWS name; the optional ones are used when the format has them.
_REQUIRED = ("interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes",
             "start", "end", "action", "log-status")  # fmt: skip
_OPTIONAL_KEYS = (
    "flow-direction",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
)


def _source_lines(fmt: LogGroupFormat, streams: Sequence[str]) -> list[str]:
    """The query's first commands: parse a custom format, keep one format's records, restrict streams."""
    lines: list[str] = []
    if not fmt.default_format:
        lines.append(parse_clause(fmt.fields))
    if fmt.mixed:
        # Records of this format have exactly len(fields) space-separated values (see discovery).
        lines.append(f"filter @message like /^\\S+( \\S+){{{len(fmt.fields) - 1}}}$/")
    if streams:
        lines.append(f"filter @logStream in [{', '.join(quote(s) for s in streams)}]")
    return lines


def _step(expression: str) -> str:
    return f"greatest(0, least(1, {expression}))"


def edge_query(fmt: LogGroupFormat, bucket: PortRange, streams: Sequence[str] = ()) -> str:
    """The query text for one log-group format (optionally restricted to some log streams)."""
    name = insights_name
    lines = _source_lines(fmt, streams)
    missing = [f for f in _REQUIRED if f not in fmt.fields and not (fmt.default_format and f in _REQUIRED)]
    if missing and not fmt.default_format:
        raise ValueError(f"format of {fmt.log_group} lacks {', '.join(missing)}")
    sport, dport = name("srcport"), name("dstport")
    lo, hi = bucket.low, bucket.high
    lines.append(
        f"fields {_step(f'{sport} - {lo - 1}')} * {_step(f'{hi + 1} - {sport}')} as sEph, "
        f"{_step(f'{dport} - {lo - 1}')} * {_step(f'{hi + 1} - {dport}')} as dEph"
    )
    lines.append(
        f"fields {sport} * (1 - sEph * (1 - dEph)) as sp, {dport} * (1 - dEph * (1 - sEph)) as dp, "
        f"{name('end')} - {name('start')} as secs"
    )
    stats = [
        "count(*) as records",
        f"sum({name('packets')}) as packets",
        f"sum({name('bytes')}) as bytes",
        f"min({name('start')}) as first_start",
        f"max({name('end')}) as last_end",
        "sum(secs) as seconds",
        f"min({sport}) as sport_min",
        f"max({sport}) as sport_max",
        f"min({dport}) as dport_min",
        f"max({dport}) as dport_max",
        f"count_distinct({sport}) as sport_n",
        f"count_distinct({dport}) as dport_n",
    ]
    if "tcp-flags" in fmt.fields:
        flags = name("tcp-flags")
        lines.append(
            f"fields floor({flags} / 2) % 2 as fSyn, floor({flags} / 16) % 2 as fAck, {flags} % 2 as fFin, "
            f"1 - least(1, {flags}) as fZero"
        )
        stats += [
            f"count({flags}) as flags_known",
            "sum(fSyn * (1 - fAck)) as syn",
            "sum(fSyn * fAck) as synack",
            "sum(fFin) as fin",
            "sum(fZero) as zero",
        ]
    if "pkt-src-aws-service" in fmt.fields:
        stats.append(f"latest({name('pkt-src-aws-service')}) as src_svc")
    if "pkt-dst-aws-service" in fmt.fields:
        stats.append(f"latest({name('pkt-dst-aws-service')}) as dst_svc")
    keys = [name("interface-id"), name("log-status"), name("action"), name("protocol"), name("srcaddr"),
            name("dstaddr"), "sp", "dp"]  # fmt: skip
    keys += [name(f) for f in ("flow-direction", "pkt-srcaddr", "pkt-dstaddr") if f in fmt.fields]
    lines.append(f"stats {', '.join(stats)} by {', '.join(keys)}")
    return "\n".join(lines[:1] + [f"| {line}" for line in lines[1:]])


# Insights spans are read at the longest aggregation interval AWS writes: one row per interface and 10
# minutes keeps the result rows few, and every hole of 10 minutes or more is still exact (a record that
# starts in a slot cannot lie before a hole that ends in it when the hole is longer than the slot).
INSIGHTS_SPAN_SECONDS = SPAN_RESOLUTION


def span_query(fmt: LogGroupFormat, streams: Sequence[str] = ()) -> str:
    """The query text for when each interface's records were delivered (flowlogs/spans.py), and, when
    the format has subnet-id, the subnet they name (a key: an interface has one, so no more rows; a
    ``-`` is a value of its own, left out by :func:`rows_to_spans`)."""
    name = insights_name
    lines = _source_lines(fmt, streams)
    iface, start, end = name("interface-id"), name("start"), name("end")
    lines.append(f"filter ispresent({iface}) and ispresent({start})")
    # As for files (flowlogs/spans.py): a record covers at most MAX_RECORD_SECONDS from its start.
    lines.append(
        f"fields floor({start} / {INSIGHTS_SPAN_SECONDS}) as slot, "
        f"least({end}, {start} + {MAX_RECORD_SECONDS}) as reach"
    )
    keys = [iface, "slot", *([name("subnet-id")] if "subnet-id" in fmt.fields else [])]
    lines.append(f"stats min({start}) as first_start, max(reach) as last_end by {', '.join(keys)}")
    return "\n".join(lines[:1] + [f"| {line}" for line in lines[1:]])


def rows_to_spans(rows: Sequence[Mapping[str, str | None]]) -> pl.DataFrame:
    """Span-query rows → span rows (``interface_id``, ``start``, ``end``, and ``subnet_id``: null for an
    absent value or ``-``) for ``EdgeAggregator.add_spans``, which folds the subnets into the coverage."""
    iface, subnet = insights_name("interface-id"), insights_name("subnet-id")
    text = pl.String()
    raw = pl.from_dicts(list(rows), schema={iface: text, subnet: text, "first_start": text, "last_end": text})

    start = insights_integer(pl.col("first_start"))
    return (
        raw.select(
            pl.col(iface).alias("interface_id"),
            start.alias("start"),
            pl.max_horizontal(start, insights_integer(pl.col("last_end"))).alias("end"),
            pl.when(~pl.col(subnet).is_in(["", "-"])).then(pl.col(subnet)).alias("subnet_id"),
        )
        .filter(pl.col("interface_id").is_not_null() & ~pl.col("interface_id").is_in(["", "-"]))
        .filter(pl.col("start").is_not_null())
        .cast(_PLACED_SPAN_SCHEMA)  # type: ignore[arg-type]
    )


_PLACED_SPAN_SCHEMA: dict[str, pl.DataType] = {**SPAN_SCHEMA, "subnet_id": pl.String()}


def rows_to_grouped(
    rows: Sequence[Mapping[str, str | None]], fmt: LogGroupFormat, aggregator: EdgeAggregator
) -> pl.DataFrame:
    """Insights result rows → the grouped partial edges ``EdgeAggregator.add_grouped`` consumes.

    The frame's shape is taken from the aggregator itself (an empty streaming query), so this stays in
    step with the file path whatever its internal types are."""
    target = aggregator.grouped_query(_empty_records()).collect_schema()
    sources = _row_sources()
    # Insights returns every value as text (absent fields are left out of a row): load the rows as text
    # columns once and let the engine type them, instead of converting value by value.
    raw = pl.from_dicts(list(rows), schema=dict.fromkeys(sorted(set(sources.values())), pl.String()))
    columns = []
    for column, dtype in _ROW_COLUMNS.items():
        value = pl.col(sources[column])
        value = pl.when(value.is_in(["", "-"])).then(None).otherwise(value)
        if dtype == pl.Int64():
            value = insights_integer(value)
            if column in _ZERO_WHEN_ABSENT:
                value = value.fill_null(0)
        columns.append(value.alias(column))
    frame = raw.select(columns)
    if "tcp-flags" not in fmt.fields:
        frame = frame.with_columns(pl.lit(0, dtype=pl.Int64).alias("flags_known"))
    return _to_grouped(frame, aggregator, target)


def insights_integer(text: pl.Expr) -> pl.Expr:
    """A number of a result row as an integer, however the service printed it: digits (read exactly,
    whatever their count), or a decimal or scientific form (``3.0``, ``1.2E10``, ``1.2e+10``: read as a
    double, exact below 2^53, and rounded). Text that is no number is null."""
    stripped = text.str.strip_chars()
    exact = stripped.cast(pl.Int64, strict=False)
    floating = stripped.cast(pl.Float64, strict=False)
    finite = floating.is_finite() & (floating.abs() < 2.0**63)
    return pl.coalesce(exact, pl.when(finite).then(floating.round(0)).cast(pl.Int64, strict=False))


def _row_sources() -> dict[str, str]:
    """Internal column → the Insights result field it comes from."""
    record = {"iface": "interface-id", "status": "log-status", "fdir": "flow-direction", "action": "action",
              "protocol": "protocol", "saddr": "srcaddr", "daddr": "dstaddr", "psrc": "pkt-srcaddr",
              "pdst": "pkt-dstaddr"}  # fmt: skip
    sources = {column: insights_name(field) for column, field in record.items()}
    sources.update(sport_raw="sp", dport_raw="dp")
    sources.update({c: c for c in _ROW_COLUMNS if c not in sources})
    return sources


# Ports bucketed in the query and the tcp-flags sums: absent means 0, not unknown.
_ZERO_WHEN_ABSENT = frozenset({"sport_raw", "dport_raw", "flags_known", "syn", "synack", "fin", "zero"})


_ROW_COLUMNS: dict[str, pl.DataType] = {
    "iface": pl.String(), "status": pl.String(), "fdir": pl.String(), "action": pl.String(),
    "protocol": pl.Int64(), "saddr": pl.String(), "daddr": pl.String(), "psrc": pl.String(),
    "pdst": pl.String(), "sport_raw": pl.Int64(), "dport_raw": pl.Int64(), "records": pl.Int64(),
    "packets": pl.Int64(), "bytes": pl.Int64(), "first_start": pl.Int64(), "last_end": pl.Int64(),
    "seconds": pl.Int64(), "sport_min": pl.Int64(), "sport_max": pl.Int64(), "dport_min": pl.Int64(),
    "dport_max": pl.Int64(), "sport_n": pl.Int64(), "dport_n": pl.Int64(), "flags_known": pl.Int64(),
    "syn": pl.Int64(), "synack": pl.Int64(), "fin": pl.Int64(), "zero": pl.Int64(), "src_svc": pl.String(),
    "dst_svc": pl.String(),
}  # fmt: skip


def _empty_records() -> pl.LazyFrame:
    return pl.LazyFrame(schema={"interface-id": pl.String()}).select(record_exprs(["interface-id"]))


def _to_grouped(frame: pl.DataFrame, aggregator: EdgeAggregator, target: pl.Schema) -> pl.DataFrame:
    """Categorise like the file path (no window: the query's time range is the window), apply the
    pkt-address rule, and give each side the port moments that stand for its ports (module docstring)."""
    s1, s2 = _standin_moments("sport")
    d1, d2 = _standin_moments("dport")
    shaped = (
        frame.with_columns(
            pl.col("first_start").alias("start"),
            pl.lit(None, dtype=pl.String).alias("rtype"),
            pl.lit(None, dtype=pl.String).alias("tgw"),
        )
        .with_columns(category_expr(None).alias("cat"))
        .with_columns(
            # Bucketing happened in the query: keep the ports as they came, only the pkt-address rule here.
            [e for e in keyed_exprs(aggregator.bucket) if e.meta.output_name() in ("psrc", "pdst")]
        )
        .with_columns(
            pl.col("sport_raw").alias("sport"),
            pl.col("dport_raw").alias("dport"),
            *(e.alias(c) for e, c in zip((s1, s2, d1, d2), PORT_MOMENTS, strict=True)),
            # No count of its own: the edges count from the moments, as for files.
            *(pl.lit(None, dtype=pl.Int64).alias(c) for c in ("_src_n", "_dst_n")),
            pl.col("seconds").alias("_seconds"),
        )
    )
    return shaped.select([pl.col(c).cast(dtype) for c, dtype in target.items()])


def _standin_moments(side: str) -> tuple[pl.Expr, pl.Expr]:
    """(Σ, Σ²) of centred ports that stand for the ports of one side of a row (``sport``/``dport``): the
    min alone when min = max; else the min and the max when the row has at most two ports (its
    ``count_distinct`` says so, or no port lies between min and max); else the min, min + 1 and the max —
    a port strictly inside, which every merge keeps inside. The records not named take the min. Summed
    over rows, parts and splits they answer as the real ports' moments do: one port if min = max, two if
    every port is the min or the max, else "3 or more" (``_distinct_ports`` in flowlogs/edges.py). A row
    without ports (NODATA) has none: null, which sums as 0."""
    low, high = pl.col(f"{side}_min"), pl.col(f"{side}_max")
    records, counted = pl.col("records"), pl.col(f"{side}_n")
    a, b = low - PORT_CENTRE, high - PORT_CENTRE
    # 1, 2 or 3 ("3 or more"); an absent count is taken as many (the files' count is an upper bound too).
    ports = (
        pl.when(low == high)
        .then(1)
        .when((high - low == 1) | (counted.fill_null(3) <= 2) | (records < 3))
        .then(2)
        .otherwise(3)
    )
    at_low = records - ports + 1
    s1 = a * at_low + pl.when(ports >= 2).then(b).otherwise(0) + pl.when(ports == 3).then(a + 1).otherwise(0)
    s2 = (
        a * a * at_low
        + pl.when(ports >= 2).then(b * b).otherwise(0)
        + pl.when(ports == 3).then((a + 1) * (a + 1)).otherwise(0)
    )
    return s1, s2
