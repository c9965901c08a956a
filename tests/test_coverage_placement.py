"""Where an interface was, on its coverage row: ``subnet_id`` (the flow-log ``subnet-id`` field) and
``flow_logs`` (the flow logs that delivered its records). For an ENI neither the inventory nor the ENI
history knows, that is all there is to say which security groups its traffic can bear on, so every flow
source produces it alike: both file paths, edge files, and Logs Insights.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from sgadvisor.aws.discovery import LogGroupFormat
from sgadvisor.aws.edges_query import span_query
from sgadvisor.aws.flows import read_insights, stream_lister
from sgadvisor.aws.insights import InsightsRunner
from sgadvisor.flowlogs.edgefile import write_edge_lines
from sgadvisor.flowlogs.edges import COVERAGE_SCHEMA, FlowEdges, Window
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT
from sgadvisor.flowlogs.files import flow_log_of_file
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from tests.conftest import DEFAULT_HEADER, default_line, write_lines

T0 = 1_793_491_200
FL_A = "fl-0e28ec3cc4b1f9a67"
FL_B = "fl-09d3750b9ddf0d131"
# A v3+ custom format with subnet-id (and vpc-id): the S3 header names the fields.
V3 = (
    "version vpc-id subnet-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
    "action log-status"
)
SUBNET_A, SUBNET_B = "subnet-0aaa1111bbbb22223", "subnet-0ccc3333dddd44445"


def s3_name(flow_log: str, day: int = 1, suffix: str = "b5616020") -> str:
    """An S3 delivery file's name, as AWS writes it."""
    return f"123456789012_vpcflowlogs_eu-west-1_{flow_log}_202611{day:02d}T0000Z_{suffix}.log.gz"


def v3_line(
    eni: str,
    subnet: str,
    *,
    src: str = "10.0.1.10",
    dst: str = "10.0.2.15",
    start: int = T0,
    status: str = "OK",
) -> str:
    if status != "OK":
        return f"3 vpc-01 {subnet} {eni} - - - - - - - {start} {start + 60} - {status}"
    return f"3 vpc-01 {subnet} {eni} {src} {dst} 40000 443 6 2 100 {start} {start + 60} ACCEPT OK"


def placement(flows: FlowEdges) -> dict[str, tuple[str | None, str | None]]:
    return {
        eni: (subnet, logs)
        for eni, subnet, logs in flows.coverage.select("interface_id", "subnet_id", "flow_logs").iter_rows()
    }


def both_paths(paths: list[Path], options: IngestOptions | None = None, **kwargs: int) -> FlowEdges:
    """The fast path's flows, after checking the careful path gives the very same."""
    fast = read_flows(paths, options, **kwargs)  # type: ignore[arg-type]
    careful = read_flows(paths, options, fast=False, **kwargs)  # type: ignore[arg-type]
    assert fast.coverage.equals(careful.coverage)
    assert fast.edges.equals(careful.edges)
    assert fast.accounting == careful.accounting
    return fast


def test_the_coverage_schema_has_the_placement_columns() -> None:
    assert COVERAGE_SCHEMA["subnet_id"] == pl.String()
    assert COVERAGE_SCHEMA["flow_logs"] == pl.String()


def test_a_v3_file_gives_each_interface_the_subnet_its_records_name(
    tmp_path: Path, fast_path_taken: list[bool]
) -> None:
    lines = [
        v3_line("eni-0a", SUBNET_A),
        v3_line("eni-0a", "-", start=T0 + 60),  # "-": says nothing
        v3_line("eni-0a", SUBNET_A, status="NODATA", start=T0 + 600),
        v3_line("eni-0b", "-"),  # never named: unknown
        v3_line("eni-0b", "-", status="NODATA", start=T0 + 600),
        v3_line("eni-0c", SUBNET_B),  # records that disagree (forged, damaged): the smallest
        v3_line("eni-0c", SUBNET_A, start=T0 + 900),
        v3_line("eni-0d", SUBNET_B, status="NODATA"),  # NODATA alone places it too
    ]
    path = write_lines(tmp_path / "flows.log", lines, header=V3)
    flows = both_paths([path])
    assert fast_path_taken == [True]
    assert placement(flows) == {
        "eni-0a": (SUBNET_A, None),  # the file's name carries no flow log id
        "eni-0b": (None, None),
        "eni-0c": (SUBNET_A, None),
        "eni-0d": (SUBNET_B, None),
    }


def test_subnet_id_as_the_last_field_and_in_small_blocks(tmp_path: Path) -> None:
    """The fast path reads the last field raw; the careful path in several blocks merges the subnets."""
    header = "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status subnet-id"
    lines = [
        f"3 eni-0a 10.0.1.10 10.0.2.{i} 40000 443 6 2 100 {T0 + 60 * i} {T0 + 60 * i + 60} ACCEPT OK "
        + ("-" if i % 3 else SUBNET_B if i < 100 else SUBNET_A)
        for i in range(200)
    ]
    path = write_lines(tmp_path / "last.log", lines, header=header)
    flows = both_paths([path], block_bytes=2048)
    assert placement(flows) == {"eni-0a": (SUBNET_A, None)}


