"""The AWS side of `recommend`, `check` and `collect`: inventory from EC2 and flow edges from Insights.

Everything is read into the same shapes the offline path reads (the inventory goes through the snapshot
files, so an online run and a later offline run over what ``collect`` wrote see the same inventory).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from sgadvisor.aws.clients import AwsSettings, aws_errors, make_client, make_session
from sgadvisor.aws.discovery import Discovery, discover_formats, flow_log_entries, select_flow_logs
from sgadvisor.aws.flows import InsightsRead, insights_window, read_insights, stream_lister
from sgadvisor.aws.history import (
    HistoryFetch,
    HistoryFetcher,
    HistoryMode,
    HistoryRequest,
    history_text,
    unknown_addresses,
)
from sgadvisor.aws.insights import InsightsRunner, RunnerSettings
from sgadvisor.errors import AwsError
from sgadvisor.flowlogs.edges import DEFAULT_BUCKET, FlowEdges, PortRange, Window
from sgadvisor.flowlogs.spans import MAX_RECORD_SECONDS
from sgadvisor.inventory.checks import InventorySource, require_usable
from sgadvisor.inventory.ec2 import collect_inventory, scope_vpcs, snapshot_text, write_snapshot
from sgadvisor.inventory.model import Inventory
from sgadvisor.inventory.snapshot import load_snapshot, load_snapshot_documents
from sgadvisor.jsonload import load_json_text

DEFAULT_SINCE = 14 * 86_400
DEFAULT_LAG = 15 * 60

# File name → document, as ``collect`` writes them (EC2: sgadvisor.inventory.ec2; history: HistoryFetch).
Documents = dict[str, dict[str, list[dict[str, Any]]]]


@dataclass(frozen=True)
class AwsInputs:
    """What the AWS path needs beyond the analysis options."""

    settings: AwsSettings = field(default_factory=AwsSettings)
    log_groups: tuple[str, ...] = ()
    since: int = DEFAULT_SINCE
    lag: int = DEFAULT_LAG
    window: Window | None = None  # --start/--end; else since/lag
    max_bytes: int | None = None
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    vpcs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    enis: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    bucket: PortRange = DEFAULT_BUCKET
    # --history: the ENI history recommend/check fetch when the inventory comes from EC2 (collect: into
    # the snapshot).
    history: HistoryMode = HistoryMode.missing


@dataclass
class AwsClients:
    """Built once per run, passed to everything that calls AWS."""

    ec2: Any
    logs: Any

    @classmethod
    def create(cls, settings: AwsSettings) -> AwsClients:
        session = make_session(settings)
        return cls(make_client(session, "ec2", settings), make_client(session, "logs", settings))


def collect_documents(clients: AwsClients, inputs: AwsInputs) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The §4.3 snapshot documents for the scope (whole VPCs), through paginators; refused (exit 2) when
    they hold no security group or network interface, or the scope selects no group (``collect``)."""
    documents = _collect(clients, inputs)
    with tempfile.TemporaryDirectory(prefix="sgadvisor-inventory-") as tmp:
        write_snapshot(documents, Path(tmp))
        inventory = load_snapshot([Path(tmp)])
    require_usable(
        inventory,
        InventorySource(aws=True, region=getattr(clients.ec2.meta, "region_name", None)),
        vpcs=inputs.vpcs,
        groups=inputs.groups,
        enis=inputs.enis,
        tags=inputs.tags,
    )
    return documents


def _collect(clients: AwsClients, inputs: AwsInputs) -> dict[str, dict[str, list[dict[str, Any]]]]:
    with aws_errors("reading the EC2 inventory"):
        vpcs = scope_vpcs(
            clients.ec2, vpcs=inputs.vpcs, groups=inputs.groups, enis=inputs.enis, tags=inputs.tags
        )
        return collect_inventory(clients.ec2, vpcs)


def load_aws_inventory(clients: AwsClients, inputs: AwsInputs, keep_dir: Path | None = None) -> Inventory:
    """The inventory from EC2, read back through the snapshot loader (the offline path's own code). The
    caller checks it (``pipeline.load_inventory``)."""
    documents = _collect(clients, inputs)
    if keep_dir is not None:
        write_snapshot(documents, keep_dir)
        return load_snapshot([keep_dir])
    return snapshot_inventory(documents)


