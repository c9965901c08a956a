"""AWS mode fetches ENI history (issue 17): ``recommend`` and ``check`` without --flows/--inventory read the
inventory from EC2 (moto), the flows with Logs Insights (the project's CloudWatch Logs endpoint) and, with
``--history missing`` (the default) or ``all``, the history of the ENIs the flows name that EC2 no longer
lists from AWS Config, else CloudTrail (tests/standins/history_server.py: moto serves neither).

What a user relies on: a replaced ENI (a finished task, a terminated instance) that only Config or only
CloudTrail still knows is a former member of the groups it held, not unattributed traffic; ``--history
none`` asks neither service; a snapshot given with --inventory keeps its own history (no call); and the
online run judges exactly as an offline run over what ``collect`` wrote. Every call is one the example IAM
policy allows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.aws.clients import AwsSettings
from tests.conftest import DEFAULT_HEADER, REPO, default_line, write_lines
from tests.standins.cwl_server import CwlServer, load_flow_log_files
from tests.standins.history_server import ENI_TYPE, HistoryServer, eni_configuration

REGION = "eu-west-1"
GROUP = "flows-with-history"
START = 1_790_000_000
END = START + 7 * 86_400
WINDOW = ["--start", str(START), "--end", str(END)]
# Gone before the inventory was read: Config still has the first, only CloudTrail the second.
BY_CONFIG = "eni-0c0ffee000000c0f1"
BY_TRAIL = "eni-0c0ffee000000c7a2"
HISTORY_CALLS = {
    "config:GetResourceConfigHistory",
    "config:ListDiscoveredResources",
    "cloudtrail:LookupEvents",
}


@dataclass(frozen=True)
class Estate:
    ec2_url: str
    logs: CwlServer
    vpc: str
    subnet: str
    group: str
    live: str  # the ENI EC2 lists


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    """moto: a VPC with a group and one ENI, whose flow log delivers to GROUP; the endpoint's GROUP holds a
    week of that ENI's egress and the egress of two ENIs of the group that EC2 no longer lists."""
    import boto3
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url, aws_access_key_id="x",
                       aws_secret_access_key="x")  # fmt: skip
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    live = ec2.create_network_interface(SubnetId=subnet, Groups=[group], PrivateIpAddress="10.0.1.10")[
        "NetworkInterface"
    ]["NetworkInterfaceId"]
    ec2.create_flow_logs(
        ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL", LogGroupName=GROUP,
        DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow-logs",
    )  # fmt: skip
    lines = [default_line("10.0.1.10", "203.0.113.10", 40000 + n, 443, eni=live, start=START + 600 * n)
             for n in range(7 * 144)]  # fmt: skip
    lines += [default_line("10.0.1.99", "198.51.100.7", 41000 + n, 5432, eni=BY_CONFIG, start=START + 3600 * n)
              for n in range(1, 20)]  # fmt: skip
    lines += [default_line("10.0.1.98", "198.51.100.8", 42000 + n, 6379, eni=BY_TRAIL, start=START + 3600 * n)
              for n in range(1, 20)]  # fmt: skip
    flows = write_lines(tmp_path_factory.mktemp("flows") / "flows.log", lines, header=DEFAULT_HEADER)
    logs = CwlServer()
    logs.start()
    load_flow_log_files(logs.client(), GROUP, [flows])
    try:
        yield Estate(url, logs, vpc, subnet, group, live)
    finally:
        logs.stop()
        moto.stop()


