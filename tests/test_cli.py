"""The command line contract: exit codes, atomic outputs, config files, messages without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sgadvisor.cli import main
from tests.conftest import DEFAULT_HEADER, default_line, write_lines


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    code = caught.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    return write_lines(
        tmp_path / "flows" / "f.log", [default_line(sport=40000 + i) for i in range(5)], header=DEFAULT_HEADER
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.startswith("sgadvisor ")


def test_edges_to_stdout_and_summary_on_stderr(flow_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["edges", "--flows", str(flow_file)]) == 0
    captured = capsys.readouterr()
    kinds = [json.loads(line)["kind"] for line in captured.out.splitlines()]
    assert kinds == ["window", "coverage", "edge"]
    assert "records 5: used 5" in captured.err


def test_edges_to_file(flow_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "edges.jsonl"
    assert run(["edges", "--flows", str(flow_file), "--out", str(out), "--quiet"]) == 0
    assert out.read_text().count('"kind":"edge"') == 1
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind


def test_unreadable_input_exits_2_with_a_hint_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "edges.jsonl"
    assert run(["edges", "--flows", str(tmp_path / "missing.log"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.log: no such file or directory" in err
    assert "hint: " in err and "Traceback" not in err
    assert not out.exists()


def test_too_many_malformed_exits_2_lists_places_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "f.log", [default_line(), "junk", "more junk"], header=DEFAULT_HEADER)
    out = tmp_path / "edges.jsonl"
    assert run(["edges", "--flows", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 of 3 records are malformed" in err
    assert f"{path}:3: expected 14 fields, found 1" in err
    assert not out.exists()
    assert run(["edges", "--flows", str(path), "--out", str(out), "--max-malformed", "0.9"]) == 0
    assert out.exists()


def test_usage_errors_exit_2(flow_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["edges", "--flows", str(flow_file), "--start", "2026-11-01"]) == 2
    assert "--start and --end go together" in capsys.readouterr().err
    assert run(["edges", "--flows", str(flow_file), "--start", "yesterday", "--end", "2026-11-02"]) == 2
    assert "neither ISO 8601 nor epoch seconds" in capsys.readouterr().err
    assert run(["edges", "--flows", str(flow_file), "--bucket-ports", "60000-1"]) == 2
    assert run(["edges", "--flows", str(flow_file), "--log-format", "${srcaddr} ${srcaddr}"]) == 2
    assert run(["edges", "--no-such-option"]) == 2


def test_window_options_filter_records(flow_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(["edges", "--flows", str(flow_file), "--start", "1793491300", "--end", "2030-01-01T00:00:00Z"])
        == 0
    )
    assert "outside the window 5" in capsys.readouterr().err


def test_config_file_supplies_defaults_and_rejects_typos(
    flow_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sgadvisor.toml"
    config.write_text("max-malformed = 0.5\n[edges]\nquiet = true\n")
    path = write_lines(tmp_path / "g.log", [default_line(), default_line(), "junk"], header=DEFAULT_HEADER)
    assert (
        run(["edges", "--config", str(config), "--flows", str(path), "--out", str(tmp_path / "o.jsonl")]) == 0
    )
    assert capsys.readouterr().err == ""  # quiet from [edges]
    # The command line wins over the file.
    assert run(["edges", "--config", str(config), "--flows", str(path), "--max-malformed", "0.1"]) == 2
    capsys.readouterr()
    config.write_text("max-malformd = 0.5\n")
    assert run(["edges", "--config", str(config), "--flows", str(flow_file)]) == 2
    err = capsys.readouterr().err
    assert "unknown option 'max-malformd'" in err and "max-malformed" in err


def test_default_config_is_read_from_the_working_directory(
    flow_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sgadvisor.toml").write_text("[edges]\nquiet = true\n")
    assert run(["edges", "--flows", str(flow_file), "--out", "o.jsonl"]) == 0
    assert capsys.readouterr().err == ""
    (tmp_path / "sgadvisor.toml").write_text("[[pin]]\ngroup = 'sg-1'\n")
    assert run(["edges", "--flows", str(flow_file)]) == 2
    assert "[[pin]] #1" in capsys.readouterr().err
