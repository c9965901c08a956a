"""The local CloudWatch Logs endpoint, driven only through real boto3 clients (and raw HTTP for the wire).

What the Insights runner's tests rely on is pinned here: the JSON 1.1 protocol and error shapes, the log
data operations and their paginators, query results and statistics (the DESIGN §7 cost model), and
every switch of ``Behaviour``. No test looks at wall-clock time: latency is counted in polls, or in
seconds of an injected clock.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from botocore.exceptions import ClientError

from sgadvisor.accounting import Ledger
from sgadvisor.flowlogs.ingest import read_records
from sgadvisor.insights.executor import QueryStatistics
from tests.standins.cwl_load import default_format_events, load_flow_log_files
from tests.standins.cwl_query import Behaviour, indexed_streams
from tests.standins.cwl_server import CwlServer

REPO = Path(__file__).resolve().parent.parent
FLOWS = REPO / "sample_data" / "flows"
NAT_JSON = FLOWS / "cloudwatch" / "filter-log-events_nat-gateway_2026-11-03.json"
GROUP = "/vpc/flow-logs"
ALL_TIME = {"startTime": 0, "endTime": 2**31 - 1}
DAY_3 = {"startTime": 1793664000, "endTime": 1793750399}  # 2026-11-03T00:00:00Z .. 23:59:59Z


def logs(server: CwlServer, attempts: int = 1) -> Any:
    """A boto3 client exactly as a user would build one; no retries unless asked, so errors show."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "logs",
        endpoint_url=server.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def run(
    client: Any, query: str, *, group: str = GROUP, window: dict[str, int] = ALL_TIME, **params: Any
) -> dict[str, Any]:
    """Start a query and poll until it ends (bounded: the endpoint's latency is counted in polls)."""
    query_id = client.start_query(logGroupName=group, queryString=query, **{**window, **params})["queryId"]
    for _ in range(50):
        response: dict[str, Any] = client.get_query_results(queryId=query_id)
        if response["status"] not in ("Scheduled", "Running"):
            response["queryId"] = query_id
            return response
    raise AssertionError("query never ended")


def rows(response: dict[str, Any]) -> list[dict[str, str]]:
    return [{f["field"]: f["value"] for f in row} for row in response["results"]]


@pytest.fixture
def server() -> Iterator[CwlServer]:
    with CwlServer() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sample_server() -> Iterator[CwlServer]:
    """The sample data as one CloudWatch log group, loaded once (through PutLogEvents) per module."""
    with CwlServer() as endpoint:
        load_flow_log_files(logs(endpoint), GROUP, [FLOWS])
        yield endpoint


@pytest.fixture
def sample(sample_server: CwlServer) -> Iterator[CwlServer]:
    """The shared sample endpoint with default switches, fresh call records and no queries in flight."""
    sample_server.behaviour = Behaviour()
    sample_server.reset_calls()
    yield sample_server
    sample_server.behaviour = Behaviour()  # so that the clean-up below is never throttled
    client = logs(sample_server)
    for query_id in sample_server.active_queries():
        client.stop_query(queryId=query_id)


@pytest.fixture(scope="module")
def records() -> pl.DataFrame:
    """Ground truth straight from the files: every record with its default-format event."""
    frames = [
        pl.concat(
            [
                block.frame.select("interface-id", "srcaddr", "dstaddr", "dstport", "action"),
                default_format_events(block.frame),
            ],
            how="horizontal",
        )
        for block in read_records([FLOWS], Ledger())
    ]
    return pl.concat(frames).with_columns(size=pl.col("message").str.len_bytes() + 26)


def small_group(client: Any, name: str = "small", streams: int = 3, events: int = 4) -> None:
    """Streams ``s0…`` with ``events`` one-second-apart events each; message ``s<i> e<j>``."""
    client.create_log_group(logGroupName=name)
    for i in range(streams):
        client.create_log_stream(logGroupName=name, logStreamName=f"s{i}")
        batch = [{"timestamp": 1_000_000 + 1000 * j, "message": f"s{i} e{j}"} for j in range(events)]
        client.put_log_events(logGroupName=name, logStreamName=f"s{i}", logEvents=batch)


# ---------------------------------------------------------------------------------------- wire


