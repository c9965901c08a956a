"""The edge query's result (sql.py) turned into flow edges, exactly as the file path makes them.

The result arrives as the CSV Athena writes to the query's output location (``--athena-result FILE``, or
read from S3) or as ``GetQueryResults`` pages. Both print every value as text: in the CSV a header row,
then each value double-quoted and NULL as an empty field (``""`` is an empty string); in the pages a
``Data`` list per row whose ``VarCharValue`` is missing for NULL, the first row of the first page holding
the column names. Numbers come as Athena prints them (``123``; a decimal as ``123.0``).

The ``edge`` rows are the grouped partial edges ``EdgeAggregator.add_grouped`` folds for a file, and the
aggregator then decides directions and orientation as for files (from ``flow-direction``, else the
inventory's addresses, else the records themselves). Addresses are brought to their canonical spelling
here, on the few distinct values (as the fast file scan does); a value that is not an address, or an
action or flow-direction outside the documented ones, makes its records malformed. Coverage is the
engine's ``coverage`` rows, spans its ``span`` rows.
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from sgadvisor.accounting import Ledger
from sgadvisor.athena import sql
from sgadvisor.errors import InputError
from sgadvisor.flowlogs.edges import (
    ADDRESS_COLUMNS,
    COVERAGE_SCHEMA,
    DEFAULT_BUCKET,
    INCOMPLETE,
    NO_INTERFACE,
    TRANSIT_GATEWAY,
    EdgeAggregator,
    FlowEdges,
    PortRange,
    Window,
    merge_grouped,
    record_exprs,
    respell_addresses,
)
from sgadvisor.flowlogs.parse import ENUMS, IPV4_RE, canonical_address
from sgadvisor.flowlogs.spans import SPAN_SCHEMA

SOURCE = "athena"
_REASONS = {sql.TRANSIT: TRANSIT_GATEWAY, sql.NO_IFACE: NO_INTERFACE, sql.INCOMPLETE: INCOMPLETE}
_INTEGER = re.compile(r"^-?[0-9]+(?:\.0*)?$")
_RESULT_NAME = "the Athena result"

# Result column → the grouped frame's column (EdgeAggregator.grouped_query).
_GROUPED_FROM: dict[str, str] = {
    "iface": "interface_id",
    "fdir": "flow_direction",
    "action": "action",
    "protocol": "protocol",
    "saddr": "srcaddr",
    "daddr": "dstaddr",
    "psrc": "pkt_srcaddr",
    "pdst": "pkt_dstaddr",
    "sport": "srcport",
    "dport": "dstport",
    "records": "records",
    "packets": "packets",
    "bytes": "bytes",
    "first_start": "first_start",
    "last_end": "last_end",
    "sport_min": "srcport_min",
    "sport_max": "srcport_max",
    "dport_min": "dstport_min",
    "dport_max": "dstport_max",
    "flags_known": "flags_known",
    "syn": "syn",
    "synack": "synack",
    "fin": "fin",
    "zero": "zero_flags",
    "src_svc": "src_service",
    "dst_svc": "dst_service",
    "_s1": "srcport_sum",
    "_s2": "srcport_squares",
    "_d1": "dstport_sum",
    "_d2": "dstport_squares",
}


# ------------------------------------------------------------------------------------------- reading


def read_result_csv(data: bytes | str | Path, *, name: str = _RESULT_NAME) -> pl.DataFrame:
    """Athena's result CSV (bytes, text, or a file) as text columns, NULL as null and ``""`` as ""."""
    if isinstance(data, Path):
        try:
            raw = data.read_bytes()
        except OSError as exc:
            raise InputError(f"{data}: cannot read ({exc.strerror or exc})") from None
    else:
        raw = data.encode() if isinstance(data, str) else data
    if not raw.strip():
        raise InputError(f"{name} is empty", hint=_RESULT_HINT)
    try:
        frame = pl.read_csv(io.BytesIO(raw), infer_schema=False, quote_char='"', raise_if_empty=False)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{name} is not a CSV result ({exc})", hint=_RESULT_HINT) from None
    return _checked(frame, name)


