"""A local Amazon Athena endpoint for tests: the real JSON 1.1 wire protocol, SQL executed by DuckDB.

moto's Athena returns canned results and executes no SQL (DESIGN §8), so this small threaded HTTP server
stands in for ``athena.<region>.amazonaws.com`` (and, on the same port, the one Glue call the scan
estimate makes). boto3 reaches it as it reaches AWS, through ``AWS_ENDPOINT_URL_ATHENA`` (and
``AWS_ENDPOINT_URL_GLUE``)::

    with AthenaServer(s3=moto_s3_client, output="s3://results/athena/") as server:
        server.register_table("flowdb", ddl_text, Path("sample_data/flows"), "s3://flow-bucket/")
        athena = server.client()

Protocols: AWS JSON 1.1 (``POST /`` with ``X-Amz-Target: AmazonAthena.<Operation>`` or
``AWSGlue.<Operation>`` and a JSON body), and REST-JSON for Athena, which newer botocore versions speak
(the operation from the method and path, e.g. ``GET /query-executions/{QueryExecutionId}``, routed by
botocore's own service model). Errors are HTTP 400 with ``{"__type": "<ErrorCode>", "Message": "…"}``
(and ``x-amzn-ErrorType``). Shapes follow botocore's service models (``athena/2017-05-18``,
``glue/2017-03-31``). Signatures are not checked.

Operations: StartQueryExecution, GetQueryExecution, GetQueryResults, StopQueryExecution,
GetTableMetadata, GetWorkGroup; Glue GetPartitions. A query runs on the poll that ends its RUNNING
phase (:class:`Behaviour`), through :func:`tests.standins.athena_engine.execute` (the SQL transpiled to
DuckDB, over the registered tables' files, partitions pruned by the query's own predicates).
``DataScannedInBytes`` is the size of the files of the partitions read. The result is served both ways,
like Athena: GetQueryResults pages (at most 1,000 rows, the header first) and the CSV written to the
output location in S3 (moto's S3 in the tests), ``<QueryExecutionId>.csv``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.standins.athena_engine import QueryError, QueryResult, Table, execute, result_csv

CONTENT_TYPE = "application/x-amz-json-1.1"
ATHENA_PREFIX = "AmazonAthena."
GLUE_PREFIX = "AWSGlue."
MAX_RESULTS = 1000  # GetQueryResults MaxResults: 1..1000
GLUE_PAGE = 50  # GetPartitions page size here (the real maximum is 1,000): paging is exercised
ENGINE = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Behaviour:
    """Switches: how a query runs and how the endpoint misbehaves."""

    running_polls: int = 1  # GetQueryExecution answers RUNNING this many times before the query runs
    throttle_starts: int = 0  # the next N StartQueryExecution calls: TooManyRequestsException
    throttle_polls: int = 0  # the next N GetQueryExecution calls: TooManyRequestsException
    # The next queries end FAILED: (retryable, message) each.
    failures: list[tuple[bool, str]] = field(default_factory=list)
    hang: bool = False  # queries stay RUNNING until stopped
    # What GetQueryExecution reports scanned: while RUNNING, this much so far; once ended, the bytes of
    # the partitions read times ``scan_factor`` (an estimate made from the S3 listing can be low).
    running_scanned: int = 0
    scan_factor: int = 1


@dataclass(frozen=True)
class Call:
    operation: str
    params: dict[str, Any]
    error: str | None = None


@dataclass
class _Execution:
    query_id: str
    query: str
    database: str | None
    catalog: str
    workgroup: str
    output: str  # the result CSV's s3:// URI
    submitted: float
    polls_left: int
    state: str = "QUEUED"
    completed: float | None = None
    result: QueryResult | None = None
    error: tuple[int, bool, str] | None = None  # (category, retryable, message)
    scanned: int = 0


class AthenaServer:
    """The endpoint: tables, workgroups, queries, switches and the HTTP server."""

    def __init__(
        self,
        *,
        s3: Any | None = None,
        output: str | None = "s3://athena-results/queries/",
        behaviour: Behaviour | None = None,
        region: str = "eu-west-1",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.s3 = s3
        self.behaviour = behaviour or Behaviour()
        self.region = region
        self.clock = clock
        self.tables: dict[tuple[str, str], Table] = {}
        self.workgroups: dict[str, str | None] = {"primary": output}
        self.executions: dict[str, _Execution] = {}
        self._tokens: dict[str, str] = {}
        self._calls: list[Call] = []
        self._lock = threading.RLock()
        self._address = (host, port)
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = _rest_routes()
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "StartQueryExecution": self._start,
            "GetQueryExecution": self._get_execution,
            "GetQueryResults": self._get_results,
            "StopQueryExecution": self._stop,
            "GetTableMetadata": self._table_metadata,
            "GetWorkGroup": self._get_workgroup,
            "GetPartitions": self._get_partitions,
        }

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._http is None:
            self._http = _HttpServer(self._address, _Handler, self)
            self._thread = threading.Thread(
                target=self._http.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="athena-server",
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

    def client(self, service: str = "athena", **config: Any) -> Any:
        """A boto3 client of ``athena`` (or ``glue``) for this endpoint, dummy credentials."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**config) if config else None,
        )

    # ------------------------------------------------------------------------------------ setup

    def register_table(self, database: str, ddl: str, root: Path, s3_root: str) -> Table:
        """Run a CREATE EXTERNAL TABLE in ``database``; ``root`` is the local folder that stands for the
        ``s3_root`` prefix (the table's LOCATION and template lie under it)."""
        table = Table.from_ddl(database.lower(), ddl, root, s3_root)
        table.create_time = self.clock()
        with self._lock:
            self.tables[(database.lower(), table.name.lower())] = table
        return table

    # ------------------------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def count(self, operation: str, *, succeeded: bool = False) -> int:
        return sum(1 for c in self.calls if c.operation == operation and (not succeeded or c.error is None))

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self.behaviour = Behaviour()

    def state(self, query_id: str) -> str:
        with self._lock:
            return self.executions[query_id].state

    # ------------------------------------------------------------------------------------ dispatch

    def handle(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        operation = target.split(".", 1)[1] if target.startswith((ATHENA_PREFIX, GLUE_PREFIX)) else ""
        params: dict[str, Any] = {}
        try:
            params = json.loads(body or b"{}")
            handler = self._operations.get(operation)
            if handler is None:
                raise ApiError("UnknownOperationException", f"Operation {target!r} is not supported here")
            payload = handler(params)
        except ApiError as error:
            self._record(operation or target, params, error.code)
            return error.status, {"__type": error.code, "Message": error.message}
        except Exception as error:  # a bug here: loud, not a service fault
            self._record(operation, params, "InternalServerException")
            return 500, {
                "__type": "InternalServerException",
                "Message": "".join(traceback.format_exception(error)),
            }
        self._record(operation, params, None)
        return 200, payload

    def handle_rest(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """A REST-JSON request: the operation from the method and path, its input from the path, the
        query string and the JSON body."""
        from urllib.parse import parse_qs, unquote, urlsplit

        parts = urlsplit(path)
        for route in self._routes:
            match = route.pattern.fullmatch(parts.path) if route.method == method else None
            if match is None:
                continue
            params: dict[str, Any] = json.loads(body) if body.strip() else {}
            for serialized, member in route.uri.items():
                params[member] = unquote(match.group(serialized))
            for serialized, values in parse_qs(parts.query).items():
                if serialized in route.query:
                    member, kind = route.query[serialized]
                    params[member] = int(values[0]) if kind == "integer" else values[0]
            return self.handle(ATHENA_PREFIX + route.operation, json.dumps(params).encode())
        return 404, {"__type": "UnknownOperationException", "Message": f"No route for {method} {parts.path}"}

    def _record(self, operation: str, params: dict[str, Any], error: str | None) -> None:
        with self._lock:
            self._calls.append(Call(operation, params, error))

    # ------------------------------------------------------------------------------------ Athena

    def _start(self, params: dict[str, Any]) -> dict[str, Any]:
        query = params.get("QueryString")
        if not isinstance(query, str) or not query:
            raise ApiError("InvalidRequestException", "QueryString must not be empty")
        if len(query.encode()) > 262_144:
            raise ApiError("InvalidRequestException", "Query string is too long (262144 bytes)")
        with self._lock:
            if self.behaviour.throttle_starts > 0:
                self.behaviour.throttle_starts -= 1
                raise ApiError("TooManyRequestsException", "Rate exceeded")
            token = params.get("ClientRequestToken")
            if token and token in self._tokens:
                return {"QueryExecutionId": self._tokens[token]}
            workgroup = params.get("WorkGroup") or "primary"
            if workgroup not in self.workgroups:
                raise ApiError("InvalidRequestException", f"WorkGroup {workgroup} is not found.")
            output = (params.get("ResultConfiguration") or {}).get("OutputLocation") or self.workgroups[
                workgroup
            ]
            if not output:
                raise ApiError(
                    "InvalidRequestException",
                    "No output location provided. An output location is required either through the "
                    "Workgroup result configuration setting or as an API input.",
                )
            context = params.get("QueryExecutionContext") or {}
            query_id = str(uuid.uuid4())
            failure = self.behaviour.failures.pop(0) if self.behaviour.failures else None
            execution = _Execution(
                query_id=query_id,
                query=query,
                database=context.get("Database"),
                catalog=context.get("Catalog", "AwsDataCatalog"),
                workgroup=workgroup,
                output=output.rstrip("/") + f"/{query_id}.csv",
                submitted=self.clock(),
                polls_left=self.behaviour.running_polls,
            )
            if failure is not None:
                execution.error = (3 if failure[0] else 2, failure[0], failure[1])
            self.executions[query_id] = execution
            if token:
                self._tokens[token] = query_id
        return {"QueryExecutionId": query_id}

    def _execution(self, params: dict[str, Any]) -> _Execution:
        query_id = params.get("QueryExecutionId")
        execution = self.executions.get(str(query_id))
        if execution is None:
            raise ApiError("InvalidRequestException", f"QueryExecution {query_id} was not found")
        return execution

    def _get_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self.behaviour.throttle_polls > 0:
                self.behaviour.throttle_polls -= 1
                raise ApiError("TooManyRequestsException", "Rate exceeded")
            execution = self._execution(params)
            must_run = False
            if execution.state in ("QUEUED", "RUNNING") and not self.behaviour.hang:
                if execution.polls_left > 0:
                    execution.polls_left -= 1
                    execution.state = "RUNNING"
                else:
                    must_run = True
            elif execution.state == "QUEUED":
                execution.state = "RUNNING"
        if must_run:
            self._run(execution)
        with self._lock:
            return {"QueryExecution": self._describe(execution)}

    def _run(self, execution: _Execution) -> None:
        if execution.error is None:
            with self._lock:
                tables = dict(self.tables)
            try:
                result = execute(execution.query, tables, execution.database)
            except QueryError as error:
                execution.error = (error.category, False, str(error))
            else:
                execution.result = result
                execution.scanned = result.scanned_bytes
                if self.s3 is not None:
                    self._write_output(execution.output, result)
        with self._lock:
            if execution.state in ("QUEUED", "RUNNING"):
                execution.state = "FAILED" if execution.error is not None else "SUCCEEDED"
                execution.completed = self.clock()

    def _write_output(self, uri: str, result: QueryResult) -> None:
        assert self.s3 is not None
        bucket, _, key = uri[len("s3://") :].partition("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=result_csv(result))
        # Athena writes a binary .metadata file beside the CSV; readers must ignore it.
        self.s3.put_object(Bucket=bucket, Key=key + ".metadata", Body=b"\x00metadata")

    def _describe(self, execution: _Execution) -> dict[str, Any]:
        status: dict[str, Any] = {"State": execution.state, "SubmissionDateTime": execution.submitted}
        if execution.completed is not None:
            status["CompletionDateTime"] = execution.completed
        if execution.state == "FAILED" and execution.error is not None:
            category, retryable, message = execution.error
            status["StateChangeReason"] = message
            status["AthenaError"] = {
                "ErrorCategory": category,
                "ErrorType": 1301 if category == 2 else 401,
                "Retryable": retryable,
                "ErrorMessage": message,
            }
        if execution.state == "CANCELLED":
            status["StateChangeReason"] = "Query was cancelled by user"
        elapsed = int(((execution.completed or self.clock()) - execution.submitted) * 1000)
        return {
            "QueryExecutionId": execution.query_id,
            "Query": execution.query,
            "StatementType": "DML",
            "ResultConfiguration": {"OutputLocation": execution.output},
            "QueryExecutionContext": {
                "Catalog": execution.catalog,
                **({"Database": execution.database} if execution.database else {}),
            },
            "Status": status,
            "Statistics": {
                "EngineExecutionTimeInMillis": elapsed,
                "DataScannedInBytes": self._scanned(execution),
                "TotalExecutionTimeInMillis": elapsed,
                "QueryQueueTimeInMillis": 0,
                "ServiceProcessingTimeInMillis": 0,
            },
            "WorkGroup": execution.workgroup,
            "EngineVersion": ENGINE,
        }

    def _scanned(self, execution: _Execution) -> int:
        if execution.state == "RUNNING":
            return self.behaviour.running_scanned
        return execution.scanned * self.behaviour.scan_factor

    def _get_results(self, params: dict[str, Any]) -> dict[str, Any]:
        size = int(params.get("MaxResults", MAX_RESULTS))
        if not 1 <= size <= MAX_RESULTS:
            raise ApiError("InvalidRequestException", f"MaxResults must be between 1 and {MAX_RESULTS}")
        with self._lock:
            execution = self._execution(params)
            if execution.state != "SUCCEEDED" or execution.result is None:
                raise ApiError(
                    "InvalidRequestException", f"Query has not yet finished. Current state: {execution.state}"
                )
            result = execution.result
        header: list[str | None] = [name for name, _ in result.columns]
        rows: list[list[str | None]] = [header, *result.rows]
        offset = int(params.get("NextToken") or 0)
        page = rows[offset : offset + size]
        payload: dict[str, Any] = {
            "UpdateCount": 0,
            "ResultSet": {
                "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in page],
                "ResultSetMetadata": {
                    "ColumnInfo": [
                        {
                            "CatalogName": "hive",
                            "SchemaName": "",
                            "TableName": "",
                            "Name": name,
                            "Label": name,
                            "Type": kind,
                            "Precision": 19 if kind == "bigint" else 2147483647,
                            "Scale": 0,
                            "Nullable": "UNKNOWN",
                            "CaseSensitive": kind == "varchar",
                        }
                        for name, kind in result.columns
                    ]
                },
            },
        }
        if offset + size < len(rows):
            payload["NextToken"] = str(offset + size)
        return payload

    def _stop(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            execution = self._execution(params)
            if execution.state in ("QUEUED", "RUNNING"):
                execution.state = "CANCELLED"
                execution.completed = self.clock()
        return {}

    def _table_metadata(self, params: dict[str, Any]) -> dict[str, Any]:
        database = str(params.get("DatabaseName", "")).lower()
        name = str(params.get("TableName", "")).lower()
        with self._lock:
            table = self.tables.get((database, name))
        if table is None:
            raise ApiError("MetadataException", f"Table {name} not found in database {database}")
        return {"TableMetadata": table.table_metadata()}

    def _get_workgroup(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("WorkGroup", "primary")
        if name not in self.workgroups:
            raise ApiError("InvalidRequestException", f"WorkGroup {name} is not found.")
        output = self.workgroups[name]
        configuration: dict[str, Any] = {"EngineVersion": ENGINE}
        if output:
            configuration["ResultConfiguration"] = {"OutputLocation": output}
        return {"WorkGroup": {"Name": name, "State": "ENABLED", "Configuration": configuration}}

    # ------------------------------------------------------------------------------------ Glue

    def _get_partitions(self, params: dict[str, Any]) -> dict[str, Any]:
        database = str(params.get("DatabaseName", "")).lower()
        name = str(params.get("TableName", "")).lower()
        with self._lock:
            table = self.tables.get((database, name))
        if table is None:
            raise ApiError("EntityNotFoundException", f"Table {name} not found.")
        keys = [n for n, _ in table.partition_keys]
        partitions = [
            {
                "Values": [p.values[k] for k in keys],
                "DatabaseName": database,
                "TableName": name,
                "StorageDescriptor": {"Location": table.s3_uri(p.files[0].parent) if p.files else ""},
            }
            for p in table.partitions()
        ]
        offset = int(params.get("NextToken") or 0)
        size = min(int(params.get("MaxResults", GLUE_PAGE)), GLUE_PAGE)
        payload: dict[str, Any] = {"Partitions": partitions[offset : offset + size]}
        if offset + size < len(partitions):
            payload["NextToken"] = str(offset + size)
        return payload


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: AthenaServer):
        super().__init__(address, handler)
        self.app = app


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_POST(self) -> None:  # the names http.server dispatches to
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        if target:  # AWS JSON 1.1 (Glue; Athena in botocore versions that speak it)
            status, payload = self.server.app.handle(target, body)
        else:  # REST-JSON (Athena in newer botocore versions)
            status, payload = self.server.app.handle_rest(self.command, self.path, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE if target else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if status >= 400 and "__type" in payload:
            self.send_header("x-amzn-ErrorType", str(payload["__type"]))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr lines of http.server."""


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    pattern: re.Pattern[str]
    uri: dict[str, str]  # serialized name → member name
    query: dict[str, tuple[str, str]]  # serialized name → (member name, shape type)


def _rest_routes() -> list[_Route]:
    """Athena's REST-JSON routes, from botocore's own service model (whichever protocol it speaks)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("athena")
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        path, _, _ = operation.http["requestUri"].partition("?")
        pieces = re.split(r"\{([^}]+)\}", path)  # literal, name, literal, name, …
        pattern = "".join(
            re.escape(piece)
            if index % 2 == 0
            else f"(?P<{piece.rstrip('+')}>{'.+' if piece.endswith('+') else '[^/]+'})"
            for index, piece in enumerate(pieces)
        )
        uri: dict[str, str] = {}
        query: dict[str, tuple[str, str]] = {}
        shape = operation.input_shape
        for member, member_shape in shape.members.items() if shape is not None else []:
            location = member_shape.serialization.get("location")
            serialized = member_shape.serialization.get("name", member)
            if location == "uri":
                uri[serialized] = member
            elif location == "querystring":
                query[serialized] = (member, member_shape.type_name)
        routes.append(_Route(name, operation.http["method"], re.compile(pattern + "/?"), uri, query))
    return routes
