"""AWS mode against the stand-ins: moto's EC2 server for the inventory, the project's local CloudWatch
Logs endpoint (real JSON 1.1 wire protocol, the offline executor behind it) for Logs Insights, and its
Config + CloudTrail endpoint serving the sample's ENI history (tests/standins/history_server.py).

What a user relies on: the Insights path gives exactly the edges and the recommendation the file path
gives for the same records — held in CloudWatch Logs as the sample's flow logs deliver them, each in its
own format (custom formats with tcp-flags and flow-direction included), discovered from DescribeFlowLogs
or from an inventory snapshot; full pages are split (never silently truncated); the quota, throttling and
failed queries are survived; an interrupt leaves no query running; --max-bytes refuses before scanning
(and, tests/test_insights_scale.py, before any split that could pass it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from sgadvisor.accounting import Ledger
from sgadvisor.analysis.recommend import AnalysisOptions, Scope
from sgadvisor.aws.clients import AwsSettings
from sgadvisor.aws.discovery import LogGroupFormat, discover_formats
from sgadvisor.aws.flows import read_insights, stream_lister
from sgadvisor.aws.insights import InsightsRunner, RunnerSettings, run_user_query
from sgadvisor.aws.source import AwsInputs
from sgadvisor.errors import AwsError, CostLimitError
from sgadvisor.flowlogs.edges import EDGE_KEY, Window
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows, read_records
from sgadvisor.flowlogs.spans import find_holes, spans_by_interface
from sgadvisor.models import Recommendation
from sgadvisor.pipeline import RecommendInputs, recommend
from tests.conftest import DEFAULT_HEADER, default_line, write_lines
from tests.standins.cwl_server import Behaviour, CwlServer, load_flow_log_files
from tests.standins.history_server import HistoryServer

GROUP = "vpc-flow-logs"
REGION = "eu-west-1"


@dataclass
class FakeTime:
    """The runner's clock and sleep: sleeping advances time, so polling schedules run without waiting."""

    now: float = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Stand:
    ec2_url: str
    logs: CwlServer
    vpc_id: str
    default_files: Path  # the same records, as default-format text files
    window: Window
    flows: Path  # the sample's own files (default and custom formats) under moto's ids
    history: HistoryServer  # Config + CloudTrail, serving the sample's ENI history
    sample: Path  # the sample generated under moto's ids (inventory/ with its AWSLogs/ history, flows/)
    # The sample's flow logs (DescribeFlowLogs entries, moto's resource ids) delivering to CloudWatch Logs,
    # each to a log group of its own that holds its records as delivered, in its own format.
    native: tuple[dict[str, Any], ...] = ()


