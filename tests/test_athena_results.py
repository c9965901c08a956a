"""Reading the edge query's result as Athena prints it (the CSV in the output location, GetQueryResults
pages) and turning it into flow edges: NULL is not "", numbers may come as decimals, addresses are
brought to their canonical spelling, and a result that is not the edge query's is refused."""

from __future__ import annotations

import polars as pl
import pytest

from sgadvisor.athena.results import flows_from_result, read_result_csv, rows_from_pages
from sgadvisor.athena.sql import RESULT_COLUMNS
from sgadvisor.errors import InputError
from sgadvisor.flowlogs.edges import Window

WINDOW = Window(1_793_491_200, 1_793_577_600)
COLUMNS = list(RESULT_COLUMNS)


def _row(kind: str, **values: str | int | None) -> dict[str, str | None]:
    row: dict[str, str | None] = dict.fromkeys(COLUMNS)
    row["kind"] = kind
    row.update({k: None if v is None else str(v) for k, v in values.items()})
    return row


def _edge(**values: str | int | None) -> dict[str, str | None]:
    base: dict[str, str | int | None] = {
        "interface_id": "eni-0a", "flow_direction": "egress", "action": "ACCEPT", "protocol": 6,
        "srcaddr": "10.0.1.10", "dstaddr": "10.0.2.15", "srcport": 0, "dstport": 443, "records": 2,
        "packets": 20, "bytes": 1000, "first_start": WINDOW.start + 60, "last_end": WINDOW.start + 200,
        "srcport_min": 40000, "srcport_max": 40002, "dstport_min": 443, "dstport_max": 443,
        "srcport_sum": 2 * 40001 - 2 * 32768, "srcport_squares": (40000 - 32768) ** 2 + (40002 - 32768) ** 2,
        "dstport_sum": 2 * (443 - 32768), "dstport_squares": 2 * (443 - 32768) ** 2, "flags_known": 2,
        "syn": 1, "synack": 0, "fin": 1, "zero_flags": 0,
    }  # fmt: skip
    base.update(values)
    return _row("edge", **base)


