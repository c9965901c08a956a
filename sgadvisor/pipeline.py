"""The main job end to end: read inputs, analyse, write outputs. Called by the CLI, usable as a library."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError

from sgadvisor.analysis.internet import InternetPolicy
from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.athena.source import AthenaInputs
from sgadvisor.aws.history import HistoryMode
from sgadvisor.aws.source import AwsClients, AwsInputs, Documents
from sgadvisor.errors import InputError
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.flowlogs.ingest import IngestOptions, check_malformed, read_flows
from sgadvisor.inventory.checks import InventorySource, require_usable
from sgadvisor.inventory.model import Inventory
from sgadvisor.inventory.snapshot import load_snapshot
from sgadvisor.models import CollectionOut, Recommendation
from sgadvisor.outputs import write_files
from sgadvisor.render import OutputFormat, RenderContext, render_all

__all__ = [
    "OutputFormat",
    "RecommendInputs",
    "load_inputs",
    "load_inventory",
    "load_recommendation",
    "recommend",
    "write_outputs",
]


@dataclass(frozen=True)
class RecommendInputs:
    """Files when given (``flows``/``inventory``), else AWS (``aws``: EC2 and Logs Insights; with the
    inventory from EC2, the ENI history ``aws.history`` asks for from Config and CloudTrail).
    ``progress``: lines while AWS is read (a terminal, --verbose); ``notice``: what was fetched (unless
    --quiet)."""

    flows: tuple[Path, ...]
    inventory: tuple[Path, ...]
    ingest: IngestOptions
    analysis: AnalysisOptions
    aws: AwsInputs | None = None
    dns_logs: tuple[Path, ...] = ()  # Route 53 Resolver query logs (--dns-logs)
    athena: AthenaInputs | None = None  # --athena-table/--athena-ddl/--athena-result: flows from Athena
    # AWS mode: query-log groups read with Logs Insights (--dns-log-group); with ``dns_discover`` (neither
    # --dns-logs nor --dns-log-group, --internet auto or unset) those the VPCs in scope log to, when the
    # flows come from Insights too: then the policy becomes auto if any is found (sgadvisor.aws.dns).
    dns_log_groups: tuple[str, ...] = ()
    dns_discover: bool = False
    progress: Callable[[str], None] = field(default=lambda message: None, compare=False)
    notice: Callable[[str], None] = field(default=lambda message: None, compare=False)


@dataclass(frozen=True)
class LoadedInputs:
    flows: FlowEdges
    inventory: Inventory
    collection: CollectionOut | None = None  # set when Insights read the flows


def load_inputs(inputs: RecommendInputs) -> LoadedInputs:
    """Inventory first: its ENI addresses decide the direction of records without flow-direction."""
    clients = None
    offline_flows = bool(inputs.flows) or (inputs.athena is not None and inputs.athena.offline)
    if not offline_flows or not inputs.inventory:
        clients = AwsClients.create((inputs.aws or AwsInputs()).settings)
    inventory, documents = _load_inventory(inputs, clients)
    if inputs.athena is not None and inputs.athena.active:
        return _load_athena(inputs, inventory, documents)
    if inputs.flows:
        flows = read_flows(list(inputs.flows), inputs.ingest, addresses=inventory.addresses)
        _require_records(flows, " ".join(str(p) for p in inputs.flows))
        return LoadedInputs(flows, _with_history(inputs, inventory, documents, flows))
    from sgadvisor.aws.source import load_aws_flows

    assert clients is not None
    # With a snapshot (--inventory), its describe-flow-logs.json names the log groups and formats: no EC2.
    read, discovery = load_aws_flows(
        clients, inputs.aws or AwsInputs(), inventory, inputs.progress, from_snapshot=documents is None
    )
    # A format assumed for a log group (the default, when DescribeFlowLogs names none) is a warning of the
    # flows, and records it does not fit count toward --max-malformed (exit 2), as for files.
    read = replace(read, flows=replace(read.flows, warnings=(*discovery.warnings, *read.flows.warnings)))
    check_malformed(read.flows.accounting, inputs.ingest.max_malformed)
    _require_records(read.flows, "the Logs Insights query")
    inventory = _with_history(inputs, inventory, documents, read.flows)
    collection = CollectionOut(
        source="insights",
        queries=read.stats.queries,
        result_rows=read.stats.result_rows,
        records_scanned=read.stats.records_scanned,
        bytes_scanned=read.stats.bytes_scanned,
    )
    return LoadedInputs(read.flows, inventory, collection)


def _load_athena(inputs: RecommendInputs, inventory: Inventory, documents: Documents | None) -> LoadedInputs:
    """Flows from Athena (DESIGN §4.2 edges computed by the engine), over --start/--end or --since/--lag."""
    from sgadvisor.athena.source import load_athena_flows
    from sgadvisor.aws.flows import insights_window

    assert inputs.athena is not None
    aws = inputs.aws or AwsInputs()
    window = inputs.ingest.window or aws.window or insights_window(aws.since, aws.lag)
    loaded = load_athena_flows(
        inputs.athena, inventory, window, aws.settings,
        bucket=inputs.ingest.bucket, max_bytes=aws.max_bytes, progress=inputs.progress,
    )  # fmt: skip
    if loaded.flows is None:
        raise PrintedSql(loaded.sql or "")
    check_malformed(loaded.flows.accounting, inputs.ingest.max_malformed)
    _require_records(loaded.flows, "the Athena query")
    return LoadedInputs(
        loaded.flows, _with_history(inputs, inventory, documents, loaded.flows), loaded.collection
    )


def _left_to_scan(max_bytes: int | None, inputs: RecommendInputs, loaded: LoadedInputs) -> int | None:
    """``--max-bytes`` is for the whole run: what the flow queries scanned is not there for the DNS logs."""
    if max_bytes is None:
        return None
    scanned = loaded.collection.bytes_scanned if loaded.collection and _read_from_aws(inputs, loaded) else 0
    return max(max_bytes - scanned, 0)


def _read_from_aws(inputs: RecommendInputs, loaded: LoadedInputs) -> bool:
    """Were the flows read from AWS just now (Insights, or an Athena query — not its result files)?"""
    offline_athena = inputs.athena is not None and inputs.athena.offline
    return loaded.collection is not None and not offline_athena


class PrintedSql(Exception):
    """--print-sql: the run ends with the SQL that would be submitted (the CLI prints it, exit 0)."""

    def __init__(self, sql: str) -> None:
        super().__init__("--print-sql")
        self.sql = sql


def load_inventory(inputs: RecommendInputs, clients: AwsClients | None = None) -> Inventory:
    """The snapshot (``--inventory``) or the EC2 API's inventory, refused when it holds no security group
    or no network interface, or when the scope selects no group of it (exit 2: the wrong describe call,
    region or scope, never "0 groups" or "no drift")."""
    return _load_inventory(inputs, clients)[0]


def _load_inventory(
    inputs: RecommendInputs, clients: AwsClients | None = None
) -> tuple[Inventory, Documents | None]:
    """:func:`load_inventory`, and the EC2 documents when it came from EC2 (None for a snapshot)."""
    documents = None
    if inputs.inventory:
        inventory = load_snapshot(list(inputs.inventory))
        source = InventorySource()
    else:
        from sgadvisor.aws.source import read_aws_inventory

        if clients is None:
            clients = AwsClients.create((inputs.aws or AwsInputs()).settings)
        inventory, documents = read_aws_inventory(clients, inputs.aws or AwsInputs())
        source = InventorySource(aws=True, region=getattr(clients.ec2.meta, "region_name", None))
    scope = inputs.analysis.scope
    require_usable(
        inventory,
        source,
        vpcs=sorted(scope.vpcs),
        groups=sorted(scope.groups),
        enis=sorted(scope.enis),
        tags=sorted(scope.tags),
    )
    return inventory, documents


def _with_history(
    inputs: RecommendInputs, inventory: Inventory, documents: Documents | None, flows: FlowEdges
) -> Inventory:
    """With the inventory from EC2, the ENI history ``--history`` asks for, fetched as ``collect --history``
    fetches it and read with the EC2 documents as the snapshot loader reads the folder collect writes
    (its warnings become the inventory's). A snapshot (``--inventory``) keeps its own history files."""
    if documents is None:
        return inventory
    from sgadvisor.aws.source import with_aws_history

    aws = inputs.aws or AwsInputs()
    inventory, fetched = with_aws_history(aws, inventory, documents, flows, inputs.progress)
    if fetched.calls or aws.history is not HistoryMode.none:  # as collect reports it
        inputs.notice(fetched.describe())
    return inventory


def _require_records(flows: FlowEdges, where: str) -> None:
    """No record at all (NODATA included) is a mistake, never evidence: refuse rather than judge every rule
    by silence."""
    if flows.accounting.records == 0:
        raise InputError(
            f"no flow-log records in {where}",
            hint="check --flows (or --log-group and the window); skipped files are listed with --verbose",
        )


def recommend(inputs: RecommendInputs) -> Recommendation:
    loaded = load_inputs(inputs)
    analysis = inputs.analysis
    window = loaded.flows.window
    start, end = (window.start, window.end) if window is not None else (None, None)
    dns_warnings: tuple[str, ...] = ()
    if inputs.dns_logs and not inputs.dns_log_groups:
        from sgadvisor.dnslogs.reader import read_dns_logs

        dns = read_dns_logs(list(inputs.dns_logs), start, end)
        analysis = replace(analysis, internet=replace(analysis.internet, dns=dns))
    elif inputs.dns_log_groups or (inputs.dns_discover and _read_from_aws(inputs, loaded)):
        # AWS mode: query logs in CloudWatch Logs, read with Insights over the flow window (and any
        # --dns-logs files beside them, into the same tables).
        from sgadvisor.aws.dns import load_aws_dns_logs
        from sgadvisor.aws.flows import insights_window
        from sgadvisor.dnslogs.reader import DnsLogBuilder

        aws = inputs.aws or AwsInputs()
        dns_window = window or aws.window or insights_window(aws.since, aws.lag)
        builder = DnsLogBuilder(dns_window.start, dns_window.end)
        builder.add_files(list(inputs.dns_logs))
        read = load_aws_dns_logs(aws.settings, aws.runner, loaded.inventory, dns_window, builder,
                                 log_groups=inputs.dns_log_groups, discover=not inputs.dns_log_groups,
                                 max_bytes=_left_to_scan(aws.max_bytes, inputs, loaded),
                                 progress=inputs.progress)  # fmt: skip
        if read is not None:
            dns_warnings = read.warnings
            if read.log_groups:
                inputs.notice(read.describe())
        if inputs.dns_log_groups or (read is not None and read.log_groups):
            internet = replace(analysis.internet, dns=builder.finish())
            if not inputs.dns_log_groups:
                internet = replace(internet, policy=InternetPolicy.auto)  # found: auto is the default
            analysis = replace(analysis, internet=internet)
    recommendation = build_recommendation(loaded.flows, loaded.inventory, analysis)
    if loaded.collection is not None:
        recommendation = recommendation.model_copy(update={"collection": loaded.collection})
    if dns_warnings:
        warnings = sorted({*recommendation.warnings, *dns_warnings})
        recommendation = recommendation.model_copy(update={"warnings": warnings})
    return recommendation


def write_outputs(
    recommendation: Recommendation,
    out_dir: Path,
    formats: Sequence[OutputFormat],
    context: RenderContext | None = None,
) -> tuple[list[Path], tuple[str, ...]]:
    """Render every requested format, then write the files; each appears whole or not at all, and none
    is written when any renderer fails. Returns the paths written and the renderers' warnings."""
    rendered = render_all(recommendation, formats, context)
    files = {out_dir / name: text for name, text in rendered.files.items()}
    written = write_files(files, executable={out_dir / name for name in rendered.executable})
    return written, rendered.warnings


def load_recommendation(path: Path) -> Recommendation:
    """A recommendation.json read back for ``render``/``check``; a wrong shape names the key at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    try:
        return Recommendation.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise InputError(
            f"{path} is not a sgadvisor recommendation.json: {problems}{more}",
            hint="pass the recommendation.json written by `sgadvisor recommend --out DIR`",
        ) from exc
