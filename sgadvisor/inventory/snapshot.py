"""Load an inventory snapshot: JSON files in the AWS CLI / API response shapes (DESIGN §4.3).

Why this shape: ``aws ec2 describe-security-groups > describe-security-groups.json`` (and the same for
security-group rules, network interfaces, managed prefix lists and flow logs) is something every AWS user
can run, review and attach to a ticket, and ``sgadvisor collect`` writes exactly this layout, so a review
or a CI job runs offline on the same facts the EC2 API would give.

How files are read, and why:

* A file is recognised by its **top-level key**, never by its name, because people rename and page files.
  The one exception is ``aws ec2 get-managed-prefix-list-entries`` output (``{"Entries": [...]}``), which
  does not say which list it belongs to: the list id must be in the file name.
* A file *named* on the command line that cannot be used is an :class:`InputError` (exit 2, DESIGN §3); a
  file merely *met while walking a directory* that holds none of the known keys is skipped with a warning,
  because a snapshot directory may hold other JSON too. A damaged ``*.json`` file is an error either way.
* The same key in several files (pages, regions) is concatenated and de-duplicated by id. Two different
  states of one resource (same id, different content after normalisation) are an error naming both
  files: silently picking one would make the analysis depend on file order.
* Shapes are validated with pydantic models of the API shapes (extra fields ignored: AWS keeps adding
  fields), strict about types so that ``"FromPort": "abc"`` is reported with its key path instead of
  surfacing later as a wrong rule.
* A group's rules are the **union** of ``SecurityGroupRules`` (DescribeSecurityGroupRules, which carries
  the ``sgr-`` ids that imports and removals need) and the group's own ``IpPermissions``/
  ``IpPermissionsEgress``. Where they disagree (a snapshot is not atomic, a call was filtered or lost a
  page) each rule only one source has is kept and named in a warning: a drift gate must never pass an
  open rule because one of two sources forgot it (DESIGN §4.3). A rule only the group lists has no
  ``sgr-`` id, and imports and removals handle it as they do any rule without one.
* The result is deterministic: files are processed in sorted path order whatever order they were given
  in, and every collection is sorted by id, so the same files always give an identical
  :class:`Inventory` (warnings included).
"""

from __future__ import annotations

import dataclasses
import gzip
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_pascal

from sgadvisor.errors import InputError
from sgadvisor.inventory.history_files import HISTORY_KEYS, HistoryFiles
from sgadvisor.inventory.kinds import canonical_interface_type
from sgadvisor.inventory.model import (
    FlowLogConfig,
    Interface,
    Inventory,
    PrefixList,
    SecurityGroup,
    SgRule,
    Vpc,
)
from sgadvisor.inventory.validators import address_order, aws_id, canonical_address
from sgadvisor.jsonload import load_json_text
from sgadvisor.rules import DestKind, RuleKey, canonical_protocol

__all__ = ["HISTORY_KEYS", "SNAPSHOT_KEYS", "load_snapshot", "load_snapshot_documents"]

SNAPSHOT_KEYS: Final = (
    "SecurityGroups",
    "SecurityGroupRules",
    "NetworkInterfaces",
    "PrefixLists",
    "FlowLogs",
    "Vpcs",
)
# Response fields that carry no inventory (paging, request metadata): ignored without a warning.
_METADATA_KEYS: Final = frozenset({"NextToken", "ResponseMetadata"})
_ENTRIES_KEY: Final = "Entries"
# A prefix-list id in a file name (pl- and hex digits: 8 for AWS-managed lists, 17 for customer lists),
# not part of a longer word.
_PREFIX_LIST_ID: Final = re.compile(r"(?<![0-9A-Za-z])pl-[0-9a-f]+(?![0-9A-Za-z])")
# Protocols whose FromPort/ToPort mean something; for every other protocol EC2 ignores them.
_PORTED_PROTOCOLS: Final = frozenset({"tcp", "udp", "icmp", "icmpv6"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_GZIP_MAGIC: Final = b"\x1f\x8b"
_MAX_GUNZIPPED: Final = 1 << 30  # a CloudTrail or ConfigHistory file is a few MiB; refuse a gzip bomb
_SHAPE_HINT: Final = (
    "the inventory snapshot takes the unmodified JSON output of the AWS CLI, e.g. "
    "aws ec2 describe-security-groups > describe-security-groups.json (or run sgadvisor collect)"
)
_CONFLICT_HINT: Final = (
    "the files hold different states of the same resource (snapshots taken at different times?): "
    "keep only one snapshot"
)

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------------------
# Field validators: raise ValueError("expected …"); the message formatter adds ", got <input>"
# --------------------------------------------------------------------------------------------------------


def _cidr(version: int | None) -> Callable[[str], str]:
    """A validator giving the canonical network form of a CIDR (of one IP version when asked)."""
    family = {4: "an IPv4 CIDR", 6: "an IPv6 CIDR", None: "a CIDR"}[version]

    def check(text: str) -> str:
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError(f"expected {family}") from None
        if version is not None and network.version != version:
            raise ValueError(f"expected {family}")
        return str(network)

    return check


def _protocol(value: str) -> str:
    """Keep the protocol as given (``SgRule.build`` canonicalises it) but refuse unknown ones here."""
    try:
        canonical_protocol(value)
    except ValueError:
        raise ValueError("expected an IP protocol (tcp, udp, icmp, icmpv6, -1 or a number 0-255)") from None
    return value


def _number_as_text(value: object) -> object:
    """``IpProtocol`` is text in the API, but hand-written snapshots often say ``6``: accept that."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _epoch_seconds(value: object) -> object:
    """ISO 8601 (fractional seconds and offsets allowed; naive = UTC) → epoch seconds, rounded down."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("expected an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(seconds=1)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_Cidr4 = Annotated[str, AfterValidator(_cidr(4))]
_Cidr6 = Annotated[str, AfterValidator(_cidr(6))]
_AnyCidr = Annotated[str, AfterValidator(_cidr(None))]
_Address = Annotated[str, AfterValidator(canonical_address)]
_Protocol = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_protocol)]
_Port = Annotated[int, Field(ge=-1, le=65535)]
_Epoch = Annotated[int, BeforeValidator(_epoch_seconds)]
_GroupId = Annotated[str, AfterValidator(aws_id("sg-"))]
_RuleId = Annotated[str, AfterValidator(aws_id("sgr-"))]
_EniId = Annotated[str, AfterValidator(aws_id("eni-"))]
_PrefixListId = Annotated[str, AfterValidator(aws_id("pl-"))]
_FlowLogId = Annotated[str, AfterValidator(aws_id("fl-"))]
_VpcId = Annotated[str, AfterValidator(aws_id("vpc-"))]


