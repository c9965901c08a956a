"""The offline Logs Insights executor: every command, operator and function of the subset, the
service's string/number comparisons, unknown-field warnings, result caps and statistics."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from sgadvisor.accounting import Ledger
from sgadvisor.insights import (
    MAX_LIMIT,
    QueryResult,
    QuerySyntaxError,
    flow_log_events,
    run_query,
    with_discovered_fields,
)
from tests.conftest import DEFAULT_HEADER, default_line, write_lines

T0 = 1_793_491_200  # 2026-11-01T00:00:00Z


def event(line: str, eni: str = "eni-0aaa", *, at: int | None = None) -> dict[str, object]:
    start = int(line.split()[10]) if at is None and len(line.split()) == 14 else (at or T0)
    return {"@timestamp": start * 1000, "@message": line, "@logStream": f"{eni}-all", "@log": "123:flows"}


def frame(*lines: str) -> pl.LazyFrame:
    """Plain log events (as PutLogEvents stores them) with the discovered fields derived."""
    return with_discovered_fields(pl.DataFrame([event(line) for line in lines]))


# Six records: two sources, ports 22/443/53, an IPv6 pair, one REJECT, one NODATA.
LINES = (
    default_line("10.0.1.10", "10.0.2.15", 40000, 443, start=T0, nbytes=840, packets=10),
    default_line("10.0.1.10", "10.0.2.16", 40001, 22, start=T0 + 60, nbytes=1200, packets=4),
    default_line("10.0.1.9", "10.0.2.15", 40002, 443, start=T0 + 400, nbytes=100, packets=1, action="REJECT"),
    default_line("10.0.1.9", "8.8.8.8", 53000, 53, start=T0 + 700, proto=17, nbytes=90, packets=1),
    default_line("2001:db8::1", "2001:db8:0:1::5", 41000, 443, start=T0 + 900, nbytes=500, packets=5),
    f"2 123456789012 eni-0aaa - - - - - - - {T0 + 1000} {T0 + 1060} - NODATA",
)


@pytest.fixture
def events() -> pl.LazyFrame:
    return frame(*LINES)


def run(query: str, events: pl.LazyFrame, **kwargs: int) -> QueryResult:
    return run_query(query, events, **kwargs)


def column(result: QueryResult, name: str) -> list[str | None]:
    return [row[name] for row in result.rows]


# ---------------------------------------------------------------------------------------------- events


def test_discovered_fields_are_typed_and_only_for_flow_records() -> None:
    lf = with_discovered_fields(
        pl.DataFrame([event(LINES[0]), event(LINES[5]), event("not a flow log at all", at=T0)])
    )
    df = lf.collect()
    assert df.schema["dstPort"] == pl.Int64 and df.schema["srcAddr"] == pl.String
    assert df["dstPort"].to_list() == [443, None, None]
    assert df["logStatus"].to_list() == ["OK", "NODATA", None]
    assert df["startTime"].to_list() == [T0, T0 + 1000, None]
    assert df["interfaceId"].to_list() == ["eni-0aaa", "eni-0aaa", None]


def test_flow_log_events_rebuild_messages_streams_and_times(tmp_path: Path) -> None:
    lines = [LINES[0], default_line(eni="eni-0bbb", start=T0 + 5), LINES[5]]
    name = "123456789012_vpcflowlogs_eu-west-1_fl-0abc123_20261101T0000Z_deadbeef.log.gz"
    write_lines(tmp_path / name, lines, gz=True, header=DEFAULT_HEADER)
    ledger = Ledger()
    df = flow_log_events([tmp_path], ledger).collect()
    assert df["@message"].to_list() == lines
    assert df["@timestamp"].to_list() == [T0 * 1000, (T0 + 5) * 1000, (T0 + 1000) * 1000]
    assert df["@logStream"].to_list() == ["eni-0aaa-all", "eni-0bbb-all", "eni-0aaa-all"]
    assert set(df["@log"]) == {"123456789012:fl-0abc123"}
    assert df["srcPort"].to_list() == [40000, 40000, None]
    assert ledger.malformed == 0


def test_flow_log_events_of_nothing_is_an_empty_events_frame(tmp_path: Path) -> None:
    empty = write_lines(tmp_path / "empty.log", [], header=DEFAULT_HEADER)
    result = run_query("stats count(*)", flow_log_events([empty], Ledger()))
    assert result.rows == [] and result.statistics.records_scanned == 0


# ---------------------------------------------------------------------------------------------- commands


def test_without_fields_the_default_columns_come_most_recent_first(events: pl.LazyFrame) -> None:
    result = run("filter srcAddr = '10.0.1.10'", events)
    assert result.fields == ("@timestamp", "@message")
    assert column(result, "@timestamp") == ["2026-11-01 00:01:00.000", "2026-11-01 00:00:00.000"]
    assert column(result, "@message") == [LINES[1], LINES[0]]


def test_fields_accumulate_and_display_replaces(events: pl.LazyFrame) -> None:
    result = run("fields srcAddr | fields dstPort, bytes * 2 as double | limit 1", events)
    assert result.fields == ("srcAddr", "dstPort", "double")
    assert result.rows == [{"srcAddr": None, "dstPort": None, "double": None}]  # the NODATA one is newest
    shown = run("fields srcAddr, dstPort | display dstPort | sort dstPort asc | limit 1", events)
    assert shown.fields == ("dstPort",) and shown.rows == [{"dstPort": "22"}]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("dstPort = 443", [443, 443, 443]),
        ("dstPort != 443", [22, 53]),
        ("dstPort < 53", [22]),
        ("dstPort <= 53", [22, 53]),
        ("dstPort > 53", [443, 443, 443]),
        ("dstPort >= 53", [53, 443, 443, 443]),
        ("dstPort = 443 and action = 'REJECT'", [443]),
        ("dstPort = 22 or protocol = 17", [22, 53]),
        ("not dstPort = 443", [22, 53]),
        ("dstPort in [22, 53]", [22, 53]),
        ("dstPort not in [22, 53]", [443, 443, 443]),
        ("dstAddr like '10.0.2.'", [22, 443, 443]),
        ("dstAddr not like '10.0.2.'", [53, 443]),
        ("dstAddr like /^10\\.0\\.2\\.1[56]$/", [22, 443, 443]),
        ("dstAddr =~ /8\\.8/", [53]),
        ("srcAddr like /(?i)DB8/", [443]),
    ],
)
def test_every_comparison_and_boolean_operator(
    events: pl.LazyFrame, condition: str, expected: list[int]
) -> None:
    result = run(f"filter {condition} | fields dstPort | sort dstPort", events)
    assert column(result, "dstPort") == [str(p) for p in expected]


@pytest.mark.parametrize(
    "condition",
    ["dstPort = '22'", 'dstPort = "22"', "'22' = dstPort", "dstPort in ['22']", "dstPort <= '22'"],
)
def test_a_numeric_string_equals_the_number(events: pl.LazyFrame, condition: str) -> None:
    assert column(run(f"filter {condition} | fields dstPort", events), "dstPort") == ["22"]


def test_text_never_equals_a_number_and_parsed_text_compares_as_numbers(events: pl.LazyFrame) -> None:
    assert run("filter protocol = 'tcp'", events).rows == []
    parsed = run(
        'parse @message "* * * * * * * * * * * * * *" as v, acct, eni, src, dst, sp, dp, pr, pk, nb, st, en, ac, ls'
        " | filter dp = 22 or nb > 1000 | fields dp, nb, nb + 1 as next | sort nb desc",
        events,
    )
    assert parsed.rows == [{"dp": "22", "nb": "1200", "next": "1201"}]


def test_arithmetic_and_number_rendering(events: pl.LazyFrame) -> None:
    result = run(
        "filter dstPort = 22 | fields bytes + 1 as a, bytes - 1 as b, bytes * 2 as c, bytes / packets as d,"
        " bytes % 7 as e, 2 ^ 10 as f, bytes / 0 as g, bytes / 7 as h, -bytes as i",
        events,
    )
    assert result.rows == [
        {
            "a": "1201",
            "b": "1199",
            "c": "2400",
            "d": "300",
            "e": "3",
            "f": "1024",
            "g": None,
            "h": str(1200 / 7),
            "i": "-1200",
        }
    ]


def test_numeric_functions(events: pl.LazyFrame) -> None:
    result = run(
        "filter dstPort = 22 | fields floor(bytes / 7) as a, ceil(bytes / 7) as b, abs(0 - bytes) as c,"
        " greatest(srcPort, dstPort, 50000) as d, least(srcPort, dstPort) as e",
        events,
    )
    assert result.rows == [{"a": "171", "b": "172", "c": "1200", "d": "50000", "e": "22"}]


def test_subnet_functions(events: pl.LazyFrame) -> None:
    def ports(condition: str) -> list[str | None]:
        return column(run(f"filter {condition} | fields dstPort | sort dstPort", events), "dstPort")

    assert ports("isIpv4InSubnet(dstAddr, '10.0.2.0/28')") == ["443", "443"]
    assert ports("isIpv4InSubnet(dstAddr, '10.0.2.16/32')") == ["22"]
    assert ports("isIpv4InSubnet(srcAddr, '0.0.0.0/0')") == ["22", "53", "443", "443"]
    assert ports("isIpv6InSubnet(dstAddr, '2001:db8:0:1::/64')") == ["443"]
    assert ports("isIpInSubnet(srcAddr, '2001:db8::/32')") == ["443"]
    assert ports("isIpInSubnet(dstAddr, '8.8.0.0/16')") == ["53"]
    assert ports("not isIpv4InSubnet(srcAddr, '10.0.0.0/8')") == ["443", None]


def test_a_malformed_subnet_is_a_syntax_error_at_the_literal(events: pl.LazyFrame) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        run("filter isIpv4InSubnet(srcAddr, '10.0.0.0/33')", events)
    assert info.value.column == 32
    with pytest.raises(QuerySyntaxError, match="not an IPv4 subnet"):
        run("filter isIpv4InSubnet(srcAddr, '2001:db8::/32')", events)


def test_ispresent_and_coalesce(events: pl.LazyFrame) -> None:
    assert len(run("filter ispresent(srcAddr)", events).rows) == 5
    assert len(run("filter not isPresent(srcAddr)", events).rows) == 1
    result = run("filter logStatus = 'NODATA' | fields coalesce(srcAddr, interfaceId) as who", events)
    assert result.rows == [{"who": "eni-0aaa"}]


def test_stats_aggregates(events: pl.LazyFrame) -> None:
    result = run(
        "filter ispresent(srcAddr) | stats count(*) as n, count(srcAddr) as c, count_distinct(dstAddr) as d,"
        " sum(bytes) as s, min(bytes) as lo, max(bytes) as hi, avg(bytes) as mean,"
        " earliest(dstPort) as first, latest(dstPort) as last, sum(bytes) / count(*) as ratio",
        events,
    )
    assert result.fields == ("n", "c", "d", "s", "lo", "hi", "mean", "first", "last", "ratio")
    assert result.rows == [
        {
            "n": "5",
            "c": "5",
            "d": "4",
            "s": "2730",
            "lo": "90",
            "hi": "1200",
            "mean": "546",
            "first": "443",
            "last": "443",
            "ratio": "546",
        }
    ]


def test_stats_by_fields_and_bin(events: pl.LazyFrame) -> None:
    by_source = run("stats count(*), sum(packets) as p by srcAddr | sort p desc", events)
    assert by_source.fields == ("srcAddr", "count(*)", "p")
    assert by_source.rows[0] == {"srcAddr": "10.0.1.10", "count(*)": "2", "p": "14"}
    binned = run("stats count(*) as n by bin(5m) as t", events)
    assert binned.rows == [
        {"t": "2026-11-01 00:00:00.000", "n": "2"},
        {"t": "2026-11-01 00:05:00.000", "n": "1"},
        {"t": "2026-11-01 00:10:00.000", "n": "1"},
        {"t": "2026-11-01 00:15:00.000", "n": "2"},
    ]


def test_stats_in_sequence_and_filter_on_aggregates(events: pl.LazyFrame) -> None:
    result = run(
        "filter ispresent(srcAddr) | stats sum(bytes) as b by srcAddr, dstAddr"
        " | stats count(*) as pairs, max(b) as top by srcAddr | filter pairs > 1 | sort srcAddr",
        events,
    )
    assert result.rows == [
        {"srcAddr": "10.0.1.9", "pairs": "2", "top": "100"},  # natural order: 9 before 10
        {"srcAddr": "10.0.1.10", "pairs": "2", "top": "1200"},
    ]


def test_stats_over_nothing_matched_returns_no_rows(events: pl.LazyFrame) -> None:
    result = run("filter dstPort = 9999 | stats count(*)", events)
    assert result.rows == [] and result.statistics.records_matched == 0


def test_aggregates_outside_stats_and_plain_fields_inside_are_errors(events: pl.LazyFrame) -> None:
    with pytest.raises(QuerySyntaxError, match="only be used in stats"):
        run("filter sum(bytes) > 1", events)
    with pytest.raises(QuerySyntaxError, match="aggregate functions"):
        run("stats bytes by srcAddr", events)


def test_sort_keys_directions_and_natural_text_order() -> None:
    lines = [
        default_line(src, "10.0.2.15", start=T0 + i)
        for i, src in enumerate(["10.0.1.9", "10.0.1.10", "9.1.1.1"])
    ]
    lf = frame(*lines).with_columns(pl.Series("label", ["b7", "b10", "42"]), pl.Series("grp", [1, 1, 2]))
    assert column(run("fields srcAddr | sort srcAddr", lf), "srcAddr") == ["9.1.1.1", "10.0.1.9", "10.0.1.10"]
    assert column(run("fields srcAddr | sort srcAddr desc", lf), "srcAddr") == [
        "10.0.1.10",
        "10.0.1.9",
        "9.1.1.1",
    ]
    # CWL_QuerySyntax-Sort: non-number values come before number values; digit runs by value
    assert column(run("fields label | sort label asc", lf), "label") == ["b7", "b10", "42"]
    two_keys = run("fields grp, srcAddr | sort grp desc, srcAddr asc", lf)
    assert column(two_keys, "srcAddr") == ["9.1.1.1", "10.0.1.9", "10.0.1.10"]


def test_dedup_keeps_the_first_in_sort_order_and_every_null() -> None:
    lines = [
        default_line("10.0.1.10", "10.0.2.15", 40000, 443, start=T0),
        default_line("10.0.1.10", "10.0.2.15", 40001, 443, start=T0 + 60),
        default_line("10.0.1.10", "10.0.2.16", 40002, 443, start=T0 + 120),
        f"2 123456789012 eni-0aaa - - - - - - - {T0 + 200} {T0 + 260} - NODATA",
        f"2 123456789012 eni-0aaa - - - - - - - {T0 + 300} {T0 + 360} - NODATA",
    ]
    lf = frame(*lines)
    newest = run("fields srcAddr, dstAddr, srcPort | dedup srcAddr, dstAddr", lf)  # default: newest first
    assert column(newest, "srcPort") == [None, None, "40002", "40001"]
    oldest = run(
        "fields srcAddr, dstAddr, srcPort | sort @timestamp asc | dedup srcAddr, dstAddr | limit 3", lf
    )
    assert column(oldest, "srcPort") == ["40000", "40002", None]
    assert oldest.capped  # four rows survived dedup, three shown


def test_parse_glob_other_fields_and_unmatched_events(events: pl.LazyFrame) -> None:
    result = run(
        'parse @logStream "*-*" as kind, rest | parse @message "* * * * * * *" as v, a, i, s, d, sp, tail'
        " | filter dstPort = 22 | fields kind, rest, v, d, sp",
        events,
    )
    assert result.rows == [{"kind": "eni", "rest": "0aaa-all", "v": "2", "d": "10.0.2.16", "sp": "40001"}]
    unmatched = run('parse @message "user=*;" as user | fields user | limit 1', events)
    assert unmatched.rows == [{"user": None}]


def test_parse_with_a_regular_expression(events: pl.LazyFrame) -> None:
    # The docs' own example (CWL_QuerySyntax-Parse): the ENI into NetworkInterface.
    result = run(
        "parse @message /(?<NetworkInterface>eni-.*?) / | display NetworkInterface | limit 1", events
    )
    assert result.rows == [{"NetworkInterface": "eni-0aaa"}]
    with pytest.raises(QuerySyntaxError, match="named groups"):
        run("parse @message /eni-.*? /", events)


def test_an_invalid_regex_is_reported_at_its_position(events: pl.LazyFrame) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        run("filter @message like /eni-(/", events)
    assert info.value.column == 22 and "invalid regular expression" in info.value.explanation


def test_limit_in_the_middle_of_the_pipeline(events: pl.LazyFrame) -> None:
    result = run("sort bytes desc | limit 2 | stats sum(bytes) as top2", events)
    assert result.rows == [{"top2": "2040"}]


# ---------------------------------------------------------------------------------------------- warnings


def test_unknown_field_warns_with_the_closest_name_and_reads_as_null(events: pl.LazyFrame) -> None:
    result = run("filter scrPort = 40000 | fields dstport", events)
    assert result.rows == []
    assert result.warnings == (
        "unknown field scrPort (did you mean srcPort?)",
        "unknown field dstport (did you mean dstPort?)",
    )
    nothing = run("fields zzzzzz | limit 1", events)
    assert nothing.rows == [{"zzzzzz": None}]
    assert nothing.warnings == ("unknown field zzzzzz (no such field in these events: it reads as null)",)


# ---------------------------------------------------------------------------------------------- caps and statistics


def many(count: int) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "@timestamp": [(T0 + i) * 1000 for i in range(count)],
            "@message": [f"m{i}" for i in range(count)],
            "@logStream": ["s"] * count,
            "@log": ["g"] * count,
        }
    )


def test_results_are_capped_at_ten_thousand_by_default() -> None:
    result = run_query("fields @message", many(10_050))
    assert (result.limit, result.capped, len(result.rows)) == (10_000, True, 10_000)
    exact = run_query("fields @message", many(10_000))
    assert (exact.limit, exact.capped, len(exact.rows)) == (10_000, False, 10_000)


def test_the_query_limit_and_the_default_limit_set_the_cap() -> None:
    result = run_query("fields @message | limit 20000", many(15_000))
    assert (result.limit, result.capped, len(result.rows)) == (20_000, False, 15_000)
    small = run_query("fields @message | limit 5", many(20))
    assert (small.limit, small.capped, len(small.rows)) == (5, True, 5)
    assert column(small, "@message") == ["m19", "m18", "m17", "m16", "m15"]
    assert run_query("fields @message", many(20), default_limit=7).limit == 7


def test_no_query_returns_more_than_the_service_maximum() -> None:
    result = run_query("fields @message | limit 250000", many(MAX_LIMIT + 5))
    assert (result.limit, result.capped, len(result.rows)) == (MAX_LIMIT, True, MAX_LIMIT)
    assert result.warnings == ("limit 250,000 is above the service maximum: at most 100,000 rows",)
    assert run_query("fields @message", many(3), default_limit=500_000).limit == MAX_LIMIT


def test_statistics_count_scanned_matched_and_bytes(events: pl.LazyFrame) -> None:
    result = run("filter action = 'ACCEPT' | stats count(*) by srcAddr", events)
    expected_bytes = sum(len(line.encode()) + 26 for line in LINES)
    assert result.statistics.records_scanned == 6
    assert result.statistics.records_matched == 4
    assert result.statistics.bytes_scanned == expected_bytes


def test_the_time_range_is_inclusive_epoch_seconds(events: pl.LazyFrame) -> None:
    result = run("fields dstPort", events, start=T0 + 60, end=T0 + 700)
    assert column(result, "dstPort") == ["53", "443", "22"]
    assert result.statistics.records_scanned == 3
    selected = [LINES[1], LINES[2], LINES[3]]
    assert result.statistics.bytes_scanned == sum(len(line.encode()) + 26 for line in selected)


def test_a_data_frame_works_as_well_as_a_lazy_frame(events: pl.LazyFrame) -> None:
    assert run_query("stats count(*)", events.collect()).rows == [{"count(*)": "6"}]


def test_min_max_of_parsed_numbers_compare_as_numbers() -> None:
    """Parsed fields are text; Insights compares numeric text as numbers (9 < 10000), so must min/max."""
    import polars as pl

    from sgadvisor.insights.executor import run_query

    events = pl.DataFrame(
        {
            "@timestamp": [1000, 2000, 3000],
            "@message": ["a 9 x", "a 10000 y", "b 5 z"],
            "@logStream": ["s", "s", "s"],
            "@log": ["g", "g", "g"],
        }
    )
    numbers = run_query(
        'parse @message "* * *" as k, port, t | stats max(port) as mx, min(port) as mn by k', events
    )
    assert numbers.rows == [{"k": "a", "mx": "10000", "mn": "9"}, {"k": "b", "mx": "5", "mn": "5"}]
    text = run_query('parse @message "* * *" as k, port, t | stats max(t) as mx, min(t) as mn', events)
    assert text.rows == [{"mx": "z", "mn": "x"}]
