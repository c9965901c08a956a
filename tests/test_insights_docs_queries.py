"""Every VPC-flow-log sample query of the CloudWatch Logs Insights documentation, run offline against
sample_data and compared with answers computed here independently: the files are read with gzip/json
and str.split, the answers with plain Python, never through the executor or the flow-log readers.

Sources (queries copied verbatim; only the NAT gateway placeholders are filled in as the page says):
- DOCS_EXAMPLES: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-examples.html
  ("Queries for Amazon VPC flow logs" and "Queries for NAT gateway")
- DOCS_SORT: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Sort.html
- DOCS_PARSE: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Parse.html
- CONSOLE: the sample queries the CloudWatch Logs Insights console offers under "VPC flow logs"
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData_RunSampleQuery.html
  describes that list)
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import polars as pl
import pytest

from sgadvisor.accounting import Ledger
from sgadvisor.insights import QueryResult, flow_log_events, run_query
from tests.conftest import REPO

FLOWS = REPO / "sample_data" / "flows"
DOCS_EXAMPLES = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-examples.html"
DOCS_SORT = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Sort.html"
DOCS_PARSE = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Parse.html"
CONSOLE = "CloudWatch Logs Insights console, Sample queries > VPC flow logs"

# The sample estate's NAT gateway (inventory/describe-network-interfaces.json) and VPC CIDR 10.0.0.0/16:
# DOCS_EXAMPLES says 'replace "x.x.x.x" with the private IP of your NAT gateway, and replace "y.y" with
# the first two octets of your VPC CIDR range'.
NAT_IP = "10.0.0.201"
VPC_PREFIX = "10.0."

Record = dict[str, Any]
_INTS = {"version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end"}
_DISCOVERED = {
    "version": "version",
    "account-id": "accountId",
    "interface-id": "interfaceId",
    "srcaddr": "srcAddr",
    "dstaddr": "dstAddr",
    "srcport": "srcPort",
    "dstport": "dstPort",
    "protocol": "protocol",
    "packets": "packets",
    "bytes": "bytes",
    "start": "startTime",
    "end": "endTime",
    "action": "action",
    "log-status": "logStatus",
}
_DEFAULT_FORMAT = list(_DISCOVERED)


# ---------------------------------------------------------------------------------------------- independent reading


def record_of(names: list[str], message: str, stream: str | None) -> Record:
    values = message.split(" ")
    assert len(values) == len(names), message
    raw = dict(zip(names, values, strict=True))
    record: Record = {"@message": message}
    for aws, name in _DISCOVERED.items():
        value = raw.get(aws, "-")
        record[name] = None if value == "-" else (int(value) if aws in _INTS else value)
    record["@timestamp"] = int(raw["start"])  # seconds; delivery stamps events with the record's start
    eni = raw.get("interface-id")
    record["@logStream"] = f"{eni}-all" if eni and eni != "-" else stream
    return record


@cache
def sample_records() -> tuple[Record, ...]:
    records: list[Record] = []
    for path in sorted(FLOWS.rglob("*.log.gz")):
        with gzip.open(path, "rt") as handle:
            header, *lines = handle.read().splitlines()
        records.extend(record_of(header.split(" "), line, None) for line in lines if line)
    for path in sorted(FLOWS.rglob("*.json")):
        for item in json.loads(path.read_text())["events"]:
            records.append(record_of(_DEFAULT_FORMAT, item["message"], item["logStreamName"]))
    return tuple(records)


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return flow_log_events([FLOWS], Ledger()).collect()


def run(query: str, events: pl.DataFrame) -> QueryResult:
    result = run_query(query, events)
    assert result.statistics.records_scanned == len(sample_records())
    return result


# ---------------------------------------------------------------------------------------------- independent answers


def group(records: Iterable[Record], keys: tuple[str, ...]) -> dict[tuple[Any, ...], list[Record]]:
    groups: dict[tuple[Any, ...], list[Record]] = defaultdict(list)
    for record in records:
        groups[tuple(record[k] for k in keys)].append(record)
    return groups


def total(records: list[Record], name: str) -> int:
    return sum(r[name] for r in records if r[name] is not None)


def assert_top(
    result: QueryResult, keys: tuple[str, ...], value: str, expected: dict[tuple[Any, ...], int], n: int
) -> None:
    """Top-n by value: every row's value is right for its key, and the values are the n largest
    (ties at the cut may be broken either way)."""
    assert len(result.rows) == min(n, len(expected))
    for row in result.rows:
        key = tuple(row[k] for k in keys)
        assert row[value] == str(expected[key]), row
    got = [int(str(row[value])) for row in result.rows]
    assert got == sorted(expected.values(), reverse=True)[:n]


def src_in_192_0_2(record: Record) -> bool:
    addr = record["srcAddr"]
    return addr is not None and re.fullmatch(r"192\.0\.2\.\d+", addr) is not None


# ---------------------------------------------------------------------------------------------- the sample data


def test_the_events_are_the_records(events: pl.DataFrame) -> None:
    records = sample_records()
    assert events.height == len(records) > 40_000
    assert Counter(events["@message"].to_list()) == Counter(r["@message"] for r in records)


# ---------------------------------------------------------------------------------------------- DOCS_EXAMPLES


def test_top_15_packet_transfers_across_hosts(events: pl.DataFrame) -> None:
    # DOCS_EXAMPLES "Find the top 15 packet transfers across hosts" (also the DOCS_SORT example)
    query = """stats sum(packets) as packetsTransferred by srcAddr, dstAddr
    | sort packetsTransferred  desc
    | limit 15"""
    result = run(query, events)
    assert result.fields == ("srcAddr", "dstAddr", "packetsTransferred")
    expected = {k: total(v, "packets") for k, v in group(sample_records(), ("srcAddr", "dstAddr")).items()}
    assert_top(result, ("srcAddr", "dstAddr"), "packetsTransferred", expected, 15)


def test_top_15_byte_transfers_for_hosts_on_a_given_subnet(events: pl.DataFrame) -> None:
    # DOCS_EXAMPLES "Find the top 15 byte transfers for hosts on a given subnet"
    query = """filter isIpv4InSubnet(srcAddr, "192.0.2.0/24")
    | stats sum(bytes) as bytesTransferred by dstAddr
    | sort bytesTransferred desc
    | limit 15
