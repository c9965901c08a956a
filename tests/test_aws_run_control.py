"""How an AWS run ends when it must: SIGTERM (what a CI timeout sends) and the whole-run ``--timeout``.

Real end-to-end runs: a ``sgadvisor`` subprocess talks with boto3 to moto's EC2 server and to the local
CloudWatch Logs endpoint, whose switches make a query stay Running for ever or throttle a call for ever.
What a user relies on: the run ends with exit 2 and one clear line, every query it started is stopped
(the endpoint saw StopQuery for it), and nothing is written. No assertion on wall-clock time other than a
generous upper bound on the deadline itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.aws.control import Deadline, TimeoutExceeded, aws_run
from tests.standins.cwl_server import Behaviour, CwlServer

REGION = "eu-west-1"
GROUP = "vpc-flow-logs"
ENI = "eni-0a1b2c3d4e5f60718"
STARTUP = 60.0  # seconds a subprocess may take to import and reach its first query (slow CI machines)


@dataclass(frozen=True)
class Stand:
    ec2_url: str
    logs: CwlServer
    vpc_id: str
    group_id: str  # the VPC's default security group
    start: int
    end: int
    known: frozenset[str] = frozenset()  # queries of earlier tests


@pytest.fixture(scope="module")
def stand() -> Iterator[Stand]:
    """One VPC in moto; a log group with a few default-format records in the local endpoint."""
    import boto3
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    ec2_url = f"http://{host}:{port}"
    ec2 = boto3.client(
        "ec2", region_name=REGION, endpoint_url=ec2_url, aws_access_key_id="x", aws_secret_access_key="x"
    )
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    group_id = groups["SecurityGroups"][0]["GroupId"]
    # One member ENI: an inventory without any is refused (exit 2) before the AWS flow part under test.
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ec2.create_network_interface(SubnetId=subnet_id, Groups=[group_id])
    server = CwlServer().start()
    now = int(time.time())
    logs = server.client()
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=f"{ENI}-all")
    lines = [
        f"2 123456789012 {ENI} 10.0.1.10 10.0.2.15 {50000 + i} 443 6 10 840 {now - 600 + i} "
        f"{now - 540 + i} ACCEPT OK"
        for i in range(5)
    ]
    events = [{"timestamp": (now - 600 + i) * 1000, "message": line} for i, line in enumerate(lines)]
    logs.put_log_events(logGroupName=GROUP, logStreamName=f"{ENI}-all", logEvents=events)
    try:
        yield Stand(ec2_url, server, vpc_id, group_id, now - 3600, now)
    finally:
        server.stop()
        moto.stop()


@pytest.fixture
def aws(stand: Stand) -> Stand:
    stand.logs.behaviour = Behaviour()
    stand.logs.reset_calls()
    return replace(stand, known=frozenset(q["queryId"] for q in _queries(stand.logs)))


def _env(stand: Stand) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "AWS_ENDPOINT_URL_EC2": stand.ec2_url,
        "AWS_ENDPOINT_URL_ROUTE53RESOLVER": stand.ec2_url,  # moto: no query logs
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": stand.logs.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "NO_COLOR": "1",
    }


def _command(stand: Stand, command: str, tmp_path: Path, *extra: str) -> list[str]:
    """``command`` in AWS mode (EC2 inventory, Insights flows) writing under ``tmp_path/out``."""
    window = ["--start", str(stand.start), "--end", str(stand.end)]
    groups = ["--log-group", GROUP]
    base = [sys.executable, "-m", "sgadvisor", command]
    if command == "recommend":
        args = ["--vpc", stand.vpc_id, *groups, *window, "--out", str(tmp_path / "out")]
    elif command == "check":
        baseline = tmp_path / "baseline.tf"
        baseline.write_text(
            'resource "aws_vpc_security_group_egress_rule" "all" {\n'
            f'  security_group_id = "{stand.group_id}"\n  ip_protocol = "-1"\n  cidr_ipv4 = "0.0.0.0/0"\n}}\n'
        )
        out = tmp_path / "out"
        args = ["--baseline", str(baseline), "--vpc", stand.vpc_id, *groups, *window]
        args += ["--sarif", str(out / "check.sarif"), "--markdown", str(out / "check.md")]
    elif command == "collect":
        args = ["--vpc", stand.vpc_id, *groups, *window, "--out", str(tmp_path / "out")]
        args += ["--flows-out", str(tmp_path / "out" / "edges.jsonl")]
    else:  # query
        args = ["stats count(*) as n by action", *groups, *window]
    return base + args + list(extra)


def _run(stand: Stand, cmd: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = subprocess.run(cmd, env=_env(stand), capture_output=True, text=True, timeout=STARTUP + 60)
    return done, time.monotonic() - began


def _queries(server: CwlServer) -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = server.client().describe_queries(logGroupName=GROUP)["queries"]
    return queries


def _assert_every_query_stopped(stand: Stand) -> None:
    """Every query this test's run started was stopped with StopQuery and is Cancelled."""
    server = stand.logs
    started = server.count("StartQuery", succeeded=True)
    stopped = {c.params.get("queryId") for c in server.calls_of("StopQuery") if c.error is None}
    queries = [q for q in _queries(server) if q["queryId"] not in stand.known]
    assert started >= 1 and len(queries) == started
    assert {q["queryId"] for q in queries} == stopped, "every query started must have been stopped"
    assert all(q["status"] == "Cancelled" for q in queries)
    assert server.active_queries() == []


# ------------------------------------------------------------------------------------------ switches


