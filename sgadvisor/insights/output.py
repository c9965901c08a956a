"""Query results as an aligned table (default), JSON or CSV — one module, one function per format."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports QueryOutput for its options without loading the executor
    from sgadvisor.insights.executor import QueryResult

_MIN_COLUMN = 6
DEFAULT_CAP = 10_000  # rows the service returns unless the query's limit says otherwise


class QueryOutput(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def format_result(result: QueryResult, output: QueryOutput, *, width: int = 120) -> str:
    if output is QueryOutput.JSON:
        return format_json(result)
    if output is QueryOutput.CSV:
        return format_csv(result)
    return format_table(result, width=width)


def format_json(result: QueryResult) -> str:
    """Rows as objects (values are strings, as GetQueryResults returns them), with the statistics."""
    document = {
        "fields": list(result.fields),
        "rows": result.rows,
        "statistics": {
            "recordsScanned": result.statistics.records_scanned,
            "recordsMatched": result.statistics.records_matched,
            "bytesScanned": result.statistics.bytes_scanned,
        },
        "limit": result.limit,
        "capped": result.capped,
        "warnings": list(result.warnings),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def format_csv(result: QueryResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.fields)
    for row in result.rows:
        writer.writerow(["" if row.get(f) is None else row.get(f) for f in result.fields])
    return buffer.getvalue()


def format_table(result: QueryResult, *, width: int = 120) -> str:
    """Aligned columns that fit ``width``: the widest columns are shortened (with …) first; numbers are
    right-aligned."""
    if not result.fields:
        return ""
    cells = [[_cell(row.get(f)) for f in result.fields] for row in result.rows]
    widths = [max([len(f), *(len(r[i]) for r in cells)]) for i, f in enumerate(result.fields)]
    widths = _fit(widths, width - 2 * (len(widths) - 1))
    numeric = [
        bool(cells) and all(_is_number(r[i]) for r in cells if r[i]) for i in range(len(result.fields))
    ]

    def line(values: list[str]) -> str:
        out = []
        for i, value in enumerate(values):
            text = _shorten(value, widths[i])
            out.append(text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [line(list(result.fields)), line(["-" * w for w in widths])]
    lines += [line(row) for row in cells]
    return "\n".join(lines) + "\n"


def describe_result(result: QueryResult) -> str:
    """The stderr line after a result: counts, scanned volume and whether the cap cut rows off."""
    stats = result.statistics
    text = (
        f"{len(result.rows):,} rows; {stats.records_matched:,} of {stats.records_scanned:,} records matched, "
        f"{stats.bytes_scanned:,} bytes scanned"
    )
    if result.capped and result.limit == DEFAULT_CAP:
        text += (
            f"; capped at {result.limit:,} rows like the service (add `| limit N`, up to 100,000, or narrow "
            "the query)"
        )
    elif result.capped:
        text += f"; limited to {result.limit:,} rows (the query's limit; more rows matched)"
    return text


def _cell(value: str | None) -> str:
    return "" if value is None else " ".join(str(value).split())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def _fit(widths: list[int], room: int) -> list[int]:
    """Shrink the widest column one step at a time until the row fits (never below a small minimum)."""
    widths = list(widths)
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= _MIN_COLUMN:
            break
        widths[widest] -= 1
    return widths
