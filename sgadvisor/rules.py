"""Security-group rules in one canonical form, so keep/diff/check compare like with like (DESIGN §5).

A rule is normalised to ``(ip_protocol, from_port, to_port, destination kind, destination value)``:
protocol names canonical (``6`` → ``tcp``, any all-protocols spelling → ``-1``), no ports on ``-1`` (the
API's -1/-1 dropped), CIDRs in canonical network form. Description, rule id and evidence are not part of it.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

from sgadvisor.trusted import trusted

_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
_PROTOCOL_NUMBERS = {name: int(number) for number, name in _PROTOCOL_NAMES.items()}
_ALL = {"-1", "all", "any", "-1.0"}


class DestKind(StrEnum):
    """Exactly one destination per rule, named as Terraform's aws_vpc_security_group_egress_rule does."""

    CIDR_IPV4 = "cidr_ipv4"
    CIDR_IPV6 = "cidr_ipv6"
    PREFIX_LIST = "prefix_list_id"
    SECURITY_GROUP = "referenced_security_group_id"


class RuleKey(NamedTuple):
    """The normalised rule: what a rule permits, without its name tags."""

    ip_protocol: str
    from_port: int | None
    to_port: int | None
    kind: DestKind
    value: str


def canonical_protocol(value: str | int) -> str:
    """``tcp``/``6``/``TCP`` → ``tcp``; ``-1``/``all`` → ``-1``; other numbers stay numbers as text."""
    text = str(value).strip().lower()
    if text in _ALL:
        return "-1"
    if text in _PROTOCOL_NUMBERS:
        return text
    if text in _PROTOCOL_NAMES:
        return _PROTOCOL_NAMES[text]
    if text.isdigit() and 0 <= int(text) <= 255:
        return str(int(text))
    raise ValueError(f"unknown IP protocol {value!r}")


def protocol_number(protocol: str) -> int | None:
    """IANA number of a canonical protocol; None for ``-1`` (all)."""
    if protocol == "-1":
        return None
    return _PROTOCOL_NUMBERS.get(protocol, int(protocol) if protocol.isdigit() else None)


def canonical_cidr(text: str) -> str:
    """``10.0.1.7/24`` → ``10.0.1.0/24``; ``2001:DB8::/32`` → ``2001:db8::/32``."""
    return str(ipaddress.ip_network(text.strip(), strict=False))


def make_key(
    protocol: str | int, from_port: int | None, to_port: int | None, kind: DestKind, value: str
) -> RuleKey:
    """Normalise API/Terraform rule fields into a RuleKey."""
    proto = canonical_protocol(protocol)
    if proto == "-1":
        from_port = to_port = None
    elif proto in ("tcp", "udp") and from_port in (None, -1) and to_port in (None, -1):
        from_port, to_port = 0, 65535  # the API's "all ports" for tcp/udp
    elif proto in ("icmp", "icmpv6"):
        from_port = -1 if from_port is None else from_port
        to_port = -1 if to_port is None else to_port
    elif proto not in ("tcp", "udp"):
        from_port = to_port = None  # EC2 ignores ports for other protocols (the API shows -1/-1 or nothing)
    if kind in (DestKind.CIDR_IPV4, DestKind.CIDR_IPV6):
        value = canonical_cidr(value)
    return RuleKey(proto, from_port, to_port, kind, value)


class Rule(BaseModel):
    """A rule object of recommendation.json, with Terraform's argument names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    security_group_rule_id: str | None = None
    ip_protocol: str
    from_port: int | None = None
    to_port: int | None = None
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    prefix_list_id: str | None = None
    referenced_security_group_id: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_destination(self) -> Rule:
        count = sum(
            v is not None
            for v in (self.cidr_ipv4, self.cidr_ipv6, self.prefix_list_id, self.referenced_security_group_id)
        )
        if count != 1:
            raise ValueError(
                "a rule has exactly one of cidr_ipv4, cidr_ipv6, prefix_list_id, referenced_security_group_id"
            )
        return self

    @property
    def destination(self) -> tuple[DestKind, str]:
        for kind in DestKind:
            value = getattr(self, kind.value)
            if value is not None:
                return kind, value
        raise AssertionError("validated to have one destination")

    def key(self) -> RuleKey:
        kind, value = self.destination
        return make_key(self.ip_protocol, self.from_port, self.to_port, kind, value)

    @classmethod
    def from_key(
        cls: type[_RuleT],
        key: RuleKey,
        *,
        description: str | None = None,
        rule_id: str | None = None,
        **more: Any,
    ) -> _RuleT:
        """The rule object of ``key`` (``more``: a subclass's own fields, e.g. a proposed rule's evidence).
        Not validated again (``trusted``): a RuleKey is normalised and names exactly one destination
        (make_key), and the analysis builds a rule per flow and per change."""
        kind, value = key.kind, key.value
        return trusted(
            cls,
            security_group_rule_id=rule_id,
            ip_protocol=key.ip_protocol,
            from_port=key.from_port,
            to_port=key.to_port,
            cidr_ipv4=value if kind is DestKind.CIDR_IPV4 else None,
            cidr_ipv6=value if kind is DestKind.CIDR_IPV6 else None,
            prefix_list_id=value if kind is DestKind.PREFIX_LIST else None,
            referenced_security_group_id=value if kind is DestKind.SECURITY_GROUP else None,
            description=description,
            **more,
        )


_RuleT = TypeVar("_RuleT", bound=Rule)


def describe_rule(rule: Rule) -> str:
    """``tcp 443 to 0.0.0.0/0``: one line a reviewer reads."""
    if rule.ip_protocol == "-1":
        what = "all traffic"
    elif rule.from_port is None or rule.to_port is None:
        what = f"protocol {rule.ip_protocol}"
    elif rule.ip_protocol in ("icmp", "icmpv6"):
        what = f"{rule.ip_protocol} type {rule.from_port} code {rule.to_port}".replace("-1", "any")
    elif rule.from_port == rule.to_port:
        what = f"{rule.ip_protocol} {rule.from_port}"
    else:
        what = f"{rule.ip_protocol} {rule.from_port}-{rule.to_port}"
    return f"{what} to {rule.destination[1]}"
