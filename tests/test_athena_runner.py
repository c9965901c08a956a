"""Running the edge query against the local Athena endpoint: what a user relies on when Athena is slow,
busy or failing — throttled starts and polls are waited out, failures Athena marks retryable are retried
and others reported in one line, and an interrupt (Ctrl-C, SIGTERM, --timeout) leaves no query running.
"""

from __future__ import annotations

import gzip
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.athena.ddl import parse_ddl, render_ddl
from sgadvisor.athena.flows import AthenaTable, read_athena, table_scheme
from sgadvisor.athena.runner import AthenaRunner, AthenaSettings
from sgadvisor.aws.control import Deadline, RunStopped, TimeoutExceeded, aws_run
from sgadvisor.errors import AwsError
from sgadvisor.flowlogs.edges import Window
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT
from tests.standins.athena_estate import DATABASE, REGION, S3_ROOT, TEXT_LOCATION
from tests.standins.athena_server import AthenaServer, Behaviour

DAY0 = 1_793_491_200
WINDOW = Window(DAY0, DAY0 + 86_400)
LINES = [
    f"2 123456789012 eni-0a 10.0.1.10 10.0.2.15 40000 443 6 10 840 {DAY0 + 60} {DAY0 + 120} ACCEPT OK",
    f"2 123456789012 eni-0a 10.0.2.15 10.0.1.10 443 40000 6 8 640 {DAY0 + 60} {DAY0 + 120} ACCEPT OK",
    f"2 123456789012 eni-0b - - - - - - - {DAY0 + 60} {DAY0 + 600} - NODATA",
]


@dataclass
class FakeTime:
    """The runner's clock and sleep: sleeping advances time; ``on_sleep`` may interrupt."""

    now: float = 0.0
    sleeps: int = 0
    interrupt_after: int | None = None
    interrupt: type[BaseException] | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        if self.interrupt_after is not None and self.sleeps >= self.interrupt_after:
            if self.interrupt is None:
                os.kill(os.getpid(), signal.SIGTERM)  # as a CI timeout sends it
            else:
                raise self.interrupt


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AthenaServer]:
    root = tmp_path_factory.mktemp("s3")
    folder = root / "AWSLogs" / "123456789012" / "vpcflowlogs" / REGION / "2026" / "11" / "01"
    folder.mkdir(parents=True)
    name = f"123456789012_vpcflowlogs_{REGION}_fl-0123456789abcdef0_20261101T0000Z_00000000.log.gz"
    with gzip.open(folder / name, "wt") as handle:
        handle.write(" ".join(DEFAULT_FORMAT) + "\n" + "".join(f"{line}\n" for line in LINES))
    with AthenaServer(s3=None) as athena:
        athena.register_table(DATABASE, _ddl(), root, S3_ROOT)
        yield athena


def _ddl() -> str:
    return render_ddl(TEXT_LOCATION, DEFAULT_FORMAT, table="flows", regions=[REGION])


def _table() -> AthenaTable:
    return AthenaTable(parse_ddl(_ddl()).model_copy(update={"database": DATABASE}))


def _runner(
    server: AthenaServer, time: FakeTime | None = None, **behaviour: Any
) -> tuple[AthenaRunner, FakeTime]:
    server.reset()
    server.behaviour = Behaviour(**behaviour)
    time = time or FakeTime()
    # botocore tries once: the runner's own waiting is what is tested.
    client = server.client(retries={"mode": "standard", "total_max_attempts": 1})
    return AthenaRunner(client, sleep=time.sleep, clock=time.clock, settings=AthenaSettings()), time


def test_the_edges_come_through_the_api(server: AthenaServer) -> None:
    runner, _ = _runner(server, running_polls=3)
    read = read_athena(runner, [_table()], WINDOW)
    assert read.flows.edges.height == 2 and read.flows.accounting.used == 2
    assert read.flows.coverage["interface_id"].to_list() == ["eni-0a", "eni-0b"]
    assert read.flows.coverage["flow_logs"].to_list() == ["fl-0123456789abcdef0"] * 2
    assert runner.stats.queries == 1 and runner.stats.bytes_scanned > 0
    assert server.count("GetQueryExecution") == 4  # three RUNNING, then SUCCEEDED


def test_the_scheme_from_get_table_metadata_is_the_ddls(server: AthenaServer) -> None:
    runner, _ = _runner(server)
    from_api = table_scheme(f"{DATABASE}.flows", runner=runner)
    from_ddl = table_scheme(f"{DATABASE}.flows", ddl=_ddl())
    assert from_api == from_ddl.model_copy(update={"properties": from_api.properties})
    assert {k: v for k, v in from_api.properties.items() if k != "EXTERNAL"} == from_ddl.properties


