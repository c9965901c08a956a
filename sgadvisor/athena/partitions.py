"""Which partitions of a flow-log table hold the window's records, as SQL predicates and as values.

Flow logs delivered to S3 are foldered by time, and both AWS-documented table layouts partition on it:

* a single key holding the delivery date (or hour) — projected as ``projection.<key>.type = date`` with
  a ``projection.<key>.format`` (``yyyy/MM/dd`` for the delivery's folders), or a ``date``-typed key;
* the Hive-compatible S3 prefixes: keys ``year``, ``month``, ``day`` (and ``hour`` with hourly
  partitions), strings (``month=01``) or integers.

The scheme is read from the table's own definition (:mod:`sgadvisor.athena.ddl`); other keys (account,
region, service) are left unconstrained. A record is in a file foldered at (about) its delivery time, a
little after its start: the window is widened by :data:`SLACK_BEFORE` and :data:`SLACK_AFTER` before it
is turned into partitions, so a record delivered late is still read; the query itself keeps only records
whose ``start`` lies in the window, so the widening costs bytes, never correctness.

Predicates keep to per-column comparisons with literals, which partition projection and the Glue
metastore both prune on, plus (Hive layout) one exact comparison of the combined time that removes the
combinations the per-column lists still allow.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sgadvisor.athena.ddl import ColumnDef, TableScheme, quote_identifier
from sgadvisor.errors import InputError
from sgadvisor.flowlogs.edges import Window

# A record starts at most one aggregation interval plus skew before its file's time (MAX_RECORD_SECONDS),
# and a file is foldered by the time of its delivery, which can come well after the record started.
SLACK_BEFORE = 300
SLACK_AFTER = 3600

Granularity = Literal["year", "month", "day", "hour"]
_UNITS: tuple[Granularity, ...] = ("year", "month", "day", "hour")
_WIDTH = {"year": 4, "month": 2, "day": 2, "hour": 2}
_SCALE = {"year": 1_000_000, "month": 10_000, "day": 100, "hour": 1}
# Java DateTimeFormatter letters → strftime, for the fixed-width numeric fields only.
_JAVA = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}
_JAVA_UNIT: dict[str, Granularity] = {"yyyy": "year", "MM": "month", "dd": "day", "HH": "hour"}


@dataclass(frozen=True)
class TimeKeys:
    """How a table's partitions say when their records were delivered."""

    kind: Literal["single", "components", "none"]
    granularity: Granularity = "day"
    key: ColumnDef | None = None  # single: the key
    pattern: str | None = None  # single string key: its strftime pattern (None: a date-typed key)
    sortable: bool = False  # single string key: its values sort like their times
    components: tuple[tuple[Granularity, ColumnDef], ...] = ()
    digits: Mapping[str, int] = field(default_factory=dict)  # projected integer keys' zero padding
    note: str | None = None  # what was assumed, or why nothing is pruned

    @property
    def names(self) -> tuple[str, ...]:
        if self.kind == "single" and self.key is not None:
            return (self.key.name,)
        return tuple(c.name for _, c in self.components)


def time_keys(scheme: TableScheme) -> TimeKeys:
    """The table's time partitioning (``kind`` none when its keys say nothing about time)."""
    keys = scheme.partition_keys
    for key in keys:
        projection = scheme.projection(key.name)
        if projection is not None and projection.type == "date":
            return _single_key(key, projection.format)
    for key in keys:
        if key.type == "date":
            return TimeKeys("single", "day", key)
    by_name = {k.name.lower(): k for k in keys}
    components: list[tuple[Granularity, ColumnDef]] = []
    for unit in _UNITS:
        if unit not in by_name:
            break
        components.append((unit, by_name[unit]))
    if components:
        digits = {}
        for _, column in components:
            projection = scheme.projection(column.name)
            if projection is not None and projection.digits:
                digits[column.name] = projection.digits
        return TimeKeys("components", components[-1][0], components=tuple(components), digits=digits)
    for name in ("dt", "date", "day"):
        named = by_name.get(name)
        if named is not None and named.is_string:
            key = named
            found = _single_key(key, "yyyy-MM-dd")
            note = (
                f"partition key {key.name} has no projection format: its values are taken to be yyyy-MM-dd "
                "(as in ALTER TABLE … ADD PARTITION (dt='YYYY-MM-dd')); declare projection.*.format otherwise"
            )
            return TimeKeys(found.kind, found.granularity, key, found.pattern, found.sortable, note=note)
    if not keys:
        return TimeKeys("none", note="the table has no partitions: every query reads all of it")
    return TimeKeys(
        "none",
        note=f"no partition key says when records were delivered ({', '.join(k.name for k in keys)}): "
        "every query reads the whole table",
    )


