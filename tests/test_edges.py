"""Flow edges and coverage exactly as DESIGN §4.2 defines them, checked against an independent reference."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgadvisor.accounting import Ledger
from sgadvisor.flowlogs.edgefile import write_edge_lines
from sgadvisor.flowlogs.edges import EDGE_KEY, EdgeAggregator, PortRange, Window
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from tests.conftest import DEFAULT_HEADER, default_line, write_lines

V5 = (
    "version interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol packets bytes "
    "start end action log-status tcp-flags flow-direction pkt-src-aws-service pkt-dst-aws-service"
)
T0 = 1_793_491_200


def _edges(flows_edges: pl.DataFrame) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in EDGE_KEY): row for row in flows_edges.iter_rows(named=True)}


def test_bucketing_only_when_the_other_port_is_not_ephemeral(tmp_path: Path) -> None:
    lines = [
        default_line("10.0.1.10", "10.0.2.15", 40001, 443),  # client side: local port bucketed
        default_line("10.0.1.10", "10.0.2.15", 40002, 443),
        default_line("10.0.1.10", "10.0.2.15", 40003, 50051),  # both ephemeral: both kept
        default_line("10.0.1.10", "10.0.2.15", 1024, 2049),  # neither: both kept
    ]
    flows = read_flows([write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)], addresses_of())
    by_ports = {(e["local_port"], e["remote_port"]): e for e in flows.edges.iter_rows(named=True)}
    assert set(by_ports) == {(0, 443), (40003, 50051), (1024, 2049)}
    assert by_ports[(0, 443)]["records"] == 2
    assert (by_ports[(0, 443)]["local_port_min"], by_ports[(0, 443)]["local_port_max"]) == (40001, 40002)
    assert by_ports[(0, 443)]["local_port_distinct"] == 2
    assert by_ports[(0, 443)]["remote_port_distinct"] == 1


def addresses_of() -> IngestOptions:
    return IngestOptions()


def test_custom_bucket_range(tmp_path: Path) -> None:
    lines = [
        default_line("10.0.1.10", "10.0.2.15", 50000, 443),
        default_line("10.0.1.10", "10.0.2.15", 1500, 443),
    ]
    path = write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)
    flows = read_flows([path], IngestOptions(bucket=PortRange.parse("1024-65535")))
    assert sorted(flows.edges["local_port"].to_list()) == [0]
    assert flows.edges["local_port_distinct"].to_list() == [2]


def test_direction_from_inventory_addresses(tmp_path: Path) -> None:
    """An ENI that only talks to one peer is ambiguous from data alone; its addresses settle it."""
    lines = [
        default_line("10.0.1.10", "10.0.2.15", 40000, 5432),
        default_line("10.0.2.15", "10.0.1.10", 5432, 40000),
    ]
    path = write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)
    flows = read_flows([path], addresses={"eni-0aaa": ["10.0.2.15"]})
    edges = {e["direction"]: e for e in flows.edges.iter_rows(named=True)}
    assert edges["ingress"]["local_addr"] == "10.0.2.15" and edges["ingress"]["local_port"] == 5432
    assert edges["egress"]["remote_addr"] == "10.0.1.10" and edges["egress"]["remote_port"] == 0
    assert flows.warnings == ()
    guessed = read_flows([path])
    assert guessed.warnings and "ambiguous" in guessed.warnings[0]


def test_direction_inferred_from_the_address_common_to_the_interface(tmp_path: Path) -> None:
    peers = ["10.0.2.15", "10.0.3.20", "52.94.1.1"]
    lines = [default_line("10.0.1.10", p, 40000 + i, 443) for i, p in enumerate(peers)]
    lines += [default_line(p, "10.0.1.10", 443, 40000 + i) for i, p in enumerate(peers)]
    lines.append(default_line("2001:db8::10", "2600:1f18::1", 41000, 443))  # second own address (IPv6)
    lines.append(default_line("2600:1f18::1", "2001:db8::10", 443, 41000))
    flows = read_flows([write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)])
    egress = flows.edges.filter(pl.col("direction") == "egress")
    assert sorted(egress["local_addr"].unique().to_list()) == ["10.0.1.10", "2001:db8::10"]
    assert sorted(egress["remote_addr"].to_list()) == sorted([*peers, "2600:1f18::1"])
    assert flows.warnings == ()


def test_flow_direction_and_pkt_addresses_win(tmp_path: Path) -> None:
    # A NAT gateway ENI: srcaddr/dstaddr are the interface's, pkt-* the real endpoints.
    lines = [
        "5 eni-0nat 10.0.1.10 10.0.0.5 10.0.1.10 203.0.113.5 40000 443 6 5 500 1 61 ACCEPT OK 2 ingress - -",
        "5 eni-0nat 10.0.0.5 203.0.113.5 10.0.0.5 203.0.113.5 40000 443 6 5 500 1 61 ACCEPT OK 2 egress - AMAZON",
    ]
    flows = read_flows([write_lines(tmp_path / "nat.log", lines, header=V5)])
    edges = {e["direction"]: e for e in flows.edges.iter_rows(named=True)}
    assert (edges["ingress"]["local_addr"], edges["ingress"]["remote_addr"]) == ("203.0.113.5", "10.0.1.10")
    assert (edges["egress"]["local_addr"], edges["egress"]["remote_addr"]) == ("10.0.0.5", "203.0.113.5")
    assert edges["egress"]["aws_service"] == "AMAZON" and edges["ingress"]["aws_service"] is None


def test_tcp_flag_counts_and_absence(tmp_path: Path) -> None:
    def rec(flags: int) -> str:
        return f"5 eni-0a 10.0.1.10 10.0.2.15 - - 40000 443 6 1 60 1 61 ACCEPT OK {flags} egress - -"

    flows = read_flows(
        [write_lines(tmp_path / "f.log", [rec(f) for f in (2, 3, 18, 19, 0, 0, 1, 4)], header=V5)]
    )
    edge = flows.edges.row(0, named=True)
    assert (edge["syn_records"], edge["synack_records"], edge["fin_records"], edge["zero_flag_records"]) == (
        2,
        2,
        3,
        2,
    )
    no_flags = read_flows([write_lines(tmp_path / "v2.log", [default_line()], header=DEFAULT_HEADER)])
    assert no_flags.edges.row(0, named=True)["syn_records"] is None


def test_coverage_nodata_skipdata_and_window(tmp_path: Path) -> None:
    lines = [
        default_line(start=T0 - 600),  # before the window
        default_line(start=T0),
        "2 123456789012 eni-0aaa - - - - - - - 1793491800 1793492400 - NODATA",
        "2 123456789012 eni-0aaa - - - - - - - 1793492400 1793492700 - SKIPDATA",
        default_line(start=T0 + 3600),  # at the window end: excluded (half-open)
    ]
    path = write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)
    flows = read_flows([path], IngestOptions(window=Window(T0, T0 + 3600)))
    acc = flows.accounting
    assert (acc.used, acc.nodata, acc.skipdata, acc.filtered) == (1, 1, 1, {"outside the window": 2})
    cov = flows.coverage.row(0, named=True)
    assert cov == {
        "interface_id": "eni-0aaa", "first_start": T0, "last_end": 1793492700, "records": 3,
        "nodata": 1, "skipdata": 1, "skipdata_seconds": 300, "subnet_id": None, "flow_logs": None,
    }  # fmt: skip
    assert flows.window == Window(T0, T0 + 3600)
    # Without --start/--end the window is the data's own span.
    assert read_flows([path]).window == Window(T0 - 600, T0 + 3660)


def test_transit_gateway_and_interface_less_records_are_filtered(tmp_path: Path) -> None:
    tgw_header = "version resource-type tgw-id srcaddr dstaddr srcport dstport protocol packets bytes start end log-status"
    path = write_lines(
        tmp_path / "tgw.log",
        ["6 TransitGateway tgw-01 10.0.0.1 10.0.1.1 40000 443 6 1 60 1 61 OK"],
        header=tgw_header,
    )
    flows = read_flows([path])
    assert flows.accounting.filtered == {"transit gateway record (no interface)": 1}
    assert flows.accounting.balanced


def test_edge_file_round_trip(tmp_path: Path) -> None:
    lines = [
        f"5 eni-0a 10.0.1.10 10.0.2.15 - - {40000 + i} 443 6 1 60 {T0 + i} {T0 + i + 60} ACCEPT OK 2 egress - -"
        for i in range(5)
    ] + ["5 eni-0a - - - - - - - - - 1793491800 1793492400 - NODATA - - - -"]
    flows = read_flows([write_lines(tmp_path / "f.log", lines, header=V5)])
    buffer = io.StringIO()
    write_edge_lines(flows, buffer)
    edge_file = tmp_path / "edges.jsonl"
    edge_file.write_text(buffer.getvalue())
    again = read_flows([edge_file])
    assert again.source == "edges"
    assert again.edges.equals(flows.edges)
    assert again.coverage.equals(flows.coverage)
    assert again.window == flows.window
    assert (again.accounting.used, again.accounting.nodata) == (5, 1)
    rewritten = io.StringIO()
    write_edge_lines(again, rewritten)
    assert rewritten.getvalue() == buffer.getvalue()


# ----------------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class Rec:
    eni: str
    direction: str
    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    action: str
    flags: int
    start: int

    def line(self) -> str:
        return (
            f"5 {self.eni} {self.src} {self.dst} - - {self.sport} {self.dport} {self.proto} 2 100 "
            f"{self.start} {self.start + 60} {self.action} OK {self.flags} {self.direction} - -"
        )


_ADDRS = ["10.0.1.10", "10.0.2.15", "10.0.3.20", "2001:db8::5"]
_PORTS = st.sampled_from([0, 22, 443, 5432, 1024, 32767, 32768, 40000, 50051, 60999, 65535])
records = st.builds(
    Rec,
    eni=st.sampled_from(["eni-01", "eni-02"]),
    direction=st.sampled_from(["egress", "ingress"]),
    src=st.sampled_from(_ADDRS),
    dst=st.sampled_from(_ADDRS),
    sport=_PORTS,
    dport=_PORTS,
    proto=st.sampled_from([6, 17, 1]),
    action=st.sampled_from(["ACCEPT", "REJECT"]),
    flags=st.sampled_from([0, 1, 2, 3, 18, 19, 4]),
    start=st.integers(T0, T0 + 86400),
)


def _distinct(ports: list[int]) -> int:
    """Distinct ports as the README states them: exact up to 2; from 3 on, min(records, max - min + 1)."""
    seen = len(set(ports))
    return seen if seen <= 2 else min(len(ports), max(ports) - min(ports) + 1)


def _reference(recs: list[Rec], low: int = 32768, high: int = 65535) -> dict[tuple[Any, ...], dict[str, Any]]:
    """A plain-Python statement of DESIGN §4.2, independent of the column-engine implementation."""
    groups: dict[tuple[Any, ...], list[Rec]] = defaultdict(list)
    for r in recs:
        s_eph, d_eph = low <= r.sport <= high, low <= r.dport <= high
        sport = 0 if s_eph and not d_eph else r.sport
        dport = 0 if d_eph and not s_eph else r.dport
        egress = r.direction == "egress"
        key = (
            r.eni, r.direction, r.action, r.proto,
            r.src if egress else r.dst, r.dst if egress else r.src,
            sport if egress else dport, dport if egress else sport,
        )  # fmt: skip
        groups[key].append(r)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, members in groups.items():
        egress = key[1] == "egress"
        local = [m.sport if egress else m.dport for m in members]
        remote = [m.dport if egress else m.sport for m in members]
        out[key] = {
            "records": len(members),
            "first_start": min(m.start for m in members),
            "last_end": max(m.start + 60 for m in members),
            "local_port_min": min(local), "local_port_max": max(local), "local_port_distinct": _distinct(local),
            "remote_port_min": min(remote), "remote_port_max": max(remote),
            "remote_port_distinct": _distinct(remote),
            "syn_records": sum(1 for m in members if m.flags & 18 == 2),
            "synack_records": sum(1 for m in members if m.flags & 18 == 18),
            "fin_records": sum(1 for m in members if m.flags & 1),
            "zero_flag_records": sum(1 for m in members if m.flags == 0),
        }  # fmt: skip
    return out


@given(st.lists(records, min_size=1, max_size=60))
def test_edges_match_the_reference_whatever_the_block_size(recs: list[Rec]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = write_lines(Path(tmp) / "f.log", [r.line() for r in recs], header=V5)
        big = read_flows([path])
        # The careful path in many blocks, compacting every time, must agree with the one-pass fast path.
        small = read_flows([path], block_bytes=300, compact_rows=1, fast=False)
    assert big.accounting.balanced and big.accounting.used == len(recs)
    assert big.edges.equals(big.edges.sort(list(EDGE_KEY), nulls_last=True))  # packed-key sort = plain sort
    assert small.edges.equals(big.edges)
    assert small.coverage.equals(big.coverage)
    expected = _reference(recs)
    got = _edges(big.edges)
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert {k: got[key][k] for k in want} == want, key


@given(st.lists(records, min_size=1, max_size=40), st.lists(st.integers(0, 3), min_size=40, max_size=40))
def test_edges_do_not_depend_on_how_the_records_are_split_into_files(
    recs: list[Rec], parts: list[int]
) -> None:
    """S3 delivers one window in many small files: reading them must give the edges of the one file they
    add up to, distinct ports included (whose moments add up across files), on both paths."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        whole = read_flows([write_lines(Path(tmp) / "whole.log", [r.line() for r in recs], header=V5)])
        split = Path(tmp) / "split"
        split.mkdir()
        for part in set(parts[: len(recs)]):
            lines = [r.line() for r, p in zip(recs, parts, strict=False) if p == part]
            write_lines(split / f"part{part}.log", lines, header=V5)
        for fast in (True, False):
            pieces = read_flows([split], fast=fast)
            assert pieces.edges.equals(whole.edges), fast
            assert pieces.coverage.equals(whole.coverage), fast
            assert (pieces.accounting.records, pieces.accounting.used) == (len(recs), len(recs))


