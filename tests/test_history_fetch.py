"""ENI history in AWS mode (issue 17): Config first, CloudTrail where Config has nothing, through the
run's clients, against the local Config + CloudTrail endpoint (moto serves neither for ENIs: see
tests/standins/history_server.py) and moto's EC2.

What a user relies on: every page is read (Config pages of 100, LookupEvents pages of 50); CloudTrail's
2-calls-a-second limit is kept and throttling is survived; an ENI Config does not know is still found in
CloudTrail; ``collect --history`` writes exactly what the AWS CLI prints; ``--timeout`` ends it.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.aws.clients import AwsSettings, make_client, make_session
from sgadvisor.aws.control import Deadline
from sgadvisor.aws.history import LOOKUP_FILE, HistoryFetch, HistoryFetcher, HistoryRequest
from sgadvisor.errors import AwsError
from sgadvisor.flowlogs.edges import Window
from tests.standins.history_server import ENI_TYPE, HistoryServer, eni_configuration

REGION = "eu-west-1"
START = 1_790_000_000
END = START + 7 * 86_400
WINDOW = Window(START, END)
ENI_RESOURCE = "AWS::EC2::NetworkInterface"


@pytest.fixture
def history(monkeypatch: pytest.MonkeyPatch) -> Iterator[HistoryServer]:
    """The endpoint, its clock at the window's end, boto3 pointed at it the standard way."""
    with HistoryServer(now=lambda: END + 3600) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CONFIG_SERVICE", server.endpoint_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", server.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield server


def _fetcher(settings: AwsSettings | None = None, **kwargs: Any) -> HistoryFetcher:
    """Clients made by the project's factory (retries, deadline), as collect makes them."""
    settings = settings or AwsSettings(region=REGION)
    session = make_session(settings)
    return HistoryFetcher(
        make_client(session, "config", settings),
        make_client(session, "cloudtrail", settings),
        deadline=settings.deadline,
        **kwargs,
    )


def _fetch(request: HistoryRequest, **kwargs: Any) -> HistoryFetch:
    return _fetcher(**kwargs).fetch(request)


def test_config_history_reads_every_page_and_the_state_the_window_began_with(history: HistoryServer) -> None:
    history.add_config_item("eni-1", START - 86_400, configuration=eni_configuration("eni-1", "10.0.1.5"))
    for n in range(250):
        history.add_config_item(
            "eni-1", START + 60 * (n + 1), configuration=eni_configuration("eni-1", "10.0.1.5")
        )
    history.add_config_item("eni-1", END + 60, configuration=eni_configuration("eni-1", "10.0.1.5"))
    fetched = _fetch(HistoryRequest(("eni-1",), WINDOW))
    items = fetched.items["eni-1"]
    assert len(items) == 251  # the 250 in the window, and the one in effect at its start; not the later one
    captured = [item["configurationItemCaptureTime"].timestamp() for item in items]
    assert captured == sorted(captured) and captured[0] == START - 86_400
    pages = [c for c in history.calls_of("GetResourceConfigHistory") if c.params.get("earlierTime")]
    assert len(pages) == 3 and all(c.params["limit"] == 100 for c in pages)
    assert fetched.by_config == {"eni-1"} and not fetched.events and not history.count("LookupEvents")
    (name, document), = fetched.documents().items()  # fmt: skip
    assert name == "get-resource-config-history-eni-1.json"
    assert json.loads(document["configurationItems"][0]["configuration"])["privateIpAddress"] == "10.0.1.5"


def test_lookup_events_pages_within_the_rate_limit(history: HistoryServer) -> None:
    """Config records no ENI here: CloudTrail, whose real limit (2 calls a second) the endpoint enforces."""
    history.records_enis = False
    for n in range(120):
        history.add_event("AttachNetworkInterface", START + n, resources=[(ENI_RESOURCE, "eni-2")])
    fetched = _fetch(HistoryRequest(("eni-2",), WINDOW))
    assert len(fetched.events) == 120 and fetched.by_cloudtrail == {"eni-2"}
    lookups = history.calls_of("LookupEvents")
    assert len(lookups) == 3 and all(c.error is None for c in lookups)  # never throttled
    assert all(b.at - a.at >= 0.5 for a, b in itertools.pairwise(lookups))
    assert [c.params["MaxResults"] for c in lookups] == [50, 50, 50]
    assert history.count("GetResourceConfigHistory") == 0  # Config said it records no ENI: not asked


