"""Run Logs Insights queries robustly and cheaply: a bounded number in flight with a queue of our own,
backoff, polling until Complete, retries of failed queries, adaptive splitting of full pages, StopQuery on
interrupt, and an account of queries, rows, records and bytes. With a :class:`ScanBudget` (``--max-bytes``)
every query is admitted against the bytes actually scanned so far: a split or a retry that could pass the
limit is refused (exit 2) before it starts, and the queries in flight are stopped.

Facts this relies on (DESIGN §7, CloudWatch Logs API reference):
* StartQuery ``startTime``/``endTime`` are epoch seconds, both inclusive;
* a GetQueryResults page holds at most 10,000 rows; newer APIs page with ``nextToken`` up to the query's
  ``limit`` (at most 100,000); a result as long as the limit may have been cut, so it is never trusted:
  the query is split (by time, then by log stream) until every part comes back below the limit;
* concurrency is a per-account quota: StartQuery raises LimitExceededException beyond it;
* a query runs at most 60 minutes and then ends ``Timeout``: it is split by time rather than retried.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sgadvisor.aws.control import Deadline, note_stopped
from sgadvisor.aws.cost import ScanBudget
from sgadvisor.errors import AwsError, CostLimitError

PAGE_ROWS = 10_000
MAX_LIMIT = 100_000
MAX_QUERY_CHARS = 10_000
_RETRYABLE_START = ("LimitExceededException", "ThrottlingException", "ServiceUnavailableException")
_TERMINAL_BAD = ("Failed", "Cancelled", "Timeout", "Unknown")


@dataclass(frozen=True)
class QueryTask:
    """One query over one time range; ``streams`` restricts it to some log streams (a key split)."""

    log_groups: tuple[str, ...]
    start: int  # epoch seconds, inclusive
    end: int  # epoch seconds, inclusive
    build: Callable[[Sequence[str]], str]  # streams → query text
    streams: tuple[str, ...] = ()
    label: str = ""
    attempt: int = 0
    source: int = 0  # which of the caller's inputs (e.g. log-group formats) this task queries
    time_splits: int = 0  # time splits in this task's lineage since its last split by stream
    # Rows that scale with time (one per interface and slot, the span query): split by time first, down
    # to this many seconds, before splitting by stream.
    time_slot: int | None = None
    # Bytes this query is expected to scan (--max-bytes): the caller's planning estimate; for a split
    # part, its share of what its parent actually scanned.
    estimated_bytes: int = 0

    @property
    def text(self) -> str:
        return self.build(self.streams)


@dataclass(frozen=True)
class TaskResult:
    task: QueryTask
    rows: list[dict[str, str | None]]
    statistics: dict[str, float]


@dataclass
class RunStats:
    """What the runs cost: reported in ``collection`` and on stderr."""

    queries: int = 0
    result_rows: int = 0
    records_scanned: int = 0
    bytes_scanned: int = 0
    splits_by_time: int = 0
    splits_by_stream: int = 0
    retries: int = 0


@dataclass
class RunnerSettings:
    max_concurrent: int = 4
    limit: int = MAX_LIMIT  # StartQuery limit; falls back to 10,000 where the API does not page
    max_attempts: int = 3  # per query, for Failed/Cancelled/Unknown results
    poll_initial: float = 1.0
    poll_max: float = 10.0
    start_backoff_max: float = 30.0
    min_split_seconds: int = 60
    split_full_pages: bool = True  # False for a user's own query: its result is returned capped, as is


@dataclass
class _InFlight:
    task: QueryTask
    query_id: str
    next_poll: float
    delay: float
    started: float = 0.0
    status: str = "Scheduled"  # as last seen, for the --timeout message
    token: int = 0  # its reservation in the run's ScanBudget


@dataclass
class InsightsRunner:
    """Runs tasks through a bounded pool; ``sleep``/``clock`` are injectable so tests never wait."""

    logs: Any
    settings: RunnerSettings = field(default_factory=RunnerSettings)
    progress: Callable[[str], None] = lambda message: None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    list_streams: Callable[[QueryTask], Sequence[str]] | None = None
    stats: RunStats = field(default_factory=RunStats)
    deadline: Deadline = field(default_factory=Deadline)  # --timeout: checked between polls
    _blocked: tuple[str, str, float] | None = field(default=None, init=False, repr=False)
    _budget: ScanBudget = field(default_factory=ScanBudget, init=False, repr=False)

    def run(self, tasks: Iterable[QueryTask], budget: ScanBudget | None = None) -> list[TaskResult]:
        """Every task's complete result (split parts included); StopQuery for everything in flight if
        interrupted (Ctrl-C) or failed, so no query keeps running and costing after we stop. ``budget``:
        each query (splits and retries too) is admitted against the bytes scanned so far (--max-bytes)."""
        self._budget = budget if budget is not None else ScanBudget()
        pending: deque[QueryTask] = deque(tasks)
        running: list[_InFlight] = []
        done: list[TaskResult] = []
        start_delay = 0.0
        try:
            while pending or running:
                self.deadline.check(lambda: self._waiting_for(running))
                while pending and len(running) < self.settings.max_concurrent:
                    task = pending.popleft()
                    token = self._budget.reserve(task.estimated_bytes, f"query {task.label}")
                    query_id = self._start(task)
                    if query_id is None:  # the account's concurrency quota is full: wait, then retry
                        self._budget.release(token)
                        pending.appendleft(task)
                        start_delay = min(max(2 * start_delay, 1.0), self.settings.start_backoff_max)
                        break
                    start_delay = 0.0
                    poll, now = self.settings.poll_initial, self.clock()
                    running.append(_InFlight(task, query_id, now + poll, poll, now, token=token))
                self._poll_due(running, pending, done)
                if pending or running:
                    blocked = bool(pending) and len(running) < self.settings.max_concurrent
                    self._wait(running, start_delay if blocked else 0.0)
        except CostLimitError as error:
            stopped = self._stop_all(running)
            if stopped:
                error.message += f"; stopped the queries still running ({', '.join(stopped)})"
                error.args = (error.message,)
            raise
        except BaseException as error:
            note_stopped(error, self._stop_all(running))
            raise
        return done

    # ------------------------------------------------------------------------------------ one query

    def _start(self, task: QueryTask) -> str | None:
        from botocore.exceptions import ClientError

        text = task.text
        if len(text) > MAX_QUERY_CHARS:
            raise AwsError(f"{task.label}: the query is {len(text):,} characters (Insights accepts 10,000)")
        try:
            response = self.logs.start_query(
                logGroupNames=list(task.log_groups),
                startTime=task.start,
                endTime=task.end,
                queryString=text,
                limit=self.settings.limit,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "InvalidParameterException" and self.settings.limit > PAGE_ROWS:
                # Older APIs accept at most 10,000 rows per query (no nextToken paging): use that.
                self.progress(f"StartQuery refused limit {self.settings.limit:,}: using {PAGE_ROWS:,}")
                self.settings.limit = PAGE_ROWS
                return self._start(task)
            if code in _RETRYABLE_START:
                self.progress(f"{code}: waiting for a query slot")
                if self._blocked is None or self._blocked[0] != task.label:
                    self._blocked = (task.label, code, self.clock())
                return None
            message = exc.response.get("Error", {}).get("Message", "")
            raise AwsError(f"StartQuery ({task.label}): {code}: {message}") from None
        self._blocked = None
        self.stats.queries += 1
        self.progress(f"query {self.stats.queries} started: {task.label}")
        query_id: str = response["queryId"]
        return query_id

    def _poll_due(self, running: list[_InFlight], pending: deque[QueryTask], done: list[TaskResult]) -> None:
        now = self.clock()
        for flight in list(running):
            if flight.next_poll > now:
                continue
            page = self._get_results(flight.query_id)
            if page is None:  # throttled beyond botocore's retries: back off and poll again later
                flight.status = "unanswered (GetQueryResults throttled)"
                flight.delay = min(flight.delay * 2, self.settings.poll_max)
                flight.next_poll = now + flight.delay
                continue
            status = page.get("status", "Unknown")
            if status in ("Scheduled", "Running"):
                flight.status = status
                flight.delay = min(flight.delay * 2, self.settings.poll_max)
                flight.next_poll = now + flight.delay
                continue
            running.remove(flight)
            statistics = page.get("statistics") or {}
            self._account(flight, statistics)
            if status == "Complete":
                rows, paged = self._all_rows(flight.query_id, page)
                self._complete(flight.task, rows, paged, statistics, pending, done)
            elif status == "Timeout":
                self._split(flight.task, pending, reason="timed out (60 minutes)", timed_out=True)
            else:
                self._retry(flight.task, status, pending)

    def _account(self, flight: _InFlight, statistics: dict[str, Any]) -> None:
        """What an ended query scanned (whatever its status: a failed one is billed too), in the stats and
        the budget; without statistics its estimate stands for it in the budget."""
        scanned = statistics.get("bytesScanned")
        self.stats.records_scanned += int(statistics.get("recordsScanned", 0))
        self.stats.bytes_scanned += int(scanned or 0)
        self._budget.settle(flight.token, scanned)

    def _get_results(self, query_id: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            page: dict[str, Any] = self.logs.get_query_results(queryId=query_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _RETRYABLE_START:
                self.progress("GetQueryResults throttled: backing off")
                return None
            raise
        return page

    def _all_rows(self, query_id: str, page: dict[str, Any]) -> tuple[list[dict[str, str | None]], bool]:
        """Every row of a complete query (following nextToken), and whether it came in several pages."""
        results = list(page.get("results", []))
        token = page.get("nextToken")
        paged = False
        while token:
            paged = True
            page = self.logs.get_query_results(queryId=query_id, nextToken=token)
            results += page.get("results", [])
            token = page.get("nextToken")
        rows = [{c["field"]: c.get("value") for c in row if c.get("field") != "@ptr"} for row in results]
        return rows, paged

    def _complete(
        self,
        task: QueryTask,
        rows: list[dict[str, str | None]],
        paged: bool,
        statistics: dict[str, float],
        pending: deque[QueryTask],
        done: list[TaskResult],
    ) -> None:
        # Full: as long as the limit, or one unpaged page of 10,000 (an API that stops at one page).
        full = len(rows) >= self.settings.limit or (len(rows) >= PAGE_ROWS and not paged)
        if full and self.settings.split_full_pages:
            # A page as long as the limit may have been cut: never trust it, split and run again.
            scanned = statistics.get("bytesScanned")
            self._split(task, pending, reason=f"returned {len(rows):,} rows, the limit",
                        scanned=None if scanned is None else int(scanned))  # fmt: skip
            return
        self.stats.result_rows += len(rows)
        done.append(TaskResult(task, rows, statistics))

    def _retry(self, task: QueryTask, status: str, pending: deque[QueryTask]) -> None:
        if task.attempt + 1 >= self.settings.max_attempts:
            raise AwsError(
                f"query {task.label} ended {status} {task.attempt + 1} times",
                hint="try again later, or narrow the window (--since/--start/--end)",
            )
        self.stats.retries += 1
        self.progress(f"query {task.label} ended {status}: retrying")
        pending.append(replace(task, attempt=task.attempt + 1))

    def _split(
        self,
        task: QueryTask,
        pending: deque[QueryTask],
        *,
        reason: str,
        timed_out: bool = False,
        scanned: int | None = None,
    ) -> None:
        """Split a task whose result may have been cut (or that timed out) into parts that each return less.

        Edges recur over time, so halving the range rarely halves them: time is tried once per task
        lineage (it helps when the data is time-local, and it is the cure for a 60-minute timeout), and a
        part that comes back full again is split by log stream, which the field index serves without
        rescanning the other streams. A single stream that is still full is split by time again; when
        neither can split further the run stops with an error: never a silent truncation.

        Each part is expected to scan its share of what the task scanned (``scanned``, its statistics;
        else the task's own estimate): by seconds for a time split, by streams for a stream split."""
        base = scanned if scanned is not None else task.estimated_bytes
        shortest = task.time_slot or self.settings.min_split_seconds
        can_time = task.end - task.start >= 2 * shortest
        single_stream = len(task.streams) == 1
        if can_time and (timed_out or task.time_splits == 0 or single_stream or task.time_slot):
            middle = task.start + (task.end - task.start) // 2
            self.stats.splits_by_time += 1
            self.progress(f"query {task.label} {reason}: splitting its time range")
            later = task.time_splits + 1
            seconds = task.end - task.start + 1
            first = _share(base, middle - task.start + 1, seconds)
            second = _share(base, task.end - middle, seconds)
            pending.appendleft(
                replace(task, end=middle, label=f"{task.label}[a]", attempt=0, time_splits=later,
                        estimated_bytes=first)
            )  # fmt: skip
            pending.appendleft(
                replace(task, start=middle + 1, label=f"{task.label}[b]", attempt=0, time_splits=later,
                        estimated_bytes=second)
            )  # fmt: skip
            return
        streams = list(task.streams) or list(self.list_streams(task) if self.list_streams else [])
        if len(streams) < 2:
            raise AwsError(
                f"query {task.label} {reason} even for one log stream and {task.end - task.start + 1} s",
                hint="more edges than Insights can return for one ENI: run on exported files with --flows",
            )
        parts = self._stream_parts(task, streams)
        self.stats.splits_by_stream += 1
        self.progress(
            f"query {task.label} {reason}: {len(streams)} log streams split into {len(parts)} parts"
        )
        for index, part in enumerate(parts, 1):
            # time_splits stays > 0: a full part splits by stream again before it splits by time.
            child = replace(
                task, streams=tuple(part), label=f"{task.label}[s{index}]", attempt=0, time_splits=1,
                estimated_bytes=_share(base, len(part), len(streams)),
            )  # fmt: skip
            pending.appendleft(child)

    def _stream_parts(self, task: QueryTask, streams: list[str]) -> list[list[str]]:
        """At least two parts, as few as the 10,000-character query limit allows."""
        base = len(task.build(()))
        per_stream = max(len(s) for s in streams) + 4  # quotes, comma, space
        overhead = len(" | filter @logStream in []") + 16
        capacity = max(1, (MAX_QUERY_CHARS - base - overhead) // per_stream)
        count = max(2, -(-len(streams) // capacity))
        size = -(-len(streams) // count)
        return [streams[i : i + size] for i in range(0, len(streams), size)]

    # ------------------------------------------------------------------------------------------ plumbing

    def _wait(self, running: list[_InFlight], start_delay: float) -> None:
        """Sleep until the next poll is due (or the next StartQuery attempt, when the quota was full)."""
        now = self.clock()
        candidates = [f.next_poll - now for f in running]
        if start_delay:
            candidates.append(start_delay)
        delay = max(0.0, min(candidates)) if candidates else 0.0
        delay = min(delay, max(self.deadline.remaining(), 0.0))  # wake up at the deadline
        if delay > 0:
            self.sleep(delay)

    def _stop_all(self, running: list[_InFlight]) -> list[str]:
        """StopQuery for every query in flight; the labels of those stopped."""
        stopped = []
        for flight in running:
            try:
                self.logs.stop_query(queryId=flight.query_id)
                self.progress(f"stopped query {flight.task.label}")
                stopped.append(flight.task.label)
            except Exception:
                self.progress(f"could not stop query {flight.query_id}")
        running.clear()
        return stopped

    def _waiting_for(self, running: list[_InFlight]) -> str:
        """What the run was waiting for, for the --timeout message."""
        now = self.clock()
        parts = [
            f"query {f.task.label} ({f.query_id}) was still {f.status} {now - f.started:.1f} s after "
            "StartQuery"
            for f in running
        ]
        if self._blocked is not None:
            label, code, since = self._blocked
            parts.append(f"StartQuery for {label} was refused with {code} for {now - since:.1f} s")
        return "; ".join(parts) or "waiting for Logs Insights"


def _share(total: int, part: int, whole: int) -> int:
    """``total`` bytes times ``part / whole``, rounded up (an estimate errs on the side of the limit)."""
    return -(-max(total, 0) * part // max(whole, 1))


def run_user_query(
    logs: Any,
    text: str,
    log_groups: Sequence[str],
    start: int,
    end: int,
    *,
    progress: Callable[[str], None] = lambda message: None,
    sleep: Callable[[float], None] = time.sleep,
    deadline: Deadline | None = None,
) -> Any:
    """Run a user's query (``sgadvisor query --log-group``) unchanged and return it as the offline
    executor's ``QueryResult``, so both print alike. The cap is the service's: 10,000 rows unless the
    query's ``limit`` says otherwise (up to 100,000, fetched with ``nextToken``)."""
    from sgadvisor.aws.clients import aws_errors
    from sgadvisor.insights.executor import QueryResult, QueryStatistics

    limit = _query_limit(text)
    runner = InsightsRunner(
        logs,
        settings=RunnerSettings(max_concurrent=1, limit=limit, split_full_pages=False),
        progress=progress,
        sleep=sleep,
        deadline=deadline or Deadline(),
    )
    task = QueryTask(tuple(log_groups), start, end, lambda streams: text, label="query")
    with aws_errors("running the Logs Insights query"):
        (result,) = runner.run([task])
    fields: list[str] = []
    for row in result.rows:
        fields += [f for f in row if f not in fields]
    statistics = result.statistics
    return QueryResult(
        fields=tuple(fields),
        rows=result.rows,
        statistics=QueryStatistics(
            records_scanned=int(statistics.get("recordsScanned", 0)),
            records_matched=int(statistics.get("recordsMatched", 0)),
            bytes_scanned=int(statistics.get("bytesScanned", 0)),
        ),
        warnings=(),
        limit=limit,
        capped=len(result.rows) >= limit,
    )


def _query_limit(text: str) -> int:
    """The query's own final ``| limit N``, else the service's default of 10,000. A ``limit`` earlier in
    the pipeline limits what later commands see, not the result, so it is not the result's cap."""
    import re

    found = re.search(r"(?:^|\|)\s*limit\s+(\d+)\s*$", text.strip(), flags=re.IGNORECASE)
    return min(int(found.group(1)), MAX_LIMIT) if found else PAGE_ROWS