def test_one_interface_in_two_formats_merges(tmp_path: Path) -> None:
    """A format change mid-window gives two partial edges for one edge; both paths merge them the same
    way, distinct ports included (their moments add up exactly)."""
    v2 = [default_line("10.0.1.10", "10.0.2.15", p, 443, eni="eni-0a") for p in (40001, 40002)]
    v2 += [default_line("10.0.1.10", p, 40001, 443, eni="eni-0a") for p in ("10.0.3.1", "10.0.3.2")]
    v5 = [
        f"5 eni-0a 10.0.1.10 10.0.2.15 - - {p} 443 6 1 60 1 61 ACCEPT OK 2 egress - -" for p in (40002, 40003)
    ]
    write_lines(tmp_path / "old.log", v2, header=DEFAULT_HEADER)
    write_lines(tmp_path / "new.log", v5, header=V5)
    careful = read_flows([tmp_path], fast=False)
    fast = read_flows([tmp_path])
    for flows in (careful, fast):
        edge = flows.edges.filter(pl.col("remote_addr") == "10.0.2.15").row(0, named=True)
        assert edge["records"] == 4
        assert edge["local_port_distinct"] == 3
        assert (edge["syn_records"], edge["zero_flag_records"]) == (2, 0)
    assert careful.edges.equals(fast.edges)


