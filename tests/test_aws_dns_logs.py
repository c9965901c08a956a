"""AWS mode reads Route 53 Resolver query logs from CloudWatch Logs with Logs Insights (issue "Route 53
Resolver query logs as evidence", input shape "a log group read with Logs Insights").

Stand-ins: moto's server for EC2 and Route 53 Resolver (CreateResolverQueryLogConfig,
AssociateResolverQueryLogConfig, ListResolverQueryLogConfigs and ListResolverQueryLogConfigAssociations
with filters are implemented there), the project's CloudWatch Logs endpoint for the flow logs and the query
logs (JSON records as the Resolver writes them, one per event; Insights discovers their fields).

What a user relies on: ``recommend`` in AWS mode finds the query-log group of the VPCs in scope by itself
(or takes ``--dns-log-group``) and judges internet destinations exactly as an offline run with
``--dns-logs`` over the same records written to files; S3 and Firehose destinations are named in a
warning; a refused discovery leaves the run going, port-scoped; a day with more queries than a query
returns is split, never cut; every call is one the example IAM policy allows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.aws.clients import AwsSettings
from sgadvisor.aws.dns import (
    LEFT_OUT,
    day_ranges,
    discover_query_logs,
    dns_query,
    parse_destination,
    read_dns_insights,
)
from sgadvisor.aws.flows import stream_lister
from sgadvisor.aws.insights import InsightsRunner, RunnerSettings
from sgadvisor.dnslogs import DnsLogBuilder, read_dns_logs
from sgadvisor.errors import AwsError
from sgadvisor.flowlogs.edges import Window
from tests.conftest import DEFAULT_HEADER, REPO, default_line, write_lines
from tests.standins.cwl_query import json_fields
from tests.standins.cwl_server import Behaviour, CwlServer, load_flow_log_files

REGION = "eu-west-1"
ACCOUNT = "123456789012"
FLOW_GROUP = "flows-for-dns"
DNS_GROUP = "/aws/route53/resolver-query-logs"
START = 1_790_000_000  # 2026-09-21T14:13:20Z: the window does not start at midnight
DAYS = 7
END = START + DAYS * 86_400
WINDOW = ["--start", str(START), "--end", str(END), "--history", "none"]
ENI_ADDRESS = "10.0.1.10"
STABLE = ("api.partner.example", ("203.0.113.10", "203.0.113.11"))  # always both addresses
ROTATING = ("cdn.rotating.example", ("198.51.100.20", "198.51.100.21", "198.51.100.22"))  # one a day
UNNAMED = "192.0.2.30"  # no query resolved to it
DNS_CALLS = {
    "route53resolver:ListResolverQueryLogConfigAssociations",
    "route53resolver:ListResolverQueryLogConfigs",
}


@dataclass(frozen=True)
class Estate:
    moto_url: str
    logs: CwlServer
    vpc: str
    group: str
    config: str  # the query-logging configuration delivering to DNS_GROUP
    records: list[dict[str, Any]]  # every query-log record in DNS_GROUP, in time order


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(at: int, name: str, answers: list[str], *, vpc: str, rcode: str = "NOERROR",
            src: str = ENI_ADDRESS) -> dict[str, Any]:  # fmt: skip
    """A record as Route 53 Resolver writes it (keys in its order, compact JSON on the wire)."""
    return {
        "version": "1.100000", "account_id": ACCOUNT, "region": REGION, "vpc_id": vpc,
        "query_timestamp": _iso(at), "query_name": f"{name}.", "query_type": "A", "query_class": "IN",
        "rcode": rcode, "answers": [{"Rdata": a, "Type": "A", "Class": "IN"} for a in answers],
        "srcaddr": src, "srcport": "41000", "transport": "UDP",
        "srcids": {"instance": "i-0123456789abcdef0"},
    }  # fmt: skip


def _records(vpc: str) -> list[dict[str, Any]]:
    """Seven days of the ENI's queries: the stable name 4 times a day, the rotating one once (a new
    address each day), an NXDOMAIN twice; another VPC's client once a day; one record whose srcaddr is no
    address (malformed, however it is read); records just outside the window on both sides."""
    records = []
    for day in range(DAYS):
        base = START + day * 86_400
        for hour in (1, 7, 13, 19):
            records.append(_record(base + hour * 3600, STABLE[0], list(STABLE[1]), vpc=vpc))
        records.append(_record(base + 3 * 3600, ROTATING[0], [ROTATING[1][day % 3]], vpc=vpc))
        for hour in (5, 17):
            records.append(_record(base + hour * 3600, "typo.example", [], vpc=vpc, rcode="NXDOMAIN"))
        records.append(_record(base + 9 * 3600, "elsewhere.example", ["192.0.2.99"], vpc="vpc-0other0000000000",
                               src="10.9.9.9"))  # fmt: skip
    records.append({**_record(START + 600, STABLE[0], [STABLE[1][0]], vpc=vpc), "srcaddr": "not-an-address"})
    records.append(_record(START - 120, STABLE[0], list(STABLE[1]), vpc=vpc))  # before: in the margin
    records.append(_record(END + 60, STABLE[0], list(STABLE[1]), vpc=vpc))  # after
    return sorted(records, key=lambda r: r["query_timestamp"])


def _flow_lines(eni: str) -> list[str]:
    """Every 10 minutes a connection to the stable name's first address (so the ENI is covered all
    along), each day one to the rotating name's address of the day and one to the unnamed address."""
    lines = [default_line(ENI_ADDRESS, STABLE[1][0], 40000 + n % 20000, 443, eni=eni, start=START + 600 * n)
             for n in range(DAYS * 144)]  # fmt: skip
    for day in range(DAYS):
        base = START + day * 86_400
        lines.append(default_line(ENI_ADDRESS, ROTATING[1][day % 3], 50000 + day, 443, eni=eni,
                                  start=base + 3 * 3600 + 5))  # fmt: skip
        lines.append(default_line(ENI_ADDRESS, UNNAMED, 51000 + day, 8443, eni=eni, start=base + 4 * 3600))
    return lines


