"""Insights queries of the local CloudWatch Logs endpoint: switches, lifecycle and the @logStream index.

A query changes state only when ``GetQueryResults`` looks at it (wall-clock latency is checked then too),
and it executes on the poll that ends it. Runs are therefore reproducible: the same calls see the same
statuses, whatever the machine's speed, and a query counts towards the concurrency limit from
``StartQuery`` until a poll reports it ended or ``StopQuery`` cancels it.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import polars as pl

QUERY_STATUSES = ("Scheduled", "Running", "Complete", "Failed", "Cancelled", "Timeout", "Unknown")
ACTIVE_STATUSES = frozenset({"Scheduled", "Running"})
FORCEABLE_OUTCOMES = frozenset({"Failed", "Cancelled", "Timeout", "Unknown"})
SERVICE_PAGE_ROWS = 10_000  # GetQueryResults: "each page returning up to 10,000 log events"
SERVICE_MAX_LIMIT = 100_000  # StartQuery limit: "The maximum limit is 100,000"
SERVICE_DEFAULT_LIMIT = 10_000  # rows a query returns when neither `limit` nor StartQuery's limit says
SERVICE_CONCURRENCY = 100  # StartQuery: "You can have up to 100 concurrent CloudWatch Logs insights queries"


@dataclass
class Behaviour:
    """Switches of the endpoint; tests set them before or between calls (``server.behaviour``).

    Latency: a query answers ``Scheduled`` to its first ``scheduled_polls`` GetQueryResults calls and
    while less than ``scheduled_seconds`` have passed since StartQuery, then ``Running`` for
    ``running_polls`` more calls / until ``running_seconds`` more have passed, then its final status.
    Each query keeps the latency that was set when it started.

    Rows: GetQueryResults returns at most ``page_size`` rows per call; StartQuery accepts ``limit`` up to
    ``max_limit`` (InvalidParameterException above it); ``default_limit`` applies when neither StartQuery
    nor the query's ``limit`` command says. With ``paginate`` False the endpoint behaves like the older
    API: one page, no ``nextToken``, so a query returns at most ``page_size`` rows. ``row_cap(n)`` sets
    all three numbers at once, to force "full page" situations with a handful of rows.

    Concurrency: StartQuery raises LimitExceededException while ``max_concurrent`` queries are
    Scheduled or Running (None: no limit).

    Throttling: the next ``throttle_next`` calls (of ``throttle_operations``, None meaning every
    operation) raise ThrottlingException; beyond those, each call is throttled with probability
    ``throttle_probability``, drawn from a generator seeded with ``seed``. :meth:`throttle_forever`
    throttles every call of the operations from now on (probability 1).

    Stuck queries: :meth:`stay_running` makes the queries started from now on answer ``Running`` to every
    poll (``running_seconds`` infinite) until StopQuery cancels them, as a query the service never
    finishes would (real ones end ``Timeout`` after 60 minutes).

    Outcomes: each StartQuery takes the next entry of ``outcomes`` (Failed, Cancelled, Timeout or
    Unknown) as the status it ends with after its latency; when the list is empty it ends Complete.
    """

    scheduled_polls: int = 0
    running_polls: int = 0
    scheduled_seconds: float = 0.0
    running_seconds: float = 0.0
    page_size: int = SERVICE_PAGE_ROWS
    max_limit: int = SERVICE_MAX_LIMIT
    default_limit: int = SERVICE_DEFAULT_LIMIT
    paginate: bool = True
    max_concurrent: int | None = SERVICE_CONCURRENCY
    throttle_next: int = 0
    throttle_probability: float = 0.0
    throttle_operations: frozenset[str] | None = None
    seed: int = 0
    outcomes: list[str] = field(default_factory=list)
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        for outcome in self.outcomes:
            _check_outcome(outcome)

    @classmethod
    def row_cap(cls, rows: int, **switches: Any) -> Behaviour:
        """A behaviour whose pages, StartQuery limit and default limit are all ``rows``."""
        return cls(page_size=rows, max_limit=rows, default_limit=rows, **switches)

    def force(self, status: str, times: int = 1) -> None:
        """The next ``times`` queries end with ``status`` (Failed, Cancelled, Timeout or Unknown)."""
        self.outcomes.extend([_check_outcome(status)] * times)

    def throttle(self, times: int, operations: Iterable[str] | None = None) -> None:
        """Throttle the next ``times`` calls of ``operations`` (every operation when None)."""
        self.throttle_next = times
        self.throttle_operations = None if operations is None else frozenset(operations)

    def throttle_forever(self, operations: Iterable[str] | None = None) -> None:
        """Every call of ``operations`` (every operation when None) raises ThrottlingException."""
        self.throttle_probability = 1.0
        self.throttle_operations = None if operations is None else frozenset(operations)

    def stay_running(self) -> None:
        """Queries started from now on stay ``Running`` until stopped."""
        self.running_seconds = math.inf

    def should_throttle(self, operation: str) -> bool:
        if self.throttle_operations is not None and operation not in self.throttle_operations:
            return False
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return True
        return self.throttle_probability > 0 and self._rng.random() < self.throttle_probability

    def next_outcome(self) -> str:
        return self.outcomes.pop(0) if self.outcomes else "Complete"

    def query_row_limit(self) -> int:
        """The most rows one query can return: the older API has a single page."""
        return self.max_limit if self.paginate else min(self.max_limit, self.page_size)

    def latency(self) -> Latency:
        return Latency(self.scheduled_polls, self.running_polls, self.scheduled_seconds, self.running_seconds)


def _check_outcome(status: str) -> str:
    if status not in FORCEABLE_OUTCOMES:
        raise ValueError(f"a forced outcome is one of {sorted(FORCEABLE_OUTCOMES)}, not {status!r}")
    return status


@dataclass(frozen=True)
class Latency:
    scheduled_polls: int = 0
    running_polls: int = 0
    scheduled_seconds: float = 0.0
    running_seconds: float = 0.0

    def status_at(self, polls: int, elapsed: float) -> str | None:
        """Scheduled or Running at the ``polls``-th poll, ``elapsed`` seconds in; None once past both."""
        if polls <= self.scheduled_polls or elapsed < self.scheduled_seconds:
            return "Scheduled"
        if (
            polls <= self.scheduled_polls + self.running_polls
            or elapsed < self.scheduled_seconds + self.running_seconds
        ):
            return "Running"
        return None


@dataclass(frozen=True)
class QueryOutput:
    """A finished query as GetQueryResults serves it: wire-shaped rows and statistics."""

    rows: list[list[dict[str, str]]]
    statistics: dict[str, float]


@dataclass
class Query:
    query_id: str
    query_string: str
    groups: tuple[str, ...]
    start_s: int
    end_s: int
    limit: int
    create_ms: int
    started_at: float
    latency: Latency
    outcome: str
    status: str = "Scheduled"
    polls: int = 0
    output: QueryOutput | None = None
    error: BaseException | None = None
    bytes_scanned: float = 0.0
    run_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def poll(self, now: float) -> bool:
        """Count one GetQueryResults call; True when this call ends the query (it must run now)."""
        if not self.active:
            return False
        self.polls += 1
        waiting = self.latency.status_at(self.polls, now - self.started_at)
        if waiting is not None:
            self.status = waiting
            return False
        self.status = "Running"  # until the execution that this poll triggers has finished
        return True


# ------------------------------------------------------------------------------------ @logStream index

# Tokens of the query language, enough to find top-level filters (CWL_QuerySyntax: strings in ' or " with
# backslash escapes, field names in backticks, `#` comments, `|` between commands, /regex/ literals).
_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>\#[^\n]*)|(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<tick>`[^`]*`)
    |(?P<name>@?[A-Za-z_][A-Za-z0-9_.@]*)|(?P<num>\d+(?:\.\d+)?[A-Za-z]*)|(?P<op>==|!=|<=|>=|=~|[=<>+\-*%^])
    |(?P<slash>/)|(?P<pipe>\|)|(?P<punct>[()\[\],])|(?P<other>.)""",
    re.X | re.S,
)
_REGEX = re.compile(r"/(?:[^/\\\n]|\\.)*/")
_COMMANDS = frozenset(
    {
        *("fields", "filter", "stats", "sort", "limit", "display", "dedup", "parse", "unnest", "lookup"),
        *(
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
        ),
    }
)
_VALUE_BEFORE = frozenset({"like", "and", "or", "not", "in", "filter", "parse"})
# Commands that keep every event's @logStream: a filter after them still selects whole streams.
_STREAM_PRESERVING = frozenset({"filter", "fields", "display", "parse", "sort"})


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "name" else ""

    @property
    def field(self) -> str | None:
        if self.kind == "name":
            return self.text
        return self.text[1:-1] if self.kind == "tick" else None


