"""Athena from the command line, offline (issue 19): `recommend --athena-ddl … --print-sql` prints the SQL
with no AWS call; the result CSVs Athena writes for it (`--athena-result`, here written by the project's
DuckDB engine over the sample's S3 files) give the same security groups as the files themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sgadvisor.cli import main
from sgadvisor.timeparse import format_instant
from tests.conftest import REPO
from tests.standins.athena_engine import Table, execute, result_csv
from tests.standins.athena_estate import DATABASE, S3_ROOT, text_tables
from tests.standins.sample_estate import WINDOW_END, WINDOW_START

SAMPLE = REPO / "sample_data"
WINDOW = ["--start", format_instant(WINDOW_START), "--end", format_instant(WINDOW_END)]


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        main(argv)
    return int(done.value.code or 0)


def test_printed_sql_then_its_results_recommend_as_the_files_do(
    no_aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = text_tables(SAMPLE / "flows")  # one table per format under the one S3 prefix
    ddl_files = []
    for index, table in enumerate(tables):
        ddl_files += ["--athena-ddl", str(tmp_path / f"table-{index}.sql")]
        (tmp_path / f"table-{index}.sql").write_text(table.ddl)
    inventory = ["--inventory", str(SAMPLE / "inventory")]
    assert _run(["recommend", *inventory, *ddl_files, "--print-sql", *WINDOW]) == 0
    sql = capsys.readouterr().out.strip()
    statements = [s for s in sql.split(";\n") if s.strip()]
    assert len(statements) == len(tables) and all("SELECT" in s for s in statements)

    registered = {}
    for table in tables:
        engine_table = Table.from_ddl(DATABASE, table.ddl, SAMPLE / "flows", S3_ROOT)
        registered[(DATABASE, engine_table.name)] = engine_table
    results = []
    for index, statement in enumerate(statements):
        path = tmp_path / f"result-{index}.csv"
        path.write_bytes(result_csv(execute(statement.rstrip(";"), registered, DATABASE)))
        results += ["--athena-result", str(path)]

    out_athena, out_files = tmp_path / "athena", tmp_path / "files"
    assert (
        _run(["recommend", *inventory, *results, *WINDOW, "--format", "json", "-q", "--out", str(out_athena)])
        == 0
    )
    flows = ["--flows", str(SAMPLE / "flows")]
    assert (
        _run(["recommend", *inventory, *flows, *WINDOW, "--format", "json", "-q", "--out", str(out_files)])
        == 0
    )
    athena = json.loads((out_athena / "recommendation.json").read_text())
    files = json.loads((out_files / "recommendation.json").read_text())
    assert athena["collection"]["source"] == "athena"
    assert athena["security_groups"] == files["security_groups"]
    assert athena["rejected_egress"] == files["rejected_egress"]


def test_print_sql_needs_the_table_definition_offline(
    no_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(
        ["recommend", "--inventory", str(SAMPLE / "inventory"), "--athena-table", "db.flows", "--print-sql"]
    )
    assert code == 2
    assert "--athena-ddl" in capsys.readouterr().err


def test_athena_ddl_prints_a_statement_the_reader_parses_back(capsys: pytest.CaptureFixture[str]) -> None:
    from sgadvisor.athena.ddl import parse_ddl

    location = "s3://flow-logs-bucket/AWSLogs/123456789012/vpcflowlogs/eu-west-1/"
    fmt = "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags}"
    assert _run(["athena-ddl", "--location", location, "--log-format", fmt, "--table", "flows_v3"]) == 0
    scheme = parse_ddl(capsys.readouterr().out)
    assert "tcp_flags" in {c.name for c in scheme.columns}
    assert _run(["athena-ddl", "--location", "s3://flow-logs-bucket/elsewhere/"]) == 2
    assert "vpcflowlogs/ folder" in capsys.readouterr().err


def test_check_reads_athena_results_too(
    no_aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The drift gate over Athena's result files: the sample's own recommendation as the baseline, the
    same flows from Athena: the same findings and exit code as from the files."""
    tables = text_tables(SAMPLE / "flows")
    registered = {}
    for table in tables:
        engine_table = Table.from_ddl(DATABASE, table.ddl, SAMPLE / "flows", S3_ROOT)
        registered[(DATABASE, engine_table.name)] = engine_table
    args: list[str] = []
    for index, table in enumerate(tables):
        (tmp_path / f"t{index}.sql").write_text(table.ddl)
        args += ["--athena-ddl", str(tmp_path / f"t{index}.sql")]
    from sgadvisor.athena.ddl import parse_ddl
    from sgadvisor.athena.flows import AthenaTable, print_sql
    from sgadvisor.flowlogs.edges import Window

    window = Window(WINDOW_START, WINDOW_END)
    sql = print_sql([AthenaTable(parse_ddl(t.ddl), t.flow_logs) for t in tables], window)
    results = []
    for index, statement in enumerate(s for s in sql.split(";\n") if s.strip()):
        (tmp_path / f"r{index}.csv").write_bytes(
            result_csv(execute(statement.rstrip(";"), registered, DATABASE))
        )
        results += ["--athena-result", str(tmp_path / f"r{index}.csv")]
    baseline = tmp_path / "base"
    flows = ["--flows", str(SAMPLE / "flows")]
    inventory = ["--inventory", str(SAMPLE / "inventory")]
    assert (
        _run(["recommend", *inventory, *flows, *WINDOW, "--format", "json", "-q", "--out", str(baseline)])
        == 0
    )
    base = ["--baseline", str(baseline / "recommendation.json"), "--fail-on", "low"]
    capsys.readouterr()
    code_files = _run(["check", *inventory, *flows, *WINDOW, *base])
    from_files = capsys.readouterr().out
    code_athena = _run(["check", *inventory, *results, *WINDOW, *base])
    assert (code_athena, capsys.readouterr().out) == (code_files, from_files)
    assert code_files in (0, 1)  # a verdict, not an error