"""
    result = run(query, events)
    chosen = [r for r in sample_records() if src_in_192_0_2(r)]
    assert chosen, "the sample data has sources in 192.0.2.0/24"
    assert result.statistics.records_matched == len(chosen)
    expected = {k: total(v, "bytes") for k, v in group(chosen, ("dstAddr",)).items()}
    assert_top(result, ("dstAddr",), "bytesTransferred", expected, 15)


def test_ip_addresses_that_use_udp(events: pl.DataFrame) -> None:
    # DOCS_EXAMPLES "Find the IP addresses that use UDP as a data transfer protocol"; the CONSOLE's
    # "IP addresses using UDP transfer protocol" is the same query with a line break.
    for query in (
        "filter protocol=17 | stats count(*) by srcAddr",
        "filter protocol=17\n| stats count(*) by srcAddr",
    ):
        result = run(query, events)
        expected = Counter(r["srcAddr"] for r in sample_records() if r["protocol"] == 17)
        assert {row["srcAddr"]: row["count(*)"] for row in result.rows} == {
            k: str(v) for k, v in expected.items()
        }


def test_ip_addresses_where_flow_records_were_skipped(events: pl.DataFrame) -> None:
    # DOCS_EXAMPLES "Find the IP addresses where flow records were skipped during the capture window"
    query = """filter logStatus="SKIPDATA"
    | stats count(*) by bin(1h) as t
    | sort t
"""
    result = run(query, events)
    hours = Counter(r["@timestamp"] // 3600 * 3600 for r in sample_records() if r["logStatus"] == "SKIPDATA")
    assert hours, "the sample data has SKIPDATA records"
    expected = [
        {"t": datetime.fromtimestamp(h, UTC).strftime("%Y-%m-%d %H:%M:%S.000"), "count(*)": str(n)}
        for h, n in sorted(hours.items())
    ]
    assert result.rows == expected


def test_a_single_record_for_each_connection(events: pl.DataFrame) -> None:
    # DOCS_EXAMPLES "Find a single record for each connection, to help troubleshoot network connectivity
    # issues". Verbatim it names a field `logStream` that flow-log events do not have: nothing matches, and
    # the executor says which field it meant.
    query = """fields @timestamp, srcAddr, dstAddr, srcPort, dstPort, protocol, bytes