def indexed_streams(query: str) -> frozenset[str] | None:
    """The log streams a query's top-level ``@logStream = '…'`` / ``@logStream in [...]`` filters allow.

    This is what the default field index can serve (CloudWatch Logs "Create field indexes": @logStream is
    indexed by default; ``=`` and ``IN`` filters use an index). Only unambiguous cases count: filters
    before the first command that could rewrite @logStream, conjuncts of ``and`` (a top-level ``or``
    disqualifies that filter); several such filters intersect. None means "no index use".
    """
    found: frozenset[str] | None = None
    for command in _commands(query):
        keyword = command[0].word if command else ""
        if keyword == "filter":
            streams = _filter_streams(command[1:])
            if streams is not None:
                found = streams if found is None else found & streams
        elif keyword not in _STREAM_PRESERVING:
            break
    return found


def has_stats(query: str) -> bool:
    """Whether the query aggregates (its rows then carry no ``@ptr``)."""
    return any(command[0].word == "stats" for command in _commands(query))


def _commands(query: str) -> list[list[_Tok]]:
    """Tokens of each command: split at ``|`` and at a command keyword that starts a line."""
    commands: list[list[_Tok]] = [[]]
    position, newline = 0, True
    while position < len(query):
        match = _TOKEN.match(query, position)
        assert match is not None and match.lastgroup is not None  # `other` matches any character
        kind, text = match.lastgroup, match.group()
        if kind == "slash" and _expects_value(commands[-1]):
            regex = _REGEX.match(query, position)
            if regex is not None:
                kind, text = "regex", regex.group()
        position += len(text)
        if kind in ("ws", "comment"):
            newline = newline or "\n" in text
            continue
        if kind == "pipe" or (newline and kind == "name" and text.lower() in _COMMANDS and commands[-1]):
            commands.append([])
        if kind != "pipe":
            commands[-1].append(_Tok(kind, text))
        newline = False
    return [c for c in commands if c]


