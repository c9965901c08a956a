"""The Insights path at scale (issue 19, point 5), against the local CloudWatch Logs endpoint with events
put in directly (no moto, no sample: these run in seconds):

* split queries merge their distinct ports exactly: a run the runner splits by time and by stream gives
  the edges an unsplit run gives, and the files give, in every column (no more adding up of the parts'
  ``count_distinct``);
* ``--max-bytes`` holds on the bytes actually scanned, splits included: a split that could pass it stops
  the run with exit 2 before it starts, naming the bytes scanned so far, the estimate and the limit, and
  the queries in flight are stopped;
* result numbers are read however the service prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from sgadvisor.aws.cost import ScanBudget
from sgadvisor.aws.discovery import LogGroupFormat
from sgadvisor.aws.edges_query import insights_integer
from sgadvisor.aws.flows import InsightsRead, read_insights, stream_lister
from sgadvisor.aws.insights import InsightsRunner, RunnerSettings
from sgadvisor.errors import CostLimitError
from sgadvisor.flowlogs.edges import EDGE_KEY, Window
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from tests.conftest import DEFAULT_HEADER, default_line, write_lines
from tests.standins.cwl_server import Behaviour, CwlServer

T0 = 1_793_491_200  # 2026-11-01T00:00:00Z
DAY = 86_400
GROUP = "flows"


@dataclass
class FakeTime:
    now: float = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _events(lines: list[str]) -> pl.DataFrame:
    """Default-format lines as CloudWatch events: stream ``<eni>-all``, timestamp = start."""
    rows = [(f"{line.split()[2]}-all", int(line.split()[10]) * 1000, line) for line in lines]
    return pl.DataFrame(rows, schema=["stream", "timestamp", "message"], orient="row").sort(
        "stream", "timestamp"
    )


def _read(
    server: CwlServer,
    window: Window,
    *,
    cap: int | None = None,
    addresses: dict[str, set[str]] | None = None,
    max_bytes: int | None = None,
    max_concurrent: int = 4,
    with_spans: bool = False,
) -> tuple[InsightsRead, InsightsRunner]:
    time = FakeTime()
    logs = server.client()
    settings = RunnerSettings(max_concurrent=max_concurrent, limit=cap or 100_000)
    runner = InsightsRunner(logs, settings=settings, sleep=time.sleep, clock=time.clock,
                            list_streams=stream_lister(logs))  # fmt: skip
    fmt = LogGroupFormat(GROUP, DEFAULT_FORMAT, (), (), ())
    read = read_insights(runner, [fmt], window, addresses=addresses, max_bytes=max_bytes,
                         with_spans=with_spans, now=window.end + 60)  # fmt: skip
    return read, runner


# ------------------------------------------------------------------------------- distinct ports


def _port_lines() -> tuple[list[str], dict[str, set[str]]]:
    """Three client ENIs, one edge each, over two days (a time split cuts each edge in two):
    A alternates two source ports all along (2 ports: each half alone counts 2, the halves added 4);
    B uses 40000/40001 the first day and 40001/40002 the second (3 ports, each half 2);
    C keeps one long-lived port (1). Records per edge: 8."""
    lines = []
    ports = {
        "eni-0aaaaaaaaaaaaaaa1": [40000, 40001] * 4,
        "eni-0aaaaaaaaaaaaaaa2": [40000, 40001, 40000, 40001, 40001, 40002, 40001, 40002],
        "eni-0aaaaaaaaaaaaaaa3": [40000] * 8,
    }
    addresses = {}
    for index, (eni, sports) in enumerate(sorted(ports.items()), 1):
        own = f"10.0.1.{index}"
        addresses[eni] = {own}
        for i, port in enumerate(sports):
            start = T0 + i * (DAY // 4) + 60
            lines.append(default_line(own, "10.0.2.15", port, 443, eni=eni, start=start))
    return lines, addresses


def test_split_queries_count_distinct_ports_as_the_unsplit_query_and_the_files(tmp_path: Path) -> None:
    lines, addresses = _port_lines()
    path = write_lines(tmp_path / "flows.log", sorted(lines), header=DEFAULT_HEADER)
    window = Window(T0, T0 + 2 * DAY)
    files = read_flows([path], IngestOptions(window=window), addresses=addresses).edges.sort(list(EDGE_KEY))
    with CwlServer(behaviour=Behaviour.row_cap(2)) as server:
        server.ingest(GROUP, _events(lines))
        split, runner = _read(server, window, cap=2, addresses=addresses)
        server.behaviour = Behaviour()
        whole, _ = _read(server, window, addresses=addresses)
    assert runner.stats.splits_by_time >= 1 and runner.stats.splits_by_stream >= 1
    split_edges, whole_edges = split.flows.edges.sort(list(EDGE_KEY)), whole.flows.edges.sort(list(EDGE_KEY))
    distinct = split_edges.select("interface_id", "local_port_distinct", "remote_port_distinct").rows()
    assert distinct == [
        ("eni-0aaaaaaaaaaaaaaa1", 2, 1),
        ("eni-0aaaaaaaaaaaaaaa2", 3, 1),
        ("eni-0aaaaaaaaaaaaaaa3", 1, 1),
    ]
    assert split_edges.equals(whole_edges)
    assert split_edges.equals(files)


def test_result_numbers_are_read_however_the_service_prints_them() -> None:
    texts = ["12", " 42 ", "9007199254740993", "3.0", "1.2E10", "1.2e+10", "1.0E7", "-", "", "abc", None]
    values = (
        pl.DataFrame({"t": texts}, schema={"t": pl.String}).select(insights_integer(pl.col("t"))).to_series()
    )
    assert values.to_list() == [12, 42, 9007199254740993, 3, 12_000_000_000, 12_000_000_000, 10_000_000,
                                None, None, None, None]  # fmt: skip


# ------------------------------------------------------------------------------------- --max-bytes


def _synthetic(server: CwlServer) -> Window:
    from tests.standins.cwl_estate import SyntheticEstate

    estate = SyntheticEstate(enis=40, services=4, days=2)
    server.ingest(GROUP, estate.events())
    return Window(estate.start, estate.end)


def test_forced_splits_scan_several_times_the_estimate_without_a_limit() -> None:
    """The measurement behind the limit: 320 edges under a cap of 100 rows split by time, then by stream;
    every part rescans what its parent scanned."""
    with CwlServer(behaviour=Behaviour.row_cap(100)) as server:
        window = _synthetic(server)
        read, runner = _read(server, window, cap=100)
    assert runner.stats.splits_by_time >= 1 and runner.stats.splits_by_stream >= 1
    assert runner.stats.bytes_scanned >= 2 * read.estimated_bytes
    assert read.flows.edges.height == 320


def test_max_bytes_stops_before_a_split_would_pass_it_and_stops_the_queries_in_flight() -> None:
    with CwlServer(behaviour=Behaviour.row_cap(100, running_polls=2)) as server:
        window = _synthetic(server)
        unlimited, runner = _read(server, window, cap=100)
        estimate, scanned = unlimited.estimated_bytes, runner.stats.bytes_scanned
        # Measured: the plan estimates 520,454 bytes (the group once); the splits scan 2,081,816 (4.0x).
        assert scanned >= 3 * estimate
        limit = estimate + (scanned - estimate) // 2  # the plan passes; the splits cannot all run
        server.reset_calls()
        time = FakeTime()
        logs = server.client()
        limited = InsightsRunner(logs, settings=RunnerSettings(limit=100, max_concurrent=4), sleep=time.sleep,
                                 clock=time.clock, list_streams=stream_lister(logs))  # fmt: skip
        fmt = LogGroupFormat(GROUP, DEFAULT_FORMAT, (), (), ())
        with pytest.raises(CostLimitError) as refused:
            read_insights(limited, [fmt], window, max_bytes=limit, with_spans=False, now=window.end + 60)
        message = refused.value.message
        assert refused.value.exit_code == 2
        assert "bytes scanned so far" in message and "would scan about" in message
        assert f"--max-bytes {limit:,}" in message
        assert f"{limited.stats.bytes_scanned:,} bytes scanned so far" in message
        # The limit held on what was actually scanned, and nothing is left running.
        assert limited.stats.bytes_scanned <= limit
        assert server.active_queries() == []
        started = server.count("StartQuery", succeeded=True)
        assert 1 <= started < runner.stats.queries
        assert "stopped the queries still running" in message
        assert server.count("StopQuery", succeeded=True) >= 1


def test_a_limit_the_splits_fit_in_lets_the_run_finish() -> None:
    with CwlServer(behaviour=Behaviour.row_cap(100)) as server:
        window = _synthetic(server)
        unlimited, runner = _read(server, window, cap=100)
        limit = 2 * runner.stats.bytes_scanned
        read, limited = _read(server, window, cap=100, max_bytes=limit)
    assert limited.stats.bytes_scanned == runner.stats.bytes_scanned <= limit
    assert read.flows.edges.equals(unlimited.flows.edges)


def test_the_plan_is_refused_before_any_query() -> None:
    with CwlServer() as server:
        window = _synthetic(server)
        with pytest.raises(CostLimitError, match=r"would scan about .* above --max-bytes 1,000"):
            _read(server, window, max_bytes=1000, with_spans=True)
        assert server.count("StartQuery") == 0


def test_the_scan_budget_counts_running_queries_and_settles_on_statistics() -> None:
    budget = ScanBudget(1000)
    first = budget.reserve(400, "query a")
    second = budget.reserve(500, "query b")
    with pytest.raises(CostLimitError, match=r"query c: 0 bytes scanned so far \(and about 900 more"):
        budget.reserve(200, "query c")
    budget.settle(first, 300)  # scanned less than estimated
    budget.release(second)  # never ran (the quota was full)
    third = budget.reserve(700, "query c")
    budget.settle(third, None)  # no statistics: the estimate stands for it
    assert budget.scanned == 1000 and budget.reserved == 0 and not budget.exceeded
    with pytest.raises(
        CostLimitError, match="1,000 bytes scanned so far; this query would scan about 1 more"
    ):
        budget.reserve(1, "query d")
    unlimited = ScanBudget()
    unlimited.settle(unlimited.reserve(10**15, "any"), 10**15)
    assert unlimited.scanned == 10**15 and not unlimited.exceeded
