"""The VPC and Transit Gateway flow-log fields, their types, and log-format strings.

One registry, so every reader (text, Parquet, CloudWatch JSON) types a field the same way.
Field names are AWS's hyphenated names (``pkt-srcaddr``); Parquet and some peers use underscores,
``${...}`` wraps them in a LogFormat string: :func:`normalize_field_name` folds all of these.
A field this registry does not know is kept as text, never rejected: AWS adds fields over time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sgadvisor.errors import FlowFormatError


class Kind(StrEnum):
    """How a field's text is checked and typed."""

    INT = "int"  # non-negative integer
    ADDR = "addr"  # IPv4 or IPv6 address
    TEXT = "text"  # opaque string (ids, names, enums we do not police)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    since: str  # the flow-log version that introduced it ("tgw" for Transit Gateway-only fields)
    max_value: int | None = None  # upper bound for INT fields, when the protocol gives one


def _spec(name: str, kind: Kind, since: str, max_value: int | None = None) -> FieldSpec:
    return FieldSpec(name, kind, since, max_value)


_I, _A, _T = Kind.INT, Kind.ADDR, Kind.TEXT
_PORT = 65535
# https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html#flow-logs-fields
# https://docs.aws.amazon.com/vpc/latest/tgw/tgw-flow-logs.html#flow-log-records
_SPECS: tuple[FieldSpec, ...] = (
    _spec("version", _I, "2"),
    _spec("account-id", _T, "2"),  # text: 12 digits with leading zeros, or "unknown"
    _spec("interface-id", _T, "2"),
    _spec("srcaddr", _A, "2"),
    _spec("dstaddr", _A, "2"),
    _spec("srcport", _I, "2", _PORT),
    _spec("dstport", _I, "2", _PORT),
    _spec("protocol", _I, "2", 255),
    _spec("packets", _I, "2"),
    _spec("bytes", _I, "2"),
    _spec("start", _I, "2"),
    _spec("end", _I, "2"),
    _spec("action", _T, "2"),
    _spec("log-status", _T, "2"),
    _spec("vpc-id", _T, "3"),
    _spec("subnet-id", _T, "3"),
    _spec("instance-id", _T, "3"),
    _spec("tcp-flags", _I, "3", 255),
    _spec("type", _T, "3"),
    _spec("pkt-srcaddr", _A, "3"),
    _spec("pkt-dstaddr", _A, "3"),
    _spec("region", _T, "4"),
    _spec("az-id", _T, "4"),
    _spec("sublocation-type", _T, "4"),
    _spec("sublocation-id", _T, "4"),
    _spec("pkt-src-aws-service", _T, "5"),
    _spec("pkt-dst-aws-service", _T, "5"),
    _spec("flow-direction", _T, "5"),
    _spec("traffic-path", _I, "5"),
    _spec("ecs-cluster-arn", _T, "7"),
    _spec("ecs-cluster-name", _T, "7"),
    _spec("ecs-container-instance-arn", _T, "7"),
    _spec("ecs-container-instance-id", _T, "7"),
    _spec("ecs-container-id", _T, "7"),
    _spec("ecs-second-container-id", _T, "7"),
    _spec("ecs-service-name", _T, "7"),
    _spec("ecs-task-definition-arn", _T, "7"),
    _spec("ecs-task-arn", _T, "7"),
    _spec("ecs-task-id", _T, "7"),
    _spec("reject-reason", _T, "8"),
    # Fields added after v8 (regional NAT gateway, encryption, tags, next hop).
    _spec("resource-id", _T, "9+"),
    _spec("encryption-status", _I, "9+"),
    _spec("instance-tag", _T, "9+"),
    _spec("instance-tag-2", _T, "9+"),
    _spec("interface-tag", _T, "9+"),
    _spec("interface-tag-2", _T, "9+"),
    _spec("asg-tag", _T, "9+"),
    _spec("asg-tag-2", _T, "9+"),
    _spec("interface-type", _T, "9+"),
    _spec("next-hop-interface-id", _T, "9+"),
    _spec("next-hop-subnet-id", _T, "9+"),
    _spec("next-hop-az-id", _T, "9+"),
    _spec("next-hop-vpc-id", _T, "9+"),
    _spec("next-hop-interface-type", _T, "9+"),
    # Transit Gateway flow logs.
    _spec("resource-type", _T, "tgw"),
    _spec("tgw-id", _T, "tgw"),
    _spec("tgw-attachment-id", _T, "tgw"),
    _spec("tgw-src-vpc-account-id", _T, "tgw"),
    _spec("tgw-dst-vpc-account-id", _T, "tgw"),
    _spec("tgw-src-vpc-id", _T, "tgw"),
    _spec("tgw-dst-vpc-id", _T, "tgw"),
    _spec("tgw-src-subnet-id", _T, "tgw"),
    _spec("tgw-dst-subnet-id", _T, "tgw"),
    _spec("tgw-src-eni", _T, "tgw"),
    _spec("tgw-dst-eni", _T, "tgw"),
    _spec("tgw-src-az-id", _T, "tgw"),
    _spec("tgw-dst-az-id", _T, "tgw"),
    _spec("tgw-pair-attachment-id", _T, "tgw"),
    _spec("packets-lost-no-route", _I, "tgw"),
    _spec("packets-lost-blackhole", _I, "tgw"),
    _spec("packets-lost-mtu-exceeded", _I, "tgw"),
    _spec("packets-lost-ttl-expired", _I, "tgw"),
)

