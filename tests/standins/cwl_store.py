"""Log groups, streams and events of the local CloudWatch Logs endpoint, and the scan cost model.

The store is plain data guarded by the server's lock; it knows nothing about HTTP. Events are kept as
polars frames, one chunk per accepted PutLogEvents batch, so a query over many thousands of events costs
a concat and a filter rather than a Python loop.

Sizes follow CloudWatch's own accounting: an event counts the UTF-8 bytes of its message plus 26 bytes of
per-event overhead (PutLogEvents API reference: "the sum of all event messages in UTF-8, plus 26 bytes for
each log event"). ``storedBytes`` and the query cost model of DESIGN §7 both use that size.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

EVENT_OVERHEAD_BYTES = 26  # PutLogEvents: "plus 26 bytes for each log event"
MAX_BATCH_BYTES = 1_048_576  # PutLogEvents: "The maximum batch size is 1,048,576 bytes"
MAX_BATCH_EVENTS = 10_000  # PutLogEvents: "The maximum number of log events in a batch is 10,000"
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000  # PutLogEvents: "the time span in a single batch cannot exceed 24 hours"

# The model's patterns (botocore logs/2014-03-28 service-2.json, shapes LogGroupName and LogStreamName).
_GROUP_NAME = re.compile(r"[\.\-_/#A-Za-z0-9]+")
_STREAM_NAME = re.compile(r"[^:*]*")

EVENT_SCHEMA = {
    "@timestamp": pl.Int64,
    "@message": pl.String,
    "@logStream": pl.String,
    "@log": pl.String,
    "@ingestionTime": pl.Int64,
    "_bytes": pl.Int64,
}
QUERY_COLUMNS = ("@timestamp", "@message", "@logStream", "@log", "@ingestionTime")


class ApiError(Exception):
    """An error the endpoint returns on the wire: ``{"__type": code, "message": message}`` (+ ``extra``).

    JSON 1.1 services report the error code in ``__type``; botocore turns it into ``ClientError`` with
    ``response["Error"]["Code"] == code`` (AWS JSON 1.1 protocol, "Operation error serialization").
    """

    def __init__(self, code: str, message: str, *, status: int = 400, extra: Mapping[str, Any] | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.extra = dict(extra or {})


def invalid(message: str) -> ApiError:
    """CloudWatch Logs reports validation failures as InvalidParameterException (not ValidationException)."""
    return ApiError("InvalidParameterException", message)


def validation(member: str, value: object, constraint: str) -> ApiError:
    """The service's wording for a constraint violation, e.g. an unknown enum value or a bad name."""
    detail = f"Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    return invalid(f"1 validation error detected: {detail}")


def check_group_name(name: object, member: str = "logGroupName") -> str:
    if not isinstance(name, str) or not name:
        raise validation(member, name, "Member must not be null")
    if len(name) > 512 or not _GROUP_NAME.fullmatch(name):
        raise validation(
            member, name, f"Member must satisfy regular expression pattern: {_GROUP_NAME.pattern}"
        )
    return name


def check_stream_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise validation("logStreamName", name, "Member must not be null")
    if len(name) > 512 or not _STREAM_NAME.fullmatch(name):
        raise validation(
            "logStreamName", name, f"Member must satisfy regular expression pattern: {_STREAM_NAME.pattern}"
        )
    return name


def event_bytes(message: str) -> int:
    """The size CloudWatch charges and counts for one event (see the module docstring)."""
    return len(message.encode()) + EVENT_OVERHEAD_BYTES


@dataclass
class LogStream:
    name: str
    creation_time: int
    first_event: int | None = None
    last_event: int | None = None
    last_ingestion: int | None = None
    stored_bytes: int = 0
    events: int = 0


@dataclass
class LogGroup:
    name: str
    creation_time: int
    streams: dict[str, LogStream] = field(default_factory=dict)
    stored_bytes: int = 0
    chunks: list[pl.DataFrame] = field(default_factory=list)

    def frame(self) -> pl.DataFrame:
        """All events of the group (one frame; chunks are merged once and kept merged)."""
        if not self.chunks:
            return pl.DataFrame(schema=EVENT_SCHEMA)
        if len(self.chunks) > 1:
            self.chunks = [pl.concat(self.chunks, rechunk=True)]
        return self.chunks[0]


@dataclass(frozen=True)
class Scan:
    """What a query reads under the cost model of DESIGN §7."""

    events: pl.DataFrame  # the scanned events (QUERY_COLUMNS)
    records_scanned: int
    bytes_scanned: int
    records_skipped: int
    bytes_skipped: int


