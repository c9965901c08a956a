"""Turn raw flow-log values into typed columns, vectorised, with every bad record located and counted.

The fast path hands a block of complete lines to the column engine's CSV reader (space separated, no
quoting) and types the columns with expressions; no per-row Python runs for a clean line. Only lines the
fast path cannot trust (wrong field count, runs of spaces, undecodable bytes) are re-read one by one, so
a damaged line costs time in proportion to the damage, never to the file.
"""

from __future__ import annotations

import io
import ipaddress
import socket
from collections.abc import Sequence

import polars as pl

from sgadvisor.accounting import Ledger
from sgadvisor.flowlogs.fields import Kind, spec_for

LINE_COL = "_line"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
_ERR_COL = "_error"
_CONTROL_CHARS = r"[\x00-\x1f\x7f]"
_OVERFLOW = "_overflow"
# start/end: epoch seconds, or milliseconds as some producers write them (13 digits: read as ms). Any
# other value is out of range (a 12-digit or 14-digit one would be a date no output can print).
EPOCH_SECONDS_MAX = 10**11 - 1  # year 5138
MILLIS_MIN, MILLIS_MAX = 10**12, 10**13 - 1
TIME_FIELDS = ("start", "end")
# Fields with a closed set of documented values (both parsing paths check them).
ENUMS: dict[str, tuple[str, ...]] = {
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
    clean = _read_clean(block, fields)
    if clean is not None:
        clean = clean.with_row_index(LINE_COL, offset=first_line).with_columns(
            pl.col(LINE_COL).cast(pl.Int64)
        )
        return type_columns(clean, fields, file=file, ledger=ledger)
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
    suspicious = pl.any_horizontal(pl.col(c).is_null() for c in value_cols) | pl.col(_OVERFLOW).is_not_null()
    if not _is_utf8(block):
        # Undecodable bytes became U+FFFD in the lossy read: send those lines to the careful path.
        suspicious = suspicious | pl.any_horizontal(
            pl.col(c).str.contains("\ufffd", literal=True) for c in value_cols
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


_NOT_CLEAN = (b"  ", b" \n", b"\n ", b"\n\n", b"\r", b"\t", b"\x00")


def _read_clean(block: bytes, fields: Sequence[str]) -> pl.DataFrame | None:
    """The fast path: typed columns straight from the engine, for a block whose bytes prove that every
    line has exactly the format's fields separated by single spaces. Returns None otherwise, and the
    caller takes the careful path (which locates every bad line).

    The proof: no runs of whitespace, blank lines or control characters; valid UTF-8; exactly
    (fields - 1) spaces per line in total; and the engine, given exactly ``fields`` columns and no
    tolerance for ragged lines, accepts it (a longer line raises, so a shorter one cannot hide behind it).
    """
    if block.startswith((b" ", b"\n")) or any(marker in block for marker in _NOT_CLEAN):
        return None
    lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    if block.count(b" ") != (len(fields) - 1) * lines or not _is_utf8(block):
        return None
    schema = {name: (pl.Int64 if spec_for(name).kind is Kind.INT else pl.String) for name in fields}
    try:
        frame = pl.read_csv(
            io.BytesIO(block),
            has_header=False,
            new_columns=list(fields),
            separator=" ",
            quote_char=None,
            schema=schema,
            null_values="-",
        )
    except pl.exceptions.PolarsError:
        return None
    return frame if frame.height == lines else None


def _is_utf8(block: bytes) -> bool:
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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

    # Phase 1: per field, "is a value present" and, for addresses, "is canonical IPv4" (engine-checked);
    # materialised once so the typing and the checks below never recompute them.
    def present_of(name: str) -> pl.Expr:
        col = pl.col(name)
        return (col.is_not_null() & (col != "-")) if raw.schema[name] == pl.String else col.is_not_null()

    addr_fields = [n for n in fields if spec_for(n).kind is Kind.ADDR]
    raw = raw.with_columns(
        *(present_of(n).alias(f"_p:{n}") for n in fields),
        *(
            pl.col(n).cast(pl.String).str.contains(IPV4_RE).fill_null(False).alias(f"_v4:{n}")
            for n in addr_fields
        ),
    )
    typed_exprs: list[pl.Expr] = []
    checks: list[tuple[pl.Expr, str, str]] = []  # (bad-value mask, field, message template)
    for name in fields:
        spec = spec_for(name)
        present, typed = pl.col(f"_p:{name}"), pl.col(f"_t:{name}")
        if spec.kind is Kind.INT:
            typed_exprs.append(pl.when(present).then(pl.col(name).cast(pl.Int64, strict=False)))
            limit = spec.max_value
            out_of_range = (typed < 0) if limit is None else ((typed < 0) | (typed > limit))
            if name in TIME_FIELDS:
                out_of_range = out_of_range | (
                    (typed > EPOCH_SECONDS_MAX) & ~typed.is_between(MILLIS_MIN, MILLIS_MAX)
                )
            checks.append((present & typed.is_null(), name, "{field}: '{value}' is not a number"))
            checks.append((out_of_range.fill_null(False), name, "{field}: {value} is out of range"))
        elif spec.kind is Kind.ADDR:
            # Only what is not canonical IPv4 (IPv6, odd spellings, garbage) goes through Python's
            # ipaddress, once per distinct value.
            text = pl.col(name).cast(pl.String)
            others = raw.filter(~pl.col(f"_v4:{name}") & pl.col(f"_p:{name}"))[name]
            canonical = _canonical_addresses(others)
            converted = text.replace_strict(canonical, default=None) if canonical else pl.lit(None, pl.String)
            typed_exprs.append(
                pl.when(~present).then(None).when(pl.col(f"_v4:{name}")).then(text).otherwise(converted)
            )
            checks.append((present & typed.is_null(), name, "{field}: {value} is not an IP address"))
        else:
            typed_exprs.append(pl.when(present).then(pl.col(name).cast(pl.String)))
            if name == "interface-id":
                # No ENI id holds a control character: such a value is binary garbage, not an interface
                # (the value is not echoed: it could drive a terminal).
                garbage = typed.str.contains(_CONTROL_CHARS).fill_null(False)
                checks.append((garbage, name, "{field}: control characters in the value"))
            allowed = ENUMS.get(name)
            if allowed is not None:
                bad_enum = typed.is_not_null() & ~typed.is_in(allowed)
                checks.append((bad_enum, name, "{field}: {value} is not one of " + "/".join(allowed)))
    raw = raw.with_columns(expr.alias(f"_t:{name}") for expr, name in zip(typed_exprs, fields, strict=True))
    any_bad = pl.any_horizontal(mask for mask, _, _ in checks) if checks else pl.lit(False)
    raw = raw.with_columns(any_bad.fill_null(False).alias(_ERR_COL))
    result = raw.filter(~pl.col(_ERR_COL)) if raw[_ERR_COL].any() else raw
    if result.height != raw.height:
        _note_bad_values(raw.filter(pl.col(_ERR_COL)), fields, checks, file, ledger)
    times = [n for n in fields if n in TIME_FIELDS]
    if (
        times
        and result.select(pl.any_horizontal(pl.col(f"_t:{n}") >= MILLIS_MIN for n in times).any()).item()
    ):
        note_millis(ledger, file)
    return result.select(
        pl.col(LINE_COL),
        *(
            (seconds_expr(pl.col(f"_t:{n}")) if n in TIME_FIELDS else pl.col(f"_t:{n}")).alias(n)
            for n in fields
        ),
    )


def seconds_expr(value: pl.Expr) -> pl.Expr:
    """A start/end value in epoch seconds: a millisecond one (13 digits) divided by 1000 (any other value
    is left as it is, out of range when above EPOCH_SECONDS_MAX)."""
    return pl.when(value.is_between(MILLIS_MIN, MILLIS_MAX)).then(value // 1000).otherwise(value)


def note_millis(ledger: Ledger, file: str) -> None:
    """Warn once per file that its start/end values were read as milliseconds."""
    warning = f"{file}: start/end written in milliseconds (13-digit epoch values): read as milliseconds"
    if warning not in ledger.warnings:
        ledger.warnings.append(warning)


def _note_bad_values(
    bad_rows: pl.DataFrame,
    fields: Sequence[str],
    checks: Sequence[tuple[pl.Expr, str, str]],
    file: str,
    ledger: Ledger,
) -> None:
    """Work out the first reason of each bad row; only bad rows pay for message strings."""
    flags = bad_rows.select(
        pl.col(LINE_COL), *(mask.fill_null(False).alias(f"_m{i}") for i, (mask, _, _) in enumerate(checks))
    )
    values = bad_rows.select(pl.col(name).cast(pl.String) for name in fields)
    for row, row_values in zip(flags.iter_rows(), values.iter_rows(named=True), strict=True):
        first = next(i for i, hit in enumerate(row[1:]) if hit)
        _, field, template = checks[first]
        ledger.add_malformed(file, row[0], template.format(field=field, value=row_values[field]))


def _canonical_addresses(values: pl.Series) -> dict[str, str]:
    """Map each distinct address text to its canonical form; invalid texts are left out.

    Validation runs on distinct values only, so its cost follows the number of peers, not records.
    """
    mapping: dict[str, str] = {}
    for text in values.cast(pl.String).drop_nulls().unique().to_list():
        canonical = canonical_address(text) if text != "-" else None
        if canonical is not None:
            mapping[text] = canonical
    return mapping


def canonical_address(text: str) -> str | None:
    """The address as ``ipaddress`` spells it (RFC 5952 for IPv6), or None when it is not one.

    An IPv6 text that the C library's inet_pton/inet_ntop round trip leaves unchanged is already in
    that spelling (both follow RFC 5952: lower case, no leading zeros, the longest run of two or more
    zero groups compressed, leftmost on a tie); the check costs a tenth of ``ipaddress``. Embedded IPv4
    (which the two print differently), scope ids and everything else go through ``ipaddress``."""
    try:
        if (
            socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text)) == text
            and "." not in text
        ):
            return text
    except (OSError, ValueError):
        pass
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