@pytest.mark.parametrize(
    ("ports", "distinct"),
    [
        ([40001] * 6, 1),  # one long-lived connection, logged in every file
        ([40001, 40009] * 3, 2),  # two of them
        ([40001, 40005, 40009, 40001, 40005, 40009], 6),  # three or more: min(records, max - min + 1)
        ([40001, 40002, 40003, 40001, 40002, 40003], 3),
    ],
)
def test_distinct_ports_do_not_add_up_across_files(tmp_path: Path, ports: list[int], distinct: int) -> None:
    """An edge seen in many files (S3 delivers a file every few minutes) keeps its true count where the
    analysis looks (1, 2, or 3 and more): a connection whose one ephemeral port is logged in six files
    has one distinct port, not six."""
    for i, port in enumerate(ports):
        write_lines(
            tmp_path / f"f{i}.log", [default_line(sport=port, start=T0 + 600 * i)], header=DEFAULT_HEADER
        )
    for fast in (True, False):
        flows = read_flows([tmp_path], fast=fast)
        edge = flows.edges.row(0, named=True)
        assert (flows.edges.height, edge["local_port"], edge["records"]) == (1, 0, len(ports))
        assert edge["local_port_distinct"] == distinct, fast


def test_clean_files_take_the_one_pass_fast_path_and_damaged_ones_do_not(
    tmp_path: Path, fast_path_taken: list[bool]
) -> None:
    taken = fast_path_taken
    lines = [default_line(sport=40000 + i) for i in range(20)]
    clean = write_lines(tmp_path / "clean.log.gz", lines, gz=True, header=DEFAULT_HEADER)
    damaged = write_lines(tmp_path / "damaged.log", [*lines, "junk"], header=DEFAULT_HEADER)
    fast = read_flows([clean])
    assert taken == [True]
    careful = read_flows([clean], fast=False)
    assert fast.edges.equals(careful.edges) and fast.accounting == careful.accounting
    flows = read_flows([damaged], IngestOptions(max_malformed=1.0))
    assert taken == [True, False]
    assert flows.accounting.malformed == 1 and flows.accounting.issues[0].line == 22