def raw(server: CwlServer, target: str | None, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(server.endpoint_url + "/", data=body, method="POST")
    request.add_header("Content-Type", "application/x-amz-json-1.1")
    if target:
        request.add_header("X-Amz-Target", target)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_wire_protocol_is_json_1_1(server: CwlServer) -> None:
    status, headers, payload = raw(server, "Logs_20140328.CreateLogGroup", b'{"logGroupName": "g"}')
    assert (status, payload) == (200, {})
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-RequestId"]
    status, _, payload = raw(server, "Logs_20140328.CreateLogGroup", b'{"logGroupName": "g"}')
    assert status == 400
    assert payload == {
        "__type": "ResourceAlreadyExistsException",
        "message": "The specified log group already exists",
    }
    status, _, payload = raw(server, "Logs_20140328.DeleteEverything", b"{}")
    assert (status, payload["__type"]) == (400, "UnknownOperationException")
    status, _, payload = raw(server, "Logs_20140328.CreateLogGroup", b"{not json")
    assert (status, payload["__type"]) == (400, "SerializationException")
    assert [(c.operation, c.error) for c in server.calls] == [
        ("CreateLogGroup", None),
        ("CreateLogGroup", "ResourceAlreadyExistsException"),
        ("DeleteEverything", "UnknownOperationException"),
        ("CreateLogGroup", "SerializationException"),
    ]


def test_start_stop_and_endpoint_url() -> None:
    endpoint = CwlServer().start()
    assert endpoint.endpoint_url.startswith("http://127.0.0.1:")
    logs(endpoint).create_log_group(logGroupName="g")
    endpoint.stop()
    with pytest.raises(RuntimeError):
        _ = endpoint.endpoint_url


# ---------------------------------------------------------------------------------------- log data


def test_groups_streams_and_stored_bytes(server: CwlServer) -> None:
    client = logs(server)
    client.create_log_group(logGroupName="g")
    client.create_log_stream(logGroupName="g", logStreamName="a")
    events = [{"timestamp": 1000, "message": "hello"}, {"timestamp": 1000, "message": "héllo"}]
    assert client.put_log_events(logGroupName="g", logStreamName="a", logEvents=events)["nextSequenceToken"]
    (group,) = client.describe_log_groups()["logGroups"]
    # Event size = UTF-8 bytes of the message + 26 bytes of per-event overhead (PutLogEvents reference).
    assert group["storedBytes"] == (5 + 26) + (6 + 26)
    assert group["arn"] == "arn:aws:logs:eu-west-1:123456789012:log-group:g:*"
    assert group["logGroupArn"] == "arn:aws:logs:eu-west-1:123456789012:log-group:g"
    (stream,) = client.describe_log_streams(logGroupName="g")["logStreams"]
    assert (stream["logStreamName"], stream["firstEventTimestamp"], stream["lastEventTimestamp"]) == (
        "a",
        1000,
        1000,
    )
    only_names = client.describe_log_groups(logGroupNamePattern="g")["logGroups"]
    assert set(only_names[0]) == {"logGroupName", "creationTime", "arn"}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([{"timestamp": 2000, "message": "b"}, {"timestamp": 1000, "message": "a"}], "chronological order"),
        ([{"timestamp": 0, "message": "a"}, {"timestamp": 24 * 3600 * 1000 + 1, "message": "b"}], "24 hours"),
        (
            [{"timestamp": 0, "message": "x" * 600_000}, {"timestamp": 1, "message": "y" * 600_000}],
            "too large",
        ),
    ],
)
def test_put_log_events_rejects_bad_batches(server: CwlServer, events: list[Any], expected: str) -> None:
    client = logs(server)
    client.create_log_group(logGroupName="g")
    client.create_log_stream(logGroupName="g", logStreamName="a")
    with pytest.raises(ClientError) as error:
        client.put_log_events(logGroupName="g", logStreamName="a", logEvents=events)
    assert code(error) == "InvalidParameterException"
    assert expected in error.value.response["Error"]["Message"]
    assert client.describe_log_groups()["logGroups"][0]["storedBytes"] == 0


def test_missing_group_and_stream(server: CwlServer) -> None:
    client = logs(server)
    with pytest.raises(ClientError) as error:
        client.create_log_stream(logGroupName="nope", logStreamName="a")
    assert code(error) == "ResourceNotFoundException"
    client.create_log_group(logGroupName="g")
    with pytest.raises(ClientError) as error:
        client.put_log_events(
            logGroupName="g", logStreamName="a", logEvents=[{"timestamp": 0, "message": "m"}]
        )
    assert code(error) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        client.describe_log_streams(logGroupName="nope")
    assert code(error) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        client.create_log_group(logGroupName="bad name!")
    assert code(error) == "InvalidParameterException"