def test_stay_running_and_throttle_forever_switches(aws: Stand) -> None:
    """The endpoint's own switches, through boto3: a query that never ends until StopQuery; a call that
    is throttled every time."""
    logs = aws.logs.client(retries={"mode": "standard", "total_max_attempts": 1})
    aws.logs.behaviour.stay_running()
    query_id = logs.start_query(
        logGroupName=GROUP, startTime=aws.start, endTime=aws.end, queryString="stats count(*) as n"
    )["queryId"]
    assert {logs.get_query_results(queryId=query_id)["status"] for _ in range(20)} == {"Running"}
    logs.stop_query(queryId=query_id)
    assert logs.get_query_results(queryId=query_id)["status"] == "Cancelled"
    aws.logs.behaviour.throttle_forever(["DescribeLogGroups"])
    from botocore.exceptions import ClientError

    for _ in range(5):
        with pytest.raises(ClientError, match="ThrottlingException"):
            logs.describe_log_groups()
    assert logs.describe_log_streams(logGroupName=GROUP)["logStreams"]  # other operations are served


# ------------------------------------------------------------------------------------------ SIGTERM


def test_sigterm_stops_the_running_queries_and_exits_2(aws: Stand, tmp_path: Path) -> None:
    aws.logs.behaviour.stay_running()
    cmd = _command(aws, "recommend", tmp_path)
    process = subprocess.Popen(cmd, env=_env(aws), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Every query is in the runner's hands once the endpoint has been polled: terminate then.
        deadline = time.monotonic() + STARTUP
        while aws.logs.count("GetQueryResults") == 0:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never polled a query"
            time.sleep(0.05)
        assert aws.logs.active_queries(), "the queries must be running when SIGTERM arrives"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: stopped by SIGTERM"), stderr
    assert "StopQuery" in lines[0] and "nothing was written" in lines[0]
    assert "Traceback" not in stderr
    _assert_every_query_stopped(aws)
    assert not (tmp_path / "out").exists()


def test_sigterm_handler_is_installed_only_during_the_aws_run() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with aws_run(Deadline()):
        during = signal.getsignal(signal.SIGTERM)
    assert during is not before and callable(during)
    assert signal.getsignal(signal.SIGTERM) is before
    with aws_run(Deadline(), active=False):
        assert signal.getsignal(signal.SIGTERM) is before


# ------------------------------------------------------------------------------------------ --timeout


@pytest.mark.parametrize("command", ["recommend", "check", "collect", "query"])
def test_timeout_ends_a_query_stuck_in_running(aws: Stand, tmp_path: Path, command: str) -> None:
    aws.logs.behaviour.stay_running()
    done, took = _run(aws, _command(aws, command, tmp_path, "--timeout", "3s"))
    assert done.returncode == 2, done.stderr
    assert "error: --timeout 3s reached after" in done.stderr
    assert "was still Running" in done.stderr and "after StartQuery" in done.stderr
    assert "StopQuery" in done.stderr and "hint: raise --timeout" in done.stderr
    assert "Traceback" not in done.stderr
    _assert_every_query_stopped(aws)
    assert not (tmp_path / "out").exists()
    assert took < 3 + STARTUP


@pytest.mark.parametrize("operation", ["StartQuery", "GetQueryResults", "DescribeLogGroups"])
def test_timeout_ends_endless_throttling(aws: Stand, tmp_path: Path, operation: str) -> None:
    """Throttled for ever: botocore's retries and the runner's own backoff both end with the deadline."""
    aws.logs.behaviour.throttle_forever([operation])
    done, took = _run(aws, _command(aws, "recommend", tmp_path, "--timeout", "3s"))
    assert done.returncode == 2, done.stderr
    assert "error: --timeout 3s" in done.stderr and "Traceback" not in done.stderr
    assert operation in done.stderr or "StartQuery" in done.stderr, done.stderr
    assert "ThrottlingException" in done.stderr
    throttled = [c for c in aws.logs.calls_of(operation) if c.error == "ThrottlingException"]
    assert throttled, "the run must have met the throttling"
    if operation == "GetQueryResults":
        _assert_every_query_stopped(aws)
    else:
        assert aws.logs.active_queries() == []
    assert not (tmp_path / "out").exists()
    assert took < 3 + STARTUP


def test_timeout_ends_a_wait_for_a_query_slot_that_never_frees(aws: Stand, tmp_path: Path) -> None:
    """The account's concurrency quota stays full (other jobs' queries): StartQuery is refused with
    LimitExceededException every time, and the runner's own queue waits only until the deadline."""
    aws.logs.behaviour = Behaviour(max_concurrent=0)
    done, took = _run(aws, _command(aws, "recommend", tmp_path, "--timeout", "3s"))
    assert done.returncode == 2, done.stderr
    assert "error: --timeout 3s" in done.stderr and "StartQuery" in done.stderr
    assert "LimitExceededException" in done.stderr and "Traceback" not in done.stderr
    assert aws.logs.count("StartQuery") >= 1 and aws.logs.count("StartQuery", succeeded=True) == 0
    assert not (tmp_path / "out").exists()
    assert took < 3 + STARTUP


def test_zero_is_no_limit_and_the_clock_starts_with_the_first_client() -> None:
    """Library level: ``--timeout 0`` is no limit; the clock starts when the run's first AWS client is
    made (not when the options are parsed), and a passed deadline says what was awaited."""
    assert not Deadline(0).limited and Deadline(0).remaining() == float("inf")
    now = [100.0]
    deadline = Deadline(3, option="3s", clock=lambda: now[0])
    now[0] = 200.0  # parsing a baseline, say: not AWS time
    assert deadline.remaining() == 3 and not deadline.expired()
    deadline.start()
    now[0] = 205.0
    with pytest.raises(TimeoutExceeded, match=r"--timeout 3s reached after 5.0 s while waiting for X"):
        deadline.check(lambda: "waiting for X")