def _printed_results(tmp_path: Path, sql: str) -> list[str]:
    """``--athena-result`` options: each printed statement run by the project's DuckDB engine over the
    sample's S3 files, its result CSV written as Athena writes it."""
    registered = {}
    for table in text_tables(SAMPLE / "flows"):
        engine_table = Table.from_ddl(DATABASE, table.ddl, SAMPLE / "flows", S3_ROOT)
        registered[(DATABASE, engine_table.name)] = engine_table
    results = []
    for index, statement in enumerate(s for s in sql.split(";\n") if s.strip()):
        path = tmp_path / f"edges-result-{index}.csv"
        path.write_bytes(result_csv(execute(statement.rstrip(";"), registered, DATABASE)))
        results += ["--athena-result", str(path)]
    return results


def _ddl_options(tmp_path: Path) -> list[str]:
    options = []
    for index, table in enumerate(text_tables(SAMPLE / "flows")):
        path = tmp_path / f"edges-table-{index}.sql"
        path.write_text(table.ddl)
        options += ["--athena-ddl", str(path)]
    return options


def _lines_by_kind(path: Path) -> dict[str, list[dict[str, object]]]:
    by_kind: dict[str, list[dict[str, object]]] = {}
    for line in path.read_text().splitlines():
        parsed = json.loads(line)
        by_kind.setdefault(str(parsed["kind"]), []).append(parsed)
    return {
        kind: sorted(lines, key=lambda d: json.dumps(d, sort_keys=True)) for kind, lines in by_kind.items()
    }