def test_a_default_format_file_places_nothing(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "default.log", [default_line(), default_line(eni="eni-0bbb")], header=DEFAULT_HEADER
    )
    flows = both_paths([path])
    assert placement(flows) == {"eni-0aaa": (None, None), "eni-0bbb": (None, None)}


@pytest.mark.parametrize(
    ("name", "flow_log"),
    [
        (s3_name(FL_A), FL_A),
        (s3_name("fl-0123abcd"), "fl-0123abcd"),  # an 8-digit id (the older, short form)
        ("123456789012_vpcflowlogs_eu-west-1_fl-0e28ec3cc4b1f9a67_20261101T1000Z_b5616020.log.parquet", FL_A),
        ("fl-0123abcd_export.log", "fl-0123abcd"),
        (s3_name("fl-0123abc"), None),  # 7 digits: not an id
        (s3_name("fl-0123abcde"), None),  # 9: not a whole id
        (s3_name("fl-0e28ec3cc4b1f9a670"), None),  # 18
        (s3_name("fl-0E28EC3CC4B1F9A67"), None),  # AWS writes ids in lower case
        ("123456789012_vpcflowlogs_eu-west-1_xfl-0123abcd_20261101T0000Z_b5616020.log.gz", None),
        ("eni-0aaa-all.json", None),  # a CloudWatch Logs export: per log stream, no flow log
        ("flows.log", None),
    ],
)
def test_the_flow_log_comes_from_an_s3_delivery_file_name(name: str, flow_log: str | None) -> None:
    assert flow_log_of_file(Path("AWSLogs/123456789012/vpcflowlogs/eu-west-1/2026/11/01") / name) == flow_log


def test_an_s3_file_name_gives_its_interfaces_the_flow_log(
    tmp_path: Path, fast_path_taken: list[bool]
) -> None:
    path = write_lines(
        tmp_path / s3_name(FL_A), [v3_line("eni-0a", SUBNET_A), v3_line("eni-0b", "-")], header=V3, gz=True
    )
    flows = both_paths([path])
    assert fast_path_taken == [True]
    assert placement(flows) == {"eni-0a": (SUBNET_A, FL_A), "eni-0b": (None, FL_A)}
    # A damaged file (the careful path only) still knows which flow log delivered it.
    damaged = write_lines(
        tmp_path / "d" / s3_name(FL_B), [v3_line("eni-0c", SUBNET_B), "3 garbage"], header=V3
    )
    fast_path_taken.clear()
    careful = read_flows([damaged], IngestOptions(max_malformed=1.0))
    assert fast_path_taken == [False]
    assert placement(careful) == {"eni-0c": (SUBNET_B, FL_B)}


def _cloudwatch_export(path: Path, eni: str, lines: list[str]) -> Path:
    """``aws logs filter-log-events`` output of one log stream (default format, no flow log id)."""
    events = [{"logStreamName": f"{eni}-all", "timestamp": T0 * 1000, "message": line} for line in lines]
    path.write_text(json.dumps({"events": events}))
    return path


def test_placement_merges_across_files_and_sources(tmp_path: Path) -> None:
    """One ENI in files of two flow logs (a VPC's and its subnet's), in a default-format file and in a
    CloudWatch Logs export: the subnet any of them names, the union of the flow logs that are known."""
    root = tmp_path / "flows"
    write_lines(
        root / s3_name(FL_B, day=2), [v3_line("eni-0a", SUBNET_A, start=T0 + 86_400)], header=V3, gz=True
    )
    write_lines(
        root / s3_name(FL_A, day=1),
        [default_line(eni="eni-0a"), default_line(eni="eni-0b")],
        header=DEFAULT_HEADER,
        gz=True,
    )
    write_lines(
        root / s3_name(FL_A, day=3), [v3_line("eni-0b", "-", start=T0 + 2 * 86_400)], header=V3, gz=True
    )
    _cloudwatch_export(root / "eni-0c.json", "eni-0c", [default_line(eni="eni-0c")])
    _cloudwatch_export(root / "eni-0a.json", "eni-0a", [default_line(eni="eni-0a", start=T0 + 3 * 86_400)])
    flows = both_paths([root])
    assert placement(flows) == {
        "eni-0a": (SUBNET_A, f"{FL_B},{FL_A}"),  # sorted: fl-09… before fl-0e…
        "eni-0b": (None, FL_A),
        "eni-0c": (None, None),
    }
    assert sorted([FL_A, FL_B]) == [FL_B, FL_A]