@pytest.fixture
def history(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> Iterator[HistoryServer]:
    """The Config + CloudTrail endpoint: Config's items of BY_CONFIG (created in the window, in the group,
    deleted a day later), CloudTrail's CreateNetworkInterface of BY_TRAIL (Config never discovered it);
    boto3 pointed at every stand-in the standard way. LookupEvents is not paced here (test_history_fetch)."""
    from sgadvisor.aws import history as fetch

    server = HistoryServer(lookup_rate=None, now=lambda: END + 3600)
    configuration = eni_configuration(BY_CONFIG, "10.0.1.99", groups=[estate.group], subnet=estate.subnet,
                                      vpc=estate.vpc)  # fmt: skip
    server.add_config_item(BY_CONFIG, START + 60, configuration=configuration, status="ResourceDiscovered")
    server.add_config_item(BY_CONFIG, START + 86_400, status="ResourceDeleted")
    server.add_event("CreateNetworkInterface", START + 120, resources=[(ENI_TYPE, BY_TRAIL)], detail={
        "requestParameters": {"subnetId": estate.subnet, "groupSet": {"items": [{"groupId": estate.group}]}},
        "responseElements": {"networkInterface": {
            "networkInterfaceId": BY_TRAIL, "subnetId": estate.subnet, "vpcId": estate.vpc,
            "privateIpAddress": "10.0.1.98", "groupSet": {"items": [{"groupId": estate.group}]},
            "interfaceType": "interface", "requesterManaged": False}}})  # fmt: skip
    with server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", estate.ec2_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_ROUTE53RESOLVER", estate.ec2_url)  # moto: no query logs
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", estate.logs.endpoint_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_CONFIG_SERVICE", server.endpoint_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", server.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        monkeypatch.setattr(fetch, "LOOKUP_INTERVAL", 0.0)
        yield server


