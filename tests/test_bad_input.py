"""Bad input never loses good data: every case is located, counted, and the good records are kept."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from sgadvisor.errors import InputError, TooManyMalformedError
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from tests.conftest import DEFAULT_HEADER, default_line, write_lines

LENIENT = IngestOptions(max_malformed=1.0)
GOOD = [default_line(sport=40000 + i, start=1_793_491_200 + 60 * i) for i in range(50)]


def _balanced(flows: FlowEdges) -> None:
    acc = flows.accounting
    assert acc.balanced, acc
    assert int(flows.edges["records"].sum()) == acc.used


def _issue_lines(flows: FlowEdges) -> list[tuple[str, int | None]]:
    return [(Path(i.file).name, i.line) for i in flows.accounting.issues]


def test_truncated_gzip_keeps_every_complete_line(tmp_path: Path) -> None:
    full = write_lines(tmp_path / "full.log.gz", GOOD, gz=True, header=DEFAULT_HEADER).read_bytes()
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(full[: len(full) - 40])  # lose the gzip trailer and the last compressed bytes
    with gzip.open(tmp_path / "full.log.gz", "rt") as handle:
        complete = handle.read()
    # What a streaming decompressor can recover from the cut file: everything up to the damage.
    recovered = gzip.GzipFile(fileobj=cut.open("rb"))
    with pytest.raises(EOFError):
        recovered.read()
    flows = read_flows([cut], LENIENT)
    _balanced(flows)
    acc = flows.accounting
    assert acc.malformed == 1
    assert "truncated at byte offset" in acc.issues[0].reason
    assert acc.issues[0].line is not None and acc.issues[0].line > 1
    kept = acc.used
    assert 0 < kept < len(GOOD)
    # Every line before the reported damage line is kept.
    assert kept == acc.issues[0].line - 2  # minus the header, and the damaged line itself
    assert complete.count("\n") == len(GOOD) + 1


def test_corrupt_gzip_in_the_middle(tmp_path: Path) -> None:
    lines = [default_line(sport=40000 + i, start=1_793_491_200 + i) for i in range(3000)]
    data = bytearray(write_lines(tmp_path / "a.log.gz", lines, gz=True, header=DEFAULT_HEADER).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    bad = tmp_path / "bad.log.gz"
    bad.write_bytes(bytes(data))
    flows = read_flows([bad], LENIENT)
    _balanced(flows)
    acc = flows.accounting
    # Deflate may decode some garbage before zlib notices; that garbage is counted, never used.
    assert acc.malformed >= 1
    assert any("gzip" in issue.reason for issue in acc.issues)
    assert 1000 < acc.used < len(lines)


def test_binary_garbage_lines_are_counted_and_located(tmp_path: Path) -> None:
    path = tmp_path / "garbage.log"
    body = [
        *(line.encode() for line in GOOD[:3]),
        b"\x00\xff\xfe\x89PNG garbage \x01",
        *(line.encode() for line in GOOD[3:6]),
    ]
    path.write_bytes(DEFAULT_HEADER.encode() + b"\n" + b"\n".join(body) + b"\n")
    flows = read_flows([path], LENIENT)
    _balanced(flows)
    assert flows.accounting.used == 6
    assert flows.accounting.malformed == 1
    assert _issue_lines(flows) == [("garbage.log", 5)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "careful-path"])
def test_a_header_less_file_whose_first_record_is_garbage_is_still_a_flow_log(
    tmp_path: Path, fast: bool
) -> None:
    """Without a header the first lines are the records: undecodable bytes in the first one make that line
    malformed, not the whole file something else (the other lines have the format's field count)."""
    path = tmp_path / "headerless.log"
    bad = GOOD[0].replace("eni-", "eni-\xe9").encode("latin-1")
    path.write_bytes(b"\n".join([bad, *(line.encode() for line in GOOD[1:4])]) + b"\n")
    flows = read_flows([path], LENIENT, fast=fast)
    _balanced(flows)
    assert (flows.accounting.used, flows.accounting.malformed) == (3, 1)
    assert _issue_lines(flows) == [("headerless.log", 1)]


def test_a_binary_file_in_a_directory_is_not_a_flow_log(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\n\x00\x01")
    write_lines(tmp_path / "flows" / "f.log", GOOD[:2], header=DEFAULT_HEADER)
    flows = read_flows([tmp_path / "flows"], LENIENT)
    assert flows.accounting.used == 2
    assert any("image.png" in i.file and "not a flow log" in i.reason for i in flows.accounting.issues)


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "careful-path"])
def test_control_characters_in_the_interface_id_are_garbage(tmp_path: Path, fast: bool) -> None:
    """Well-formed but binary: an interface id with NUL/control bytes is no ENI. Both paths count the line
    as malformed (the fast one by handing the file to the careful one), keep the others, and never echo
    the bytes into the message."""
    path = tmp_path / "ctl.log"
    bad = default_line(eni="eni-0\x00\x01b").encode()
    body = [GOOD[0].encode(), bad, GOOD[1].encode()]
    path.write_bytes(DEFAULT_HEADER.encode() + b"\n" + b"\n".join(body) + b"\n")
    flows = read_flows([path], LENIENT, fast=fast)
    _balanced(flows)
    assert flows.accounting.used == 2 and flows.accounting.malformed == 1
    assert [(i.line, i.reason) for i in flows.accounting.issues] == [
        (3, "interface-id: control characters in the value")
    ]
    assert "eni-0\x00\x01b" not in flows.edges["interface_id"].to_list()


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (
            "2 123456789012 eni-0aaa 10.0.1.10 10.0.2.15 40000 443 6 10 840 1793491200 1793491260 ACCEPT",
            "expected 14 fields, found 13",
        ),
        (default_line() + " extra", "expected 14 fields, found 15"),
    ],
    ids=["too-few-fields", "too-many-fields"],
)
def test_wrong_field_count(tmp_path: Path, bad_line: str, reason: str) -> None:
    path = write_lines(tmp_path / "f.log", [GOOD[0], bad_line, GOOD[1]], header=DEFAULT_HEADER)
    flows = read_flows([path], LENIENT)
    _balanced(flows)
    assert flows.accounting.used == 2
    assert [(i.line, i.reason) for i in flows.accounting.issues] == [(3, reason)]