def test_without_pacing_the_rate_limit_throttles_and_the_fetch_still_completes(
    history: HistoryServer,
) -> None:
    for n in range(150):
        history.add_event("ModifyNetworkInterfaceAttribute", START + n, resources=[(ENI_RESOURCE, "eni-3")])
    history.records_enis = False
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    fetcher = _fetcher(AwsSettings(region=REGION, max_attempts=1), lookup_interval=0.0, sleep=sleep)
    fetched = fetcher.fetch(HistoryRequest(("eni-3",), WINDOW))
    assert len(fetched.events) == 150
    assert history.count("LookupEvents", error="ThrottlingException") >= 1 and fetched.throttled >= 1
    assert sleeps and all(s >= 0.5 for s in sleeps)


def test_throttling_backs_off_exponentially_then_gives_up(history: HistoryServer) -> None:
    history.lookup_rate = None
    history.records_enis = False
    history.add_event("CreateNetworkInterface", START, resources=[(ENI_RESOURCE, "eni-4")])
    history.throttle("LookupEvents", 3)
    sleeps: list[float] = []
    fetcher = _fetcher(AwsSettings(region=REGION, max_attempts=1), lookup_interval=0.0, sleep=sleeps.append)
    fetcher.random = lambda: 1.0  # the longest backoff each round
    assert fetcher.fetch(HistoryRequest(("eni-4",), WINDOW)).by_cloudtrail == {"eni-4"}
    assert sleeps == [1.0, 2.0, 4.0]
    history.throttle_forever("LookupEvents")
    fetcher = _fetcher(AwsSettings(region=REGION, max_attempts=1), lookup_interval=0.0, sleep=sleeps.append)
    with pytest.raises(AwsError, match="ThrottlingException"):
        fetcher.fetch(HistoryRequest(("eni-4",), WINDOW))


def test_what_config_lacks_is_found_in_cloudtrail(history: HistoryServer) -> None:
    history.lookup_rate = None
    # eni-a: Config has it. eni-b: Config never discovered it, CloudTrail names it. eni-c: a short-lived
    # instance's primary ENI, named only inside RunInstances; TerminateInstances names only the instance.
    history.add_config_item("eni-a", START + 10, configuration=eni_configuration("eni-a", "10.0.1.10"))
    history.add_event("CreateNetworkInterface", START - 86_400, resources=[(ENI_RESOURCE, "eni-b")])
    run = history.add_event("RunInstances", START + 100, resources=[("AWS::EC2::Instance", "i-0c")], detail={
        "responseElements": {"instancesSet": {"items": [{"instanceId": "i-0c", "networkInterfaceSet": {
            "items": [{"networkInterfaceId": "eni-c", "privateIpAddress": "10.0.1.30"}]}}]}}})  # fmt: skip
    stop = history.add_event("TerminateInstances", START + 900, resources=[("AWS::EC2::Instance", "i-0c")])
    history.add_event("RunInstances", START + 200, resources=[("AWS::EC2::Instance", "i-other")])
    # 10.0.1.77: no known ENI holds it; Config knows a deleted ENI that did, during the window.
    history.add_config_item("eni-d", START + 50, configuration=eni_configuration("eni-d", "10.0.1.77"))
    history.add_config_item("eni-d", START + 500, status="ResourceDeleted")
    fetcher = _fetcher(lookup_interval=0.0)
    request = HistoryRequest(("eni-a", "eni-b", "eni-c"), WINDOW, ("10.0.1.77",), frozenset({"eni-a"}))
    fetched = fetcher.fetch(request)
    assert fetched.by_config == {"eni-a", "eni-d"} and fetched.by_cloudtrail == {"eni-b", "eni-c"}
    assert set(fetched.events) == {history.events[0]["EventId"], run["EventId"], stop["EventId"]}
    assert fetched.addresses_found == {"10.0.1.77"} and not fetched.not_found
    named = [c.params["LookupAttributes"][0] for c in history.calls_of("LookupEvents")]
    assert {"AttributeKey": "ResourceName", "AttributeValue": "eni-b"} in named
    assert {a["AttributeValue"] for a in named if a["AttributeKey"] == "EventName"} == {
        "CreateNetworkInterface", "RunInstances", "TerminateInstances", "DeleteNetworkInterface"}  # fmt: skip
    listed = history.calls_of("ListDiscoveredResources")
    assert listed and all(c.params["includeDeletedResources"] for c in listed)


# ------------------------------------------------------------------------------------ collect, end to end


@pytest.fixture
def moto_ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, list[str]]]:
    """moto's EC2 server with a VPC, a group and three ENIs: (client, vpc id, ENI ids)."""
    import boto3
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url, aws_access_key_id="x",
                       aws_secret_access_key="x")  # fmt: skip
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    enis = [
        ec2.create_network_interface(SubnetId=subnet, Groups=[group], PrivateIpAddress=f"10.0.1.{10 + n}")[
            "NetworkInterface"
        ]["NetworkInterfaceId"]
        for n in range(3)
    ]
    try:
        yield ec2, vpc, enis
    finally:
        moto.stop()


