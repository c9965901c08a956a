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