def _expects_value(command: list[_Tok]) -> bool:
    """Whether a ``/`` here opens a regular expression rather than dividing."""
    if not command:
        return True
    last = command[-1]
    if command[0].word == "parse" and len(command) <= 2:
        return True
    return (last.kind in ("op", "punct") and last.text not in (")", "]")) or last.word in _VALUE_BEFORE


def _filter_streams(tokens: list[_Tok]) -> frozenset[str] | None:
    tokens = _unwrap(tokens)
    conjuncts: list[list[_Tok]] = [[]]
    depth = 0
    for token in tokens:
        depth += token.text in ("(", "[") and token.kind == "punct"
        depth -= token.text in (")", "]") and token.kind == "punct"
        if depth == 0 and token.word == "or":
            return None
        if depth == 0 and token.word == "and":
            conjuncts.append([])
        else:
            conjuncts[-1].append(token)
    found: frozenset[str] | None = None
    for conjunct in conjuncts:
        streams = _stream_condition(conjunct)
        if streams is not None:
            found = streams if found is None else found & streams
    return found


def _unwrap(tokens: list[_Tok]) -> list[_Tok]:
    """Drop parentheses around the whole expression: ``(a and b)`` is ``a and b``."""
    while len(tokens) >= 2 and tokens[0].text == "(" and tokens[-1].text == ")":
        depth = 0
        for index, token in enumerate(tokens):
            depth += token.text == "("
            depth -= token.text == ")"
            if depth == 0 and index < len(tokens) - 1:
                return tokens
        tokens = tokens[1:-1]
    return tokens