def test_describe_paginators(server: CwlServer) -> None:
    client = logs(server)
    names = [f"/flows/{i:02d}" for i in range(7)] + ["other"]
    for name in reversed(names):
        client.create_log_group(logGroupName=name)
    pages = list(
        client.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix="/flows/", PaginationConfig={"PageSize": 3}
        )
    )
    assert [len(p["logGroups"]) for p in pages] == [3, 3, 1]
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == names[:7]  # ASCII order
    for i in range(5):
        client.create_log_stream(logGroupName="other", logStreamName=f"eni-{i}-all")
    streams = client.get_paginator("describe_log_streams").paginate(
        logGroupName="other", PaginationConfig={"PageSize": 2}
    )
    assert [s["logStreamName"] for s in streams.build_full_result()["logStreams"]] == [
        f"eni-{i}-all" for i in range(5)
    ]
    with pytest.raises(ClientError) as error:
        client.describe_log_groups(nextToken="garbage")
    assert code(error) == "InvalidParameterException"


# ---------------------------------------------------------------------------------------- loading


def test_loader_reproduces_the_cloudwatch_delivery(sample: CwlServer) -> None:
    """The NAT gateway's stream holds exactly the events AWS delivered (the filter-log-events export)."""
    delivered = json.loads(NAT_JSON.read_text())["events"]
    stream = delivered[0]["logStreamName"]
    frame = sample.store.groups[GROUP].frame().filter(pl.col("@logStream") == stream)
    loaded = sorted(frame.select("@timestamp", "@message").iter_rows())
    assert loaded == sorted((e["timestamp"], e["message"]) for e in delivered)


def test_loader_streams_and_stored_bytes(sample: CwlServer, records: pl.DataFrame) -> None:
    client = logs(sample)
    streams = client.get_paginator("describe_log_streams").paginate(logGroupName=GROUP).build_full_result()
    assert {s["logStreamName"] for s in streams["logStreams"]} == set(records["stream"])
    (group,) = client.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    assert group["storedBytes"] == records["size"].sum()


def test_direct_load_matches_the_api_load(sample: CwlServer, records: pl.DataFrame) -> None:
    """The benchmark path (no HTTP) stores the same events as PutLogEvents does."""
    with CwlServer() as direct:
        summary = load_flow_log_files(direct, GROUP, [FLOWS], direct=True)
        assert (summary.events, summary.streams) == (records.height, records["stream"].n_unique())
        assert direct.calls == []
        stored = logs(direct).describe_log_groups()["logGroups"][0]["storedBytes"]
        assert stored == logs(sample).describe_log_groups()["logGroups"][0]["storedBytes"]
        query = "filter action = 'REJECT' | stats count(*) as n by @logStream, dstPort | sort n desc, dstPort"
        assert rows(run(logs(direct), query)) == rows(run(logs(sample), query))


# ---------------------------------------------------------------------------------------- queries


def test_seed_query_counts(sample: CwlServer, records: pl.DataFrame) -> None:
    rejects = records.filter(pl.col("action") == "REJECT")
    eni = rejects.group_by("interface-id").len().sort("len", descending=True)["interface-id"][0]
    query = (
        f"filter @logStream = '{eni}-all'\n| filter action='REJECT'\n"
        "| stats count(*) as num by srcAddr, dstAddr, dstPort"
    )
    response = run(logs(sample), query)
    assert response["status"] == "Complete"
    got = {(r["srcAddr"], r["dstAddr"], int(r["dstPort"])): int(r["num"]) for r in rows(response)}
    expected = rejects.filter(pl.col("interface-id") == eni).group_by("srcaddr", "dstaddr", "dstport").len()
    assert got == {(s, d, p): n for s, d, p, n in expected.iter_rows()}
    assert response["statistics"]["recordsMatched"] == sum(got.values())
    assert all("@ptr" not in r for r in rows(response))  # aggregates carry no @ptr