def test_non_canonical_ipv6_spellings_agree_on_both_paths(tmp_path: Path) -> None:
    """A valid but non-canonical IPv6 spelling is canonicalised; edges that then coincide merge, and
    every other edge stays: the fast path must agree with the careful one record for record."""
    lines = [
        default_line(f"10.0.1.{10 + i}", "10.0.2.15", 40000 + i, 443, eni=f"eni-0{i % 3}") for i in range(30)
    ]
    lines += [
        default_line("2001:db8:0:0::5", "2600:1f18::1", 41000, 443, eni="eni-06"),
        default_line("2001:db8::5", "2600:1f18:0::1", 41001, 443, eni="eni-06"),
        default_line("2001:db8:0::5", "2600:1f18::2", 41002, 443, eni="eni-06"),
    ]
    path = write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)
    fast, careful = read_flows([path]), read_flows([path], fast=False)
    assert fast.accounting == careful.accounting and fast.accounting.used == 33
    assert fast.coverage.equals(careful.coverage)
    key_and_volume = [
        "interface_id",
        "direction",
        "local_addr",
        "remote_addr",
        "local_port",
        "remote_port",
        "records",
    ]
    assert fast.edges.select(key_and_volume).equals(careful.edges.select(key_and_volume))
    six = fast.edges.filter(pl.col("interface_id") == "eni-06")
    addresses = set(six["local_addr"].to_list()) | set(six["remote_addr"].to_list())
    assert addresses == {"2001:db8::5", "2600:1f18::1", "2600:1f18::2"}
    assert int(six["records"].sum()) == 3


