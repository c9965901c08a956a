"""Flow edges from CloudWatch Logs Insights: the AWS flow source, producing exactly what files produce.

One scan of the window per log-group format, for every ENI at once (never one query per ENI); the
runner splits it only when a result may have been cut. The window ends ``--lag`` before now because
flow-log delivery lags 5-10 minutes (DESIGN §7). Before anything runs, the bytes to scan are estimated
from DescribeLogGroups (stored bytes times the window's share of the retained span) and ``--max-bytes``
refuses a run above its limit; while it runs, the limit holds on the bytes the queries actually scanned
(``sgadvisor.aws.cost.ScanBudget``): a split or retry that could pass it stops the run (exit 2).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sgadvisor.accounting import Ledger
from sgadvisor.aws.cost import ScanBudget
from sgadvisor.aws.discovery import LogGroupFormat
from sgadvisor.aws.edges_query import (
    INSIGHTS_SPAN_SECONDS,
    edge_query,
    rows_to_grouped,
    rows_to_spans,
    span_query,
)
from sgadvisor.aws.insights import InsightsRunner, QueryTask, RunStats
from sgadvisor.errors import AwsError
from sgadvisor.flowlogs.edges import DEFAULT_BUCKET, EdgeAggregator, FlowEdges, PortRange, Window

DAY = 86_400


@dataclass(frozen=True)
class InsightsRead:
    flows: FlowEdges
    stats: RunStats
    estimated_bytes: int


def insights_window(since: int, lag: int, now: float | None = None) -> Window:
    """``--since`` ending ``--lag`` before now, whole seconds, half-open like every window here."""
    end = int(now if now is not None else time.time()) - lag
    return Window(end - since, end)


def estimate_scan_bytes(
    logs: Any, log_groups: Sequence[str], window: Window, now: float | None = None
) -> int:
    """Stored bytes times (window / retained span), summed over the groups: the planning estimate.

    storedBytes is what the group keeps (compressed); Insights bills scanned, uncompressed bytes, so the
    real figure is usually higher. The estimate is a guard against surprises, not an invoice."""
    return sum(group_scan_bytes(logs, log_groups, window, now).values())


def group_scan_bytes(
    logs: Any, log_groups: Sequence[str], window: Window, now: float | None = None
) -> dict[str, int]:
    """:func:`estimate_scan_bytes` per log group: what one query of the window over it should scan."""
    from sgadvisor.aws.clients import aws_errors

    now_s = int(now if now is not None else time.time())
    out: dict[str, int] = {}
    for name in log_groups:
        with aws_errors(f"DescribeLogGroups {name}"):
            group = _find_log_group(logs, name)
        if group is None:
            raise AwsError(f"log group {name} does not exist", hint="check --log-group and --region")
        created = int(group.get("creationTime", 0)) // 1000
        retention = group.get("retentionInDays")
        oldest = max(created, now_s - int(retention) * DAY) if retention else created
        span = max(now_s - oldest, 1)
        share = min(1.0, window.seconds / span)
        out[name] = int(int(group.get("storedBytes", 0)) * share)
    return out


def _find_log_group(logs: Any, name: str) -> dict[str, Any] | None:
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
        for group in page.get("logGroups", []):
            if group.get("logGroupName") == name:
                return dict(group)
    return None


def read_insights(
    runner: InsightsRunner,
    formats: Sequence[LogGroupFormat],
    window: Window,
    *,
    bucket: PortRange = DEFAULT_BUCKET,
    addresses: Mapping[str, Collection[str]] | None = None,
    max_bytes: int | None = None,
    now: float | None = None,
    with_spans: bool = True,
) -> InsightsRead:
    """Run the edge query over ``window`` for every format and fold the rows into flow edges; with
    ``with_spans`` also the span query, without which no interface has coverage (edges only).
    ``max_bytes`` refuses the run when the planning estimate is above it, and any query (a split, a retry)
    that could take the bytes actually scanned above it (exit 2, queries in flight stopped)."""
    groups = sorted({f.log_group for f in formats})
    per_group = group_scan_bytes(runner.logs, groups, window, now)
    # Each format's queries scan its whole group (a mixed group once per format); the span query scans
    # the window a second time.
    estimate = sum(per_group[f.log_group] for f in formats) * (2 if with_spans else 1)
    runner.progress(f"estimated scan: {estimate / 1e9:.2f} GB over {len(groups)} log groups")
    budget = ScanBudget(max_bytes)
    budget.plan(estimate, "the Logs Insights queries")
    ledger = Ledger()
    aggregator = EdgeAggregator(ledger=ledger, bucket=bucket, window=None)
    # Per format, the edge query and, unless only edges are wanted, the span query (when each interface's
    # records arrived: coverage is judged from them, DESIGN §5). Sources 2i and 2i+1 are format i's.
    tasks = []
    for index, fmt in enumerate(formats):
        edges_task = QueryTask(
            log_groups=(fmt.log_group,),
            start=window.start,
            end=window.end - 1,  # StartQuery's endTime is inclusive; our windows are half-open
            build=_builder(fmt, bucket),
            label=fmt.log_group,
            source=2 * index,
            estimated_bytes=per_group[fmt.log_group],
        )
        tasks.append(edges_task)
        if with_spans:
            tasks.append(
                replace(edges_task, build=_span_builder(fmt), label=f"{fmt.log_group} (spans)",
                        source=2 * index + 1, time_slot=INSIGHTS_SPAN_SECONDS)
            )  # fmt: skip
    results = runner.run(tasks, budget)
    for result in results:
        index, kind = divmod(result.task.source, 2)
        if kind == 0:
            fmt = formats[index]
            aggregator.add_grouped(rows_to_grouped(result.rows, fmt, aggregator), _flow_logs(fmt))
        else:
            aggregator.add_spans(rows_to_spans(result.rows))
    aggregator.source = "insights"
    flows = aggregator.finish(addresses)
    warnings = flows.warnings
    if budget.exceeded:  # every query was admitted, but some scanned more than their estimates
        warnings += (
            f"Logs Insights scanned {budget.scanned:,} bytes, above --max-bytes {max_bytes:,}: the queries "
            "scanned more than estimated",
        )
    return InsightsRead(replace(flows, window=window, warnings=warnings), runner.stats, estimate)


def _flow_logs(fmt: LogGroupFormat) -> str | None:
    """The flow logs that could have delivered the records of ``fmt`` (coverage's ``flow_logs``): every
    flow log writing that format into the log group. Those writing another format there are not among
    them: the query tells the formats' records apart (discovery refuses formats it cannot tell apart)."""
    ids = sorted({i for i in fmt.flow_log_ids if i})
    return ",".join(ids) or None


def _builder(fmt: LogGroupFormat, bucket: PortRange) -> Any:
    def build(streams: Sequence[str]) -> str:
        return edge_query(fmt, bucket, streams)

    return build


def _span_builder(fmt: LogGroupFormat) -> Any:
    def build(streams: Sequence[str]) -> str:
        return span_query(fmt, streams)

    return build


def stream_lister(logs: Any) -> Any:
    """For the runner's key split: every log stream of a task's groups (DescribeLogStreams costs no scan).
    All streams, not only the inventory's ENIs: records of unknown ENIs must not fall out of a split."""

    def list_streams(task: QueryTask) -> list[str]:
        names: set[str] = set()
        for group in task.log_groups:
            for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
                names.update(s["logStreamName"] for s in page.get("logStreams", []))
        return sorted(names)

    return list_streams
