"""Build the Logs Insights query people write by hand for flow logs (DESIGN §3.1, character for character).

The text is meant to be pasted into the CloudWatch console as well as run here, so it follows the seed's
layout exactly: one command per line, every line after the first starting with ``| ``; an optional
``parse @message`` for a custom format; filters in a fixed order (``@logStream``, ``action``, ``srcAddr``,
``srcPort``, ``dstAddr``, ``dstPort``, ``protocol``), each ``field = 'value'`` (``action='X'`` as the seed
writes it); then ``stats count(*) as num by …`` or the detail ``fields`` with ``sort @timestamp desc``; then
``sort`` and ``limit``. Every value is validated and quoted, so no option can inject query text.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sgadvisor.errors import UsageError
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT

# Insights discovers these for the default format (AWS docs, "Fields in flow log records").
DISCOVERED_NAMES = {
    "version": "version",
    "account-id": "accountId",
    "interface-id": "interfaceId",
    "srcaddr": "srcAddr",
    "dstaddr": "dstAddr",
    "srcport": "srcPort",
    "dstport": "dstPort",
    "protocol": "protocol",
    "packets": "packets",
    "bytes": "bytes",
    "start": "startTime",
    "end": "endTime",
    "action": "action",
    "log-status": "logStatus",
}
DETAIL_FIELDS = ("@timestamp", "srcAddr", "srcPort", "dstAddr", "dstPort", "protocol", "action")
# Fields every log event has in Logs Insights.
EVENT_FIELDS = ("@timestamp", "@message", "@logStream", "@log", "@ingestionTime")
COUNT_FIELD = "num"  # the count's name in `stats count(*) as num by …`
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
MAX_QUERY_CHARS = 10_000  # StartQuery's limit on the query string (DESIGN §7)
MAX_LIMIT = 100_000

_ENI = re.compile(r"^eni-[0-9a-f]{8,17}$")
_FIELD = re.compile(r"^@?[A-Za-z_][A-Za-z0-9_.]*$")


def insights_name(aws_field: str) -> str:
    """The Insights field name of a flow-log field: the discovered name, else camelCase of the AWS name
    (``pkt-srcaddr`` → ``pktSrcaddr``), which is what a ``parse … as`` clause here calls it."""
    if aws_field in DISCOVERED_NAMES:
        return DISCOVERED_NAMES[aws_field]
    head, *rest = aws_field.split("-")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class QueryOptions:
    """The builder's options (DESIGN §3.1), before validation."""

    enis: Sequence[str] = ()
    action: str | None = None
    src: str | None = None
    src_port: str | None = None
    dst: str | None = None
    dst_port: str | None = None
    protocol: str | None = None
    count_by: Sequence[str] = ()
    sort: str | None = None
    limit: int | None = None
    log_format: Sequence[str] | None = None  # AWS field names of a custom format: adds a parse clause

    def any_set(self) -> bool:
        return bool(
            self.enis
            or self.action
            or self.src
            or self.src_port
            or self.dst
            or self.dst_port
            or self.protocol
            or self.count_by
            or self.sort
            or self.limit is not None
        )


def build_query(options: QueryOptions) -> str:
    """The query text for ``options``; UsageError names the option at fault."""
    lines: list[str] = []
    if options.log_format is not None and tuple(options.log_format) != DEFAULT_FORMAT:
        lines.append(parse_clause(options.log_format))
    lines += _filters(options)
    known = format_fields(options.log_format)
    if options.count_by:
        names = [
            _known(_field_name(f, "--count-by"), "--count-by", known, options)
            for f in _split(options.count_by)
        ]
        lines.append(f"stats count(*) as {COUNT_FIELD} by {', '.join(names)}")
        # After stats only the count and the fields counted by exist.
        known = (COUNT_FIELD, *names)
    else:
        lines.append(f"fields {', '.join(DETAIL_FIELDS)}")
        if options.sort is None:
            lines.append("sort @timestamp desc")
    if options.sort is not None:
        lines.append(_sort(options.sort, known, options))
    if options.limit is not None:
        if not 1 <= options.limit <= MAX_LIMIT:
            raise UsageError(f"--limit {options.limit}: Logs Insights accepts 1 to {MAX_LIMIT:,}")
        lines.append(f"limit {options.limit}")
    text = "\n".join(lines[:1] + [f"| {line}" for line in lines[1:]])
    if len(text) > MAX_QUERY_CHARS:
        raise UsageError(
            f"the query is {len(text):,} characters; Logs Insights accepts at most {MAX_QUERY_CHARS:,}",
            hint="query fewer ENIs at a time",
        )
    return text


