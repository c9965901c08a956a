"""When each interface's records were delivered: the spans that prove coverage, and the holes between.

Silence is not evidence (DESIGN §5): an ENI counts as observed only over the stretches its own records
(any status, NODATA included) show. AWS writes a NODATA record for an interface that had no traffic in an
aggregation interval while its flow log is active, so a healthy interface leaves no stretch without a
record much longer than two aggregation intervals (10 minutes at most each); a longer stretch means the
log stopped, records were lost, or files are missing from the input.

A span is a maximal stretch [start, end] covered by records whose gaps are at most ``SPAN_RESOLUTION``
seconds. Spans are computed per block of records from one group-by on (interface, start // resolution),
then merged across blocks and files: the union is exact for every gap of at least the resolution, and
memory grows with the gaps longer than the resolution, not with the records. An interface under a
flow log that writes NODATA has few (records of consecutive intervals are at most two intervals apart);
one whose log writes no NODATA has about one per burst of traffic.

A record counts as delivery from its start to at most ``MAX_RECORD_SECONDS`` later: no record AWS writes
spans more than one aggregation interval (10 minutes) plus the skew of its times, so a record with a
far-off end (damaged, or forged) cannot cover a window by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

# The finest gap spans keep (seconds): gaps up to this long are merged away, so --max-gap may not go below
# it. One longest aggregation interval (VPC Flow Logs user guide, "Aggregation interval": 1 or 10 minutes);
# the Logs Insights span query reads at the same resolution, so files and Insights see the same holes.
SPAN_RESOLUTION = 600
# The longest a record can cover: one 10-minute aggregation interval plus the documented skew of up to 60 s
# of start and end ("Flow log records": start/end "might be up to 60 seconds after" the packet).
MAX_RECORD_SECONDS = 660

SPAN_SCHEMA: dict[str, pl.DataType] = {"interface_id": pl.String(), "start": pl.Int64(), "end": pl.Int64()}


def span_query(records: pl.LazyFrame, covered: pl.Expr, *, subnet: bool = False) -> pl.LazyFrame:
    """Records (internal columns ``iface``, ``start``, ``end``) → one row per interface and resolution
    slot with the earliest start and latest end in it, over the ``covered`` records that carry a time.
    With ``subnet``, also the smallest ``subnet`` of those records (column ``subnet_id``): the per-row
    work rides on this group-by rather than a pass of its own.

    Inside one slot every gap is shorter than the resolution (both its ends start in the slot), so the
    slot rows lose nothing that :func:`merge_spans` keeps."""
    start = pl.col("start").cast(pl.Int64)
    # An end before its start counts as the start; an end past one interval as MAX_RECORD_SECONDS.
    end = pl.min_horizontal(
        pl.max_horizontal(start, pl.col("end").cast(pl.Int64)), start + MAX_RECORD_SECONDS
    )
    aggs = [start.min().alias("start"), end.max().alias("end")]
    columns: list[str | pl.Expr] = [pl.col("iface").cast(pl.String).alias("interface_id"), "start", "end"]
    if subnet:
        aggs.append(pl.col("subnet").min().alias("subnet_id"))
        columns.append(pl.col("subnet_id").cast(pl.String))
    return (
        records.filter(covered & pl.col("start").is_not_null() & pl.col("iface").is_not_null())
        .group_by("iface", (start // SPAN_RESOLUTION).alias("_slot"))
        .agg(*aggs)
        .select(*columns)
    )


def merge_spans(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """The union of span rows per interface, stretches closer than the resolution joined; sorted."""
    if not frames:
        return pl.DataFrame(schema=SPAN_SCHEMA)
    rows = pl.concat([f.select(SPAN_SCHEMA.keys()) for f in frames], how="vertical_relaxed")
    if rows.height == 0:
        return rows.cast(SPAN_SCHEMA)  # type: ignore[arg-type]
    # Rows sorted by interface and start, the interface as its rank among the few distinct ids (an Enum
    # of the sorted ids: integers sort faster than text, in the same order). A row opens a new span when
    # it is an interface's first, or starts further than the resolution beyond the furthest end of the
    # rows before it.
    ids = pl.Enum(rows["interface_id"].unique().drop_nulls().sort().to_list())
    keyed = rows.with_columns(pl.col("interface_id").cast(ids).to_physical().alias("_k"))
    reach = pl.col("end").cum_max().over("_k").shift(1)
    opens = (pl.col("_k") != pl.col("_k").shift(1)).fill_null(True) | (
        pl.col("start") - reach > SPAN_RESOLUTION
    )
    return (
        keyed.sort("_k", "start")
        .with_columns(opens.cum_sum().alias("_span"))
        .group_by("_span", maintain_order=True)
        .agg(pl.col("interface_id").first(), pl.col("start").min(), pl.col("end").max())
        .drop("_span")
        .cast(SPAN_SCHEMA)  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class Hole:
    """A stretch of an interface's life in the window with no record of it, longer than --max-gap."""

    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


def find_holes(spans: Iterable[tuple[int, int]], life_start: int, life_end: int, max_gap: int) -> list[Hole]:
    """Stretches of [life_start, life_end) longer than ``max_gap`` that no span touches, the life's own
    edges included (a log that started late or stopped early leaves a hole at the window's edge)."""
    holes: list[Hole] = []
    reach = life_start
    for start, end in sorted(spans):
        if end < life_start:
            continue
        if start >= life_end:
            break
        if start - reach > max_gap:
            holes.append(Hole(reach, start))
        reach = max(reach, end)
    if life_end - reach > max_gap:
        holes.append(Hole(reach, life_end))
    return holes


def spans_by_interface(spans: pl.DataFrame) -> dict[str, list[tuple[int, int]]]:
    """The merged spans as plain pairs per interface (for the analysis, which judges a few ENIs each)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for eni, start, end in spans.select(SPAN_SCHEMA.keys()).iter_rows():
        out.setdefault(eni, []).append((start, end))
    return out