def read_aws_inventory(clients: AwsClients, inputs: AwsInputs) -> tuple[Inventory, Documents]:
    """The inventory from EC2 and the documents it was read from (:func:`with_aws_history` reads them
    again with the ENI history fetched once the flows are known)."""
    documents = _collect(clients, inputs)
    return snapshot_inventory(documents), documents


def snapshot_inventory(documents: Documents, history: Documents | None = None) -> Inventory:
    """EC2 documents (and fetched ENI history) read as the snapshot loader reads the folder ``collect``
    writes: the same texts (``snapshot_text``, ``history_text``), parsed, each named ``aws:<file name>``
    in messages. An online run and a later offline run over what ``collect`` wrote see the same
    inventory, history included."""
    texts = [(name, snapshot_text(document)) for name, document in documents.items()]
    texts += [(name, history_text(document)) for name, document in (history or {}).items()]
    return load_snapshot_documents(
        (Path(f"aws:{name}"), load_json_text(text, source=f"aws:{name}")) for name, text in texts
    )


def discover(
    clients: AwsClients, inputs: AwsInputs, inventory: Inventory, *, from_snapshot: bool = False
) -> Discovery:
    """The log groups and formats holding the flow logs of the inventory's VPCs, subnets and ENIs: from
    DescribeFlowLogs, or with ``from_snapshot`` (``--inventory``) from the snapshot's
    describe-flow-logs.json, without calling EC2 (a run with a snapshot needs no EC2 access)."""
    resources: set[str] = set(inventory.interfaces)
    for interface in inventory.interfaces.values():
        resources.update(r for r in (interface.vpc_id, interface.subnet_id) if r)
    resources.update(g.vpc_id for g in inventory.groups.values() if g.vpc_id)
    if from_snapshot:
        source = "the inventory snapshot (describe-flow-logs.json)"
        flow_logs = flow_log_entries(inventory.flow_logs)
    else:
        source = "DescribeFlowLogs"
        with aws_errors("DescribeFlowLogs"):
            paginator = clients.ec2.get_paginator("describe_flow_logs")
            flow_logs = [fl for page in paginator.paginate() for fl in page.get("FlowLogs", [])]
    chosen = select_flow_logs(flow_logs, None if inputs.log_groups else resources)
    discovery = discover_formats(chosen, inputs.log_groups, source)
    if not discovery.formats:
        where = " in the inventory snapshot" if from_snapshot else ""
        raise AwsError(
            f"no flow log of the VPCs/ENIs in scope delivers to CloudWatch Logs{where}",
            hint="name the log group with --log-group, or read exported files with --flows"
            + (
                "; the snapshot needs describe-flow-logs.json (aws ec2 describe-flow-logs)"
                if from_snapshot and not inventory.flow_logs
                else ""
            ),
        )
    return discovery


def load_aws_flows(
    clients: AwsClients,
    inputs: AwsInputs,
    inventory: Inventory,
    progress: Callable[[str], None],
    sleep: Callable[[float], None] | None = None,
    *,
    from_snapshot: bool = False,
) -> tuple[InsightsRead, Discovery]:
    """Flow edges from one Insights scan per log-group format over the window. ``from_snapshot``: the
    inventory is a snapshot (``--inventory``), whose flow logs give the log groups and formats."""
    discovery = discover(clients, inputs, inventory, from_snapshot=from_snapshot)
    for warning in discovery.warnings:
        progress(f"warning: {warning}")
    runner = InsightsRunner(
        clients.logs,
        settings=inputs.runner,
        progress=progress,
        list_streams=stream_lister(clients.logs),
        deadline=inputs.settings.deadline,
    )
    if sleep is not None:
        runner.sleep = sleep
    window = inputs.window or insights_window(inputs.since, inputs.lag)
    with aws_errors("running Logs Insights queries"):
        read = read_insights(
            runner,
            discovery.formats,
            window,
            bucket=inputs.bucket,
            addresses=inventory.addresses,
            max_bytes=inputs.max_bytes,
        )
    stats = read.stats
    progress(
        f"Insights: {stats.queries} queries, {stats.result_rows:,} result rows, "
        f"{stats.records_scanned:,} records and {stats.bytes_scanned:,} bytes scanned "
        f"(estimated {read.estimated_bytes:,})"
    )
    return read, discovery