def _stream_condition(tokens: list[_Tok]) -> frozenset[str] | None:
    tokens = _unwrap(tokens)
    if tokens and tokens[0].text == "(":
        return _filter_streams(tokens)
    if len(tokens) == 3 and tokens[1].text in ("=", "=="):
        left, right = tokens[0], tokens[2]
        if left.field == "@logStream" and right.kind == "str":
            return frozenset({_unquote(right.text)})
        if right.field == "@logStream" and left.kind == "str":
            return frozenset({_unquote(left.text)})
        return None
    if len(tokens) >= 4 and tokens[0].field == "@logStream" and tokens[1].word == "in":
        inside = tokens[2:]
        if inside[0].text != "[" or inside[-1].text != "]":
            return None
        values, commas = inside[1:-1:2], inside[2:-1:2]
        if values and all(v.kind == "str" for v in values) and all(c.text == "," for c in commas):
            return frozenset(_unquote(v.text) for v in values)
    return None


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


# ------------------------------------------------------------------------------------ JSON fields

# "CloudWatch Logs Insights can extract a maximum of 200 log event fields from a JSON log" (the parse
# command's page: "You can only parse JSON log events that include no more than 200 log event fields";
# older versions of the discovered-fields page said 100).
MAX_JSON_FIELDS = 200


def json_fields(message: str) -> dict[str, Any] | None:
    """The fields Insights discovers in one JSON log event (CWL_AnalyzeLogData-discoverable-fields,
    "Fields in JSON logs"): nested objects in dot notation (``srcids.instance``), arrays flattened by
    index (``answers.0.Rdata``), the first ``MAX_JSON_FIELDS`` in document order, a name starting with
    ``@`` shown with another ``@`` in front. None for an event that is not a JSON object."""
    if not message.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(message)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    flat: dict[str, Any] = {}
    _flatten(value, "", flat)
    return {
        (f"@{name}" if name.startswith("@") else name): v for name, v in islice(flat.items(), MAX_JSON_FIELDS)
    }


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}.{index}" if prefix else str(index), out)
    elif value is not None:
        out[prefix] = value


def with_json_fields(events: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """``events`` with a column per field discovered in its JSON events (:func:`json_fields`); events that
    are not JSON objects read null there. A column is typed from its values: booleans, integers, numbers,
    else text (numbers and booleans then written as JSON writes them). A name the frame already has (a
    discovered flow-log field, e.g. ``version``) keeps its column and type, filled from the JSON events
    where it is null (a value that is not of its type reads as null)."""
    lazy = events.lazy()
    if "@message" not in lazy.collect_schema().names():
        return lazy
    is_json = pl.col("@message").str.strip_chars_start().str.starts_with("{").fill_null(False)
    # Flow-log lines are never JSON: only @message is read to find out (the rest of the plan stays lazy).
    if not lazy.select(is_json.any()).collect().item():
        return lazy
    frame = lazy.collect()
    candidates = frame.select(is_json).to_series()
    found = [
        json_fields(message) if candidate and message is not None else None
        for message, candidate in zip(frame.get_column("@message"), candidates, strict=True)
    ]
    names = list(dict.fromkeys(name for fields in found if fields for name in fields))
    columns = []
    for name in names:
        values = [fields.get(name) if fields else None for fields in found]
        series = _typed(name, values)
        if name in frame.columns:
            series = frame.get_column(name).fill_null(series.cast(frame.schema[name], strict=False))
        columns.append(series)
    return frame.with_columns(columns).lazy()


def _typed(name: str, values: list[Any]) -> pl.Series:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pl.Series(name, values, dtype=pl.Boolean)
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pl.Series(name, values, dtype=pl.Int64)
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64)
    return pl.Series(
        name, [v if v is None or isinstance(v, str) else json.dumps(v) for v in values], dtype=pl.String
    )