# A clean v5 line whose fields can be spoiled one at a time (V5 order).
_V5_GOOD = "5 eni-0a 10.0.1.10 10.0.2.15 - - 40000 443 6 2 100 1 61 ACCEPT OK 2 egress - -"
# Formats whose last field is checked (the fast scan reads the last field as raw text).
_STATUS_LAST = (
    "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
)
_STATUS_LAST_GOOD = "5 eni-0a 10.0.1.10 10.0.2.15 40000 443 6 2 100 1 61 ACCEPT OK"
_FLAGS_LAST = (
    "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action tcp-flags"
)
_FLAGS_LAST_GOOD = "5 eni-0a 10.0.1.10 10.0.2.15 40000 443 6 2 100 1 61 ACCEPT 2"


def _spoil(line: str, index: int, value: str) -> str:
    values = line.split(" ")
    values[index] = value
    return " ".join(values)


@pytest.mark.parametrize(
    ("header", "good", "bad"),
    [
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 6, "65536")),  # port out of range (read as u16)
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 7, "https")),  # non-numeric port
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 8, "256")),  # protocol out of range (u8)
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 15, "256")),  # tcp-flags out of range (u8)
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 9, "-2")),  # negative packets (per-row check)
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 0, "-5")),  # negative version, a field no edge uses
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 16, "sideways")),  # flow-direction (read as Enum)
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 13, "ALLOW")),  # action (Enum)
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 14, "FINE")),  # log-status (Enum)
        (V5, _V5_GOOD, _spoil(_spoil(_V5_GOOD, 2, "-"), 4, "10.0.300.7")),  # bad pkt-srcaddr, srcaddr absent
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 5, "2001:db8::zz")),  # bad IPv6 (checked on distinct values)
        (V5, _V5_GOOD, _spoil(_V5_GOOD, 3, "10.0.2")),  # bad dstaddr
        (V5, _V5_GOOD, _V5_GOOD + " extra"),  # too many fields
        (V5, _V5_GOOD, _V5_GOOD.rsplit(" ", 1)[0]),  # too few fields
        (_STATUS_LAST, _STATUS_LAST_GOOD, _spoil(_STATUS_LAST_GOOD, 12, "DONE")),  # last field: enum
        (_FLAGS_LAST, _FLAGS_LAST_GOOD, _spoil(_FLAGS_LAST_GOOD, 12, "300")),  # last field: range
        (_FLAGS_LAST, _FLAGS_LAST_GOOD, _spoil(_FLAGS_LAST_GOOD, 12, "syn")),  # last field: number
    ],
)
def test_the_fast_path_gives_way_on_any_value_the_careful_path_rejects(
    tmp_path: Path, fast_path_taken: list[bool], header: str, good: str, bad: str
) -> None:
    """Every check of the careful path holds on the fast path, wherever it is made (reader types, per-row
    expressions, distinct values after the aggregation): one bad record sends the file to the careful
    path, which reports exactly that record."""
    taken = fast_path_taken
    clean = read_flows([write_lines(tmp_path / "clean.log", [good, good], header=header)])
    assert taken == [True] and clean.accounting.used == 2
    flows = read_flows(
        [write_lines(tmp_path / "f.log", [good, bad, good], header=header)], IngestOptions(max_malformed=1.0)
    )
    assert taken == [True, False]
    assert flows.accounting.malformed == 1 and flows.accounting.used == 2
    assert flows.accounting.issues[0].line == 3


