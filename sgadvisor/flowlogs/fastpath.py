"""The fast path for clean text files: one streaming pass of the column engine from file to edges.

Most flow-log files are clean. For those, the engine reads, types, categorises and aggregates a whole
file in a single streaming query (no Python per block), with memory bounded by the edges. If the file
fails any check the careful path makes, nothing is kept and the caller takes the careful path, which
locates and reports every bad line. So the fast path only accepts files it validated, with the one blind
spot described below.

The checks are placed where they cost least, and together they are the careful path's:
- in the CSV reader itself: a wrong field count or undecodable bytes fail the scan; ports are read as
  u16, protocol and tcp-flags as u8, so an out-of-range or non-numeric value fails it too, as does an
  action, log-status or flow-direction outside its documented values (read as ``Enum``);
- per row, in the query: negative numbers in the other integer fields, the last field (read raw, with no
  null marker, so that ``-`` is told apart from a missing value: a short line), and empty values (below);
- after the aggregation, on the distinct values only: addresses and interface ids are group keys, so
  every value the file holds survives into the grouped rows and is checked there (a few thousand values
  instead of millions of rows).

An empty value (``a  b``: a value removed, both spaces left) is a line with a value too few for the careful
path, which splits on runs of spaces. The reader keeps it visible where it can: text is read with empty
values as ``""`` (``-`` alone is null) and enumerations with ``-`` as one of their values, so that null
means empty. An empty integer, though, reads as null exactly like ``-``, so the scan requires the integers
AWS always writes: version, start and end of every record with a log-status, and the ports, protocol,
packets and bytes of every OK record (without log-status: of every record with an action); a null there
sends the file to the careful path. For the same
reason a line that looks blank (every text value empty, every other one null) may be a ``-`` in an integer
field with the rest of the line missing: in a format with integer fields it sends the file to the careful
path too, which skips a truly blank line silently. The blind spot left: an empty value where ``-`` is
legitimate (the traffic fields of a NODATA or SKIPDATA record, tcp-flags, traffic-path, …; in a format
without log-status, those of a record without an action; in a format with neither, every integer) reads
as ``-`` here and as a short line on the careful path.
No byte-level check closes it at an acceptable cost (a Python pass over the inflated bytes costs more than
the scan's whole margin; tests/test_fastpath_agreement.py pins it).

gzip is inflated by the engine while it scans (streaming, no temporary file). A damaged stream fails the
scan, and the careful path then keeps every good line before the damage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from sgadvisor.flowlogs.edges import ADDRESS_COLUMNS, EdgeAggregator, record_exprs, respell_addresses
from sgadvisor.flowlogs.fields import Kind, spec_for
from sgadvisor.flowlogs.parse import (
    ENUMS,
    EPOCH_SECONDS_MAX,
    IPV4_RE,
    TIME_FIELDS,
    canonical_address,
    seconds_expr,
)

_CONTROL = r"[\x00-\x1f\x7f\ufffd]"
_NARROW: dict[int, pl.DataType] = {255: pl.UInt8(), 65535: pl.UInt16()}
# Fields the scan reads in a narrow type; when the format lacks one, its column is a null of that type.
# (Text stays String in the scan: reading it as Categorical costs the reader more, ~1 CPU s per 5M lines,
# than the group-by saves; the keys become Categorical after the aggregation, on ~edges rows.)
_ABSENT: dict[str, pl.DataType] = {
    "protocol": pl.UInt8(),
    "srcport": pl.UInt16(),
    "dstport": pl.UInt16(),
    "tcp-flags": pl.UInt8(),
}


def scan_clean_text(
    path: Path,
    fields: Sequence[str],
    header_lines: int,
    aggregator: EdgeAggregator,
    *,
    millis: bool = False,
    flow_logs: str | None = None,
) -> bool:
    """Aggregate a whole clean text file (plain or gzip) into ``aggregator``; False (and nothing
    changed) otherwise. ``millis``: the sniff saw start/end in milliseconds, read them as such (without
    it such a value sends the file to the careful path, which converts it and warns). ``flow_logs``: the
    flow log that delivered the file, when its name says (coverage's ``flow_logs``)."""
    layout = _Layout(tuple(fields), millis)
    try:
        scan = pl.scan_csv(
            path,
            has_header=False,
            skip_rows=header_lines,
            new_columns=list(layout.fields),
            separator=" ",
            quote_char=None,
            schema=layout.schema(),
            null_values=layout.null_values(),
            empty_string_is_null=False,
        )
        records = scan.with_columns(layout.typed()).select(
            *record_exprs(layout.fields, _ABSENT), pl.col("_blank"), layout.bad().alias("_bad")
        )
        absent = _absent_columns(layout.fields)
        # One pass over the file for both: the engine scans the text once for the two queries. The span
        # query also takes each interface's subnet (when the format has subnet-id), for the coverage.
        grouped, spans = pl.collect_all(
            [aggregator.scan_query(records, absent), aggregator.scan_span_query(records, absent)],
            engine="streaming",
        )
    except (pl.exceptions.PolarsError, OSError):
        return False
    result = aggregator.scan_result(grouped)
    del grouped  # memory: only one grouped frame alive at a time (the peak is after the scan)
    if result is None or not _interfaces_valid(result):
        return False
    canonical = _canonical_addresses(result)
    if canonical is None:
        return False
    aggregator.add_grouped(canonical, flow_logs)
    aggregator.add_spans(spans)
    return True


def _absent_columns(fields: Sequence[str]) -> frozenset[str]:
    """Internal record columns whose field the format lacks (null throughout the file)."""
    # An absent field's expression is a literal: it reads no column.
    return frozenset(e.meta.output_name() for e in record_exprs(fields) if not e.meta.root_names())


# Integer fields AWS writes in every record that has a log-status, and in every OK record (NODATA and
# SKIPDATA records print "-" for the traffic fields): there a null can only be an empty value.
# https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html#flow-log-example-no-data
_ALWAYS_WRITTEN = ("version", "start", "end")
_WRITTEN_WHEN_OK = ("srcport", "dstport", "protocol", "packets", "bytes")


@dataclass(frozen=True)
class _Layout:
    """How the scan reads one field order: the CSV schema and the per-row checks.

    The last field is read raw with no null marker (as text, or as its Enum, which includes ``-``), so
    that ``-`` (an absent value) stays ``-`` while a missing last value (a short line) reads as null in an
    Enum and as ``""`` in text, like an empty one; ``_raw_last`` keeps that raw value."""

    fields: tuple[str, ...]
    millis: bool = False  # start/end may be written in milliseconds: convert them

    @property
    def last(self) -> str:
        return self.fields[-1]

    def _texts(self) -> list[str]:
        """The text fields (addresses included, enumerations not) before the last one."""
        return [n for n in self.fields[:-1] if spec_for(n).kind is not Kind.INT and n not in ENUMS]

    def _times(self) -> list[str]:
        return [n for n in self.fields if n in TIME_FIELDS]

    def _ints(self) -> list[str]:
        return [n for n in self.fields[:-1] if spec_for(n).kind is Kind.INT]

    def _enums(self) -> list[str]:
        return [n for n in self.fields[:-1] if n in ENUMS]

    def schema(self) -> dict[str, pl.DataType]:
        schema = {name: _read_type(name) for name in self.fields}
        if self.last not in ENUMS:
            schema[self.last] = pl.String()
        return schema

    def null_values(self) -> dict[str, str]:
        """``-`` is null in integer and text fields but the last; an enumeration keeps it as a value."""
        return {name: "-" for name in self.fields[:-1] if name not in ENUMS}

    def typed(self) -> list[pl.Expr]:
        """Evaluated together on the columns as read: the enumerations and the last field typed (``-`` →
        null; a bad last value → null, caught by :meth:`bad`), the raw last field as ``_raw_last``, and
        ``_blank`` and ``_empty``, which need the raw values. In a format with integer fields a line that
        looks blank counts as an empty value (see the module docstring)."""
        raw = pl.col(self.last)
        value: pl.Expr = pl.when(raw != "-").then(raw)
        spec = spec_for(self.last)
        if spec.kind is Kind.INT:
            value = value.cast(pl.Int64, strict=False)
            if spec.max_value in _NARROW:
                value = value.cast(_NARROW[spec.max_value], strict=False)
        enums = [pl.when(pl.col(n) != "-").then(pl.col(n)).alias(n) for n in self._enums()]
        if self.millis and self.last in TIME_FIELDS:
            value = seconds_expr(value)
        times = (
            [seconds_expr(pl.col(n)).alias(n) for n in self._times() if n != self.last] if self.millis else []
        )
        return [
            *times,
            raw.alias("_raw_last"),
            value.alias(self.last),
            *enums,
            (pl.lit(False) if self._ints() else self._looks_blank()).alias("_blank"),
            (self._empty() | self._looks_blank() if self._ints() else self._empty()).alias("_empty"),
        ]

    def _looks_blank(self) -> pl.Expr:
        """What a blank line reads as (the careful path skips it silently): every text field ``""``,
        every other field null — which a ``-`` in an integer field reads as too."""
        raw_last = pl.col(self.last)
        last_blank = raw_last.is_null() if self.last in ENUMS else raw_last.is_null() | (raw_last == "")
        return pl.all_horizontal(
            *(pl.col(n) == "" for n in self._texts()),
            *(pl.col(n).is_null() for n in self._ints() + self._enums()),
            last_blank,
        ).fill_null(False)

    def _empty(self) -> pl.Expr:
        """An empty value in a text field (``""``), an enumeration (null: ``-`` is one of its values) or
        a last field read as text (``""``: empty, or missing on a short line)."""
        checks = [pl.col(n) == "" for n in self._texts()]
        checks += [pl.col(n).is_null() for n in self._enums()]
        if self.last not in ENUMS:
            checks.append(pl.col(self.last) == "")
        return pl.any_horizontal(checks).fill_null(False) if checks else pl.lit(False)

    def bad(self) -> pl.Expr:
        """True for a record failing a check the reader cannot make (see the module docstring); a blank
        line is bad too, but is categorised as blank first."""
        raw = pl.col("_raw_last")
        # A missing enumerated last value (a short line); an empty or missing value elsewhere.
        checks: list[pl.Expr] = [raw.is_null(), pl.col("_empty")]
        present = raw.is_not_null() & (raw != "-")
        spec = spec_for(self.last)
        if spec.kind is Kind.INT:
            number = raw.cast(pl.Int64, strict=False)
            high = spec.max_value
            out_of_range = (number < 0) | (number > high) if high is not None else number < 0
            checks.append(present & (number.is_null() | out_of_range))
        wide = [n for n in self.fields[:-1] if spec_for(n).kind is Kind.INT and spec_for(n).max_value is None]
        if wide:
            checks.append(pl.min_horizontal(wide) < 0)  # one horizontal min, not one comparison per field
        if self._times():  # seconds (or converted milliseconds) a date can be printed for
            checks.append(pl.max_horizontal(self._times()) > EPOCH_SECONDS_MAX)
        for name in self.fields[:-1]:
            limit = spec_for(name).max_value
            if spec_for(name).kind is Kind.INT and limit is not None and limit not in _NARROW:
                checks.append((pl.col(name) < 0) | (pl.col(name) > limit))
        checks += self._unwritten()
        return pl.any_horizontal(checks).fill_null(False)

    def _unwritten(self) -> list[pl.Expr]:
        """A null where AWS always writes an integer (see ``_ALWAYS_WRITTEN``): an empty value."""
        if "log-status" in self.fields:
            status = pl.col("log-status")
            record, traffic = status.is_not_null(), status == "OK"
        elif "action" in self.fields:
            # Without log-status, a record with an action is a traffic record (NODATA and SKIPDATA
            # records print "-" there), and a line of "-" only is not told apart from a damaged one.
            record = traffic = pl.col("action").is_not_null()
        else:
            return []
        checks = []
        for required, when in ((_ALWAYS_WRITTEN, record), (_WRITTEN_WHEN_OK, traffic)):
            present = [n for n in required if n in self.fields]
            if present:
                checks.append(when & pl.any_horizontal(pl.col(n).is_null() for n in present))
        return checks


def _read_type(name: str) -> pl.DataType:
    spec = spec_for(name)
    if name in ENUMS:
        # An Enum that includes "-": the reader rejects any other value, and null can only be empty.
        return pl.Enum([*ENUMS[name], "-"])
    if spec.kind is Kind.INT:
        # A narrow type makes the reader itself reject a negative or too large value.
        return _NARROW.get(spec.max_value or 0, pl.Int64())
    return pl.String()


def _interfaces_valid(grouped: pl.DataFrame) -> bool:
    """No control characters (or U+FFFD) in any interface id; checked on the distinct ids."""
    ids = grouped["iface"].unique().drop_nulls().cast(pl.String)
    return not ids.str.contains(_CONTROL).any()


def _canonical_addresses(grouped: pl.DataFrame) -> pl.DataFrame | None:
    """Validate every distinct address (as the careful path does: canonical IPv4 by pattern, anything
    else through :func:`canonical_address`) and rewrite valid non-canonical spellings
    (``2600:1f18:100:0::a`` → ``2600:1f18:100::a``), merging the partial edges that then coincide.
    None when an address is invalid (the careful path reports it)."""
    values = pl.concat([grouped[c].drop_nulls().unique() for c in ADDRESS_COLUMNS]).unique().cast(pl.String)
    mapping: dict[str, str] = {}
    for text in values.filter(~values.str.contains(IPV4_RE)).to_list():
        canonical = canonical_address(text)
        if canonical is None:
            return None
        if canonical != text:
            mapping[text] = canonical
    return respell_addresses(grouped, mapping)