def _csv(rows: list[dict[str, str | None]]) -> str:
    def quote(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    lines = [",".join(quote(c) for c in COLUMNS)]
    lines += [",".join("" if row[c] is None else quote(str(row[c])) for c in COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def _coverage(eni: str = "eni-0a", records: int = 2) -> dict[str, str | None]:
    return _row(
        "coverage", interface_id=eni, records=records, first_start=WINDOW.start + 60,
        last_end=WINDOW.start + 200, nodata=0, skipdata=0, skipdata_seconds=0, subnet_id="subnet-1",
        flow_logs="fl-0123456789abcdef0",
    )  # fmt: skip


def test_null_and_empty_text_are_told_apart() -> None:
    text = _csv([_row("filtered", records=3, reason="incomplete"), _row("span", interface_id="")])
    frame = read_result_csv(text)
    assert frame["reason"].to_list() == ["incomplete", None]
    assert frame["interface_id"].to_list() == [None, ""]
    assert frame.schema["records"] == pl.Int64


def test_numbers_as_athena_prints_them() -> None:
    """Athena prints a bigint as digits and a decimal as text with its fraction: both read as integers;
    anything else in a numeric column is refused, never silently read as null."""
    frame = read_result_csv(
        _csv([_row("filtered", records="12.0", reason="x"), _row("filtered", records="-3")])
    )
    assert frame["records"].to_list() == [12, -3]
    with pytest.raises(InputError, match=r"records holds '1\.5'"):
        read_result_csv(_csv([_row("filtered", records="1.5")]))
    with pytest.raises(InputError, match="not an integer"):
        read_result_csv(_csv([_row("filtered", records="true")]))


def test_quoting_commas_and_newlines() -> None:
    frame = read_result_csv(_csv([_row("filtered", records=1, reason='a "quoted", value\nacross lines')]))
    assert frame["reason"].item() == 'a "quoted", value\nacross lines'


def test_a_result_of_another_query_is_refused() -> None:
    with pytest.raises(InputError, match="columns of sgadvisor's edge query"):
        read_result_csv('"_col0"\n"1"\n')
    with pytest.raises(InputError, match="empty"):
        read_result_csv(b"")
    bad_kind = _csv([_row("edges")])
    with pytest.raises(InputError, match="unknown row kind 'edges'"):
        read_result_csv(bad_kind)


def test_pages_read_like_the_csv() -> None:
    rows = [_edge(), _coverage(), _row("span", interface_id="eni-0a", first_start=1, last_end=2)]

    def page(values: list[list[str | None]], token: str | None) -> dict[str, object]:
        data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in values]
        return {"ResultSet": {"Rows": data}, **({"NextToken": token} if token else {})}

    header: list[str | None] = list(COLUMNS)
    table = [header, *([r[c] for c in COLUMNS] for r in rows)]
    pages = [page(table[:2], "t1"), page(table[2:], None)]
    assert rows_from_pages(pages).equals(read_result_csv(_csv(rows)))


def test_edges_from_a_result() -> None:
    rows = [_edge(), _coverage(), _row("filtered", records=4, reason="no-interface")]
    rows.append(
        _row("span", interface_id="eni-0a", first_start=WINDOW.start + 60, last_end=WINDOW.start + 260)
    )
    flows = flows_from_result(read_result_csv(_csv(rows)), WINDOW)
    assert flows.source == "athena" and flows.window == WINDOW
    edge = flows.edges.row(0, named=True)
    assert (edge["direction"], edge["local_addr"], edge["remote_port"], edge["local_port"]) == (
        "egress", "10.0.1.10", 443, 0,
    )  # fmt: skip
    assert (edge["local_port_min"], edge["local_port_max"], edge["local_port_distinct"]) == (40000, 40002, 2)
    assert (edge["syn_records"], edge["fin_records"], edge["zero_flag_records"]) == (1, 1, 0)
    assert flows.coverage["flow_logs"].to_list() == ["fl-0123456789abcdef0"]
    assert flows.spans.rows() == [("eni-0a", WINDOW.start + 60, WINDOW.start + 260)]
    accounting = flows.accounting
    assert (accounting.records, accounting.used, accounting.filtered) == (6, 2, {"no interface id": 4})


def test_addresses_are_canonical_and_spellings_of_one_address_merge() -> None:
    """IPv6 as the records spell it (``2a05:d018:0:0::a``) and canonically (``2a05:d018::a``) is one
    address: one edge, as the file path makes it; a pkt-address equal to the address it stands beside
    after that is no pkt-address."""
    rows = [
        _edge(srcaddr="2a05:d018:0:0::a", dstaddr="2600::1", records=1, pkt_srcaddr="2a05:d018::a"),
        _edge(srcaddr="2a05:d018::a", dstaddr="2600::1", records=1),
        _coverage(),
    ]
    flows = flows_from_result(read_result_csv(_csv(rows)), WINDOW)
    assert flows.edges.height == 1
    assert flows.edges.row(0, named=True)["local_addr"] == "2a05:d018::a"
    assert flows.edges["records"].item() == 2


def test_invalid_values_are_malformed_records() -> None:
    rows = [
        _edge(),
        _edge(dstaddr="not-an-address", records=5),
        _edge(action="MAYBE", records=7),
        _coverage(),
    ]
    flows = flows_from_result(read_result_csv(_csv(rows)), WINDOW)
    assert flows.edges.height == 1
    assert flows.accounting.malformed == 12 and flows.accounting.balanced


def test_coverage_of_one_interface_in_several_results_is_merged() -> None:
    """One table per format: an interface in both (two flow logs) gets one coverage row."""
    first = read_result_csv(_csv([_coverage(records=2)]))
    second = _coverage(records=3)
    second["flow_logs"] = "fl-89abcdef"
    second["subnet_id"] = "subnet-0"
    both = pl.concat([first, read_result_csv(_csv([second]))])
    coverage = flows_from_result(both, WINDOW).coverage
    assert coverage.rows(named=True) == [
        {
            "interface_id": "eni-0a", "first_start": WINDOW.start + 60, "last_end": WINDOW.start + 200,
            "records": 5, "nodata": 0, "skipdata": 0, "skipdata_seconds": 0, "subnet_id": "subnet-0",
            "flow_logs": "fl-0123456789abcdef0,fl-89abcdef",
        }
    ]  # fmt: skip