def test_plain_rows_carry_ptr_and_fields_in_order(sample: CwlServer) -> None:
    response = run(logs(sample), "fields srcAddr, dstAddr | filter action = 'ACCEPT' | limit 3")
    assert [[f["field"] for f in row] for row in response["results"]] == [["srcAddr", "dstAddr", "@ptr"]] * 3
    assert len({r["@ptr"] for r in rows(response)}) == 3


def test_cost_model_without_and_with_logstream_filter(sample: CwlServer, records: pl.DataFrame) -> None:
    client = logs(sample)
    in_day = records.filter((pl.col("timestamp") // 1000).is_between(DAY_3["startTime"], DAY_3["endTime"]))
    day_bytes = int(in_day["size"].sum())

    whole = run(client, "stats count(*) as n", window=DAY_3)["statistics"]
    assert whole["bytesScanned"] == day_bytes
    assert whole["recordsScanned"] == in_day.height == whole["recordsMatched"]
    assert whole["estimatedBytesSkipped"] == 0

    two = sorted(set(in_day["stream"]))[:2]
    streams_query = (
        f"filter @logStream in ['{two[0]}', \"{two[1]}\"] and action = 'ACCEPT' | stats count(*) as n"
    )
    picked = run(client, streams_query, window=DAY_3)["statistics"]
    wanted = in_day.filter(pl.col("stream").is_in(two))
    wanted_bytes = int(wanted["size"].sum())
    assert picked["bytesScanned"] == wanted_bytes
    assert picked["recordsScanned"] == wanted.height
    assert picked["estimatedBytesSkipped"] == day_bytes - wanted_bytes
    assert picked["estimatedRecordsSkipped"] == in_day.height - wanted.height

    # An `or` is not served by the index: the whole range is scanned.
    either = run(client, f"filter @logStream = '{two[0]}' or @logStream = '{two[1]}'", window=DAY_3)[
        "statistics"
    ]
    assert (either["bytesScanned"], either["estimatedBytesSkipped"]) == (day_bytes, 0)


def test_time_range_is_inclusive_whole_seconds(server: CwlServer) -> None:
    client = logs(server)
    small_group(client, streams=1, events=4)  # events at 1000, 1001, 1002, 1003 s
    first = run(client, "stats count(*) as n", group="small", startTime=1000, endTime=1001)
    second = run(client, "stats count(*) as n", group="small", startTime=1002, endTime=1003)
    assert rows(first) == rows(second) == [{"n": "2"}]


@pytest.mark.parametrize(
    ("query", "streams"),
    [
        ("filter @logStream = 'a'", {"a"}),
        ("filter 'a' = @logStream", {"a"}),
        ('FILTER `@logStream` == "a"', {"a"}),
        ("filter @logStream in ['a', 'b'] and action = 'REJECT'", {"a", "b"}),
        ("filter (@logStream in ['a', 'b'] and x = 1)\n| filter @logStream = 'b'", {"b"}),
        ("fields @message\n| filter @message like /a|b/ and @logStream = 'c'", {"c"}),
        ("# filter @logStream = 'x'\nfilter @logStream = 'y'", {"y"}),
        ("filter action = 'REJECT'\n  filter @logStream = 'a'", {"a"}),  # a new line starts a command
        ("filter @logStream = 'a' or @logStream = 'b'", None),
        ("filter @logStream not in ['a']", None),
        ("filter not @logStream = 'a'", None),
        ("filter @logStream like 'a'", None),
        ("filter @message = \"@logStream = 'a'\"", None),
        ("stats count(*) by @logStream | filter @logStream = 'a'", None),
        ("filter srcAddr = '10.0.0.1'", None),
    ],
)
def test_indexed_streams(query: str, streams: set[str] | None) -> None:
    assert indexed_streams(query) == (None if streams is None else frozenset(streams))


def test_log_group_names_and_identifiers(server: CwlServer) -> None:
    client = logs(server)
    small_group(client, "one", streams=1)
    small_group(client, "two", streams=2)
    query = "stats count(*) as n"
    by_names = client.start_query(logGroupNames=["one", "two"], queryString=query, **ALL_TIME)["queryId"]
    arn = "arn:aws:logs:eu-west-1:123456789012:log-group:two"
    by_ids = client.start_query(logGroupIdentifiers=["one", arn], queryString=query, **ALL_TIME)["queryId"]
    for query_id in (by_names, by_ids):
        response = client.get_query_results(queryId=query_id)
        assert rows(response) == [{"n": "12"}]
        assert response["statistics"]["logGroupsScanned"] == 2


# ---------------------------------------------------------------------------------------- errors


def test_query_errors(server: CwlServer) -> None:
    client = logs(server)
    small_group(client)

    def start_error(**params: Any) -> str:
        with pytest.raises(ClientError) as error:
            client.start_query(**{"queryString": "stats count(*)", **ALL_TIME, **params})
        return code(error)

    assert start_error(logGroupName="missing") == "ResourceNotFoundException"
    assert start_error(logGroupNames=["small", "missing"]) == "ResourceNotFoundException"
    assert start_error() == "InvalidParameterException"  # no log group at all
    assert start_error(logGroupName="small", logGroupNames=["small"]) == "InvalidParameterException"
    assert start_error(logGroupName="small", startTime=10, endTime=5) == "InvalidParameterException"
    assert start_error(logGroupName="small", limit=100_001) == "InvalidParameterException"
    assert start_error(logGroupName="small", queryString="x" * 10_001) == "InvalidParameterException"
    assert start_error(logGroupName="small", queryLanguage="SQL") == "InvalidParameterException"
    with pytest.raises(ClientError) as error:
        client.get_query_results(queryId="no-such-query")
    assert code(error) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        client.stop_query(queryId="no-such-query")
    assert code(error) == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "query",
    [
        "filter srcAddr = \n| stats count(*)",  # not Logs Insights at all
        "stats count(*) by\n  bin(5m",
        "unmask @message",  # Logs Insights, but outside the offline subset
    ],
)
def test_malformed_query(server: CwlServer, query: str) -> None:
    client = logs(server)
    small_group(client)
    with pytest.raises(ClientError) as error:
        client.start_query(logGroupName="small", queryString=query, **ALL_TIME)
    assert code(error) == "MalformedQueryException"
    assert error.value.response["Error"]["Message"]
    assert server.active_queries() == []


def test_malformed_query_location(server: CwlServer) -> None:
    client = logs(server)
    small_group(client)
    with pytest.raises(ClientError) as error:
        client.start_query(
            logGroupName="small", queryString="filter srcAddr = \n| stats count(*)", **ALL_TIME
        )
    location = error.value.response["queryCompileError"]["location"]
    assert location["startCharOffset"] == len("filter srcAddr = \n")


# ---------------------------------------------------------------------------------------- switches


def test_latency_in_polls(server: CwlServer) -> None:
    client = logs(server)
    small_group(client)
    server.behaviour = Behaviour(scheduled_polls=2, running_polls=1)
    query_id = client.start_query(logGroupName="small", queryString="stats count(*) as n", **ALL_TIME)[
        "queryId"
    ]
    statuses = []
    for _ in range(5):
        response = client.get_query_results(queryId=query_id)
        statuses.append(response["status"])
        if response["status"] != "Complete":
            assert response["results"] == []
    assert statuses == ["Scheduled", "Scheduled", "Running", "Complete", "Complete"]
    assert rows(response) == [{"n": "12"}]
    info = client.describe_queries()["queries"][0]
    assert (info["queryId"], info["status"], info["logGroupName"]) == (query_id, "Complete", "small")


def test_latency_in_seconds_of_an_injected_clock() -> None:
    now = [1_000.0]
    with CwlServer(
        clock=lambda: now[0], behaviour=Behaviour(scheduled_seconds=5, running_seconds=10)
    ) as server:
        client = logs(server)
        small_group(client)
        query_id = client.start_query(logGroupName="small", queryString="stats count(*)", **ALL_TIME)[
            "queryId"
        ]
        seen = []
        for advance in (0, 4, 1, 9, 1):
            now[0] += advance
            seen.append(client.get_query_results(queryId=query_id)["status"])
        assert seen == ["Scheduled", "Scheduled", "Running", "Running", "Complete"]


def test_row_cap_forces_full_pages(server: CwlServer) -> None:
    client = logs(server)
    small_group(client, streams=3, events=4)  # 12 events
    server.behaviour = Behaviour.row_cap(5)
    response = run(client, "fields @message", group="small")
    assert len(response["results"]) == 5 and "nextToken" not in response
    assert response["statistics"]["recordsMatched"] == 12  # more existed than the page shows
    assert len(rows(run(client, "fields @message", group="small", limit=2))) == 2
    with pytest.raises(ClientError) as error:
        client.start_query(logGroupName="small", queryString="fields @message", limit=6, **ALL_TIME)
    assert code(error) == "InvalidParameterException"
    # A query's own `limit` cannot raise the cap either.
    assert len(rows(run(client, "fields @message | limit 50", group="small"))) == 5


def test_paging_with_next_token(server: CwlServer) -> None:
    client = logs(server)
    small_group(client, streams=3, events=4)
    server.behaviour = Behaviour(page_size=5, max_limit=10, default_limit=10)
    query_id = client.start_query(logGroupName="small", queryString="fields @message", **ALL_TIME)["queryId"]
    first = client.get_query_results(queryId=query_id)
    second = client.get_query_results(queryId=query_id, nextToken=first["nextToken"])
    assert (len(first["results"]), len(second["results"]), "nextToken" in second) == (5, 5, False)
    messages = [r["@message"] for r in rows(first) + rows(second)]
    assert len(set(messages)) == 10
    small = client.get_query_results(queryId=query_id, maxItems=2)
    assert len(small["results"]) == 2 and small["nextToken"]

    server.behaviour = Behaviour(page_size=5, max_limit=10, default_limit=10, paginate=False)  # older API
    only = run(client, "fields @message", group="small")
    assert len(only["results"]) == 5 and "nextToken" not in only


def test_default_page_cap_is_the_services(server: CwlServer) -> None:
    behaviour = Behaviour()
    assert (behaviour.page_size, behaviour.default_limit, behaviour.max_limit) == (10_000, 10_000, 100_000)


def test_concurrency_limit(server: CwlServer) -> None:
    client = logs(server)
    small_group(client)
    server.behaviour = Behaviour(max_concurrent=2, scheduled_polls=1)
    start = {"logGroupName": "small", "queryString": "stats count(*)", **ALL_TIME}
    first = client.start_query(**start)["queryId"]
    second = client.start_query(**start)["queryId"]
    with pytest.raises(ClientError) as error:
        client.start_query(**start)
    assert code(error) == "LimitExceededException"
    assert client.get_query_results(queryId=first)["status"] == "Scheduled"  # still counts
    assert client.get_query_results(queryId=first)["status"] == "Complete"  # a slot is free
    third = client.start_query(**start)["queryId"]
    with pytest.raises(ClientError):
        client.start_query(**start)
    assert client.stop_query(queryId=second)["success"] is True  # StopQuery frees a slot too
    fourth = client.start_query(**start)["queryId"]
    assert sorted(server.active_queries()) == sorted([third, fourth])
    assert server.count("StartQuery") == 6 and server.count("StartQuery", succeeded=True) == 4


def test_stop_query(server: CwlServer) -> None:
    client = logs(server)
    small_group(client)
    server.behaviour = Behaviour(scheduled_polls=3)
    query_id = client.start_query(logGroupName="small", queryString="stats count(*)", **ALL_TIME)["queryId"]
    assert client.stop_query(queryId=query_id)["success"] is True
    assert client.get_query_results(queryId=query_id)["status"] == "Cancelled"
    with pytest.raises(ClientError) as error:
        client.stop_query(queryId=query_id)  # "the specified query is not running"
    assert code(error) == "InvalidParameterException"
    assert [c.params for c in server.calls_of("StopQuery")] == [{"queryId": query_id}] * 2


def test_throttling_next_calls(server: CwlServer) -> None:
    client = logs(server)
    small_group(client)
    server.behaviour.throttle(2, operations={"StartQuery"})
    start = {"logGroupName": "small", "queryString": "stats count(*)", **ALL_TIME}
    for _ in range(2):
        with pytest.raises(ClientError) as error:
            client.start_query(**start)
        assert code(error) == "ThrottlingException"
    client.describe_log_groups()  # other operations are not throttled
    client.start_query(**start)
    assert [c.error for c in server.calls_of("StartQuery")] == [
        "ThrottlingException",
        "ThrottlingException",
        None,
    ]


def test_throttling_probability_is_seeded(server: CwlServer) -> None:
    def pattern() -> list[bool]:
        with CwlServer(behaviour=Behaviour(throttle_probability=0.5, seed=7)) as endpoint:
            client = logs(endpoint)
            for _ in range(20):
                try:
                    client.describe_log_groups()
                except ClientError as error:
                    assert error.response["Error"]["Code"] == "ThrottlingException"
            return [call.error is not None for call in endpoint.calls]

    first = pattern()
    assert first == pattern()
    assert 0 < sum(first) < 20


def test_retries_see_throttling_through(server: CwlServer) -> None:
    """botocore's standard retry mode retries ThrottlingException: the call succeeds on attempt 2."""
    client = logs(server, attempts=2)
    server.behaviour.throttle(1, operations={"CreateLogGroup"})
    client.create_log_group(logGroupName="g")
    assert [c.error for c in server.calls] == ["ThrottlingException", None]


@pytest.mark.parametrize("outcome", ["Failed", "Timeout", "Cancelled", "Unknown"])
def test_forced_outcomes(server: CwlServer, outcome: str) -> None:
    client = logs(server)
    small_group(client)
    server.behaviour = Behaviour(running_polls=1)
    server.behaviour.force(outcome)
    forced = run(client, "stats count(*) as n", group="small")
    assert (forced["status"], forced["results"]) == (outcome, [])
    assert server.active_queries() == []
    assert run(client, "stats count(*) as n", group="small")["status"] == "Complete"  # only the next query
    with pytest.raises(ValueError):
        server.behaviour.force("Complete")


def test_executor_failure_fails_the_query() -> None:
    def broken(query: str, events: pl.DataFrame, *, default_limit: int) -> Any:
        if events.height:
            raise RuntimeError("boom")
        return FakeResult((), [], QueryStatistics(0, 0, 0))

    with CwlServer(executor=broken) as server:
        client = logs(server)
        small_group(client)
        response = run(client, "stats count(*)", group="small")
        assert response["status"] == "Failed"
        ((query_id, error),) = server.failures
        assert query_id == response["queryId"] and "boom" in str(error)


class FakeResult:
    def __init__(
        self, fields: tuple[str, ...], rows: list[dict[str, str | None]], statistics: QueryStatistics
    ):
        self.fields, self.rows, self.statistics = fields, rows, statistics


def test_injected_executor_gets_scanned_events_and_limit() -> None:
    seen: list[tuple[int, int]] = []

    def fake(query: str, events: pl.DataFrame, *, default_limit: int) -> FakeResult:
        seen.append((events.height, default_limit))
        values = [{"s": s, "m": None} for s in sorted(set(events["@logStream"]))]
        return FakeResult(("s", "m"), values, QueryStatistics(events.height, events.height, 0))

    with CwlServer(executor=fake) as server:
        client = logs(server)
        small_group(client)
        response = run(
            client, "filter @logStream = 's1' | stats count(*) by @logStream", group="small", limit=7
        )
    assert rows(response) == [{"s": "s1"}]  # null values are left out of a row, as the service does
    assert seen[-1] == (4, 7)  # the other streams were skipped by the index; StartQuery's limit passed


def test_describe_queries_filters_and_pages(server: CwlServer) -> None:
    client = logs(server)
    small_group(client, "one", streams=1)
    small_group(client, "two", streams=1)
    server.behaviour = Behaviour(scheduled_polls=1)
    ids = [
        client.start_query(logGroupName=group, queryString="stats count(*)", **ALL_TIME)["queryId"]
        for group in ("one", "two", "two")
    ]
    client.get_query_results(queryId=ids[0])
    client.get_query_results(queryId=ids[0])
    assert [q["queryId"] for q in client.describe_queries(logGroupName="two")["queries"]] == ids[:0:-1]
    assert [q["queryId"] for q in client.describe_queries(status="Complete")["queries"]] == [ids[0]]
    paged = client.get_paginator("describe_queries").paginate(PaginationConfig={"PageSize": 2})
    assert [q["queryId"] for q in paged.build_full_result()["queries"]] == ids[::-1]


def test_concurrent_clients(sample: CwlServer) -> None:
    """Several threads start and poll queries at once: each gets its own, right answer."""
    answers: dict[int, list[dict[str, str]]] = {}

    def worker(index: int) -> None:
        response = run(logs(sample), f"filter dstPort = {[443, 53, 22, 5432][index]} | stats count(*) as n")
        answers[index] = rows(response)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    alone = [
        rows(run(logs(sample), f"filter dstPort = {p} | stats count(*) as n")) for p in (443, 53, 22, 5432)
    ]
    assert [answers[i] for i in range(4)] == alone
