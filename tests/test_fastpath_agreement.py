"""The one-pass fast path keeps a file only when the careful path would read every line the same way.

A damaged line must send the whole file to the careful path, which locates and reports it. These tests
spoil clean lines the way damage and hand edits do (a value emptied, dropped or added, spaces moved) and
compare both paths record for record: accounting, issues, edges and coverage.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgadvisor.errors import InputError
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.flowlogs.fields import Kind, spec_for
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from tests.conftest import DEFAULT_HEADER, default_line, write_lines

LENIENT = IngestOptions(max_malformed=1.0)
V5 = (
    "version interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol packets bytes "
    "start end action log-status tcp-flags flow-direction pkt-src-aws-service pkt-dst-aws-service"
)
V5_LINE = "5 eni-0a 10.0.1.10 10.0.2.15 - 10.0.9.9 40000 443 6 2 100 1 61 ACCEPT OK 2 egress - S3"
NODATA_LINE = "2 123456789012 eni-0aaa - - - - - - - 1793491200 1793491260 - NODATA"
# No log-status: the action tells a traffic record; an integer last.
NO_STATUS = (
    "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action tcp-flags"
)
NO_STATUS_LINE = "5 eni-0a 10.0.1.10 10.0.2.15 40000 443 6 2 100 1 61 ACCEPT 2"
# v3 fields with subnet-id last (text, read raw by the fast path): where an interface was (coverage's
# subnet_id), "-" included.
PLACED = f"{NO_STATUS} log-status vpc-id subnet-id"
# Text last (an unknown field is text), so that a trailing empty value is a text value.
TEXT_LAST = f"{DEFAULT_HEADER} x-note"
TEXT_LAST_LINE = f"{default_line()} hello"

# Integer fields AWS writes for every record that has a log-status, and those it writes for every record
# whose log-status is OK: there the engine's reader, which cannot tell an empty value from "-", is backed
# by a check (without log-status: a record with an action). Elsewhere "-" is a legitimate value of an
# integer field (NODATA traffic fields, tcp-flags, traffic-path…) and an empty one reads as "-" on the fast
# path (see fastpath.py).
_ALWAYS = {"version", "start", "end"}
_WHEN_OK = {"srcport", "dstport", "protocol", "packets", "bytes"}


def _empty_reads_as_dash(fields: list[str], values: list[str], index: int) -> bool:
    """True where an emptied value is the known blind spot of the fast path (documented in fastpath.py)."""
    name = fields[index]
    if spec_for(name).kind is not Kind.INT:
        return False
    if "log-status" in fields:
        status = values[fields.index("log-status")]
        record, traffic = status != "-", status == "OK"
    else:  # a record with an action is a traffic record; with neither field nothing is required
        record = traffic = "action" in fields and values[fields.index("action")] != "-"
    required = (_ALWAYS if record else set()) | (_WHEN_OK if traffic else set())
    return name not in required


def _assert_same(fast: FlowEdges, careful: FlowEdges) -> None:
    assert fast.accounting == careful.accounting
    assert fast.edges.equals(careful.edges)
    assert fast.coverage.equals(careful.coverage)


def _emptied(line: str, index: int) -> str:
    values = line.split(" ")
    values[index] = ""
    return " ".join(values)


_CASES = [
    (header, line, index)
    for header, line in (
        (DEFAULT_HEADER, default_line()),
        (DEFAULT_HEADER, NODATA_LINE),
        (V5, V5_LINE),
        (TEXT_LAST, TEXT_LAST_LINE),
        (NO_STATUS, NO_STATUS_LINE),
        (PLACED, f"{NO_STATUS_LINE} OK vpc-01 subnet-0a"),
    )
    for index in range(len(header.split()))
    if not _empty_reads_as_dash(header.split(), line.split(" "), index)
]


@pytest.mark.parametrize(("header", "line", "index"), _CASES)
def test_an_emptied_value_is_a_short_line_on_both_paths(
    tmp_path: Path, fast_path_taken: list[bool], header: str, line: str, index: int
) -> None:
    """``a  b`` (a value removed, both spaces left) is a line with one value too few: the careful path
    reports it (it splits on runs of spaces) and the fast path must give way rather than read an absent
    value there."""
    taken = fast_path_taken
    width = len(header.split())
    path = write_lines(tmp_path / "f.log", [line, _emptied(line, index), line], header=header)
    fast, careful = read_flows([path], LENIENT), read_flows([path], LENIENT, fast=False)
    assert taken == [False]
    assert [(i.line, i.reason) for i in careful.accounting.issues] == [
        (3, f"expected {width} fields, found {width - 1}")
    ]
    _assert_same(fast, careful)


def test_an_emptied_integer_where_aws_writes_a_dash_reads_as_absent_on_the_fast_path(
    tmp_path: Path, fast_path_taken: list[bool]
) -> None:
    """The known blind spot, pinned so that closing it is a conscious change: the engine's reader gives
    an empty integer value and ``-`` the same null, so where ``-`` is legitimate (here: a NODATA record's
    packets) the fast path reads the emptied value as absent, while the careful path reports the line."""
    taken = fast_path_taken
    fields, values = DEFAULT_HEADER.split(), NODATA_LINE.split(" ")
    index = fields.index("packets")
    assert _empty_reads_as_dash(fields, values, index)
    path = write_lines(
        tmp_path / "f.log", [default_line(), _emptied(NODATA_LINE, index)], header=DEFAULT_HEADER
    )
    fast, careful = read_flows([path], LENIENT), read_flows([path], LENIENT, fast=False)
    assert taken == [True]
    assert (fast.accounting.nodata, fast.accounting.malformed) == (1, 0)
    assert (careful.accounting.nodata, careful.accounting.malformed) == (0, 1)


# Ways a line gets damaged or reformatted; each takes the line's values and a position.
_DAMAGE = (
    "empty", "drop", "extra", "double-space", "leading-space", "trailing-space", "tab", "dash",
    "nbsp", "cr", "nul", "latin1", "replacement", "blank", "spaces", "dashes", "lone-dash",
)  # fmt: skip
# Characters put inside a value by the last kinds: a no-break space (whitespace to str.split), a lone
# carriage return, a NUL byte, a Latin-1 byte (invalid UTF-8 once encoded below) and U+FFFD itself.
_INSIDE = {"nbsp": "\u00a0", "cr": "\r", "nul": "\x00", "latin1": "\udce9", "replacement": "\ufffd"}


def _damage(fields: list[str], line: str, how: str, at: int) -> str | None:
    """The line damaged ``how`` at value ``at``; None when that damage is the documented blind spot."""
    values = line.split(" ")
    at %= len(values)
    if how == "empty":
        return None if _empty_reads_as_dash(fields, values, at) else _emptied(line, at)
    if how == "drop":
        return " ".join(values[:at] + values[at + 1 :])
    if how == "extra":
        return " ".join([*values[:at], "x", *values[at:]])
    if how == "double-space":
        return " ".join(values[:at]) + "  " + " ".join(values[at:]) if at else line
    if how == "blank":
        return ""
    if how == "spaces":  # whitespace only: a blank line to both paths
        return " " * (at % 4 + 1)
    if how == "dashes":  # every value absent: a record, filtered (no interface)
        return " ".join("-" for _ in values)
    if how == "lone-dash":  # a short line that reads like a blank one to the engine
        return "-" + " " * (at % 3)
    if how == "leading-space":
        return " " + line
    if how == "trailing-space":
        return line + " "
    if how == "tab":
        return " ".join([*values[:at], values[at] + "\t", *values[at + 1 :]])
    if how in _INSIDE:
        value = values[at][:2] + _INSIDE[how] + values[at][2:]
        return " ".join([*values[:at], value, *values[at + 1 :]])
    return " ".join([*values[:at], "-", *values[at + 1 :]])  # "dash": a value made absent


# Clean lines per format: accepted and rejected traffic, IPv6, a service on a high port, NODATA/SKIPDATA.
_FORMATS: dict[str, tuple[str, list[str]]] = {
    "default": (
        DEFAULT_HEADER,
        [
            default_line(),
            default_line("10.0.1.10", "10.0.3.7", 40001, 5432),
            default_line("10.0.2.15", "10.0.1.10", 443, 40000, eni="eni-0bbb", action="REJECT"),
            default_line("2001:db8::5", "2600:1f18::1", 50051, 443, proto=17),
            NODATA_LINE,
            NODATA_LINE.replace("NODATA", "SKIPDATA"),
        ],
    ),
    "v5": (
        V5,
        [
            V5_LINE,
            "5 eni-0b 10.0.2.15 10.0.1.10 - - 443 40000 6 2 100 1 61 ACCEPT OK 18 ingress - -",
            "5 eni-0a 10.0.1.10 52.95.1.1 - - 40001 443 6 2 100 1 61 REJECT OK 2 egress - S3",
            "5 eni-0a - - - - - - - - - 1 61 - NODATA - - - -",
        ],
    ),
    "placed": (
        PLACED,
        [
            f"{NO_STATUS_LINE} OK vpc-01 subnet-0b",
            f"{NO_STATUS_LINE} OK vpc-01 subnet-0a",  # records that disagree: the smallest
            "5 eni-0b 10.0.2.15 10.0.1.10 443 40000 6 2 100 1 61 ACCEPT 18 OK vpc-01 -",
            "5 eni-0a - - - - - - - 1 61 - - NODATA vpc-01 subnet-0c",
            "5 eni-0c - - - - - - - 1 61 - - NODATA vpc-01 subnet-0c",
        ],
    ),
    "no-status": (
        NO_STATUS,
        [
            NO_STATUS_LINE,
            "5 eni-0b 10.0.2.15 10.0.1.10 443 40000 6 2 100 1 61 REJECT 18",
            "5 eni-0a - - - - - - - 1 61 - -",
        ],
    ),
}


@st.composite
def _damaged_file(draw: st.DrawFn) -> tuple[str, list[str], bool]:
    """A header and its lines: clean ones with a few damaged ones among them; and whether any is."""
    header, pool = _FORMATS[draw(st.sampled_from(sorted(_FORMATS)))]
    lines = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))
    damaged = False
    for _ in range(draw(st.integers(0, 3))):
        how, at = draw(st.sampled_from(_DAMAGE)), draw(st.integers(0, 30))
        spoiled = _damage(header.split(), draw(st.sampled_from(pool)), how, at)
        if spoiled is not None:
            lines.insert(draw(st.integers(0, len(lines))), spoiled)
            damaged = True
    return header, lines, damaged


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=80, deadline=None)
@given(damaged=_damaged_file(), gz=st.booleans(), with_header=st.booleans(), s3_name=st.booleans())
def test_both_paths_agree_on_damaged_lines(
    tmp_path: Path,
    fast_path_taken: list[bool],
    damaged: tuple[str, list[str], bool],
    gz: bool,
    with_header: bool,
    s3_name: bool,
) -> None:
    """Whatever the damage (outside the documented blind spot), in a file with its header or read with
    ``--log-format``, plain or gzip, named as S3 delivers it or not, the fast path's answer is the careful
    path's: the same records used, nodata, skipdata and malformed, the same issues, edges and coverage
    (where each interface was included: subnet and flow log). A clean file takes the fast path."""
    header, lines, spoiled = damaged
    text = "".join(f"{line}\n" for line in ([header] if with_header else []) + lines)
    data = text.encode("utf-8", "surrogateescape")
    flow_log = "123456789012_vpcflowlogs_eu-west-1_fl-0e28ec3cc4b1f9a67_20261101T0000Z_" if s3_name else ""
    path = tmp_path / f"{flow_log}f{abs(hash((text, gz)))}.log{'.gz' if gz else ''}"
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    options = LENIENT if with_header else IngestOptions(max_malformed=1.0, log_format=tuple(header.split()))
    fast_path_taken.clear()
    try:
        fast = read_flows([path], options)
    except InputError as exc:  # e.g. a header-less file whose first lines have another field count
        with pytest.raises(InputError, match=re.escape(str(exc))):
            read_flows([path], options, fast=False)
        assert spoiled
        return
    _assert_same(fast, read_flows([path], options, fast=False))
    if not spoiled:
        assert fast_path_taken == [True]