def rows_from_pages(pages: Iterable[Mapping[str, Any]], *, name: str = _RESULT_NAME) -> pl.DataFrame:
    """``GetQueryResults`` pages (in order) as text columns; the first row of the first page is the
    header (as Athena returns it for a SELECT)."""
    header: list[str] | None = None
    rows: list[list[str | None]] = []
    for page in pages:
        for row in page.get("ResultSet", {}).get("Rows", []):
            values = [cell.get("VarCharValue") for cell in row.get("Data", [])]
            if header is None:
                header = [v or "" for v in values]
                continue
            rows.append(values)
    if header is None:
        raise InputError(f"{name} has no header row", hint=_RESULT_HINT)
    frame = pl.DataFrame(rows, schema=dict.fromkeys(header, pl.String()), orient="row")
    return _checked(frame, name)


_RESULT_HINT = (
    "pass the CSV Athena wrote to the output location for the SQL that --print-sql prints "
    "(s3://…/<query id>.csv), unchanged"
)


def _checked(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    expected = list(sql.RESULT_COLUMNS)
    if frame.columns != expected:
        raise InputError(
            f"{name} does not have the columns of sgadvisor's edge query "
            f"(found {', '.join(frame.columns[:6])}{'…' if len(frame.columns) > 6 else ''})",
            hint=_RESULT_HINT,
        )
    typed = []
    for column, kind in sql.RESULT_COLUMNS.items():
        if kind != "bigint":
            typed.append(pl.col(column))
            continue
        values = frame[column]
        bad = values.drop_nulls().filter(~values.drop_nulls().str.contains(_INTEGER.pattern))
        if bad.len():
            raise InputError(f"{name}: {column} holds {bad[0]!r}, not an integer", hint=_RESULT_HINT)
        # "123.0" (a decimal printed as text) → 123
        typed.append(pl.col(column).str.replace(r"\.0*$", "").cast(pl.Int64, strict=False))
    frame = frame.select(typed)
    kinds = set(frame["kind"].unique().to_list()) - {"edge", "coverage", "filtered", "span"}
    if kinds:
        raise InputError(f"{name}: unknown row kind {sorted(str(k) for k in kinds)[0]!r}", hint=_RESULT_HINT)
    return frame


# ------------------------------------------------------------------------------------------- edges


def flows_from_result(
    result: pl.DataFrame,
    window: Window,
    *,
    bucket: PortRange = DEFAULT_BUCKET,
    addresses: Mapping[str, Collection[str]] | None = None,
    ledger: Ledger | None = None,
) -> FlowEdges:
    """The flow edges of one or more results of the edge query (rows of :func:`read_result_csv` or
    :func:`rows_from_pages`, concatenated), for ``window``. ``addresses``: the inventory's ENI addresses,
    for formats without flow-direction."""
    ledger = ledger if ledger is not None else Ledger()
    aggregator = EdgeAggregator(ledger=ledger, bucket=bucket, window=None)
    aggregator.source = SOURCE
    kind = pl.col("kind")
    grouped = _grouped(result.filter(kind == "edge"), aggregator, ledger)
    aggregator.add_grouped(grouped)
    for reason, count in result.filter(kind == "filtered").select("reason", "records").iter_rows():
        ledger.add_filtered(_REASONS.get(str(reason), str(reason)), int(count or 0))
    coverage_rows = result.filter(kind == "coverage")
    coverage = _coverage(coverage_rows)
    ledger.add_coverage(int(coverage["nodata"].sum() or 0), int(coverage["skipdata"].sum() or 0))
    spans = result.filter(kind == "span").select(
        pl.col("interface_id"), pl.col("first_start").alias("start"), pl.col("last_end").alias("end")
    )
    aggregator.add_spans(spans.cast(SPAN_SCHEMA))  # type: ignore[arg-type]
    flows = aggregator.finish(addresses)
    return replace(flows, coverage=coverage, window=window, source=SOURCE)


def _coverage(rows: pl.DataFrame) -> pl.DataFrame:
    """The ``coverage`` rows as ``COVERAGE_SCHEMA``, merged per interface when several results (tables)
    name one: counts add, times widen, the smallest subnet, the union of the flow logs."""
    columns = list(COVERAGE_SCHEMA)
    merged = (
        rows.group_by("interface_id")
        .agg(
            pl.col("first_start").min(),
            pl.col("last_end").max(),
            pl.col("records", "nodata", "skipdata", "skipdata_seconds").fill_null(0).sum(),
            pl.col("subnet_id").min(),
            pl.col("flow_logs")
            .str.split(",")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .unique()
            .sort()
            .str.join(","),
        )
        .with_columns(pl.when(pl.col("flow_logs") != "").then(pl.col("flow_logs")).alias("flow_logs"))
    )
    return merged.select(columns).cast(COVERAGE_SCHEMA).sort("interface_id")  # type: ignore[arg-type]


def _grouped(edges: pl.DataFrame, aggregator: EdgeAggregator, ledger: Ledger) -> pl.DataFrame:
    """Edge rows → the grouped frame of ``EdgeAggregator.grouped_query`` (category ``used``), with
    canonical addresses; rows with an invalid value are counted as malformed and left out."""
    target = aggregator.grouped_query(_empty_records()).collect_schema()
    frame = edges.select(
        pl.lit("used").alias("cat"),
        *(pl.col(source).alias(column) for column, source in _GROUPED_FROM.items()),
        pl.lit(None, dtype=pl.Int64).alias("_seconds"),
        pl.lit(None, dtype=pl.Int64).alias("_src_n"),
        pl.lit(None, dtype=pl.Int64).alias("_dst_n"),
    )
    frame = _drop_invalid(frame, ledger)
    frame = frame.select([pl.col(c).cast(dtype) for c, dtype in target.items()])
    # Several results (tables) may hold the same partial edge: merged, as the file path merges files.
    frame = merge_grouped(_canonical(frame))
    return frame.select([pl.col(c).cast(dtype) for c, dtype in target.items()])


def _drop_invalid(frame: pl.DataFrame, ledger: Ledger) -> pl.DataFrame:
    """Leave out (as malformed) rows whose action, flow-direction or addresses are not valid values."""
    bad = pl.lit(False)
    for column, field in (("action", "action"), ("fdir", "flow-direction")):
        bad = bad | (pl.col(column).is_not_null() & ~pl.col(column).is_in(ENUMS[field]))
    invalid = [v for v in _addresses(frame) if canonical_address(v) is None]
    if invalid:
        bad = bad | pl.any_horizontal(pl.col(c).is_in(invalid).fill_null(False) for c in ADDRESS_COLUMNS)
    rejected = frame.filter(bad)
    if rejected.height:
        count = int(rejected["records"].sum() or 0)
        ledger.records += count
        ledger.malformed += count
        ledger.note(_RESULT_NAME, None, f"{count} records with an invalid address, action or flow-direction")
        frame = frame.filter(~bad)
    return frame


def _addresses(frame: pl.DataFrame) -> list[str]:
    """The distinct address values that are not canonical IPv4 (checked in Python, once each)."""
    values = pl.concat([frame[c].drop_nulls().cast(pl.String) for c in ADDRESS_COLUMNS]).unique()
    return values.filter(~values.str.contains(IPV4_RE)).sort().to_list()


def _canonical(grouped: pl.DataFrame) -> pl.DataFrame:
    """Addresses in their canonical spelling (``2600:1f18:100:0::a`` → ``2600:1f18:100::a``); a
    pkt-address equal to its interface's address after that is null again, and partial edges that then
    coincide are merged (as flowlogs/fastpath.py does)."""
    mapping = {}
    for text in _addresses(grouped):
        canonical = canonical_address(text)
        if canonical is not None and canonical != text:
            mapping[text] = canonical
    return respell_addresses(grouped, mapping)


def _empty_records() -> pl.LazyFrame:
    return pl.LazyFrame(schema={"interface-id": pl.String()}).select(record_exprs(["interface-id"]))


def concat_results(results: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Several results of the edge query (one per table) as one, for :func:`flows_from_result`."""
    if not results:
        return pl.DataFrame(schema=dict.fromkeys(sql.RESULT_COLUMNS, pl.String())).pipe(_checked, "no result")
    return pl.concat(list(results), how="vertical_relaxed")
