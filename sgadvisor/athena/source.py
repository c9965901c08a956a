"""Athena as a flow source for the commands (``--athena-table``, ``--athena-ddl``, ``--athena-result``,
``--print-sql``): the options as one model, and the one function the pipeline calls.

Three ways to get the edges, from most to least AWS: run the query (GetTableMetadata or ``--athena-ddl``
for the table's scheme, then StartQueryExecution…), print it (``--print-sql``: no AWS call at all), or
read the CSV a query of that printed SQL wrote (``--athena-result``: no AWS call either).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sgadvisor.athena.ddl import TableScheme
from sgadvisor.athena.flows import (
    AthenaTable,
    flow_logs_of_format,
    flows_from_result_files,
    print_sql,
    read_athena,
    scheme_warnings,
    table_scheme,
)
from sgadvisor.athena.runner import AthenaRunner, AthenaSettings
from sgadvisor.aws.clients import AwsSettings, make_client, make_session
from sgadvisor.errors import UsageError
from sgadvisor.flowlogs.edges import DEFAULT_BUCKET, FlowEdges, PortRange, Window
from sgadvisor.inventory.model import Inventory
from sgadvisor.models import CollectionOut


@dataclass(frozen=True)
class AthenaInputs:
    """The Athena options of a command; ``tables`` are ``DATABASE.TABLE`` names (GetTableMetadata)."""

    tables: tuple[str, ...] = ()
    ddl: tuple[Path, ...] = ()  # CREATE EXTERNAL TABLE statements standing in for GetTableMetadata
    results: tuple[Path, ...] = ()  # result CSVs of the printed SQL: no AWS call
    workgroup: str | None = None
    output: str | None = None
    print_sql: bool = False

    @property
    def active(self) -> bool:
        return bool(self.tables or self.ddl or self.results)

    @property
    def offline(self) -> bool:
        """No AWS call: the SQL is printed, or its results are read from files."""
        return self.print_sql or bool(self.results)


@dataclass(frozen=True)
class AthenaLoaded:
    flows: FlowEdges | None  # None with --print-sql
    collection: CollectionOut
    sql: str | None = None  # set with --print-sql: the caller prints it and stops


def load_athena_flows(
    athena: AthenaInputs,
    inventory: Inventory,
    window: Window,
    settings: AwsSettings,
    *,
    bucket: PortRange = DEFAULT_BUCKET,
    max_bytes: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> AthenaLoaded:
    """The flow edges of ``window`` from Athena (or its printed SQL, or its result files)."""
    addresses = inventory.addresses
    if athena.results:
        flows = flows_from_result_files(list(athena.results), window, bucket=bucket, addresses=addresses)
        return AthenaLoaded(flows, CollectionOut(source="athena", records_scanned=flows.accounting.records))
    if athena.print_sql:
        if not athena.ddl:
            raise UsageError(
                "--print-sql makes no AWS call, so the table's definition must come from --athena-ddl FILE",
                hint="pass the CREATE EXTERNAL TABLE statement you ran",
            )
        tables = _tables([table_scheme(ddl=path) for path in athena.ddl], inventory)
        return AthenaLoaded(None, CollectionOut(source="athena"), print_sql(tables, window, bucket=bucket))
    session = make_session(settings)
    runner = AthenaRunner(
        make_client(session, "athena", settings),
        make_client(session, "s3", settings),
        AthenaSettings(workgroup=athena.workgroup, output_location=athena.output),
        progress=progress,
        deadline=settings.deadline,
    )
    schemes = [table_scheme(ddl=path) for path in athena.ddl]
    schemes += [table_scheme(name, runner=runner) for name in athena.tables]
    tables = _tables(schemes, inventory)
    read = read_athena(runner, tables, window, bucket=bucket, addresses=addresses, max_bytes=max_bytes)
    flows = replace(read.flows, warnings=(*scheme_warnings(tables), *read.warnings, *read.flows.warnings))
    collection = CollectionOut(
        source="athena",
        queries=read.stats.queries,
        result_rows=read.stats.result_rows,
        records_scanned=flows.accounting.records,
        bytes_scanned=read.stats.bytes_scanned,
    )
    return AthenaLoaded(flows, collection)


def _tables(schemes: list[TableScheme], inventory: Inventory) -> list[AthenaTable]:
    """Each table restricted to the flow logs of its own format (text tables under one prefix)."""
    return [AthenaTable(s, flow_logs_of_format(s, inventory.flow_logs)) for s in schemes]