def test_all_absent_records_stay_on_the_fast_path_and_blank_lines_are_skipped_on_both(
    tmp_path: Path, fast_path_taken: list[bool]
) -> None:
    """A line of ``-`` only is a record (filtered) and stays on the fast path. A blank line is not a
    record (both paths skip it), but the fast path cannot tell it from a lone ``-`` in an integer field
    with the rest of the line missing (a short line): it hands such a file to the careful path."""
    dashes = " ".join(["-"] * len(V5.split()))
    clean = write_lines(tmp_path / "clean.log", [_V5_GOOD, dashes, _V5_GOOD], header=V5)
    # (An all-absent record has no interface id: it counts toward --max-malformed, hence the tolerance.)
    assert read_flows([clean], IngestOptions(max_malformed=1.0)).accounting.records == 3
    assert fast_path_taken == [True]
    for name, odd in (("blank", ""), ("spaces", "   "), ("dash", "-"), ("dash-spaces", "- ")):
        path = write_lines(tmp_path / f"{name}.log", [_V5_GOOD, odd, dashes, _V5_GOOD, odd], header=V5)
        fast, careful = (
            read_flows([path], IngestOptions(max_malformed=1.0)),
            read_flows([path], IngestOptions(max_malformed=1.0), fast=False),
        )
        assert fast_path_taken[-1] is False, name
        assert fast.accounting == careful.accounting
        blank = name in ("blank", "spaces")
        assert (fast.accounting.records, fast.accounting.malformed) == ((3, 0) if blank else (5, 2)), name
        assert fast.edges.equals(careful.edges) and fast.coverage.equals(careful.coverage)