# --------------------------------------------------------------------------------------------------------
# The API shapes (only the fields sgadvisor uses; PascalCase aliases as the CLI prints them)
# --------------------------------------------------------------------------------------------------------


class _Api(BaseModel):
    """Base of the API shapes: PascalCase keys, unknown keys ignored, JSON types taken strictly."""

    model_config = ConfigDict(strict=True, extra="ignore", alias_generator=to_pascal, frozen=True)


class _Tag(_Api):
    key: str
    value: str = ""


class _IpRange(_Api):
    cidr_ip: _Cidr4
    description: str | None = None


class _Ipv6Range(_Api):
    cidr_ipv6: _Cidr6
    description: str | None = None


class _PrefixListRef(_Api):
    prefix_list_id: _PrefixListId
    description: str | None = None


class _GroupPair(_Api):
    group_id: _GroupId
    description: str | None = None


class _IpPermission(_Api):
    ip_protocol: _Protocol
    from_port: _Port | None = None
    to_port: _Port | None = None
    ip_ranges: list[_IpRange] = Field(default_factory=list)
    ipv6_ranges: list[_Ipv6Range] = Field(default_factory=list)
    prefix_list_ids: list[_PrefixListRef] = Field(default_factory=list)
    user_id_group_pairs: list[_GroupPair] = Field(default_factory=list)


class _SecurityGroup(_Api):
    group_id: _GroupId
    group_name: str
    description: str = ""
    vpc_id: str | None = None
    tags: list[_Tag] = Field(default_factory=list)
    ip_permissions: list[_IpPermission] = Field(default_factory=list)
    ip_permissions_egress: list[_IpPermission] = Field(default_factory=list)


class _ReferencedGroup(_Api):
    group_id: _GroupId


class _SecurityGroupRule(_Api):
    security_group_rule_id: _RuleId
    group_id: _GroupId
    is_egress: bool
    ip_protocol: _Protocol
    from_port: _Port | None = None
    to_port: _Port | None = None
    cidr_ipv4: _Cidr4 | None = None
    cidr_ipv6: _Cidr6 | None = None
    prefix_list_id: _PrefixListId | None = None
    referenced_group_info: _ReferencedGroup | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_destination(self) -> _SecurityGroupRule:
        if len(self.destinations()) != 1:
            raise ValueError(
                "expected exactly one of CidrIpv4, CidrIpv6, PrefixListId, ReferencedGroupInfo.GroupId"
            )
        return self

    def destinations(self) -> list[tuple[DestKind, str]]:
        found = [
            (DestKind.CIDR_IPV4, self.cidr_ipv4),
            (DestKind.CIDR_IPV6, self.cidr_ipv6),
            (DestKind.PREFIX_LIST, self.prefix_list_id),
            (
                DestKind.SECURITY_GROUP,
                self.referenced_group_info.group_id if self.referenced_group_info else None,
            ),
        ]
        return [(kind, value) for kind, value in found if value is not None]


class _PrivateIp(_Api):
    private_ip_address: _Address
    primary: bool = False


class _Ipv6Address(_Api):
    ipv6_address: _Address


class _GroupIdentifier(_Api):
    group_id: _GroupId


