"""What the command line does on a terminal and in a pipe (issue 16): warnings printed (the first 20), a
reader that leaves early (`| head`), progress on a TTY only, Ctrl-C, unknown query fields, and records
the assumed format does not fit counting toward --max-malformed."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from sgadvisor.cli import main
from tests.conftest import DEFAULT_HEADER, REPO, default_line, write_lines

SAMPLE_FLOWS = str(REPO / "sample_data" / "flows")
SAMPLE_INVENTORY = str(REPO / "sample_data" / "inventory")
SAMPLE_BASELINE = str(REPO / "sample_data" / "expected" / "recommendation.json")
KINDS = ("rule-not-in-baseline", "rule-broader-than-baseline", "group-not-in-baseline", "flow-not-in-baseline",
         "baseline-rule-missing", "baseline-rule-unused")  # fmt: skip


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    code = caught.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sgadvisor", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "SGADVISOR_DEBUG": ""}


# ------------------------------------------------------------------------------------------ warnings


def test_a_window_shorter_than_min_window_is_a_printed_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """--min-window 30d on 8 days of data used to give every group `none` and say nothing."""
    assert (
        run(["recommend", "--flows", SAMPLE_FLOWS, "--inventory", SAMPLE_INVENTORY, "--min-window", "30d"])
        == 0
    )
    err = capsys.readouterr().err
    assert "warning: the window (8.0d) is shorter than --min-window 30.0d" in err
    assert run(["recommend", "--flows", SAMPLE_FLOWS, "--inventory", SAMPLE_INVENTORY, "--min-window", "30d",
                "--quiet"]) == 0  # fmt: skip
    assert "warning" not in capsys.readouterr().err


def _millis_files(tmp_path: Path, count: int) -> Path:
    """``count`` files whose start/end are written in milliseconds: one warning each, naming the file;
    the names carry a terminal escape and an Azure/GitHub log command."""
    folder = tmp_path / "flows"
    for i in range(count):
        name = f"f{i:02d}-\x1b[2J-##[error]x.log"
        write_lines(
            folder / name, [default_line(start=1_793_491_200_000, sport=40000 + i)], header=DEFAULT_HEADER
        )
    return folder


def test_warnings_first_20_then_how_many_more_all_with_verbose_none_with_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _millis_files(tmp_path, 25)
    out = tmp_path / "edges.jsonl"
    assert run(["edges", "--flows", str(folder), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(lines) == 21 and "milliseconds" in lines[19]
    assert lines[20] == "warning: … and 5 more not shown (--verbose prints them all)"
    # Made safe for a terminal and a CI log: the escape is visible, the log command broken.
    assert "\x1b" not in err and "\\x1b[2J" in err
    assert "##[error]" not in err and "#\\#[error]" in err

    assert run(["edges", "--flows", str(folder), "--out", str(out), "--verbose"]) == 0
    assert sum(line.startswith("warning: ") for line in capsys.readouterr().err.splitlines()) == 25
    assert run(["edges", "--flows", str(folder), "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_recommend_says_where_the_other_warnings_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """25 pins that match no rule: 25 warnings; 20 printed and the rest are in recommendation.json."""
    config = tmp_path / "sgadvisor.toml"
    config.write_text(
        "".join(
            f'[[pin]]\ngroup = "sg-{i:017x}"\nip_protocol = "tcp"\nfrom_port = 443\nto_port = 443\n'
            f'cidr_ipv4 = "10.9.9.{i}/32"\nreason = "test"\n\n'
            for i in range(25)
        )
    )
    out = tmp_path / "out"
    assert run(["recommend", "--config", str(config), "--flows", SAMPLE_FLOWS, "--inventory", SAMPLE_INVENTORY,
                "--out", str(out), "--format", "json"]) == 0  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    total = len(json.loads((out / "recommendation.json").read_text())["warnings"])
    assert total >= 25
    assert sum(line.startswith("warning: ") for line in err) == 21
    assert (
        f"warning: … and {total - 20} more in {out / 'recommendation.json'} (--verbose prints them all)"
        in err
    )


# --------------------------------------------------------------------------------------- closed pipe


def _edges_input(tmp_path: Path) -> Path:
    """About 1 MB of flow edges: far more than a pipe buffer holds."""
    lines = [default_line(dst=f"10.0.{i // 250}.{i % 250 + 1}", dport=1000 + i) for i in range(3000)]
    return write_lines(tmp_path / "many.log", lines, header=DEFAULT_HEADER)


CHECK = ["check", "--baseline", SAMPLE_BASELINE, "--flows", SAMPLE_FLOWS, "--inventory", SAMPLE_INVENTORY]


def _closed_pipe(tmp_path: Path, args: list[str], *, read_first: int = 0) -> tuple[int, str]:
    """Run with stdout a pipe whose reader goes away; the exit code and stderr."""
    process = subprocess.Popen(_cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                               env=_env())  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    if read_first:
        process.stdout.read(read_first)  # like head: read a little, then go away
    process.stdout.close()
    err = process.stderr.read().decode()
    process.wait(timeout=120)
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err, err
    return process.returncode, err


@pytest.mark.parametrize(
    "args",
    [
        ["recommend", "--flows", SAMPLE_FLOWS, "--inventory", SAMPLE_INVENTORY, "--out", "-"],
        ["query", "--flows", SAMPLE_FLOWS, "--output", "json"],
        # The same findings below --fail-on: 0, never typer's 1 for a closed pipe (drift, for check).
        [*CHECK, "--fail-on", "high", *(f"--severity={kind}=low" for kind in KINDS)],
    ],
)
def test_a_reader_that_leaves_early_ends_the_command_quietly(tmp_path: Path, args: list[str]) -> None:
    """`sgadvisor … | head -0`, or a reader that died: gone before the result (written at once) comes.
    (A reader that takes the first 64 KiB of it may let the write succeed or not, by chance.) No
    traceback, no "Exception ignored", the command's own exit code."""
    code, err = _closed_pipe(tmp_path, args)
    assert code == 0, err