def test_edges_from_athena_results_are_the_files_edges(
    no_aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edges --print-sql` (the tables' DDL, no AWS call), the SQL run, then `edges --athena-result`:
    the same window, coverage and edge lines as `edges --flows` over the same files and window."""
    inventory = ["--inventory", str(SAMPLE / "inventory")]
    assert _run(["edges", *inventory, *_ddl_options(tmp_path), "--print-sql", *WINDOW]) == 0
    sql = capsys.readouterr().out.strip()
    assert "SELECT" in sql
    athena_out, files_out = tmp_path / "athena.jsonl", tmp_path / "files.jsonl"
    results = _printed_results(tmp_path, sql)
    assert _run(["edges", *inventory, *results, *WINDOW, "-q", "--out", str(athena_out)]) == 0
    # The S3 delivery Athena reads (sample_data/flows also holds a CloudWatch Logs export, not in S3).
    delivered = ["--flows", str(SAMPLE / "flows" / "AWSLogs")]
    assert _run(["edges", *delivered, *inventory, *WINDOW, "-q", "--out", str(files_out)]) == 0
    athena, files = _lines_by_kind(athena_out), _lines_by_kind(files_out)
    assert athena["window"] == files["window"]
    assert athena["coverage"] == files["coverage"]
    assert len(athena["edge"]) > 10 and athena["edge"] == files["edge"]
    # The file read back by --flows is the same evidence either way.
    out_athena, out_files = tmp_path / "rec-athena", tmp_path / "rec-files"
    for source, out in ((athena_out, out_athena), (files_out, out_files)):
        argv = ["recommend", *inventory, "--flows", str(source), "--format", "json", "-q", "--out", str(out)]
        assert _run(argv) == 0
    recommended = [json.loads((out / "recommendation.json").read_text()) for out in (out_athena, out_files)]
    assert recommended[0]["security_groups"] == recommended[1]["security_groups"]


def test_edges_print_sql_makes_no_aws_call(
    no_aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --inventory too: each statement then reads every flow log's files of its format's table."""
    for inventory in (["--inventory", str(SAMPLE / "inventory")], []):
        out = ["--out", str(tmp_path / "x.jsonl")]
        argv = ["edges", *inventory, *_ddl_options(tmp_path), "--print-sql", *WINDOW, *out]
        assert _run(argv) == 0
        statements = [s for s in capsys.readouterr().out.split(";\n") if s.strip()]
        assert len(statements) == len(text_tables(SAMPLE / "flows"))
        assert all("SELECT" in s for s in statements)
    assert not (tmp_path / "x.jsonl").exists()  # printed, nothing written
    # --print-sql with a table name only needs its definition: that would be an AWS call.
    assert _run(["edges", "--athena-table", "db.flows", "--print-sql", *WINDOW]) == 2
    assert "--athena-ddl" in capsys.readouterr().err


def test_edges_take_one_flow_source(no_aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = ["--flows", str(SAMPLE / "flows")]
    ddl = _ddl_options(tmp_path)[:2]
    assert _run(["edges", *flows, *ddl, *WINDOW]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert _run(["edges", *flows, "--athena-result", str(tmp_path / "r.csv"), *WINDOW]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert _run(["edges", *WINDOW]) == 2
    assert "--flows" in capsys.readouterr().err
    # Result files carry no window: it must be the one the SQL was printed for.
    assert _run(["edges", "--athena-result", str(tmp_path / "r.csv")]) == 2
    assert "--start and --end" in capsys.readouterr().err


def test_collect_athena_options_need_flows_out(
    no_aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ddl = _ddl_options(tmp_path)[:2]
    assert _run(["collect", "--out", str(tmp_path / "inv"), *ddl]) == 2
    assert "--flows-out" in capsys.readouterr().err
    argv = ["collect", "--out", str(tmp_path / "inv"), "--flows-out", str(tmp_path / "e.jsonl"), *ddl]
    assert _run([*argv, "--log-group", "flows"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "inv").exists()


def test_collect_reads_the_flows_with_athena(
    no_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`collect --flows-out` with --athena-table: the snapshot from moto's EC2 (the sample estate created
    in it, the sample's flow files written with moto's ids), the flow edges from the local Athena endpoint
    (GetTableMetadata, the queries, the result pages; the tables restricted by the collected flow logs):
    the file `edges --flows` writes from the same files with the collected snapshot."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.standins.athena_server import AthenaServer, Behaviour
    from tests.standins.moto_estate import create_estate
    from tests.standins.sample_estate import build_estate, generate

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_EC2": endpoint}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        ec2 = boto3.client("ec2", region_name="eu-west-1", endpoint_url=endpoint)
        estate = build_estate()
        id_map = create_estate(ec2, estate)
        sample = tmp_path / "sample"
        generate(sample, id_map)
        vpc = id_map[estate.vpc.vpc_id]
        # Two hours: a result of one page each (no S3 needed for it).
        day = WINDOW_START + 86_400
        window = ["--start", format_instant(day), "--end", format_instant(day + 7200)]
        with AthenaServer(s3=None, behaviour=Behaviour(running_polls=0)) as athena:
            tables = []
            for spec in text_tables(sample / "flows"):
                name = athena.register_table(DATABASE, spec.ddl, sample / "flows", S3_ROOT).name
                tables += ["--athena-table", f"{DATABASE}.{name}"]
            monkeypatch.setenv("AWS_ENDPOINT_URL_ATHENA", athena.endpoint_url)
            collected, inventory = tmp_path / "collected.jsonl", tmp_path / "inv"
            argv = ["collect", "--vpc", vpc, "--out", str(inventory), "--flows-out", str(collected), *tables]
            assert _run([*argv, *window, "--history", "none", "-q"]) == 0
            assert athena.count("StartQueryExecution", succeeded=True) == len(tables) // 2
    finally:
        moto.stop()
    snapshot = json.loads((inventory / "describe-network-interfaces.json").read_text())
    assert {e["NetworkInterfaceId"] for e in snapshot["NetworkInterfaces"]} >= {
        id_map.get(e.eni_id, e.eni_id) for e in estate.network_interfaces
    }
    # The same snapshot decides the direction of records without flow-direction on both sides.
    files = tmp_path / "files.jsonl"
    from_files = ["edges", "--flows", str(sample / "flows" / "AWSLogs"), "--inventory", str(inventory)]
    assert _run([*from_files, *window, "-q", "--out", str(files)]) == 0
    athena_lines, files_lines = _lines_by_kind(collected), _lines_by_kind(files)
    assert athena_lines["edge"] and athena_lines == files_lines