class _Attachment(_Api):
    instance_id: str | None = None
    device_index: int | None = None  # 0: the instance's primary ENI (TerminateInstances ends it)
    attachment_id: str | None = None  # DetachNetworkInterface names only the attachment


class _Association(_Api):
    public_ip: _Address | None = None


class _NetworkInterface(_Api):
    network_interface_id: _EniId
    private_ip_address: _Address | None = None
    private_ip_addresses: list[_PrivateIp] = Field(default_factory=list)
    ipv6_addresses: list[_Ipv6Address] = Field(default_factory=list)
    groups: list[_GroupIdentifier] = Field(default_factory=list)
    interface_type: str = "interface"
    requester_managed: bool = False
    requester_id: str | None = None
    description: str = ""
    subnet_id: str | None = None
    vpc_id: str | None = None
    tag_set: list[_Tag] = Field(default_factory=list)
    attachment: _Attachment | None = None
    association: _Association | None = None
    ipv4_prefixes: list[dict[str, Any]] = Field(default_factory=list)
    ipv6_prefixes: list[dict[str, Any]] = Field(default_factory=list)


class _Entry(_Api):
    cidr: _AnyCidr
    description: str | None = None


class _PrefixList(_Api):
    prefix_list_id: _PrefixListId
    prefix_list_name: str
    address_family: str
    owner_id: str
    max_entries: int | None = None
    entries: list[_Entry] | None = None  # sgadvisor's addition: GetManagedPrefixListEntries merged in


class _FlowLog(_Api):
    flow_log_id: _FlowLogId
    resource_id: str
    traffic_type: str = "ALL"  # absent for transit-gateway flow logs, which capture everything
    log_format: str | None = None
    log_destination_type: str = "cloud-watch-logs"  # the API's default; old flow logs omit the field
    log_destination: str | None = None
    log_group_name: str | None = None
    creation_time: _Epoch | None = None


class _CidrState(_Api):
    state: str = "associated"


class _CidrAssociation(_Api):
    cidr_block: _Cidr4
    cidr_block_state: _CidrState = Field(default_factory=_CidrState)


class _Ipv6CidrAssociation(_Api):
    ipv6_cidr_block: _Cidr6
    ipv6_cidr_block_state: _CidrState = Field(default_factory=_CidrState)


class _Vpc(_Api):
    vpc_id: _VpcId
    cidr_block: _Cidr4 | None = None  # the primary IPv4 block
    cidr_block_association_set: list[_CidrAssociation] = Field(default_factory=list)
    ipv6_cidr_block_association_set: list[_Ipv6CidrAssociation] = Field(default_factory=list)


class _Document(_Api):
    """The known top-level keys of one file; only the keys present are passed in."""

    security_groups: list[_SecurityGroup] = Field(default_factory=list)
    security_group_rules: list[_SecurityGroupRule] = Field(default_factory=list)
    network_interfaces: list[_NetworkInterface] = Field(default_factory=list)
    prefix_lists: list[_PrefixList] = Field(default_factory=list)
    flow_logs: list[_FlowLog] = Field(default_factory=list)
    vpcs: list[_Vpc] = Field(default_factory=list)


class _EntriesDocument(_Api):
    entries: list[_Entry]


# --------------------------------------------------------------------------------------------------------
# Validation errors → one line naming the file and the key path
# --------------------------------------------------------------------------------------------------------

_EXPECTED: Final = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
}


def _show(value: object) -> str:
    """A JSON value as the user wrote it, short."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _location(loc: Iterable[int | str]) -> str:
    """``('SecurityGroups', 3, 'FromPort')`` → ``SecurityGroups[3].FromPort``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _shape_error(path: Path, error: ValidationError) -> InputError:
    """The first validation error as ``file: Key[i].Path: expected …, got …`` (+ how many more)."""
    problems = error.errors(include_url=False)
    first = problems[0]
    kind, value = first["type"], first.get("input")
    if kind == "missing":
        what = "required field is missing"
    elif kind in ("value_error", "assertion_error"):
        what = str(first.get("ctx", {}).get("error", first["msg"]))
        if not isinstance(value, dict | list):
            what += f", got {_show(value)}"
    else:
        expected = _EXPECTED.get(kind)
        if expected is None:
            message = first["msg"]
            expected = "expected " + message.removeprefix("Input should be ").removeprefix("Value error, ")
        what = f"{expected}, got {_show(value)}"
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return InputError(f"{path}: {_location(first['loc'])}: {what}{more}", hint=_SHAPE_HINT)


# --------------------------------------------------------------------------------------------------------
# Conversion of validated API objects to the model
# --------------------------------------------------------------------------------------------------------


def _tags(tags: Iterable[_Tag]) -> dict[str, str]:
    return {tag.key: tag.value for tag in sorted(tags, key=lambda tag: tag.key)}


def _ports(protocol: str, from_port: int | None, to_port: int | None) -> tuple[int | None, int | None]:
    """Drop ports where EC2 ignores them (every protocol but tcp/udp/icmp/icmpv6), so that
    DescribeSecurityGroupRules' -1/-1 and IpPermissions' absent ports give the same key."""
    if canonical_protocol(protocol) not in _PORTED_PROTOCOLS:
        return None, None
    return from_port, to_port


