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