def test_edges_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    """`sgadvisor edges --out - | head`: about 1 MB of edges, written line by line."""
    code, err = _closed_pipe(
        tmp_path, ["edges", "--out", "-", "--flows", str(_edges_input(tmp_path))], read_first=10
    )
    assert code == 0, err
    assert "records 3,000: used 3,000" in err  # the command finished: its summary still on stderr


def test_check_keeps_its_verdict_when_the_reader_leaves(tmp_path: Path) -> None:
    """Drift (the sample's current rules against its own recommendation) is still 1; no drift at or above
    --fail-on is 0, where typer's handling of a closed pipe said 1 (drift)."""
    assert _closed_pipe(tmp_path, CHECK)[0] == 1
    assert (
        _closed_pipe(tmp_path, [*CHECK, "--fail-on", "high", *(f"--severity={k}=low" for k in KINDS)])[0] == 0
    )


# ------------------------------------------------------------------------------------------ progress


def _on_a_pty(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (stdout to /dev/null); what the terminal showed."""
    master, slave = pty.openpty()
    process = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=slave, cwd=cwd, env=_env())
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return process.wait(timeout=120), shown.decode(errors="replace")


def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    args = ["recommend", "--flows", SAMPLE_FLOWS, "--inventory", SAMPLE_INVENTORY]
    code, shown = _on_a_pty(args, tmp_path)
    assert code == 0, shown
    assert "sgadvisor: reading: 0/" in shown and " files, " in shown and " records" in shown
    assert "sgadvisor: analysis: " in shown and "records/s" in shown
    assert "\r\x1b[K" in shown  # one line, rewritten in place and cleared before the table

    code, shown = _on_a_pty([*args, "--quiet"], tmp_path)
    assert code == 0 and "sgadvisor: reading" not in shown and "\x1b[K" not in shown

    done = subprocess.run(_cli(*args), capture_output=True, text=True, cwd=tmp_path, env=_env(), check=False)
    assert done.returncode == 0
    assert "sgadvisor: reading" not in done.stderr and "\x1b[K" not in done.stderr  # not a terminal


# -------------------------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_is_one_line_and_130_even_for_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C never reaches click/typer (which turn it into "Aborted!" and exit 1 in some versions:
    `check`'s exit code for drift)."""
    import sgadvisor.check.run

    def interrupt(*_args: object, **_kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(sgadvisor.check.run, "run_check", interrupt)
    code = run(
        ["check", "--baseline", SAMPLE_BASELINE, "--flows", SAMPLE_FLOWS, "--inventory", SAMPLE_INVENTORY]
    )
    assert code == 130
    assert capsys.readouterr().err == "error: interrupted (Ctrl-C)\n"


# ------------------------------------------------------------------------------------------ query


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--count-by", "srcAddr,scrPort"],
            "--count-by 'scrPort': not a field of the default flow-log format (did you mean srcPort?)",
        ),
        (
            ["--sort", "bytse"],
            "--sort 'bytse': not a field of the default flow-log format (did you mean bytes?)",
        ),
        (
            ["--count-by", "dstPort", "--sort", "srcAddr"],
            "--sort 'srcAddr': after --count-by only num, dstPort exist",
        ),
    ],
)
def test_an_unknown_query_field_is_a_usage_error_offline_and_printed(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to warn and print one blank row."""
    assert run(["query", "--flows", SAMPLE_FLOWS, *options]) == 2
    assert f"error: {message}" in capsys.readouterr().err
    assert run(["query", "--print-query", *options]) == 2
    assert f"error: {message}" in capsys.readouterr().err


def test_fields_of_the_format_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "--print-query", "--count-by", "dstAddr,dstPort", "--sort", "num"]) == 0
    fmt = "${version} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${action} ${log-status}"
    assert run(["query", "--print-query", "--log-format", fmt, "--count-by", "pktSrcaddr"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "| stats count(*) as num by pktSrcaddr"
    assert run(["query", "--print-query", "--log-format", fmt, "--count-by", "dstPort"]) == 2
    assert "not a field of the --log-format" in capsys.readouterr().err


def test_max_malformed_applies_to_query_flows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = [default_line(sport=40000 + i) for i in range(3)]
    path = write_lines(tmp_path / "f.log", [*good, "2 123456789012 eni-0aaa 10.0.1.10 x 1 2 6 1 1 1 2 ACCEPT OK"],
                       header=DEFAULT_HEADER)  # fmt: skip
    assert run(["query", "--flows", str(path), "stats count(*) as n"]) == 2
    assert "above --max-malformed 0.01" in capsys.readouterr().err
    assert run(["query", "--flows", str(path), "--max-malformed", "0.3", "stats count(*) as n"]) == 0


# ------------------------------------------------------------------------------ the format does not fit


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        # A custom format without interface-id read as what it says: no record can be attributed.
        (
            "version account-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
            "no interface id",
        ),
        (
            "version account-id interface-id dstaddr srcport dstport protocol packets bytes start end action "
            "log-status",
            "lacks address, protocol or action",
        ),
    ],
)
def test_records_the_assumed_format_does_not_fit_count_as_malformed(
    tmp_path: Path, header: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = header.split()
    values = dict(zip(DEFAULT_HEADER.split(), default_line().split(), strict=True))
    path = write_lines(tmp_path / "f.log", [" ".join(values[f] for f in fields)] * 50, header=header)
    out = tmp_path / "edges.jsonl"
    assert run(["edges", "--flows", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"50 of 50 records are malformed or do not fit the assumed format (50 {reason})" in err
    assert not out.exists()
    assert run(["edges", "--flows", str(path), "--out", str(out), "--max-malformed", "1"]) == 0


def test_insights_records_of_a_format_wrongly_assumed_are_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log group whose custom format DescribeFlowLogs did not name is read as the default format: its
    records have no interface id. That used to leave every group unjudged with exit 0 and one warning."""
    import sgadvisor.aws.source
    from sgadvisor.aws.discovery import Discovery
    from sgadvisor.aws.flows import InsightsRead
    from sgadvisor.aws.insights import RunStats
    from sgadvisor.flowlogs.ingest import IngestOptions, read_flows

    header = "version account-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    values = dict(zip(DEFAULT_HEADER.split(), default_line().split(), strict=True))
    path = write_lines(tmp_path / "f.log", [" ".join(values[f] for f in header.split())] * 20, header=header)
    flows = read_flows([path], IngestOptions(max_malformed=1.0))
    warning = "log group vpc-flows: no flow log in DescribeFlowLogs writes to it; default format assumed"

    def load_aws_flows(*_args: object, **_kwargs: object) -> tuple[InsightsRead, Discovery]:
        return InsightsRead(flows, RunStats(), 0), Discovery((), (warning,))

    monkeypatch.setattr(sgadvisor.aws.source, "load_aws_flows", load_aws_flows)
    monkeypatch.setattr(sgadvisor.aws.source.AwsClients, "create", staticmethod(lambda *_a, **_k: object()))
    out = tmp_path / "out"
    argv = ["recommend", "--inventory", SAMPLE_INVENTORY, "--log-group", "vpc-flows", "--internet", "port"]
    assert run([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "20 of 20 records are malformed or do not fit the assumed format (20 no interface id)" in err
    assert not out.exists()
    code = run(["recommend", "--inventory", SAMPLE_INVENTORY, "--log-group", "vpc-flows", "--out", str(out),
                "--max-malformed", "1", "--internet", "port"])  # fmt: skip
    assert code == 0
    assert f"warning: {warning}" in capsys.readouterr().err
