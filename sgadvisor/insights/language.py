"""Lexer, AST and parser for the CloudWatch Logs Insights query language subset run offline.

The grammar follows the Logs Insights QL reference
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html):

- commands separated by ``|`` (a command keyword that starts a new line also starts a new command);
  ``#`` starts a comment that runs to the end of the line;
- command names, keywords (``and or not in like as by asc desc``) and function names are
  case-insensitive (the docs' own samples write ``FIELDS … | PARSE … | FILTER … IN […]``), field names
  are not;
- field names are ``[@A-Za-z_][A-Za-z0-9_.@]*``, anything else goes between backticks
  (CWL_QuerySyntax: "Any log field named in a query that has characters other than the @ sign, the
  period (.), and alphanumeric characters must be surrounded by backtick characters");
- strings use ``'`` or ``"`` with backslash escapes; ``/…/`` is a regular expression where a value is
  expected (after ``like``, ``=~``, ``(``, ``,`` …), and division after an operand;
- durations such as ``5m`` or ``1h`` (a number glued to a unit) appear in ``bin()``.

What is recognised but outside the offline subset raises :class:`UnsupportedQueryError`; what is not
Logs Insights at all raises :class:`QuerySyntaxError` with the line, the column and a caret excerpt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sgadvisor.errors import SgAdvisorError

MAX_QUERY_CHARS = 10_000  # the service rejects longer query strings (StartQuery queryString)

SUPPORTED_COMMANDS = ("fields", "filter", "stats", "sort", "limit", "display", "dedup", "parse")
# Commands of the real language that this offline executor does not run (CWL_QuerySyntax command table).
OTHER_COMMANDS = (
    "unnest",
    "lookup",
    "join",
    "pattern",
    "anomaly",
    "diff",
    "unmask",
    "filterindex",
    "source",
    "head",
    "tail",
    "fieldindex",
)
AGGREGATES = ("count", "count_distinct", "sum", "min", "max", "avg", "earliest", "latest")
SCALAR_FUNCTIONS = (
    "isipv4insubnet",
    "isipv6insubnet",
    "isipinsubnet",
    "floor",
    "ceil",
    "abs",
    "greatest",
    "least",
    "ispresent",
    "coalesce",
    "bin",
)
# Functions of the real language outside the subset: named so the error says "not supported offline"
# rather than "unknown function" (CWL_QuerySyntax-operations-functions, CWL_QuerySyntax-Stats).
OTHER_FUNCTIONS = (
    "pct",
    "stddev",
    "sortsfirst",
    "sortslast",
    "log",
    "sqrt",
    "datefloor",
    "dateceil",
    "frommillis",
    "tomillis",
    "now",
    "isempty",
    "isblank",
    "concat",
    "ltrim",
    "rtrim",
    "trim",
    "strlen",
    "toupper",
    "tolower",
    "substr",
    "replace",
    "strcontains",
    "isvalidip",
    "isvalidipv4",
    "isvalidipv6",
    "jsonparse",
    "jsonstringify",
    "rate",
    "count_over_time",
    "sum_over_time",
    "histogram",
    "abs_diff",
    "bitwise_and",
    "split",
    "unnest",
)
SUBSET_SUMMARY = (
    "commands fields, filter, stats, sort, limit, display, dedup, parse (glob or regex); operators "
    "= != < <= > >= and or not in like =~ + - * / % ^; functions isIpv4InSubnet, isIpv6InSubnet, "
    "isIpInSubnet, floor, ceil, abs, greatest, least, ispresent, coalesce, bin; aggregates count, "
    "count_distinct, sum, min, max, avg, earliest, latest"
)
SUBSET_HINT = "the offline subset is listed in docs/insights-subset.md"

# bin() units (CWL_QuerySyntax-Stats): each maps to the column engine's truncation unit.
DURATION_UNITS: dict[str, str] = {
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), "ms"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "week", "weeks"), "w"),
    **dict.fromkeys(("mo", "mon", "mons", "month", "months"), "mo"),
    **dict.fromkeys(("q", "qtr", "qtrs", "quarter", "quarters"), "q"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "y"),
}


# ---------------------------------------------------------------------------------------------- errors


class QuerySyntaxError(SgAdvisorError):
    """The query is not valid Logs Insights: where (1-based line and column) and why, with a caret."""

    def __init__(self, query: str, offset: int, explanation: str) -> None:
        line, column, text = locate(query, offset)
        caret = " " * (column - 1) + "^"
        message = f"query syntax error at line {line}, column {column}: {explanation}\n  {text}\n  {caret}"
        super().__init__(message, hint=SUBSET_HINT)
        self.line = line
        self.column = column
        self.explanation = explanation


class UnsupportedQueryError(SgAdvisorError):
    """Valid Logs Insights that the offline executor does not run: never a silently different answer."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not supported offline (supported: {SUBSET_SUMMARY})", hint=SUBSET_HINT)
        self.what = what


