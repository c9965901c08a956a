"""Logs Insights cost: sgadvisor's plan (one scan of the window for every ENI, aggregation in the query)
against the naive plan people write by hand (one query per ENI), on a generated 2,000-ENI estate served by
the project's local CloudWatch Logs endpoint with the DESIGN §7 cost model.

    python bench/bench_insights.py [--enis 2000] [--out bench/results-insights.md]

Rows of the table:
* sgadvisor, paging API: StartQuery limit 100,000 with nextToken paging (the edge set fits one query);
* sgadvisor, 10,000-row API: the older API (one page, no paging) where the edge set exceeds the cap, so the
  runner splits (once by time, then by log stream): the overhead of key splitting;
* naive, ``@logStream =``: the seed's hand-written query per ENI (the field index skips other streams);
* naive, ``interfaceId =``: the same question filtered on the discovered field (no index: every query
  scans the whole window).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sgadvisor.aws.discovery import LogGroupFormat  # noqa: E402
from sgadvisor.aws.flows import read_insights, stream_lister  # noqa: E402
from sgadvisor.aws.insights import InsightsRunner, QueryTask, RunnerSettings, RunStats  # noqa: E402
from sgadvisor.flowlogs.edges import Window  # noqa: E402
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT  # noqa: E402
from tests.standins.cwl_estate import SyntheticEstate  # noqa: E402
from tests.standins.cwl_query import Behaviour  # noqa: E402
from tests.standins.cwl_server import CwlServer  # noqa: E402

GROUP = "vpc-flow-logs"


class _Clock:
    """The endpoint runs a query on the poll that finds it due, so polling need not wait in real time:
    sleeping advances this clock instead (wall time then measures the work, not the poll schedule)."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _runner(server: CwlServer, settings: RunnerSettings) -> InsightsRunner:
    logs = server.client()
    clock = _Clock()
    return InsightsRunner(
        logs, settings=settings, sleep=clock.sleep, clock=clock.time, list_streams=stream_lister(logs)
    )


def run_plan(
    server: CwlServer, estate: SyntheticEstate, settings: RunnerSettings
) -> tuple[RunStats, int, float]:
    runner = _runner(server, settings)
    began = time.perf_counter()
    read = read_insights(
        runner, [LogGroupFormat(GROUP, DEFAULT_FORMAT, (), (), ())], Window(estate.start, estate.end)
    )
    return runner.stats, read.flows.edges.height, time.perf_counter() - began


def run_naive(server: CwlServer, estate: SyntheticEstate, by_stream: bool) -> tuple[RunStats, float]:
    runner = _runner(server, RunnerSettings(max_concurrent=4, limit=10_000, split_full_pages=False))
    tasks = []
    for index in range(estate.enis):
        eni = estate.eni_id(index)
        where = f"filter @logStream = '{eni}-all'" if by_stream else f"filter interfaceId = '{eni}'"
        text = f"{where}\n| stats count(*) as num by srcAddr, dstAddr, dstPort"
        tasks.append(QueryTask((GROUP,), estate.start, estate.end - 1, _fixed(text), label=eni))
    began = time.perf_counter()
    runner.run(tasks)
    return runner.stats, time.perf_counter() - began


def _fixed(text: str) -> Callable[[Sequence[str]], str]:
    def build(streams: Sequence[str]) -> str:
        return text

    return build


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enis", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-insights.md")
    args = parser.parse_args(argv)
    estate = SyntheticEstate(enis=args.enis)
    events = estate.events()
    single_pass = int(sum(len(m.encode()) + 26 for m in events["message"]))
    rows: list[list[str]] = []
    with CwlServer() as server:
        server.ingest(GROUP, events)
        for label, behaviour, settings in (
            ("sgadvisor, paging API (limit 100,000)", Behaviour(), RunnerSettings()),
            (
                "sgadvisor, 10,000-row API (splits)",
                Behaviour(paginate=False, max_limit=10_000),
                RunnerSettings(),
            ),
        ):
            server.behaviour = behaviour
            stats, edges, seconds = run_plan(server, estate, settings)
            note = f"{edges:,} edges; {stats.splits_by_time} time + {stats.splits_by_stream} stream splits"
            rows.append(_row(label, stats, single_pass, seconds, note))
        server.behaviour = Behaviour()
        for label, by_stream in (("naive, one query per ENI (`@logStream =`)", True),
                                 ("naive, one query per ENI (`interfaceId =`)", False)):  # fmt: skip
            stats, seconds = run_naive(server, estate, by_stream)
            rows.append(_row(label, stats, single_pass, seconds, "counts only (no bytes, ports, flags)"))
    table = [
        f"{args.enis:,} ENIs, {len(events):,} events, {estate.edges:,} edges, window {estate.days} days; "
        f"single pass over the window = {single_pass:,} bytes (DESIGN §7 cost model of the local endpoint).",
        "",
        "| plan | queries | result rows | bytes scanned | vs single pass | wall s (local) | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    text = "\n".join(table) + "\n"
    print(text)
    args.out.write_text(text)
    return 0


def _row(label: str, stats: RunStats, single_pass: int, seconds: float, note: str) -> list[str]:
    return [
        label,
        f"{stats.queries:,}",
        f"{stats.result_rows:,}",
        f"{stats.bytes_scanned:,}",
        f"{stats.bytes_scanned / single_pass:.2f}x",
        f"{seconds:.1f}",
        note,
    ]


if __name__ == "__main__":
    raise SystemExit(main())