def put_query_logs(logs: Any, group: str, stream: str, records: list[dict[str, Any]]) -> None:
    """The records as the Resolver delivers them to CloudWatch Logs: one compact JSON event each, stamped
    with its query time, through PutLogEvents (batches within one day)."""
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    events = [
        {"timestamp": int(datetime.fromisoformat(r["query_timestamp"]).timestamp() * 1000),
         "message": json.dumps(r, separators=(",", ":"))}
        for r in records
    ]  # fmt: skip
    batch: list[dict[str, Any]] = []
    for event in events:
        if batch and event["timestamp"] - batch[0]["timestamp"] > 20 * 3600 * 1000:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            batch = []
        batch.append(event)
    if batch:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    """moto: a VPC with the group "app" (egress open) and one ENI; its flow log delivers to FLOW_GROUP and
    its query-logging configuration to DNS_GROUP. The CloudWatch Logs endpoint holds both."""
    import boto3
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    keys = {
        "region_name": REGION,
        "endpoint_url": url,
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
    }
    ec2 = boto3.client("ec2", **keys)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[group], PrivateIpAddress=ENI_ADDRESS)[
        "NetworkInterface"
    ]["NetworkInterfaceId"]
    ec2.create_flow_logs(
        ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL", LogGroupName=FLOW_GROUP,
        DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/flow-logs",
    )  # fmt: skip
    resolver = boto3.client("route53resolver", **keys)
    config = resolver.create_resolver_query_log_config(
        Name="vpc-queries", CreatorRequestId="dns-1",
        DestinationArn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{DNS_GROUP}",
    )["ResolverQueryLogConfig"]["Id"]  # fmt: skip
    resolver.associate_resolver_query_log_config(ResolverQueryLogConfigId=config, ResourceId=vpc)
    flows = write_lines(
        tmp_path_factory.mktemp("flows") / "flows.log", _flow_lines(eni), header=DEFAULT_HEADER
    )
    logs = CwlServer(region=REGION, account_id=ACCOUNT)
    logs.start()
    client = logs.client()
    load_flow_log_files(client, FLOW_GROUP, [flows])
    records = _records(vpc)
    put_query_logs(client, DNS_GROUP, f"{vpc}_{config}", records)
    try:
        yield Estate(url, logs, vpc, group, config, records)
    finally:
        logs.stop()
        moto.stop()


