"""Flow edges from Athena: the functions the command line calls.

* :func:`read_athena` — AWS mode: one edge query per table (sql.py) run by :class:`AthenaRunner`, the
  scan estimated first and refused above ``--max-bytes`` (estimate.py), the result made into flow edges
  (results.py) exactly as files make them;
* :func:`table_scheme` — the scheme from GetTableMetadata (``--athena-table DB.TABLE``) or, offline,
  from the CREATE statement (``--athena-ddl FILE``);
* :func:`print_sql` — the exact SQL :func:`read_athena` submits (``--print-sql``: no AWS call);
* :func:`flows_from_result_files` — the flow edges from result CSVs Athena wrote for that SQL
  (``--athena-result FILE``: no AWS call).

A table holds one format (its columns are the format's fields). Where several flow logs of different
formats deliver under one S3 prefix, give one table per format and name its flow logs
(:attr:`AthenaTable.flow_logs`): each query then reads only those flow logs' files.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgadvisor.athena.ddl import TableScheme, parse_ddl
from sgadvisor.athena.estimate import estimate_scan
from sgadvisor.athena.partitions import DEFAULT_SLACK, Slack, time_keys
from sgadvisor.athena.results import concat_results, flows_from_result, read_result_csv
from sgadvisor.athena.runner import AthenaRunner, AthenaStats
from sgadvisor.athena.sql import edges_sql
from sgadvisor.aws.cost import ScanBudget
from sgadvisor.errors import InputError, UsageError
from sgadvisor.flowlogs.edges import DEFAULT_BUCKET, FlowEdges, PortRange, Window
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT, parse_log_format
from sgadvisor.inventory.model import FlowLogConfig

__all__ = [
    "AthenaRead",
    "AthenaTable",
    "flow_logs_of_format",
    "flows_from_result_files",
    "parse_table_name",
    "print_sql",
    "read_athena",
    "table_scheme",
]


@dataclass(frozen=True)
class AthenaTable:
    """One table to query; ``flow_logs``: only these flow logs' files (ids as in the S3 file names)."""

    scheme: TableScheme
    flow_logs: tuple[str, ...] = ()


@dataclass(frozen=True)
class AthenaRead:
    flows: FlowEdges
    stats: AthenaStats
    estimated_bytes: int | None  # None when no estimate was asked for (no --max-bytes)
    sql: tuple[str, ...]  # the queries submitted, in order
    warnings: tuple[str, ...] = field(default=())


_TABLE_NAME = re.compile(r"^([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)$")


def parse_table_name(text: str) -> tuple[str, str]:
    """``--athena-table DATABASE.TABLE`` → (database, table)."""
    match = _TABLE_NAME.match(text.strip().replace("`", "").replace('"', ""))
    if match is None:
        raise UsageError(
            f"--athena-table {text!r} is not DATABASE.TABLE",
            hint="e.g. --athena-table flowlogs.vpc_flow_logs",
        )
    return match.group(1), match.group(2)


def table_scheme(
    table: str | None = None, *, ddl: Path | str | None = None, runner: AthenaRunner | None = None
) -> TableScheme:
    """The table's scheme: from the CREATE statement in ``ddl`` (a file, or its text) when given — the
    database named by ``table`` (``DB.TABLE``) when the statement names none — else from GetTableMetadata
    through ``runner``."""
    database, name = parse_table_name(table) if table else (None, None)
    if ddl is not None:
        if isinstance(ddl, Path):
            try:
                text = ddl.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"--athena-ddl {ddl}: cannot read ({exc})") from None
        else:
            text = ddl
        scheme = parse_ddl(text)
        if database and scheme.database is None:
            scheme = scheme.model_copy(update={"database": database})
        if name and name.lower() != scheme.name.lower():
            raise UsageError(f"--athena-ddl creates {scheme.name}, not {name} (--athena-table)")
        return scheme
    if runner is None or database is None or name is None:
        raise UsageError("Athena needs --athena-table DATABASE.TABLE (or, offline, --athena-ddl FILE)")
    return runner.table_scheme(database, name)


