"""The Logs Insights lexer/parser: what it accepts, and errors that point at the right place."""

from __future__ import annotations

import pytest

from sgadvisor.errors import SgAdvisorError
from sgadvisor.insights.language import (
    MAX_QUERY_CHARS,
    Binary,
    Call,
    DedupCmd,
    DisplayCmd,
    Field,
    FieldsCmd,
    FilterCmd,
    InList,
    Like,
    LimitCmd,
    Literal,
    ParseCmd,
    QuerySyntaxError,
    Regex,
    SortCmd,
    StatsCmd,
    Tok,
    Unary,
    UnsupportedQueryError,
    locate,
    parse_query,
    tokenize,
)


def only(text: str) -> object:
    (command,) = parse_query(text).commands
    return command


def condition(text: str) -> object:
    command = only(f"filter {text}")
    assert isinstance(command, FilterCmd)
    return command.condition


# ---------------------------------------------------------------------------------------------- lexing


def test_tokens_carry_positions_and_kinds() -> None:
    tokens = tokenize("filter `foo-bar` = 'a\\'b' | stats count(*) by bin(5m)")
    kinds = [t.kind for t in tokens]
    assert kinds[:4] == [Tok.IDENT, Tok.QIDENT, Tok.OP, Tok.STRING]
    assert tokens[1].text == "foo-bar" and tokens[3].text == "a'b"
    assert tokens[4].kind is Tok.PIPE
    duration = next(t for t in tokens if t.kind is Tok.DURATION)
    assert duration.text == "5m"
    assert tokens[-1].kind is Tok.END


def test_comments_are_dropped() -> None:
    query = parse_query("# top talkers\nstats count(*) by srcAddr # per source\n| limit 5 # five")
    assert [c.keyword for c in query.commands] == ["stats", "limit"]


def test_slash_is_a_regex_after_like_and_division_after_an_operand() -> None:
    like = condition("@message like /Exc\\/eption/")
    assert isinstance(like, Like) and isinstance(like.pattern, Regex)
    assert like.pattern.pattern == "Exc/eption"
    ratio = only("fields bytes / packets as per")
    assert isinstance(ratio, FieldsCmd)
    assert isinstance(ratio.items[0].expr, Binary) and ratio.items[0].expr.op == "/"


def test_field_names_may_hold_at_and_dots() -> None:
    command = only("fields @timestamp, requestParameters.userName")
    assert isinstance(command, FieldsCmd)
    assert [i.name for i in command.items] == ["@timestamp", "requestParameters.userName"]


# ---------------------------------------------------------------------------------------------- commands


def test_commands_and_keywords_are_case_insensitive() -> None:
    # From the docs' own parse sample (CWL_QuerySyntax-examples).
    query = parse_query(
        'FIELDS @message\n    | PARSE @message "* [*] *" as loggingTime, loggingType, loggingMessage\n'
        '    | FILTER loggingType IN ["ERROR", "INFO"]\n'
        '    | DISPLAY loggingMessage, loggingType = "ERROR" as isError'
    )
    assert [c.keyword for c in query.commands] == ["fields", "parse", "filter", "display"]
    display = query.commands[3]
    assert isinstance(display, DisplayCmd)
    assert display.items[1].name == "isError" and display.items[1].aliased


def test_newline_starts_a_command_without_a_pipe() -> None:
    query = parse_query("filter action = 'REJECT'\nstats count(*) by srcAddr\nsort srcAddr")
    assert [c.keyword for c in query.commands] == ["filter", "stats", "sort"]


def test_stats_items_by_and_aliases() -> None:
    command = only("stats count(*) as num, sum(bytes), count_distinct(dstAddr) by srcAddr as src, bin(1h)")
    assert isinstance(command, StatsCmd)
    assert [i.name for i in command.aggregates] == ["num", "sum(bytes)", "count_distinct(dstAddr)"]
    assert [i.name for i in command.by] == ["src", "bin(1h)"]
    star = command.aggregates[0].expr
    assert isinstance(star, Call) and star.star


def test_unaliased_expressions_are_named_by_their_text() -> None:
    command = only("stats   avg( bytes ) by  srcAddr")
    assert isinstance(command, StatsCmd)
    assert command.aggregates[0].name == "avg( bytes )"


def test_sort_keys_and_directions() -> None:
    command = only("sort packetsTransferred  desc, srcAddr asc, dstAddr")
    assert isinstance(command, SortCmd)
    assert [(k.name, k.descending) for k in command.keys] == [
        ("packetsTransferred", True),
        ("srcAddr", False),
        ("dstAddr", False),
    ]


def test_limit_dedup_and_parse() -> None:
    assert only("limit 25") == LimitCmd("limit", 0, 25)
    dedup = only("dedup srcAddr, dstAddr")
    assert isinstance(dedup, DedupCmd) and [f.name for f in dedup.fields] == ["srcAddr", "dstAddr"]
    parse = only('parse @message "* * *" as a, b, `c-d`')
    assert isinstance(parse, ParseCmd)
    assert parse.names == ("a", "b", "c-d") and not parse.regex and parse.source.name == "@message"
    other = only('parse url "/api/*/users/*" as version, user')
    assert isinstance(other, ParseCmd) and other.source.name == "url"
    regex = only("parse @message /(?<NetworkInterface>eni-.*?) /")
    assert isinstance(regex, ParseCmd) and regex.regex


