"""A local CloudWatch Logs endpoint for tests: the real JSON 1.1 wire protocol, Insights run offline.

No AWS account exists where the tests run, and moto does not implement Logs Insights (DESIGN §8), so this
small threaded HTTP server stands in for ``logs.<region>.amazonaws.com``. boto3 reaches it exactly as it
reaches AWS, through ``endpoint_url``::

    with CwlServer() as server:
        logs = server.client()          # or boto3.client("logs", endpoint_url=server.endpoint_url, ...)
        logs.create_log_group(logGroupName="flows")
        load_flow_log_files(logs, "flows", [Path("sample_data/flows")])
        query_id = logs.start_query(logGroupName="flows", startTime=0, endTime=2**31, queryString=...)

Protocol (AWS JSON 1.1): ``POST /`` with ``X-Amz-Target: Logs_20140328.<Operation>`` and a JSON body;
errors are HTTP 400 with ``{"__type": "<ErrorCode>", "message": "…"}``. Request and response shapes follow
botocore's service model (``botocore/data/logs/2014-03-28/service-2.json``). Signatures are not checked.

Operations: CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogGroups, DescribeLogStreams,
StartQuery, GetQueryResults, StopQuery, DescribeQueries. Queries run with the project's offline Insights
executor (``sgadvisor.insights.executor``) or any callable given as ``executor``; the default one adds the
fields Insights discovers in flow-log lines and in JSON events (query logs; ``cwl_query.with_json_fields``). Statistics follow the
cost model of DESIGN §7 (see :meth:`LogStore.scan`). The switches are in :class:`Behaviour`; every call
is recorded in :attr:`CwlServer.calls`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import polars as pl

from sgadvisor.errors import SgAdvisorError
from sgadvisor.insights.executor import run_query, with_discovered_fields
from tests.standins.cwl_load import LoadSummary, load_flow_log_files
from tests.standins.cwl_query import (
    QUERY_STATUSES,
    Behaviour,
    Query,
    QueryOutput,
    has_stats,
    indexed_streams,
    with_json_fields,
)
from tests.standins.cwl_store import (
    EVENT_SCHEMA,
    QUERY_COLUMNS,
    ApiError,
    LogStore,
    Scan,
    check_group_name,
    check_stream_name,
    invalid,
    validation,
)

__all__ = [
    "ApiError",
    "Behaviour",
    "Call",
    "CwlServer",
    "Executor",
    "LoadSummary",
    "insights_executor",
    "load_flow_log_files",
]

TARGET_PREFIX = "Logs_20140328."  # service model metadata.targetPrefix
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_QUERY_CHARS = 10_000  # shape QueryString: max 10000
MAX_QUERY_GROUPS = 50  # StartQuery logGroupNames: "You can include up to 50 log groups"
DESCRIBE_LIMIT = 50  # shape DescribeLimit: 1..50, "the default is up to 50 items"
DESCRIBE_QUERIES_LIMIT = 1000  # shape DescribeQueriesMaxResults: 1..1000
QUERY_LANGUAGES = ("CWLI", "SQL", "PPL")  # shape QueryLanguage

T = TypeVar("T")


class ExecutorStatistics(Protocol):
    @property
    def records_matched(self) -> int: ...


class ExecutorResult(Protocol):
    """What the server needs of ``sgadvisor.insights.executor.QueryResult``."""

    @property
    def fields(self) -> tuple[str, ...]: ...

    @property
    def rows(self) -> list[dict[str, str | None]]: ...

    @property
    def statistics(self) -> ExecutorStatistics: ...


class Executor(Protocol):
    """Runs one query over the scanned events (columns ``@timestamp @message @logStream @log
    @ingestionTime``); raises :class:`SgAdvisorError` for a query it cannot compile."""

    def __call__(self, query: str, events: pl.DataFrame, *, default_limit: int) -> ExecutorResult: ...


def insights_executor(query: str, events: pl.DataFrame, *, default_limit: int) -> ExecutorResult:
    """The project's offline executor, with the fields Insights discovers in default-format flow logs and
    in JSON events (Route 53 Resolver query logs: ``rcode``, ``vpc_id``, ``srcids.instance``,
    ``answers.0.Rdata``, …; :func:`tests.standins.cwl_query.with_json_fields`)."""
    return run_query(query, with_json_fields(with_discovered_fields(events)), default_limit=default_limit)


@dataclass(frozen=True)
class Call:
    """One request as the endpoint saw it; ``error`` is the error code it answered with, if any."""

    operation: str
    params: dict[str, Any]
    error: str | None = None


@dataclass(frozen=True)
class _Pages:
    """How one query's results are served, fixed when it starts."""

    page_size: int
    paginate: bool
    row_cap: int


