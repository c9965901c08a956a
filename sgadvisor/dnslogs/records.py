"""One Route 53 Resolver query-log record, normalised so that names and addresses compare as equals.

The fields are those of the AWS Route 53 Developer Guide, "Values that appear in Resolver query logs":
``query_timestamp`` (ISO 8601, UTC), ``query_name`` (with a trailing dot), ``query_type``, ``rcode``,
``answers`` (``[{"Rdata", "Type", "Class"}]``), ``srcaddr``, ``vpc_id`` and ``srcids`` (``instance``,
``resolver_endpoint``, ``resolver_network_interface``); ``firewall_rule_action`` when DNS Firewall
matched. The same answer can be written ``API.Example.com.`` or ``api.example.com``, ``2001:DB8::1`` or
``2001:db8:0::1``: without normalising, one name would count as two and its answers as two sets, and a
stable name would look unstable. IDNA names stay as written (``xn--…``): the resolver logs them so, and
DNS Firewall matches them so.

Resolver logs carry no owner name per answer: a CNAME's owner is the previous name of the chain (the
query name first), and address records belong to the last name, the order in which resolvers write an
answer section.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

# Keys whose presence makes a JSON object a query-log record (for recognising a file by its content).
RECORD_KEYS = frozenset({"query_name", "query_timestamp"})
ADDRESS_FAMILIES = {"A": 4, "AAAA": 6}  # the record types whose Rdata is an address, and its family
NAME_TYPES = frozenset({"CNAME", "DNAME", "PTR", "NS"})  # record types whose Rdata is one domain name
NOERROR = "NOERROR"
BLOCK = "BLOCK"
OUTBOUND_ENDPOINT_PREFIX = "rslvr-out-"
MAX_NAME = 1024  # a DNS name is at most 253 characters; escapes (\DDD) can triple that, no more
# Names, addresses and type codes repeat on almost every line of a log: each distinct one is checked and
# normalised once (ipaddress alone costs more per line than parsing the JSON).
_CACHED = 1 << 16
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


class RecordError(ValueError):
    """A record of the wrong shape; the message names the field and says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class DnsQuery:
    """A query the Resolver logged, with its answer.

    ``via_resolver_endpoint`` says the query passed a Resolver endpoint (``srcids.resolver_endpoint``):
    an outbound one (``rslvr-out-…``) forwarded the VPC client's query to other DNS servers, and the
    client is still ``srcaddr``; an inbound one (``rslvr-in-…``) received the query from outside the
    VPC's own resolver path (on-premises or another network's DNS server), so ``srcaddr`` is whoever
    sent it to the endpoint, not necessarily the workload that asked (see ``inbound``).
    """

    timestamp: int  # epoch seconds, UTC
    query_name: str  # lowercase, no trailing dot
    query_type: str  # upper case: "A", "AAAA", "CNAME", "TYPE65", ...
    rcode: str  # upper case: "NOERROR", "NXDOMAIN", "SERVFAIL", ...
    answers: tuple[tuple[str, str], ...]  # (type, rdata): addresses canonical, names lowercase, no dot
    srcaddr: str  # canonical address
    vpc_id: str
    via_resolver_endpoint: bool
    resolver_endpoint: str | None = None
    instance: str | None = None
    firewall_action: str | None = None  # firewall_rule_action: "ALERT", "BLOCK", or None (no match)

    @property
    def inbound(self) -> bool:
        """Whether the query came in through an inbound Resolver endpoint: any endpoint that is not an
        outbound one (``rslvr-out-…``), so an endpoint id of an unknown form is never taken for the
        client's own query."""
        return self.resolver_endpoint is not None and not self.resolver_endpoint.startswith(
            OUTBOUND_ENDPOINT_PREFIX
        )

    @property
    def resolves(self) -> bool:
        """Whether the answer is evidence of what the name resolves to: NOERROR and not blocked by DNS
        Firewall (a BLOCK with an OVERRIDE response answers with the firewall's own records)."""
        return self.rcode == NOERROR and self.firewall_action != BLOCK

    def chain(self) -> tuple[str, ...]:
        """The CNAME targets of the answer, in order (the query name's target first)."""
        return tuple(rdata for kind, rdata in self.answers if kind == "CNAME")

    def addresses(self) -> tuple[str, ...]:
        """The addresses of the answer (A and AAAA records), as written (duplicates kept)."""
        return tuple(rdata for kind, rdata in self.answers if kind in ADDRESS_FAMILIES)


