"""The shapes query logs come in, recognised by content (never by file name), as raw JSON records.

- ``s3``: what Route 53 Resolver delivers to S3 (``AWSLogs/<account>/vpcdnsquerylogs/<vpc>/YYYY/MM/DD/
  <vpc>_vpcdnsquerylogs_<account>_<YYYYMMDDTHHMM>Z_<hash>.log.gz``): one JSON record per line.
- ``cloudwatch-events``: the same records as the ``message`` strings of CloudWatch Logs events, as printed
  by ``aws logs filter-log-events`` / ``get-log-events`` (``{"events": [{"logStreamName", "timestamp",
  "message", ...}]}``, pretty-printed or one page per line), a subscription envelope (``logEvents``), or
  JSON Lines of ``{"message": ...}`` events.
- ``cloudwatch-export``: a CloudWatch Logs export to S3 (``<prefix>/<task id>/<log stream>/000000.gz``),
  whose lines are ``<ISO 8601 time> <message>``.
- ``json``: a record pretty-printed as one document (or a list of records), as the developer guide
  prints its example.

A file whose first line is JSON is read line by line, each line on its own (a record, an event, or a
whole page of events); a file whose first line is not (a pretty-printed document) is parsed whole.
Hostile JSON (nesting, huge numbers, lone surrogates) is an InputError naming the line, as for every JSON
input of sgadvisor; a line that is merely not JSON is a malformed record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sgadvisor.dnslogs.records import RECORD_KEYS
from sgadvisor.jsonload import load_json_text

MAX_DOCUMENT = 256 * 1024 * 1024  # a pretty-printed CLI page is a few MB; JSON Lines has no such limit
# CloudWatch Logs export lines start with the event time in milliseconds, UTC: 2021-06-18T16:41:50.920Z
_EXPORT_PREFIX = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z ")


class Shape(StrEnum):
    S3 = "s3"
    CLOUDWATCH_EVENTS = "cloudwatch-events"
    CLOUDWATCH_EXPORT = "cloudwatch-export"
    JSON = "json"  # one pretty-printed record, or a list of them, as the developer guide prints one


class NotAQueryLog(Exception):
    """The file is not a Route 53 Resolver query log; the message says why."""


@dataclass(frozen=True, slots=True)
class Raw:
    """One record as found: parsed JSON, or why it could not be. ``event`` numbers the events of a
    CloudWatch Logs document (1-based); in a pretty-printed document ``line`` is that number too."""

    line: int
    event: int | None
    value: Any = None
    error: str | None = None


def recognise(name: str, lines: Iterator[tuple[int, bytes]]) -> tuple[Shape, Iterator[Raw]] | None:
    """The shape of a file and its raw records, from its first non-blank line; None for a file with no
    lines but blank ones. Raises NotAQueryLog for anything else."""
    for number, line in lines:
        if line.strip():
            return _recognise_from(name, number, line, lines)
    return None


def _recognise_from(
    name: str, number: int, line: bytes, rest: Iterator[tuple[int, bytes]]
) -> tuple[Shape, Iterator[Raw]]:
    exported = _EXPORT_PREFIX.match(line)
    body = line[exported.end() :] if exported else line.lstrip()
    try:
        value = load_json_text(body, source=name, first_line=number)
    except (json.JSONDecodeError, UnicodeDecodeError):
        if exported or body[:1] not in (b"{", b"["):
            raise NotAQueryLog(
                f"line {number} is neither a query-log record (JSON), CloudWatch Logs JSON nor a "
                "CloudWatch Logs export line (<time> <message>)"
            ) from None
        shape, items = _document(name, [(number, line)], rest)
        return shape, iter(items)
    first = list(_items(name, number, value))
    if first and not any(_record_like(item.value) for item in first):
        raise NotAQueryLog(f"line {number} is JSON but not a Route 53 Resolver query-log record")
    if not first and not _events_container(value):
        raise NotAQueryLog(f"line {number} is JSON but not a Route 53 Resolver query-log record")
    if exported:
        shape = Shape.CLOUDWATCH_EXPORT
    elif _record_like(value):
        shape = Shape.S3
    else:
        shape = Shape.CLOUDWATCH_EVENTS
    return shape, _chain(first, _lines(name, rest))


def _chain(first: Iterable[Raw], rest: Iterator[Raw]) -> Iterator[Raw]:
    yield from first
    yield from rest


def _lines(name: str, lines: Iterator[tuple[int, bytes]]) -> Iterator[Raw]:
    for number, line in lines:
        if not line.strip():
            continue
        exported = _EXPORT_PREFIX.match(line)
        body = line[exported.end() :] if exported else line
        try:
            value = load_json_text(body, source=name, first_line=number)
        except json.JSONDecodeError as exc:
            yield Raw(number, None, error=f"invalid JSON: {exc.msg}")
            continue
        except UnicodeDecodeError:
            yield Raw(number, None, error="invalid JSON: not UTF-8 text")
            continue
        yield from _items(name, number, value)


def _document(
    name: str, head: list[tuple[int, bytes]], rest: Iterator[tuple[int, bytes]]
) -> tuple[Shape, list[Raw]]:
    """A JSON document spread over lines (pretty-printed CLI output), parsed whole. Its records are
    located by event number (there is no line per record to name)."""
    # Blank lines before the first one keep the numbers of json's messages those of the file.
    parts = [b"" for _ in range(head[0][0] - 1)] + [line for _, line in head]
    size = sum(len(part) + 1 for part in parts)
    for _, line in rest:
        size += len(line) + 1
        if size > MAX_DOCUMENT:
            raise NotAQueryLog(
                f"a JSON document of more than {MAX_DOCUMENT // (1024 * 1024)} MiB; write one JSON object "
                "per line instead (e.g. with jq -c)"
            )
        parts.append(line)
    try:
        value = load_json_text(b"\n".join(parts), source=name)
    except json.JSONDecodeError as exc:
        raise NotAQueryLog(f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise NotAQueryLog("not UTF-8 text") from None
    if isinstance(value, list):
        items = [
            raw
            for index, element in enumerate(value, start=1)
            for raw in _items(name, index, element, numbered=True)
        ]
    else:
        items = list(_items(name, 1, value, numbered=True))
    if not _events_container(value) and not any(_record_like(item.value) for item in items):
        raise NotAQueryLog("a JSON document without query-log records or CloudWatch Logs events")
    return (Shape.CLOUDWATCH_EVENTS if _events_container(value) else Shape.JSON), items


def _items(name: str, line: int, value: Any, *, numbered: bool = False) -> Iterator[Raw]:
    """The records in one JSON value: a record itself, an event whose message is one, or a page of
    events (``events`` of filter-log-events/get-log-events, ``logEvents`` of a subscription envelope)."""
    if isinstance(value, dict):
        events = value.get("events", value.get("logEvents"))
        if isinstance(events, list):
            if value.get("messageType") == "CONTROL_MESSAGE":
                return  # a subscription's health check, not log data
            for index, event in enumerate(events, start=1):
                yield _event(name, index if numbered else line, index, event)
            return
        if "message" in value and not RECORD_KEYS & value.keys():
            yield _event(name, line, None, value)
            return
    yield Raw(line, None, value)


def _event(name: str, line: int, index: int | None, event: Any) -> Raw:
    message = event.get("message") if isinstance(event, dict) else None
    if not isinstance(message, str):
        return Raw(line, index, error="event without a text 'message'")
    try:
        return Raw(line, index, load_json_text(message, source=name, first_line=line))
    except json.JSONDecodeError as exc:
        return Raw(line, index, error=f"message is not JSON: {exc.msg}")


def _record_like(value: Any) -> bool:
    return isinstance(value, dict) and bool(RECORD_KEYS & value.keys())


def _events_container(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("events", value.get("logEvents")), list)
