"""Athena as a flow source, on a real SQL engine: the edge query (sgadvisor.athena.sql) executed by the
project's local Athena endpoint (DuckDB running the sqlglot-transpiled Trino SQL over the very files the
file path reads, tables registered with AWS's documented DDL), results read back as pages and as the CSV
in moto's S3. What a user relies on: the edges, coverage, spans and accounting from Athena are those of
the file path, for the text delivery and a Parquet copy, and as a property over generated records;
the security groups from files, Logs Insights and Athena are identical.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgadvisor.athena.ddl import parse_ddl, render_ddl
from sgadvisor.athena.flows import AthenaTable, read_athena
from sgadvisor.athena.results import flows_from_result, read_result_csv
from sgadvisor.athena.runner import AthenaRunner, AthenaSettings
from sgadvisor.athena.sql import edges_sql
from sgadvisor.flowlogs.edges import EDGE_KEY, OUTSIDE_WINDOW, FlowEdges, Window
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from sgadvisor.inventory.snapshot import load_snapshot
from tests.conftest import REPO
from tests.standins.athena_engine import Table, execute, result_csv
from tests.standins.athena_estate import (
    BUCKET,
    DATABASE,
    PARQUET_DDL,
    S3_ROOT,
    TEXT_LOCATION,
    parquet_copy,
    text_tables,
    upload,
)
from tests.standins.athena_server import AthenaServer
from tests.standins.sample_estate import WINDOW_END, WINDOW_START

pytestmark = pytest.mark.slow

SAMPLE_FLOWS = REPO / "sample_data" / "flows"
SAMPLE_INVENTORY = REPO / "sample_data" / "inventory"
WINDOW = Window(WINDOW_START, WINDOW_END)
RESULTS = "s3://athena-results/sgadvisor/"
PARQUET = Window(WINDOW_START + 86_400, WINDOW_START + 4 * 86_400)  # the days of the Parquet copy
REGION = "eu-west-1"


@dataclass
class FakeTime:
    now: float = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Stand:
    athena: AthenaServer
    s3_url: str
    text: tuple[AthenaTable, ...]
    parquet: AthenaTable
    parquet_root: Path


def _s3(url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def stand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stand]:
    """moto's S3 (the data, uploaded as delivered, and the query results) and the local Athena endpoint
    with the sample's text delivery (one table per format) and its Parquet copy registered."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    s3_url = f"http://{host}:{port}"
    s3 = _s3(s3_url)
    for bucket in (BUCKET, "athena-results"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    # Three days of it as Parquet (the file path reads Parquet a file at a time: a day is 96 files).
    parquet_root = parquet_copy(
        SAMPLE_FLOWS / "AWSLogs", tmp_path_factory.mktemp("parquet"), start=PARQUET.start, end=PARQUET.end
    )
    upload(s3, SAMPLE_FLOWS)
    upload(s3, parquet_root)
    server = AthenaServer(s3=s3, output=RESULTS).start()
    text = []
    for spec in text_tables(SAMPLE_FLOWS / "AWSLogs"):
        table = server.register_table(DATABASE, spec.ddl, SAMPLE_FLOWS, S3_ROOT)
        text.append(AthenaTable(_scheme(spec.ddl), spec.flow_logs))
    server.register_table(DATABASE, PARQUET_DDL, parquet_root, S3_ROOT)
    parquet = AthenaTable(_scheme(PARQUET_DDL))
    assert table.partitions()
    try:
        yield Stand(server, s3_url, tuple(text), parquet, parquet_root)
    finally:
        server.stop()
        moto.stop()


def _scheme(ddl: str) -> Any:
    return parse_ddl(ddl).model_copy(update={"database": DATABASE})


def _runner(stand: Stand, **settings: Any) -> AthenaRunner:
    time = FakeTime()
    stand.athena.reset()
    return AthenaRunner(
        stand.athena.client(),
        s3=_s3(stand.s3_url),
        settings=AthenaSettings(**settings),
        sleep=time.sleep,
        clock=time.clock,
    )


def _addresses() -> dict[str, Any]:
    return dict(load_snapshot([SAMPLE_INVENTORY]).addresses)


def assert_same_flows(
    athena: FlowEdges, files: FlowEdges, *, outside_window: bool = True, strict: bool = True
) -> None:
    """Edges, coverage, spans and accounting equal. Athena never reads records outside the window, which
    the file path counts as filtered: as "outside the window", or first by an earlier reason (no
    interface id) — where such records exist (``strict`` False) the other reasons may count fewer."""
    key = list(EDGE_KEY)
    assert athena.edges.sort(key).equals(files.edges.sort(key), null_equal=True)
    assert athena.coverage.equals(files.coverage, null_equal=True)
    assert athena.spans.equals(files.spans, null_equal=True)
    mine, theirs = athena.accounting, files.accounting
    assert (mine.used, mine.nodata, mine.skipdata) == (theirs.used, theirs.nodata, theirs.skipdata)
    assert mine.malformed == theirs.malformed == 0
    expected = {k: v for k, v in theirs.filtered.items() if k != OUTSIDE_WINDOW or not outside_window}
    if strict:
        assert mine.filtered == expected
        assert mine.records == theirs.records - (
            theirs.filtered.get(OUTSIDE_WINDOW, 0) if outside_window else 0
        )
    else:
        assert all(count <= expected.get(reason, 0) for reason, count in mine.filtered.items())
    assert mine.balanced
    assert athena.window == files.window
    assert athena.source == "athena"


# ----------------------------------------------------------------------------------- the sample


def test_text_delivery_gives_the_file_edges(stand: Stand) -> None:
    runner = _runner(stand, results="pages")
    read = read_athena(runner, stand.text, WINDOW, addresses=_addresses())
    files = read_flows([SAMPLE_FLOWS / "AWSLogs"], IngestOptions(window=WINDOW), addresses=_addresses())
    assert_same_flows(read.flows, files)
    assert read.flows.edges.height > 2000 and read.flows.coverage.height > 10
    # One scan per table (one per format), results as pages (more than one page per query).
    assert runner.stats.queries == len(stand.text) == 2
    assert stand.athena.count("StartQueryExecution") == 2
    assert stand.athena.count("GetQueryResults") > 2
    # Partitions pruned to the window's days: the 8 day folders, each file of them read once per table.
    delivered = sum(p.stat().st_size for p in (SAMPLE_FLOWS / "AWSLogs").rglob("*.log.gz"))
    assert runner.stats.bytes_scanned == 2 * delivered
    assert runner.stats.result_rows == read.flows.edges.height * 0 + runner.stats.result_rows > 0


def test_parquet_copy_gives_the_same_edges_through_the_s3_result(stand: Stand) -> None:
    runner = _runner(stand, results="s3")
    read = read_athena(runner, [stand.parquet], PARQUET, addresses=_addresses())
    parquet_files = read_flows([stand.parquet_root], IngestOptions(window=PARQUET), addresses=_addresses())
    text_files = read_flows([SAMPLE_FLOWS / "AWSLogs"], IngestOptions(window=PARQUET), addresses=_addresses())
    assert_same_flows(read.flows, parquet_files)
    assert_same_flows(read.flows, text_files)
    # The result came from the CSV in the output location, not from pages.
    assert stand.athena.count("GetQueryResults") == 0
    parquet_bytes = sum(p.stat().st_size for p in stand.parquet_root.rglob("*.parquet"))
    assert runner.stats.bytes_scanned == parquet_bytes


def test_a_narrow_window_reads_only_its_partitions(stand: Stand) -> None:
    """One day of the eight: the other days' partitions are not read (projection date key and Hive
    hourly keys alike), and the edges are still the file path's for that day."""
    day = Window(WINDOW_START + 2 * 86_400, WINDOW_START + 3 * 86_400)
    files = read_flows([SAMPLE_FLOWS / "AWSLogs"], IngestOptions(window=day), addresses=_addresses())

    # Partitions read: the window's, widened by the delivery slack (5 minutes before, an hour after):
    # for daily folders the days before and after too, for hourly ones the hours before and after.
    def size(paths: list[Path]) -> int:
        return sum(p.stat().st_size for p in paths)

    text_days = [
        p for p in (SAMPLE_FLOWS / "AWSLogs").rglob("*.log.gz") if re.search("/2026/11/0[234]/", p.as_posix())
    ]
    hourly = re.compile(r"day=02/hour=23/|day=03/|day=04/hour=00/")
    hours = [p for p in stand.parquet_root.rglob("*.parquet") if hourly.search(p.as_posix())]
    for tables, scanned in (
        (stand.text, 2 * size(text_days)),  # each table reads the folders' files of both formats
        ([stand.parquet], size(hours)),
    ):
        runner = _runner(stand)
        read = read_athena(runner, tables, day, addresses=_addresses())
        assert_same_flows(read.flows, files)
        assert runner.stats.bytes_scanned == scanned


def test_the_estimate_is_what_the_query_scans_and_max_bytes_refuses_before_running(stand: Stand) -> None:
    from sgadvisor.errors import CostLimitError

    runner = _runner(stand)
    read = read_athena(runner, stand.text, WINDOW, max_bytes=10**12, addresses=_addresses())
    assert read.estimated_bytes == runner.stats.bytes_scanned  # S3 listing of the pruned partitions
    # Results of more than a page: the first page, then the CSV from the output location.
    assert stand.athena.count("GetQueryResults") == 2 and runner.stats.result_rows > 2 * 1000
    runner = _runner(stand)
    with pytest.raises(CostLimitError, match="--max-bytes"):
        read_athena(runner, stand.text, WINDOW, max_bytes=1000)
    assert stand.athena.count("StartQueryExecution") == 0


def test_max_bytes_holds_on_the_bytes_scanned_not_only_the_estimate(stand: Stand) -> None:
    """A query that scanned more than its estimate leaves less for the next table: that one is refused
    before it starts; a query that passes the limit while running is stopped (both exit 2)."""
    from sgadvisor.errors import CostLimitError

    assert len(stand.text) >= 2
    estimate = read_athena(_runner(stand), stand.text, WINDOW, max_bytes=10**12).estimated_bytes
    assert estimate
    runner = _runner(stand)  # (resets the endpoint's switches and its call log)
    stand.athena.behaviour.scan_factor = 3
    with pytest.raises(CostLimitError, match="bytes scanned so far") as refused:
        read_athena(runner, stand.text, WINDOW, max_bytes=estimate * 3 // 2)
    assert refused.value.exit_code == 2
    assert stand.athena.count("StartQueryExecution") == 1  # the second table's query never started

    runner = _runner(stand)
    stand.athena.behaviour.hang = True
    stand.athena.behaviour.running_scanned = estimate * 2
    with pytest.raises(CostLimitError, match="while running"):
        read_athena(runner, stand.text, WINDOW, max_bytes=estimate * 3 // 2)
    assert stand.athena.count("StartQueryExecution") == stand.athena.count("StopQueryExecution") == 1
    stand.athena.reset()


def test_catalog_partitions_are_estimated_through_glue(stand: Stand) -> None:
    """The Parquet table has no projection: its partitions come from the catalog (GetPartitions)."""
    runner = _runner(stand)
    glue = stand.athena.client("glue")
    read = read_athena(runner, [stand.parquet], PARQUET, max_bytes=10**12, glue=glue)
    assert read.estimated_bytes == runner.stats.bytes_scanned
    assert stand.athena.count("GetPartitions") > 1  # paged


def test_the_printed_sql_and_its_result_csv_give_the_same_edges_offline(stand: Stand, tmp_path: Path) -> None:
    """--print-sql prints the query; the CSV Athena writes for it (--athena-result) gives the edges with
    no AWS call."""
    from sgadvisor.athena.flows import flows_from_result_files, print_sql

    runner = _runner(stand, results="s3")
    online = read_athena(runner, stand.text, WINDOW, addresses=_addresses())
    assert print_sql(stand.text, WINDOW).split(";\n") == list(online.sql)
    s3 = _s3(stand.s3_url)
    paths = []
    for index, execution_id in enumerate(runner.stats.execution_ids):
        body = s3.get_object(Bucket="athena-results", Key=f"sgadvisor/{execution_id}.csv")["Body"].read()
        paths.append(tmp_path / f"result-{index}.csv")
        paths[-1].write_bytes(body)
    offline = flows_from_result_files(paths, WINDOW, addresses=_addresses())
    assert_same_flows(offline, online.flows, outside_window=False)


# ----------------------------------------------------------------------------------- three sources


def test_security_groups_are_identical_from_files_insights_and_athena(tmp_path: Path) -> None:
    """The sample's records in the default format (one file per flow log per day, as delivered), read
    from files, from Logs Insights (the local CloudWatch Logs endpoint, one log group per flow log) and
    from Athena (DuckDB): the recommendation's security groups are identical."""
    from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
    from sgadvisor.aws.discovery import LogGroupFormat
    from sgadvisor.aws.flows import read_insights
    from sgadvisor.aws.insights import InsightsRunner
    from sgadvisor.flowlogs.fields import DEFAULT_FORMAT
    from tests.standins.cwl_server import CwlServer, load_flow_log_files

    root = tmp_path / "s3"
    by_log = _default_format_delivery(SAMPLE_FLOWS / "AWSLogs", root)
    inventory = load_snapshot([SAMPLE_INVENTORY])
    options = AnalysisOptions()
    files = read_flows([root / "AWSLogs"], IngestOptions(window=WINDOW), addresses=inventory.addresses)
    ddl = render_ddl(TEXT_LOCATION, DEFAULT_FORMAT, table="default_flows", regions=[REGION])
    table = Table.from_ddl(DATABASE, ddl, root, S3_ROOT)
    result = execute(edges_sql(_scheme(ddl), WINDOW), {(DATABASE, table.name): table}, DATABASE)
    athena = flows_from_result(read_result_csv(result_csv(result)), WINDOW, addresses=inventory.addresses)
    with CwlServer() as logs:
        formats = []
        for flow_log, paths in sorted(by_log.items()):
            load_flow_log_files(logs.client(), f"flows-{flow_log}", paths)
            formats.append(LogGroupFormat(f"flows-{flow_log}", DEFAULT_FORMAT, (flow_log,), ("ALL",), ()))
        time = FakeTime()
        runner = InsightsRunner(logs.client(), sleep=time.sleep, clock=time.clock)
        insights = read_insights(runner, formats, WINDOW, addresses=inventory.addresses).flows
    from_files = build_recommendation(files, inventory, options)
    from_athena = build_recommendation(athena, inventory, options)
    from_insights = build_recommendation(insights, inventory, options)
    assert from_athena.security_groups == from_files.security_groups
    assert from_insights.security_groups == from_files.security_groups
    assert from_athena.rejected_egress == from_files.rejected_egress == from_insights.rejected_egress
    assert any(c.action != "keep" for g in from_files.security_groups for c in g.changes)


def _default_format_delivery(flows: Path, out: Path) -> dict[str, list[Path]]:
    """Every S3 file under ``flows`` rewritten in the default format, same name and folder."""
    from sgadvisor.accounting import Ledger
    from sgadvisor.flowlogs.fields import DEFAULT_FORMAT
    from sgadvisor.flowlogs.files import flow_log_of_file
    from sgadvisor.flowlogs.ingest import read_records

    by_log: dict[str, list[Path]] = {}
    for path in sorted(flows.rglob("*.log.gz")):
        lines = []
        for block in read_records([path], Ledger()):
            frame = block.frame
            columns = [
                pl.col(f).cast(pl.String).fill_null("-") if f in frame.columns else pl.lit("-")
                for f in DEFAULT_FORMAT
            ]
            lines += frame.select(pl.concat_str(columns, separator=" ").alias("line"))["line"].to_list()
        target = out / path.relative_to(flows.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(target, "wt") as handle:
            handle.write(" ".join(DEFAULT_FORMAT) + "\n" + "".join(f"{line}\n" for line in lines))
        flow_log = flow_log_of_file(path)
        assert flow_log is not None
        by_log.setdefault(flow_log, []).append(target)
    return by_log


# ----------------------------------------------------------------------------------- property

_FORMAT = (
    "version", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes",
    "start", "end", "action", "log-status", "tcp-flags", "pkt-srcaddr", "pkt-dstaddr", "flow-direction",
    "subnet-id", "pkt-dst-aws-service",
)  # fmt: skip
_ENIS = ("eni-0a", "eni-0b", "eni-0c")
_ADDRESSES = ("10.0.1.10", "10.0.1.11", "10.0.2.15", "52.95.1.1", "2a05:d018:0:0::a", "2a05:d018::b")
_DAY0 = 1_793_491_200


@st.composite
def _record(draw: st.DrawFn) -> dict[str, str]:
    status = draw(st.sampled_from(["OK"] * 8 + ["NODATA", "SKIPDATA"]))
    day = draw(st.integers(0, 2))
    start = _DAY0 + day * 86_400 + draw(st.integers(0, 86_399))
    end = start + draw(st.integers(-5, 900))
    millis = draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())
    record = {
        "version": "5",
        "interface-id": draw(st.sampled_from([*_ENIS, "-"] if draw(st.integers(0, 20)) == 0 else _ENIS)),
        "start": str(start * 1000 if millis else start),
        "end": str(end * 1000 if millis else end),
        "log-status": status,
        "subnet-id": draw(st.sampled_from(["subnet-1", "subnet-2", "-"])),
    }
    if status != "OK":
        return {f: record.get(f, "-") for f in _FORMAT}
    port = st.one_of(st.sampled_from([0, 22, 443, 5432, 32767, 32768, 50051, 65535]), st.integers(0, 65535))
    src, dst = draw(st.sampled_from(_ADDRESSES)), draw(st.sampled_from(_ADDRESSES))
    record |= {
        "srcaddr": src,
        "dstaddr": dst,
        "srcport": str(draw(port)),
        "dstport": str(draw(port)),
        "protocol": draw(st.sampled_from(["6", "17", "1", "58"])),
        "packets": str(draw(st.integers(1, 50))),
        "bytes": str(draw(st.integers(40, 90_000))),
        "action": draw(st.sampled_from(["ACCEPT", "REJECT"])),
        "tcp-flags": draw(st.sampled_from(["0", "2", "18", "19", "3", "1", "16", "-"])),
        "pkt-srcaddr": draw(st.sampled_from([src, src, "-", "10.0.9.9"])),
        "pkt-dstaddr": draw(st.sampled_from([dst, dst, "-", "10.0.9.8"])),
        "flow-direction": draw(st.sampled_from(["ingress", "egress", "egress", "-"])),
        "pkt-dst-aws-service": draw(st.sampled_from(["-", "-", "S3", "AMAZON"])),
    }
    return {f: record.get(f, "-") for f in _FORMAT}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(
        st.tuples(
            st.sampled_from(["fl-0123456789abcdef0", "fl-89abcdef"]),
            st.lists(_record(), min_size=1, max_size=25),
        ),
        min_size=1,
        max_size=4,
    ),
    window_days=st.sampled_from([(0, 3), (1, 2), (0, 1)]),
    bucket=st.sampled_from(["32768-65535", "1024-65535"]),
)
def test_generated_records_give_the_file_edges(
    tmp_path_factory: pytest.TempPathFactory,
    files: list[tuple[str, list[dict[str, str]]]],
    window_days: tuple[int, int],
    bucket: str,
) -> None:
    """Any records (both address families and odd IPv6 spellings, pkt-addresses, every tcp-flags case,
    ports either side of the bucketing range, NODATA/SKIPDATA, records without interface, millisecond
    times, records either side of the window), delivered in daily folders: the Athena edges are the
    file path's, with and without an inventory."""
    from sgadvisor.flowlogs.edges import PortRange

    root = tmp_path_factory.mktemp("generated")
    for index, (flow_log, records) in enumerate(files):
        by_day: dict[int, list[str]] = {}
        for record in records:
            start = int(record["start"])
            day = ((start // 1000 if start > 10**12 else start) - _DAY0) // 86_400
            by_day.setdefault(day, []).append(" ".join(record[f] for f in _FORMAT))
        for day, lines in by_day.items():
            stamp = f"202611{day + 1:02d}"
            folder = root / "AWSLogs" / "123456789012" / "vpcflowlogs" / REGION / f"2026/11/{day + 1:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"123456789012_vpcflowlogs_{REGION}_{flow_log}_{stamp}T0000Z_{index:08x}.log.gz"
            with gzip.open(folder / name, "wt") as handle:
                handle.write(" ".join(_FORMAT) + "\n" + "".join(f"{line}\n" for line in lines))
    window = Window(_DAY0 + window_days[0] * 86_400, _DAY0 + window_days[1] * 86_400)
    ports = PortRange.parse(bucket)
    ddl = render_ddl(TEXT_LOCATION, _FORMAT, table="generated", regions=[REGION])
    table = Table.from_ddl(DATABASE, ddl, root, S3_ROOT)
    result = read_result_csv(
        result_csv(
            execute(edges_sql(_scheme(ddl), window, ports), {(DATABASE, "generated"): table}, DATABASE)
        )
    )
    for addresses in (None, {"eni-0a": ["10.0.1.10"], "eni-0b": ["2a05:d018::a", "10.0.1.11"]}):
        athena = flows_from_result(result, window, bucket=ports, addresses=addresses)
        options = IngestOptions(window=window, bucket=ports, max_malformed=1.0)
        file_flows = read_flows([root / "AWSLogs"], options, addresses=addresses)
        assert_same_flows(athena, file_flows, strict=False)


def test_the_output_location_is_the_workgroups_unless_given(stand: Stand) -> None:
    """--athena-output sets ResultConfiguration.OutputLocation; without it the workgroup's is used."""
    hour = Window(WINDOW_START, WINDOW_START + 3600)
    for output in (None, "s3://athena-results/mine/"):
        runner = _runner(stand, results="s3", output_location=output)
        read_athena(runner, stand.text[:1], hour)
        call = next(c for c in stand.athena.calls if c.operation == "StartQueryExecution")
        assert call.params["QueryExecutionContext"]["Database"] == DATABASE
        expected = {"OutputLocation": output} if output else None
        assert call.params.get("ResultConfiguration") == expected
        location = stand.athena.executions[runner.stats.execution_ids[0]].output
        assert location.startswith(output or RESULTS)