def _expand(group_id: str, egress: bool, permission: _IpPermission) -> list[SgRule]:
    """One IpPermission (several destinations) → one SgRule per destination, as EC2 counts them."""
    from_port, to_port = _ports(permission.ip_protocol, permission.from_port, permission.to_port)
    destinations: list[tuple[DestKind, str, str | None]] = [
        *((DestKind.CIDR_IPV4, item.cidr_ip, item.description) for item in permission.ip_ranges),
        *((DestKind.CIDR_IPV6, item.cidr_ipv6, item.description) for item in permission.ipv6_ranges),
        *(
            (DestKind.PREFIX_LIST, item.prefix_list_id, item.description)
            for item in permission.prefix_list_ids
        ),
        *(
            (DestKind.SECURITY_GROUP, item.group_id, item.description)
            for item in permission.user_id_group_pairs
        ),
    ]
    return [
        SgRule.build(group_id, egress, permission.ip_protocol, from_port, to_port, kind, value, description)
        for kind, value, description in destinations
    ]


def _rule_order(rule: SgRule) -> tuple[str, int, int, str, str, str, str]:
    """Stable rule order: by normalised key (absent ports first), then rule id, then description."""
    return (
        rule.ip_protocol,
        -2 if rule.from_port is None else rule.from_port,
        -2 if rule.to_port is None else rule.to_port,
        rule.kind.value,
        rule.value,
        rule.rule_id or "",
        rule.description or "",
    )


def _sorted_rules(rules: Iterable[SgRule]) -> tuple[SgRule, ...]:
    return tuple(sorted(rules, key=_rule_order))


def _security_group(api: _SecurityGroup) -> SecurityGroup:
    egress = [rule for p in api.ip_permissions_egress for rule in _expand(api.group_id, True, p)]
    ingress = [rule for p in api.ip_permissions for rule in _expand(api.group_id, False, p)]
    return SecurityGroup(
        group_id=api.group_id,
        group_name=api.group_name,
        vpc_id=api.vpc_id,
        description=api.description,
        tags=_tags(api.tags),
        egress=_sorted_rules(egress),
        ingress=_sorted_rules(ingress),
    )


def _security_group_rule(api: _SecurityGroupRule) -> SgRule:
    ((kind, value),) = api.destinations()
    from_port, to_port = _ports(api.ip_protocol, api.from_port, api.to_port)
    return SgRule.build(
        api.group_id,
        api.is_egress,
        api.ip_protocol,
        from_port,
        to_port,
        kind,
        value,
        api.description,
        api.security_group_rule_id,
    )


def _interface(api: _NetworkInterface) -> Interface:
    """ENI addresses: the primary private IPv4 first, then the other private IPv4s, then IPv6 (sorted)."""
    primary = api.private_ip_address
    if primary is None:
        primary = next((item.private_ip_address for item in api.private_ip_addresses if item.primary), None)
    secondaries = {item.private_ip_address for item in api.private_ip_addresses} - {primary}
    ipv6 = {item.ipv6_address for item in api.ipv6_addresses} - {primary}
    addresses = ([primary] if primary is not None else []) + sorted(secondaries | ipv6, key=address_order)
    return Interface(
        eni_id=api.network_interface_id,
        addresses=tuple(address for address in addresses if address is not None),
        group_ids=tuple(sorted({group.group_id for group in api.groups})),
        interface_type=canonical_interface_type(api.interface_type),  # SDK spellings too (DESIGN §4.3)
        requester_managed=api.requester_managed,
        description=api.description,
        subnet_id=api.subnet_id,
        vpc_id=api.vpc_id,
        tags=_tags(api.tag_set),
        instance_id=api.attachment.instance_id if api.attachment else None,
        public_ip=api.association.public_ip if api.association else None,
        requester_id=api.requester_id or None,
    )


def _network_order(cidr: str) -> tuple[int, int, int]:
    network = ipaddress.ip_network(cidr)
    return network.version, int(network.network_address), network.prefixlen


def _entries(entries: Iterable[_Entry]) -> tuple[str, ...]:
    """Entries as sorted, de-duplicated canonical CIDRs: their order carries no meaning."""
    return tuple(sorted({entry.cidr for entry in entries}, key=_network_order))


def _flow_log(api: _FlowLog) -> FlowLogConfig:
    return FlowLogConfig(
        flow_log_id=api.flow_log_id,
        resource_id=api.resource_id,
        traffic_type=api.traffic_type,
        log_format=api.log_format,
        destination_type=api.log_destination_type,
        destination=api.log_destination,
        log_group=api.log_group_name,
        created=api.creation_time,
    )


# CIDR blocks in these states no longer (or never did) belong to the VPC.
_GONE_STATES: Final = frozenset({"disassociating", "disassociated", "failing", "failed"})


