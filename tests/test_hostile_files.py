"""Hostile --flows inputs end cleanly: skipped and listed, read with a warning, or a message and exit 2.

Never a traceback, a hang or unbounded memory. Every case uses real files on disk: FIFOs, sockets,
symlinks (dangling, looping, to a device), permissions, a gzip bomb generated on the fly.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.accounting import Ledger
from sgadvisor.cli import main
from sgadvisor.errors import InputError, MissingFlowDataError
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows, read_records
from tests.conftest import DEFAULT_HEADER, REPO, default_line, write_lines

LENIENT = IngestOptions(max_malformed=1.0)
ALLOW = IngestOptions(allow_missing=True)
GOOD = [default_line(sport=40000 + i, start=1_793_491_200 + 60 * i) for i in range(5)]
INVENTORY = REPO / "sample_data" / "inventory"
# An ENI of the sample inventory (app group) and a peer of it.
ENI, OWN, PEER = "eni-015f97e94fda8267e", "10.0.2.16", "10.0.4.20"


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    code = caught.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)


def _reasons(flows: FlowEdges) -> dict[str, str]:
    return {Path(i.file).name: i.reason for i in flows.accounting.issues if i.line is None}


def _within(seconds: float, call: Callable[[], Any], unblock: Callable[[], None]) -> Any:
    """``call()`` in a thread; fail (after ``unblock()`` releases it) if it has not returned in time."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        unblock()
        thread.join(seconds)
        pytest.fail(f"still running after {seconds}s (blocked)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _release_fifo(fifo: Path) -> Callable[[], None]:
    def unblock() -> None:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        os.close(fd)

    return unblock


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "flows" / "agent.sock"
    path.parent.mkdir(parents=True, exist_ok=True)
    # AF_UNIX paths are limited to ~107 bytes: bind from inside the folder.
    cwd = Path.cwd()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.chdir(path.parent)
        server.bind(path.name)
    finally:
        os.chdir(cwd)
    yield path
    server.close()


# ------------------------------------------------------------------------------------ 1. special files


def test_fifo_socket_and_device_in_a_walked_folder_are_skipped_and_listed(
    tmp_path: Path, unix_socket: Path
) -> None:
    """Opening a FIFO blocks until a writer comes: it must never be opened, only listed."""
    flows_dir = unix_socket.parent
    write_lines(flows_dir / "good.log", GOOD, header=DEFAULT_HEADER)
    fifo = flows_dir / "pipe.log"
    os.mkfifo(fifo)
    (flows_dir / "null.log").symlink_to("/dev/null")  # a character device behind a symlink
    flows = _within(20, lambda: read_flows([flows_dir]), _release_fifo(fifo))
    assert flows.accounting.used == len(GOOD)
    reasons = _reasons(flows)
    assert reasons["pipe.log"] == "skipped, not a regular file (a FIFO)"
    assert reasons["agent.sock"] == "skipped, not a regular file (a socket)"
    assert reasons["null.log"] == "skipped, not a regular file (a character device)"
    # query --flows reads the same way
    ledger = Ledger()
    blocks = _within(20, lambda: list(read_records([flows_dir], ledger)), _release_fifo(fifo))
    assert sum(b.frame.height for b in blocks) == len(GOOD)
    assert len(ledger.skipped_files) == 3


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_special_file_named_on_the_command_line_exits_2_naming_it(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "named.log"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/null")
    expected = "a FIFO" if kind == "fifo" else "a character device"
    code = _within(20, lambda: run(["edges", "--flows", str(path)]), _release_fifo(path))
    assert code == 2
    err = capsys.readouterr().err
    assert f"named.log: not a regular file or directory ({expected})" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------ 2. unreadable parts


@pytest.fixture
def broken_links(tmp_path: Path) -> Path:
    """A flows folder with one good file, a dangling symlink and a symlink pointing at itself."""
    flows_dir = tmp_path / "flows"
    write_lines(flows_dir / "good.log", GOOD, header=DEFAULT_HEADER)
    (flows_dir / "gone.log").symlink_to(tmp_path / "rotated-away.log")
    (flows_dir / "loop.log").symlink_to("loop.log")
    return flows_dir


def test_unreadable_paths_stop_the_run_naming_them(broken_links: Path) -> None:
    with pytest.raises(MissingFlowDataError) as caught:
        read_flows([broken_links])
    message = caught.value.message
    assert message.startswith("2 input paths could not be read: ")
    assert f"{broken_links / 'gone.log'}: dangling symlink" in message
    assert f"{broken_links / 'loop.log'}: symlink loop" in message
    assert caught.value.hint is not None and "--allow-missing" in caught.value.hint
    assert isinstance(caught.value, InputError)
    # the same for query --flows
    with pytest.raises(MissingFlowDataError):
        list(read_records([broken_links], Ledger()))


def test_allow_missing_reads_the_rest_and_keeps_the_unreadable_listed(broken_links: Path) -> None:
    flows = read_flows([broken_links], ALLOW)
    assert flows.accounting.used == len(GOOD)
    reasons = _reasons(flows)
    assert reasons["gone.log"].startswith("skipped, unreadable: dangling symlink")
    assert reasons["loop.log"].startswith("skipped, unreadable: symlink loop")
    ledger = Ledger()
    records = list(read_records([broken_links], ledger, ALLOW))
    assert sum(b.frame.height for b in records) == len(GOOD)
    assert sorted(Path(i.file).name for i in ledger.unreadable) == ["gone.log", "loop.log"]


def test_unreadable_input_exits_2_on_the_command_line(
    broken_links: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "edges.jsonl"
    assert run(["edges", "--flows", str(broken_links), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 input paths could not be read" in err and "--allow-missing" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert run(["query", "fields @message", "--flows", str(broken_links)]) == 2
    assert "could not be read" in capsys.readouterr().err


def test_a_dangling_symlink_named_on_the_command_line_is_unreadable(tmp_path: Path) -> None:
    link = tmp_path / "named.log"
    link.symlink_to(tmp_path / "nowhere.log")
    with pytest.raises(MissingFlowDataError, match=r"named\.log: dangling symlink"):
        read_flows([link])
    assert read_flows([link], ALLOW).accounting.records == 0


_AS_UNPRIVILEGED = """
import json, sys
from pathlib import Path
from sgadvisor.errors import MissingFlowDataError
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
top = Path(sys.argv[1])
try:
    read_flows([top])
    strict = None
except MissingFlowDataError as exc:
    strict = exc.message
flows = read_flows([top], IngestOptions(allow_missing=True))
print(json.dumps({"strict": strict, "used": flows.accounting.used,
                  "issues": [[i.file, i.reason] for i in flows.accounting.issues]}))
"""


def test_permission_denied_folder_and_file_are_unreadable(tmp_path: Path) -> None:
    """A folder os.walk cannot list and a file that cannot be opened (real EACCES). Root reads everything,
    so as root the reader runs in a child without the capabilities that bypass file modes."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: file modes do not stop root")
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    flows_dir = tmp_path / "flows"
    write_lines(flows_dir / "good.log", GOOD, header=DEFAULT_HEADER)
    write_lines(flows_dir / "secret.log", GOOD, header=DEFAULT_HEADER).chmod(0o000)
    locked = flows_dir / "locked"
    write_lines(locked / "inner.log", GOOD, header=DEFAULT_HEADER)
    locked.chmod(0o000)
    try:
        done = subprocess.run(
            [*prefix, sys.executable, "-c", _AS_UNPRIVILEGED, str(flows_dir)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        locked.chmod(0o755)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["strict"].startswith("2 input paths could not be read")
    assert result["used"] == len(GOOD)
    unreadable = {Path(f).name: r for f, r in result["issues"] if "unreadable" in r}
    assert unreadable == {
        "locked": "skipped, unreadable: Permission denied",
        "secret.log": "skipped, unreadable: Permission denied",
    }


# ------------------------------------------------------------------------------------ 3. gzip bomb

_MEASURE = """
import json, resource, sys
from pathlib import Path
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    flows = read_flows([Path(sys.argv[1])], IngestOptions(max_malformed=1.0), fast=sys.argv[2] == "fast")
    result = {"used": flows.accounting.used, "malformed": flows.accounting.malformed,
              "issues": [[i.file, i.line, i.reason] for i in flows.accounting.issues]}
except Exception as exc:
    result = {"error": f"{type(exc).__name__}: {exc}"}
result["growth_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(result))
"""
_BOMB_MIB = 1024


def _write_bomb(path: Path, *, records_around: bool) -> Path:
    """A gzip of a 1 GiB line with no newline (a few MB on disk), streamed: never in memory here."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"a" * (1 << 20)
    with path.open("wb") as out:
        if records_around:
            out.write(
                compressor.compress(f"{DEFAULT_HEADER}\n".encode() + "\n".join(GOOD[:3]).encode() + b"\n")
            )
        for _ in range(_BOMB_MIB):
            out.write(compressor.compress(chunk))
        if records_around:
            out.write(compressor.compress(b"\n" + "\n".join(GOOD[3:]).encode() + b"\n"))
        out.write(compressor.flush())
    return path


def _measure(path: Path, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), mode],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def bomb_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sgadvisor-bomb-") as name:
        yield Path(name)


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_a_gzip_bomb_line_is_malformed_in_bounded_memory(bomb_dir: Path, mode: str) -> None:
    """1 GiB of 'a' between records: the fast path must not hand it to the engine (which inflates a
    member whole), and the careful path drops the line's bytes as they stream. Memory growth stays far
    below the inflated size; the line is counted as malformed at its line number, the records around it
    are kept."""
    bomb = bomb_dir / "bomb.log.gz"
    if not bomb.exists():
        _write_bomb(bomb, records_around=True)
    assert bomb.stat().st_size < 8 * 1024 * 1024
    result = _measure(bomb, mode)
    assert "error" not in result, result
    assert result["growth_mib"] < 300, result
    assert (result["used"], result["malformed"]) == (len(GOOD), 1)
    [[_file, line, reason]] = [i for i in result["issues"] if i[1] is not None]
    assert line == 5  # header, three records, then the long line
    assert reason == f"line of {_BOMB_MIB << 20} bytes, longer than any flow record (65536)"


def test_a_gzip_bomb_without_newline_in_a_folder_is_skipped_and_listed(bomb_dir: Path) -> None:
    folder = bomb_dir / "walk"
    folder.mkdir(exist_ok=True)
    _write_bomb(folder / "bomb.gz", records_around=False)
    write_lines(folder / "good.log", GOOD, header=DEFAULT_HEADER)
    result = _measure(folder, "fast")
    assert result["growth_mib"] < 300, result
    assert result["used"] == len(GOOD)
    assert [r for _f, _l, r in result["issues"]] == [
        f"skipped, not a flow log: line 1 is {_BOMB_MIB << 20} bytes long, and no flow-log text"
    ]


def test_a_long_line_in_plain_text_is_malformed_and_located(tmp_path: Path) -> None:
    """A plain file too: 300 KiB without a newline is one malformed line (both paths), not a block."""
    path = tmp_path / "long.log"
    path.write_bytes(
        "\n".join([DEFAULT_HEADER, *GOOD[:2]]).encode()
        + b"\n"
        + b"x" * 300_000
        + b"\n"
        + GOOD[2].encode()
        + b"\n"
    )
    for fast in (True, False):
        flows = read_flows([path], LENIENT, fast=fast, block_bytes=64 * 1024)
        assert (flows.accounting.used, flows.accounting.malformed) == (3, 1)
        assert [(i.line, i.reason) for i in flows.accounting.issues] == [
            (4, "line of 300000 bytes, longer than any flow record (65536)")
        ]


# ------------------------------------------------------------------------------------ 4. milliseconds

MS_START = 1_793_491_200


def _ms_line(i: int, *, start: int | None = None, end: int | None = None) -> str:
    begin = (MS_START + 60 * i) * 1000 if start is None else start
    finish = (MS_START + 60 * i + 60) * 1000 if end is None else end
    return f"2 123456789012 eni-0aaa 10.0.1.10 10.0.2.15 {40000 + i} 443 6 10 840 {begin} {finish} ACCEPT OK"


def test_millisecond_start_end_are_read_as_milliseconds_on_both_paths(
    tmp_path: Path, fast_path_taken: list[bool]
) -> None:
    path = write_lines(tmp_path / "ms.log", [_ms_line(i) for i in range(5)], header=DEFAULT_HEADER)
    fast = read_flows([path])
    assert fast_path_taken == [True]
    careful = read_flows([path], fast=False)
    for flows in (fast, careful):
        assert flows.window is not None
        assert (flows.window.start, flows.window.end) == (MS_START, MS_START + 300)
        assert flows.accounting.used == 5
        assert any(str(path) in w and "milliseconds" in w for w in flows.warnings), flows.warnings
    assert fast.edges.equals(careful.edges)
    assert fast.coverage.equals(careful.coverage)


def test_milliseconds_on_the_command_line_and_in_a_seconds_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ms values after the sniffed lines of a seconds file: the fast path hands the file over, the careful
    path converts them. The CLI prints dates, not a 'year … is out of range' traceback."""
    lines = [*GOOD, *(_ms_line(i + 5) for i in range(3))]
    path = write_lines(tmp_path / "mixed.log", [*(GOOD[0] for _ in range(30)), *lines], header=DEFAULT_HEADER)
    assert run(["edges", "--flows", str(path)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"{path}: start/end written in milliseconds" in captured.err
    window = json.loads(captured.out.splitlines()[0])
    assert window == {"kind": "window", "start": MS_START, "end": MS_START + 8 * 60}
    assert "window 2026-11-01T00:00:00Z .. 2026-11-01T00:08:00Z" in captured.err
    assert read_flows([path]).edges.equals(read_flows([path], fast=False).edges)


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "careful-path"])
def test_absurd_start_end_values_are_malformed_and_located(tmp_path: Path, fast: bool) -> None:
    absurd = [
        _ms_line(1, start=999_999_999_999),  # 12 digits: neither seconds nor milliseconds
        _ms_line(2, end=99_999_999_999_999),  # 14 digits
        _ms_line(3, start=12_345_678_901_234_567_890),  # 20 digits: not even a 64-bit integer
    ]
    path = write_lines(tmp_path / "absurd.log", [GOOD[0], *absurd, GOOD[1]], header=DEFAULT_HEADER)
    flows = read_flows([path], LENIENT, fast=fast)
    assert (flows.accounting.used, flows.accounting.malformed) == (2, 3)
    assert [(i.line, i.reason) for i in flows.accounting.issues] == [
        (3, "start: 999999999999 is out of range"),
        (4, "end: 99999999999999 is out of range"),
        (5, "start: '12345678901234567890' is not a number"),
    ]


# ------------------------------------------------------------------------------------ 5. sniffing


def test_text_with_a_flow_log_field_count_is_not_a_flow_log(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    write_lines(folder / "good.log", GOOD, header=DEFAULT_HEADER)
    write_lines(folder / "one.log", [GOOD[0]])  # one valid header-less record: still a flow log
    # 14 words on a line: as many as the default format has fields
    (folder / "README").write_text(
        "# Flow logs\n\nThese files are the flow logs of the staging VPC copied here every night.\n"
    )
    (folder / "notes.txt").write_text(
        "2 things to remember before the review on Monday at ten with the team\n"
    )
    for fast in (True, False):
        flows = read_flows([folder], fast=fast)
        assert (flows.accounting.used, flows.accounting.malformed) == (len(GOOD) + 1, 0)
    reasons = _reasons(flows)
    assert "one.log" not in reasons
    assert reasons["README"].startswith("skipped, not a flow log: no header line, and none of the first")
    assert reasons["notes.txt"].startswith("skipped, not a flow log")
    with pytest.raises(InputError, match="README: not a flow log"):
        read_flows([folder / "README"])


# ------------------------------------------------------------------------------------ 6. one instant


def test_records_of_one_instant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every record has start == end: the data's own window has zero length. edges and recommend run,
    with no division by zero, and say so plainly; in seconds and in milliseconds."""
    for unit in (1, 1000):
        _one_instant(tmp_path / str(unit), unit, capsys)


def _one_instant(tmp_path: Path, unit: int, capsys: pytest.CaptureFixture[str]) -> None:
    instant = MS_START * unit
    lines = [
        f"2 123456789012 {ENI} {OWN} {PEER} {40000 + i} 5432 6 10 840 {instant} {instant} ACCEPT OK"
        for i in range(3)
    ]
    lines += [f"2 123456789012 {ENI} - - - - - - - {instant} {instant} - {s}" for s in ("NODATA", "SKIPDATA")]
    path = write_lines(tmp_path / "instant.log", lines, header=DEFAULT_HEADER)
    assert run(["edges", "--flows", str(path)]) == 0
    captured = capsys.readouterr()
    window = json.loads(captured.out.splitlines()[0])
    assert window["kind"] == "window"
    assert "Traceback" not in captured.err
    assert "window 2026-11-01T00:00:00Z .. 2026-11-01T00:00:00Z" in captured.err
    out = tmp_path / "out"
    args = ["recommend", "--flows", str(path), "--inventory", str(INVENTORY), "--out", str(out)]
    assert run(args) == 0
    assert "Traceback" not in capsys.readouterr().err
    recommendation = json.loads((out / "recommendation.json").read_text())
    app = next(g for g in recommendation["security_groups"] if g["group_name"] == "app")
    assert app["coverage"]["window_seconds"] == 0
    assert app["coverage"]["status"] != "ok"  # a zero-length window proves nothing


def test_a_gzip_bomb_behind_an_ordinary_head_is_not_given_to_the_engine(tmp_path: Path) -> None:
    """The head inflates like a flow log, the tail thousandfold: the trailer's size gives it away, so the
    careful path (bounded memory) reads it, not the engine (which inflates the whole file in memory)."""
    from sgadvisor.flowlogs.files import FlowFile, ReadOptions, sniff_text_layout

    rng = random.Random(7)  # varied records: the head alone is more than the sniffed 64 KiB compressed
    records = [
        default_line(f"10.0.{rng.randrange(256)}.{rng.randrange(256)}", f"10.1.{rng.randrange(256)}.{rng.randrange(256)}",
                     rng.randrange(32768, 61000), rng.randrange(1, 1024), packets=rng.randrange(1, 999),
                     nbytes=rng.randrange(40, 99999), start=1_793_491_200 + rng.randrange(600))
        for _ in range(20000)
    ]  # fmt: skip
    head = (DEFAULT_HEADER + "\n" + "\n".join(records) + "\n").encode()
    assert len(zlib.compress(head, 9)) > 65536
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = compressor.compress(head)
    chunk = b"A" * (1 << 20)
    for _ in range(256):  # 256 MiB without a newline
        data += compressor.compress(chunk)
    data += compressor.flush()
    bomb = tmp_path / "bomb.log.gz"
    bomb.write_bytes(data)
    assert sniff_text_layout(FlowFile(bomb, named=True), ReadOptions()) is None
    ordinary = tmp_path / "ordinary.log.gz"
    ordinary.write_bytes(zlib.compress(head, wbits=31))
    assert sniff_text_layout(FlowFile(ordinary, named=True), ReadOptions()) is not None


def test_file_names_in_the_accounting_are_one_escaped_line() -> None:
    from sgadvisor.accounting import InputAccounting, Issue
    from sgadvisor.flowlogs.summary import describe_accounting

    accounting = InputAccounting(
        issues=[Issue(file="x\n::error::pwned\x1b[2J", line=None, reason="gone\nnow")]
    )
    text = describe_accounting(accounting, verbose=True)
    assert len(text.splitlines()) == 2 and "\x1b" not in text and "\\n::error::pwned\\x1b[2J" in text
