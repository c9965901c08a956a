"""Turn raw flow-log values into typed columns, vectorised, with every bad record located and counted.

The fast path hands a block of complete lines to the column engine's CSV reader (space separated, no
quoting) and types the columns with expressions; no per-row Python runs for a clean line. Only lines the
fast path cannot trust (wrong field count, runs of spaces, undecodable bytes) are re-read one by one, so
a damaged line costs time in proportion to the damage, never to the file.
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Sequence

import polars as pl

from sgadvisor.accounting import Ledger
from sgadvisor.flowlogs.fields import Kind, spec_for

LINE_COL = "_line"
_ERR_COL = "_error"
_OVERFLOW = "_overflow"
_ENUMS: dict[str, tuple[str, ...]] = {
    "action": ("ACCEPT", "REJECT"),
    "log-status": ("OK", "NODATA", "SKIPDATA"),
    "flow-direction": ("ingress", "egress"),
}


def parse_text_block(
    block: bytes,
    fields: Sequence[str],
    *,
    file: str,
    first_line: int,
    ledger: Ledger,
) -> pl.DataFrame:
    """Parse complete, header-less lines into typed columns (plus ``_line``, the 1-based line number).

    Malformed lines are counted in ``ledger`` with file and line, and left out of the result.
    Blank lines are not records and are skipped silently.
    """
    if not block:
        return empty_frame(fields)
    raw = _read_fast(block, fields)
    lines_in_block = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    if raw is None or raw.height != lines_in_block:
        # The engine disagreed with our line count (e.g. a stray carriage return): go line by line.
        lines = block.splitlines()
        everything = range(len(lines))
        slow = _read_slow(lines, fields, everything)
        _note_slow_failures(lines, fields, everything, slow, file, first_line, ledger)
        slow = slow.rename({f"c{i}": name for i, name in enumerate(fields)})
        slow = slow.with_columns((pl.col(LINE_COL) + first_line).alias(LINE_COL))
        return type_columns(slow, fields, file=file, ledger=ledger)
    raw = raw.with_row_index(LINE_COL).with_columns(pl.col(LINE_COL).cast(pl.Int64))
    value_cols = [f"c{i}" for i in range(len(fields))]
    blank = pl.all_horizontal(pl.col(c).is_null() for c in [*value_cols, _OVERFLOW])
    suspicious = (
        pl.any_horizontal(pl.col(c).is_null() for c in value_cols)
        | pl.col(_OVERFLOW).is_not_null()
        | pl.any_horizontal(pl.col(c).str.contains("\ufffd", literal=True) for c in value_cols)
    )
    raw = raw.filter(~blank)
    bad = raw.filter(suspicious)
    good = raw.filter(~suspicious).drop(_OVERFLOW)
    if bad.height:
        lines = block.splitlines()
        retried = _read_slow(lines, fields, bad[LINE_COL].to_list())
        good = pl.concat([good, retried], how="vertical_relaxed").sort(LINE_COL)
        _note_slow_failures(lines, fields, bad[LINE_COL].to_list(), retried, file, first_line, ledger)
    good = good.rename({f"c{i}": name for i, name in enumerate(fields)})
    good = good.with_columns((pl.col(LINE_COL) + first_line).alias(LINE_COL))
    return type_columns(good, fields, file=file, ledger=ledger)


def _read_fast(block: bytes, fields: Sequence[str]) -> pl.DataFrame | None:
    schema = {f"c{i}": pl.String for i in range(len(fields))} | {_OVERFLOW: pl.String}
    try:
        return pl.read_csv(
            io.BytesIO(block),
            has_header=False,
            separator=" ",
            quote_char=None,
            schema=schema,
            truncate_ragged_lines=True,
            missing_columns="insert",
            extra_columns="ignore",
            encoding="utf8-lossy",
        )
    except pl.exceptions.PolarsError:
        return None  # the caller re-reads the block line by line


def _split_line(raw: bytes, width: int) -> list[str] | str:
    """Split one line on runs of whitespace; return the values, or why the line is malformed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"undecodable bytes at column {exc.start + 1}"
    if any(ord(ch) < 32 and ch not in "\t\r" for ch in text):
        return "control characters in line"
    values = text.split()
    if len(values) != width:
        return f"expected {width} fields, found {len(values)}"
    return values