def _collect(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from sgadvisor.cli import main

    with pytest.raises(SystemExit) as done:
        main(["collect", *argv])
    return int(done.value.code or 0), capsys.readouterr().err


def test_collect_history_all_writes_what_the_aws_cli_prints(
    history: HistoryServer,
    moto_ec2: tuple[Any, str, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import botocore.session

    _, vpc, (first, second, third) = moto_ec2
    history.add_config_item(first, START + 5, configuration=eni_configuration(first, "10.0.1.10", vpc=vpc))
    history.add_config_item(second, START - 5, configuration=eni_configuration(second, "10.0.1.11", vpc=vpc))
    history.add_event("CreateNetworkInterface", START + 7, resources=[(ENI_RESOURCE, third)])
    window = ["--start", str(START), "--end", str(END), "--vpc", vpc]
    code, err = _collect(["--out", str(tmp_path / "none"), "--history", "none", *window], capsys)
    assert code == 0 and not history.calls
    code, err = _collect(["--out", str(tmp_path / "missing"), *window], capsys)  # default: missing, no flows
    assert code == 0 and not history.calls and not list((tmp_path / "missing").glob("*history*"))
    out = tmp_path / "all"
    code, err = _collect(["--out", str(out), "--history", "all", *window], capsys)
    assert code == 0, err
    assert "ENI history: 2 ENIs from Config (2 items), 1 from CloudTrail (1 events)" in err

    model = botocore.session.get_session().get_service_model
    config_shape = model("config").operation_model("GetResourceConfigHistory").output_shape
    item_shape = config_shape.members["configurationItems"].member
    for eni in (first, second):
        document = json.loads((out / f"get-resource-config-history-{eni}.json").read_text())
        assert set(document) == {"configurationItems"} <= set(config_shape.members)
        (item,) = document["configurationItems"]
        assert set(item) <= set(item_shape.members) and item["resourceId"] == eni
        assert isinstance(item["configuration"], str) and json.loads(item["configuration"])["vpcId"] == vpc
        assert datetime.fromisoformat(item["configurationItemCaptureTime"]).tzinfo is not None
    trail_shape = model("cloudtrail").operation_model("LookupEvents").output_shape
    events = json.loads((out / LOOKUP_FILE).read_text())
    assert set(events) == {"Events"} <= set(trail_shape.members)
    (event,) = events["Events"]
    assert set(event) <= set(trail_shape.members["Events"].member.members)
    assert event["Resources"] == [{"ResourceType": ENI_RESOURCE, "ResourceName": third}]
    assert json.loads(event["CloudTrailEvent"])["eventName"] == "CreateNetworkInterface"
    assert datetime.fromisoformat(event["EventTime"]).timestamp() == START + 7
    assert (out / "describe-network-interfaces.json").exists()
    assert {c.params.get("resourceType") for c in history.calls if c.operation != "LookupEvents"} == {
        ENI_TYPE
    }


def test_collect_history_ends_at_the_timeout(
    history: HistoryServer,
    moto_ec2: tuple[Any, str, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """CloudTrail throttles every call for ever: --timeout ends the run, exit 2, nothing written."""
    _, vpc, _ = moto_ec2
    history.records_enis = False
    history.throttle_forever("LookupEvents")
    began = time.monotonic()
    out = tmp_path / "out"
    argv = ["--out", str(out), "--history", "all", "--start", str(START), "--end", str(END), "--vpc", vpc]
    code, err = _collect([*argv, "--timeout", "3s"], capsys)
    assert code == 2 and "--timeout 3s" in err, err
    assert time.monotonic() - began < 20
    assert not out.exists()
    assert history.count("LookupEvents", error="ThrottlingException") >= 1


def test_the_deadline_stops_the_pacing_wait(history: HistoryServer) -> None:
    """A wait for the rate limit that would end after the deadline is not slept: it ends the run."""
    history.records_enis = False
    history.add_event("CreateNetworkInterface", START, resources=[(ENI_RESOURCE, "eni-5")])
    history.add_event("CreateNetworkInterface", START, resources=[(ENI_RESOURCE, "eni-6")])
    settings = AwsSettings(region=REGION, deadline=Deadline(5, option="5s"))
    slept: list[float] = []
    fetcher = _fetcher(settings, lookup_interval=60.0, sleep=slept.append)
    with pytest.raises(AwsError, match=r"--timeout 5s.*LookupEvents rate limit"):
        fetcher.fetch(HistoryRequest(("eni-5", "eni-6"), WINDOW))
    assert not slept and history.count("LookupEvents") == 1