def flow_logs_of_format(scheme: TableScheme, flow_logs: Sequence[FlowLogConfig]) -> tuple[str, ...]:
    """The flow logs a text table must be restricted to (:attr:`AthenaTable.flow_logs`), from the
    inventory's flow logs (DescribeFlowLogs): none when every S3 flow log delivering to the table's
    bucket writes the table's format (nothing to tell apart), else those that write it. Parquet maps
    columns by name: never restricted. InputError when flow logs of other formats deliver there and
    none writes the table's."""
    if scheme.storage == "parquet" or not scheme.location:
        return ()
    bucket = scheme.location.removeprefix("s3://").split("/", 1)[0]
    same: list[str] = []
    other: list[str] = []
    for flow_log in flow_logs:
        if flow_log.destination_type != "s3" or not flow_log.destination:
            continue
        destination = flow_log.destination.removeprefix("arn:aws:s3:::").removeprefix("s3://")
        if destination.split("/", 1)[0] != bucket:
            continue
        fields = parse_log_format(flow_log.log_format) if flow_log.log_format else DEFAULT_FORMAT
        (same if fields == scheme.fields else other).append(flow_log.flow_log_id)
    if not other:
        return ()
    if not same:
        raise InputError(
            f"no flow log delivering to s3://{bucket} writes the columns of {scheme.qualified_name}",
            hint="the table's columns must be a flow log's LogFormat fields, in order",
        )
    return tuple(sorted(same))


def print_sql(
    tables: Sequence[AthenaTable],
    window: Window,
    *,
    bucket: PortRange = DEFAULT_BUCKET,
    slack: Slack = DEFAULT_SLACK,
) -> str:
    """The SQL :func:`read_athena` submits, one statement per table (separated by ``;`` lines)."""
    return ";\n".join(edges_sql(t.scheme, window, bucket, flow_logs=t.flow_logs, slack=slack) for t in tables)


def scheme_warnings(tables: Sequence[AthenaTable]) -> tuple[str, ...]:
    """What the tables' definitions leave to assumption (e.g. no time partitions: a full scan)."""
    notes = []
    for table in tables:
        note = time_keys(table.scheme).note
        if note:
            notes.append(f"{table.scheme.qualified_name}: {note}")
    return tuple(notes)


def flows_from_result_files(
    paths: Sequence[Path],
    window: Window,
    *,
    bucket: PortRange = DEFAULT_BUCKET,
    addresses: Mapping[str, Collection[str]] | None = None,
) -> FlowEdges:
    """``--athena-result FILE`` (repeatable: one per table): the flow edges, with no AWS call. ``window``
    and ``bucket`` must be those the SQL was printed for."""
    results = [read_result_csv(path, name=str(path)) for path in paths]
    return flows_from_result(concat_results(results), window, bucket=bucket, addresses=addresses)


def read_athena(
    runner: AthenaRunner,
    tables: Sequence[AthenaTable],
    window: Window,
    *,
    bucket: PortRange = DEFAULT_BUCKET,
    addresses: Mapping[str, Collection[str]] | None = None,
    max_bytes: int | None = None,
    glue: Any | None = None,
    slack: Slack = DEFAULT_SLACK,
) -> AthenaRead:
    """Run the edge query of every table over ``window`` and fold the results into flow edges.

    With ``max_bytes``, the scan is estimated first (S3 listing; Glue for catalog partitions) and a run
    above it is refused (CostLimitError) before any query starts; then the limit holds on the bytes
    Athena reports scanned (aws/cost.py): a table's query starts only if what the earlier ones scanned
    plus its estimate stays within it, and a query that passes it while running is stopped."""
    if not tables:
        raise UsageError("no Athena table to read")
    estimated: int | None = None
    estimates: list[int] = [0] * len(tables)
    if max_bytes is not None:
        if runner.s3 is None:
            raise UsageError("--max-bytes with Athena needs an S3 client to list the data")
        progress = runner.progress
        estimates = [
            estimate_scan(t.scheme, window, s3=runner.s3, glue=glue, slack=slack, progress=progress).bytes
            for t in tables
        ]
        estimated = sum(estimates)
        runner.progress(f"estimated Athena scan: {estimated / 1e9:.2f} GB")
        runner.budget = ScanBudget(max_bytes)
        runner.budget.plan(estimated, "the Athena queries")
    queries = []
    results = []
    for table, estimate in zip(tables, estimates, strict=True):
        query = edges_sql(table.scheme, window, bucket, flow_logs=table.flow_logs, slack=slack)
        queries.append(query)
        label = table.scheme.qualified_name
        results.append(runner.run(query, database=table.scheme.database, label=label, estimate=estimate))
    flows = flows_from_result(concat_results(results), window, bucket=bucket, addresses=addresses)
    warnings = scheme_warnings(tables)
    if warnings:
        from dataclasses import replace

        flows = replace(flows, warnings=(*warnings, *flows.warnings))
    return AthenaRead(flows, runner.stats, estimated, tuple(queries), warnings)