def test_bucketed_and_genuine_port_zero_records_share_one_edge(tmp_path: Path) -> None:
    """Source-bucketed, destination-bucketed and genuine port-0 records can all have the key ports (0, 0):
    the fast scan keeps them apart until its group-by is done (so that each group's port sums are one
    side's), then merges them. Both paths and the reference must agree."""
    recs = [
        Rec("eni-01", "egress", "10.0.1.10", "10.0.2.15", sport, dport, 17, "ACCEPT", 0, T0 + i)
        for i, (sport, dport) in enumerate([(40000, 0), (40001, 0), (0, 50000), (0, 0), (40000, 0), (0, 443)])
    ]
    path = write_lines(tmp_path / "f.log", [r.line() for r in recs], header=V5)
    fast, careful = read_flows([path]), read_flows([path], fast=False)
    assert fast.edges.equals(careful.edges) and fast.accounting == careful.accounting
    expected = _reference(recs)
    got = _edges(fast.edges)
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert {k: got[key][k] for k in want} == want, key
    edge = got[("eni-01", "egress", "ACCEPT", 17, "10.0.1.10", "10.0.2.15", 0, 0)]
    # Local ports 40000, 40001, 0, 0, 40000: three, so an upper bound (5 records); remote 0 and 50000: exact.
    assert (edge["records"], edge["local_port_distinct"], edge["remote_port_distinct"]) == (5, 5, 2)


# One address in every edge of an interface (the common case the inference settles up front), a second
# own address (IPv6), peers shared between interfaces, and interfaces that only ever talk to one peer.
_OWN_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["eni-a", "eni-b", "eni-c"]),
        st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1", "8.8.8.8"]),
        st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1", "8.8.8.8"]),
    ),
    min_size=1,
    max_size=25,
)


@given(_OWN_ROWS)
def test_own_address_shortcut_agrees_with_the_greedy(rows: list[tuple[str, str, str]]) -> None:
    """Settling interfaces with one address common to all their edges up front changes no answer and
    no warning of the greedy inference it shortcuts."""
    from sgadvisor.accounting import Ledger
    from sgadvisor.flowlogs.edges import _greedy_own_addresses, _infer_own_addresses

    frame = pl.DataFrame(rows, schema=["iface", "saddr", "daddr"], orient="row").with_columns(
        pl.all().cast(pl.Categorical)
    )
    fast_ledger, greedy_ledger = Ledger(), Ledger()
    fast = _infer_own_addresses(frame, fast_ledger)
    greedy = _greedy_own_addresses(frame, greedy_ledger)

    def pairs(own: pl.DataFrame) -> set[tuple[str, str]]:
        return set(own.select(pl.all().cast(pl.String)).iter_rows())

    assert pairs(fast) == pairs(greedy)
    assert sorted(fast_ledger.warnings) == sorted(greedy_ledger.warnings)


def test_the_aggregator_is_spent_after_finish() -> None:
    """finish hands the aggregator's memory to the edges it builds; a second call is a programming error,
    not an empty result."""
    aggregator = EdgeAggregator(Ledger())
    assert aggregator.finish().edges.height == 0
    with pytest.raises(RuntimeError, match="twice"):
        aggregator.finish()