def parse_record(value: Any) -> DnsQuery:
    """The query in one parsed JSON record; RecordError for anything not shaped as AWS writes it."""
    if not isinstance(value, dict):
        raise RecordError(f"a record is a JSON object, not {_kind(value)}")
    srcids = value.get("srcids", {})
    if srcids is None:
        srcids = {}
    if not isinstance(srcids, dict):
        raise RecordError(f"srcids is {_kind(srcids)}, not an object")
    # The developer guide spells the key resolver-endpoint; the logs write resolver_endpoint.
    endpoint = _optional_text(srcids, "resolver_endpoint", "srcids.resolver_endpoint")
    if endpoint is None:
        endpoint = _optional_text(srcids, "resolver-endpoint", "srcids.resolver-endpoint")
    firewall = _optional_text(value, "firewall_rule_action", "firewall_rule_action")
    return DnsQuery(
        timestamp=parse_timestamp(_text(value, "query_timestamp")),
        query_name=normalize_name(_text(value, "query_name"), field="query_name"),
        query_type=_token(value, "query_type"),
        rcode=_token(value, "rcode"),
        answers=_answers(value.get("answers", _MISSING)),
        srcaddr=_address(_text(value, "srcaddr"), field="srcaddr"),
        vpc_id=_text(value, "vpc_id"),
        via_resolver_endpoint=endpoint is not None,
        resolver_endpoint=endpoint,
        instance=_optional_text(srcids, "instance", "srcids.instance"),
        firewall_action=firewall.upper() if firewall is not None else None,
    )


def normalize_name(text: str, *, field: str = "name") -> str:
    """Lowercase, without the trailing dot of a fully qualified name; the root stays ``.``.

    Messages never quote the name: query logs are sensitive (every name a workload asked for), and a
    message ends up in recommendation.json."""
    return _normal_name(text, field)


@lru_cache(maxsize=_CACHED)
def _normal_name(text: str, field: str) -> str:
    name = text.strip()
    if not name:
        raise RecordError(f"{field} is empty")
    if len(name) > MAX_NAME:
        raise RecordError(f"{field} is {len(name)} characters long, longer than any DNS name")
    if _SPACE_OR_CONTROL.search(name) or not name.isprintable():
        raise RecordError(f"{field} holds spaces or control characters")  # the name itself is not shown
    if name == ".":
        return name
    return name.lower().removesuffix(".")


def parse_timestamp(text: str) -> int:
    """Epoch seconds (fractions dropped) of ``2021-02-04T17:51:55Z`` or ``2017-03-16T19:20:25.177Z``.

    A time without an offset is refused, not guessed: AWS always writes UTC with ``Z``, so a naive time
    comes from some other tool's rewrite of the record."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RecordError(f"query_timestamp {_show(text)} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise RecordError(f"query_timestamp {_show(text)} has no time zone (AWS writes UTC with Z)")
    return int(moment.timestamp() // 1)


_MISSING: Any = object()


def _answers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is _MISSING:
        raise RecordError("answers is missing")
    if not isinstance(value, list):
        raise RecordError(f"answers is {_kind(value)}, not a list")
    answers: list[tuple[str, str]] = []
    for index, answer in enumerate(value):
        where = f"answers[{index}]"
        if not isinstance(answer, dict):
            raise RecordError(f"{where} is {_kind(answer)}, not an object")
        kind = _token(answer, "Type", where=f"{where}.Type")
        rdata = _text(answer, "Rdata", where=f"{where}.Rdata")
        if kind in ADDRESS_FAMILIES:
            address, version = _canonical_address(rdata, f"{where}.Rdata")
            if version != ADDRESS_FAMILIES[kind]:
                raise RecordError(f"{where}: {kind} record with address {address}")
            rdata = address
        elif kind in NAME_TYPES:
            rdata = normalize_name(rdata, field=f"{where}.Rdata")
        answers.append((kind, rdata))
    return tuple(answers)


def _text(record: dict[str, Any], key: str, *, where: str | None = None) -> str:
    value = record.get(key, _MISSING)
    if value is _MISSING:
        raise RecordError(f"{where or key} is missing")
    if not isinstance(value, str):
        raise RecordError(f"{where or key} is {_kind(value)}, not text")
    if not value.strip():
        raise RecordError(f"{where or key} is empty")
    return value


def _optional_text(record: dict[str, Any], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{where} is {_kind(value)}, not text")
    return value.strip() or None


def _token(record: dict[str, Any], key: str, *, where: str | None = None) -> str:
    return _normal_token(_text(record, key, where=where), where or key)


@lru_cache(maxsize=1024)
def _normal_token(text: str, where: str) -> str:
    value = text.strip()
    if _SPACE_OR_CONTROL.search(value) or not value.isprintable() or len(value) > 32:
        raise RecordError(f"{where} {_show(value)} is not a DNS type or code")
    return value.upper()


def _address(text: str, *, field: str) -> str:
    return _canonical_address(text, field)[0]


@lru_cache(maxsize=_CACHED)
def _canonical_address(text: str, field: str) -> tuple[str, int]:
    """The canonical text of an address and its version (4 or 6)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise RecordError(f"{field} {_show(text)} is not an IP address") from None
    return str(address), address.version


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean"}.get(type(value), "a number")


def _show(text: str) -> str:
    """A value quoted for a message: one line, at most 60 characters."""
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:56] + "…'"
