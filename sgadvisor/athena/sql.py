"""The one Athena query (engine v3, Trino SQL) that computes a window's flow edges, coverage and spans.

It computes in the engine what the file path computes in polars (flowlogs/edges.py, flowlogs/fastpath.py,
flowlogs/spans.py), so result rows scale with edges, not records. Four kinds of rows, told apart by the
``kind`` column (:data:`RESULT_COLUMNS` lists every column, in order):

``edge``
    one per partial edge: the records with the same interface, flow-direction, action, protocol, source
    and destination addresses, pkt-addresses where they differ, and ports after the §4.2 bucketing
    (a port in the bucketing range becomes 0 only when the other is not in it). Aggregates: records,
    packets, bytes, first start, last end, each port's min and max and its centred sum and sum of
    squares (the moments the distinct-port count is judged from), the tcp-flags counts and the AWS
    services. This is exactly the grouped frame ``EdgeAggregator.add_grouped`` folds for a file.
``coverage``
    one per interface: its covered records (any status), NODATA and SKIPDATA counts and seconds, first
    start and last end, smallest subnet, and the flow logs that delivered them (``"$path"``: the S3 file
    name carries the flow-log id).
``filtered``
    one per reason a record in the window was not used (a transit-gateway record, no interface id,
    lacking address, protocol or action).
``span``
    the delivery spans (flowlogs/spans.py): per interface, the stretches its records cover, joined where
    the gap is at most ``SPAN_RESOLUTION``, each record counting from its start to at most
    ``MAX_RECORD_SECONDS`` later. Merged in the engine (a running maximum over the interface's 10-minute
    slots), so there is one row per stretch, not per slot.

Direction, orientation to the interface and the final merge are left to the same Python code the other
sources use (``EdgeAggregator.finish``): inference across an interface's records is what SQL does badly.

Every value in the window filter and the partition predicates is a literal computed here, and the text is
deterministic: same scheme, window and options → the same query, character for character
(``--print-sql`` prints it; ``--athena-result`` reads what Athena wrote for it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sgadvisor.athena.ddl import TableScheme
from sgadvisor.athena.partitions import DEFAULT_SLACK, Slack, prune_predicates
from sgadvisor.errors import InputError
from sgadvisor.flowlogs.edges import DEFAULT_BUCKET, PortRange, Window
from sgadvisor.flowlogs.parse import MILLIS_MAX, MILLIS_MIN
from sgadvisor.flowlogs.spans import MAX_RECORD_SECONDS, SPAN_RESOLUTION

# The result's columns, in order, with their type: bigint or varchar.
RESULT_COLUMNS: dict[str, str] = {
    "kind": "varchar",
    "interface_id": "varchar",
    "flow_direction": "varchar",
    "action": "varchar",
    "protocol": "bigint",
    "srcaddr": "varchar",
    "dstaddr": "varchar",
    "pkt_srcaddr": "varchar",
    "pkt_dstaddr": "varchar",
    "srcport": "bigint",
    "dstport": "bigint",
    "records": "bigint",
    "packets": "bigint",
    "bytes": "bigint",
    "first_start": "bigint",
    "last_end": "bigint",
    "srcport_min": "bigint",
    "srcport_max": "bigint",
    "dstport_min": "bigint",
    "dstport_max": "bigint",
    "srcport_sum": "bigint",
    "srcport_squares": "bigint",
    "dstport_sum": "bigint",
    "dstport_squares": "bigint",
    "flags_known": "bigint",
    "syn": "bigint",
    "synack": "bigint",
    "fin": "bigint",
    "zero_flags": "bigint",
    "src_service": "varchar",
    "dst_service": "varchar",
    "nodata": "bigint",
    "skipdata": "bigint",
    "skipdata_seconds": "bigint",
    "subnet_id": "varchar",
    "flow_logs": "varchar",
    "reason": "varchar",
}

# Categories as the query names them (short codes; results.py maps them to the accounting's reasons).
USED, NODATA, SKIPDATA = "used", "nodata", "skipdata"
TRANSIT, NO_IFACE, INCOMPLETE = "transit", "no-interface", "incomplete"
COVERED = (USED, NODATA, SKIPDATA)

# The distinct-port moments are centred like the file path's (flowlogs/edges.py, _CENTRE).
CENTRE = 32768
# An S3 delivery file's name carries its flow log's id between underscores (flowlogs/files.py reads the
# same from a local file's name): the last path segment, "fl-" and 8 or 17 hex digits, an underscore after.
FLOW_LOG_PATTERN = "(?:/|_)(fl-(?:[0-9a-f]{17}|[0-9a-f]{8}))_[^/]*$"
REQUIRED_FIELDS = ("interface-id", "srcaddr", "dstaddr", "protocol", "action", "start")


def edges_sql(
    scheme: TableScheme,
    window: Window,
    bucket: PortRange = DEFAULT_BUCKET,
    *,
    flow_logs: Sequence[str] = (),
    slack: Slack = DEFAULT_SLACK,
) -> str:
    """The query for ``window`` (records whose start lies in [start, end)) over the table ``scheme``.

    ``flow_logs``: read only the files of these flow logs (their ids in the S3 file names) — for a
    location that holds the files of flow logs of several formats, one table per format. InputError when
    the table lacks a column the edges need."""
    missing = [f for f in REQUIRED_FIELDS if scheme.column_for(f) is None]
    if missing:
        raise InputError(
            f"Athena table {scheme.qualified_name} has no column for {', '.join(missing)}",
            hint="the table's columns are the flow log's fields in its format's order (sgadvisor athena-ddl)",
        )
    for flow_log in flow_logs:
        if not _is_flow_log_id(flow_log):
            raise InputError(f"{flow_log!r} is not a flow log id (fl-…)")
    prune = prune_predicates(scheme, window, slack)
    source_filter = f"\n  WHERE {_and(prune)}" if prune else ""
    ids = ", ".join(_string(f) for f in sorted(set(flow_logs)))
    log_filter = f"\n    AND flow_log IN ({ids})" if flow_logs else ""
    records = _record_columns(scheme)
    low, high = bucket.low, bucket.high
    lines = [
        f"-- sgadvisor: flow edges, coverage and delivery spans of {scheme.qualified_name}",
        f"-- window [{_iso(window.start)}, {_iso(window.end)}), ports {bucket} bucketed",
        "WITH records AS (",
        "  SELECT",
        ",\n".join(f"    {expr} AS {name}" for name, expr in records.items()),
        f"  FROM {scheme.qualified_name}{source_filter}",
        "),",
        "windowed AS (",
        "  SELECT * FROM records",
        f"  WHERE t_start >= {window.start} AND t_start < {window.end}{log_filter}",
        "),",
        "categorised AS (",
        "  SELECT *,",
        "    CASE",
        f"      WHEN rtype = 'TransitGateway' OR (iface IS NULL AND tgw IS NOT NULL) THEN '{TRANSIT}'",
        f"      WHEN iface IS NULL THEN '{NO_IFACE}'",
        f"      WHEN status = 'NODATA' THEN '{NODATA}'",
        f"      WHEN status = 'SKIPDATA' THEN '{SKIPDATA}'",
        f"      WHEN saddr IS NULL OR daddr IS NULL OR proto IS NULL OR act IS NULL THEN '{INCOMPLETE}'",
        f"      ELSE '{USED}'",
        "    END AS cat",
        "  FROM windowed",
        "),",
        "keyed AS (",
        "  SELECT *,",
        f"    CASE WHEN sport_raw BETWEEN {low} AND {high} AND NOT (dport_raw BETWEEN {low} AND {high})"
        " THEN 0 ELSE sport_raw END AS sport,",
        f"    CASE WHEN dport_raw BETWEEN {low} AND {high} AND NOT (sport_raw BETWEEN {low} AND {high})"
        " THEN 0 ELSE dport_raw END AS dport,",
        "    CASE WHEN psrc IS DISTINCT FROM saddr THEN psrc END AS psrc_key,",
        "    CASE WHEN pdst IS DISTINCT FROM daddr THEN pdst END AS pdst_key,",
        f"    sport_raw - {CENTRE} AS sport_c,",
        f"    dport_raw - {CENTRE} AS dport_c",
        "  FROM categorised",
        f"  WHERE cat = '{USED}'",
        "),",
        "slots AS (",
        "  SELECT iface,",
        "    min(t_start) AS first_start,",
        "    max(least(greatest(t_start, coalesce(t_end, t_start)),"
        f" t_start + {MAX_RECORD_SECONDS})) AS reach",
        "  FROM categorised",
        f"  WHERE cat IN ({', '.join(_string(c) for c in COVERED)})",
        f"  GROUP BY iface, t_start - t_start % {SPAN_RESOLUTION}",
        "),",
        "opened AS (",
        "  SELECT iface, first_start, reach,",
        "    CASE WHEN first_start - max(reach) OVER (PARTITION BY iface ORDER BY first_start"
        f" ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) <= {SPAN_RESOLUTION} THEN 0 ELSE 1 END AS opens",
        "  FROM slots",
        "),",
        "stretches AS (",
        "  SELECT iface, first_start, reach,",
        "    sum(opens) OVER (PARTITION BY iface ORDER BY first_start"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS stretch",
        "  FROM opened",
        ")",
        _select("edge", _EDGE_VALUES),
        "FROM keyed",
        "GROUP BY iface, fdir, act, proto, saddr, daddr, psrc_key, pdst_key, sport, dport",
        "UNION ALL",
        _select("coverage", _COVERAGE_VALUES),
        "FROM categorised",
        f"WHERE cat IN ({', '.join(_string(c) for c in COVERED)})",
        "GROUP BY iface",
        "UNION ALL",
        _select("filtered", {"records": "count(*)", "reason": "cat"}),
        "FROM categorised",
        f"WHERE cat NOT IN ({', '.join(_string(c) for c in COVERED)})",
        "GROUP BY cat",
        "UNION ALL",
        _select(
            "span", {"interface_id": "iface", "first_start": "min(first_start)", "last_end": "max(reach)"}
        ),
        "FROM stretches",
        "GROUP BY iface, stretch",
    ]
    return "\n".join(lines) + "\n"


def _count(condition: str) -> str:
    return f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)"


_EDGE_VALUES: dict[str, str] = {
    "interface_id": "iface",
    "flow_direction": "fdir",
    "action": "act",
    "protocol": "proto",
    "srcaddr": "saddr",
    "dstaddr": "daddr",
    "pkt_srcaddr": "psrc_key",
    "pkt_dstaddr": "pdst_key",
    "srcport": "sport",
    "dstport": "dport",
    "records": "count(*)",
    "packets": "coalesce(sum(pkts), 0)",
    "bytes": "coalesce(sum(nbytes), 0)",
    "first_start": "min(t_start)",
    "last_end": "max(t_end)",
    "srcport_min": "min(sport_raw)",
    "srcport_max": "max(sport_raw)",
    "dstport_min": "min(dport_raw)",
    "dstport_max": "max(dport_raw)",
    "srcport_sum": "sum(sport_c)",
    "srcport_squares": "sum(sport_c * sport_c)",
    "dstport_sum": "sum(dport_c)",
    "dstport_squares": "sum(dport_c * dport_c)",
    # tcp-flags are OR-ed per aggregation interval: SYN without ACK, SYN-ACK, FIN, none.
    "flags_known": "count(flags)",
    "syn": _count("bitwise_and(flags, 18) = 2"),
    "synack": _count("bitwise_and(flags, 18) = 18"),
    "fin": _count("bitwise_and(flags, 1) = 1"),
    "zero_flags": _count("flags = 0"),
    "src_service": "max(src_svc)",
    "dst_service": "max(dst_svc)",
}
_COVERAGE_VALUES: dict[str, str] = {
    "interface_id": "iface",
    "records": "count(*)",
    "first_start": "min(t_start)",
    "last_end": "max(t_end)",
    "nodata": _count(f"cat = '{NODATA}'"),
    "skipdata": _count(f"cat = '{SKIPDATA}'"),
    "skipdata_seconds": f"coalesce(sum(CASE WHEN cat = '{SKIPDATA}' THEN t_end - t_start END), 0)",
    "subnet_id": "min(subnet)",
    "flow_logs": "nullif(array_join(array_sort("
    "array_agg(DISTINCT flow_log) FILTER (WHERE flow_log IS NOT NULL)), ','), '')",
}


def _select(kind: str, values: Mapping[str, str]) -> str:
    """One branch of the union: every result column, typed nulls where the kind has no value."""
    columns = []
    for name, kind_type in RESULT_COLUMNS.items():
        if name == "kind":
            expr = _string(kind)
        else:
            expr = values.get(name, f"CAST(NULL AS {kind_type})")
        columns.append(f"  {expr} AS {name}")
    return "SELECT\n" + ",\n".join(columns)


def _record_columns(scheme: TableScheme) -> dict[str, str]:
    """The record's fields under the query's own names, ``-`` and absent columns as NULL."""

    def text(field: str) -> str:
        column = scheme.column_for(field)
        if column is None:
            return "CAST(NULL AS varchar)"
        name = _quoted(column.name)
        return f"nullif({name}, '-')" if column.is_string else f"nullif(CAST({name} AS varchar), '-')"

    def number(field: str) -> str:
        column = scheme.column_for(field)
        if column is None:
            return "CAST(NULL AS bigint)"
        name = _quoted(column.name)
        return f"try_cast(nullif({name}, '-') AS bigint)" if column.is_string else f"CAST({name} AS bigint)"

    def seconds(field: str) -> str:
        # A 13-digit value is milliseconds (flowlogs/parse.py, seconds_expr): the same conversion.
        value = number(field)
        return f"CASE WHEN {value} BETWEEN {MILLIS_MIN} AND {MILLIS_MAX} THEN {value} / 1000 ELSE {value} END"

    return {
        "iface": text("interface-id"),
        "status": text("log-status"),
        "fdir": text("flow-direction"),
        "act": text("action"),
        "proto": number("protocol"),
        "saddr": text("srcaddr"),
        "daddr": text("dstaddr"),
        "psrc": text("pkt-srcaddr"),
        "pdst": text("pkt-dstaddr"),
        "sport_raw": f"coalesce({number('srcport')}, 0)",
        "dport_raw": f"coalesce({number('dstport')}, 0)",
        "pkts": number("packets"),
        "nbytes": number("bytes"),
        "t_start": seconds("start"),
        "t_end": seconds("end"),
        "flags": number("tcp-flags"),
        "src_svc": text("pkt-src-aws-service"),
        "dst_svc": text("pkt-dst-aws-service"),
        "rtype": text("resource-type"),
        "tgw": text("tgw-id"),
        "subnet": text("subnet-id"),
        "flow_log": f"nullif(regexp_extract(\"$path\", {_string(FLOW_LOG_PATTERN)}, 1), '')",
    }


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _and(predicates: Sequence[str]) -> str:
    return "\n    AND ".join(predicates)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_flow_log_id(text: str) -> bool:
    import re

    return re.fullmatch(r"fl-(?:[0-9a-f]{17}|[0-9a-f]{8})", text) is not None