def test_non_numeric_port(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "f.log", [GOOD[0], default_line(dport="https"), GOOD[1]], header=DEFAULT_HEADER
    )
    flows = read_flows([path], LENIENT)
    _balanced(flows)
    assert flows.accounting.used == 2
    assert flows.accounting.issues[0].line == 3
    assert flows.accounting.issues[0].reason == "dstport: 'https' is not a number"


def test_port_out_of_range(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "f.log", [default_line(sport=70000)], header=DEFAULT_HEADER)
    flows = read_flows([path], LENIENT)
    assert flows.accounting.issues[0].reason == "srcport: 70000 is out of range"


def test_invalid_address(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "f.log",
        [GOOD[0], default_line(dst="10.0.2.999"), default_line(src="fe80::zz")],
        header=DEFAULT_HEADER,
    )
    flows = read_flows([path], LENIENT)
    _balanced(flows)
    assert flows.accounting.used == 1
    assert [(i.line, i.reason) for i in flows.accounting.issues] == [
        (3, "dstaddr: 10.0.2.999 is not an IP address"),
        (4, "srcaddr: fe80::zz is not an IP address"),
    ]


def test_unknown_action_is_malformed(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "f.log", [default_line(action="MAYBE")], header=DEFAULT_HEADER)
    flows = read_flows([path], LENIENT)
    assert flows.accounting.issues[0].reason == "action: MAYBE is not one of ACCEPT/REJECT"


def test_empty_file_is_reported_not_fatal(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    empty_gz = write_lines(tmp_path / "empty.log.gz", [], gz=True)
    flows = read_flows([empty, empty_gz])
    assert flows.accounting.records == 0
    assert [i.reason for i in flows.accounting.issues] == ["empty file: no records"] * 2


def test_not_a_flow_log_in_a_directory_is_skipped_and_listed(tmp_path: Path) -> None:
    write_lines(tmp_path / "flows" / "good.log", GOOD, header=DEFAULT_HEADER)
    (tmp_path / "flows" / "notes.txt").write_text("remember to rotate the keys\nand water the plants\n")
    (tmp_path / "flows" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp_path / "flows" / "config.json").write_text('{"some": "json"}')
    flows = read_flows([tmp_path / "flows"])
    _balanced(flows)
    assert flows.accounting.used == len(GOOD)
    skipped = sorted(Path(i.file).name for i in flows.accounting.issues if i.reason.startswith("skipped"))
    assert skipped == ["config.json", "image.png", "notes.txt"]


def test_not_a_flow_log_named_on_the_command_line_is_an_error(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("remember to rotate the keys\n")
    with pytest.raises(InputError, match=r"notes.txt: not a flow log"):
        read_flows([notes])


def test_missing_input_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        read_flows([tmp_path / "nope.log"])


def test_malformed_above_threshold_fails_and_says_where(tmp_path: Path) -> None:
    lines = [*GOOD[:10], "garbage line", "more garbage"]
    path = write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)
    with pytest.raises(TooManyMalformedError) as caught:
        read_flows([path], IngestOptions(max_malformed=0.1))
    assert "2 of 12 records are malformed" in caught.value.message
    assert [i.line for i in caught.value.issues] == [12, 13]
    # At the threshold it passes and keeps the good records.
    flows = read_flows([path], IngestOptions(max_malformed=0.2))
    assert flows.accounting.used == 10


def test_issues_are_capped_at_100_and_the_rest_counted(tmp_path: Path) -> None:
    lines = [f"junk {i}" for i in range(150)] + GOOD
    path = write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)
    flows = read_flows([path], LENIENT)
    acc = flows.accounting
    assert acc.malformed == 150
    assert len(acc.issues) == 100
    assert acc.issues_omitted == 50
    _balanced(flows)


def test_runs_of_spaces_are_tolerated(tmp_path: Path) -> None:
    """The AWS docs show a record with two spaces; splitting on whitespace runs keeps it."""
    spaced = default_line().replace(" 443 ", "  443 ")
    path = write_lines(tmp_path / "f.log", [spaced, GOOD[0]], header=DEFAULT_HEADER)
    flows = read_flows([path])
    assert flows.accounting.used == 2
    assert flows.accounting.malformed == 0


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "crlf.log"
    path.write_bytes(("\r\n".join([DEFAULT_HEADER, *GOOD]) + "\r\n").encode())
    flows = read_flows([path])
    assert flows.accounting.used == len(GOOD)
    assert flows.accounting.malformed == 0
