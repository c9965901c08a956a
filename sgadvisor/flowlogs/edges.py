"""Aggregate flow-log records into flow edges and per-interface coverage (DESIGN §4.2).

An edge aggregates the records with the same
``interface_id, direction, action, protocol, local_addr, remote_addr, local_port, remote_port``.
Records are folded block by block into partial aggregates keyed in *src/dst* orientation; direction is
decided only at the end, from ``flow-direction``, from the ENIs' addresses when an inventory gives them,
or from the data itself. Memory follows the number of distinct edges, never the number of records.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from sgadvisor.accounting import InputAccounting, Ledger
from sgadvisor.errors import UsageError
from sgadvisor.flowlogs.files import STREAM_ENI_COL, RecordBlock
from sgadvisor.flowlogs.spans import SPAN_SCHEMA, merge_spans, span_query

EDGE_KEY: tuple[str, ...] = (
    "interface_id",
    "direction",
    "action",
    "protocol",
    "local_addr",
    "remote_addr",
    "local_port",
    "remote_port",
)
EDGE_SCHEMA: dict[str, pl.DataType] = {
    "interface_id": pl.String(),
    "direction": pl.String(),
    "action": pl.String(),
    "protocol": pl.Int64(),
    "local_addr": pl.String(),
    "remote_addr": pl.String(),
    "local_port": pl.Int64(),
    "remote_port": pl.Int64(),
    "records": pl.Int64(),
    "packets": pl.Int64(),
    "bytes": pl.Int64(),
    "first_start": pl.Int64(),
    "last_end": pl.Int64(),
    "local_port_min": pl.Int64(),
    "local_port_max": pl.Int64(),
    "local_port_distinct": pl.Int64(),
    "remote_port_min": pl.Int64(),
    "remote_port_max": pl.Int64(),
    "remote_port_distinct": pl.Int64(),
    "syn_records": pl.Int64(),
    "synack_records": pl.Int64(),
    "fin_records": pl.Int64(),
    "zero_flag_records": pl.Int64(),
    "aws_service": pl.String(),
}
COVERAGE_SCHEMA: dict[str, pl.DataType] = {
    "interface_id": pl.String(),
    "first_start": pl.Int64(),
    "last_end": pl.Int64(),
    "records": pl.Int64(),
    "nodata": pl.Int64(),
    "skipdata": pl.Int64(),
    "skipdata_seconds": pl.Int64(),
    # Where the interface was (for an ENI the inventory does not know, DESIGN "unattributed"): the subnet its
    # records name (``subnet-id``, v3+; an ENI never changes subnet, so the smallest value when records
    # disagree; null when the format has none or every value is ``-``), and the flow logs that delivered
    # its records (sorted flow-log ids, comma-joined: from an S3 delivery file's name, from the flow logs
    # writing the Logs Insights log group's format; null when unknown, e.g. a CloudWatch Logs export).
    "subnet_id": pl.String(),
    "flow_logs": pl.String(),
}
# The coverage columns that say where an interface was (not counts): kept by every merge.
PLACEMENT_COLUMNS = ("subnet_id", "flow_logs")

COMPACT_ROWS = 2_000_000

# Filter reasons (input_accounting.filtered keys).
OUTSIDE_WINDOW = "outside the window"
NO_START = "no start time (window set)"
TRANSIT_GATEWAY = "transit gateway record (no interface)"
NO_INTERFACE = "no interface id"
INCOMPLETE = "lacks address, protocol or action"
DIRECTION_UNKNOWN = "direction unknown"
MALFORMED = "malformed"  # only inside a fast scan, which then gives way to the careful path
BLANK = "blank line"  # only inside a fast scan: not a record, dropped


@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive port range, e.g. the bucketing range 32768-65535."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        try:
            low_text, _, high_text = text.partition("-")
            low, high = int(low_text), int(high_text or low_text)
        except ValueError:
            raise UsageError(
                f"port range {text!r} is not LOW-HIGH", hint="e.g. --bucket-ports 32768-65535"
            ) from None
        if not 0 <= low <= high <= 65535:
            raise UsageError(f"port range {text!r} is outside 0-65535 or reversed")
        return cls(low, high)

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


DEFAULT_BUCKET = PortRange(32768, 65535)


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time window [start, end) in epoch seconds; a record belongs to it by its start."""

    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class FlowEdges:
    """What every flow source produces: edges, per-interface coverage, the window, the accounting."""

    edges: pl.DataFrame
    coverage: pl.DataFrame
    window: Window | None
    accounting: InputAccounting
    source: str = "files"
    warnings: tuple[str, ...] = ()
    # When each interface's records were delivered (flowlogs/spans.py): what coverage is judged from.
    spans: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SPAN_SCHEMA))
    # Parts of the input known to exist but not read (--allow-missing): the ENIs they could hold are
    # not proven by the rest.
    unreadable: tuple[str, ...] = ()


# Internal, src/dst-oriented partial key. "_psrc"/"_pdst" are pkt-addresses only where they differ.
_PRE_KEY = ("iface", "fdir", "action", "protocol", "saddr", "daddr", "psrc", "pdst", "sport", "dport")
# Text key columns are held as Categorical (a u32 per value, one process-wide dictionary) from the partial
# aggregates to the end of `finish`: the joins, group-bys and uniques there then hash integers, not
# strings. The §4.2 output is String again.
_CAT_KEYS = ("iface", "fdir", "action", "saddr", "daddr", "psrc", "pdst")
_DIRECTION = pl.Enum(["egress", "ingress"])
# A fast scan labels each record with a small integer (cheaper per row than a string); labels by code.
_SCAN_LABELS: tuple[str, ...] = (
    "used",
    "nodata",
    "skipdata",
    INCOMPLETE,
    NO_INTERFACE,
    TRANSIT_GATEWAY,
    NO_START,
    OUTSIDE_WINDOW,
    MALFORMED,
    BLANK,
)
# ... and the labelled categories as an Enum: the per-category group-bys on ~edges rows then hash bytes.
_SCAN_CATEGORY = pl.Enum(_SCAN_LABELS)
# Records that are evidence of delivery (coverage); the first codes of _SCAN_LABELS.
_COVERED = ("used", "nodata", "skipdata")
assert _SCAN_LABELS[: len(_COVERED)] == _COVERED

# Distinct ports of a bucketed side are judged from mergeable moments, not from sets of ports: per side,
# the sums of (port - _CENTRE) and of its square over the records (with `records` and the side's min and
# max). Sums add across blocks, files and partial edges, so memory stays with the edges and the result
# does not depend on how the data was split (see `_distinct_ports`). Centring keeps a square under 2^30
# (2^32 for the fast scan's port sums): Int64 sums hold 2^31 records of one edge in one file, 2^33 in all.
_CENTRE = 32768
_PORTS_OFFSET = 2 * _CENTRE  # the fast scan's port sums are centred too (see `_scan_keyed_exprs`)
PORT_MOMENTS = ("_s1", "_s2", "_d1", "_d2")  # source side: sum, sum of squares; destination side: the same
# Distinct-port counts a source gives itself (Logs Insights' count_distinct), per side; null from files.
_COUNTED = ("_src_n", "_dst_n")


def _sum(name: str) -> pl.Expr:
    return pl.col(name).sum().alias(name)


def _sum_known(name: str) -> pl.Expr:
    """The sum, but null when every value is null (a plain sum gives 0): a count nobody gave stays absent."""
    column = pl.col(name)
    return pl.when(column.is_not_null().any()).then(column.sum()).alias(name)