def test_throttled_starts_and_polls_are_waited_out(server: AthenaServer) -> None:
    runner, time = _runner(server, throttle_starts=4, throttle_polls=3)
    read = read_athena(runner, [_table()], WINDOW)
    assert read.flows.edges.height == 2
    assert (
        server.count("StartQueryExecution") == 5 and server.count("StartQueryExecution", succeeded=True) == 1
    )
    assert runner.stats.queries == 1
    assert time.now >= 1 + 2 + 4 + 8  # backed off, doubling


def test_a_retryable_failure_is_retried(server: AthenaServer) -> None:
    runner, _ = _runner(server, failures=[(True, "INTERNAL_ERROR_QUERY_ENGINE")])
    read = read_athena(runner, [_table()], WINDOW)
    assert read.flows.edges.height == 2
    assert runner.stats.retries == 1 and server.count("StartQueryExecution") == 2


def test_a_query_error_is_one_line_naming_the_query(server: AthenaServer) -> None:
    runner, _ = _runner(
        server, failures=[(False, "COLUMN_NOT_FOUND: line 5:12: Column 'x' cannot be resolved")]
    )
    with pytest.raises(AwsError, match=r"ended FAILED: COLUMN_NOT_FOUND"):
        read_athena(runner, [_table()], WINDOW)
    assert server.count("StartQueryExecution") == 1


def test_ctrl_c_stops_the_query(server: AthenaServer) -> None:
    runner, _ = _runner(server, FakeTime(interrupt_after=3, interrupt=KeyboardInterrupt), hang=True)
    with pytest.raises(KeyboardInterrupt):
        read_athena(runner, [_table()], WINDOW)
    assert server.count("StopQueryExecution") == 1
    assert server.state(runner.stats.execution_ids[0]) == "CANCELLED"


def test_the_timeout_stops_the_query(server: AthenaServer) -> None:
    time = FakeTime()
    runner, _ = _runner(server, time, hang=True)
    runner.deadline = Deadline(30, clock=time.clock)
    runner.deadline.start()
    with pytest.raises(TimeoutExceeded, match="still RUNNING") as raised:
        read_athena(runner, [_table()], WINDOW)
    assert server.state(runner.stats.execution_ids[0]) == "CANCELLED"
    assert "stopped" in raised.value.message


def test_sigterm_stops_the_query(server: AthenaServer) -> None:
    time = FakeTime(interrupt_after=2)
    runner, _ = _runner(server, time, hang=True)
    deadline = Deadline()
    with pytest.raises(RunStopped, match="SIGTERM"), aws_run(deadline):
        read_athena(runner, [_table()], WINDOW)
    assert server.count("StopQueryExecution") == 1
    assert server.state(runner.stats.execution_ids[0]) == "CANCELLED"


def test_no_output_location_is_a_clear_error(server: AthenaServer) -> None:
    runner, _ = _runner(server)
    server.workgroups["nowhere"] = None
    runner.settings.workgroup = "nowhere"
    with pytest.raises(AwsError, match="output location") as raised:
        read_athena(runner, [_table()], WINDOW)
    assert raised.value.hint is not None and "--athena-output" in raised.value.hint


def test_results_read_as_pages_without_s3(server: AthenaServer, tmp_path: Path) -> None:
    """Without an S3 client (or --athena-output readable), the pages are followed to the end."""
    runner, _ = _runner(server)
    runner.settings.results = "auto"
    read_athena(runner, [_table()], WINDOW)
    assert server.count("GetQueryResults") == 1