def _vpc(api: _Vpc) -> Vpc:
    """The VPC's blocks: the primary IPv4 block first, then the other associated IPv4 and IPv6 blocks."""
    ipv4 = [item.cidr_block for item in api.cidr_block_association_set
            if item.cidr_block_state.state not in _GONE_STATES]  # fmt: skip
    ipv6 = [item.ipv6_cidr_block for item in api.ipv6_cidr_block_association_set
            if item.ipv6_cidr_block_state.state not in _GONE_STATES]  # fmt: skip
    primary = [api.cidr_block] if api.cidr_block is not None else []
    others = sorted(set(ipv4) - set(primary), key=_network_order) + sorted(set(ipv6), key=_network_order)
    return Vpc(vpc_id=api.vpc_id, cidrs=tuple(primary + others))


def _describe_rule(rule: SgRule) -> str:
    """A rule in words for warnings: ``tcp 443 to 0.0.0.0/0``."""
    if rule.ip_protocol == "-1":
        what = "all traffic"
    elif rule.from_port is None:
        what = f"protocol {rule.ip_protocol}"
    elif rule.ip_protocol in ("icmp", "icmpv6"):
        what = f"{rule.ip_protocol} type {rule.from_port} code {rule.to_port}"
    elif rule.from_port == rule.to_port:
        what = f"{rule.ip_protocol} {rule.from_port}"
    else:
        what = f"{rule.ip_protocol} {rule.from_port}-{rule.to_port}"
    return f"{what} {'to' if rule.egress else 'from'} {rule.value}"


# --------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    path: Path
    named: bool  # named by the caller (unusable → error) vs. met while walking a directory (→ warning)


def _discover(paths: Sequence[Path]) -> list[_File]:
    """Expand directories (every ``*.json``, recursively, hidden entries skipped) and sort by path.

    Sorting makes the result independent of the order paths were given in; a file reached twice (named
    and inside a named directory) is read once, as named.
    """
    found: dict[Path, _File] = {}
    for path in paths:
        if path.is_dir():
            walked: list[Path] = []
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                walked.extend(
                    Path(root) / name
                    for name in files
                    if name.lower().endswith((".json", ".json.gz")) and not name.startswith(".")
                )
            if not walked:
                raise InputError(
                    f"{path}: no *.json files in this directory", hint="point --inventory at the snapshot"
                )
            for file in walked:
                found.setdefault(file.resolve(), _File(file, named=False))
        elif path.is_file():
            found[path.resolve()] = _File(path, named=True)
        elif path.exists():
            raise InputError(f"{path}: not a regular file or directory")
        else:
            raise InputError(f"{path}: no such file or directory", hint="check the --inventory path")
    return sorted(found.values(), key=lambda file: (str(file.path), file.named))


