"""Run the edge query in Athena: StartQueryExecution, GetQueryExecution until it ends, the result read
from GetQueryResults pages or from the CSV in the output location, StopQueryExecution when interrupted.

Facts this relies on (Athena API reference):
* StartQueryExecution takes the query string, the database (QueryExecutionContext), the workgroup and,
  optionally, the output location (ResultConfiguration.OutputLocation; else the workgroup's). It raises
  TooManyRequestsException when the account's quota of queries in flight is reached: botocore retries it
  (standard mode), and beyond that the runner waits and starts again. A ClientRequestToken makes a retried
  start idempotent;
* GetQueryExecution reports Status.State QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED, with
  Status.AthenaError (ErrorCategory, ErrorType, Retryable, ErrorMessage) when it failed, Statistics
  (DataScannedInBytes) and ResultConfiguration.OutputLocation (the result CSV's s3:// URI);
* GetQueryResults pages hold at most 1,000 rows, the first row of the first page the column names; for a
  large result the CSV in the output location is one S3 GET instead of a page per thousand rows;
* StopQueryExecution cancels a query (a cancelled query is billed for what it scanned until then).

Clients are created by the caller (sgadvisor.aws.clients.make_client: explicit retries, the run's
--timeout); nothing here creates one. ``sleep`` and ``clock`` are injectable so tests never wait.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import polars as pl

from sgadvisor.athena.ddl import TableScheme, from_table_metadata
from sgadvisor.athena.results import read_result_csv, rows_from_pages
from sgadvisor.aws.control import Deadline, note_stopped
from sgadvisor.aws.cost import ScanBudget
from sgadvisor.errors import AwsError, CostLimitError, UsageError

PAGE_ROWS = 1000  # GetQueryResults MaxResults: at most 1,000
_THROTTLED = ("TooManyRequestsException", "ThrottlingException")
ResultPath = Literal["auto", "pages", "s3"]


@dataclass
class AthenaSettings:
    """--athena-workgroup, --athena-output and how patiently to wait."""

    workgroup: str | None = None
    output_location: str | None = None  # s3://…/ (else the workgroup's)
    catalog: str = "AwsDataCatalog"
    poll_initial: float = 1.0
    poll_max: float = 10.0
    start_backoff_max: float = 30.0
    max_attempts: int = 3  # per query, for failures Athena marks Retryable
    results: ResultPath = "auto"  # auto: pages for one page of rows, else the CSV from S3


@dataclass
class AthenaStats:
    """What the queries cost: reported in ``collection`` and on stderr."""

    queries: int = 0
    result_rows: int = 0
    bytes_scanned: int = 0
    retries: int = 0
    execution_ids: list[str] = field(default_factory=list)


@dataclass
class AthenaRunner:
    """Runs queries one at a time (the edge query is one scan per table); ``s3`` reads result CSVs (and
    lists data for the scan estimate), optional when results come as pages."""

    athena: Any
    s3: Any | None = None
    settings: AthenaSettings = field(default_factory=AthenaSettings)
    progress: Callable[[str], None] = lambda message: None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    deadline: Deadline = field(default_factory=Deadline)
    stats: AthenaStats = field(default_factory=AthenaStats)
    # --max-bytes on the bytes Athena reports scanned (aws/cost.py): each query is admitted on its
    # estimate, and one that scans past the limit while it runs is stopped there.
    budget: ScanBudget = field(default_factory=ScanBudget)

    # ----------------------------------------------------------------------------------- metadata

    def table_scheme(self, database: str, table: str) -> TableScheme:
        """The table's scheme from GetTableMetadata (columns, partition keys, storage, projection)."""
        from sgadvisor.aws.clients import aws_errors

        request: dict[str, Any] = {
            "CatalogName": self.settings.catalog,
            "DatabaseName": database,
            "TableName": table,
        }
        if self.settings.workgroup:
            request["WorkGroup"] = self.settings.workgroup
        with aws_errors(f"GetTableMetadata {database}.{table}"):
            response = self.athena.get_table_metadata(**request)
        return from_table_metadata(response["TableMetadata"], database)

    # ----------------------------------------------------------------------------------- queries

    def run(
        self, query: str, *, database: str | None = None, label: str = "query", estimate: int = 0
    ) -> pl.DataFrame:
        """Run ``query`` to the end and return its result as text columns (results.py). Failures Athena
        marks retryable are retried; anything else is an AwsError. On any interruption (Ctrl-C,
        SIGTERM, --timeout, an error, the scan passing ``budget``) the query is stopped before the
        exception goes on. ``estimate``: the bytes it is expected to scan, admitted against ``budget``
        before it starts (each retry again, with what the failed attempt scanned counted)."""
        attempt = 0
        while True:
            token = self.budget.reserve(estimate, f"Athena query {label}")
            try:
                execution_id = self._start(query, database, label)
            except BaseException:
                self.budget.release(token)
                raise
            try:
                state, execution = self._wait(execution_id, label)
            except BaseException as error:
                self.budget.release(token)
                note_stopped(error, self._stop(execution_id, label))
                raise
            scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0) or 0)
            self.stats.bytes_scanned += scanned
            self.budget.settle(token, scanned)
            if state == "SUCCEEDED":
                result = self._result(execution_id, execution, label)
                self.stats.result_rows += result.height
                return result
            status = execution.get("Status", {})
            failure = status.get("AthenaError", {})
            reason = failure.get("ErrorMessage") or status.get("StateChangeReason") or state
            if state == "FAILED" and failure.get("Retryable") and attempt + 1 < self.settings.max_attempts:
                attempt += 1
                self.stats.retries += 1
                self.progress(f"Athena {label} failed ({reason}): retrying")
                continue
            raise AwsError(
                f"Athena query {label} ({execution_id}) ended {state}: {reason}",
                hint=_hint(str(reason)),
            )

    def _start(self, query: str, database: str | None, label: str) -> str:
        from botocore.exceptions import ClientError

        request: dict[str, Any] = {"QueryString": query, "ClientRequestToken": str(uuid.uuid4())}
        context = {"Catalog": self.settings.catalog, **({"Database": database} if database else {})}
        request["QueryExecutionContext"] = context
        if self.settings.workgroup:
            request["WorkGroup"] = self.settings.workgroup
        if self.settings.output_location:
            request["ResultConfiguration"] = {"OutputLocation": self.settings.output_location}
        delay = 0.0
        while True:
            self.deadline.check(lambda: f"StartQueryExecution for {label} was throttled")
            try:
                response = self.athena.start_query_execution(**request)
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                message = exc.response.get("Error", {}).get("Message", "")
                if code not in _THROTTLED:
                    raise AwsError(
                        f"StartQueryExecution ({label}): {code}: {message}", hint=_hint(message)
                    ) from None
                delay = min(max(2 * delay, 1.0), self.settings.start_backoff_max)
                self.progress(f"{code}: waiting {delay:.0f} s for a query slot")
                self._sleep(delay)
        self.stats.queries += 1
        execution_id: str = response["QueryExecutionId"]
        self.stats.execution_ids.append(execution_id)
        self.progress(f"Athena query {label} started ({execution_id})")
        return execution_id

    def _wait(self, execution_id: str, label: str) -> tuple[str, dict[str, Any]]:
        from botocore.exceptions import ClientError

        delay = self.settings.poll_initial
        started = self.clock()
        state = "QUEUED"
        while True:
            self.deadline.check(partial(self._waiting, label, execution_id, state, started))
            try:
                execution = self.athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _THROTTLED:
                    code = exc.response.get("Error", {}).get("Code", "")
                    raise AwsError(f"GetQueryExecution ({label}): {code}") from None
                self.progress("GetQueryExecution throttled: backing off")
            else:
                state = str(execution.get("Status", {}).get("State", "QUEUED"))
                if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    return state, execution
                self._check_scan(execution, label)
            self._sleep(delay)
            delay = min(delay * 2, self.settings.poll_max)

    def _check_scan(self, execution: dict[str, Any], label: str) -> None:
        """A running query reports what it scanned so far (GetQueryExecution ``Statistics``): past the
        limit, with what the ended queries scanned, it is refused now (``run`` stops it), not after."""
        limit = self.budget.limit
        running = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0) or 0)
        if limit is not None and self.budget.scanned + running > limit:
            raise CostLimitError(
                f"Athena query {label} had scanned {running:,} bytes while running "
                f"({self.budget.scanned:,} before it), above --max-bytes {limit:,}: stopped",
                hint="shorten the window (--since or --start/--end), or raise --max-bytes",
            )

    def _waiting(self, label: str, execution_id: str, state: str, started: float) -> str:
        """What the run was waiting for, for the --timeout message."""
        seconds = self.clock() - started
        return f"Athena query {label} ({execution_id}) was still {state} {seconds:.1f} s after it started"

    def _sleep(self, seconds: float) -> None:
        seconds = min(seconds, max(self.deadline.remaining(), 0.0))
        if seconds > 0:
            self.sleep(seconds)

    def _stop(self, execution_id: str, label: str) -> list[str]:
        """StopQueryExecution; the labels of the queries stopped (for the stopping error's message)."""
        try:
            self.athena.stop_query_execution(QueryExecutionId=execution_id)
        except Exception:  # stopping is best effort: the error on its way out says what happened
            self.progress(f"could not stop Athena query {execution_id}")
            return []
        self.progress(f"stopped Athena query {label} ({execution_id})")
        return [f"Athena {label}"]

    # ----------------------------------------------------------------------------------- results

    def _result(self, execution_id: str, execution: dict[str, Any], label: str) -> pl.DataFrame:
        from sgadvisor.aws.clients import aws_errors

        location = execution.get("ResultConfiguration", {}).get("OutputLocation")
        if self.settings.results == "s3":
            return self._csv(location, label)
        with aws_errors(f"GetQueryResults ({label})"):
            first = self.athena.get_query_results(QueryExecutionId=execution_id, MaxResults=PAGE_ROWS)
            more = bool(first.get("NextToken"))
            if self.settings.results == "auto" and more and self.s3 is not None and location:
                # A result of more than one page: one GET of the CSV instead of a call per 1,000 rows.
                return self._csv(location, label)
            return rows_from_pages(self._pages(execution_id, first), name=f"the result of {label}")

    def _csv(self, location: str | None, label: str) -> pl.DataFrame:
        from sgadvisor.aws.clients import aws_errors

        if self.s3 is None or not location:
            raise UsageError("reading a result from S3 needs an S3 client and the query's output location")
        with aws_errors(f"reading the result of {label} from {location}"):
            data = self._s3_object(location)
        return read_result_csv(data, name=location)

    def _pages(self, execution_id: str, page: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            yield page
            token = page.get("NextToken")
            if not token:
                return
            page = self.athena.get_query_results(
                QueryExecutionId=execution_id, MaxResults=PAGE_ROWS, NextToken=token
            )

    def _s3_object(self, uri: str) -> bytes:
        assert self.s3 is not None
        bucket, key = split_s3_uri(uri)
        body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    if not uri.startswith("s3://"):
        raise UsageError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _hint(message: str) -> str:
    lowered = message.lower()
    if "output location" in lowered or "outputlocation" in lowered:
        return "pass --athena-output s3://BUCKET/PREFIX/ or set the workgroup's query result location"
    if "access denied" in lowered or "not authorized" in lowered:
        return "the role needs the Athena, Glue and S3 permissions in docs/athena.md"
    if "bytes scanned limit" in lowered or "cutoff" in lowered:
        return "the workgroup's per-query data limit stopped it: narrow the window (--since/--start/--end)"
    return "see docs/athena.md; --print-sql shows the query, which can be run in the Athena console"