def test_edge_files_keep_the_placement_and_older_ones_still_load(tmp_path: Path) -> None:
    root = tmp_path / "flows"
    write_lines(
        root / s3_name(FL_A), [v3_line("eni-0a", SUBNET_A), v3_line("eni-0b", "-")], header=V3, gz=True
    )
    _cloudwatch_export(root / "eni-0c.json", "eni-0c", [default_line(eni="eni-0c")])
    flows = read_flows([root])
    buffer = io.StringIO()
    write_edge_lines(flows, buffer)
    coverage_lines = [json.loads(x) for x in buffer.getvalue().splitlines() if '"coverage"' in x]
    # The keys are written only when known.
    assert [(c["interface_id"], c.get("subnet_id"), c.get("flow_logs")) for c in coverage_lines] == [
        ("eni-0a", SUBNET_A, FL_A),
        ("eni-0b", None, FL_A),
        ("eni-0c", None, None),
    ]
    assert "subnet_id" not in coverage_lines[1] and "flow_logs" not in coverage_lines[2]
    edge_file = tmp_path / "edges.jsonl"
    edge_file.write_text(buffer.getvalue())
    again = read_flows([edge_file])
    assert again.coverage.equals(flows.coverage)

    # A file written before the placement columns: they are unknown (null), nothing else changes.
    old = "\n".join(
        json.dumps({k: v for k, v in json.loads(x).items() if k not in ("subnet_id", "flow_logs")})
        for x in buffer.getvalue().splitlines()
    )
    old_file = tmp_path / "old.jsonl"
    old_file.write_text(old + "\n")
    older = read_flows([old_file])
    assert older.accounting.malformed == 0
    assert placement(older) == {"eni-0a": (None, None), "eni-0b": (None, None), "eni-0c": (None, None)}
    assert older.coverage.drop("subnet_id", "flow_logs").equals(flows.coverage.drop("subnet_id", "flow_logs"))

    # An edge file and flow files together: the placements merge like the files' own.
    more = write_lines(
        tmp_path / "more" / s3_name(FL_B, day=2), [v3_line("eni-0b", SUBNET_B, start=T0 + 86_400)], header=V3
    )
    merged = read_flows([edge_file, more])
    assert placement(merged) == {
        "eni-0a": (SUBNET_A, FL_A),
        "eni-0b": (SUBNET_B, f"{FL_B},{FL_A}"),
        "eni-0c": (None, None),
    }


# ------------------------------------------------------------------------------------------ Insights


@dataclass
class _FakeTime:
    now: float = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_span_query_asks_for_the_subnet_when_the_format_has_it() -> None:
    custom = LogGroupFormat("g", tuple(V3.split()), (FL_A,), ("ALL",), ("vpc-01",))
    default = LogGroupFormat("g", DEFAULT_FORMAT, (FL_A,), ("ALL",), ("vpc-01",))
    assert span_query(custom).splitlines()[-1].endswith("by interfaceId, slot, subnetId")
    assert span_query(default).splitlines()[-1].endswith("by interfaceId, slot")


def test_insights_places_interfaces_like_the_files(tmp_path: Path) -> None:
    """The same records as S3 files (the flow log in their names) and in CloudWatch Logs log groups (the
    flow logs discovered for each group's format): the same coverage, placement included."""
    from tests.standins.cwl_server import CwlServer, load_flow_log_files

    custom = tmp_path / "custom" / s3_name(FL_A)
    write_lines(
        custom,
        [
            v3_line("eni-0a", SUBNET_A),
            v3_line("eni-0a", "-", src="10.0.1.10", dst="10.0.2.16", start=T0 + 120),
            v3_line("eni-0a", SUBNET_A, status="NODATA", start=T0 + 1800),
            v3_line("eni-0b", "-", src="10.0.2.15", dst="10.0.1.10"),
            v3_line("eni-0c", SUBNET_B, src="10.0.3.3", dst="10.0.1.10", start=T0 + 3600),
            v3_line("eni-0c", SUBNET_A, src="10.0.3.3", dst="10.0.1.11", start=T0 + 3660),
        ],
        header=V3,
        gz=True,
    )
    plain = tmp_path / "default" / s3_name(FL_B)
    write_lines(plain, [default_line(eni="eni-0d", start=T0 + 600)], header=DEFAULT_HEADER, gz=True)
    window = Window(T0, T0 + 86_400)
    with CwlServer() as server:
        logs = server.client()
        load_flow_log_files(logs, "custom", [custom], keep_format=True)
        load_flow_log_files(logs, "default", [plain])
        time = _FakeTime()
        runner = InsightsRunner(logs, sleep=time.sleep, clock=time.clock, list_streams=stream_lister(logs))
        formats = [
            # Two flow logs write the custom format into one group: either could have delivered a record.
            LogGroupFormat("custom", tuple(V3.split()), (FL_A, "fl-0123abcd"), ("ALL",), ("vpc-01",)),
            LogGroupFormat("default", DEFAULT_FORMAT, (FL_B,), ("ALL",), ("subnet-0d",)),
        ]
        online = read_insights(runner, formats, window).flows
    offline = read_flows([custom, plain], IngestOptions(window=window))
    assert placement(online) == {
        "eni-0a": (SUBNET_A, f"fl-0123abcd,{FL_A}"),
        "eni-0b": (None, f"fl-0123abcd,{FL_A}"),
        "eni-0c": (SUBNET_A, f"fl-0123abcd,{FL_A}"),
        "eni-0d": (None, FL_B),
    }
    # The files know only the flow log in each file's name; everything else is the same.
    fixed = online.coverage.with_columns(pl.col("flow_logs").str.replace("fl-0123abcd,", "", literal=True))
    assert fixed.equals(offline.coverage)