def _single_key(key: ColumnDef, java: str | None) -> TimeKeys:
    converted = java_to_strftime(java or "yyyy/MM/dd")
    if converted is None:
        return TimeKeys(
            "none",
            note=f"projection.{key.name}.format {java!r} is not a fixed-width numeric date format: "
            "every query reads the whole table",
        )
    pattern, units = converted
    # Fields in the order year, month, day, hour and fixed width: values sort like their times.
    sortable = list(units) == list(_UNITS[: len(units)])
    finest = max(units, key=_UNITS.index)
    return TimeKeys("single", finest, key, pattern, sortable)


def java_to_strftime(java: str) -> tuple[str, tuple[Granularity, ...]] | None:
    """A Java DateTimeFormatter pattern of fixed-width numeric fields (``yyyy/MM/dd``, ``yyyyMMddHH``,
    ``'dt='yyyy-MM-dd``) as a strftime pattern and its units in order; None for anything else."""
    out: list[str] = []
    units: list[Granularity] = []
    index = 0
    while index < len(java):
        char = java[index]
        if char == "'":
            end = java.find("'", index + 1)
            if end < 0:
                return None
            out.append(java[index + 1 : end].replace("%", "%%") or "'")
            index = end + 1
            continue
        if char.isalpha():
            run = re.match(rf"{re.escape(char)}+", java[index:])
            assert run is not None
            letters = run.group(0)
            if letters not in _JAVA:
                return None
            out.append(_JAVA[letters])
            units.append(_JAVA_UNIT[letters])
            index += len(letters)
            continue
        out.append("%%" if char == "%" else char)
        index += 1
    if not units or len(set(units)) != len(units):
        return None
    return "".join(out), tuple(units)


# ------------------------------------------------------------------------------------------- buckets


def _floor(moment: datetime, unit: Granularity) -> datetime:
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "month":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def _step(moment: datetime, unit: Granularity) -> datetime:
    if unit == "hour":
        return moment + timedelta(hours=1)
    if unit == "day":
        return moment + timedelta(days=1)
    if unit == "month":
        return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
    return moment.replace(year=moment.year + 1)


@dataclass(frozen=True, slots=True)
class Slack:
    """How far beyond the window partitions are read (seconds)."""

    before: int = SLACK_BEFORE
    after: int = SLACK_AFTER


DEFAULT_SLACK = Slack()


def buckets(window: Window, unit: Granularity, slack: Slack = DEFAULT_SLACK) -> list[datetime]:
    """The partition times (floored to ``unit``) that the widened window touches, in order."""
    if window.end <= window.start:
        raise InputError(f"the window is empty ({window.start} to {window.end})")
    low = datetime.fromtimestamp(max(window.start - slack.before, 0), tz=UTC)
    high = datetime.fromtimestamp(max(window.end - 1 + slack.after, 0), tz=UTC)
    moment, last = _floor(low, unit), _floor(high, unit)
    out: list[datetime] = []
    while moment <= last:
        out.append(moment)
        moment = _step(moment, unit)
    return out


def _code(moment: datetime, units: Sequence[Granularity]) -> int:
    parts = {"year": moment.year, "month": moment.month, "day": moment.day, "hour": moment.hour}
    return sum(parts[u] * _SCALE[u] for u in units)


# ------------------------------------------------------------------------------------------- SQL


def prune_predicates(scheme: TableScheme, window: Window, slack: Slack = DEFAULT_SLACK) -> list[str]:
    """The conjuncts (Trino SQL) that keep the partitions the window's records can be in; empty when the
    table's keys say nothing about time (then the whole table is read)."""
    keys = time_keys(scheme)
    if keys.kind == "single" and keys.key is not None:
        return [_single_predicate(keys, buckets(window, keys.granularity, slack))]
    if keys.kind == "components":
        return _component_predicates(keys, buckets(window, keys.granularity, slack))
    return []


def _single_predicate(keys: TimeKeys, times: Sequence[datetime]) -> str:
    assert keys.key is not None
    name = quote_identifier(keys.key.name)
    if keys.pattern is None:  # a date-typed key
        days = sorted({t.strftime("%Y-%m-%d") for t in times})
        return f"{name} BETWEEN DATE '{days[0]}' AND DATE '{days[-1]}'"
    values = [t.strftime(keys.pattern) for t in times]
    if keys.sortable:
        return f"{name} BETWEEN {_string(values[0])} AND {_string(values[-1])}"
    return f"{name} IN ({', '.join(_string(v) for v in sorted(set(values)))})"