@pytest.fixture
def called(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every API operation sgadvisor's own clients call (``service:Operation``, the IAM action names)."""
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
    return seen


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from sgadvisor.cli import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    return int(done.value.code or 0), capsys.readouterr().err


def _recommend(estate: Estate, out: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code, err = _run(["recommend", "--vpc", estate.vpc, *WINDOW, "--out", str(out), "--format", "json",
                      *extra], capsys)  # fmt: skip
    assert code == 0, err
    result: dict[str, Any] = json.loads((out / "recommendation.json").read_text())
    result["stderr"] = err
    return result


def _unattributed(result: dict[str, Any]) -> set[str]:
    return {entry["interface_id"] for entry in result["unattributed"]}


def _asked_for(history: HistoryServer) -> set[str]:
    """The ENIs whose history was asked for, by Config resource id or CloudTrail resource name."""
    asked = {c.params["resourceId"] for c in history.calls_of("GetResourceConfigHistory")}
    for call in history.calls_of("LookupEvents"):
        for attribute in call.params.get("LookupAttributes", []):
            if attribute["AttributeKey"] == "ResourceName":
                asked.add(attribute["AttributeValue"])
    return asked


def _app(result: dict[str, Any], estate: Estate) -> dict[str, Any]:
    group: dict[str, Any] = next(g for g in result["security_groups"] if g["group_id"] == estate.group)
    return group


def test_recommend_fetches_the_history_of_enis_ec2_no_longer_lists(
    estate: Estate,
    history: HistoryServer,
    called: set[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _recommend(estate, tmp_path / "out", capsys)
    # Asked for exactly the ENIs the flows name that EC2 lacks; Config first, CloudTrail for the other.
    assert _asked_for(history) == {BY_CONFIG, BY_TRAIL}
    assert history.count("ListDiscoveredResources", succeeded=True) >= 1
    assert {c.params["resourceId"] for c in history.calls_of("GetResourceConfigHistory")} == {
        BY_CONFIG,
        BY_TRAIL,
    }
    assert history.count("GetResourceConfigHistory", error="ResourceNotDiscoveredException") >= 1  # BY_TRAIL
    assert history.count("LookupEvents", succeeded=True) >= 1
    assert "ENI history: 1 ENIs from Config (2 items), 1 from CloudTrail (1 events)" in result["stderr"]
    # Both are former members of the group they held, judged in its coverage; neither is unattributed.
    assert not _unattributed(result) & {BY_CONFIG, BY_TRAIL}
    app = _app(result, estate)
    assert app["coverage"]["enis"] == 3
    # Every call is in the example policy (the history statement included).
    policy = json.loads((REPO / "examples" / "iam-policy.json").read_text())
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    assert called >= HISTORY_CALLS
    assert called <= allowed, f"not in examples/iam-policy.json: {sorted(called - allowed)}"


def test_history_none_asks_neither_service_and_leaves_them_unattributed(
    estate: Estate,
    history: HistoryServer,
    called: set[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _recommend(estate, tmp_path / "out", capsys, "--history", "none")
    assert not history.calls and not called & HISTORY_CALLS
    assert "ec2:DescribeNetworkInterfaces" in called and "logs:StartQuery" in called  # AWS mode it was
    assert {BY_CONFIG, BY_TRAIL} <= _unattributed(result)
    assert _app(result, estate)["coverage"]["enis"] == 1
    assert not [line for line in result["stderr"].splitlines() if line.startswith("ENI history:")]


def test_history_all_asks_for_every_eni_in_scope_too(
    estate: Estate, history: HistoryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _recommend(estate, tmp_path / "out", capsys, "--history", "all", "-q")
    assert _asked_for(history) == {BY_CONFIG, BY_TRAIL, estate.live}
    assert not _unattributed(result) & {BY_CONFIG, BY_TRAIL}
    assert result["stderr"] == ""  # --quiet: not even what was fetched


def test_a_snapshot_given_keeps_its_own_history(
    estate: Estate, history: HistoryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--inventory: the snapshot's history (here: none) is used as it is, even with Insights flows."""
    snapshot = tmp_path / "snapshot"
    code, err = _run(["collect", "--out", str(snapshot), "--vpc", estate.vpc, "--history", "none", *WINDOW],
                     capsys)  # fmt: skip
    assert code == 0, err
    result = _recommend(estate, tmp_path / "out", capsys, "--inventory", str(snapshot), "--log-group", GROUP)
    assert not history.calls
    assert {BY_CONFIG, BY_TRAIL} <= _unattributed(result)


def test_online_judges_as_offline_over_what_collect_wrote(
    estate: Estate, history: HistoryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fetched history is read through the snapshot loader: recommend in AWS mode and recommend over
    collect's snapshot, history files and flow edges give the same groups and unattributed traffic."""
    online = _recommend(estate, tmp_path / "online", capsys, "-q")
    snapshot, edges = tmp_path / "snapshot", tmp_path / "edges.jsonl"
    code, err = _run(["collect", "--out", str(snapshot), "--flows-out", str(edges), "--vpc", estate.vpc,
                      *WINDOW, "-q"], capsys)  # fmt: skip
    assert code == 0, err
    assert (snapshot / f"get-resource-config-history-{BY_CONFIG}.json").exists()
    assert (snapshot / "lookup-events.json").exists()
    offline = _recommend(estate, tmp_path / "offline", capsys, "--inventory", str(snapshot), "--flows",
                         str(edges), "-q")  # fmt: skip
    assert online["security_groups"] == offline["security_groups"]
    assert online["unattributed"] == offline["unattributed"]
    assert not _unattributed(online) & {BY_CONFIG, BY_TRAIL}


def test_check_fetches_history_like_recommend(
    estate: Estate, history: HistoryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check reads its state as recommend does: --history reaches it (missing by default, none asks
    nothing), and with --no-flows there are no flows to name a missing ENI."""
    baseline = _recommend(estate, tmp_path / "out", capsys, "--history", "none", "-q")
    path = tmp_path / "out" / "recommendation.json"
    assert {BY_CONFIG, BY_TRAIL} <= _unattributed(baseline)
    history.reset_calls()
    argv = ["check", "--baseline", str(path), "--vpc", estate.vpc, *WINDOW]
    code, err = _run(argv, capsys)
    assert code in (0, 1), err
    assert _asked_for(history) == {BY_CONFIG, BY_TRAIL}
    assert "ENI history: 1 ENIs from Config (2 items), 1 from CloudTrail (1 events)" in err
    history.reset_calls()
    code, err = _run([*argv, "--history", "none"], capsys)
    assert code in (0, 1), err
    assert not history.calls
    code, err = _run([*argv, "--no-flows"], capsys)
    assert code in (0, 1), err
    assert not history.calls