| filter logStream = 'vpc-flow-logs' and interfaceId = 'eni-0123456789abcdef0'
| sort @timestamp desc
| dedup srcAddr, dstAddr, srcPort, dstPort, protocol
| limit 20"""
    result = run(query, events)
    assert result.rows == []
    assert result.warnings == ("unknown field logStream (did you mean @logStream?)",)
    # With the stream and interface of a real ENI of the sample estate (web-1):
    adapted = query.replace(
        "logStream = 'vpc-flow-logs'", "@logStream = 'eni-0e7ae111222111000-all'"
    ).replace("eni-0123456789abcdef0", "eni-0e7ae111222111000")
    result = run(adapted, events)
    assert result.warnings == ()
    keys = ("srcAddr", "dstAddr", "srcPort", "dstPort", "protocol")
    mine = [r for r in sample_records() if r["interfaceId"] == "eni-0e7ae111222111000"]
    latest: dict[tuple[Any, ...], int] = {}
    singles: list[int] = []  # dedup keeps every event with a null key field
    for record in mine:
        key = tuple(record[k] for k in keys)
        if None in key:
            singles.append(record["@timestamp"])
        else:
            latest[key] = max(latest.get(key, 0), record["@timestamp"])
    stamps = sorted([*latest.values(), *singles], reverse=True)[:20]
    assert len(result.rows) == 20 and result.capped
    shown = [_epoch(str(row["@timestamp"])) for row in result.rows]
    assert shown == stamps
    seen: set[tuple[str | None, ...]] = set()
    for row in result.rows:
        key_text = tuple(row[k] for k in keys)
        if None not in key_text:
            assert key_text not in seen
            seen.add(key_text)
            typed = tuple(
                int(str(v)) if k in ("srcPort", "dstPort", "protocol") else v
                for k, v in zip(keys, key_text, strict=True)
            )
            assert latest[typed] == _epoch(str(row["@timestamp"]))


def _epoch(stamp: str) -> int:
    return int(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp())


NAT_QUERIES: list[tuple[str, str, Callable[[Record], bool]]] = [
    (
        "Find the instances that are sending the most traffic through your NAT gateway",
        """filter (dstAddr like 'x.x.x.x' and srcAddr like 'y.y.')
| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr
| sort bytesTransferred desc
| limit 10
""",
        lambda r: _has(r["dstAddr"], NAT_IP) and _has(r["srcAddr"], VPC_PREFIX),
    ),
    (
        "Determine the traffic that's going to and from the instances in your NAT gateways",
        """filter (dstAddr like 'x.x.x.x' and srcAddr like 'y.y.') or (srcAddr like 'xxx.xx.xx.xx' and dstAddr like 'y.y.')
| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr
| sort bytesTransferred desc
| limit 10
""",
        lambda r: (
            (_has(r["dstAddr"], NAT_IP) and _has(r["srcAddr"], VPC_PREFIX))
            or (_has(r["srcAddr"], NAT_IP) and _has(r["dstAddr"], VPC_PREFIX))
        ),
    ),
    (
        "Determine the internet destinations ... For uploads",
        """filter (srcAddr like 'x.x.x.x' and dstAddr not like 'y.y.')
| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr
| sort bytesTransferred desc
| limit 10
""",
        lambda r: _has(r["srcAddr"], NAT_IP) and r["dstAddr"] is not None and VPC_PREFIX not in r["dstAddr"],
    ),
    (
        "Determine the internet destinations ... For downloads",
        """filter (dstAddr like 'x.x.x.x' and srcAddr not like 'y.y.')
| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr
| sort bytesTransferred desc
| limit 10
""",
        lambda r: _has(r["dstAddr"], NAT_IP) and r["srcAddr"] is not None and VPC_PREFIX not in r["srcAddr"],
    ),
]


def _has(value: str | None, part: str) -> bool:
    return value is not None and part in value


@pytest.mark.parametrize(("title", "query", "keep"), NAT_QUERIES, ids=[q[0][:40] for q in NAT_QUERIES])
def test_nat_gateway_queries(
    events: pl.DataFrame, title: str, query: str, keep: Callable[[Record], bool]
) -> None:
    # DOCS_EXAMPLES "Queries for NAT gateway", placeholders filled in as the page instructs.
    filled = query.replace("xxx.xx.xx.xx", NAT_IP).replace("x.x.x.x", NAT_IP).replace("y.y.", VPC_PREFIX)
    result = run(filled, events)
    chosen = [r for r in sample_records() if keep(r)]
    assert chosen, f"the sample data has traffic for: {title}"
    assert result.statistics.records_matched == len(chosen)
    expected = {k: total(v, "bytes") for k, v in group(chosen, ("srcAddr", "dstAddr")).items()}
    assert_top(result, ("srcAddr", "dstAddr"), "bytesTransferred", expected, 10)


# ---------------------------------------------------------------------------------------------- DOCS_PARSE


def test_parse_the_eni_with_a_named_group(events: pl.DataFrame) -> None:
    # DOCS_PARSE "uses a capturing group on a VPC flow log to extract the ENI into a field named
    # NetworkInterface"
    query = "parse @message /(?<NetworkInterface>eni-.*?) / | display NetworkInterface, @message"
    result = run(query, events)
    assert result.fields == ("NetworkInterface", "@message")
    assert len(result.rows) == 10_000 and result.capped  # the default cap, most recent first
    for row in result.rows:
        match = re.search(r"(eni-.*?) ", str(row["@message"]))
        assert row["NetworkInterface"] == (match.group(1) if match else None)
    newest = sorted((r["@timestamp"] for r in sample_records()), reverse=True)[:10_000]
    assert [_epoch(str(r["@timestamp"])) for r in run(query + ", @timestamp", events).rows] == newest


# ---------------------------------------------------------------------------------------------- CONSOLE


def test_average_min_and_max_byte_transfers_by_source_and_destination(events: pl.DataFrame) -> None:
    # CONSOLE "Average, min, and max byte transfers by source and destination IP addresses"
    query = "stats avg(bytes), min(bytes), max(bytes) by srcAddr, dstAddr"
    result = run(query, events)
    assert result.fields == ("srcAddr", "dstAddr", "avg(bytes)", "min(bytes)", "max(bytes)")
    groups = group(sample_records(), ("srcAddr", "dstAddr"))
    assert len(result.rows) == len(groups)
    for row in result.rows:
        values = [r["bytes"] for r in groups[(row["srcAddr"], row["dstAddr"])] if r["bytes"] is not None]
        if not values:  # NODATA/SKIPDATA records carry no addresses and no bytes
            assert (row["avg(bytes)"], row["min(bytes)"], row["max(bytes)"]) == (None, None, None)
            continue
        assert float(str(row["avg(bytes)"])) == pytest.approx(sum(values) / len(values), rel=1e-12)
        assert (row["min(bytes)"], row["max(bytes)"]) == (str(min(values)), str(max(values)))


def test_top_10_byte_transfers_by_source_and_destination(events: pl.DataFrame) -> None:
    # CONSOLE "Top 10 byte transfers by source and destination IP addresses"
    query = """stats sum(bytes) as bytesTransferred by srcAddr, dstAddr
| sort bytesTransferred desc
| limit 10"""
    result = run(query, events)
    expected = {k: total(v, "bytes") for k, v in group(sample_records(), ("srcAddr", "dstAddr")).items()}
    assert_top(result, ("srcAddr", "dstAddr"), "bytesTransferred", expected, 10)
    assert result.limit == 10 and result.capped


def test_top_20_source_addresses_with_the_most_rejected_requests(events: pl.DataFrame) -> None:
    # CONSOLE "Top 20 source IP addresses with highest number of rejected requests"
    query = """filter action="REJECT"
| stats count(*) as numRejections by srcAddr
| sort numRejections desc
| limit 20"""
    result = run(query, events)
    rejected = [r for r in sample_records() if r["action"] == "REJECT"]
    assert result.statistics.records_matched == len(rejected) > 0
    expected = {k: len(v) for k, v in group(rejected, ("srcAddr",)).items()}
    assert_top(result, ("srcAddr",), "numRejections", expected, 20)
