"""Every file shape of DESIGN §4.1 reads into the same typed records and edges."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgadvisor.accounting import Ledger
from sgadvisor.errors import FlowFormatError, InputError
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT, format_log_format, parse_log_format
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows, read_records
from sgadvisor.flowlogs.parse import canonical_address
from tests.conftest import DEFAULT_HEADER, default_line, write_lines

V5_ORDER = (
    "version interface-id flow-direction tcp-flags srcaddr dstaddr srcport dstport protocol "
    "pkt-srcaddr pkt-dstaddr pkt-dst-aws-service start end action log-status packets bytes "
    "vpc-id x-custom-field"
)


def _records(paths: list[Path], options: IngestOptions | None = None) -> pl.DataFrame:
    ledger = Ledger()
    frames = [block.frame for block in read_records(paths, ledger, options)]
    assert ledger.malformed == 0, ledger.issues
    return pl.concat(frames, how="diagonal_relaxed")


def test_log_format_spellings() -> None:
    assert parse_log_format("${version} ${pkt-srcaddr} ${tcp-flags}") == (
        "version",
        "pkt-srcaddr",
        "tcp-flags",
    )
    assert parse_log_format("version pkt_srcaddr TCP-FLAGS") == ("version", "pkt-srcaddr", "tcp-flags")
    assert parse_log_format(format_log_format(DEFAULT_FORMAT)) == DEFAULT_FORMAT
    with pytest.raises(FlowFormatError, match="repeats srcaddr"):
        parse_log_format("${srcaddr} ${srcaddr}")
    with pytest.raises(FlowFormatError, match="empty"):
        parse_log_format("  ")
    with pytest.raises(FlowFormatError, match="not a field name"):
        parse_log_format("${version} 42")


def test_header_file_with_custom_order_types_every_column(tmp_path: Path) -> None:
    line = (
        "5 eni-0bbb egress 3 10.0.3.7 52.218.1.2 41000 443 6 10.0.3.7 52.218.1.2 S3 "
        "1793491200 1793491260 ACCEPT OK 12 3400 vpc-01 hello"
    )
    path = write_lines(tmp_path / "v5.log.gz", [line], gz=True, header=V5_ORDER)
    frame = _records([path])
    row = frame.row(0, named=True)
    assert row["version"] == 5
    assert row["tcp-flags"] == 3
    assert row["flow-direction"] == "egress"
    assert row["pkt-dst-aws-service"] == "S3"
    assert row["x-custom-field"] == "hello"  # unknown field kept as text
    assert frame.schema["srcport"] == pl.Int64 and frame.schema["srcaddr"] == pl.String
    flows = read_flows([path])
    edge = flows.edges.row(0, named=True)
    assert (edge["direction"], edge["local_port"], edge["remote_port"]) == ("egress", 0, 443)
    assert (edge["syn_records"], edge["fin_records"], edge["aws_service"]) == (1, 1, "S3")


def test_dash_is_null_and_ipv6_is_canonical(tmp_path: Path) -> None:
    lines = [
        "2 123456789012 eni-0aaa - - - - - - - 1793491200 1793491260 - NODATA",
        default_line("2001:DB8:0:0::1", "2001:db8::0:2", 40000, 443),
    ]
    frame = _records([write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)])
    nodata, six = frame.row(0, named=True), frame.row(1, named=True)
    assert nodata["srcaddr"] is None and nodata["srcport"] is None and nodata["action"] is None
    assert six["srcaddr"] == "2001:db8::1" and six["dstaddr"] == "2001:db8::2"


def test_headerless_text_default_and_log_format(tmp_path: Path) -> None:
    plain = write_lines(tmp_path / "plain.log", [default_line()])
    assert read_flows([plain]).accounting.used == 1
    order = (
        "${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${action} ${start} ${end}"
    )
    custom = write_lines(tmp_path / "custom.log", ["eni-0aaa 10.0.1.10 10.0.2.15 40000 5432 6 ACCEPT 1 61"])
    with pytest.raises(InputError, match="where the AWS default format has 14"):
        read_flows([custom])
    flows = read_flows([custom], IngestOptions(log_format=parse_log_format(order)))
    assert flows.edges.row(0, named=True)["remote_port"] == 5432


def test_parquet(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "version": pl.Series([5, 5], dtype=pl.Int32),
            "interface_id": ["eni-0aaa", "eni-0aaa"],
            "srcaddr": ["10.0.1.10", "10.0.2.15"],
            "dstaddr": ["10.0.2.15", "10.0.1.10"],
            "srcport": pl.Series([40000, 5432], dtype=pl.Int32),
            "dstport": pl.Series([5432, 40000], dtype=pl.Int32),
            "protocol": pl.Series([6, 6], dtype=pl.Int32),
            "packets": [3, 3],
            "bytes": [300, 300],
            "start": [1_793_491_200, 1_793_491_200],
            "end": [1_793_491_260, 1_793_491_260],
            "action": ["ACCEPT", "ACCEPT"],
            "log_status": ["OK", "OK"],
            "flow_direction": ["egress", "ingress"],
            "tcp_flags": pl.Series([2, 18], dtype=pl.Int32),
        }
    )
    path = tmp_path / "flows.parquet"
    frame.write_parquet(path)
    flows = read_flows([path])
    assert flows.accounting.used == 2
    edges = {row["direction"]: row for row in flows.edges.iter_rows(named=True)}
    assert edges["egress"]["remote_port"] == 5432 and edges["egress"]["syn_records"] == 1
    assert edges["ingress"]["local_port"] == 0 and edges["ingress"]["synack_records"] == 1


def test_filter_log_events_json_uses_stream_names(tmp_path: Path) -> None:
    order = "${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action}"
    events = {
        "events": [
            {
                "logStreamName": "eni-0aaa-all",
                "timestamp": 1,
                "message": "10.0.1.10 10.0.2.15 40000 443 6 1 60 1 61 ACCEPT",
                "eventId": "1",
            },
            {
                "logStreamName": "eni-0bbb-all",
                "timestamp": 1,
                "message": "10.0.2.15 10.0.1.10 443 40000 6 1 60 1 61 ACCEPT",
                "eventId": "2",
            },
            {"logStreamName": "eni-0bbb-all", "timestamp": 1, "message": "not a record", "eventId": "3"},
        ],
        "searchedLogStreams": [],
    }
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))
    flows = read_flows([path], IngestOptions(log_format=parse_log_format(order), max_malformed=1))
    assert sorted(flows.edges["interface_id"].to_list()) == ["eni-0aaa", "eni-0bbb"]
    assert [(i.line, i.reason) for i in flows.accounting.issues] == [
        (3, "event 3: expected 10 fields, found 3")
    ]


def test_get_log_events_json_needs_interface_or_stream(tmp_path: Path) -> None:
    order = parse_log_format("${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${action}")
    path = tmp_path / "get.json"
    path.write_text(
        json.dumps({"events": [{"timestamp": 1, "message": "10.0.1.10 10.0.2.15 40000 443 6 ACCEPT"}]})
    )
    with pytest.raises(InputError, match="no log stream name") as caught:
        read_flows([path], IngestOptions(log_format=order))
    assert caught.value.hint is not None and "--log-stream" in caught.value.hint
    flows = read_flows([path], IngestOptions(log_format=order, log_stream="eni-0ccc-all"))
    assert flows.edges["interface_id"].to_list() == ["eni-0ccc"]
    # With the default format the record itself names the interface.
    default = tmp_path / "default.json"
    default.write_text(json.dumps({"events": [{"timestamp": 1, "message": default_line()}]}))
    assert read_flows([default]).edges["interface_id"].to_list() == ["eni-0aaa"]


def test_subscription_envelope_and_message_lines(tmp_path: Path) -> None:
    envelope = tmp_path / "sub.json"
    envelope.write_text(
        json.dumps(
            {
                "logStream": "eni-0aaa-all",
                "logEvents": [{"id": "1", "timestamp": 1, "message": default_line()}],
            }
        )
    )
    lines = tmp_path / "messages.ndjson"
    lines.write_text(json.dumps({"message": default_line(eni="eni-0ddd")}) + "\n")
    flows = read_flows([envelope, lines])
    assert sorted(flows.edges["interface_id"].to_list()) == ["eni-0aaa", "eni-0ddd"]


def test_directory_walk_mixes_formats(tmp_path: Path) -> None:
    root = tmp_path / "flows"
    write_lines(root / "a" / "one.log.gz", [default_line(eni="eni-01")], gz=True, header=DEFAULT_HEADER)
    write_lines(root / "b" / "two.log", [default_line(eni="eni-02")], header=DEFAULT_HEADER)
    write_lines(root / "b" / "c" / "three.log", [default_line(eni="eni-03")])
    (root / "d").mkdir()
    (root / "d" / "four.json").write_text(json.dumps({"events": [{"message": default_line(eni="eni-04")}]}))
    (root / ".hidden").write_text("ignored")
    flows = read_flows([root])
    assert sorted(flows.coverage["interface_id"].to_list()) == ["eni-01", "eni-02", "eni-03", "eni-04"]
    assert flows.accounting.issues == []


_HEXTET = st.sampled_from([0, 0, 0, 1, 0xA, 0xFFFF]) | st.integers(0, 0xFFFF)


@st.composite
def _address_spellings(draw: st.DrawFn) -> str:
    """IPv6 and IPv4 texts as they may appear in flow logs: canonical, with leading zeros, upper case,
    uncompressed, compressed in the wrong place, embedded IPv4, or not an address at all."""
    groups = draw(st.lists(_HEXTET, min_size=8, max_size=8))
    packed = ipaddress.IPv6Address(int.from_bytes(b"".join(g.to_bytes(2, "big") for g in groups), "big"))
    style = draw(st.sampled_from(["canonical", "exploded", "upper", "v4tail", "v4", "garbage"]))
    if style == "canonical":
        return str(packed)
    if style == "exploded":
        return packed.exploded
    if style == "upper":
        return str(packed).upper()
    if style == "v4tail":
        return f"::ffff:{ipaddress.IPv4Address(groups[6] << 16 | groups[7])}"
    if style == "v4":
        return draw(st.sampled_from(["10.0.1.10", "010.0.1.10", "10.0.300.7", "0.0.0.0"]))
    return draw(st.text(alphabet="0123456789abcdefABCDEF:.%g", max_size=20))


@given(_address_spellings())
@settings(max_examples=400, deadline=None)
def test_canonical_address_agrees_with_ipaddress(text: str) -> None:
    """The fast canonical check (inet_pton/inet_ntop round trip) never disagrees with ``ipaddress``,
    which decides what the careful path accepts and how it spells addresses."""
    try:
        expected: str | None = str(ipaddress.ip_address(text))
    except ValueError:
        expected = None
    assert canonical_address(text) == expected
