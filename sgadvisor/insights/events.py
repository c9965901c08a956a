"""Events frames: flow-log records as CloudWatch Logs would hold them, for the offline executor.

An events frame has the columns every log event has in Logs Insights (CWL_AnalyzeLogData-discoverable-
fields): ``@timestamp`` (Int64, epoch milliseconds), ``@message``, ``@logStream``, ``@log`` and
optionally ``@ingestionTime``; plus, for VPC flow logs, the fields Insights discovers in default-format
records, named and typed as Insights names them (:data:`DISCOVERED`).

Real Insights discovers these fields only when the flow log uses the AWS default format; a custom
format needs ``parse @message``. Offline they are offered for every format that carries the fields,
so the same queries run on S3 files of any format (docs/insights-subset.md says so too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from sgadvisor.accounting import Ledger
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT
from sgadvisor.flowlogs.files import STREAM_ENI_COL, RecordBlock
from sgadvisor.flowlogs.ingest import IngestOptions, read_records

TIMESTAMP, MESSAGE, LOG_STREAM, LOG = "@timestamp", "@message", "@logStream", "@log"
# Discovered field name -> (AWS field name, type), in the default format's order.
DISCOVERED: dict[str, tuple[str, pl.DataType]] = {
    "version": ("version", pl.Int64()),
    "accountId": ("account-id", pl.String()),
    "interfaceId": ("interface-id", pl.String()),
    "srcAddr": ("srcaddr", pl.String()),
    "dstAddr": ("dstaddr", pl.String()),
    "srcPort": ("srcport", pl.Int64()),
    "dstPort": ("dstport", pl.Int64()),
    "protocol": ("protocol", pl.Int64()),
    "packets": ("packets", pl.Int64()),
    "bytes": ("bytes", pl.Int64()),
    "startTime": ("start", pl.Int64()),
    "endTime": ("end", pl.Int64()),
    "action": ("action", pl.String()),
    "logStatus": ("log-status", pl.String()),
}
EVENT_SCHEMA: dict[str, pl.DataType] = {
    TIMESTAMP: pl.Int64(),
    MESSAGE: pl.String(),
    LOG_STREAM: pl.String(),
    LOG: pl.String(),
    **{name: dtype for name, (_, dtype) in DISCOVERED.items()},
}
# A default-format record (14 space-separated values, action and log-status in their places).
_DEFAULT_LINE = r"^[0-9]+( [^ ]+){11} (ACCEPT|REJECT|-) (OK|NODATA|SKIPDATA)$"
_S3_NAME = re.compile(r"^(\d{12})_vpcflowlogs_[^_]+_(fl-[0-9a-zA-Z]+)_")


def flow_log_events(
    paths: Sequence[Path], ledger: Ledger, options: IngestOptions | None = None
) -> pl.LazyFrame:
    """Events for every flow-log record under ``paths`` (each counted in ``ledger``: used, or malformed
    with its place).

    ``@message`` is the record's values joined by spaces in its file's field order, ``-`` for an absent
    value, as flow logs are delivered to CloudWatch Logs; ``@timestamp`` is the record's start (delivery
    stamps each event with it); ``@logStream`` is ``<interface-id>-all``; ``@log`` names the source
    file (``<account>:<flow-log id>`` for S3 delivery names, else the file name).
    """
    frames = []
    for block in read_records(paths, ledger, options):
        frames.append(_block_events(block))
        # Every typed record becomes an event (NODATA/SKIPDATA too): "used" by the query. With the
        # malformed ones counted by the reader, the accounting balances and its total is what was read.
        ledger.add_used(block.frame.height)
    if not frames:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    return pl.concat(frames, how="vertical").lazy()


def _block_events(block: RecordBlock) -> pl.DataFrame:
    frame = block.frame
    message = pl.concat_str(
        [_value_text(frame, name) for name in block.fields], separator=" ", ignore_nulls=False
    )
    stream_eni = pl.col("interface-id") if "interface-id" in frame.columns else pl.lit(None, pl.String)
    if STREAM_ENI_COL in frame.columns:
        stream_eni = pl.coalesce(stream_eni, pl.col(STREAM_ENI_COL))
    stamp = _first_present(frame, ("start", "end"))
    return frame.select(
        (stamp * 1000).cast(pl.Int64).alias(TIMESTAMP),
        message.alias(MESSAGE),
        pl.concat_str(stream_eni.fill_null("unknown"), pl.lit("-all")).alias(LOG_STREAM),
        pl.lit(_log_name(block.file), pl.String).alias(LOG),
        *(
            (pl.col(aws) if aws in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, (aws, dtype) in DISCOVERED.items()
        ),
    )


def _value_text(frame: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).fill_null("-") if name in frame.columns else pl.lit("-")


def _first_present(frame: pl.DataFrame, names: Sequence[str]) -> pl.Expr:
    present = [pl.col(n) for n in names if n in frame.columns]
    return pl.coalesce(*present, pl.lit(0, pl.Int64)) if present else pl.lit(0, pl.Int64)


def _log_name(file: str) -> str:
    name = Path(file).name
    match = _S3_NAME.match(name)
    if match:
        return f"{match.group(1)}:{match.group(2)}"
    for suffix in (".gz", ".log", ".txt", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return name


def with_discovered_fields(events: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Add the discovered flow-log fields derived from ``@message`` where it is a default-format record.

    For events that arrive as plain log events (PutLogEvents: @timestamp, @message, @logStream, @log),
    as Insights discovers them: only default-format lines get values, every other event gets nulls;
    ``-`` reads as null. Columns the frame already has are left alone.
    """
    lf = events.lazy()
    present = set(lf.collect_schema().names())
    missing = [name for name in DISCOVERED if name not in present]
    if not missing:
        return lf
    message = pl.col(MESSAGE)
    # Split once into a temporary column: the fields are then cheap projections of it.
    parts = pl.when(message.str.contains(_DEFAULT_LINE)).then(
        message.str.split_exact(" ", len(DEFAULT_FORMAT) - 1)
    )
    exprs = []
    for index, (name, (_, dtype)) in enumerate(DISCOVERED.items()):
        if name not in missing:
            continue
        value = pl.col("_parts").struct.field(f"field_{index}")
        exprs.append(pl.when(value != "-").then(value).cast(dtype, strict=False).alias(name))
    return lf.with_columns(parts.alias("_parts")).with_columns(exprs).drop("_parts")