class LogStore:
    """Log groups of one account and region, keyed by name."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.groups: dict[str, LogGroup] = {}

    def group(self, name: str) -> LogGroup:
        group = self.groups.get(name)
        if group is None:
            # StartQuery's wording; the other operations say "The specified log group does not exist."
            raise ApiError(
                "ResourceNotFoundException",
                f"Log group '{name}' does not exist for account ID '{self.account_id}'",
            )
        return group

    def create_group(self, name: str, now_ms: int) -> None:
        if name in self.groups:
            raise ApiError("ResourceAlreadyExistsException", "The specified log group already exists")
        self.groups[name] = LogGroup(name, now_ms)

    def create_stream(self, group_name: str, stream_name: str, now_ms: int) -> None:
        group = self._existing_group(group_name)
        if stream_name in group.streams:
            raise ApiError("ResourceAlreadyExistsException", "The specified log stream already exists")
        group.streams[stream_name] = LogStream(stream_name, now_ms)

    def _existing_group(self, name: str) -> LogGroup:
        if name not in self.groups:
            raise ApiError("ResourceNotFoundException", "The specified log group does not exist.")
        return self.groups[name]

    def put_events(self, group_name: str, stream_name: str, events: Sequence[Any], now_ms: int) -> None:
        """Append one PutLogEvents batch after the checks that fail the whole request.

        Not modelled: rejecting events older than 14 days or more than 2 hours ahead
        (``rejectedLogEventsInfo``). Tests load historical sample data, which the real service would
        refuse; the endpoint accepts every timestamp instead.
        """
        group = self._existing_group(group_name)
        stream = group.streams.get(stream_name)
        if stream is None:
            raise ApiError("ResourceNotFoundException", "The specified log stream does not exist.")
        timestamps, messages = _checked_batch(events)
        sizes = [event_bytes(m) for m in messages]
        chunk = pl.DataFrame(
            {
                "@timestamp": timestamps,
                "@message": messages,
                "@logStream": [stream_name] * len(messages),
                "@log": [f"{self.account_id}:{group_name}"] * len(messages),
                "@ingestionTime": [now_ms] * len(messages),
                "_bytes": sizes,
            },
            schema=EVENT_SCHEMA,
        )
        group.chunks.append(chunk)
        group.stored_bytes += sum(sizes)
        stream.stored_bytes += sum(sizes)
        stream.events += len(messages)
        stream.first_event = min(timestamps[0], stream.first_event or timestamps[0])
        stream.last_event = max(timestamps[-1], stream.last_event or timestamps[-1])
        stream.last_ingestion = now_ms

    def add_frame(self, group_name: str, events: pl.DataFrame, now_ms: int) -> None:
        """Append events (columns ``stream``, ``timestamp``, ``message``) without the PutLogEvents checks,
        creating the group and streams as needed. For benchmarks loading millions of events."""
        group = self.groups.setdefault(group_name, LogGroup(group_name, now_ms))
        chunk = events.select(
            pl.col("timestamp").cast(pl.Int64).alias("@timestamp"),
            pl.col("message").cast(pl.String).alias("@message"),
            pl.col("stream").cast(pl.String).alias("@logStream"),
            pl.lit(f"{self.account_id}:{group_name}").alias("@log"),
            pl.lit(now_ms, pl.Int64).alias("@ingestionTime"),
            (pl.col("message").str.len_bytes().cast(pl.Int64) + EVENT_OVERHEAD_BYTES).alias("_bytes"),
        )
        per_stream = chunk.group_by("@logStream").agg(
            pl.len().alias("events"),
            pl.col("_bytes").sum().alias("bytes"),
            pl.col("@timestamp").min().alias("first"),
            pl.col("@timestamp").max().alias("last"),
        )
        for name, count, size, first, last in per_stream.iter_rows():
            stream = group.streams.setdefault(name, LogStream(name, now_ms))
            stream.events += count
            stream.stored_bytes += size
            stream.first_event = min(first, stream.first_event if stream.first_event is not None else first)
            stream.last_event = max(last, stream.last_event if stream.last_event is not None else last)
            stream.last_ingestion = now_ms
        group.chunks.append(chunk)
        group.stored_bytes += int(chunk["_bytes"].sum())

    def scan(
        self, group_names: Sequence[str], start_s: int, end_s: int, streams: frozenset[str] | None
    ) -> Scan:
        """The events a query over these groups and seconds reads, and what an @logStream index skips.

        ``startTime``/``endTime`` are whole epoch seconds and both inclusive (StartQuery API reference), so
        an event belongs to the range when its timestamp's second does; adjacent ranges ``[a, m]`` and
        ``[m + 1, b]`` then split the events exactly.
        """
        frames = [self.group(name).frame() for name in group_names]
        events = pl.concat(frames) if frames else pl.DataFrame(schema=EVENT_SCHEMA)
        second = pl.col("@timestamp") // 1000
        in_range = events.filter((second >= start_s) & (second <= end_s))
        if streams is None:
            kept, skipped = in_range, in_range.clear()
        else:
            wanted = pl.col("@logStream").is_in(sorted(streams))
            kept, skipped = in_range.filter(wanted), in_range.filter(~wanted)
        return Scan(
            events=kept.select(QUERY_COLUMNS),
            records_scanned=kept.height,
            bytes_scanned=int(kept["_bytes"].sum()),
            records_skipped=skipped.height,
            bytes_skipped=int(skipped["_bytes"].sum()),
        )


def _checked_batch(events: Sequence[Any]) -> tuple[list[int], list[str]]:
    """Timestamps and messages of a batch, or the InvalidParameterException the service returns."""
    if not isinstance(events, list) or not events:
        raise validation("logEvents", events, "Member must have length greater than or equal to 1")
    if len(events) > MAX_BATCH_EVENTS:
        raise validation(
            "logEvents", "[...]", f"Member must have length less than or equal to {MAX_BATCH_EVENTS}"
        )
    timestamps: list[int] = []
    messages: list[str] = []
    for event in events:
        timestamp = event.get("timestamp") if isinstance(event, dict) else None
        message = event.get("message") if isinstance(event, dict) else None
        if not isinstance(timestamp, int) or not isinstance(message, str) or not message:
            raise invalid("Each log event needs a timestamp (epoch milliseconds) and a non-empty message.")
        timestamps.append(timestamp)
        messages.append(message)
    if any(later < earlier for earlier, later in itertools.pairwise(timestamps)):
        raise invalid("Log events in a single PutLogEvents request must be in chronological order.")
    if timestamps[-1] - timestamps[0] > MAX_BATCH_SPAN_MS:
        raise invalid(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
        )
    if sum(event_bytes(m) for m in messages) > MAX_BATCH_BYTES:
        raise invalid(f"Upload too large: the batch exceeds {MAX_BATCH_BYTES} bytes.")
    return timestamps, messages