class CwlServer:
    """The endpoint: state, switches and the HTTP server. Start with ``with`` or :meth:`start`."""

    def __init__(
        self,
        *,
        behaviour: Behaviour | None = None,
        executor: Executor = insights_executor,
        account_id: str = "123456789012",
        region: str = "eu-west-1",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self.executor = executor
        self.account_id = account_id
        self.region = region
        self.clock = clock
        self.store = LogStore(account_id)
        self.failures: list[tuple[str, BaseException]] = []  # (queryId, exception) of queries that Failed
        self._calls: list[Call] = []
        self._queries: dict[str, Query] = {}
        self._pages: dict[str, _Pages] = {}
        self._lock = threading.RLock()
        self._address = (host, port)
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateLogGroup": self._create_log_group,
            "CreateLogStream": self._create_log_stream,
            "PutLogEvents": self._put_log_events,
            "DescribeLogGroups": self._describe_log_groups,
            "DescribeLogStreams": self._describe_log_streams,
            "StartQuery": self._start_query,
            "GetQueryResults": self._get_query_results,
            "StopQuery": self._stop_query,
            "DescribeQueries": self._describe_queries,
        }

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._http is None:
            self._http = _HttpServer(self._address, _Handler, self)
            self._thread = threading.Thread(
                target=self._http.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="cwl-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            if self._thread is not None:
                self._thread.join()
            self._http = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._http is None:
            raise RuntimeError("the endpoint is not started")
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, **config: Any) -> Any:
        """A boto3 ``logs`` client for this endpoint (dummy credentials; ``config``: a botocore Config's
        keyword arguments, e.g. ``retries={"mode": "standard", "max_attempts": 1}``)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "logs",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**config) if config else None,
        )

    def ingest(self, log_group: str, events: pl.DataFrame) -> None:
        """Put events (columns ``stream``, ``timestamp`` ms, ``message``) straight into ``log_group``,
        bypassing HTTP and the PutLogEvents checks; no call is recorded. For benchmarks with millions of
        events; tests load through the API (:func:`load_flow_log_files`), as a client would."""
        with self._lock:
            self.store.add_frame(log_group, events, self._now_ms())

    # ------------------------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[Call]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._calls)

    def calls_of(self, operation: str) -> list[Call]:
        return [call for call in self.calls if call.operation == operation]

    def count(self, operation: str, *, succeeded: bool = False) -> int:
        """How many calls of ``operation`` arrived (only those that succeeded when asked)."""
        return sum(1 for call in self.calls_of(operation) if not succeeded or call.error is None)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def query_status(self, query_id: str) -> str:
        """The status a query last reported (does not count as a poll)."""
        with self._lock:
            return self._query(query_id).status

    def active_queries(self) -> list[str]:
        """Ids of the queries that are Scheduled or Running: what the concurrency limit counts."""
        with self._lock:
            return [q.query_id for q in self._queries.values() if q.active]

    # ------------------------------------------------------------------------------------ dispatch

    def handle(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one request: (HTTP status, JSON payload). Used by the HTTP handler."""
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        params: dict[str, Any] = {}
        try:
            params = _json_body(body)
            handler = self._operations.get(operation)
            if handler is None:
                raise ApiError("UnknownOperationException", f"Operation {target!r} is not supported here")
            with self._lock:
                throttled = self.behaviour.should_throttle(operation)
            if throttled:
                raise ApiError("ThrottlingException", "Rate exceeded")
            payload = handler(params)
        except ApiError as error:
            self._record(operation or target, params, error.code)
            return error.status, {"__type": error.code, "message": error.message, **error.extra}
        except Exception as error:  # a bug here: say so loudly rather than look like a service fault
            self._record(operation, params, "InternalFailure")
            return 500, {"__type": "InternalFailure", "message": "".join(traceback.format_exception(error))}
        self._record(operation, params, None)
        return 200, payload

    def _record(self, operation: str, params: dict[str, Any], error: str | None) -> None:
        with self._lock:
            self._calls.append(Call(operation, params, error))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------------------------ log data

    def _create_log_group(self, params: dict[str, Any]) -> dict[str, Any]:
        name = check_group_name(params.get("logGroupName"))
        with self._lock:
            self.store.create_group(name, self._now_ms())
        return {}

    def _create_log_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        group = check_group_name(params.get("logGroupName"))
        stream = check_stream_name(params.get("logStreamName"))
        with self._lock:
            self.store.create_stream(group, stream, self._now_ms())
        return {}

    def _put_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = check_group_name(params.get("logGroupName"))
        stream = check_stream_name(params.get("logStreamName"))
        with self._lock:
            self.store.put_events(group, stream, params.get("logEvents") or [], self._now_ms())
            count = self.store.groups[group].streams[stream].events
        # The sequence token is ignored since 2023 (PutLogEvents API reference) but still returned.
        return {"nextSequenceToken": f"{count:056d}"}

    def _describe_log_groups(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix, pattern = params.get("logGroupNamePrefix"), params.get("logGroupNamePattern")
        identifiers = params.get("logGroupIdentifiers")
        if prefix is not None and pattern is not None:
            raise invalid("LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive.")
        if identifiers is not None and (prefix is not None or pattern is not None):
            raise invalid("logGroupIdentifiers cannot be combined with a name prefix or pattern.")
        limit = _int_param(params, "limit", 1, DESCRIBE_LIMIT, DESCRIBE_LIMIT)
        with self._lock:
            names = sorted(self.store.groups)
            if prefix is not None:
                start = check_group_name(prefix, "logGroupNamePrefix")
                names = [n for n in names if n.startswith(start)]
            if pattern is not None:
                names = [n for n in names if str(pattern) in n]
            if identifiers is not None:
                wanted = {_group_of_identifier(i) for i in identifiers}
                names = [n for n in names if n in wanted]
            page, token = _page(names, params.get("nextToken"), limit, "groups")
            groups = [self._group_info(name, brief=pattern is not None) for name in page]
        return {"logGroups": groups, **({"nextToken": token} if token else {})}

    def _group_info(self, name: str, *, brief: bool) -> dict[str, Any]:
        group = self.store.groups[name]
        arn = f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{name}"
        # "If you specify logGroupNamePattern … only arn, creationTime, and logGroupName are included".
        info: dict[str, Any] = {"logGroupName": name, "creationTime": group.creation_time, "arn": f"{arn}:*"}
        if not brief:
            info |= {
                "metricFilterCount": 0,
                "storedBytes": group.stored_bytes,
                "logGroupClass": "STANDARD",
                "logGroupArn": arn,
            }
        return info

    def _describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        name, identifier = params.get("logGroupName"), params.get("logGroupIdentifier")
        if (name is None) == (identifier is None):
            raise invalid("Specify exactly one of logGroupName and logGroupIdentifier.")
        group_name = check_group_name(name) if name is not None else _group_of_identifier(identifier)
        prefix = params.get("logStreamNamePrefix")
        order = params.get("orderBy", "LogStreamName")
        if order not in ("LogStreamName", "LastEventTime"):
            raise validation(
                "orderBy", order, "Member must satisfy enum value set: [LogStreamName, LastEventTime]"
            )
        if order == "LastEventTime" and prefix is not None:
            raise invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
        limit = _int_param(params, "limit", 1, DESCRIBE_LIMIT, DESCRIBE_LIMIT)
        with self._lock:
            if group_name not in self.store.groups:
                raise ApiError("ResourceNotFoundException", "The specified log group does not exist.")
            streams = list(self.store.groups[group_name].streams.values())
            if prefix is not None:
                streams = [s for s in streams if s.name.startswith(str(prefix))]
            if order == "LogStreamName":
                streams.sort(key=lambda s: s.name, reverse=bool(params.get("descending")))
            else:
                streams.sort(
                    key=lambda s: (s.last_event or 0, s.name), reverse=bool(params.get("descending"))
                )
            page, token = _page(streams, params.get("nextToken"), limit, "streams")
            arn = f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{group_name}:log-stream:"
            infos = [_stream_info(s, arn) for s in page]
        return {"logStreams": infos, **({"nextToken": token} if token else {})}

    # ------------------------------------------------------------------------------------ queries

    def _start_query(self, params: dict[str, Any]) -> dict[str, Any]:
        language = params.get("queryLanguage", "CWLI")
        if language not in QUERY_LANGUAGES:
            raise validation(
                "queryLanguage", language, "Member must satisfy enum value set: [CWLI, SQL, PPL]"
            )
        if language != "CWLI":
            raise invalid("This endpoint runs Logs Insights QL (CWLI) queries only.")
        start = _int_param(params, "startTime", 0, None, None)
        end = _int_param(params, "endTime", 0, None, None)
        query_string = params.get("queryString")
        if not isinstance(query_string, str):
            raise validation("queryString", query_string, "Member must not be null")
        if len(query_string) > MAX_QUERY_CHARS:
            raise validation(
                "queryString", "…", f"Member must have length less than or equal to {MAX_QUERY_CHARS}"
            )
        if end < start:
            raise invalid("End time should not be before the start time")
        with self._lock:
            behaviour = self.behaviour
            row_cap = behaviour.query_row_limit()
            limit = _int_param(params, "limit", 1, row_cap, min(behaviour.default_limit, row_cap))
            groups = self._query_groups(params)
        self._compile(query_string, limit)
        with self._lock:
            return {"queryId": self._admit(query_string, groups, start, end, limit, row_cap)}

    def _admit(
        self, query_string: str, groups: tuple[str, ...], start: int, end: int, limit: int, row_cap: int
    ) -> str:
        """Register a query unless the concurrency limit is reached (caller holds the lock)."""
        behaviour = self.behaviour
        running = sum(1 for q in self._queries.values() if q.active)
        if behaviour.max_concurrent is not None and running >= behaviour.max_concurrent:
            # The service's wording (StartQuery LimitExceededException at the concurrency quota).
            raise ApiError(
                "LimitExceededException",
                f"Account maximum query concurrency limit of [{behaviour.max_concurrent}] reached.",
            )
        query = Query(
            query_id=str(uuid.uuid4()),
            query_string=query_string,
            groups=groups,
            start_s=start,
            end_s=end,
            limit=limit,
            create_ms=self._now_ms(),
            started_at=self.clock(),
            latency=behaviour.latency(),
            outcome=behaviour.next_outcome(),
        )
        self._queries[query.query_id] = query
        self._pages[query.query_id] = _Pages(behaviour.page_size, behaviour.paginate, row_cap)
        return query.query_id

    def _query_groups(self, params: dict[str, Any]) -> tuple[str, ...]:
        """The log groups of StartQuery: exactly one of logGroupName, logGroupNames, logGroupIdentifiers."""
        given = [key for key in ("logGroupName", "logGroupNames", "logGroupIdentifiers") if key in params]
        if len(given) != 1:
            raise invalid(
                "Exactly one of logGroupName, logGroupNames or logGroupIdentifiers must be specified."
            )
        key = given[0]
        if key == "logGroupName":
            names = [check_group_name(params[key])]
        else:
            values = params[key]
            if not isinstance(values, list) or not values:
                raise validation(key, values, "Member must have length greater than or equal to 1")
            if len(values) > MAX_QUERY_GROUPS:
                raise invalid(f"You can include up to {MAX_QUERY_GROUPS} log groups in a query.")
            names = [
                check_group_name(v, key) if key == "logGroupNames" else _group_of_identifier(v)
                for v in values
            ]
        for name in names:
            self.store.group(name)  # ResourceNotFoundException for a missing group
        return tuple(dict.fromkeys(names))

    def _compile(self, query_string: str, limit: int) -> None:
        """Reject what the executor cannot compile as MalformedQueryException, as StartQuery does."""
        try:
            self.executor(
                query_string, pl.DataFrame(schema=EVENT_SCHEMA).select(QUERY_COLUMNS), default_limit=limit
            )
        except SgAdvisorError as error:
            compile_error: dict[str, Any] = {"message": error.message}
            offset = _char_offset(query_string, getattr(error, "line", None), getattr(error, "column", None))
            if offset is not None:
                compile_error["location"] = {"startCharOffset": offset, "endCharOffset": offset}
            raise ApiError(
                "MalformedQueryException", error.message, extra={"queryCompileError": compile_error}
            ) from error

    def _query(self, query_id: object) -> Query:
        query = self._queries.get(str(query_id))
        if query is None:
            raise ApiError("ResourceNotFoundException", f"Query {query_id} does not exist")
        return query

    def _get_query_results(self, params: dict[str, Any]) -> dict[str, Any]:
        max_items = _int_param(params, "maxItems", 0, 10_000, 0)
        with self._lock:
            query = self._query(params.get("queryId"))
            must_run = query.poll(self.clock())
        if must_run:
            self._finish(query)
        with self._lock:
            status, output = query.status, query.output
            pages = self._pages[query.query_id]
            response: dict[str, Any] = {"queryLanguage": "CWLI", "status": status}
            if status != "Complete" or output is None:
                response |= {"results": [], "statistics": _zero_statistics()}
                return response
            size = min(max_items or pages.page_size, pages.page_size)
            offset = _offset(params.get("nextToken"), f"results:{query.query_id}") if pages.paginate else 0
            rows = output.rows[offset : offset + size]
            response |= {"results": rows, "statistics": output.statistics}
            if pages.paginate and offset + size < len(output.rows):
                response["nextToken"] = _token(f"results:{query.query_id}", offset + size)
            return response

    def _finish(self, query: Query) -> None:
        """Run the query (outside the server lock) and settle its final status."""
        with query.run_lock:
            with self._lock:
                if query.output is not None or not query.active:
                    return  # a concurrent poll finished it, or StopQuery cancelled it meanwhile
                outcome = query.outcome
                scan = None
                if outcome == "Complete":
                    scan = self.store.scan(
                        query.groups, query.start_s, query.end_s, indexed_streams(query.query_string)
                    )
                row_cap = self._pages[query.query_id].row_cap
            error: BaseException | None = None
            output = QueryOutput([], _zero_statistics())
            if scan is not None:
                try:
                    output = self._execute(query, scan, row_cap)
                except Exception as failure:  # the query Fails, as a service-side error would make it
                    error, outcome = failure, "Failed"
            with self._lock:
                if error is not None:
                    self.failures.append((query.query_id, error))
                if query.active:
                    query.status, query.output, query.error = outcome, output, error
                    query.bytes_scanned = output.statistics.get("bytesScanned", 0.0)

    def _execute(self, query: Query, scan: Scan, row_cap: int) -> QueryOutput:
        result = self.executor(query.query_string, scan.events, default_limit=query.limit)
        with_ptr = not has_stats(query.query_string)
        rows = []
        for index, row in enumerate(result.rows[:row_cap]):
            fields = [{"field": f, "value": str(row[f])} for f in result.fields if row.get(f) is not None]
            if with_ptr and "@ptr" not in row:
                # Insights adds @ptr, an opaque pointer to the event, to rows that are not aggregates
                # (GetQueryResults API reference). GetLogRecord is not served here.
                ptr = base64.b64encode(f"{query.query_id}/{index}".encode()).decode()
                fields.append({"field": "@ptr", "value": ptr})
            rows.append(fields)
        statistics = {
            "recordsMatched": float(result.statistics.records_matched),
            "recordsScanned": float(scan.records_scanned),
            "estimatedRecordsSkipped": float(scan.records_skipped),
            "bytesScanned": float(scan.bytes_scanned),
            "estimatedBytesSkipped": float(scan.bytes_skipped),
            "logGroupsScanned": float(len(query.groups)),
            "resultCount": float(len(rows)),
        }
        return QueryOutput(rows, statistics)

    def _stop_query(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            query = self._query(params.get("queryId"))
            if not query.active:
                # "If the query has already ended, the operation returns an error indicating that the
                # specified query is not running" (StopQuery API reference).
                raise invalid(f"Query {query.query_id} is not running (status {query.status}).")
            query.status = "Cancelled"
        return {"success": True}

    def _describe_queries(self, params: dict[str, Any]) -> dict[str, Any]:
        status = params.get("status")
        if status is not None and status not in QUERY_STATUSES:
            raise validation(
                "status", status, f"Member must satisfy enum value set: [{', '.join(QUERY_STATUSES)}]"
            )
        group = params.get("logGroupName")
        limit = _int_param(params, "maxResults", 1, DESCRIBE_QUERIES_LIMIT, DESCRIBE_QUERIES_LIMIT)
        with self._lock:
            queries = [
                q
                for q in reversed(self._queries.values())  # most recent first
                if (status is None or q.status == status)
                and (group is None or group in q.groups)
                and params.get("queryLanguage", "CWLI") == "CWLI"
            ]
            page, token = _page(queries, params.get("nextToken"), limit, "queries")
            infos = [_query_info(q) for q in page]
        return {"queries": infos, **({"nextToken": token} if token else {})}


# ---------------------------------------------------------------------------------------- helpers


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except ValueError as error:
        raise ApiError("SerializationException", f"The request body is not JSON: {error}") from error
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object")
    return params


def _int_param(params: Mapping[str, Any], name: str, low: int, high: int | None, default: int | None) -> int:
    value = params.get(name, default)
    if value is None:
        raise validation(name, None, "Member must not be null")
    if not isinstance(value, int) or isinstance(value, bool):
        raise validation(name, value, "Member must be an integer")
    if value < low:
        raise validation(name, value, f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        raise validation(name, value, f"Member must have value less than or equal to {high}")
    return value


def _group_of_identifier(identifier: object) -> str:
    """A log group name from a name or an ARN ``arn:aws:logs:region:account:log-group:NAME`` (no ``:*``)."""
    text = str(identifier)
    if text.startswith("arn:"):
        parts = text.split(":", 6)
        if len(parts) < 7 or parts[5] != "log-group" or text.endswith("*"):
            raise invalid(f"Invalid log group identifier: {text}")
        text = parts[6]
    return check_group_name(text, "logGroupIdentifiers")


def _char_offset(query: str, line: object, column: object) -> int | None:
    """The 0-based character offset of a 1-based line and column (QueryCompileErrorLocation)."""
    if not isinstance(line, int) or not isinstance(column, int):
        return None
    lines = query.split("\n")
    return sum(len(text) + 1 for text in lines[: line - 1]) + column - 1


def _token(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": kind, "o": offset}).encode()).decode()


def _offset(token: object, kind: str) -> int:
    if token is None:
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(str(token)))
        if decoded["k"] == kind and isinstance(decoded["o"], int) and decoded["o"] >= 0:
            return int(decoded["o"])
    except (ValueError, KeyError, TypeError):
        pass
    raise invalid("The specified nextToken is invalid.")


def _page(items: Sequence[T], token: object, limit: int, kind: str) -> tuple[Sequence[T], str | None]:
    offset = _offset(token, kind)
    page = items[offset : offset + limit]
    return page, _token(kind, offset + limit) if offset + limit < len(items) else None


def _stream_info(stream: Any, arn_prefix: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "logStreamName": stream.name,
        "creationTime": stream.creation_time,
        "arn": f"{arn_prefix}{stream.name}",
        "storedBytes": 0,  # "As of June 17, 2019, this parameter is no longer supported … always 0"
    }
    if stream.events:
        info |= {
            "firstEventTimestamp": stream.first_event,
            "lastEventTimestamp": stream.last_event,
            "lastIngestionTime": stream.last_ingestion,
            "uploadSequenceToken": f"{stream.events:056d}",
        }
    return info


def _query_info(query: Query) -> dict[str, Any]:
    info: dict[str, Any] = {
        "queryLanguage": "CWLI",
        "queryId": query.query_id,
        "queryString": query.query_string,
        "status": query.status,
        "createTime": query.create_ms,
        "logGroupName": query.groups[0],
    }
    if query.status == "Complete":
        info["bytesScanned"] = query.bytes_scanned
    return info


def _zero_statistics() -> dict[str, float]:
    return {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}


# ---------------------------------------------------------------------------------------- HTTP


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: CwlServer):
        super().__init__(address, handler)
        self.app = app


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # One write per response with TCP_NODELAY: headers and body in separate segments would meet the
    # client's delayed ACK and cost ~40 ms a request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_POST(self) -> None:  # the name http.server dispatches to
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path not in ("/", ""):
            self._reply(
                404, {"__type": "UnknownOperationException", "message": f"No resource at {self.path}"}
            )
            return
        status, payload = self.server.app.handle(self.headers.get("X-Amz-Target", ""), body)
        self._reply(status, payload)

    def do_GET(self) -> None:
        self._reply(404, {"__type": "UnknownOperationException", "message": "POST JSON 1.1 requests to /"})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr lines of http.server."""