def _read_json(path: Path) -> object:
    try:
        raw = path.read_bytes()
        if raw.startswith(_GZIP_MAGIC):  # ConfigHistory and CloudTrail files as delivered to S3
            with gzip.open(path) as stream:
                raw = stream.read(_MAX_GUNZIPPED + 1)
            if len(raw) > _MAX_GUNZIPPED:
                raise InputError(f"{path}: more than {_MAX_GUNZIPPED >> 20} MiB once decompressed")
    except (OSError, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(f"{path}: cannot read: {reason}") from None
    try:
        # bytes: UTF-8/16/32 with or without BOM (PowerShell writes UTF-16)
        return load_json_text(raw, source=str(path))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", hint=_SHAPE_HINT
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: not UTF-8/16/32 text ({exc.reason})") from None


# --------------------------------------------------------------------------------------------------------
# Merging
# --------------------------------------------------------------------------------------------------------


@dataclass
class _Seen(Generic[_T]):
    """One resource and the file it was first read from (conflict messages name it)."""

    value: _T
    path: Path


@dataclass
class _PrefixListSeen:
    base: PrefixList  # entries=None: the entries are merged separately
    path: Path
    entries: tuple[str, ...] | None = None
    entries_path: Path | None = None


@dataclass
class _Builder:
    """Accumulates the files' contents, de-duplicating by id, then builds the Inventory."""

    groups: dict[str, _Seen[SecurityGroup]] = field(default_factory=dict)
    rules: dict[str, _Seen[SgRule]] = field(default_factory=dict)
    interfaces: dict[str, _Seen[Interface]] = field(default_factory=dict)
    prefix_lists: dict[str, _PrefixListSeen] = field(default_factory=dict)
    loose_entries: dict[str, tuple[set[str], list[Path]]] = field(default_factory=dict)
    flow_logs: dict[str, _Seen[FlowLogConfig]] = field(default_factory=dict)
    vpcs: dict[str, _Seen[Vpc]] = field(default_factory=dict)
    history: HistoryFiles = field(default_factory=HistoryFiles)  # Config items, CloudTrail events
    primary_enis: dict[str, str] = field(default_factory=dict)  # instance → its device-0 ENI
    attachments: dict[str, str] = field(default_factory=dict)  # attachment id → ENI
    keys_seen: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    # ---- reading --------------------------------------------------------------------------------------

    def read(self, file: _File) -> None:
        self.read_data(_read_json(file.path), file)

    def read_data(self, data: object, file: _File) -> None:
        """One file's parsed JSON (``file.path`` names it in messages)."""
        path = file.path
        if not isinstance(data, dict):
            self._unusable(file, f"expected a JSON object at the top level, got {_show(data)}")
            return
        known = [key for key in SNAPSHOT_KEYS if key in data]
        history = [key for key in HISTORY_KEYS if key in data]
        if history:
            try:
                self.history.read(data, path)
            except ValidationError as exc:
                raise _shape_error(path, exc) from None
            if not known:
                self._check_other_keys(path, data, set(history))
                return
        if not known and _ENTRIES_KEY in data:
            self._read_entries(file, data)
            return
        if not known:
            self._unusable(file, f"none of the known top-level keys ({', '.join(SNAPSHOT_KEYS)}, or Entries)")
            return
        self._check_other_keys(path, data, set(known) | set(history))
        try:
            document = _Document.model_validate({key: data[key] for key in known})
        except ValidationError as exc:
            raise _shape_error(path, exc) from None
        self.keys_seen.update(known)
        for group in document.security_groups:
            self._merge(self.groups, group.group_id, _security_group(group), path, "security group")
        for rule in document.security_group_rules:
            self._merge(
                self.rules,
                rule.security_group_rule_id,
                _security_group_rule(rule),
                path,
                "security-group rule",
            )
        for eni in document.network_interfaces:
            self._add_interface(eni, path)
        for prefix_list in document.prefix_lists:
            self._add_prefix_list(prefix_list, path)
        for flow_log in document.flow_logs:
            self._merge(self.flow_logs, flow_log.flow_log_id, _flow_log(flow_log), path, "flow log")
        for vpc in document.vpcs:
            self._merge(self.vpcs, vpc.vpc_id, _vpc(vpc), path, "VPC")

    def _unusable(self, file: _File, why: str) -> None:
        if file.named:
            raise InputError(f"{file.path}: not an inventory file: {why}", hint=_SHAPE_HINT)
        self.warnings.append(f"{file.path}: skipped, not an inventory file: {why}")

    def _check_other_keys(self, path: Path, data: dict[str, Any], used: set[str]) -> None:
        """Warn about data that is dropped (a typo such as SecurityGroup, a key of another command) and
        about a NextToken, which means the listing stops before its end."""
        for key in sorted(set(data) - used):
            value = data[key]
            if key == "NextToken" and value:
                self.warnings.append(
                    f"{path}: has a NextToken, so the listing is incomplete: add the next pages "
                    "(or run the AWS CLI without --max-items)"
                )
            elif key not in _METADATA_KEYS and isinstance(value, dict | list):
                self.warnings.append(f"{path}: ignored unknown top-level key {key!r}")

    def _read_entries(self, file: _File, data: dict[str, Any]) -> None:
        """``get-managed-prefix-list-entries`` output: the list id comes from the file name."""
        ids = sorted(set(_PREFIX_LIST_ID.findall(file.path.name)))
        if len(ids) != 1:
            self._unusable(
                file,
                "an Entries file (aws ec2 get-managed-prefix-list-entries) needs exactly one prefix-list id "
                f"in its name, e.g. {ids[0] if ids else 'pl-0123abcd'}.json; found "
                + (", ".join(ids) if ids else "none"),
            )
            return
        self._check_other_keys(file.path, data, {_ENTRIES_KEY})
        try:
            document = _EntriesDocument.model_validate({_ENTRIES_KEY: data[_ENTRIES_KEY]})
        except ValidationError as exc:
            raise _shape_error(file.path, exc) from None
        cidrs, paths = self.loose_entries.setdefault(ids[0], (set(), []))
        cidrs.update(entry.cidr for entry in document.entries)  # pages of one list: a union
        paths.append(file.path)

    def _merge(self, store: dict[str, _Seen[_T]], key: str, value: _T, path: Path, what: str) -> None:
        seen = store.get(key)
        if seen is None:
            store[key] = _Seen(value, path)
        elif seen.value != value:
            raise _conflict(what, key, seen.path, path, _differences(seen.value, value))

    def _add_interface(self, api: _NetworkInterface, path: Path) -> None:
        self._merge(self.interfaces, api.network_interface_id, _interface(api), path, "network interface")
        attachment = api.attachment
        if attachment is not None and attachment.instance_id and attachment.device_index == 0:
            self.primary_enis[attachment.instance_id] = api.network_interface_id
        if attachment is not None and attachment.attachment_id:
            self.attachments[attachment.attachment_id] = api.network_interface_id
        if api.ipv4_prefixes or api.ipv6_prefixes:
            self.warnings.append(
                f"{api.network_interface_id}: has delegated IP prefixes (Ipv4Prefixes/Ipv6Prefixes); "
                "traffic of addresses inside them is not attributed to this ENI"
            )

    def _add_prefix_list(self, api: _PrefixList, path: Path) -> None:
        base = PrefixList(api.prefix_list_id, api.prefix_list_name, api.address_family, api.owner_id,
                          api.max_entries, None)  # fmt: skip
        entries = None if api.entries is None else _entries(api.entries)
        seen = self.prefix_lists.get(api.prefix_list_id)
        if seen is None:
            self.prefix_lists[api.prefix_list_id] = _PrefixListSeen(
                base, path, entries, path if entries is not None else None
            )
            return
        if seen.base != base:
            raise _conflict("prefix list", api.prefix_list_id, seen.path, path, _differences(seen.base, base))
        if entries is None:
            return
        if seen.entries is None:  # a list without Entries and one with them: merged
            seen.entries, seen.entries_path = entries, path
        elif seen.entries != entries:
            raise _conflict(
                "prefix list", api.prefix_list_id, seen.entries_path or seen.path, path, ["Entries"]
            )

    # ---- building -------------------------------------------------------------------------------------

    def build(self) -> Inventory:
        prefix_lists = self._build_prefix_lists()
        has_rule_ids = "SecurityGroupRules" in self.keys_seen
        groups = self._build_groups(has_rule_ids)
        interfaces = {eni: self.interfaces[eni].value for eni in sorted(self.interfaces)}
        flow_logs = tuple(self.flow_logs[fl].value for fl in sorted(self.flow_logs))
        self._check_references(groups, interfaces, prefix_lists)
        history, history_warnings = self.history.build(interfaces, self.primary_enis, self.attachments)
        self.warnings.extend(history_warnings)
        return Inventory(
            groups=groups,
            interfaces=interfaces,
            prefix_lists=prefix_lists,
            flow_logs=flow_logs,
            has_rule_ids=has_rule_ids,
            warnings=tuple(dict.fromkeys(self.warnings)),
            vpcs={vpc_id: self.vpcs[vpc_id].value for vpc_id in sorted(self.vpcs)},
            history=history,
        )

    def _build_prefix_lists(self) -> dict[str, PrefixList]:
        for pl_id in sorted(self.loose_entries):
            cidrs, paths = self.loose_entries[pl_id]
            seen = self.prefix_lists.get(pl_id)
            names = ", ".join(str(path) for path in paths)
            if seen is None:
                self.warnings.append(
                    f"{names}: entries of {pl_id}, which no PrefixLists (describe-managed-prefix-lists) "
                    "describes: ignored"
                )
                continue
            entries = tuple(sorted(cidrs, key=_network_order))
            if seen.entries is None:
                seen.entries, seen.entries_path = entries, paths[0]
            elif seen.entries != entries:
                raise _conflict("prefix list", pl_id, seen.entries_path or seen.path, paths[0], ["Entries"])
        return {
            pl_id: dataclasses.replace(seen.base, entries=seen.entries)
            for pl_id, seen in sorted(self.prefix_lists.items())
        }

    def _build_groups(self, has_rule_ids: bool) -> dict[str, SecurityGroup]:
        """Groups with their rules: the union of SecurityGroupRules (with sgr ids) when present and the
        groups' own IpPermissions(Egress); otherwise the expanded IpPermissions(Egress), without ids."""
        by_group: dict[str, list[_Seen[SgRule]]] = {}
        for rule_id in sorted(self.rules):
            seen = self.rules[rule_id]
            by_group.setdefault(seen.value.group_id, []).append(seen)
        groups: dict[str, SecurityGroup] = {}
        for group_id in sorted(self.groups):
            group = self.groups[group_id].value
            if has_rule_ids:
                group = self._union_rules(group, [seen.value for seen in by_group.get(group_id, [])])
            groups[group_id] = group
        for group_id in sorted(set(by_group) - set(self.groups)):
            files = sorted({str(seen.path) for seen in by_group[group_id]})
            self.warnings.append(
                f"{group_id}: {len(by_group[group_id])} rules in SecurityGroupRules ({', '.join(files)}) "
                "but the group is not in SecurityGroups: ignored"
            )
        return groups

    def _union_rules(self, group: SecurityGroup, rules: list[SgRule]) -> SecurityGroup:
        """Every rule of either source, once per normalised key (the one with an sgr- id when both have
        it); each rule only one source has is named in a warning (DESIGN §4.3)."""
        if not rules:
            if group.egress or group.ingress:
                # Most likely describe-security-group-rules was filtered or lost a page: a group whose
                # rules all vanished between the two calls is rarer, and zero rules would be the riskier
                # reading (every flow "not permitted now").
                self.warnings.append(
                    f"{group.group_id}: no rules in SecurityGroupRules; using its IpPermissions and "
                    "IpPermissionsEgress, without sgr- ids"
                )
            return group
        union: dict[bool, list[SgRule]] = {}
        for egress, listed, source in ((True, group.egress, "IpPermissionsEgress"),
                                       (False, group.ingress, "IpPermissions")):  # fmt: skip
            with_ids = [rule for rule in rules if rule.egress == egress]
            theirs: set[RuleKey] = {rule.key() for rule in listed}
            ours: set[RuleKey] = {rule.key() for rule in with_ids}
            direction = "egress" if egress else "ingress"
            for rule in with_ids:
                if rule.key() not in theirs:
                    self.warnings.append(
                        f"{group.group_id}: {direction} rule {rule.rule_id} ({_describe_rule(rule)}) is in "
                        f"SecurityGroupRules but not in the group's {source}; both sources are read as "
                        "their union, so the rule is kept"
                    )
            only_listed = [rule for rule in listed if rule.key() not in ours]
            for rule in only_listed:
                self.warnings.append(
                    f"{group.group_id}: {direction} rule ({_describe_rule(rule)}) is in the group's "
                    f"{source} but not in SecurityGroupRules; both sources are read as their union, so "
                    "the rule is kept, without an sgr- id"
                )
            union[egress] = with_ids + list({rule.key(): rule for rule in only_listed}.values())
        return dataclasses.replace(
            group, egress=_sorted_rules(union[True]), ingress=_sorted_rules(union[False])
        )

    def _check_references(
        self,
        groups: dict[str, SecurityGroup],
        interfaces: dict[str, Interface],
        prefix_lists: dict[str, PrefixList],
    ) -> None:
        """Warn where the analysis will lack facts: missing kinds, and ids that the snapshot mentions but
        does not describe (an ENI's group, an egress rule's group or prefix list)."""
        for key in ("SecurityGroups", "NetworkInterfaces"):
            if key not in self.keys_seen:
                self.warnings.append(f"the snapshot has no {key}")
        if "SecurityGroups" in self.keys_seen:
            carriers: dict[str, list[str]] = {}
            for eni_id, eni in interfaces.items():
                for group_id in eni.group_ids:
                    if group_id not in groups:
                        carriers.setdefault(group_id, []).append(eni_id)
            for group_id in sorted(carriers):
                self.warnings.append(
                    f"{group_id}: carried by {', '.join(carriers[group_id])} but not in SecurityGroups"
                )
        referenced: dict[tuple[DestKind, str], set[str]] = {}
        for group in groups.values():
            for rule in group.egress:
                if rule.kind in (DestKind.SECURITY_GROUP, DestKind.PREFIX_LIST):
                    referenced.setdefault((rule.kind, rule.value), set()).add(group.group_id)
        for (kind, value), users in sorted(referenced.items()):
            by = ", ".join(sorted(users))
            if kind is DestKind.SECURITY_GROUP and value not in groups:
                self.warnings.append(
                    f"{value}: referenced by egress rules of {by} but not in SecurityGroups (another "
                    "account or VPC?): its members are unknown"
                )
            elif kind is DestKind.PREFIX_LIST and value not in prefix_lists:
                self.warnings.append(
                    f"{value}: referenced by egress rules of {by} but not in PrefixLists "
                    "(describe-managed-prefix-lists): its entries are unknown"
                )
            elif kind is DestKind.PREFIX_LIST and prefix_lists[value].entries is None:
                self.warnings.append(
                    f"{value}: referenced by egress rules of {by} but its entries were not captured "
                    f"(aws ec2 get-managed-prefix-list-entries --prefix-list-id {value} > {value}.json)"
                )


def _differences(old: Any, new: Any) -> list[str]:
    """Names of the dataclass fields that differ, for conflict messages."""
    return [
        item.name for item in dataclasses.fields(old) if getattr(old, item.name) != getattr(new, item.name)
    ]


def _conflict(what: str, key: str, first: Path, second: Path, fields: Sequence[str]) -> InputError:
    where = f"twice in {first}" if first == second else f"in {first} and {second}"
    differs = f" ({', '.join(fields)} differ)" if fields else ""
    return InputError(f"{what} {key} appears {where} with different content{differs}", hint=_CONFLICT_HINT)


# --------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------


def load_snapshot(paths: Sequence[Path]) -> Inventory:
    """Read an inventory snapshot (files and/or directories of AWS CLI JSON, DESIGN §4.3).

    Raises :class:`InputError` for a missing path, a file that is not JSON, a wrong shape (naming the file
    and the key path), an unusable file named directly, and conflicting duplicates; everything the
    analysis should know but can live with is in ``Inventory.warnings``.
    """
    if not paths:
        raise InputError(
            "no inventory snapshot given", hint="pass --inventory DIR (see sample_data/inventory)"
        )
    builder = _Builder()
    for file in _discover(paths):
        builder.read(file)
    return builder.build()


def load_snapshot_documents(documents: Iterable[tuple[Path, object]]) -> Inventory:
    """The inventory of snapshot documents already parsed from JSON, each with the path its messages name
    it by: exactly what :func:`load_snapshot` gives for files of that content, in that order (by path).
    AWS mode reads what ``collect`` would write (EC2 documents, fetched ENI history) through here."""
    builder = _Builder()
    for path, data in sorted(documents, key=lambda pair: str(pair[0])):
        builder.read_data(data, _File(path, named=True))
    return builder.build()