def test_every_aws_call_is_allowed_by_the_example_iam_policy(
    no_aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`recommend` (and `edges`) online against the local Athena endpoint and moto's S3, the sample's S3
    delivery behind two tables (GetTableMetadata), --max-bytes (the S3 listing of the estimate), results
    in S3: every API operation, recorded through the clients sgadvisor builds, and every S3 object or
    bucket it touched are allowed by examples/iam-policy.json (bucket names as its placeholders)."""
    import fnmatch
    import json

    from moto.server import ThreadedMotoServer

    import sgadvisor.athena.source as athena_source
    import sgadvisor.aws.source as aws_source
    from sgadvisor.aws.clients import AwsSettings, make_client
    from sgadvisor.cli import main
    from sgadvisor.timeparse import format_instant
    from tests.conftest import REPO
    from tests.standins.athena_estate import BUCKET, text_tables, upload
    from tests.standins.sample_estate import WINDOW_END, WINDOW_START

    sample = REPO / "sample_data"
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://{host}:{port}")
    called: set[str] = set()
    touched: set[tuple[str, str]] = set()  # (IAM action, resource ARN) of the S3 calls
    s3_actions = {"ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket",
                  "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject"}  # fmt: skip

    def recording_client(session: Any, service: str, settings: AwsSettings) -> Any:
        client = make_client(session, service, settings)
        prefix = client.meta.service_model.signing_name  # "athena", "s3": the IAM service prefix

        def record(model: Any, **_: Any) -> None:
            called.add(f"{prefix}:{model.name}")

        def resource(params: dict[str, Any], model: Any, **_: Any) -> None:
            action = s3_actions.get(model.name, f"s3:{model.name}")
            key = f"/{params['Key']}" if "Key" in params else ""
            touched.add((action, f"arn:aws:s3:::{params.get('Bucket', '')}{key}"))

        client.meta.events.register("before-call", record)
        if prefix == "s3":
            client.meta.events.register("before-parameter-build.s3", resource)
        return client

    try:
        s3 = boto3_client("s3", f"http://{host}:{port}")
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}  # moto's state is per process
        for bucket in sorted({BUCKET, "athena-results"} - existing):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        upload(s3, sample / "flows")
        with AthenaServer(s3=s3, behaviour=Behaviour(running_polls=0)) as athena:
            tables = []
            for spec in text_tables(sample / "flows"):
                tables.append(athena.register_table(DATABASE, spec.ddl, sample / "flows", S3_ROOT).name)
            monkeypatch.setenv("AWS_ENDPOINT_URL_ATHENA", athena.endpoint_url)
            monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", athena.endpoint_url)
            monkeypatch.setattr(athena_source, "make_client", recording_client)
            monkeypatch.setattr(aws_source, "make_client", recording_client)
            common = [
                "--inventory", str(sample / "inventory"),
                *(a for name in tables for a in ("--athena-table", f"{DATABASE}.{name}")),
                "--athena-output", "s3://athena-results/sgadvisor/", "--max-bytes", "10GB",
                "--start", format_instant(WINDOW_START), "--end", format_instant(WINDOW_END), "-q",
            ]  # fmt: skip
            out = tmp_path / "out"
            for argv in (
                ["recommend", *common, "--internet", "port", "--format", "json", "--out", str(out)],
                ["edges", *common, "--out", str(tmp_path / "edges.jsonl")],
            ):
                with pytest.raises(SystemExit) as done:
                    main(argv)
                assert done.value.code in (0, None), argv
            assert athena.count("StartQueryExecution", succeeded=True) == 2 * len(tables)
    finally:
        moto.stop()
    recommendation = json.loads((out / "recommendation.json").read_text())
    assert recommendation["collection"]["source"] == "athena" and recommendation["security_groups"]
    assert '"kind":"edge"' in (tmp_path / "edges.jsonl").read_text()

    policy = json.loads((REPO / "examples" / "iam-policy.json").read_text())
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    expected = {"athena:GetTableMetadata", "athena:StartQueryExecution", "athena:GetQueryExecution",
                "athena:GetQueryResults", "s3:ListObjectsV2", "s3:GetObject"}  # fmt: skip
    assert expected <= called, sorted(called)
    called = {s3_actions.get(c.removeprefix("s3:"), c) if c.startswith("s3:") else c for c in called}
    assert called <= allowed, f"not in examples/iam-policy.json: {sorted(called - allowed)}"
    placeholders = {f"arn:aws:s3:::{BUCKET}": "arn:aws:s3:::FLOW-LOG-BUCKET",
                    "arn:aws:s3:::athena-results/sgadvisor": "arn:aws:s3:::RESULT-BUCKET/PREFIX",
                    "arn:aws:s3:::athena-results": "arn:aws:s3:::RESULT-BUCKET"}  # fmt: skip
    for action, arn in sorted(touched):
        for real, placeholder in placeholders.items():
            if arn == real or arn.startswith(real + "/"):
                arn = placeholder + arn.removeprefix(real)
                break
        assert any(
            action in statement["Action"]
            and any(fnmatch.fnmatchcase(arn, pattern) for pattern in statement["Resource"])
            for statement in policy["Statement"]
        ), f"{action} on {arn} is not allowed by examples/iam-policy.json"


def boto3_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
