"""The query builder of DESIGN §3.1: the seed's two queries character for character, safe quoting, and a
clear error for every option value Insights would misread."""

from __future__ import annotations

import pytest

from sgadvisor.errors import UsageError
from sgadvisor.insights.builder import QueryOptions, build_query, insights_name, parse_clause, quote
from tests.test_cli import run

SEED_REJECTED = """filter @logStream = 'eni-0e7ae111222111000-all'
| filter action='REJECT'
| filter srcAddr = '10.0.1.10'
| filter dstAddr = '10.0.2.15'
| filter dstPort = '22'
| stats count(*) as num by srcAddr, dstAddr, dstPort"""

SEED_ACCEPTED = """filter @logStream = 'eni-0e7ae111222111000-all'
| filter action='ACCEPT'
| filter srcAddr = '10.0.1.10'
| stats count(*) as num by srcAddr, dstAddr, dstPort
| sort num desc"""


def test_seed_examples_character_for_character() -> None:
    rejected = QueryOptions(
        enis=["eni-0e7ae111222111000"], action="REJECT", src="10.0.1.10", dst="10.0.2.15", dst_port="22",
        count_by=["srcAddr,dstAddr,dstPort"],
    )  # fmt: skip
    accepted = QueryOptions(
        enis=["eni-0e7ae111222111000"], action="ACCEPT", src="10.0.1.10", count_by=["srcAddr,dstAddr,dstPort"],
        sort="num:desc",
    )  # fmt: skip
    assert build_query(rejected) == SEED_REJECTED
    assert build_query(accepted) == SEED_ACCEPTED


def test_seed_examples_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    common = ["query", "--eni", "eni-0e7ae111222111000", "--src", "10.0.1.10", "--print-query"]
    assert run([*common, "--action", "REJECT", "--dst", "10.0.2.15", "--dst-port", "22",
                "--count-by", "srcAddr,dstAddr,dstPort"]) == 0  # fmt: skip
    assert capsys.readouterr().out == SEED_REJECTED + "\n"
    assert (
        run([*common, "--action", "accept", "--count-by", "srcAddr,dstAddr,dstPort", "--sort", "num:desc"])
        == 0
    )
    assert capsys.readouterr().out == SEED_ACCEPTED + "\n"


def test_details_sort_by_time_unless_told_otherwise() -> None:
    assert build_query(QueryOptions(dst_port="443")) == (
        "filter dstPort = '443'\n| fields @timestamp, srcAddr, srcPort, dstAddr, dstPort, protocol, action\n"
        "| sort @timestamp desc"
    )
    assert build_query(QueryOptions(protocol="udp", sort="bytes:asc", limit=20)) == (
        "filter protocol = '17'\n| fields @timestamp, srcAddr, srcPort, dstAddr, dstPort, protocol, action\n"
        "| sort bytes asc\n| limit 20"
    )


def test_filters_come_in_the_fixed_order() -> None:
    text = build_query(
        QueryOptions(protocol="tcp", dst_port="5432", dst="10.0.2.30", src_port="40000", src="10.0.1.10",
                     action="accept", enis=["eni-0123456789abcdef0", "eni-0123456789abcdef1"])
    )  # fmt: skip
    order = [line.split()[1] if line.startswith("| ") else line.split()[0] for line in text.splitlines()]
    assert (
        text.splitlines()[0]
        == "filter @logStream in ['eni-0123456789abcdef0-all', 'eni-0123456789abcdef1-all']"
    )
    assert [line for line in text.splitlines() if "filter" in line][1:] == [
        "| filter action='ACCEPT'",
        "| filter srcAddr = '10.0.1.10'",
        "| filter srcPort = '40000'",
        "| filter dstAddr = '10.0.2.30'",
        "| filter dstPort = '5432'",
        "| filter protocol = '6'",
    ]
    assert order[0] == "filter"


def test_a_cidr_becomes_a_subnet_test() -> None:
    assert "filter isIpInSubnet(dstAddr, '10.0.2.0/24')" in build_query(QueryOptions(dst="10.0.2.7/24"))


def test_custom_format_gets_a_parse_clause_first() -> None:
    fields = ("version", "interface-id", "srcaddr", "dstaddr", "tcp-flags", "pkt-srcaddr", "flow-direction")
    text = build_query(QueryOptions(src="10.0.1.10", log_format=fields))
    assert text.splitlines()[0] == (
        'parse @message "* * * * * * *" as version, interfaceId, srcAddr, dstAddr, tcpFlags, pktSrcaddr, '
        "flowDirection"
    )
    assert text.splitlines()[1] == "| filter srcAddr = '10.0.1.10'"
    assert insights_name("log-status") == "logStatus" and insights_name("start") == "startTime"
    assert parse_clause(["a-b"]) == 'parse @message "*" as aB'


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (QueryOptions(enis=["eni-1' or 1=1"]), "--eni"),
        (QueryOptions(action="DROP"), "--action"),
        (QueryOptions(src="10.0.1.300"), "--src"),
        (QueryOptions(dst="example.com"), "--dst"),
        (QueryOptions(dst_port="https"), "--dst-port"),
        (QueryOptions(src_port="70000"), "--src-port"),
        (QueryOptions(protocol="gre"), "--protocol"),
        (QueryOptions(count_by=["srcAddr, dst'Addr"]), "--count-by"),
        (QueryOptions(sort="num:sideways"), "--sort"),
        (QueryOptions(sort="num desc; x"), "--sort"),
        (QueryOptions(limit=0), "--limit"),
        (QueryOptions(limit=100_001), "--limit"),
    ],
)
def test_bad_option_values_are_named(options: QueryOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build_query(options)


def test_quote_escapes() -> None:
    assert quote("it's") == "'it\\'s'"
    assert quote("a\\b") == "'a\\\\b'"


def test_query_text_limit() -> None:
    enis = [f"eni-{i:017x}" for i in range(400)]
    with pytest.raises(UsageError, match="at most 10,000"):
        build_query(QueryOptions(enis=enis))


def test_query_and_options_together_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "fields @timestamp", "--action", "REJECT", "--print-query"]) == 2
    assert "not both" in capsys.readouterr().err


def test_a_given_query_is_printed_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "stats count(*) by action", "--print-query"]) == 0
    assert capsys.readouterr().out == "stats count(*) by action\n"


def test_aws_query_without_aws_says_what_to_do(capsys: pytest.CaptureFixture[str], no_aws: None) -> None:
    assert run(["query", "--log-group", "vpc-flow-logs", "--action", "REJECT"]) == 2
    err = capsys.readouterr().err
    assert "error: no AWS region" in err and "--flows" in err


def test_query_needs_a_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", "--action", "REJECT"]) == 2
    assert "--flows" in capsys.readouterr().err
