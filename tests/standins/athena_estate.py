"""Flow-log files laid out as their S3 delivery, and the Athena tables over them, for the Athena tests.

* :func:`text_tables`: one table per format found under a flows folder (the sample's S3 delivery holds
  the files of four flow logs, two formats, in the same day folders), each a partition-projection table
  as ``sgadvisor athena-ddl`` writes it (AWS's documented layout: ``region`` and ``day`` keys,
  ``projection.day.format = yyyy/MM/dd``, ``storage.location.template``), restricted to its flow logs;
* :func:`parquet_copy`: the same records as Parquet files in the Hive-compatible hourly layout
  (``aws-account-id=…/aws-service=vpcflowlogs/aws-region=…/year=…/month=…/day=…/hour=…/``), with the
  column names and types of AWS's Parquet delivery, and :data:`PARQUET_DDL`, AWS's documented table for
  it (no projection: partitions are what MSCK REPAIR TABLE finds);
* :func:`upload`: the files into an S3 bucket (moto's), so the scan estimate lists what the endpoint
  reads.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from sgadvisor.accounting import Ledger
from sgadvisor.athena.ddl import column_name, column_type, render_ddl
from sgadvisor.flowlogs.files import flow_log_of_file
from sgadvisor.flowlogs.ingest import read_records

BUCKET = "flow-logs-bucket"
S3_ROOT = f"s3://{BUCKET}/"
DATABASE = "flowlogs"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
TEXT_LOCATION = f"{S3_ROOT}AWSLogs/{ACCOUNT}/vpcflowlogs/"

# AWS's documented Parquet table (Athena user guide, "Create tables for flow logs in Apache Parquet
# format"): the v2-v5 columns, Hive-compatible hourly partitions.
PARQUET_COLUMNS = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets",
    "bytes", "start", "end", "action", "log-status", "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type",
    "pkt-srcaddr", "pkt-dstaddr", "region", "az-id", "sublocation-type", "sublocation-id", "pkt-src-aws-service",
    "pkt-dst-aws-service", "flow-direction", "traffic-path",
)  # fmt: skip
PARQUET_DDL = (
    "CREATE EXTERNAL TABLE IF NOT EXISTS vpc_flow_logs_parquet (\n"
    + ",\n".join(f"  `{column_name(f)}` {column_type(f)}" for f in PARQUET_COLUMNS)
    + "\n)\nPARTITIONED BY (\n  `aws-account-id` string,\n  `aws-service` string,\n  `aws-region` string,\n"
    "  `year` string,\n  `month` string,\n  `day` string,\n  `hour` string\n)\n"
    "ROW FORMAT SERDE\n  'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n"
    "STORED AS INPUTFORMAT\n  'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'\n"
    "OUTPUTFORMAT\n  'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'\n"
    f"LOCATION\n  '{S3_ROOT}AWSLogs/'\n"
    "TBLPROPERTIES (\n  'EXTERNAL'='true',\n  'skip.header.line.count'='1'\n  )\n"
)


@dataclass(frozen=True)
class TextTable:
    ddl: str
    flow_logs: tuple[str, ...]
    fields: tuple[str, ...]


def text_tables(flows: Path, *, location: str = TEXT_LOCATION) -> list[TextTable]:
    """One projection table per format of the S3 text files under ``flows`` (named ``flows_<n>``)."""
    formats: dict[tuple[str, ...], set[str]] = {}
    for path in sorted(flows.rglob("*.log.gz")):
        with gzip.open(path, "rt") as handle:
            header = tuple(handle.readline().split())
        flow_log = flow_log_of_file(path)
        assert flow_log is not None, path
        formats.setdefault(header, set()).add(flow_log)
    tables = []
    for index, (fields, flow_logs) in enumerate(sorted(formats.items(), key=lambda item: sorted(item[1]))):
        ddl = render_ddl(location, fields, table=f"flows_{index}", regions=[REGION])
        tables.append(TextTable(ddl, tuple(sorted(flow_logs)), fields))
    return tables


_PARQUET_TYPES = {"int": pl.Int32(), "bigint": pl.Int64(), "string": pl.String()}


def parquet_copy(flows: Path, out: Path, *, start: int = 0, end: int = 2**40) -> Path:
    """The records of ``flows`` whose start lies in [start, end) as Parquet in the Hive-compatible
    hourly layout under ``out`` (which stands for :data:`S3_ROOT`): per source file and hour of start,
    ``<name>.log.parquet`` with only the file's own fields (as AWS writes a flow log's format), ``-`` as
    null."""
    for block in read_records([flows], Ledger()):
        frame = block.frame.drop("_line").filter(pl.col("start").is_between(start, end - 1))
        name = Path(block.file).name.replace(".log.gz", "")
        columns = [pl.col(f).cast(_PARQUET_TYPES[column_type(f)]).alias(column_name(f)) for f in block.fields]
        hour = (pl.col("start") // 3600).alias("_hour")
        for (slot,), part in frame.with_columns(hour).partition_by("_hour", as_dict=True).items():
            moment = datetime.fromtimestamp(int(slot) * 3600, tz=UTC)
            folder = (
                out
                / "AWSLogs"
                / f"aws-account-id={ACCOUNT}"
                / "aws-service=vpcflowlogs"
                / (f"aws-region={REGION}")
                / moment.strftime("year=%Y/month=%m/day=%d/hour=%H")
            )
            folder.mkdir(parents=True, exist_ok=True)
            part.select(columns).write_parquet(folder / f"{name}.log.parquet")
    return out


def upload(s3: Any, root: Path, prefixes: Sequence[str] = ("AWSLogs",)) -> int:
    """Put every file under ``root/<prefix>`` into :data:`BUCKET` at its relative path; the bytes put."""
    total = 0
    for prefix in prefixes:
        for path in sorted((root / prefix).rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                s3.put_object(Bucket=BUCKET, Key=path.relative_to(root).as_posix(), Body=data)
                total += len(data)
    return total


def flow_log_files(flows: Path) -> dict[str, list[Path]]:
    """The S3 text files under ``flows`` by flow log."""
    by_log: dict[str, list[Path]] = {}
    for path in sorted(flows.rglob("*.log.gz")):
        flow_log = flow_log_of_file(path)
        if flow_log:
            by_log.setdefault(flow_log, []).append(path)
    return by_log