def format_fields(log_format: Sequence[str] | None) -> tuple[str, ...]:
    """The fields a query built for ``log_format`` (None: the default format) can name: every log event's
    own fields and the format's fields by their Insights names (discovered, or named by the parse clause)."""
    fields = DEFAULT_FORMAT if log_format is None else tuple(log_format)
    return (*EVENT_FIELDS, *(insights_name(f) for f in fields))


def _known(name: str, option: str, known: Sequence[str], options: QueryOptions) -> str:
    """``name`` when the query can know it; else UsageError with the closest name. An unknown field would
    read as null: one blank row (counted) or an unsorted list, never what was asked."""
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    close = close or [k for k in known if k.lower() == name.lower()]
    suggestion = f" (did you mean {close[0]}?)" if close else ""
    if option == "--sort" and known and known[0] == COUNT_FIELD:
        where = f"after --count-by only {', '.join(known)} exist"
    elif options.log_format is None or tuple(options.log_format) == DEFAULT_FORMAT:
        where = "not a field of the default flow-log format"
    else:
        where = "not a field of the --log-format"
    raise UsageError(
        f"{option} {name!r}: {where}{suggestion}",
        hint=f"fields: {', '.join(known)}"
        + ("; pass --log-format for a custom format" if options.log_format is None else ""),
    )


def parse_clause(fields: Sequence[str]) -> str:
    """``parse @message "* * …" as a, b, …``: how a custom-format record's fields get names in Insights."""
    globs = " ".join("*" for _ in fields)
    return f'parse @message "{globs}" as {", ".join(insights_name(f) for f in fields)}'


def quote(value: str) -> str:
    """A single-quoted Insights string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _filters(options: QueryOptions) -> list[str]:
    filters: list[str] = []
    if options.enis:
        streams = [quote(f"{_eni(e)}-all") for e in options.enis]
        if len(streams) == 1:
            filters.append(f"filter @logStream = {streams[0]}")
        else:
            filters.append(f"filter @logStream in [{', '.join(streams)}]")
    if options.action:
        action = options.action.strip().upper()
        if action not in ("ACCEPT", "REJECT"):
            raise UsageError(f"--action {options.action!r}: use ACCEPT or REJECT")
        filters.append(f"filter action={quote(action)}")
    for name, value, option in (
        ("srcAddr", options.src, "--src"),
        ("srcPort", options.src_port, "--src-port"),
        ("dstAddr", options.dst, "--dst"),
        ("dstPort", options.dst_port, "--dst-port"),
    ):
        if value is None:
            continue
        if name.endswith("Addr"):
            filters.append(_address_filter(name, value, option))
        else:
            filters.append(f"filter {name} = {quote(_port(value, option))}")
    if options.protocol:
        filters.append(f"filter protocol = {quote(_protocol(options.protocol))}")
    return filters


def _address_filter(name: str, value: str, option: str) -> str:
    """An address is compared as text (as the seed does); a CIDR becomes ``isIpInSubnet``."""
    text = value.strip()
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            return f"filter isIpInSubnet({name}, {quote(str(network))})"
        return f"filter {name} = {quote(str(ipaddress.ip_address(text)))}"
    except ValueError:
        raise UsageError(f"{option} {value!r} is not an IP address or CIDR") from None


def _port(value: str, option: str) -> str:
    text = value.strip()
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise UsageError(f"{option} {value!r} is not a port number (0-65535)")
    return str(int(text))


def _protocol(value: str) -> str:
    text = value.strip().lower()
    if text in PROTOCOLS:
        return str(PROTOCOLS[text])
    if text.isdigit() and 0 <= int(text) <= 255:
        return str(int(text))
    raise UsageError(f"--protocol {value!r}: use tcp, udp, icmp, icmpv6 or a protocol number")


def _eni(value: str) -> str:
    text = value.strip()
    if not _ENI.match(text):
        raise UsageError(f"--eni {value!r} is not an ENI id (eni-0123456789abcdef0)")
    return text


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _field_name(value: str, option: str) -> str:
    if not _FIELD.match(value):
        raise UsageError(f"{option} {value!r} is not a field name")
    return value


def _sort(value: str, known: Sequence[str], options: QueryOptions) -> str:
    name, _, direction = value.partition(":")
    direction = (direction or "desc").strip().lower()
    if direction not in ("asc", "desc"):
        raise UsageError(f"--sort {value!r}: the direction is asc or desc")
    return f"sort {_known(_field_name(name.strip(), '--sort'), '--sort', known, options)} {direction}"