@pytest.fixture(scope="module")
def stand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stand]:
    """The sample estate in moto, its flows (under moto's ids) in the local CloudWatch Logs endpoint, its
    ENI history (replaced instances, finished tasks: only Config and CloudTrail still know them) in the
    Config + CloudTrail endpoint, and the very same records as default-format files for the offline
    comparison. The endpoint holds them twice: all in one default-format group (GROUP: the runner's own
    tests) and per flow log in its own group and format, as delivered (the equality tests)."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.standins.moto_estate import create_estate, sample_history_server
    from tests.standins.sample_estate import build_estate, generate

    root = tmp_path_factory.mktemp("aws")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    ec2_url = f"http://{host}:{port}"
    ec2 = boto3.client(
        "ec2", region_name=REGION, endpoint_url=ec2_url, aws_access_key_id="x", aws_secret_access_key="x"
    )
    estate = build_estate()
    id_map = create_estate(ec2, estate)
    generate(root / "sample", id_map)
    flows = root / "sample" / "flows"
    default_files = _default_format_copy(flows, root / "default")
    server = CwlServer()
    server.start()
    load_flow_log_files(server.client(), GROUP, [flows])
    native = _native_flow_logs(root / "sample")
    _load_native(server.client(), flows, native)
    offline = read_flows([default_files])
    assert offline.window is not None
    history = sample_history_server(root / "sample")
    try:
        yield Stand(
            ec2_url, server, id_map[estate.vpc.vpc_id], default_files, offline.window, flows, history,
            root / "sample", tuple(native),
        )  # fmt: skip
    finally:
        history.stop()
        server.stop()
        moto.stop()


def _native_flow_logs(sample: Path) -> list[dict[str, Any]]:
    """The sample's flow logs (describe-flow-logs.json, moto's resource ids) as if every one delivered to
    CloudWatch Logs: those writing to S3 to a log group of their own, ``/vpc/flowlogs/<flow log id>``; the
    NAT gateway's, which does deliver there, unchanged. Formats, ids and resources are the sample's."""
    document = json.loads((sample / "inventory" / "describe-flow-logs.json").read_text())
    entries = []
    for entry in document["FlowLogs"]:
        entry = dict(entry)
        if entry["LogDestinationType"] == "s3":
            group = f"/vpc/flowlogs/{entry['FlowLogId']}"
            entry.update(
                LogDestinationType="cloud-watch-logs",
                LogGroupName=group,
                LogDestination=f"arn:aws:logs:{REGION}:123456789012:log-group:{group}",
                DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/vpc-flow-logs-to-cloudwatch",
            )
            entry.pop("DestinationOptions", None)
        entries.append(entry)
    return entries


def _load_native(logs: Any, flows: Path, native: list[dict[str, Any]]) -> None:
    """Each flow log's records into its log group as it writes them (its own format, keep_format): the
    S3 files named by its id; the CloudWatch Logs export (filter-log-events JSON) for the one that
    delivers there."""
    for entry in native:
        flow_log = entry["FlowLogId"]
        paths = sorted(p for p in flows.rglob("*.log.gz") if flow_log in p.name)
        if not paths:
            paths = sorted((flows / "cloudwatch").glob("*.json"))
        assert paths, flow_log
        load_flow_log_files(logs, entry["LogGroupName"], paths, keep_format=True)


def _native_formats(stand: Stand) -> tuple[LogGroupFormat, ...]:
    return discover_formats(stand.native).formats


def _default_format_copy(flows: Path, out: Path) -> Path:
    """Every record of ``flows`` as one default-format text file (what the endpoint's streams hold)."""
    lines = []
    for block in read_records([flows], Ledger()):
        frame = block.frame
        columns = [
            pl.col(f).cast(pl.String).fill_null("-") if f in frame.columns else pl.lit("-")
            for f in DEFAULT_FORMAT
        ]
        lines += frame.select(pl.concat_str(columns, separator=" ").alias("line"))["line"].to_list()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "all.log"
    path.write_text(" ".join(DEFAULT_FORMAT) + "\n" + "\n".join(sorted(lines)) + "\n")
    return path


@pytest.fixture
def aws_env(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> Stand:
    """Point boto3 at the stand-ins the standard way (AWS_ENDPOINT_URL_<SERVICE>), with dummy keys.
    LookupEvents is not spaced in-process (its pacing is tested in test_history_fetch.py)."""
    from sgadvisor.aws import history
    from tests.standins.moto_estate import history_endpoint_env

    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", stand.ec2_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_ROUTE53RESOLVER", stand.ec2_url)  # moto: no query logs
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", stand.logs.endpoint_url)
    for name, value in history_endpoint_env(stand.history).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(history, "LOOKUP_INTERVAL", 0.0)
    stand.logs.behaviour = Behaviour()
    stand.logs.reset_calls()
    stand.history.reset_calls()
    return stand


def _runner(stand: Stand, settings: RunnerSettings | None = None, **client_config: Any) -> InsightsRunner:
    time = FakeTime()
    logs = stand.logs.client(**client_config)
    return InsightsRunner(
        logs,
        settings=settings or RunnerSettings(),
        sleep=time.sleep,
        clock=time.clock,
        list_streams=stream_lister(logs),
    )


def _edges(stand: Stand, runner: InsightsRunner) -> pl.DataFrame:
    """The edge query alone: the runner's splitting and retries are tested on it."""
    fmt = LogGroupFormat(GROUP, DEFAULT_FORMAT, (), (), ())
    read = read_insights(runner, [fmt], stand.window, with_spans=False)
    return read.flows.edges.sort(list(EDGE_KEY))


def _offline_edges(stand: Stand) -> pl.DataFrame:
    return read_flows([stand.default_files], IngestOptions(window=stand.window)).edges.sort(list(EDGE_KEY))


_NO_RETRIES: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": 1}}


# --------------------------------------------------------------------------------- same as files


def test_insights_edges_equal_the_file_edges(aws_env: Stand) -> None:
    """The sample's records held as its flow logs deliver them (three custom formats with tcp-flags,
    flow-direction and pkt-addresses, the default format, the NAT gateway's CloudWatch Logs group) give
    the edges, coverage and delivery the sample's own files give."""
    runner = _runner(aws_env)
    formats = _native_formats(aws_env)
    assert len(formats) == 5 and sum(not f.default_format for f in formats) == 3
    read = read_insights(runner, formats, aws_env.window).flows
    insights = read.edges.sort(list(EDGE_KEY))
    offline_flows = read_flows([aws_env.flows], IngestOptions(window=aws_env.window))
    offline = offline_flows.edges.sort(list(EDGE_KEY))
    assert insights["syn_records"].drop_nulls().sum() > 0  # tcp-flags read in the query
    # Every column, the distinct ports too (README, "Distinct ports": 1, 2, or the same bound from 3 on).
    assert insights.equals(offline)
    # Delivery: every hole of the Insights slot or longer is the same as the files show.
    online_spans, file_spans = spans_by_interface(read.spans), spans_by_interface(offline_flows.spans)
    assert sorted(online_spans) == sorted(file_spans)
    for eni, spans in file_spans.items():
        w = aws_env.window
        assert find_holes(online_spans[eni], w.start, w.end, 600) == find_holes(spans, w.start, w.end, 600)
    coverage = ["interface_id", "first_start", "last_end", "records", "nodata", "skipdata", "subnet_id"]
    online_coverage, file_coverage = (
        read.coverage.sort("interface_id"),
        offline_flows.coverage.sort("interface_id"),
    )
    assert online_coverage.select(coverage).equals(file_coverage.select(coverage))
    # The delivering flow logs: the S3 file names say them, discovery too; the CloudWatch Logs export
    # (filter-log-events JSON) names none, discovery the NAT gateway's.
    named = file_coverage["flow_logs"].is_not_null()
    assert online_coverage.filter(named)["flow_logs"].equals(file_coverage.filter(named)["flow_logs"])
    nat = next(e["FlowLogId"] for e in aws_env.native if e["LogGroupName"] == "/vpc/flowlogs/nat-gateway")
    assert online_coverage.filter(~named)["flow_logs"].to_list() == [nat]
    # Per format, one scan of the window for the edges of every ENI and one for their delivery, never one
    # per ENI.
    assert runner.stats.queries == 2 * len(formats)
    assert aws_env.logs.count("StartQuery") == 2 * len(formats)


def test_recommend_through_aws_equals_recommend_from_files(aws_env: Stand) -> None:
    """EC2 (moto), Insights and the ENI history from Config and CloudTrail give what the same inventory,
    records and the history files Config and CloudTrail delivered to S3 give offline — with the default
    ``--history missing``, which asks for the ENIs EC2 no longer lists and for those whose records begin
    or end inside the window (orders-2, ledger-2, two tasks: created in it), so each is judged over its
    life as offline. The flow logs are in EC2 with their formats (DescribeFlowLogs finds the log groups),
    their records in CloudWatch Logs as delivered; offline reads the sample's own files: the evidence
    (confidence, why: tcp-flags, flow-direction) is compared with the rules."""
    scope = AnalysisOptions(scope=Scope(vpcs=frozenset({aws_env.vpc_id})))
    with _moto_flow_logs(aws_env):
        online = recommend(
            RecommendInputs(
                flows=(),
                inventory=(),
                ingest=IngestOptions(),
                analysis=scope,
                aws=AwsInputs(
                    settings=AwsSettings(region=REGION), window=aws_env.window, vpcs=(aws_env.vpc_id,)
                ),
            )
        )
        inventory_dir = _collect(aws_env)
    offline = recommend(
        RecommendInputs(
            flows=(aws_env.flows,),
            inventory=(inventory_dir,),
            ingest=IngestOptions(window=aws_env.window),
            analysis=scope,
        )
    )
    # Edges and spans per flow log's group and format.
    assert online.collection.source == "insights" and online.collection.queries == 2 * len(aws_env.native)
    assert online.collection.bytes_scanned > 0
    # The history came from the endpoint: Config's items and CloudTrail's events.
    assert aws_env.history.count("GetResourceConfigHistory", succeeded=True) > 0
    assert aws_env.history.count("LookupEvents", succeeded=True) > 0
    assert online.security_groups == offline.security_groups  # DESIGN §5: identical
    assert online.rejected_egress == offline.rejected_egress
    assert any(c.action != "keep" for g in online.security_groups for c in g.changes)
    # The churn is judged, not holed: former members counted, their groups' coverage whole.
    churned = {g.group_name: g.coverage for g in online.security_groups}
    assert churned["invoicer-tasks"].enis == 8 and churned["orders"].enis == 2
    assert {churned[name].status for name in ("invoicer-tasks", "orders", "ledger")} == {"ok"}
    # The evidence compared is the custom formats' too: tcp-flags agreeing with the ports give "high".
    confidences = {
        r.evidence.confidence for g in online.security_groups for r in g.proposed_egress if r.evidence
    }
    assert "high" in confidences


@contextmanager
def _moto_flow_logs(stand: Stand) -> Iterator[list[str]]:
    """The sample's flow logs created in moto as :func:`_native_flow_logs` describes them (format, log
    group, resource), under the sample's ids (moto's own are re-keyed in its backend, so the flow logs the
    files name are the ones EC2 lists); deleted afterwards, so no other test sees them."""
    import boto3
    from moto.ec2.models import ec2_backends

    ec2 = boto3.client("ec2", region_name=REGION)
    backend = ec2_backends["123456789012"][REGION]
    kinds = {"vpc": "VPC", "subnet": "Subnet", "eni": "NetworkInterface"}
    ids: list[str] = []
    try:
        for entry in stand.native:
            created = ec2.create_flow_logs(
                ResourceIds=[entry["ResourceId"]], ResourceType=kinds[entry["ResourceId"].split("-")[0]],
                TrafficType=entry["TrafficType"], LogDestinationType="cloud-watch-logs",
                LogGroupName=entry["LogGroupName"], DeliverLogsPermissionArn=entry["DeliverLogsPermissionArn"],
                LogFormat=entry["LogFormat"],
            )  # fmt: skip
            (moto_id,) = created["FlowLogIds"]
            flow_log = backend.flow_logs.pop(moto_id)
            flow_log.id = entry["FlowLogId"]
            backend.flow_logs[flow_log.id] = flow_log
            ids.append(flow_log.id)
        yield ids
    finally:
        if ids:
            ec2.delete_flow_logs(FlowLogIds=ids)


def test_with_an_inventory_snapshot_its_flow_logs_name_the_groups_and_ec2_is_never_called(
    aws_env: Stand, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recommend --inventory with flows from Insights: the log groups and formats come from the snapshot's
    describe-flow-logs.json, not DescribeFlowLogs — no EC2 call at all, with EC2 unreachable — and the
    result equals the files'."""
    import socket

    import sgadvisor.aws.source as source
    from sgadvisor.aws import clients

    inventory_dir = _collect(aws_env)
    (inventory_dir / "describe-flow-logs.json").write_text(json.dumps({"FlowLogs": list(aws_env.native)}))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", f"http://127.0.0.1:{closed}")
    called: list[str] = []
    real_make_client = clients.make_client

    def recording_client(session: Any, service: str, settings: AwsSettings) -> Any:
        client = real_make_client(session, service, settings)
        prefix = client.meta.service_model.signing_name
        client.meta.events.register("before-call", lambda model, **_: called.append(f"{prefix}:{model.name}"))
        return client

    monkeypatch.setattr(source, "make_client", recording_client)
    scope = AnalysisOptions(scope=Scope(vpcs=frozenset({aws_env.vpc_id})))
    aws = AwsInputs(settings=AwsSettings(region=REGION), window=aws_env.window)
    online = recommend(RecommendInputs((), (inventory_dir,), IngestOptions(), scope, aws=aws))
    assert not [c for c in called if c.startswith("ec2:")]
    assert "logs:StartQuery" in called
    assert online.collection.queries == 2 * len(aws_env.native)
    offline = recommend(
        RecommendInputs((aws_env.flows,), (inventory_dir,), IngestOptions(window=aws_env.window), scope)
    )
    assert online.security_groups == offline.security_groups
    assert online.rejected_egress == offline.rejected_egress
    # A snapshot without flow logs: a clear error naming the missing file, still no EC2 call.
    (inventory_dir / "describe-flow-logs.json").write_text(json.dumps({"FlowLogs": []}))
    with pytest.raises(AwsError, match="in the inventory snapshot") as missing:
        recommend(RecommendInputs((), (inventory_dir,), IngestOptions(), scope, aws=aws))
    assert "describe-flow-logs.json" in (missing.value.hint or "")
    assert not [c for c in called if c.startswith("ec2:")]


def _collect(stand: Stand) -> Path:
    """The EC2 snapshot as collect writes it, with the history files Config and CloudTrail delivered to S3
    (the generated sample's ``inventory/AWSLogs/``) beside it."""
    import shutil
    import tempfile

    from sgadvisor.aws.source import AwsClients, collect_documents
    from sgadvisor.inventory.ec2 import write_snapshot

    inputs = AwsInputs(settings=AwsSettings(region=REGION), vpcs=(stand.vpc_id,))
    out = Path(tempfile.mkdtemp(prefix="sgadvisor-test-inv-"))
    write_snapshot(collect_documents(AwsClients.create(inputs.settings), inputs), out)
    shutil.copytree(stand.sample / "inventory" / "AWSLogs", out / "AWSLogs")
    return out


def test_a_custom_format_group_is_parsed_in_the_query(aws_env: Stand, tmp_path: Path) -> None:
    """A log group written in a custom (v5) format: the runner generates ``parse @message`` and the edges
    equal those read from the same records as files (flow-direction, tcp-flags and pkt-addresses too)."""
    custom = [p for p in sorted(aws_env.flows.rglob("*.log.gz")) if _header(p)[:2] == ["version", "vpc-id"]]
    assert custom, "the sample has custom-format files"
    fields = tuple(_header(custom[0]))
    logs = aws_env.logs.client()
    group = "vpc-flow-logs-custom"
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
        _put_lines(logs, group, fields, custom)
    fmt = LogGroupFormat(group, fields, (), (), ())
    runner = _runner(aws_env)
    insights = read_insights(runner, [fmt], aws_env.window).flows.edges.sort(list(EDGE_KEY))
    offline = read_flows(custom, IngestOptions(window=aws_env.window)).edges.sort(list(EDGE_KEY))
    query = aws_env.logs.calls_of("StartQuery")[-1].params["queryString"]
    assert query.startswith('parse @message "* * ')
    assert insights.height > 0
    assert insights.equals(offline)
    assert insights["syn_records"].sum() > 0  # tcp-flags counted in the query


def test_genuine_port_zero_and_bucketed_ports_of_one_edge_are_counted_alike(
    aws_env: Stand, tmp_path: Path
) -> None:
    """Records from source port 0 and from bucketed source ports to one service share an edge, and in
    Insights one result row whose count_distinct includes the 0: both sources count 2 ports (0, 40000)."""
    start = aws_env.window.start + 600
    ports = [0, 40000, 0, 40000, 40000]
    lines = [
        default_line("10.0.9.9", "10.0.2.15", port, 443, eni="eni-0port0", proto=17, start=start + 60 * i)
        for i, port in enumerate(ports)
    ]
    # A second peer makes 10.0.9.9 the interface's own address (direction from the data).
    lines.append(default_line("10.0.9.9", "10.0.3.3", 40001, 53, eni="eni-0port0", proto=17, start=start))
    path = write_lines(tmp_path / "port0.log.gz", lines, gz=True, header=DEFAULT_HEADER)
    logs = aws_env.logs.client()
    group = "vpc-flow-logs-port0"
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
        _put_lines(logs, group, DEFAULT_FORMAT, [path])
    fmt = LogGroupFormat(group, DEFAULT_FORMAT, (), (), ())
    insights = read_insights(_runner(aws_env), [fmt], aws_env.window).flows.edges
    offline = read_flows([path]).edges
    for edges in (insights, offline):
        assert edges.filter(pl.col("remote_port") == 443).select(
            "records", "local_port", "local_port_min", "local_port_max", "local_port_distinct"
        ).rows() == [(5, 0, 0, 40000, 2)]


def _header(path: Path) -> list[str]:
    import gzip

    with gzip.open(path, "rt") as handle:
        return handle.readline().split()


def _put_lines(logs: Any, group: str, fields: tuple[str, ...], paths: list[Path]) -> None:
    """The records as CloudWatch delivers a custom-format flow log: the line itself, stream <eni>-all,
    timestamp = start."""
    import gzip
    from collections import defaultdict

    eni_at, start_at = fields.index("interface-id"), fields.index("start")
    streams: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for path in paths:
        with gzip.open(path, "rt") as handle:
            next(handle)
            for line in handle:
                values = line.split()
                streams[f"{values[eni_at]}-all"].append((int(values[start_at]) * 1000, line.rstrip("\n")))
    for stream, events in sorted(streams.items()):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events.sort()
        batches: list[list[tuple[int, str]]] = [[]]
        for event in events:  # PutLogEvents: at most 10,000 events, 1 MiB and 24 hours per call
            batch = batches[-1]
            if batch and (len(batch) >= 2000 or event[0] - batch[0][0] >= 86_400_000 - 1):
                batches.append([])
            batches[-1].append(event)
        for batch in batches:
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": ts, "message": message} for ts, message in batch],
            )


# --------------------------------------------------------------------------------- never truncated


def test_full_pages_are_split_by_time_and_lose_nothing(aws_env: Stand) -> None:
    aws_env.logs.behaviour = Behaviour.row_cap(700)
    runner = _runner(aws_env, RunnerSettings(limit=700))
    edges = _edges(aws_env, runner)
    assert runner.stats.splits_by_time > 0
    # Merged parts equal the files in every column, the distinct ports too (they no longer add up).
    assert edges.equals(_offline_edges(aws_env))


def test_when_time_cannot_split_the_runner_splits_by_log_stream(aws_env: Stand) -> None:
    aws_env.logs.behaviour = Behaviour.row_cap(700)
    runner = _runner(aws_env, RunnerSettings(limit=700, min_split_seconds=10**9))
    edges = _edges(aws_env, runner)
    assert runner.stats.splits_by_stream > 0 and runner.stats.splits_by_time == 0
    assert edges.equals(_offline_edges(aws_env))
    assert any(
        "@logStream in [" in call.params.get("queryString", "")
        for call in aws_env.logs.calls_of("StartQuery")
    )


def test_an_edge_set_too_big_even_per_stream_is_an_error_not_a_truncation(aws_env: Stand) -> None:
    aws_env.logs.behaviour = Behaviour.row_cap(5)
    runner = _runner(aws_env, RunnerSettings(limit=5, min_split_seconds=10**9))
    with pytest.raises(AwsError, match="even for one log stream"):
        _edges(aws_env, runner)
    assert aws_env.logs.active_queries() == []


# ------------------------------------------------------------------------------ quota and failures


def test_the_concurrency_quota_is_queued_not_fatal(aws_env: Stand) -> None:
    aws_env.logs.behaviour = Behaviour.row_cap(700, max_concurrent=1, running_polls=2)
    runner = _runner(aws_env, RunnerSettings(limit=700, max_concurrent=3), **_NO_RETRIES)
    edges = _edges(aws_env, runner)
    refused = [c for c in aws_env.logs.calls_of("StartQuery") if c.error == "LimitExceededException"]
    assert refused, "the test must hit the quota"
    assert edges.height == _offline_edges(aws_env).height


def test_throttled_polls_back_off(aws_env: Stand) -> None:
    aws_env.logs.behaviour = Behaviour(running_polls=1)
    aws_env.logs.behaviour.throttle(3, operations=["GetQueryResults"])
    runner = _runner(aws_env, **_NO_RETRIES)
    assert _edges(aws_env, runner).height == _offline_edges(aws_env).height


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Unknown"])
def test_a_failed_query_is_retried(aws_env: Stand, status: str) -> None:
    aws_env.logs.behaviour = Behaviour()
    aws_env.logs.behaviour.force(status)
    runner = _runner(aws_env)
    assert _edges(aws_env, runner).height == _offline_edges(aws_env).height
    assert runner.stats.retries == 1 and aws_env.logs.count("StartQuery") == 2


def test_a_query_failing_every_time_is_a_clear_error(aws_env: Stand) -> None:
    aws_env.logs.behaviour = Behaviour()
    aws_env.logs.behaviour.force("Failed", times=5)
    with pytest.raises(AwsError, match="ended Failed 3 times"):
        _edges(aws_env, _runner(aws_env))


def test_a_timed_out_query_is_split_by_time(aws_env: Stand) -> None:
    aws_env.logs.behaviour = Behaviour()
    aws_env.logs.behaviour.force("Timeout")
    runner = _runner(aws_env)
    assert _edges(aws_env, runner).height == _offline_edges(aws_env).height
    assert runner.stats.splits_by_time == 1


def test_an_interrupt_stops_every_running_query(aws_env: Stand) -> None:
    aws_env.logs.behaviour = Behaviour.row_cap(700, running_polls=50)
    runner = _runner(aws_env, RunnerSettings(limit=700, max_concurrent=2))
    polls = 0

    def interrupt_later(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            raise KeyboardInterrupt

    runner.sleep = interrupt_later
    with pytest.raises(KeyboardInterrupt):
        _edges(aws_env, runner)
    assert aws_env.logs.count("StopQuery") >= 1
    assert aws_env.logs.active_queries() == []


# ------------------------------------------------------------------------------------ cost


def test_max_bytes_refuses_before_any_query(aws_env: Stand) -> None:
    runner = _runner(aws_env)
    fmt = LogGroupFormat(GROUP, DEFAULT_FORMAT, (), (), ())
    with pytest.raises(CostLimitError, match="--max-bytes"):
        read_insights(runner, [fmt], aws_env.window, max_bytes=1000, now=aws_env.window.end + 60)
    assert aws_env.logs.count("StartQuery") == 0


def test_statistics_are_accounted(aws_env: Stand) -> None:
    runner = _runner(aws_env)
    _edges(aws_env, runner)
    calls = [c for c in aws_env.logs.calls_of("GetQueryResults") if c.error is None]
    assert runner.stats.bytes_scanned > 0 and runner.stats.records_scanned > 0
    assert runner.stats.result_rows > 0 and calls


# ------------------------------------------------------------------------------------ the CLI


def test_query_command_runs_against_the_endpoint(aws_env: Stand) -> None:
    logs = aws_env.logs.client()
    eni = sorted(s["logStreamName"] for s in logs.describe_log_streams(logGroupName=GROUP)["logStreams"])[0]
    text = f"filter @logStream = '{eni}' | stats count(*) as num by action"
    result = run_user_query(logs, text, [GROUP], aws_env.window.start, aws_env.window.end)
    assert result.fields == ("action", "num")
    total = sum(int(row["num"] or 0) for row in result.rows)
    stats = list(aws_env.logs.calls_of("StartQuery"))
    assert total > 0 and len(stats) == 1 and not result.capped


@pytest.mark.slow
def test_collect_writes_a_snapshot_and_edges_that_recommend_reads_offline(
    aws_env: Stand, tmp_path: Path
) -> None:
    import os

    env = {**os.environ}
    start, end = str(aws_env.window.start), str(aws_env.window.end)
    cmd = [
        sys.executable,
        "-m",
        "sgadvisor",
        "collect",
        "--out",
        str(tmp_path / "inv"),
        "--vpc",
        aws_env.vpc_id,
        "--log-group",
        GROUP,
        "--flows-out",
        str(tmp_path / "edges.jsonl"),
        "--start",
        start,
        "--end",
        end,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    kinds = {json.loads(line)["kind"] for line in (tmp_path / "edges.jsonl").read_text().splitlines()}
    assert kinds == {"window", "coverage", "edge"}
    # --history missing (the default): the replaced and finished ENIs the flows name, and those created in
    # the window (orders-2, ledger-2), from Config (the instances) and CloudTrail (the tasks), written
    # beside the EC2 documents.
    assert len(list((tmp_path / "inv").glob("get-resource-config-history-eni-*.json"))) == 4
    assert (tmp_path / "inv" / "lookup-events.json").exists()
    scope = AnalysisOptions(scope=Scope(vpcs=frozenset({aws_env.vpc_id})))
    from_edges = recommend(
        RecommendInputs((tmp_path / "edges.jsonl",), (tmp_path / "inv",), IngestOptions(), scope)
    )
    from_files = recommend(
        RecommendInputs(
            (aws_env.default_files,), (tmp_path / "inv",), IngestOptions(window=aws_env.window), scope
        )
    )
    assert from_edges.security_groups == from_files.security_groups
    assert isinstance(from_edges, Recommendation)


# ------------------------------------------------------------------------------------ scaling


def _synthetic_run(enis: int, *, cap: int | None = None) -> tuple[InsightsRunner, CwlServer, pl.DataFrame]:
    from tests.standins.cwl_estate import SyntheticEstate

    estate = SyntheticEstate(enis=enis)
    server = CwlServer(behaviour=Behaviour.row_cap(cap) if cap else Behaviour())
    server.start()
    try:
        server.ingest("synthetic", estate.events())
        time = FakeTime()
        logs = server.client()
        runner = InsightsRunner(
            logs,
            settings=RunnerSettings(limit=cap) if cap else RunnerSettings(),
            sleep=time.sleep,
            clock=time.clock,
            list_streams=stream_lister(logs),
        )
        fmt = LogGroupFormat("synthetic", DEFAULT_FORMAT, (), (), ())
        edges = read_insights(runner, [fmt], Window(estate.start, estate.end), with_spans=False).flows.edges
    finally:
        server.stop()
    assert edges.height == estate.edges
    return runner, server, edges


@pytest.mark.parametrize("enis", [10, 300])
def test_the_query_count_does_not_grow_with_the_enis(enis: int) -> None:
    runner, server, _ = _synthetic_run(enis)
    assert runner.stats.queries == 1 and server.count("StartQuery") == 1


@pytest.mark.slow
def test_key_splits_stay_within_the_query_text_limit_and_scan_little_more() -> None:
    """1,000 ENIs whose edges exceed the cap: stream lists sized to the 10,000-character limit, every
    record read once by the parts (plus the full queries that led to the split)."""
    runner, server, _ = _synthetic_run(1000, cap=3000)
    texts = [c.params["queryString"] for c in server.calls_of("StartQuery") if c.error is None]
    assert runner.stats.splits_by_stream >= 1
    assert max(len(t) for t in texts) <= 10_000
    assert all("@logStream in [" in t for t in texts[3:])  # after the one time split, by stream
    whole = sum(len(m) + 26 for m in _synthetic_messages(1000))
    assert runner.stats.bytes_scanned <= 3.1 * whole


def _synthetic_messages(enis: int) -> list[str]:
    from tests.standins.cwl_estate import SyntheticEstate

    return list(SyntheticEstate(enis=enis).events()["message"])


def test_a_user_query_is_capped_only_by_its_final_limit(aws_env: Stand) -> None:
    logs = aws_env.logs.client()
    early = run_user_query(
        logs, "limit 3 | stats count(*) as n by action", [GROUP], aws_env.window.start, aws_env.window.end
    )
    assert early.limit == 10_000 and not early.capped
    final = run_user_query(
        logs, "fields srcAddr | limit 3", [GROUP], aws_env.window.start, aws_env.window.end
    )
    assert final.limit == 3 and len(final.rows) == 3 and final.capped


def test_every_aws_call_is_allowed_by_the_example_iam_policy(
    aws_env: Stand, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Record every API operation of recommend/collect/query in AWS mode through the clients sgadvisor
    builds, and check each against examples/iam-policy.json (the read-only policy the README gives)."""
    import sgadvisor.aws.source as source
    from sgadvisor.aws import clients
    from sgadvisor.cli import main
    from tests.conftest import REPO

    called: set[str] = set()
    real_make_client = clients.make_client

    def recording_client(session: Any, service: str, settings: AwsSettings) -> Any:
        client = real_make_client(session, service, settings)
        prefix = client.meta.service_model.signing_name  # "ec2", "logs": the IAM service prefix

        def record(model: Any, **_: Any) -> None:
            called.add(f"{prefix}:{model.name}")

        client.meta.events.register("before-call", record)
        return client

    monkeypatch.setattr(source, "make_client", recording_client)
    start, end = str(aws_env.window.start), str(aws_env.window.end)
    for argv in (
        ["recommend", "--vpc", aws_env.vpc_id, "--log-group", GROUP, "--start", start, "--end", end, "-q"],
        ["collect", "--out", str(tmp_path / "inv"), "--flows-out", str(tmp_path / "e.jsonl"), "--start", start,
         "--end", end, "--log-group", GROUP, "--vpc", aws_env.vpc_id, "-q"],
        ["collect", "--out", str(tmp_path / "h"), "--history", "all", "--start", start, "--end", end, "-q"],
        ["query", "--log-group", GROUP, "--action", "REJECT", "--start", start, "--end", end, "-q"],
    ):  # fmt: skip
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code in (0, None), argv
    policy = json.loads((REPO / "examples" / "iam-policy.json").read_text())
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    assert {"ec2:DescribeSecurityGroups", "logs:StartQuery", "logs:GetQueryResults"} <= called
    history_calls = {
        "config:GetResourceConfigHistory",
        "config:ListDiscoveredResources",
        "cloudtrail:LookupEvents",
    }
    assert history_calls <= called
    assert called <= allowed, f"not in examples/iam-policy.json: {sorted(called - allowed)}"
    read_only = ("Describe", "Get", "List", "LookupEvents", "StartQuery", "StopQuery")
    # Read-only everywhere, but for Athena's results: it writes them to the output location (one bucket
    # prefix of the user's choosing), which is all the write statement allows.
    for statement in policy["Statement"]:
        if statement.get("Sid") == "SgadvisorAthenaQueryResults":
            assert all(r.startswith("arn:aws:s3:::RESULT-BUCKET") for r in statement["Resource"])
            continue
        assert all(a.split(":")[1].startswith(read_only) for a in statement["Action"]), statement


def test_an_old_flow_log_does_not_cover_an_eni_whose_records_never_arrived(
    aws_env: Stand, tmp_path: Path
) -> None:
    """AWS mode, issue 15: the VPC's flow log was created long before the window (moto dates it "now":
    the stand-in is set back by hand), its other ENIs deliver, one ENI's records are missing. That ENI's
    group has no evidence; the flow log's CreationTime proves nothing."""
    import gzip
    import shutil
    from datetime import UTC, datetime

    import boto3
    from moto.ec2.models import ec2_backends

    ec2 = boto3.client("ec2", region_name=REGION)
    dns = ec2.describe_network_interfaces(
        Filters=[
            {"Name": "addresses.private-ip-address", "Values": ["10.0.2.53"]},
            {"Name": "vpc-id", "Values": [aws_env.vpc_id]},
        ]
    )["NetworkInterfaces"][0]
    dns_eni, dns_group = dns["NetworkInterfaceId"], dns["Groups"][0]["GroupId"]
    flows = tmp_path / "flows"
    shutil.copytree(aws_env.flows, flows)
    for path in flows.rglob("*.log.gz"):
        lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
        path.write_bytes(gzip.compress("".join(li for li in lines if dns_eni not in li).encode()))
    group = "vpc-flow-logs-without-dns"
    load_flow_log_files(aws_env.logs.client(), group, [flows])
    created = ec2.create_flow_logs(
        ResourceIds=[aws_env.vpc_id], ResourceType="VPC", TrafficType="ALL", LogGroupName=group,
        DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow-logs",
    )  # fmt: skip
    flow_log = created["FlowLogIds"][0]
    ec2_backends["123456789012"][REGION].flow_logs[flow_log].creation_time = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        described = ec2.describe_flow_logs(FlowLogIds=[flow_log])["FlowLogs"][0]
        assert described["CreationTime"].timestamp() < aws_env.window.start
        online = recommend(
            RecommendInputs(
                flows=(),
                inventory=(),
                ingest=IngestOptions(),
                analysis=AnalysisOptions(scope=Scope(vpcs=frozenset({aws_env.vpc_id}))),
                aws=AwsInputs(
                    settings=AwsSettings(region=REGION),
                    log_groups=(group,),
                    window=aws_env.window,
                    vpcs=(aws_env.vpc_id,),
                ),
            )
        )
    finally:
        ec2.delete_flow_logs(FlowLogIds=[flow_log])
    report = next(g for g in online.security_groups if g.group_id == dns_group)
    assert report.coverage.status == "none"
    assert report.coverage.reasons == [
        f"{dns_eni}: no flow-log record of it in the window (flow log {flow_log})"
    ]
    assert all(c.action == "keep" for c in report.changes)
    others = [g for g in online.security_groups if g.group_id != dns_group and g.coverage.enis]
    assert any(g.coverage.status == "ok" for g in others)