def _read_slow(lines: Sequence[bytes], fields: Sequence[str], indices: Sequence[int]) -> pl.DataFrame:
    """Re-read selected lines one by one; lines that still fail are dropped here, counted by the caller."""
    width = len(fields)
    columns: list[list[str]] = [[] for _ in range(width)]
    numbers: list[int] = []
    for index in indices:
        if index >= len(lines):
            continue
        values = _split_line(lines[index], width)
        if isinstance(values, str):
            continue
        numbers.append(index)
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    data: dict[str, pl.Series] = {LINE_COL: pl.Series(LINE_COL, numbers, dtype=pl.Int64)}
    for i, column in enumerate(columns):
        data[f"c{i}"] = pl.Series(f"c{i}", column, dtype=pl.String)
    return pl.DataFrame(data)


def _note_slow_failures(
    lines: Sequence[bytes],
    fields: Sequence[str],
    indices: Sequence[int],
    retried: pl.DataFrame,
    file: str,
    first_line: int,
    ledger: Ledger,
) -> None:
    recovered = set(retried[LINE_COL].to_list())
    for index in indices:
        if index in recovered or index >= len(lines) or not lines[index].strip():
            continue
        reason = _split_line(lines[index], len(fields))
        ledger.add_malformed(file, index + first_line, str(reason))


def empty_frame(fields: Sequence[str]) -> pl.DataFrame:
    """A typed frame with no rows, for sources that produced nothing."""
    schema: dict[str, pl.DataType] = {LINE_COL: pl.Int64()}
    for name in fields:
        schema[name] = pl.Int64() if spec_for(name).kind is Kind.INT else pl.String()
    return pl.DataFrame(schema=schema)


def type_columns(raw: pl.DataFrame, fields: Sequence[str], *, file: str, ledger: Ledger) -> pl.DataFrame:
    """Type every field of ``raw`` (values as text, or already typed from Parquet) by the registry.

    ``-`` becomes null. Integers must be non-negative and within the field's range, addresses must be
    IPv4/IPv6 (stored in canonical text form), and action/log-status/flow-direction must be one of their
    documented values. A record with any bad value is counted as malformed with the first reason and
    dropped; the others are returned.
    """
    if raw.height == 0:
        return empty_frame(fields)
    exprs: list[pl.Expr] = []
    checks: list[tuple[pl.Expr, pl.Expr]] = []
    for name in fields:
        spec = spec_for(name)
        col = pl.col(name)
        is_text = raw.schema[name] == pl.String
        present = (col.is_not_null() & (col != "-")) if is_text else col.is_not_null()
        if spec.kind is Kind.INT:
            value = col.cast(pl.Int64, strict=False)
            typed = pl.when(present).then(value).otherwise(None)
            limit = spec.max_value
            out_of_range = (value < 0) if limit is None else ((value < 0) | (value > limit))
            checks.append(
                (
                    present & value.is_null(),
                    pl.format("{}: '{}' is not a number", pl.lit(name), col.cast(pl.String)),
                )
            )
            checks.append((present & out_of_range, pl.format("{}: {} is out of range", pl.lit(name), col)))
            exprs.append(typed.alias(name))
        elif spec.kind is Kind.ADDR:
            text = col.cast(pl.String)
            canonical = _canonical_addresses(raw[name])
            typed = pl.when(present).then(text.replace_strict(canonical, default=None)).otherwise(None)
            checks.append(
                (present & typed.is_null(), pl.format("{}: {} is not an IP address", pl.lit(name), text))
            )
            exprs.append(typed.alias(name))
        else:
            text = col.cast(pl.String)
            typed = pl.when(present).then(text).otherwise(None)
            allowed = _ENUMS.get(name)
            if allowed is not None:
                checks.append(
                    (
                        present & ~text.is_in(allowed),
                        pl.format("{}: {} is not one of " + "/".join(allowed), pl.lit(name), text),
                    )
                )
            exprs.append(typed.alias(name))
    error: pl.Expr = pl.lit(None, dtype=pl.String)
    for mask, reason in reversed(checks):
        error = pl.when(mask).then(reason).otherwise(error)
    typed_frame = raw.select(pl.col(LINE_COL), *exprs, error.alias(_ERR_COL))
    bad = typed_frame.filter(pl.col(_ERR_COL).is_not_null())
    for line, reason in bad.select(LINE_COL, _ERR_COL).iter_rows():
        ledger.add_malformed(file, line, reason)
    return typed_frame.filter(pl.col(_ERR_COL).is_null()).drop(_ERR_COL)


def _canonical_addresses(values: pl.Series) -> dict[str, str]:
    """Map each distinct address text to its canonical form; invalid texts are left out.

    Validation runs on distinct values only, so its cost follows the number of peers, not records.
    """
    mapping: dict[str, str] = {}
    for text in values.cast(pl.String).drop_nulls().unique().to_list():
        if text == "-":
            continue
        try:
            mapping[text] = str(ipaddress.ip_address(text))
        except ValueError:
            continue
    return mapping