def _volume_aggs(*port_columns: str) -> list[pl.Expr]:
    """Merging aggregates: volumes add, time spans widen, each port column's min/max widen."""
    aggs = [
        _sum("records"),
        _sum("packets"),
        _sum("bytes"),
        pl.col("first_start").min(),
        pl.col("last_end").max(),
    ]
    for column in port_columns:
        aggs += [pl.col(f"{column}_min").min(), pl.col(f"{column}_max").max()]
    return aggs


_FLAG_SUMS = (_sum("flags_known"), _sum("syn"), _sum("synack"), _sum("fin"), _sum("zero"))
_MERGE_AGGS: tuple[pl.Expr, ...] = (
    *_volume_aggs("sport", "dport"),
    *_FLAG_SUMS,
    pl.col("src_svc").max(),
    pl.col("dst_svc").max(),
    *(_sum(c) for c in PORT_MOMENTS),
    *(_sum_known(c) for c in _COUNTED),
)
_COVERAGE_MERGE: tuple[pl.Expr, ...] = (
    pl.col("first_start").min(),
    pl.col("last_end").max(),
    _sum("records"),
    _sum("nodata"),
    _sum("skipdata"),
    _sum("skipdata_seconds"),
    pl.col("subnet_id").min(),
    # The union of the parts' flow-log lists ("" when none: null again in `_finish_coverage`).
    pl.col("flow_logs")
    .str.split(",")
    .list.explode(keep_nulls=False, empty_as_null=False)
    .unique()
    .sort()
    .str.join(","),
)