def _component_predicates(keys: TimeKeys, times: Sequence[datetime]) -> list[str]:
    units = [u for u, _ in keys.components]
    predicates = []
    for unit, column in keys.components:
        values = sorted({getattr(t, unit) for t in times})
        literals = ", ".join(_component_literal(column, unit, v, keys.digits) for v in values)
        predicates.append(f"{quote_identifier(column.name)} IN ({literals})")
    if len(keys.components) > 1:
        combined = " + ".join(
            f"CAST({quote_identifier(c.name)} AS bigint) * {_SCALE[u]}"
            if _SCALE[u] != 1
            else f"CAST({quote_identifier(c.name)} AS bigint)"
            for u, c in keys.components
        )
        low, high = _code(times[0], units), _code(times[-1], units)
        predicates.append(f"{combined} BETWEEN {low} AND {high}")
    return predicates


def _component_literal(column: ColumnDef, unit: Granularity, value: int, digits: Mapping[str, int]) -> str:
    if not column.is_string:
        return str(value)
    width = digits.get(column.name, _WIDTH[unit])
    return _string(f"{value:0{width}d}")


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ------------------------------------------------------------------------------------------- values


def partition_in_window(
    scheme: TableScheme, values: Mapping[str, str], window: Window, slack: Slack = DEFAULT_SLACK
) -> bool:
    """Whether a partition (its key values, as Glue lists them) is among those the predicates keep."""
    keys = time_keys(scheme)
    if keys.kind == "none":
        return True
    times = buckets(window, keys.granularity, slack)
    if keys.kind == "single" and keys.key is not None:
        value = values.get(keys.key.name)
        if value is None:
            return True
        if keys.pattern is None:
            days = {t.strftime("%Y-%m-%d") for t in times}
            return value[:10] in days
        return value in {t.strftime(keys.pattern) for t in times}
    units = [u for u, _ in keys.components]
    try:
        parts = [int(values[c.name]) for _, c in keys.components]
    except (KeyError, ValueError):
        return True  # not a time value: the predicate cannot exclude it either (a query would fail first)
    code = sum(p * _SCALE[u] for p, u in zip(parts, units, strict=True))
    return _code(times[0], units) <= code <= _code(times[-1], units)


def projected_partitions(
    scheme: TableScheme, window: Window, slack: Slack = DEFAULT_SLACK
) -> Iterator[dict[str, str]]:
    """Every partition (key → value) partition projection yields for the window's predicates, for the
    scan estimate. InputError for a key whose values only a query can give (``injected``)."""
    keys = time_keys(scheme)
    time_names = set(keys.names)
    choices: list[list[str]] = []
    names: list[str] = []
    times = buckets(window, keys.granularity, slack) if keys.kind != "none" else []
    for key in scheme.partition_keys:
        names.append(key.name)
        if key.name in time_names:
            choices.append(_time_values(keys, key, times))
            continue
        projection = scheme.projection(key.name)
        if projection is None:
            raise InputError(f"partition key {key.name} has no projection type: its values are unknown")
        if projection.type == "enum":
            choices.append(list(projection.values))
        elif projection.type == "integer" and projection.range:
            low, _, high = projection.range.partition(",")
            width = projection.digits or 0
            choices.append([f"{v:0{width}d}" for v in range(int(low), int(high) + 1)])
        else:
            raise InputError(
                f"partition key {key.name} is projected as {projection.type}: the query would have to name "
                "its values",
                hint="use a table whose non-time keys are enum projections (sgadvisor athena-ddl)",
            )
    for combination in itertools.product(*choices):
        yield dict(zip(names, combination, strict=True))


def _time_values(keys: TimeKeys, key: ColumnDef, times: Sequence[datetime]) -> list[str]:
    if keys.kind == "single":
        pattern = keys.pattern or "%Y-%m-%d"
        return sorted({t.strftime(pattern) for t in times})
    unit = next(u for u, c in keys.components if c.name == key.name)
    width = keys.digits.get(key.name, _WIDTH[unit] if key.is_string else 0)
    return sorted({f"{getattr(t, unit):0{width}d}" for t in times})


def partition_location(scheme: TableScheme, values: Mapping[str, str]) -> str:
    """Where a projected partition's files are: ``storage.location.template`` filled in, else the Hive
    layout under the table's location (``key=value/…``)."""
    template = scheme.location_template
    if template:
        return re.sub(r"\$\{([^}]*)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    base = (scheme.location or "").rstrip("/")
    return "/".join([base, *(f"{k.name}={values[k.name]}" for k in scheme.partition_keys)])
