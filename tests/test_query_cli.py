"""`sgadvisor query --flows`: the seed's questions answered on local files, in every output format, with
the service's errors and caps."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_HEADER, REPO, default_line, write_lines
from tests.test_cli import run

FLOWS = str(REPO / "sample_data" / "flows")
SEED = ["--eni", "eni-0e7ae111222111000", "--src", "10.0.1.10", "--count-by", "srcAddr,dstAddr,dstPort"]


def test_the_seed_question_was_it_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "--flows", FLOWS, *SEED, "--action", "REJECT", "--dst", "10.0.2.15", "--dst-port", "22",
                "--output", "json", "--quiet"]) == 0  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert document["fields"] == ["srcAddr", "dstAddr", "dstPort", "num"]
    (row,) = document["rows"]
    assert row["srcAddr"] == "10.0.1.10" and row["dstAddr"] == "10.0.2.15" and row["dstPort"] == "22"
    assert int(row["num"]) > 0
    assert document["capped"] is False and document["limit"] == 10_000


def test_accepted_destinations_sorted_by_count_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "--flows", FLOWS, *SEED, "--action", "ACCEPT", "--sort", "num:desc"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["srcAddr", "dstAddr", "dstPort", "num"]
    counts = [int(line.split()[-1]) for line in lines[2:]]
    assert counts == sorted(counts, reverse=True) and counts
    assert "10.0.2.15" not in [line.split()[1] for line in lines[2:] if line.split()[2] == "22"]
    assert "records matched" in captured.err


def test_csv_output_parses(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(["query", "stats count(*) as n by action", "--flows", FLOWS, "--output", "csv", "--quiet"]) == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["action"] for r in rows} >= {"ACCEPT", "REJECT"}


def test_the_cap_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "fields srcAddr | limit 5", "--flows", FLOWS]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 + 5
    assert "limited to 5 rows (the query's limit" in captured.err


def test_a_syntax_error_points_at_the_position(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "filter srcAddr = | stats count(*)", "--flows", FLOWS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: query syntax error at line 1, column")
    assert "^" in err


def test_an_unknown_field_warns_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "filter scrPort = 22 | stats count(*) as n", "--flows", FLOWS]) == 0
    assert "did you mean srcPort?" in capsys.readouterr().err


def test_unsupported_offline_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "fields @message | unnest x into y", "--flows", FLOWS]) == 2
    assert "not supported offline" in capsys.readouterr().err


def test_a_malformed_line_is_reported_against_everything_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad line is skipped with its place, and the accounting counts the good records too (it used to
    say "records 1: used 0" next to thousands of matched records)."""
    good = [default_line(src="10.0.1.10", dst="10.0.2.15", sport=40000 + i, dport=443) for i in range(3)]
    path = write_lines(tmp_path / "f.log", [*good, "2 123456789012 eni-0aaa 10.0.1.10 x 1 2 6 1 1 1 2 ACCEPT OK"],
                       header=DEFAULT_HEADER)  # fmt: skip
    # 1 of 4 is above the default --max-malformed (0.01): exit 2 as for edges, unless accepted.
    assert run(["query", "--flows", str(path), "stats count(*) as n"]) == 2
    assert "1 of 4 records are malformed" in capsys.readouterr().err
    assert run(["query", "--flows", str(path), "--max-malformed", "0.5", "stats count(*) as n"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].strip() == "3"
    assert "records 4: used 3, nodata 0, skipdata 0, malformed 1" in captured.err
    assert "f.log:5: dstaddr: x is not an IP address" in captured.err