@pytest.fixture
def env(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> Estate:
    """boto3 pointed at the stand-ins the standard way (AWS_ENDPOINT_URL_<SERVICE>), dummy keys."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", estate.moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_ROUTE53RESOLVER", estate.moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", estate.logs.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    estate.logs.behaviour = Behaviour()
    estate.logs.reset_calls()
    return estate


@pytest.fixture
def called(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every API operation sgadvisor's own clients call (``service:Operation``, the IAM action names)."""
    import sgadvisor.aws.dns as dns
    import sgadvisor.aws.source as source
    from sgadvisor.aws import clients

    seen: set[str] = set()
    real_make_client = clients.make_client

    def recording_client(session: Any, service: str, settings: AwsSettings) -> Any:
        client = real_make_client(session, service, settings)
        prefix = client.meta.service_model.signing_name

        def record(model: Any, **_: Any) -> None:
            seen.add(f"{prefix}:{model.name}")

        client.meta.events.register("before-call", record)
        return client

    monkeypatch.setattr(source, "make_client", recording_client)
    monkeypatch.setattr(dns, "make_client", recording_client)
    return seen


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from sgadvisor.cli import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    return int(done.value.code or 0), capsys.readouterr().err


def _recommend(out: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, err = _run(["recommend", *argv, *WINDOW, "--out", str(out), "--format", "json"], capsys)
    assert code == 0, err
    result: dict[str, Any] = json.loads((out / "recommendation.json").read_text())
    result["stderr"] = err
    return result


def _dns_files(estate: Estate, folder: Path) -> Path:
    """The same records as files, as the S3 delivery writes them (one JSON record per line)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{estate.vpc}_vpcdnsquerylogs_{ACCOUNT}_20260921T1400Z_1a2b3c4d.log"
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in estate.records))
    return folder


def _internet_rules(result: dict[str, Any], estate: Estate) -> dict[str, tuple[str, list[str]]]:
    """The app group's proposed internet rules: destination → (pinned/port, names)."""
    (app,) = [g for g in result["security_groups"] if g["group_id"] == estate.group]
    rules = {}
    for rule in app["proposed_egress"]:
        evidence = rule.get("evidence") or {}
        if evidence.get("internet"):
            for destination in evidence.get("destinations", []):
                rules[destination] = (evidence["internet"], sorted(evidence.get("names") or []))
    return rules


# ------------------------------------------------------------------------------------ end to end


def test_aws_mode_finds_the_query_logs_and_judges_as_offline_over_the_same_records(
    env: Estate, called: set[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    online = _recommend(tmp_path / "online", capsys, "--vpc", env.vpc)
    # Found from the VPC's query-logging configuration and read with Insights, one query a UTC day.
    assert called >= DNS_CALLS | {"logs:StartQuery", "logs:GetQueryResults"}
    texts = [c.params["queryString"] for c in env.logs.calls_of("StartQuery")
             if c.params.get("logGroupNames") == [DNS_GROUP]]  # fmt: skip
    assert len(texts) == len(day_ranges(START - 300, END - 1 + 300)) == DAYS + 1
    assert set(texts) == {dns_query([env.vpc])}
    assert online["dns"]["sources"] == [DNS_GROUP]
    assert (
        f"DNS query logs: {DNS_GROUP} (found from the Resolver query-logging configurations)"
        in online["stderr"]
    )
    # The offline run: collect's snapshot and flow edges, the same records as files, --dns-logs.
    snapshot, edges = tmp_path / "snapshot", tmp_path / "edges.jsonl"
    code, err = _run(["collect", "--out", str(snapshot), "--flows-out", str(edges), "--vpc", env.vpc, *WINDOW,
                      "-q"], capsys)  # fmt: skip
    assert code == 0, err
    offline = _recommend(tmp_path / "offline", capsys, "--inventory", str(snapshot), "--flows", str(edges),
                         "--dns-logs", str(_dns_files(env, tmp_path / "dns")))  # fmt: skip
    assert online["security_groups"] == offline["security_groups"]
    assert online["dns"]["allowlists"] == offline["dns"]["allowlists"]
    rules = _internet_rules(online, env)
    # auto became the default: the stable name is pinned to its whole set, the rotating one named and
    # port-scoped, the address no query named port-scoped without a name.
    assert rules[STABLE[1][0]] == ("pinned", [STABLE[0]]) and rules[STABLE[1][1]] == ("pinned", [STABLE[0]])
    assert rules[ROTATING[1][0]] == ("port", [ROTATING[0]])
    assert rules[UNNAMED] == ("port", [])
    # Every record accounted: the query left NXDOMAIN and the other VPC's records in CloudWatch Logs;
    # the malformed record and the margins are counted as the file reader counts them.
    accounting, files = online["dns"]["accounting"], offline["dns"]["accounting"]
    assert accounting["used"] == DAYS * 5 and files["used"] == DAYS * 8  # the files' NXDOMAIN are read
    assert accounting["malformed"] == files["malformed"] == 1
    assert accounting["filtered"] == {LEFT_OUT: DAYS * 3, "outside the window": 2}
    assert accounting["records"] == files["records"] == len(env.records)
    policy = json.loads((REPO / "examples" / "iam-policy.json").read_text())
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    assert called <= allowed, f"not in examples/iam-policy.json: {sorted(called - allowed)}"


def test_max_bytes_counts_what_the_flow_queries_scanned_before_the_dns_logs(
    env: Estate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-bytes is for the whole run: a limit the flow queries fit but the DNS logs would pass once
    the flows' bytes are counted leaves the discovered query logs unread, with a warning."""
    from sgadvisor.aws.flows import estimate_scan_bytes

    whole = _recommend(tmp_path / "whole", capsys, "--vpc", env.vpc)
    assert whole["dns"]["sources"] == [DNS_GROUP]
    flows = whole["collection"]["bytes_scanned"]
    # The flow queries' planning estimate: the edge and span queries each scan the window once.
    planned = 2 * estimate_scan_bytes(env.logs.client(), [FLOW_GROUP], Window(START, END))
    limit = max(flows, planned)
    limited = _recommend(tmp_path / "limited", capsys, "--vpc", env.vpc, "--max-bytes", str(limit))
    assert limited["collection"]["bytes_scanned"] == flows
    assert not (limited.get("dns") or {}).get("sources")
    assert any("DNS query logs would scan" in w and "not read" in w for w in limited["warnings"])


def test_a_named_log_group_is_read_without_discovery_even_offline(
    env: Estate, called: set[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dns-log-group beside an offline inventory and flows: the only AWS calls are the log group's."""
    snapshot, edges = tmp_path / "snapshot", tmp_path / "edges.jsonl"
    code, err = _run(["collect", "--out", str(snapshot), "--flows-out", str(edges), "--vpc", env.vpc, *WINDOW,
                      "-q"], capsys)  # fmt: skip
    assert code == 0, err
    called.clear()
    files = _recommend(tmp_path / "files", capsys, "--inventory", str(snapshot), "--flows", str(edges),
                       "--dns-logs", str(_dns_files(env, tmp_path / "dns")))  # fmt: skip
    assert not called
    named = _recommend(tmp_path / "named", capsys, "--inventory", str(snapshot), "--flows", str(edges),
                       "--dns-log-group", DNS_GROUP)  # fmt: skip
    assert not called & DNS_CALLS and "logs:StartQuery" in called
    assert named["security_groups"] == files["security_groups"]
    assert "(--dns-log-group)" in named["stderr"]


def test_internet_port_reads_no_query_logs(
    env: Estate, called: set[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _recommend(tmp_path / "out", capsys, "--vpc", env.vpc, "--internet", "port")
    assert not called & DNS_CALLS and "dns" not in result
    assert all(kind == "port" for kind, _ in _internet_rules(result, env).values())


def test_a_missing_named_log_group_is_an_error(
    env: Estate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        ["recommend", "--vpc", env.vpc, *WINDOW, "--dns-log-group", "no-such-group", "-q"], capsys
    )
    assert code == 2 and "log group no-such-group does not exist" in err


def test_a_refused_discovery_leaves_the_run_port_scoped_with_a_warning(
    env: Estate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from botocore.exceptions import ClientError

    import sgadvisor.aws.dns as dns

    def refused(*args: Any, **kwargs: Any) -> Any:
        error = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}
        raise ClientError(error, "ListResolverQueryLogConfigAssociations")

    monkeypatch.setattr(dns, "discover_query_logs", refused)
    result = _recommend(tmp_path / "out", capsys, "--vpc", env.vpc)
    assert "dns" not in result
    assert any(
        "could not be looked up (AccessDeniedException: not authorized)" in w for w in result["warnings"]
    )
    assert all(kind == "port" for kind, _ in _internet_rules(result, env).values())
    assert not [c for c in env.logs.calls_of("StartQuery") if c.params.get("logGroupNames") == [DNS_GROUP]]


# ------------------------------------------------------------------------------------ discovery


def test_discovery_names_s3_and_firehose_destinations_and_reads_only_cloudwatch(env: Estate) -> None:
    """Against moto's Route 53 Resolver: a second VPC logs to S3, to Firehose and to a log group."""
    import boto3

    keys = {"region_name": REGION, "endpoint_url": env.moto_url}
    ec2, resolver = boto3.client("ec2", **keys), boto3.client("route53resolver", **keys)
    other = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    unlogged = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    for name, arn in (
        ("to-s3", "arn:aws:s3:::dns-archive/query-logs"),
        ("to-firehose", f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/dns-stream"),
        ("to-cwl", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:other-queries"),
    ):
        config = resolver.create_resolver_query_log_config(
            Name=name, DestinationArn=arn, CreatorRequestId=name
        )
        resolver.associate_resolver_query_log_config(
            ResolverQueryLogConfigId=config["ResolverQueryLogConfig"]["Id"], ResourceId=other
        )
    found = discover_query_logs(resolver, [env.vpc, other, unlogged], REGION)
    assert dict(found.groups) == {DNS_GROUP: (env.vpc,), "other-queries": (other,)}
    assert found.unlogged == (unlogged,)
    (s3,) = [w for w in found.warnings if "S3 bucket" in w]
    assert f"of {other} go to S3 bucket dns-archive/query-logs" in s3 and "--dns-logs" in s3
    (firehose,) = [w for w in found.warnings if "Firehose" in w]
    assert "stream dns-stream" in firehose and "--dns-logs" in firehose
    # Scoped to the VPCs asked for: the first VPC alone sees only its own group.
    assert dict(discover_query_logs(resolver, [env.vpc], REGION).groups) == {DNS_GROUP: (env.vpc,)}


@pytest.mark.parametrize(
    ("arn", "kind", "name"),
    [
        ("arn:aws:logs:eu-west-1:123456789012:log-group:/aws/route53/q", "logs", "/aws/route53/q"),
        ("arn:aws:logs:eu-west-1:123456789012:log-group:/aws/route53/q:*", "logs", "/aws/route53/q"),
        ("arn:aws-cn:logs:cn-north-1:123456789012:log-group:q", "logs", "q"),
        ("arn:aws:s3:::bucket", "s3", "bucket"),
        ("arn:aws:firehose:eu-west-1:123456789012:deliverystream/s", "firehose", "s"),
        ("not an arn", "unknown", "not an arn"),
    ],
)
def test_destination_arns(arn: str, kind: str, name: str) -> None:
    destination = parse_destination(arn)
    assert (destination.kind, destination.name) == (kind, name)


# ------------------------------------------------------------------------------------ reading


class FakeTime:
    now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _runner(estate: Estate, settings: RunnerSettings | None = None) -> InsightsRunner:
    time = FakeTime()
    logs = estate.logs.client()
    return InsightsRunner(logs, settings=settings or RunnerSettings(), sleep=time.sleep, clock=time.clock,
                          list_streams=stream_lister(logs))  # fmt: skip


def _read(estate: Estate, runner: InsightsRunner) -> Any:
    builder = DnsLogBuilder(START, END)
    read = read_dns_insights(runner, {DNS_GROUP: [estate.vpc]}, Window(START, END), builder, explicit=True)
    return read, builder.finish()


def _evidence(log: Any) -> Any:
    names = {address: log.names_for([ENI_ADDRESS], address).names for address in (*STABLE[1], *ROTATING[1])}
    stability = [log.stability(name, 4) for name in (STABLE[0], ROTATING[0])]
    return names, stability


def test_full_results_are_split_by_time_and_lose_nothing(env: Estate, tmp_path: Path) -> None:
    """A cap of 3 rows a query: every day splits, down to parts below the cap; the evidence is the file
    reader's over the same records."""
    env.logs.behaviour = Behaviour.row_cap(3)
    read, capped = _read(env, _runner(env, RunnerSettings(limit=3)))
    assert read.stats.splits_by_time > 0
    files = read_dns_logs([_dns_files(env, tmp_path / "dns")], START, END)
    assert _evidence(capped) == _evidence(files)
    assert capped.accounting.used == DAYS * 5  # resolved queries of the VPC only (the files: all)
    assert read.records == DAYS * 5 + 3  # and the malformed one, and those in the margins of the window


def test_an_interrupt_stops_the_dns_queries_in_flight(env: Estate) -> None:
    env.logs.behaviour = Behaviour(running_polls=50)
    runner = _runner(env, RunnerSettings(max_concurrent=2))

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    runner.sleep = interrupt
    with pytest.raises(KeyboardInterrupt):
        _read(env, runner)
    assert env.logs.count("StopQuery") == 2 and env.logs.active_queries() == []


def test_max_bytes_refuses_a_named_group_before_any_query(env: Estate) -> None:
    from sgadvisor.errors import CostLimitError

    runner = _runner(env)
    with pytest.raises(CostLimitError, match="DNS query logs would scan"):
        read_dns_insights(runner, {DNS_GROUP: [env.vpc]}, Window(START, END), DnsLogBuilder(START, END),
                          explicit=True, max_bytes=10)  # fmt: skip
    assert env.logs.count("StartQuery") == 0
    read = read_dns_insights(runner, {DNS_GROUP: [env.vpc]}, Window(START, END), DnsLogBuilder(START, END),
                             explicit=False, max_bytes=10)  # fmt: skip
    assert read.log_groups == () and "above --max-bytes" in read.warnings[0]
    with pytest.raises(AwsError, match="does not exist"):
        read_dns_insights(runner, {"gone": []}, Window(START, END), DnsLogBuilder(START, END), explicit=True)


def test_max_bytes_holds_on_the_bytes_the_dns_queries_scan(env: Estate) -> None:
    """Splits forced by a full result scan the day again: the queries are admitted on what was scanned
    so far, so a limit the estimate passes still stops the run (exit 2) before the splits pass it."""
    from sgadvisor.errors import CostLimitError

    read, _ = _read(env, _runner(env))
    limit = read.estimated_bytes * 3 // 2
    assert read.stats.bytes_scanned <= limit  # without splits, the run fits
    env.logs.behaviour = Behaviour.row_cap(3)
    with pytest.raises(CostLimitError, match="scanned so far") as refused:
        read_dns_insights(_runner(env, RunnerSettings(limit=3)), {DNS_GROUP: [env.vpc]}, Window(START, END),
                          DnsLogBuilder(START, END), explicit=True, max_bytes=limit)  # fmt: skip
    assert refused.value.exit_code == 2 and env.logs.active_queries() == []


def test_day_ranges_cut_at_utc_midnight() -> None:
    assert day_ranges(86_400 - 10, 2 * 86_400 + 5) == [
        (86_390, 86_399),
        (86_400, 172_799),
        (172_800, 172_805),
    ]
    assert day_ranges(5, 4) == []


# ------------------------------------------------------------------------------------ the stand-in


def test_the_endpoint_discovers_json_fields_as_insights_does(env: Estate) -> None:
    """Nested objects in dot notation, arrays by index (CWL_AnalyzeLogData-discoverable-fields)."""
    from sgadvisor.aws.insights import run_user_query

    record = env.records[0]
    assert (json_fields(json.dumps(record)) or {})["srcids.instance"] == "i-0123456789abcdef0"
    assert json_fields(json.dumps({"@x": 1, "a": [{"b": 2}], "n": None})) == {"@@x": 1, "a.0.b": 2}
    assert json_fields("2 123456789012 eni-1 - - - - - - - 1 2 - NODATA") is None
    result = run_user_query(
        env.logs.client(),
        "filter `srcids.instance` = 'i-0123456789abcdef0' and rcode = 'NOERROR'\n"
        "| stats count(*) as n by `answers.0.Rdata`, vpc_id",
        [DNS_GROUP], START, END - 1,
    )  # fmt: skip
    counts = {(row["answers.0.Rdata"], row["vpc_id"]): row["n"] for row in result.rows}
    assert counts[(STABLE[1][0], env.vpc)] == str(DAYS * 4 + 1)  # the malformed record's answer too
    assert counts[("192.0.2.99", "vpc-0other0000000000")] == str(DAYS)


def test_without_field_discovery_the_query_matches_the_same_records(env: Estate) -> None:
    """An Infrequent Access log group discovers no fields: the @message variant of the query returns
    exactly the records the discovered-field variant returns."""
    from sgadvisor.aws.insights import run_user_query

    def messages(text: str) -> list[str]:
        rows = run_user_query(env.logs.client(), text, [DNS_GROUP], START - 300, END + 300).rows
        return sorted(str(row["@message"]) for row in rows)

    fields = messages(dns_query([env.vpc]))
    assert len(fields) == DAYS * 5 + 3
    assert messages(dns_query([env.vpc], discovered=False)) == fields
    assert len(messages(dns_query([], discovered=False))) == DAYS * 6 + 3  # the other VPC's too