def record_exprs(columns: Collection[str], absent: Mapping[str, pl.DataType] | None = None) -> list[pl.Expr]:
    """Typed AWS columns → the internal record columns. Absent fields become null, of the type
    ``absent`` gives for that AWS field name if any (a fast scan reads narrow types, and an absent field
    must have the same type as a present one)."""
    types = absent or {}

    def col(name: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col(name) if name in columns else pl.lit(None, dtype=types.get(name, dtype))

    string, integer = pl.String(), pl.Int64()
    iface = col("interface-id", string)
    if STREAM_ENI_COL in columns:
        iface = pl.coalesce(iface, pl.col(STREAM_ENI_COL))
    return [
        iface.alias("iface"),
        col("log-status", string).alias("status"),
        col("flow-direction", string).alias("fdir"),
        col("action", string).alias("action"),
        col("protocol", integer).alias("protocol"),
        col("srcaddr", string).alias("saddr"),
        col("dstaddr", string).alias("daddr"),
        col("pkt-srcaddr", string).alias("psrc"),
        col("pkt-dstaddr", string).alias("pdst"),
        col("srcport", integer).fill_null(0).alias("sport_raw"),
        col("dstport", integer).fill_null(0).alias("dport_raw"),
        col("packets", integer).alias("packets"),
        col("bytes", integer).alias("bytes"),
        col("start", integer).alias("start"),
        col("end", integer).alias("end"),
        col("tcp-flags", integer).alias("flags"),
        col("pkt-src-aws-service", string).alias("src_svc"),
        col("pkt-dst-aws-service", string).alias("dst_svc"),
        col("resource-type", string).alias("rtype"),
        col("tgw-id", string).alias("tgw"),
        col("subnet-id", string).alias("subnet"),
    ]


def _category_cases(window: Window | None, absent: Collection[str] = ()) -> list[tuple[pl.Expr, str]]:
    """What happens to each record, in order (first match wins; no match: used). ``absent``: internal
    columns known to be null throughout (a test that can never hold is left out)."""
    cases: list[tuple[pl.Expr, str]] = []
    if not {"rtype", "tgw"} <= set(absent):
        transit = (pl.col("rtype") == "TransitGateway") | (
            pl.col("iface").is_null() & pl.col("tgw").is_not_null()
        )
        cases.append((transit, TRANSIT_GATEWAY))
    cases.append((pl.col("iface").is_null(), NO_INTERFACE))
    if window is not None:
        cases.append((pl.col("start").is_null(), NO_START))
        cases.append(((pl.col("start") < window.start) | (pl.col("start") >= window.end), OUTSIDE_WINDOW))
    incomplete = pl.any_horizontal(pl.col(c).is_null() for c in ("saddr", "daddr", "protocol", "action"))
    cases += [
        (pl.col("status") == "NODATA", "nodata"),
        (pl.col("status") == "SKIPDATA", "skipdata"),
        (incomplete, INCOMPLETE),
    ]
    return cases


def category_expr(window: Window | None) -> pl.Expr:
    """What happens to each record: used, nodata, skipdata, or a filter reason (first match wins)."""
    category: pl.Expr = pl.lit("used")
    for condition, label in reversed(_category_cases(window)):
        category = pl.when(condition).then(pl.lit(label)).otherwise(category)
    return category


def _scan_category_expr(window: Window | None, absent: Collection[str]) -> pl.Expr:
    """The category as a UInt8 code into ``_SCAN_LABELS``; blank lines and records that fail a check
    (``_blank``, ``_bad``, computed by the scan) come first."""
    cases = [(pl.col("_blank"), BLANK), (pl.col("_bad"), MALFORMED), *_category_cases(window, absent)]
    code: pl.Expr = pl.lit(0, dtype=pl.UInt8)
    for condition, label in reversed(cases):
        code = pl.when(condition).then(pl.lit(_SCAN_LABELS.index(label), dtype=pl.UInt8)).otherwise(code)
    return code


def keyed_exprs(bucket: PortRange) -> list[pl.Expr]:
    """Bucketed ports (DESIGN §4.2) and pkt-addresses only where they differ from the interface's."""
    return _keyed_exprs(bucket, pl.col("cat") == "used")


def _scan_keyed_exprs(bucket: PortRange, absent: Collection[str]) -> list[pl.Expr]:
    """`keyed_exprs` for the file scan: a bucketed port is null (not 0) in the key until the group-by
    is done, so the records bucketed on the source side, on the destination side, and those with a
    genuine port 0 never share a group. `scan_result` turns the nulls into 0 and merges the rare groups
    that then coincide.

    `_ports` is the sum of both ports, less 65536: in a bucketed group the other port is the key's (one
    value), so the sum's min, max and moments are the bucketed port's, offset by a constant that
    `scan_result` removes. A plain sum costs far less per row than picking the bucketed side (~0.4 s per
    5M records)."""
    used = pl.col("cat") == 0
    s_eph = used & pl.col("sport_raw").is_between(bucket.low, bucket.high)
    d_eph = used & pl.col("dport_raw").is_between(bucket.low, bucket.high)
    src_bucketed, dst_bucketed = s_eph & ~d_eph, d_eph & ~s_eph
    exprs = [
        pl.when(~src_bucketed).then(pl.col("sport_raw")).alias("sport"),
        pl.when(~dst_bucketed).then(pl.col("dport_raw")).alias("dport"),
        (pl.col("sport_raw").cast(pl.Int64) + pl.col("dport_raw") - _PORTS_OFFSET).alias("_ports"),
    ]
    return exprs + _pkt_address_exprs(absent)


def _pkt_address_exprs(absent: Collection[str]) -> list[pl.Expr]:
    exprs = []
    for pkt, addr in (("psrc", "saddr"), ("pdst", "daddr")):
        if pkt not in absent:
            # ne_missing: a pkt-address is kept when srcaddr is absent, so a fast scan can still check it.
            exprs.append(pl.when(pl.col(pkt).ne_missing(pl.col(addr))).then(pl.col(pkt)).alias(pkt))
    return exprs


def _keyed_exprs(bucket: PortRange, used: pl.Expr, absent: Collection[str] = ()) -> list[pl.Expr]:
    s_eph = used & pl.col("sport_raw").is_between(bucket.low, bucket.high)
    d_eph = used & pl.col("dport_raw").is_between(bucket.low, bucket.high)
    src_bucketed, dst_bucketed = s_eph & ~d_eph, d_eph & ~s_eph
    exprs = [
        pl.when(src_bucketed).then(0).otherwise(pl.col("sport_raw")).alias("sport"),
        pl.when(dst_bucketed).then(0).otherwise(pl.col("dport_raw")).alias("dport"),
    ]
    return exprs + _pkt_address_exprs(absent)


_FLAGS = pl.col("flags")
_PARTIAL_AGGS: tuple[pl.Expr, ...] = (
    pl.len().cast(pl.Int64).alias("records"),
    pl.col("packets").sum().alias("packets"),
    pl.col("bytes").sum().alias("bytes"),
    pl.col("start").min().alias("first_start"),
    pl.col("end").max().alias("last_end"),
    pl.col("sport_raw").min().alias("sport_min"),
    pl.col("sport_raw").max().alias("sport_max"),
    pl.col("dport_raw").min().alias("dport_min"),
    pl.col("dport_raw").max().alias("dport_max"),
    _FLAGS.count().cast(pl.Int64).alias("flags_known"),
    # tcp-flags are OR-ed per interval: SYN without ACK = initiator, SYN-ACK = responder.
    ((_FLAGS & 18) == 2).sum().cast(pl.Int64).alias("syn"),
    ((_FLAGS & 18) == 18).sum().cast(pl.Int64).alias("synack"),
    ((_FLAGS & 1) == 1).sum().cast(pl.Int64).alias("fin"),
    (_FLAGS == 0).sum().cast(pl.Int64).alias("zero"),
    pl.col("src_svc").max(),
    pl.col("dst_svc").max(),
    (pl.col("end") - pl.col("start")).sum().cast(pl.Int64).alias("_seconds"),
)
_CENTRED_SRC, _CENTRED_DST = pl.col("sport_raw") - _CENTRE, pl.col("dport_raw") - _CENTRE
_BLOCK_AGGS: tuple[pl.Expr, ...] = (
    *_PARTIAL_AGGS,
    _CENTRED_SRC.sum().alias("_s1"),
    (_CENTRED_SRC * _CENTRED_SRC).sum().alias("_s2"),
    _CENTRED_DST.sum().alias("_d1"),
    (_CENTRED_DST * _CENTRED_DST).sum().alias("_d2"),
)
_NOT_COUNTED = tuple(pl.lit(None, dtype=pl.Int64).alias(c) for c in _COUNTED)
# The same inside the file scan. There a bucketed port is null in the key (see `_scan_keyed_exprs`), so a
# group holds one side's bucketed records only: the min, max and moments of the port sum are its bucketed
# port's (offset by the key's other port), and the port columns need no min/max of their own (an
# unbucketed port is the key's, one value per group).
_PORT_RANGE = ("sport_min", "sport_max", "dport_min", "dport_max")
_PORTS = pl.col("_ports")
_FILE_SCAN_AGGS: tuple[pl.Expr, ...] = (
    *(e for e in _PARTIAL_AGGS if e.meta.output_name() not in _PORT_RANGE),
    _PORTS.min().alias("_ports_min"),
    _PORTS.max().alias("_ports_max"),
    _PORTS.sum().alias("_ports_1"),
    (_PORTS * _PORTS).sum().alias("_ports_2"),
)


# The columns of a grouped frame (`grouped_query`, `scan_result`), in order.
_GROUPED = ["cat", *_PRE_KEY, *(e.meta.output_name() for e in _BLOCK_AGGS), *_COUNTED]


def merge_grouped(grouped: pl.DataFrame) -> pl.DataFrame:
    """Re-aggregate a fast scan's grouped rows whose keys changed (e.g. addresses canonicalised)."""
    return grouped.group_by(["cat", *_PRE_KEY]).agg(*_MERGE_AGGS, _sum("_seconds"))


ADDRESS_COLUMNS = ("saddr", "daddr", "psrc", "pdst")


def respell_addresses(grouped: pl.DataFrame, mapping: Mapping[str, str]) -> pl.DataFrame:
    """Partial edges with their addresses rewritten by ``mapping`` (a valid spelling → the canonical one,
    ``2600:1f18:100:0::a`` → ``2600:1f18:100::a``): a pkt-address equal to its record's address after that
    is null again, and the rows that then coincide are merged. Text or Categorical address columns (on a
    Categorical, ``replace`` maps its few distinct values, not every row)."""
    if not mapping:
        return grouped
    odd = pl.Series(list(mapping), dtype=pl.String)

    def rewritten(column: str) -> pl.Expr:
        dtype = grouped.schema[column]
        if dtype == pl.Categorical:
            return pl.col(column).replace(dict(mapping))
        return pl.col(column).cast(pl.String).replace(dict(mapping)).cast(dtype)

    touched = pl.any_horizontal(
        pl.col(c).cast(pl.String).is_in(odd.implode()).fill_null(False) for c in ADDRESS_COLUMNS
    )
    respelled = (
        grouped.with_columns(touched.alias("_touched"))
        .with_columns(rewritten(c) for c in ADDRESS_COLUMNS)
        .with_columns(
            pl.when(pl.col("_touched") & pl.col("psrc").eq_missing(pl.col("saddr")))
            .then(None)
            .otherwise(pl.col("psrc"))
            .alias("psrc"),
            pl.when(pl.col("_touched") & pl.col("pdst").eq_missing(pl.col("daddr")))
            .then(None)
            .otherwise(pl.col("pdst"))
            .alias("pdst"),
        )
    )
    return merge_colliding(respelled, pl.col("_touched"))


def merge_colliding(grouped: pl.DataFrame, suspect: pl.Expr) -> pl.DataFrame:
    """Merge the fast scan's grouped rows whose (category, key) became equal when the rows marked by
    ``suspect`` (few) changed key. Returns the grouped columns (``_GROUPED``).

    Only rows of the suspects' interfaces and protocols can equal a suspect, so the key joins run on
    those rows, not on all of them."""
    keys = ["cat", *_PRE_KEY]
    # Lazy until a merge is needed: the engine then reads the key columns only, copying nothing else.
    suspects = grouped.lazy().filter(suspect).select(keys).collect()
    if suspects.height == 0:
        return grouped.select(_GROUPED)
    near = pl.col("iface").is_in(suspects["iface"].unique().implode()) & pl.col("protocol").is_in(
        suspects["protocol"].unique().implode()
    )
    met_keys = (
        grouped.lazy()
        .filter(near.fill_null(False))
        .select(keys)
        .join(suspects.lazy(), on=keys, how="semi", nulls_equal=True)
    )
    if not met_keys.select(pl.struct(keys).is_duplicated().any()).collect().item():
        return grouped.select(_GROUPED)  # every suspect met only itself (e.g. ICMP's ports 0): no copy
    close = grouped.filter(near.fill_null(False))
    met = close.join(suspects, on=keys, how="semi", nulls_equal=True)
    rest = close.join(suspects, on=keys, how="anti", nulls_equal=True)
    far = grouped.filter(~near.fill_null(False))
    return pl.concat([far.select(_GROUPED), rest.select(_GROUPED), merge_grouped(met).select(_GROUPED)])


def _categorical_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """Text key columns as Categorical (see ``_CAT_KEYS``), whichever path produced the frame."""
    return frame.with_columns(pl.col(c).cast(pl.Categorical) for c in _CAT_KEYS if c in frame.columns)


@dataclass
class EdgeAggregator:
    """Fold record blocks into edges; call :meth:`finish` once at the end."""

    ledger: Ledger
    bucket: PortRange = DEFAULT_BUCKET
    window: Window | None = None
    _partials: list[pl.DataFrame] = field(default_factory=list)
    _coverage: list[pl.DataFrame] = field(default_factory=list)
    _spans: list[pl.DataFrame] = field(default_factory=list)
    _span_rows: int = 0
    _merged_span_rows: int = 0
    _subnets: list[pl.DataFrame] = field(default_factory=list)  # (interface_id, subnet_id), from spans
    _final: list[pl.DataFrame] = field(default_factory=list)  # edges read from edge files
    compact_rows: int = COMPACT_ROWS  # merge partial aggregates beyond this many rows
    _pending_rows: int = 0
    _compacted_rows: int = 0
    source: str = "files"
    _finished: bool = False

    def add_records(self, block: RecordBlock, flow_logs: str | None = None) -> None:
        """Fold one block of typed records (the careful, line-locating path); ``flow_logs``: the flow
        log(s) that delivered them, when known (see ``COVERAGE_SCHEMA``)."""
        records = block.frame.lazy().select(record_exprs(block.frame.columns))
        spans_query = self.span_query(records, subnet="subnet-id" in block.frame.columns)
        grouped, spans = pl.collect_all([self.grouped_query(records), spans_query])
        self.add_grouped(grouped, flow_logs)
        self.add_spans(spans)

    def span_query(self, records: pl.LazyFrame, *, subnet: bool = False) -> pl.LazyFrame:
        """When the covered records (used, NODATA, SKIPDATA) of each interface were delivered; with
        ``subnet`` also the subnet they name (``subnet_id``, folded into coverage by :meth:`add_spans`)."""
        return span_query(records, category_expr(self.window).is_in(_COVERED), subnet=subnet)

    def scan_span_query(self, records: pl.LazyFrame, absent: Collection[str] = ()) -> pl.LazyFrame:
        """:meth:`span_query` for the records of a fast scan (see :meth:`scan_query`); the subnet when the
        format has one."""
        covered = _scan_category_expr(self.window, absent) < len(_COVERED)
        return span_query(records, covered, subnet="subnet" not in absent)

    def add_spans(self, spans: pl.DataFrame) -> None:
        """Fold span rows (``interface_id``, ``start``, ``end``); merged now and then to stay small. A
        ``subnet_id`` column (the span queries' subnet, null for ``-``) goes to the coverage."""
        if "subnet_id" in spans.columns:
            self._add_subnets(spans.select("interface_id", "subnet_id"))
            spans = spans.drop("subnet_id")
        if spans.height == 0:
            return
        self._spans.append(spans)
        self._span_rows += spans.height
        # Merge when the pieces grow past twice what the last merge left (or many small pieces): the
        # merged spans are sorted again only when the data has doubled, never once per block.
        if len(self._spans) > 64 or self._span_rows > max(self.compact_rows, 2 * self._merged_span_rows):
            self._spans = [merge_spans(self._spans)]
            self._span_rows = self._merged_span_rows = self._spans[0].height

    def _add_subnets(self, rows: pl.DataFrame) -> None:
        """Keep each interface's smallest subnet of ``rows`` (``interface_id``, ``subnet_id``); few rows
        (one per interface) stay, however many blocks and files."""
        subnets = rows.lazy().filter(pl.col("subnet_id").is_not_null())
        self._subnets.append(subnets.group_by("interface_id").agg(pl.col("subnet_id").min()).collect())
        if len(self._subnets) > 64:
            self._subnets = [_smallest_subnets(self._subnets)]

    def grouped_query(self, records: pl.LazyFrame) -> pl.LazyFrame:
        """Records (internal column names) → one row per (category, partial edge) with every aggregate
        the edges, the coverage and the accounting need: a single group-by per block. Every source's
        grouped rows take this shape (the Insights runner's too)."""
        return (
            records.with_columns(category_expr(self.window).alias("cat"))
            .with_columns(keyed_exprs(self.bucket))
            .group_by(["cat", *_PRE_KEY])
            .agg(*_BLOCK_AGGS)
            .with_columns(_NOT_COUNTED)
        )

    def scan_query(self, records: pl.LazyFrame, absent: Collection[str] = ()) -> pl.LazyFrame:
        """A whole file's records in one streaming pass → grouped partial edges; finish with
        :meth:`scan_result`.

        ``records`` carry the internal columns in narrow types (u16 ports, u8 protocol and flags,
        Categorical/Enum text) plus ``_blank`` and ``_bad``. Per row this computes only a u8 category and
        the bucketing; labels and wide types are applied to the ~edges rows afterwards.
        ``absent``: internal columns the format lacks (null throughout). They are neither grouped on nor
        aggregated per row (a null key column still costs hashing); they are added back as constants."""
        key = [c for c in _PRE_KEY if c not in absent]
        skipped = {"flags"} if "flags" in absent else set()
        skipped |= {c for c in ("src_svc", "dst_svc") if c in absent}
        aggs = [e for e in _FILE_SCAN_AGGS if not skipped & set(e.meta.root_names())]
        constants = [pl.lit(None, dtype=pl.Categorical).alias(c) for c in _PRE_KEY if c in absent]
        if "flags" in skipped:  # no tcp-flags: nothing known, nothing counted
            constants += [
                pl.lit(0, dtype=pl.Int64).alias(c) for c in ("flags_known", "syn", "synack", "fin", "zero")
            ]
        constants += [pl.lit(None, dtype=pl.String).alias(c) for c in ("src_svc", "dst_svc") if c in skipped]
        return (
            records.with_columns(_scan_category_expr(self.window, absent).alias("cat"))
            .with_columns(_scan_keyed_exprs(self.bucket, absent))
            .group_by(["cat", *key])
            .agg(*aggs)
            .with_columns(constants)
        )

    @staticmethod
    def scan_result(grouped: pl.DataFrame) -> pl.DataFrame | None:
        """The collected :meth:`scan_query` in the shape :meth:`add_grouped` takes (category labels,
        Int64 numbers, Categorical keys, each side's port moments), without blank lines. None if any
        record is malformed."""
        codes = grouped["cat"]
        if (codes == _SCAN_LABELS.index(MALFORMED)).any():
            return None
        blank = _SCAN_LABELS.index(BLANK)
        if (codes == blank).any():
            grouped = grouped.filter(pl.col("cat") != blank)
        text = [c for c in _CAT_KEYS if grouped.schema[c] != pl.Categorical]  # Enum or String: via String
        src_side, dst_side = pl.col("sport").is_null(), pl.col("dport").is_null()
        # The key's port on the side that was not bucketed: subtracted from the port sums.
        fixed = pl.coalesce("sport", "dport").cast(pl.Int64) - _PORTS_OFFSET

        def side(bucketed: pl.Expr, value: pl.Expr, otherwise: pl.Expr | int) -> pl.Expr:
            return pl.when(bucketed).then(value).otherwise(otherwise).cast(pl.Int64)

        def moments(own: str, other: str) -> tuple[pl.Expr, pl.Expr]:
            """(sum, sum of squares) of one side's centred port: from the port sums when the side was
            bucketed (port = sum + offset - the other port, a per-group shift), else the key's port."""
            n = pl.col("records").cast(pl.Int64)
            shift = _PORTS_OFFSET - _CENTRE - pl.col(other).cast(pl.Int64)
            m1, m2 = pl.col("_ports_1"), pl.col("_ports_2")
            port = pl.col(own).cast(pl.Int64) - _CENTRE
            bucketed = pl.col(own).is_null()
            return (
                pl.when(bucketed).then(m1 + n * shift).otherwise(n * port),
                pl.when(bucketed).then(m2 + 2 * shift * m1 + n * shift * shift).otherwise(n * port * port),
            )

        s1, s2 = moments("sport", "dport")
        d1, d2 = moments("dport", "sport")

        shaped = grouped.with_columns(
            pl.col("cat").replace_strict(dict(enumerate(_SCAN_LABELS)), return_dtype=_SCAN_CATEGORY),
            pl.col("protocol", "records").cast(pl.Int64),
            *(pl.col(c).cast(pl.String).cast(pl.Categorical) for c in text),
            side(src_side, pl.col("_ports_min") - fixed, pl.col("sport")).alias("sport_min"),
            side(src_side, pl.col("_ports_max") - fixed, pl.col("sport")).alias("sport_max"),
            side(dst_side, pl.col("_ports_min") - fixed, pl.col("dport")).alias("dport_min"),
            side(dst_side, pl.col("_ports_max") - fixed, pl.col("dport")).alias("dport_max"),
            s1.alias("_s1"),
            s2.alias("_s2"),
            d1.alias("_d1"),
            d2.alias("_d2"),
            *_NOT_COUNTED,
            # A genuine port 0 (before the nulls become 0) of a used record: its key may now equal a
            # bucketed one (only used records are bucketed).
            ((pl.col("cat") == 0) & ((pl.col("sport") == 0) | (pl.col("dport") == 0)))
            .fill_null(False)
            .alias("_z"),
        ).with_columns(pl.col("sport", "dport").fill_null(0).cast(pl.Int64))
        return merge_colliding(shaped, pl.col("_z"))

    def add_grouped(self, grouped: pl.DataFrame, flow_logs: str | None = None) -> None:
        """Consume the output of :meth:`grouped_query` (from a block or from a whole clean file);
        ``flow_logs``: the flow log(s) that delivered the records, when known (``COVERAGE_SCHEMA``)."""
        counts = dict(grouped.group_by("cat").agg(pl.col("records").sum()).iter_rows())
        self.ledger.add_used(int(counts.pop("used", 0)))
        self.ledger.add_coverage(int(counts.pop("nodata", 0)), int(counts.pop("skipdata", 0)))
        for reason, count in sorted(counts.items()):
            self.ledger.add_filtered(reason, int(count))
        self._coverage.append(_coverage_of(grouped, flow_logs))
        used = grouped.filter(pl.col("cat") == "used")
        if used.height == 0:
            return
        self._partials.append(_categorical_keys(used).drop("cat", "_seconds"))
        self._pending_rows += used.height
        if self._pending_rows > max(self.compact_rows, 2 * self._compacted_rows):
            self._compact()

    def _compact(self) -> None:
        """Merge partial aggregates so memory stays proportional to distinct edges."""
        if len(self._partials) > 1:
            merged = pl.concat(self._partials, how="vertical_relaxed")
            self._partials = [merged.group_by(_PRE_KEY).agg(*_MERGE_AGGS)]
        self._compacted_rows = sum(p.height for p in self._partials)
        self._pending_rows = self._compacted_rows

    def add_edges(
        self, edges: pl.DataFrame, coverage: pl.DataFrame, spans: pl.DataFrame | None = None
    ) -> None:
        """Merge edges that a source already produced (flow-edge files, the Insights runner)."""
        if self.window is not None:
            inside = (pl.col("first_start") >= self.window.start) & (pl.col("first_start") < self.window.end)
            outside = edges.filter(~inside)
            self.ledger.add_filtered(OUTSIDE_WINDOW, int(outside["records"].sum() or 0))
            edges = edges.filter(inside)
        self.ledger.add_used(int(edges["records"].sum() or 0))
        self.ledger.add_coverage(int(coverage["nodata"].sum() or 0), int(coverage["skipdata"].sum() or 0))
        self._final.append(edges.select(EDGE_SCHEMA.keys()).cast(EDGE_SCHEMA))  # type: ignore[arg-type]
        # A frame from before the placement columns existed: where the interface was is unknown.
        unknown = [pl.lit(None, dtype=pl.String).alias(c) for c in PLACEMENT_COLUMNS if c not in coverage]
        self._coverage.append(coverage.with_columns(unknown).rename({"interface_id": "iface"}))
        if spans is not None:
            self.add_spans(spans)

    def finish(self, addresses: Mapping[str, Collection[str]] | None = None) -> FlowEdges:
        """Decide directions, orient edges to the ENI, and return the §4.2 edges and coverage.

        ``addresses`` maps an interface id to all its addresses (from the inventory), for formats without
        ``flow-direction``; without it the address common to an interface's records is taken as its own.
        """
        if self._finished:
            raise RuntimeError("EdgeAggregator.finish called twice")
        self._finished = True
        self._compact()
        # One chunk per column: the steps below add single-chunk columns, and polars re-splits every column
        # of a frame whose columns are chunked differently on each step that mixes them (~20 ms a step on
        # 700k partial edges; keys are Categorical here, so the copy moves integers, not strings).
        partial = (self._partials[0] if self._partials else _empty_partial()).rechunk()
        # The aggregator is spent: let the engine reuse its memory for the copies below (the peak of a
        # whole ingestion is here, after the scan).
        self._partials = []
        partial = _assign_direction(partial, addresses, self.ledger)
        unknown = partial.filter(pl.col("direction").is_null())
        if unknown.height:
            self.ledger.reclassify_used(DIRECTION_UNKNOWN, int(unknown["records"].sum()))
        edges = _orient(partial.filter(pl.col("direction").is_not_null()))
        if self._final:
            edges = _merge_final([edges, *self._final])
        coverage = _finish_coverage(self._coverage, self._subnets)
        window = self.window
        if window is None and coverage.height:
            start, end = coverage["first_start"].min(), coverage["last_end"].max()
            if isinstance(start, int) and isinstance(end, int):
                window = Window(start, end)
        return FlowEdges(
            edges,
            coverage,
            window,
            self.ledger.freeze(),
            self.source,
            tuple(self.ledger.warnings),
            spans=merge_spans(self._spans),
            unreadable=tuple(issue.file for issue in self.ledger.unreadable),
        )


def _coverage_of(grouped: pl.DataFrame, flow_logs: str | None = None) -> pl.DataFrame:
    """Per-interface coverage of one grouped frame (the coverage columns, ``iface`` as String), every
    interface's ``flow_logs`` the given ones; ``subnet_id`` comes from the spans (`_finish_coverage`).

    Plain aggregates over every covered row; the NODATA/SKIPDATA counts on those few rows only. Lazy,
    so the engine reads just the columns it needs instead of copying the filtered frame."""
    covered = grouped.lazy().filter(pl.col("cat").is_in(_COVERED))
    spans = covered.group_by("iface").agg(
        pl.col("first_start").min(), pl.col("last_end").max(), pl.col("records").sum()
    )
    evidence = (
        covered.filter(pl.col("cat") != "used")
        .group_by("iface")
        .agg(
            pl.col("records").filter(pl.col("cat") == "nodata").sum().alias("nodata"),
            pl.col("records").filter(pl.col("cat") == "skipdata").sum().alias("skipdata"),
            pl.col("_seconds").filter(pl.col("cat") == "skipdata").sum().alias("skipdata_seconds"),
        )
    )
    counts = ("nodata", "skipdata", "skipdata_seconds")
    return (
        spans.join(evidence, on="iface", how="left")
        .with_columns(
            pl.col(counts).fill_null(0),
            pl.col("iface").cast(pl.String),
            pl.lit(None, dtype=pl.String).alias("subnet_id"),
            pl.lit(flow_logs, dtype=pl.String).alias("flow_logs"),
        )
        .collect()
    )


def _empty_partial() -> pl.DataFrame:
    string, integer = pl.String(), pl.Int64()
    schema: dict[str, pl.DataType] = {
        "iface": string, "fdir": string, "action": string, "protocol": integer, "saddr": string,
        "daddr": string, "psrc": string, "pdst": string, "sport": integer, "dport": integer,
    }  # fmt: skip
    for name in ("records", "packets", "bytes", "first_start", "last_end", "sport_min", "sport_max",
                 "dport_min", "dport_max", "flags_known", "syn", "synack", "fin", "zero"):  # fmt: skip
        schema[name] = integer
    schema["src_svc"] = string
    schema["dst_svc"] = string
    for name in (*PORT_MOMENTS, *_COUNTED):
        schema[name] = integer
    return _categorical_keys(pl.DataFrame(schema=schema))


def _own_frame(rows: list[tuple[str, str]]) -> pl.DataFrame:
    """(interface, own address) pairs, keyed like the partial edges."""
    frame = pl.DataFrame(rows, schema={"iface": pl.String, "addr": pl.String}, orient="row")
    return frame.with_columns(pl.col("iface", "addr").cast(pl.Categorical))


def _pair_code(iface: str, addr: str) -> pl.Expr:
    """One UInt64 per (interface, address): both are Categorical of the one process-wide dictionary, so
    their u32 ids identify the strings in any column; membership is then a single integer ``is_in``
    instead of a join on two text columns."""
    return pl.col(iface).to_physical().cast(pl.UInt64) * (1 << 32) + pl.col(addr).to_physical().cast(
        pl.UInt64
    )


def _assign_direction(
    partial: pl.DataFrame, addresses: Mapping[str, Collection[str]] | None, ledger: Ledger
) -> pl.DataFrame:
    """Direction per partial edge: flow-direction, else the inventory's addresses, else the data."""
    partial = partial.with_columns(pl.col("fdir").cast(_DIRECTION).alias("direction"))
    if addresses:
        own = _own_frame(
            [(eni, str(ipaddress.ip_address(a))) for eni, addrs in addresses.items() for a in addrs]
        ).unique()
        partial = _direction_from_own(partial, own)
    undecided = partial.filter(pl.col("direction").is_null())
    if undecided.height:
        own = _infer_own_addresses(undecided, ledger)
        partial = _direction_from_own(partial, own)
    return partial


def _direction_from_own(partial: pl.DataFrame, own: pl.DataFrame) -> pl.DataFrame:
    """Fill a missing direction: egress when the source is one of the ENI's own addresses."""
    codes = own.select(_pair_code("iface", "addr"))
    codes_series = codes.to_series()

    def owned(column: str) -> pl.Expr:
        return _pair_code("iface", column).is_in(codes_series.implode()).fill_null(False)

    direction = (
        pl.when(pl.col("direction").is_not_null())
        .then(pl.col("direction"))
        .when(owned("saddr") | owned("psrc"))
        .then(pl.lit("egress", dtype=_DIRECTION))
        .when(owned("daddr") | owned("pdst"))
        .then(pl.lit("ingress", dtype=_DIRECTION))
    )
    return partial.with_columns(direction.alias("direction"))


def _infer_own_addresses(undecided: pl.DataFrame, ledger: Ledger, passes: int = 4) -> pl.DataFrame:
    """Find each interface's own addresses from its records alone: the address common to its edges.

    Greedy: per interface, the address present in the most of its not-yet-explained edges is its own;
    repeat for edges it does not explain (a second address, e.g. IPv6). A tie (an ENI that only ever
    talks to one peer) is broken first by excluding addresses already known to be another ENI's own,
    then by preferring private addresses; what stays ambiguous is reported.

    Most interfaces have one address present in every edge and no other such address: the greedy's
    first pass picks it, untied, and explains everything, so those are settled up front
    (:func:`_sole_common_addresses`, a few integer passes) and only the others go through the greedy.
    """
    sole = _sole_common_addresses(undecided)
    rest = undecided.filter(~pl.col("iface").is_in(sole["iface"].implode()))
    if rest.height == 0:
        return sole
    return _greedy_own_addresses(rest, ledger, passes, known=sole)


def _sole_common_addresses(undecided: pl.DataFrame) -> pl.DataFrame:
    """(interface, address) for each interface with exactly one address present in all its edges.

    An address in every edge is in any one of them, so an edge's two addresses are the only candidates;
    which edge is taken does not matter. Both candidates in every edge (an ENI that only ever talks to
    one peer) is a tie, left to the greedy."""
    first_edge = pl.col("iface").is_first_distinct()
    firsts = undecided.lazy().filter(first_edge).select("iface", "saddr", "daddr").collect()
    ids = firsts["iface"].to_physical()

    def lookup(column: str) -> pl.Expr:
        """The column's candidate for each row's interface."""
        table = _by_dictionary_id(ids, firsts[column].to_physical(), ids.dtype)
        return pl.lit(table).gather(pl.col("iface").to_physical())

    def in_edge(candidate: pl.Expr) -> pl.Expr:
        return (pl.col("saddr").to_physical() == candidate) | (pl.col("daddr").to_physical() == candidate)

    # Interfaces where a candidate misses some edge: few rows, so collected as a set of ids.
    misses = undecided.select(
        pl.col("iface").to_physical().filter(~in_edge(lookup("saddr"))).unique().implode().alias("first"),
        pl.col("iface").to_physical().filter(~in_edge(lookup("daddr"))).unique().implode().alias("second"),
    ).row(0)
    first_everywhere = ~ids.is_in(pl.Series(misses[0], dtype=ids.dtype).implode())
    second_everywhere = ~ids.is_in(pl.Series(misses[1], dtype=ids.dtype).implode())
    only_first, only_second = first_everywhere & ~second_everywhere, second_everywhere & ~first_everywhere
    return pl.concat(
        [
            firsts.filter(only_first).select("iface", pl.col("saddr").alias("addr")),
            firsts.filter(only_second).select("iface", pl.col("daddr").alias("addr")),
        ]
    )


def _greedy_own_addresses(
    undecided: pl.DataFrame, ledger: Ledger, passes: int = 4, known: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The greedy of :func:`_infer_own_addresses` on ``undecided``; ``known``: own addresses already
    settled for other interfaces (they break ties like the greedy's own winners)."""
    edges = undecided.select("iface", "saddr", "daddr").unique().with_row_index("_e")
    # One row per (edge, address); (iface, _e, addr) is unique, so counting rows counts edges.
    long = pl.concat(
        [
            edges.select("iface", "_e", pl.col("saddr").alias("addr")),
            edges.filter(pl.col("daddr").ne_missing(pl.col("saddr"))).select(
                "iface", "_e", pl.col("daddr").alias("addr")
            ),
        ]
    ).with_columns(_pair_code("iface", "addr").alias("_code"))
    own = _own_frame([]) if known is None else known
    for _ in range(passes):
        own_codes = own.select(_pair_code("iface", "addr")).to_series()
        explained = long.filter(pl.col("_code").is_in(own_codes.implode()))["_e"]
        remaining = long.filter(~pl.col("_e").is_in(explained.implode()))
        if remaining.height == 0:
            break
        counts = remaining.group_by("_code").agg(pl.first("iface"), pl.first("addr"), pl.len().alias("n"))
        top = counts.filter(pl.col("n") == pl.col("n").max().over("iface"))
        tied = top.filter(pl.len().over("iface") > 1)
        winners = top.filter(pl.len().over("iface") == 1).select("iface", "addr")
        if tied.height:
            winners = pl.concat([winners, _break_ties(tied, pl.concat([own, winners]), ledger)])
        own = pl.concat([own, winners]).unique()
    return own


def _break_ties(tied: pl.DataFrame, known: pl.DataFrame, ledger: Ledger) -> pl.DataFrame:
    owners: dict[str, set[str]] = {}
    for owner, addr in known.select(pl.col("iface", "addr").cast(pl.String)).iter_rows():
        owners.setdefault(addr, set()).add(owner)
    candidates_of: dict[str, list[str]] = {}
    ordered = tied.select(pl.col("iface", "addr").cast(pl.String)).sort("iface", "addr")
    for iface, addr in ordered.iter_rows():
        candidates_of.setdefault(iface, []).append(addr)
    rows: list[tuple[str, str]] = []
    for iface, candidates in candidates_of.items():
        free = [a for a in candidates if not owners.get(a, set()) - {iface}] or candidates
        if len(free) > 1:
            private = [a for a in free if ipaddress.ip_address(a).is_private]
            free = private or free
        if len(free) > 1:
            ledger.warnings.append(
                f"{iface}: own address ambiguous among {', '.join(free[:4])}; assumed {free[0]} "
                "(pass --inventory or use a format with flow-direction)"
            )
        rows.append((iface, free[0]))
    return _own_frame(rows)


def _orient(partial: pl.DataFrame) -> pl.DataFrame:
    """Turn src/dst partial edges into local/remote edges of the ENI and merge them."""
    egress = pl.col("direction") == "egress"

    def pick(if_egress: str, if_ingress: str) -> pl.Expr:
        return pl.when(egress).then(pl.col(if_egress)).otherwise(pl.col(if_ingress))

    def sides(src: str, dst: str, local: str, remote: str) -> tuple[pl.Expr, pl.Expr]:
        """A src/dst column pair as the local/remote pair: egress keeps the order, ingress swaps it."""
        return pick(src, dst).alias(local), pick(dst, src).alias(remote)

    oriented = partial.with_columns(
        pl.col("iface").alias("interface_id"),
        pl.when(egress)
        .then(pl.coalesce("psrc", "saddr"))
        .otherwise(pl.coalesce("pdst", "daddr"))
        .alias("local_addr"),
        pl.when(egress)
        .then(pl.coalesce("pdst", "daddr"))
        .otherwise(pl.coalesce("psrc", "saddr"))
        .alias("remote_addr"),
        *sides("sport", "dport", "local_port", "remote_port"),
        *sides("sport_min", "dport_min", "local_port_min", "remote_port_min"),
        *sides("sport_max", "dport_max", "local_port_max", "remote_port_max"),
        pick("dst_svc", "src_svc").alias("aws_service"),
        *sides("_s1", "_d1", "_l1", "_r1"),
        *sides("_s2", "_d2", "_l2", "_r2"),
        *sides("_src_n", "_dst_n", "_l_counted", "_r_counted"),
    )
    words = _key_words(oriented)
    oriented = oriented.with_columns(words)
    merged = _merge_parts(oriented, words, may_repeat=_parts_may_share_edges(partial))
    has_flags = pl.col("flags_known") > 0
    merged = merged.with_columns(
        _distinct_ports("local", "_l").alias("local_port_distinct"),
        _distinct_ports("remote", "_r").alias("remote_port_distinct"),
        pl.when(has_flags).then(pl.col("syn")).alias("syn_records"),
        pl.when(has_flags).then(pl.col("synack")).alias("synack_records"),
        pl.when(has_flags).then(pl.col("fin")).alias("fin_records"),
        pl.when(has_flags).then(pl.col("zero")).alias("zero_flag_records"),
    )
    return _by_words(merged, words, EDGE_SCHEMA.keys()).cast(EDGE_SCHEMA)  # type: ignore[arg-type]


def _distinct_ports(side: str, prefix: str) -> pl.Expr:
    """Distinct ports on one side (``local``/``remote``) of an edge (README "Distinct ports").

    A port in the key is the only one (1). A bucketed side (key port 0) holds the real ports of its
    records: the count is exact up to 2 — one port if min = max; two if Σ (p - min)(max - p) = 0, which
    holds only when every port is the min or the max — and from 3 on an upper bound, min(records,
    max - min + 1): the analysis only asks whether a side has 3 or more. That sum comes from the side's
    moments (columns ``<prefix>1``, ``<prefix>2``), which merge exactly across blocks, files and partial
    edges, so memory stays with the edges. A source that counts for itself (Logs Insights'
    count_distinct of the bucketed ports, ``<prefix>_counted``; null from files) gives its count, plus one
    when genuine port-0 records share the edge."""
    port, low, high = pl.col(f"{side}_port"), pl.col(f"{side}_port_min"), pl.col(f"{side}_port_max")
    wide = pl.Int128()  # Int64 holds every sum; their products need more room
    records = pl.col("records").cast(wide)
    a, b = (low - _CENTRE).cast(wide), (high - _CENTRE).cast(wide)
    spread = (a + b) * pl.col(f"{prefix}1").cast(wide) - pl.col(f"{prefix}2").cast(wide) - a * b * records
    from_moments = (
        pl.when(low == high)
        .then(1)
        .when(spread == 0)
        .then(2)
        .otherwise(pl.min_horizontal(pl.col("records"), high - low + 1))
    )
    counted = pl.col(f"{prefix}_counted")
    return (
        pl.when(port != 0)
        .then(1)
        .when(counted.is_not_null())
        .then(counted + (low == 0).cast(pl.Int64))
        .otherwise(from_moments)
        .cast(pl.Int64)
    )


def _sorted_by_key(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows sorted by the edge key as the strings and numbers compare (nulls last)."""
    words = _key_words(frame)
    return _by_words(frame.with_columns(words), words, frame.columns)


def _by_words(frame: pl.DataFrame, words: list[pl.Expr], columns: Iterable[str]) -> pl.DataFrame:
    """``columns`` of ``frame`` sorted by the packed key ``words`` (unique per row: no ties).

    Only the kept columns are moved, by the engine's own sort (it gathers the columns in parallel):
    a sort on the multi-column key with strings is ~15x slower, an arg-sort plus a gather of every
    column ~2x."""
    names = [w.meta.output_name() for w in words]
    return frame.select(*columns, *names).sort(names).drop(names)


def _key_words(frame: pl.DataFrame) -> list[pl.Expr]:
    """The edge key packed into as few UInt64 columns (``_w0``, …) as it fits in, ordered like the key.

    Each key column becomes an unsigned order code (text: the lexical rank among the column's few
    distinct values; numbers: offset from the minimum; null: one past the largest code), packed most
    significant first. Equal keys give equal words and the words sort like the key (strings compared as
    strings, nulls last), so duplicates are found and rows sorted on one or two integers instead of a
    multi-column key with strings (about a second per 700k edges for the sort alone)."""
    words: list[pl.Expr] = []
    word: pl.Expr | None = None
    bits = 0
    for column in EDGE_KEY:
        code, width = _order_code(frame[column])
        if word is None or bits + width > 64:
            if word is not None:
                words.append(word.alias(f"_w{len(words)}"))
            word, bits = code, width
        else:
            word, bits = word * (1 << width) + code, bits + width
    assert word is not None
    return [*words, word.alias(f"_w{len(words)}")]


def _by_dictionary_id(ids: pl.Series, values: pl.Series, dtype: pl.DataType) -> pl.Series:
    """A table indexed by a Categorical's dictionary ids (``values[i]`` at ``ids[i]``, 0 elsewhere), so
    that a per-row lookup is an array gather on the physical ids, not a hash lookup."""
    largest = ids.max()
    size = (largest if isinstance(largest, int) else 0) + 1
    return pl.zeros(size, dtype=dtype, eager=True).scatter(ids, values)


def _order_code(values: pl.Series) -> tuple[pl.Expr, int]:
    """(UInt64 code of ``values`` ordered like the values, nulls last; its width in bits)."""
    column = pl.col(values.name)
    if values.dtype == pl.String:
        values, column = values.cast(pl.Categorical), column.cast(pl.Categorical)
    if values.dtype == pl.Categorical or isinstance(values.dtype, pl.Enum):
        distinct = values.unique().drop_nulls()
        order = pl.DataFrame({"p": distinct.to_physical(), "t": distinct.cast(pl.String)}).sort("t")
        top = order.height
        ranks = _by_dictionary_id(order["p"], pl.arange(top, eager=True), pl.UInt64())
        code = pl.lit(ranks).gather(column.to_physical())
    else:
        low, high = values.min(), values.max()
        low = low if isinstance(low, int) else 0
        top = (high if isinstance(high, int) else 0) - low + 1
        code = (column - low).cast(pl.UInt64)
    return code.fill_null(top), max(top.bit_length(), 1)


def _parts_may_share_edges(partial: pl.DataFrame) -> bool:
    """Whether two partial edges (unique on the partial key) can become one edge.

    Orienting maps (fdir, saddr, daddr, psrc, pdst, sport, dport) to (direction, local, remote, ports)
    one to one when no pkt-address hides an interface address and flow-direction is either always or
    never given; two edges of opposite direction never meet (direction is part of the edge key)."""
    height = partial.height
    fdir_nulls = partial["fdir"].null_count()
    pkt_nulls = partial["psrc"].null_count() + partial["pdst"].null_count()
    return pkt_nulls != 2 * height or fdir_nulls not in (0, height)


def _merge_parts(oriented: pl.DataFrame, words: list[pl.Expr], *, may_repeat: bool) -> pl.DataFrame:
    """Merge the partial edges that became one edge. Most edges have one part (several only where a
    pkt-address replaced the interface address, or flow-direction was absent in some records only), so
    only the rows whose key repeats (found on the packed key ``words``) go through the group-by."""
    key = list(EDGE_KEY)
    packed = [w.meta.output_name() for w in words]
    moments, counted = ("_l1", "_l2", "_r1", "_r2"), ("_l_counted", "_r_counted")
    names = [
        *(e.meta.output_name() for e in (*_volume_aggs("local_port", "remote_port"), *_FLAG_SUMS)),
        "aws_service",
        *moments,
        *counted,
    ]
    if not may_repeat:
        return oriented.select(*key, *packed, *names)
    # A 64-bit hash of the words is cheaper to test than the words; a collision only sends a few more
    # rows through the group-by (which is on the key itself).
    repeated = oriented.select(pl.struct(packed).hash(seed=0).is_duplicated()).to_series()
    single = oriented.filter(~repeated).select(*key, *packed, *names)
    if not repeated.any():
        return single
    grouped = (
        oriented.filter(repeated)
        .group_by(key)
        .agg(
            pl.col(packed).first(),
            *_volume_aggs("local_port", "remote_port"),
            *_FLAG_SUMS,
            pl.col("aws_service").max(),
            *(_sum(c) for c in moments),
            *(_sum_known(c) for c in counted),
        )
    )
    return pl.concat([single, grouped.select(single.columns)])


def _merge_final(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Merge edges from several sources; distinct counts take the largest source's, flag counts add."""
    key = list(EDGE_KEY)
    merged = (
        pl.concat(frames, how="vertical_relaxed")
        .group_by(key)
        .agg(
            *_volume_aggs("local_port", "remote_port"),
            pl.col("local_port_distinct").max(),
            pl.col("remote_port_distinct").max(),
            pl.col("syn_records").sum().alias("syn_records"),
            pl.col("synack_records").sum().alias("synack_records"),
            pl.col("fin_records").sum().alias("fin_records"),
            pl.col("zero_flag_records").sum().alias("zero_flag_records"),
            pl.col("syn_records").count().alias("_flags_known"),
            pl.col("aws_service").max(),
        )
    )
    flagged = pl.col("_flags_known") > 0
    merged = merged.with_columns(
        *(
            pl.when(flagged).then(pl.col(c)).alias(c)
            for c in ("syn_records", "synack_records", "fin_records", "zero_flag_records")
        )
    )
    return _sorted_by_key(merged.select(EDGE_SCHEMA.keys()).cast(EDGE_SCHEMA))  # type: ignore[arg-type]


def _smallest_subnets(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Each interface's smallest subnet over ``parts`` (``interface_id``, ``subnet_id``)."""
    rows = pl.concat(parts, how="vertical_relaxed")
    return rows.group_by("interface_id").agg(pl.col("subnet_id").min())


def _finish_coverage(parts: list[pl.DataFrame], subnets: Sequence[pl.DataFrame] = ()) -> pl.DataFrame:
    """Merge the coverage parts per interface (counts add, spans widen, ``subnet_id`` the smallest,
    ``flow_logs`` the union), with the subnets the span queries found (``subnets``)."""
    if not parts:
        return pl.DataFrame(schema=COVERAGE_SCHEMA)
    columns = list(COVERAGE_SCHEMA)
    frames = [p.rename({"iface": "interface_id"}).select(columns) for p in parts]
    merged = (
        pl.concat(frames, how="vertical_relaxed")
        .group_by("interface_id")
        .agg(*_COVERAGE_MERGE)
        .with_columns(pl.when(pl.col("flow_logs") != "").then(pl.col("flow_logs")).alias("flow_logs"))
    )
    if subnets:
        found = _smallest_subnets(subnets).rename({"subnet_id": "_subnet"})
        merged = merged.join(found, on="interface_id", how="left").with_columns(
            pl.min_horizontal("subnet_id", "_subnet").alias("subnet_id")
        )
    return merged.select(columns).cast(COVERAGE_SCHEMA).sort("interface_id")  # type: ignore[arg-type]
