"""Put local flow-log files into a CloudWatch Logs group, as a VPC flow log delivering there would.

Every record becomes one event of the stream ``<interface-id>-all`` (the stream name of a flow log with
traffic type ALL), whose message is the record in the AWS default format and whose timestamp is the
record's ``start`` (that is what the CloudWatch delivery does: see
``sample_data/flows/cloudwatch/filter-log-events_*.json``). Whatever the files' own format, the messages are
default-format lines, so Insights discovers their fields; with ``keep_format`` they are the records in
the files' own field order instead, as a flow log with a custom format writes them (a query then needs
``parse @message``). Events go through boto3 PutLogEvents, so loading exercises the endpoint's wire
protocol like any other client.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from sgadvisor.accounting import Ledger
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT
from sgadvisor.flowlogs.ingest import read_records
from tests.standins.cwl_store import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_BATCH_SPAN_MS, event_bytes

DEFAULT_FORMAT_VERSION = "2"  # the default format's fields are all version 2 fields


@dataclass(frozen=True)
class LoadSummary:
    events: int
    streams: int
    batches: int
    skipped: int  # records without an interface-id or a start time: no stream or timestamp to give them


def load_flow_log_files(
    target: Any, log_group: str, paths: Sequence[Path], *, direct: bool = False, keep_format: bool = False
) -> LoadSummary:
    """Load the records of ``paths`` (files or directories) into ``log_group``, creating it and its
    streams when missing. ``target`` is a boto3 ``logs`` client or a :class:`CwlServer`; with a server
    and ``direct``, events skip HTTP (:meth:`CwlServer.ingest`, for benchmarks). ``keep_format``: messages
    in each file's own field order (a custom-format flow log), not the default format."""
    if direct:
        return _load_direct(target, log_group, paths)
    client = target.client() if hasattr(target, "endpoint_url") else target
    _create(client.create_log_group, logGroupName=log_group)
    by_stream, skipped = _events_by_stream(paths, keep_format=keep_format)
    batches = 0
    for stream, events in sorted(by_stream.items()):
        _create(client.create_log_stream, logGroupName=log_group, logStreamName=stream)
        events.sort(key=lambda event: event[0])
        for batch in _batches(events):
            client.put_log_events(
                logGroupName=log_group,
                logStreamName=stream,
                logEvents=[{"timestamp": ts, "message": message} for ts, message in batch],
            )
            batches += 1
    total = sum(len(events) for events in by_stream.values())
    return LoadSummary(events=total, streams=len(by_stream), batches=batches, skipped=skipped)


def _load_direct(server: Any, log_group: str, paths: Sequence[Path]) -> LoadSummary:
    frames, skipped = [default_format_events(pl.DataFrame())], 0
    for block in read_records(list(paths), Ledger()):
        frames.append(default_format_events(block.frame))
        skipped += block.frame.height - frames[-1].height
    events = pl.concat(frames).sort("stream", "timestamp", maintain_order=True)
    server.ingest(log_group, events)
    return LoadSummary(events=events.height, streams=events["stream"].n_unique(), batches=0, skipped=skipped)


def _create(call: Any, **params: str) -> None:
    """Create a group or stream unless it exists already."""
    try:
        call(**params)
    except Exception as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code")
        if code != "ResourceAlreadyExistsException":
            raise


def _events_by_stream(
    paths: Sequence[Path], *, keep_format: bool = False
) -> tuple[dict[str, list[tuple[int, str]]], int]:
    by_stream: dict[str, list[tuple[int, str]]] = defaultdict(list)
    skipped = 0
    for block in read_records(list(paths), Ledger()):
        frame = (
            record_events(block.frame, block.fields) if keep_format else default_format_events(block.frame)
        )
        skipped += block.frame.height - frame.height
        for stream, ts, message in frame.iter_rows():
            by_stream[stream].append((ts, message))
    return by_stream, skipped


def default_format_events(records: pl.DataFrame) -> pl.DataFrame:
    """Columns ``stream``, ``timestamp`` (ms) and ``message`` (default format, ``-`` for absent values)
    for records that have an interface-id and a start time."""
    return _events(records, DEFAULT_FORMAT, DEFAULT_FORMAT_VERSION)


def record_events(records: pl.DataFrame, fields: Sequence[str]) -> pl.DataFrame:
    """:func:`default_format_events` with the messages in ``fields`` order (the records' own format,
    version included, ``-`` for absent values)."""
    return _events(records, fields, None)


def _events(records: pl.DataFrame, fields: Sequence[str], version: str | None) -> pl.DataFrame:
    if "interface-id" not in records.columns or "start" not in records.columns:
        return pl.DataFrame(schema={"stream": pl.String, "timestamp": pl.Int64, "message": pl.String})
    columns = []
    for name in fields:
        if name == "version" and version is not None:
            columns.append(pl.lit(version))
        elif name in records.columns:
            columns.append(pl.col(name).cast(pl.String).fill_null("-"))
        else:
            columns.append(pl.lit("-"))
    return records.filter(pl.col("interface-id").is_not_null() & pl.col("start").is_not_null()).select(
        stream=pl.col("interface-id") + "-all",
        timestamp=pl.col("start").cast(pl.Int64) * 1000,
        message=pl.concat_str(columns, separator=" "),
    )


def _batches(events: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Chronological events cut into batches PutLogEvents accepts (count, bytes and 24-hour span)."""
    batches: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    size = 0
    for ts, message in events:
        cost = event_bytes(message)
        if current and (
            len(current) >= MAX_BATCH_EVENTS
            or size + cost > MAX_BATCH_BYTES
            or ts - current[0][0] > MAX_BATCH_SPAN_MS
        ):
            batches.append(current)
            current, size = [], 0
        current.append((ts, message))
        size += cost
    if current:
        batches.append(current)
    return batches