def log_group_names(discovery: Discovery) -> Sequence[str]:
    return discovery.log_groups


def history_request(
    mode: HistoryMode, inputs: AwsInputs, inventory: Inventory, edges: FlowEdges | None
) -> HistoryRequest:
    """What ``collect --history`` fetches: the ENIs the flows name that the inventory lacks and the in-VPC
    addresses no known ENI holds (``missing``; nothing without flows), with ``all`` every ENI in scope too.
    The window is the flows' own, else the one --since/--lag or --start/--end give."""
    window = (edges.window if edges is not None else None) or inputs.window
    window = window or insights_window(inputs.since, inputs.lag)
    if mode is HistoryMode.none:
        return HistoryRequest((), window)
    enis: list[str] = []
    addresses: tuple[str, ...] = ()
    if edges is not None and edges.edges.height:
        named = edges.edges.get_column("interface_id").unique().sort().to_list()
        enis += [eni for eni in named if eni and eni not in inventory.interfaces]
        cidrs = [cidr for vpc in inventory.vpcs.values() for cidr in vpc.cidrs]
        remote = edges.edges.get_column("remote_addr").drop_nulls().unique().to_list()
        addresses = unknown_addresses(remote, inventory.owner_of_address, cidrs)
        enis += sorted(set(_late_or_early(edges, window)) & set(inventory.interfaces) - set(enis))
    if mode is HistoryMode.all:
        from sgadvisor.analysis.recommend import Scope

        scope = Scope(
            frozenset(inputs.vpcs), frozenset(inputs.groups), frozenset(inputs.enis), frozenset(inputs.tags)
        )
        members = {eni for gid in scope.groups_in(inventory) for eni in inventory.members.get(gid, ())}
        if not (inputs.vpcs or inputs.groups or inputs.enis or inputs.tags):
            members |= set(inventory.interfaces)  # no scope: every ENI, grouped or not
        enis += sorted((members | set(inputs.enis)) - set(enis))
    return HistoryRequest(tuple(enis), window, addresses, frozenset(inventory.interfaces))


_LATE = 30 * 60 + MAX_RECORD_SECONDS  # --max-gap's default, and a record's longest reach


def _late_or_early(edges: FlowEdges, window: Window | None) -> list[str]:
    """ENIs whose records begin more than --max-gap's default (and a record) after the window's start,
    or end that long before its end: created or deleted inside the window, most likely (an Auto Scaling
    replacement, a task). Their history gives the life they are judged over; without it they look
    holed."""
    if window is None or edges.spans.height == 0:
        return []
    reach = edges.spans.group_by("interface_id").agg(pl.col("start").min(), pl.col("end").max())
    late = reach.filter((pl.col("start") > window.start + _LATE) | (pl.col("end") < window.end - _LATE))
    return sorted(late.get_column("interface_id").to_list())


def with_aws_history(
    inputs: AwsInputs,
    inventory: Inventory,
    documents: Documents,
    edges: FlowEdges | None,
    progress: Callable[[str], None],
) -> tuple[Inventory, HistoryFetch]:
    """``recommend``/``check`` in AWS mode: the ENI history ``inputs.history`` asks for (as ``collect
    --history`` fetches it, :func:`history_request`), and the inventory of ``documents`` read again with
    it (unchanged when nothing was fetched)."""
    fetched = load_aws_history(
        inputs.settings, history_request(inputs.history, inputs, inventory, edges), progress
    )
    history = fetched.documents()
    if not history:
        return inventory, fetched
    return snapshot_inventory(documents, history), fetched


def load_aws_history(
    settings: AwsSettings, request: HistoryRequest, progress: Callable[[str], None]
) -> HistoryFetch:
    """ENI history from Config and CloudTrail (``sgadvisor.aws.history``), through clients of the run."""
    if request.empty:
        return HistoryFetch()
    session = make_session(settings)
    fetcher = HistoryFetcher(
        make_client(session, "config", settings),
        make_client(session, "cloudtrail", settings),
        deadline=settings.deadline,
        progress=progress,
    )
    return fetcher.fetch(request)