# ---------------------------------------------------------------------------------------------- expressions


def test_precedence_not_and_or() -> None:
    expr = condition("not a = 1 and b = 2 or c = 3")
    assert isinstance(expr, Binary) and expr.op == "or"
    left = expr.left
    assert isinstance(left, Binary) and left.op == "and"
    assert isinstance(left.left, Unary) and left.left.op == "not"


def test_arithmetic_precedence_and_right_associative_power() -> None:
    expr = condition("a + b * c ^ 2 ^ 3 > 1")
    assert isinstance(expr, Binary) and expr.op == ">"
    total = expr.left
    assert isinstance(total, Binary) and total.op == "+"
    product = total.right
    assert isinstance(product, Binary) and product.op == "*"
    power = product.right
    assert isinstance(power, Binary) and power.op == "^"
    assert isinstance(power.right, Binary) and power.right.op == "^"


def test_in_not_in_like_not_like_and_regex_match() -> None:
    in_list = condition("dstPort in [22, '80', 443]")
    assert isinstance(in_list, InList) and not in_list.negated
    assert [i.value for i in in_list.items] == [22, "80", 443]
    not_in = condition("action not in ['REJECT']")
    assert isinstance(not_in, InList) and not_in.negated
    not_like = condition("srcAddr not like '10.'")
    assert isinstance(not_like, Like) and not_like.negated and isinstance(not_like.pattern, Literal)
    match = condition("srcAddr =~ /^10\\./")
    assert isinstance(match, Like) and isinstance(match.pattern, Regex)


def test_negative_numbers_and_decimals() -> None:
    expr = condition("x > -1.5")
    assert isinstance(expr, Binary) and isinstance(expr.right, Literal) and expr.right.value == -1.5


def test_function_names_are_case_insensitive() -> None:
    expr = condition("isPresent(srcAddr) and ISIPV4INSUBNET(srcAddr, '10.0.0.0/8')")
    assert isinstance(expr, Binary)
    assert isinstance(expr.left, Call) and expr.left.name == "ispresent"
    assert isinstance(expr.right, Call) and expr.right.name == "isipv4insubnet"
    assert isinstance(expr.right.args[0], Field)


# ---------------------------------------------------------------------------------------------- errors


def syntax_error(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "column", "says"),
    [
        ("filter srcAddr = ", 1, 18, "end of the query"),
        ("filter (srcAddr = 1", 1, 20, "')'"),
        ("stats count(*) by srcAddr\n| sort num desc\n| limit", 3, 8, "whole number"),
        ("fields a,\n  b c", 2, 5, "'|'"),
        ("filter a = 'open", 1, 12, "unterminated string"),
        ("filter a = 1 |", 1, 15, "a command after '|'"),
        ("frobnicate x", 1, 1, "unknown command"),
        ("filter a = 1 | sort a | limit 0", 1, 31, "at least 1"),
        ("stats count(*) by bin(5parsecs)", 1, 24, "unknown time unit"),
        ("filter a ! b", 1, 10, "unexpected character"),
        ("filter foo(a)", 1, 8, "unknown function"),
        ('parse @message "* *" as a', 1, 16, "2 wildcard(s)"),
        ("fields a | dedup a | sort a", 1, 22, "only limit can follow dedup"),
        ("stats sum(*)", 1, 11, "only count accepts *"),
        ("filter isIpv4InSubnet(srcAddr)", 1, 8, "takes 2 argument"),
        ("", 1, 1, "empty"),
        ("| limit 1", 1, 1, "cannot start"),
    ],
)
def test_syntax_errors_point_at_the_place(text: str, line: int, column: int, says: str) -> None:
    error = syntax_error(text)
    assert (error.line, error.column) == (line, column), error.message
    assert says in error.explanation
    assert isinstance(error, SgAdvisorError) and error.hint


def test_syntax_error_message_has_a_caret_under_the_column() -> None:
    error = syntax_error("filter srcAddr = 10.0.0.1.2")
    lines = error.message.splitlines()
    assert lines[0].startswith("query syntax error at line 1, column ")
    text_line, caret_line = lines[1], lines[2]
    assert text_line.strip() == "filter srcAddr = 10.0.0.1.2"
    assert caret_line.index("^") == text_line.index("10.0.0.1.2")


def test_the_service_length_limit_is_enforced() -> None:
    error = syntax_error("fields " + "a" * MAX_QUERY_CHARS)
    assert "10,000" in error.explanation


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("fields a | unnest a into b", "the unnest command"),
        ("pattern @message", "the pattern command"),
        ("stats pct(bytes, 95)", "the function pct()"),
        ("fields strlen(@message) as n", "the function strlen()"),
        ("parse @message 'a=*' multi", "parse in multi mode"),
        ("stats count(*) by bin(5m, startTime)", "bin() of a field other than @timestamp"),
    ],
)
def test_constructs_outside_the_subset_are_unsupported(text: str, what: str) -> None:
    with pytest.raises(UnsupportedQueryError) as info:
        parse_query(text)
    assert info.value.what == what
    assert "is not supported offline (supported: commands fields, filter" in info.value.message


def test_locate_counts_lines_and_columns_from_one() -> None:
    assert locate("ab\ncd", 4) == (2, 2, "cd")
    assert locate("ab", 0) == (1, 1, "ab")