FIELDS: dict[str, FieldSpec] = {spec.name: spec for spec in _SPECS}

# The AWS default format: the version 2 fields in table order.
DEFAULT_FORMAT: tuple[str, ...] = (
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
)

_NAME_RE = re.compile(r"[a-z][a-z0-9]*(?:[-_:][a-z0-9]+)*")
_TOKEN_RE = re.compile(r"\$\{([^}]*)\}|(\S+)")


def normalize_field_name(raw: str) -> str:
    """Fold ``${pkt-srcaddr}``, ``pkt_srcaddr`` and ``PKT-SRCADDR`` to ``pkt-srcaddr``."""
    name = raw.strip()
    if name.startswith("${") and name.endswith("}"):
        name = name[2:-1]
    return name.strip().lower().replace("_", "-")


def spec_for(name: str) -> FieldSpec:
    """The registry entry for a field; unknown fields are text (kept, never fatal)."""
    return FIELDS.get(name) or FieldSpec(name, Kind.TEXT, "unknown")


def is_known_field(name: str) -> bool:
    return name in FIELDS


def looks_like_field_name(token: str) -> bool:
    """True for tokens that can be a field name in a header line (not a value)."""
    return bool(_NAME_RE.fullmatch(normalize_field_name(token)))


def parse_log_format(text: str) -> tuple[str, ...]:
    """Parse a LogFormat (``${version} ${srcaddr} …``) or a plain list of names into field names.

    Raises FlowFormatError for an empty format, a malformed token or a repeated field: a format that
    is wrong would silently shift every value into the wrong column.
    """
    names: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        token = match.group(1) if match.group(1) is not None else match.group(2)
        name = normalize_field_name(token)
        if not name or not looks_like_field_name(name):
            raise FlowFormatError(f"log format: {token!r} is not a field name", hint=_FORMAT_HINT)
        names.append(name)
    if not names:
        raise FlowFormatError("log format is empty", hint=_FORMAT_HINT)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FlowFormatError(f"log format repeats {', '.join(duplicates)}", hint=_FORMAT_HINT)
    return tuple(names)


def format_log_format(names: tuple[str, ...]) -> str:
    """The AWS LogFormat spelling of a field list."""
    return " ".join(f"${{{n}}}" for n in names)


_FORMAT_HINT = (
    "pass the flow log's LogFormat, e.g. --log-format '${version} ${interface-id} ${srcaddr} ...' "
    "(aws ec2 describe-flow-logs shows it)"
)
