"""Run a CloudWatch Logs Insights query offline over an events frame: text + events -> rows + statistics.

This is the library interface behind ``sgadvisor query --flows`` and the local CloudWatch Logs endpoint:
the query is parsed (:mod:`sgadvisor.insights.language`), compiled to one lazy plan
(:mod:`sgadvisor.insights.compile`) and collected once, results rendered as GetQueryResults renders
them. The supported subset is listed in docs/insights-subset.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from sgadvisor.insights.compile import build_plan, render_number
from sgadvisor.insights.events import MESSAGE, TIMESTAMP, with_discovered_fields
from sgadvisor.insights.language import QuerySyntaxError, UnsupportedQueryError, parse_query

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "QueryResult",
    "QueryStatistics",
    "QuerySyntaxError",
    "UnsupportedQueryError",
    "run_query",
    "with_discovered_fields",
]

DEFAULT_LIMIT = 10_000  # rows a query returns unless its `limit` says otherwise
MAX_LIMIT = 100_000  # the most any query returns (StartQuery limit, GetQueryResults paging; DESIGN §7)
EVENT_OVERHEAD_BYTES = 26  # per event, as CloudWatch Logs counts event size (message bytes + 26)
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S%.3f"


@dataclass(frozen=True)
class QueryStatistics:
    """What the query cost, as GetQueryResults reports it.

    ``bytes_scanned`` follows the local endpoint's cost model (DESIGN §7): the UTF-8 size of every
    scanned event's @message plus 26 bytes per event, over the events in the time range.
    """

    records_scanned: int  # events in the source (after the time range)
    records_matched: int  # events that passed the filters
    bytes_scanned: int  # sum of len(@message.encode()) + 26 per event scanned


@dataclass(frozen=True)
class QueryResult:
    fields: tuple[str, ...]  # result columns in Insights order
    rows: list[dict[str, str | None]]  # values rendered as strings, like GetQueryResults
    statistics: QueryStatistics
    warnings: tuple[str, ...]  # e.g. "unknown field scrPort (did you mean srcPort?)"
    limit: int  # the cap in force
    capped: bool  # True when more rows existed than `limit`


def run_query(
    query: str,
    events: pl.LazyFrame | pl.DataFrame,
    *,
    start: int | None = None,
    end: int | None = None,
    default_limit: int = DEFAULT_LIMIT,
) -> QueryResult:
    """Run ``query`` over ``events`` between ``start`` and ``end`` (epoch seconds, both inclusive).

    Raises QuerySyntaxError for text that is not Logs Insights and UnsupportedQueryError for Logs
    Insights outside the offline subset; an unknown field is a warning and reads as null.
    """
    parsed = parse_query(query)
    scanned = _in_time_range(events.lazy(), start, end)
    plan = build_plan(parsed, _typed_times(scanned))
    warnings = list(plan.warnings)
    limit = min(default_limit, MAX_LIMIT)
    if plan.final_limit is not None:
        limit = min(plan.final_limit, MAX_LIMIT)
        if plan.final_limit > MAX_LIMIT:
            warnings.append(
                f"limit {plan.final_limit:,} is above the service maximum: at most {MAX_LIMIT:,} rows"
            )
    schema = plan.result.collect_schema()
    shown = plan.result.select(_render(name, schema.get(name)) for name in plan.columns).head(limit + 1)
    totals = scanned.select(
        pl.len().alias("events"),
        (pl.col(MESSAGE).str.len_bytes().sum() + pl.len() * EVENT_OVERHEAD_BYTES).alias("bytes"),
    )
    matched = plan.matched.select(pl.len().alias("matched"))
    totals_df, matched_df, shown_df = pl.collect_all([totals, matched, shown])
    statistics = QueryStatistics(
        records_scanned=int(totals_df["events"][0]),
        records_matched=int(matched_df["matched"][0]),
        bytes_scanned=int(totals_df["bytes"][0] or 0),
    )
    capped = shown_df.height > limit
    rows = shown_df.head(limit).to_dicts()
    return QueryResult(tuple(plan.columns), rows, statistics, tuple(warnings), limit, capped)


def _in_time_range(events: pl.LazyFrame, start: int | None, end: int | None) -> pl.LazyFrame:
    """StartQuery's startTime/endTime: epoch seconds, inclusive (the whole end second counts)."""
    if start is not None:
        events = events.filter(pl.col(TIMESTAMP) >= start * 1000)
    if end is not None:
        events = events.filter(pl.col(TIMESTAMP) <= end * 1000 + 999)
    return events


def _typed_times(events: pl.LazyFrame) -> pl.LazyFrame:
    """Epoch-millisecond columns become timestamps, so bin() and rendering treat them as times."""
    schema = events.collect_schema()
    exprs = [
        pl.col(name).cast(pl.Int64).cast(pl.Datetime("ms"))
        for name in (TIMESTAMP, "@ingestionTime")
        if name in schema and schema[name].is_integer()
    ]
    return events.with_columns(exprs) if exprs else events


def _render(name: str, dtype: pl.DataType | None) -> pl.Expr:
    """A result value as GetQueryResults shows it: text; integral numbers without '.0'; timestamps as
    'YYYY-MM-DD HH:MM:SS.mmm'; a field the events lack is null."""
    if dtype is None:
        return pl.lit(None, pl.String).alias(name)
    column = pl.col(name)
    if dtype.is_integer():
        rendered = column.cast(pl.String)
    elif dtype.is_float():
        rendered = render_number(column)
    elif isinstance(dtype, pl.Datetime | pl.Date):
        rendered = column.dt.strftime(_TIME_FORMAT)
    elif dtype == pl.Boolean:
        rendered = pl.when(column).then(pl.lit("true")).when(~column).then(pl.lit("false"))
    else:
        rendered = column.cast(pl.String)
    return rendered.alias(name)