def locate(query: str, offset: int) -> tuple[int, int, str]:
    """1-based line and column of ``offset``, and the text of that line (tabs kept as one column)."""
    offset = max(0, min(offset, len(query)))
    line_start = query.rfind("\n", 0, offset) + 1
    line_end = query.find("\n", offset)
    text = query[line_start : line_end if line_end >= 0 else len(query)]
    return query.count("\n", 0, offset) + 1, offset - line_start + 1, text


# ---------------------------------------------------------------------------------------------- tokens


class Tok(StrEnum):
    IDENT = "identifier"
    QIDENT = "quoted field name"
    STRING = "string"
    NUMBER = "number"
    DURATION = "duration"
    REGEX = "regular expression"
    OP = "operator"
    PIPE = "'|'"
    END = "end of query"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Tok
    text: str  # the value: identifier name, unescaped string, regex body, operator, number text
    start: int  # offset of the first character in the query
    end: int  # offset after the last character
    line_start: bool  # first token on its line (a command keyword there starts a new command)

    def is_word(self, *words: str) -> bool:
        return self.kind is Tok.IDENT and self.text.lower() in words


_OPERATORS = ("!=", "<=", ">=", "=~", "=", "<", ">", "+", "-", "*", "/", "%", "^", "(", ")", "[", "]", ",")
# After these a '/' opens a regular expression rather than dividing.
_VALUE_EXPECTED_WORDS = ("like", "and", "or", "not", "in", "filter", "parse")
_IDENT_START = set("@_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_IDENT_CHARS = _IDENT_START | set("0123456789.")


def tokenize(query: str) -> list[Token]:
    """Split the query into tokens; comments and whitespace are dropped, positions kept."""
    tokens: list[Token] = []
    pos, n = 0, len(query)
    line_start = True
    while pos < n:
        ch = query[pos]
        if ch == "\n":
            line_start = True
            pos += 1
            continue
        if ch in " \t\r":
            pos += 1
            continue
        if ch == "#":
            newline = query.find("\n", pos)
            pos = n if newline < 0 else newline
            continue
        start = pos
        if ch in _IDENT_START:
            while pos < n and query[pos] in _IDENT_CHARS:
                pos += 1
            tokens.append(Token(Tok.IDENT, query[start:pos], start, pos, line_start))
        elif ch.isdigit() or (ch == "." and pos + 1 < n and query[pos + 1].isdigit()):
            tokens.append(_lex_number(query, pos, line_start))
            pos = tokens[-1].end
        elif ch in "'\"`":
            text, pos = _lex_quoted(query, pos, ch)
            kind = Tok.QIDENT if ch == "`" else Tok.STRING
            tokens.append(Token(kind, text, start, pos, line_start))
        elif ch == "/" and _regex_allowed(tokens):
            text, pos = _lex_quoted(query, pos, "/")
            tokens.append(Token(Tok.REGEX, text, start, pos, line_start))
        elif ch == "|":
            pos += 1
            tokens.append(Token(Tok.PIPE, "|", start, pos, line_start))
        else:
            op = next((o for o in _OPERATORS if query.startswith(o, pos)), None)
            if op is None:
                raise QuerySyntaxError(query, pos, f"unexpected character {ch!r}")
            pos += len(op)
            tokens.append(Token(Tok.OP, op, start, pos, line_start))
        line_start = False
    tokens.append(Token(Tok.END, "", n, n, True))
    return tokens


def _lex_number(query: str, pos: int, line_start: bool) -> Token:
    start, n = pos, len(query)
    while pos < n and (query[pos].isdigit() or query[pos] == "."):
        pos += 1
    if pos < n and query[pos].isalpha():  # a duration: 5m, 1h, 30sec
        unit_start = pos
        while pos < n and query[pos].isalpha():
            pos += 1
        if query[unit_start:pos].lower() not in DURATION_UNITS:
            raise QuerySyntaxError(query, unit_start, f"unknown time unit {query[unit_start:pos]!r}")
        return Token(Tok.DURATION, query[start:pos], start, pos, line_start)
    text = query[start:pos]
    if text.count(".") > 1 or text.endswith("."):
        raise QuerySyntaxError(query, start, f"malformed number {text!r}")
    return Token(Tok.NUMBER, text, start, pos, line_start)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`"}


def _lex_quoted(query: str, pos: int, quote: str) -> tuple[str, int]:
    """Read a quoted string, backticked name or /regex/ starting at ``pos``; return (value, end)."""
    start, n = pos, len(query)
    pos += 1
    out: list[str] = []
    while pos < n:
        ch = query[pos]
        if ch == "\\" and pos + 1 < n:
            nxt = query[pos + 1]
            if quote == "/":  # regex escapes pass through to the regex engine, except \/
                out.append("/" if nxt == "/" else ch + nxt)
            else:
                out.append(_ESCAPES.get(nxt, ch + nxt))
            pos += 2
            continue
        if ch == quote:
            return "".join(out), pos + 1
        if ch == "\n" and quote != "/":
            break
        out.append(ch)
        pos += 1
    what = {"/": "regular expression", "`": "field name"}.get(quote, "string")
    raise QuerySyntaxError(query, start, f"unterminated {what} (no closing {quote})")


def _regex_allowed(tokens: list[Token]) -> bool:
    """A '/' starts a regex unless it follows an operand (a value, a field, a closing bracket)."""
    if not tokens:
        return True
    prev = tokens[-1]
    if prev.kind is Tok.PIPE:
        return True
    if prev.kind is Tok.OP:
        return prev.text not in (")", "]")
    if prev.kind is Tok.IDENT:
        if prev.text.lower() in _VALUE_EXPECTED_WORDS:
            return True
        # `parse @message /…/`: a field right after `parse` is followed by the pattern
        return len(tokens) >= 2 and tokens[-2].is_word("parse")
    return False


# ---------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Node:
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Field(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: str | int | float


@dataclass(frozen=True, slots=True)
class Regex(Node):
    pattern: str


@dataclass(frozen=True, slots=True)
class Duration(Node):
    amount: int
    unit: str  # the column engine's unit: ms s m h d w mo q y


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "not" or "-"
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str  # and or = != < <= > >= + - * / % ^
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Like(Node):
    subject: Expr
    pattern: Literal | Regex
    negated: bool


@dataclass(frozen=True, slots=True)
class InList(Node):
    subject: Expr
    items: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str  # lower-cased
    args: tuple[Expr, ...]
    star: bool = False  # count(*)


Expr = Field | Literal | Regex | Duration | Unary | Binary | Like | InList | Call


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of fields/display/stats/by: an expression and the column name it produces."""

    expr: Expr
    name: str
    aliased: bool


@dataclass(frozen=True, slots=True)
class SortKey:
    expr: Expr
    name: str
    descending: bool


@dataclass(frozen=True, slots=True)
class Command:
    keyword: str
    start: int


@dataclass(frozen=True, slots=True)
class FieldsCmd(Command):
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class DisplayCmd(Command):
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class FilterCmd(Command):
    condition: Expr


@dataclass(frozen=True, slots=True)
class StatsCmd(Command):
    aggregates: tuple[Item, ...]
    by: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class SortCmd(Command):
    keys: tuple[SortKey, ...]


@dataclass(frozen=True, slots=True)
class LimitCmd(Command):
    count: int


@dataclass(frozen=True, slots=True)
class DedupCmd(Command):
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class ParseCmd(Command):
    source: Field
    pattern: str
    regex: bool
    names: tuple[str, ...]
    pattern_start: int


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    commands: tuple[Command, ...] = field(default=())


# ---------------------------------------------------------------------------------------------- parser


def parse_query(text: str) -> Query:
    """Parse a query string into commands; raise QuerySyntaxError / UnsupportedQueryError."""
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(
            text,
            MAX_QUERY_CHARS,
            f"the query is longer than {MAX_QUERY_CHARS:,} characters (the service limit)",
        )
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    # -- token helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind is not Tok.END:
            self.pos += 1
        return token

    def error(self, token: Token, explanation: str) -> QuerySyntaxError:
        return QuerySyntaxError(self.text, token.start, explanation)

    def unexpected(self, expected: str) -> QuerySyntaxError:
        token = self.tok
        found = "the end of the query" if token.kind is Tok.END else repr(self.text[token.start : token.end])
        return self.error(token, f"unexpected {found} (expected {expected})")

    def at_end(self) -> bool:
        return self.tok.kind is Tok.END

    def accept_op(self, op: str) -> bool:
        if self.tok.kind is Tok.OP and self.tok.text == op:
            self.advance()
            return True
        return False

    def expect_op(self, op: str, expected: str | None = None) -> Token:
        if self.tok.kind is Tok.OP and self.tok.text == op:
            return self.advance()
        raise self.unexpected(expected or f"'{op}'")

    def accept_word(self, *words: str) -> bool:
        if self.tok.is_word(*words):
            self.advance()
            return True
        return False

    def at_command_boundary(self) -> bool:
        token = self.tok
        if token.kind in (Tok.PIPE, Tok.END):
            return True
        return token.line_start and token.is_word(*SUPPORTED_COMMANDS, *OTHER_COMMANDS)

    # -- commands

    def parse(self) -> Query:
        commands: list[Command] = []
        while True:
            if self.tok.kind is Tok.PIPE and not commands:
                raise self.error(self.tok, "a query cannot start with '|'")
            if self.at_end():
                if not commands:
                    raise self.error(self.tok, "the query is empty")
                break
            commands.append(self.parse_command())
            if self.tok.kind is Tok.PIPE:
                self.advance()
                if self.at_end():
                    raise self.unexpected("a command after '|'")
            elif not self.at_end() and not self.at_command_boundary():
                raise self.unexpected("'|' or the end of the query")
        self.check_order(commands)
        return Query(self.text, tuple(commands))

    def check_order(self, commands: list[Command]) -> None:
        # CWL_QuerySyntax-Dedup: "The only query command that you can use in a query after the dedup
        # command is limit."
        for index, command in enumerate(commands):
            if isinstance(command, DedupCmd):
                for later in commands[index + 1 :]:
                    if not isinstance(later, LimitCmd):
                        raise QuerySyntaxError(
                            self.text, later.start, f"only limit can follow dedup, not {later.keyword}"
                        )

    def parse_command(self) -> Command:
        token = self.tok
        if token.kind is not Tok.IDENT:
            raise self.unexpected("a command (" + ", ".join(SUPPORTED_COMMANDS) + ")")
        word = token.text.lower()
        if word in OTHER_COMMANDS:
            raise UnsupportedQueryError(f"the {word} command")
        if word not in SUPPORTED_COMMANDS:
            raise self.error(
                token, f"unknown command {token.text!r} (expected {', '.join(SUPPORTED_COMMANDS)})"
            )
        self.advance()
        start = token.start
        if word == "fields":
            return FieldsCmd(word, start, self.parse_items())
        if word == "display":
            return DisplayCmd(word, start, self.parse_items())
        if word == "filter":
            return FilterCmd(word, start, self.parse_expr())
        if word == "stats":
            return self.parse_stats(start)
        if word == "sort":
            return self.parse_sort(start)
        if word == "limit":
            return self.parse_limit(start)
        if word == "dedup":
            return DedupCmd(word, start, tuple(self.parse_field_list("a field to dedup by")))
        return self.parse_parse(start)

    def parse_items(self) -> tuple[Item, ...]:
        items = [self.parse_item()]
        while self.accept_op(","):
            items.append(self.parse_item())
        return tuple(items)

    def parse_item(self) -> Item:
        expr = self.parse_expr()
        if self.accept_word("as"):
            alias = self.parse_name("a name after 'as'")
            return Item(expr, alias, True)
        name = expr.name if isinstance(expr, Field) else self.source_text(expr)
        return Item(expr, name, False)

    def source_text(self, node: Node) -> str:
        """The column name the service gives an unaliased expression: its text as written."""
        return " ".join(self.text[node.start : node.end].split())

    def parse_name(self, expected: str) -> str:
        token = self.tok
        if token.kind in (Tok.IDENT, Tok.QIDENT):
            self.advance()
            return token.text
        raise self.unexpected(expected)

    def parse_field_list(self, expected: str) -> list[Field]:
        fields = [self.parse_field(expected)]
        while self.accept_op(","):
            fields.append(self.parse_field(expected))
        return fields

    def parse_field(self, expected: str) -> Field:
        token = self.tok
        if token.kind in (Tok.IDENT, Tok.QIDENT):
            self.advance()
            return Field(token.start, token.end, token.text)
        raise self.unexpected(expected)

    def parse_stats(self, start: int) -> StatsCmd:
        aggregates = [self.parse_item()]
        while self.accept_op(","):
            aggregates.append(self.parse_item())
        by: list[Item] = []
        if self.accept_word("by"):
            by = list(self.parse_items())
        return StatsCmd("stats", start, tuple(aggregates), tuple(by))

    def parse_sort(self, start: int) -> SortCmd:
        keys: list[SortKey] = []
        while True:
            self.accept_word("by")  # `sort by @x desc` appears in community samples; harmless
            expr = self.parse_additive()
            descending = (
                False  # the reference names no default; ascending, as in SQL (docs/insights-subset.md)
            )
            if self.accept_word("desc"):
                descending = True
            else:
                self.accept_word("asc")
            name = expr.name if isinstance(expr, Field) else self.source_text(expr)
            keys.append(SortKey(expr, name, descending))
            if not self.accept_op(","):
                return SortCmd("sort", start, tuple(keys))

    def parse_limit(self, start: int) -> LimitCmd:
        token = self.tok
        if token.kind is not Tok.NUMBER or "." in token.text:
            raise self.unexpected("a whole number of rows after limit")
        self.advance()
        count = int(token.text)
        if count < 1:
            raise self.error(token, "limit must be at least 1")
        return LimitCmd("limit", start, count)

    def parse_parse(self, start: int) -> ParseCmd:
        source = Field(start, start, "@message")  # CWL_QuerySyntax-Parse: the field defaults to @message
        if self.tok.kind in (Tok.IDENT, Tok.QIDENT):
            source = self.parse_field("a field to parse")
        token = self.tok
        if token.kind is Tok.REGEX:
            self.advance()
            return ParseCmd("parse", start, source, token.text, True, (), token.start)
        if token.kind is not Tok.STRING:
            raise self.unexpected('a glob pattern in quotes ("* * *") or a /regular expression/')
        self.advance()
        if self.tok.is_word("multi", "logfmt", "csv"):
            raise UnsupportedQueryError(f"parse in {self.tok.text.lower()} mode")
        if not self.accept_word("as"):
            raise self.unexpected("'as' and the names of the extracted fields")
        names = tuple(f.name for f in self.parse_field_list("a name for an extracted field"))
        wildcards = token.text.count("*")
        if wildcards != len(names):
            raise self.error(
                token, f"the pattern has {wildcards} wildcard(s) (*) but {len(names)} name(s) follow 'as'"
            )
        return ParseCmd("parse", start, source, token.text, False, names, token.start)

    # -- expressions, lowest precedence first

    def parse_expr(self) -> Expr:
        return self.parse_or()

    def parse_or(self) -> Expr:
        left = self.parse_and()
        while self.tok.is_word("or"):
            self.advance()
            right = self.parse_and()
            left = Binary(left.start, right.end, "or", left, right)
        return left

    def parse_and(self) -> Expr:
        left = self.parse_not()
        while self.tok.is_word("and"):
            self.advance()
            right = self.parse_not()
            left = Binary(left.start, right.end, "and", left, right)
        return left

    def parse_not(self) -> Expr:
        token = self.tok
        if token.is_word("not"):
            self.advance()
            operand = self.parse_not()
            return Unary(token.start, operand.end, "not", operand)
        return self.parse_comparison()

    def parse_comparison(self) -> Expr:
        left = self.parse_additive()
        token = self.tok
        if token.kind is Tok.OP and token.text in ("=", "!=", "<", "<=", ">", ">="):
            self.advance()
            if token.text == "=" and self.tok.kind is Tok.REGEX:  # `f = /re/` reads as a regex match
                pattern = self.parse_pattern()
                return Like(left.start, pattern.end, left, pattern, False)
            right = self.parse_additive()
            return Binary(left.start, right.end, token.text, left, right)
        if token.kind is Tok.OP and token.text == "=~":
            self.advance()
            pattern = self.parse_pattern()
            return Like(left.start, pattern.end, left, pattern, False)
        negated = False
        if token.is_word("not") and self.tokens[self.pos + 1].is_word("like", "in"):
            self.advance()
            negated = True
        if self.tok.is_word("like"):
            self.advance()
            pattern = self.parse_pattern()
            return Like(left.start, pattern.end, left, pattern, negated)
        if self.tok.is_word("in"):
            self.advance()
            return self.parse_in_list(left, negated)
        return left

    def parse_pattern(self) -> Literal | Regex:
        token = self.tok
        if token.kind is Tok.REGEX:
            self.advance()
            return Regex(token.start, token.end, token.text)
        if token.kind is Tok.STRING:
            self.advance()
            return Literal(token.start, token.end, token.text)
        raise self.unexpected('a "string" or a /regular expression/')

    def parse_in_list(self, subject: Expr, negated: bool) -> InList:
        self.expect_op("[", "'[' to open the list after 'in'")
        items: list[Literal] = []
        if not (self.tok.kind is Tok.OP and self.tok.text == "]"):
            while True:
                value = self.parse_unary()
                if not isinstance(value, Literal):
                    raise QuerySyntaxError(
                        self.text, value.start, "the list after 'in' holds only literal values"
                    )
                items.append(value)
                if not self.accept_op(","):
                    break
        close = self.expect_op("]", "',' or ']'")
        return InList(subject.start, close.end, subject, tuple(items), negated)

    def parse_additive(self) -> Expr:
        left = self.parse_multiplicative()
        while self.tok.kind is Tok.OP and self.tok.text in ("+", "-"):
            op = self.advance().text
            right = self.parse_multiplicative()
            left = Binary(left.start, right.end, op, left, right)
        return left

    def parse_multiplicative(self) -> Expr:
        left = self.parse_power()
        while self.tok.kind is Tok.OP and self.tok.text in ("*", "/", "%"):
            op = self.advance().text
            right = self.parse_power()
            left = Binary(left.start, right.end, op, left, right)
        return left

    def parse_power(self) -> Expr:
        base = self.parse_unary()
        if self.tok.kind is Tok.OP and self.tok.text == "^":
            self.advance()
            exponent = self.parse_power()  # right-associative
            return Binary(base.start, exponent.end, "^", base, exponent)
        return base

    def parse_unary(self) -> Expr:
        token = self.tok
        if token.kind is Tok.OP and token.text == "-":
            self.advance()
            operand = self.parse_unary()
            if isinstance(operand, Literal) and isinstance(operand.value, int | float):
                return Literal(token.start, operand.end, -operand.value)
            return Unary(token.start, operand.end, "-", operand)
        if token.kind is Tok.OP and token.text == "+":
            self.advance()
            return self.parse_unary()
        return self.parse_primary()

    def parse_primary(self) -> Expr:
        token = self.tok
        if token.kind is Tok.NUMBER:
            self.advance()
            value: int | float = float(token.text) if "." in token.text else int(token.text)
            return Literal(token.start, token.end, value)
        if token.kind is Tok.STRING:
            self.advance()
            return Literal(token.start, token.end, token.text)
        if token.kind is Tok.REGEX:
            self.advance()
            return Regex(token.start, token.end, token.text)
        if token.kind is Tok.DURATION:
            raise self.error(token, f"a duration such as {token.text} is only valid inside bin()")
        if token.kind is Tok.QIDENT:
            self.advance()
            return Field(token.start, token.end, token.text)
        if token.kind is Tok.OP and token.text == "(":
            self.advance()
            inner = self.parse_expr()
            self.expect_op(")", "')' to close '('")
            return inner
        if token.kind is Tok.IDENT:
            if token.is_word("and", "or", "not", "in", "like", "as", "by", "asc", "desc"):
                raise self.unexpected("a field, a value or a function")
            self.advance()
            if self.tok.kind is Tok.OP and self.tok.text == "(":
                return self.parse_call(token)
            return Field(token.start, token.end, token.text)
        raise self.unexpected("a field, a value or a function")

    def parse_call(self, name_token: Token) -> Call:
        name = name_token.text.lower()
        if name in OTHER_FUNCTIONS:
            raise UnsupportedQueryError(f"the function {name_token.text}()")
        if name not in AGGREGATES and name not in SCALAR_FUNCTIONS:
            raise self.error(name_token, f"unknown function {name_token.text}()")
        self.expect_op("(")
        if name == "bin":
            return self.parse_bin(name_token)
        if self.tok.kind is Tok.OP and self.tok.text == "*":
            star = self.advance()
            if name != "count":
                raise self.error(star, f"only count accepts *, not {name_token.text}")
            close = self.expect_op(")", "')' after count(*")
            return Call(name_token.start, close.end, name, (), True)
        args: list[Expr] = []
        if not (self.tok.kind is Tok.OP and self.tok.text == ")"):
            args.append(self.parse_expr())
            while self.accept_op(","):
                args.append(self.parse_expr())
        close = self.expect_op(")", "',' or ')' in the argument list")
        call = Call(name_token.start, close.end, name, tuple(args))
        self.check_arity(call, name_token)
        return call

    def parse_bin(self, name_token: Token) -> Call:
        token = self.tok
        if token.kind is not Tok.DURATION:
            raise self.unexpected("a period such as 5m or 1h in bin()")
        self.advance()
        digits = "".join(ch for ch in token.text if ch.isdigit() or ch == ".")
        unit = token.text[len(digits) :].lower()
        if "." in digits or int(digits) < 1:
            raise self.error(token, "the period of bin() must be a whole number of units, at least 1")
        duration = Duration(token.start, token.end, int(digits), DURATION_UNITS[unit])
        if self.accept_op(","):
            raise UnsupportedQueryError("bin() of a field other than @timestamp")
        close = self.expect_op(")", "')' after the period")
        return Call(name_token.start, close.end, "bin", (duration,))

    def check_arity(self, call: Call, name_token: Token) -> None:
        fixed = {
            "isipv4insubnet": 2,
            "isipv6insubnet": 2,
            "isipinsubnet": 2,
            "floor": 1,
            "ceil": 1,
            "abs": 1,
            "ispresent": 1,
            "count_distinct": 1,
            "sum": 1,
            "min": 1,
            "max": 1,
            "avg": 1,
            "earliest": 1,
            "latest": 1,
        }
        want = fixed.get(call.name)
        got = len(call.args)
        if want is not None and got != want:
            raise self.error(name_token, f"{name_token.text}() takes {want} argument(s), not {got}")
        if call.name == "count" and got > 1:
            raise self.error(name_token, f"count() takes one field or *, not {got} arguments")
        if call.name in ("greatest", "least", "coalesce") and got < 1:
            raise self.error(name_token, f"{name_token.text}() needs at least one argument")
