"""The fast path for clean text files: one streaming pass of the column engine from file to edges.

Most flow-log files are clean. For those, the engine reads, types, validates, categorises and aggregates a
whole file in a single streaming query (no Python per block), with memory bounded by the edges. The same
query counts every record that fails a check; if there is even one, or if the engine cannot read the
file (a wrong field count, undecodable bytes), nothing is kept and the caller takes the careful path,
which locates and reports every bad line. So the fast path only ever accepts files it fully validated.

A gzip file is decompressed to a temporary file first (streaming, so a damaged one is noticed and left to
the careful path, which keeps every good line before the damage).
"""

from __future__ import annotations

import contextlib
import ipaddress
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from sgadvisor.flowlogs.edges import MALFORMED, PRE_KEY, EdgeAggregator, merge_grouped, record_exprs
from sgadvisor.flowlogs.fields import Kind, spec_for
from sgadvisor.flowlogs.parse import ENUMS, IPV4_RE

_IPV6_CHARS = r"^[0-9a-f:.]+$"
_COPY_BYTES = 8 * 1024 * 1024


def scan_clean_text(path: Path, fields: Sequence[str], header_lines: int, aggregator: EdgeAggregator) -> bool:
    """Aggregate a whole clean text file into ``aggregator``; False (and nothing changed) otherwise."""
    names = list(fields)
    last = names[-1]
    schema = {n: (pl.Int64 if spec_for(n).kind is Kind.INT else pl.String) for n in names}
    schema[last] = pl.String  # read as text with no null marker: a short line leaves it null
    try:
        scan = pl.scan_csv(
            path,
            has_header=False,
            skip_rows=header_lines,
            new_columns=names,
            separator=" ",
            quote_char=None,
            schema=schema,
            null_values=dict.fromkeys(names[:-1], "-"),
        )
        last_value = pl.when(pl.col(last) == "-").then(None).otherwise(pl.col(last))
        if spec_for(last).kind is Kind.INT:
            last_value = last_value.cast(pl.Int64, strict=False)
        blank = pl.all_horizontal(pl.col(n).is_null() for n in names)
        typed = scan.filter(~blank).with_columns(
            last_value.alias(last), pl.col(last).is_null().alias("_short"), _last_bad(last).alias("_last_bad")
        )
        records = typed.select(*record_exprs(names), _validity(names).alias("_bad"))
        grouped = aggregator.grouped_query(records, whole_scan=True).collect(engine="streaming")
    except (pl.exceptions.PolarsError, OSError):
        return False
    if grouped.filter(pl.col("cat") == MALFORMED).height:
        return False
    canonical = _canonical_addresses(grouped)
    if canonical is None:
        return False
    aggregator.add_grouped(canonical)
    return True


def _last_bad(last: str) -> pl.Expr:
    """The last column is read as raw text; an integer field there must still parse."""
    if spec_for(last).kind is not Kind.INT:
        return pl.lit(False)
    raw = pl.col(last)
    return (raw != "-") & raw.cast(pl.Int64, strict=False).is_null()


def _validity(names: Sequence[str]) -> pl.Expr:
    """True for a record that fails any check the careful path makes (it will then report it)."""
    checks: list[pl.Expr] = [pl.col("_short"), pl.col("_last_bad")]
    for name in names:
        spec = spec_for(name)
        col = pl.col(name)
        if spec.kind is Kind.INT:
            high = spec.max_value
            checks.append((col < 0) | (col > high) if high is not None else col < 0)
        elif spec.kind is Kind.ADDR:
            ok = col.str.contains(IPV4_RE) | (
                col.str.contains(":", literal=True) & col.str.contains(_IPV6_CHARS)
            )
            checks.append(col.is_not_null() & ~ok)
        elif name in ENUMS:
            checks.append(col.is_not_null() & ~col.is_in(ENUMS[name]))
        elif name == "interface-id":
            checks.append(col.str.contains(r"[\x00-\x1f\x7f\ufffd]"))
    return pl.any_horizontal(checks).fill_null(False)


def _canonical_addresses(grouped: pl.DataFrame) -> pl.DataFrame | None:
    """IPv6 text passed only a permissive check in the scan: validate the distinct values (few) and
    rewrite valid non-canonical spellings (``2600:1f18:100:0::a`` → ``2600:1f18:100::a``), merging the
    partial edges that then coincide. None when an address is invalid (the careful path reports it)."""
    columns = ["saddr", "daddr", "psrc", "pdst"]
    values = pl.concat([grouped.select(pl.col(c).alias("a")) for c in columns]).drop_nulls().unique()
    mapping: dict[str, str] = {}
    for text in values.filter(pl.col("a").str.contains(":", literal=True))["a"].to_list():
        try:
            canonical = str(ipaddress.ip_address(text))
        except ValueError:
            return None
        if canonical != text:
            mapping[text] = canonical
    if not mapping:
        return grouped
    # Rewrite only the rows that hold such a spelling, and merge them with the rows they now equal.
    odd = list(mapping)
    touched = pl.any_horizontal(pl.col(c).is_in(odd).fill_null(False) for c in columns)
    rewritten = (
        grouped.filter(touched)
        .with_columns(pl.col(c).replace(mapping) for c in columns)
        .with_columns(
            pl.when(pl.col("psrc") != pl.col("saddr")).then(pl.col("psrc")).alias("psrc"),
            pl.when(pl.col("pdst") != pl.col("daddr")).then(pl.col("pdst")).alias("pdst"),
        )
    )
    untouched = grouped.filter(~touched)
    keys = ["cat", *PRE_KEY]
    meeting = untouched.join(rewritten.select(keys).unique(), on=keys, how="semi", nulls_equal=True)
    rest = untouched.join(rewritten.select(keys).unique(), on=keys, how="anti", nulls_equal=True)
    merged = merge_grouped(pl.concat([rewritten, meeting], how="vertical_relaxed"))
    return pl.concat([rest, merged.select(grouped.columns)], how="vertical_relaxed")


@contextlib.contextmanager
def decompressed(path: Path) -> Iterator[Path | None]:
    """A gzip file decompressed to a temporary file, or None if it is damaged (or not gzip)."""
    with tempfile.NamedTemporaryFile(prefix="sgadvisor-", suffix=".log") as out:
        try:
            with path.open("rb") as handle:
                _gunzip(handle, out)
            out.flush()
        except (zlib.error, EOFError, OSError):
            yield None
            return
        yield Path(out.name)


def _gunzip(handle: object, out: object) -> None:
    read = handle.read  # type: ignore[attr-defined]
    write = out.write  # type: ignore[attr-defined]
    decomp = zlib.decompressobj(wbits=31)
    in_member = False
    while chunk := read(_COPY_BYTES):
        data = chunk
        while data:
            if not in_member:
                decomp = zlib.decompressobj(wbits=31)
                in_member = True
            write(decomp.decompress(data))
            if decomp.eof:
                data = decomp.unused_data
                in_member = False
                if data and not data.startswith(b"\x1f\x8b"):
                    if data.strip(b"\x00"):
                        raise zlib.error("data after the last gzip member")
                    return
            else:
                data = b""
    if in_member:
        raise EOFError("truncated gzip stream")
