"""Read ENI history from AWS Config items and CloudTrail events (DESIGN §4.3, §6 "Identity over time").

Accepted shapes, recognised by their top-level key like every snapshot file:

* ``{"configurationItems": [...]}`` — ``aws configservice get-resource-config-history`` output
  (``configuration`` is a JSON *string*, ``configurationItemCaptureTime`` ISO text or epoch seconds as the
  CLI version prints them, relationships carry ``relationshipName``) and the ConfigHistory files Config
  delivers to S3 (``AWSLogs/<acct>/Config/<region>/<y>/<m>/<d>/ConfigHistory/*.json.gz``: ``fileVersion``,
  ``configuration`` an *object*, relationships carry ``name``). Only ``AWS::EC2::NetworkInterface`` items
  are read. Shapes as in the AWS Config developer guide ("Viewing Configuration Details", which shows both
  the CLI output and an S3 history file) and real ENI items (aws-solutions/workload-discovery-on-aws,
  source/backend/functions/api/tests/: a NAT-gateway ENI's ``configuration`` with ``groups``,
  ``privateIpAddresses``, ``ipv6Addresses``, ``interfaceType``, ``requesterManaged``, ``attachment``).
* ``{"Events": [...]}`` — ``aws cloudtrail lookup-events`` output, each event's record in the
  ``CloudTrailEvent`` JSON string; ``{"Records": [...]}`` — CloudTrail's S3 log files (gzip). Only EC2
  events that create, change, attach or delete ENIs are read; events with an ``errorCode`` are ignored.

A record's identity is its own (Config: resourceId + configurationStateId, else + capture time;
CloudTrail: eventID), so the same record in two files (a CLI page and an S3 delivery) is read once; the
same identity with different content is an error naming both files.

Shape errors in what is read are pydantic ValidationErrors located from the top of the file (the caller
turns them into ``file: key.path: expected …``); unexpected content inside CloudTrail's free-form
``requestParameters``/``responseElements`` is an :class:`InputError` naming the file and key too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from sgadvisor.errors import InputError
from sgadvisor.inventory.history import (
    DETACHED,
    STATE_FIELDS,
    EniHistories,
    EniHistory,
    EniState,
    HistorySource,
)
from sgadvisor.inventory.model import Interface
from sgadvisor.inventory.validators import address_order, aws_id, canonical_address
from sgadvisor.jsonload import load_json_text

__all__ = ["HISTORY_KEYS", "HistoryFiles", "window_warnings"]

CONFIG_KEY: Final = "configurationItems"
LOOKUP_KEY: Final = "Events"
TRAIL_KEY: Final = "Records"
HISTORY_KEYS: Final = (CONFIG_KEY, LOOKUP_KEY, TRAIL_KEY)

ENI_TYPE: Final = "AWS::EC2::NetworkInterface"
_DELETED_STATUSES: Final = frozenset({"ResourceDeleted", "ResourceDeletedNotRecorded"})
_EVENTS: Final = frozenset(
    {
        "CreateNetworkInterface",
        "RunInstances",
        "TerminateInstances",
        "ModifyNetworkInterfaceAttribute",
        "ModifyInstanceAttribute",
        "AttachNetworkInterface",
        "DetachNetworkInterface",
        "AssignPrivateIpAddresses",
        "UnassignPrivateIpAddresses",
        "AssignIpv6Addresses",
        "UnassignIpv6Addresses",
        "DeleteNetworkInterface",
    }
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------------
# Validators
# --------------------------------------------------------------------------------------------------------


def _epoch_seconds(value: object) -> object:
    """ISO 8601 text (``Z``, offsets, fractions; naive = UTC) or epoch seconds (the AWS CLI v1 prints
    ``1414708529.922``) → whole epoch seconds, rounded down."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("expected an ISO 8601 time or epoch seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(seconds=1)
    if isinstance(value, float) and value == value and abs(value) < 1e12:  # not NaN, not absurd
        return int(value // 1)
    return value


def _text(value: object) -> object:
    """``configurationStateId`` is text in the API and a number in S3 deliveries: compare it as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _embedded_json(value: object) -> object:
    """The Config CLI's ``configuration`` and lookup-events' ``CloudTrailEvent`` are JSON in a string."""
    if not isinstance(value, str):
        return value
    try:
        return load_json_text(value, source="embedded JSON")
    except (json.JSONDecodeError, InputError):
        raise ValueError("expected a JSON document in a string") from None


_Epoch = Annotated[int, BeforeValidator(_epoch_seconds)]
_Text = Annotated[str, BeforeValidator(_text)]
_EniId = Annotated[str, BeforeValidator(lambda v: aws_id("eni-")(v) if isinstance(v, str) else v)]
_GroupId = Annotated[str, BeforeValidator(lambda v: aws_id("sg-")(v) if isinstance(v, str) else v)]
_Address = Annotated[str, BeforeValidator(lambda v: canonical_address(v) if isinstance(v, str) else v)]


# --------------------------------------------------------------------------------------------------------
# AWS Config shapes (camelCase, as both the CLI and S3 deliveries spell them)
# --------------------------------------------------------------------------------------------------------


class _Config(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", alias_generator=to_camel, frozen=True)


class _Relationship(_Config):
    resource_type: str | None = None
    resource_id: str | None = None
    relationship_name: str | None = None  # get-resource-config-history
    name: str | None = None  # ConfigHistory files in S3


class _CfgGroup(_Config):
    group_id: _GroupId


class _CfgPrivateIp(_Config):
    private_ip_address: _Address
    primary: bool = False


class _CfgIpv6(_Config):
    ipv6_address: _Address


class _CfgAttachment(_Config):
    instance_id: str | None = None
    device_index: int | None = None
    attachment_id: str | None = None


class _EniConfiguration(_Config):
    network_interface_id: _EniId | None = None
    groups: list[_CfgGroup] | None = None
    private_ip_address: _Address | None = None
    private_ip_addresses: list[_CfgPrivateIp] | None = None
    ipv6_addresses: list[_CfgIpv6] | None = None
    interface_type: str | None = None
    requester_managed: bool | None = None
    description: str | None = None
    subnet_id: str | None = None
    vpc_id: str | None = None
    attachment: _CfgAttachment | None = None


class _ConfigItem(_Config):
    resource_type: str
    resource_id: _EniId
    configuration_item_capture_time: _Epoch
    configuration_item_status: str = "OK"
    configuration_state_id: _Text | None = None
    resource_creation_time: _Epoch | None = None
    relationships: list[_Relationship] = Field(default_factory=list)
    configuration: Annotated[_EniConfiguration | None, BeforeValidator(_embedded_json)] = None


# --------------------------------------------------------------------------------------------------------
# CloudTrail shapes
# --------------------------------------------------------------------------------------------------------


class _TrailEvent(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event_id: str = Field(alias="eventID")
    event_time: _Epoch = Field(alias="eventTime")
    event_name: str = Field(alias="eventName")
    event_source: str | None = Field(None, alias="eventSource")
    error_code: str | None = Field(None, alias="errorCode")
    request_parameters: dict[str, Any] | None = Field(None, alias="requestParameters")
    response_elements: dict[str, Any] | None = Field(None, alias="responseElements")


class _LookupEvent(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event_id: str | None = Field(None, alias="EventId")
    cloud_trail_event: Annotated[_TrailEvent, BeforeValidator(_embedded_json)] = Field(
        alias="CloudTrailEvent"
    )


def _located(error: ValidationError, *prefix: str | int) -> ValidationError:
    """The same errors, located from the top of the file."""
    return ValidationError.from_exception_data(
        error.title,
        [{**item, "loc": (*prefix, *item["loc"])} for item in error.errors(include_url=False)],  # type: ignore[typeddict-unknown-key]
    )


# --------------------------------------------------------------------------------------------------------
# Observations: what one record says about one ENI
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Patch:
    """Fields a record sets (None = untouched), and address changes relative to the state before."""

    values: tuple[tuple[str, object], ...] = ()  # (EniState field, value)
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    forget_addresses: bool = False  # addresses changed in a way the record does not spell out


@dataclass(frozen=True)
class _Observation:
    time: int
    record: str  # the record's identity (HistorySource.record)
    what: str  # Config status or CloudTrail event name
    eni: str | None = None
    instance: str | None = None  # the ENI is this instance's primary ENI (resolved when building)
    attachment: str | None = None  # the ENI is the one with this attachment id (resolved when building)
    full: bool = False  # a Config item: the whole state as Config recorded it
    patch: _Patch | None = None
    created: int | None = None  # the ENI's creation time, where the record says it
    deleted: bool = False
    discovered: bool = False  # Config's ResourceDiscovered: its first record of the resource
    primary_of: str | None = None  # the ENI is the primary (device 0) ENI of this instance
    attachment_id: str | None = None  # the ENI's attachment id at this time

    @property
    def kind(self) -> str:
        return "Config" if self.record.startswith("config ") else "CloudTrail"


def _state_values(
    groups: Iterable[str] | None,
    primary: str | None,
    addresses: Iterable[str] | None,
    **others: object,
) -> tuple[tuple[str, object], ...]:
    values: dict[str, object] = {
        "group_ids": None if groups is None else tuple(sorted(set(groups))),
        "addresses": None if addresses is None else _ordered_addresses(primary, addresses),
        **others,
    }
    return tuple((name, values[name]) for name in STATE_FIELDS if values.get(name) is not None)


def _ordered_addresses(primary: str | None, addresses: Iterable[str]) -> tuple[str, ...]:
    """The primary private IPv4 first, then the others sorted (as the inventory's Interface)."""
    rest = sorted(set(addresses) - {primary} if primary else set(addresses), key=address_order)
    return ((primary,) if primary else ()) + tuple(rest)


def _config_observation(item: _ConfigItem) -> _Observation:
    identity = item.configuration_state_id or str(item.configuration_item_capture_time)
    base = _Observation(
        time=item.configuration_item_capture_time,
        record=f"config {item.resource_id} {identity}",
        what=item.configuration_item_status,
        eni=item.resource_id,
        created=item.resource_creation_time,
        discovered=item.configuration_item_status == "ResourceDiscovered",
    )
    if item.configuration_item_status in _DELETED_STATUSES:
        return dataclasses.replace(base, deleted=True)
    config = item.configuration
    if config is None:  # ResourceNotRecorded and the like: alive, nothing more
        return base
    related_groups = [rel.resource_id for rel in item.relationships
                      if rel.resource_type == "AWS::EC2::SecurityGroup" and rel.resource_id]  # fmt: skip
    groups = [group.group_id for group in config.groups] if config.groups is not None else related_groups
    primary = config.private_ip_address
    addresses: list[str] | None = None
    if config.private_ip_addresses is not None or config.ipv6_addresses is not None:
        addresses = [ip.private_ip_address for ip in config.private_ip_addresses or ()]
        addresses += [ip.ipv6_address for ip in config.ipv6_addresses or ()]
        primary = primary or next((ip.private_ip_address for ip in config.private_ip_addresses or ()
                                   if ip.primary), None)  # fmt: skip
        addresses += [primary] if primary else []
    elif primary is not None:
        addresses = [primary]
    attachment = config.attachment
    instance = DETACHED if attachment is None else (attachment.instance_id or DETACHED)
    return dataclasses.replace(
        base,
        full=True,
        patch=_Patch(
            _state_values(
                groups,
                primary,
                addresses,
                vpc_id=config.vpc_id,
                subnet_id=config.subnet_id,
                interface_type=config.interface_type,
                requester_managed=config.requester_managed,
                description=config.description,
                instance_id=instance,
            )
        ),
        primary_of=attachment.instance_id if attachment and attachment.device_index == 0 else None,
        attachment_id=attachment.attachment_id if attachment else None,
    )


# ---- CloudTrail payloads: free-form JSON, read leniently but type-checked ---------------------------------


class _Payload:
    """Typed reads from requestParameters/responseElements; wrong types are InputErrors with the key."""

    def __init__(self, path: Path, where: str) -> None:
        self.path, self.where = path, where

    def fail(self, loc: str, expected: str, value: object) -> InputError:
        shown = json.dumps(value)[:60] if not isinstance(value, dict | list) else "an object or list"
        return InputError(
            f"{self.path}: {self.where}.{loc}: expected {expected}, got {shown}",
            hint="the history files take CloudTrail's records unmodified (lookup-events output or S3 logs)",
        )

    def text(self, data: Mapping[str, Any], key: str, loc: str, prefix: str = "") -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{loc}.{key}", "a string", value)
        if prefix and (not value.startswith(prefix) or value == prefix):
            raise self.fail(f"{loc}.{key}", f"an id starting with {prefix}", value)
        return value

    def obj(self, data: Mapping[str, Any], key: str, loc: str) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{loc}.{key}", "an object", value)
        return value

    def items(self, data: Mapping[str, Any], key: str, loc: str) -> list[tuple[str, Any]]:
        """A CloudTrail set: ``{"items": [...]}`` (or ``item``, or one list under another name), or a
        plain list; ``{}`` is empty. Returns (location, element) pairs."""
        value = data.get(key)
        where = f"{loc}.{key}"
        if value is None:
            return []
        if isinstance(value, list):
            return [(f"{where}[{i}]", item) for i, item in enumerate(value)]
        if not isinstance(value, dict):
            raise self.fail(where, "a list or an object holding one", value)
        lists = [(name, inner) for name, inner in value.items() if isinstance(inner, list)]
        if not lists:
            return []
        name, inner = next(((n, v) for n, v in lists if n in ("items", "item")), lists[0])
        return [(f"{where}.{name}[{i}]", item) for i, item in enumerate(inner)]

    def addresses(self, data: Mapping[str, Any], key: str, loc: str, field_name: str) -> list[str]:
        """Addresses in a set whose elements are ``{field_name: "…"}`` or plain strings."""
        out = []
        for where, item in self.items(data, key, loc):
            value = item.get(field_name) if isinstance(item, dict) else item
            if value is None:
                continue
            if not isinstance(value, str):
                raise self.fail(where, "an IP address", value)
            try:
                out.append(canonical_address(value))
            except ValueError:
                raise self.fail(where, "an IP address", value) from None
        return out

    def groups(self, data: Mapping[str, Any], key: str, loc: str) -> list[str] | None:
        if key not in data:
            return None
        out = []
        for where, item in self.items(data, key, loc):
            value = item.get("groupId") if isinstance(item, dict) else item
            if not isinstance(value, str) or not value.startswith("sg-"):
                raise self.fail(where + (".groupId" if isinstance(item, dict) else ""), "a group id", value)
            out.append(value)
        return out


def _interface_observation(
    payload: _Payload, eni: Mapping[str, Any], loc: str, base: _Observation, instance: str | None
) -> _Observation:
    """An ENI as CreateNetworkInterface and RunInstances describe it."""
    eni_id = payload.text(eni, "networkInterfaceId", loc, "eni-")
    if eni_id is None:
        raise payload.fail(f"{loc}.networkInterfaceId", "an ENI id", None)
    primary = payload.text(eni, "privateIpAddress", loc)
    primary = canonical_address(primary) if primary else None
    addresses = payload.addresses(eni, "privateIpAddressesSet", loc, "privateIpAddress")
    addresses += payload.addresses(eni, "ipv6AddressesSet", loc, "ipv6Address")
    addresses += [primary] if primary else []
    attachment = payload.obj(eni, "attachment", loc)
    requester = eni.get("requesterManaged")
    device = attachment.get("deviceIndex")
    return dataclasses.replace(
        base,
        eni=eni_id,
        created=base.time,
        patch=_Patch(
            _state_values(
                payload.groups(eni, "groupSet", loc),
                primary,
                addresses,
                vpc_id=payload.text(eni, "vpcId", loc),
                subnet_id=payload.text(eni, "subnetId", loc),
                interface_type=payload.text(eni, "interfaceType", loc),
                requester_managed=requester if isinstance(requester, bool) else None,
                description=payload.text(eni, "description", loc),
                instance_id=instance or DETACHED,
            )
        ),
        primary_of=instance if instance and device == 0 else None,
        attachment_id=payload.text(attachment, "attachmentId", f"{loc}.attachment"),
    )


def _trail_observations(event: _TrailEvent, path: Path, where: str) -> list[_Observation]:
    """What one successful CloudTrail event says about ENIs."""
    name = event.event_name
    payload = _Payload(path, where)
    request = event.request_parameters or {}
    response = event.response_elements or {}
    rq, rs = "requestParameters", "responseElements"
    base = _Observation(time=event.event_time, record=f"cloudtrail {event.event_id}", what=name)
    if name == "CreateNetworkInterface":
        eni = payload.obj(response, "networkInterface", rs)
        if not eni:
            return []
        return [_interface_observation(payload, eni, f"{rs}.networkInterface", base, None)]
    if name == "RunInstances":
        # ENIs named in the request already existed: RunInstances attaches them, it does not create them.
        asked = payload.items(request, "networkInterfaceSet", rq)
        existing = {item.get("networkInterfaceId") for _, item in asked if isinstance(item, dict)}
        out = []
        for loc, instance in payload.items(response, "instancesSet", rs):
            if not isinstance(instance, dict):
                raise payload.fail(loc, "an object", instance)
            instance_id = payload.text(instance, "instanceId", loc, "i-")
            for eni_loc, eni in payload.items(instance, "networkInterfaceSet", loc):
                if not isinstance(eni, dict):
                    raise payload.fail(eni_loc, "an object", eni)
                seen = _interface_observation(payload, eni, eni_loc, base, instance_id)
                if seen.eni in existing:
                    patch = _Patch((("instance_id", instance_id or DETACHED),))
                    seen = dataclasses.replace(seen, created=None, patch=patch)
                out.append(seen)
        return out
    if name == "TerminateInstances":
        ids = [item.get("instanceId") for _, item in payload.items(request, "instancesSet", rq)
               if isinstance(item, dict)]  # fmt: skip
        return [dataclasses.replace(base, instance=i, deleted=True) for i in ids if isinstance(i, str)]
    if name in ("ModifyNetworkInterfaceAttribute", "ModifyInstanceAttribute"):
        groups = payload.groups(request, "groupSet", rq)
        values: list[tuple[str, object]] = []
        if groups is not None:
            values.append(("group_ids", tuple(sorted(set(groups)))))
        description = request.get("description")
        if name == "ModifyNetworkInterfaceAttribute" and isinstance(description, dict):
            text = payload.text(description, "value", f"{rq}.description")
            if text is not None:
                values.append(("description", text))
        if not values:
            return []
        values.sort(key=lambda pair: STATE_FIELDS.index(pair[0]))
        if name == "ModifyInstanceAttribute":  # the groups of the instance's primary ENI
            instance = payload.text(request, "instanceId", rq, "i-")
            return (
                [dataclasses.replace(base, instance=instance, patch=_Patch(tuple(values)))]
                if instance
                else []
            )
        eni_id = payload.text(request, "networkInterfaceId", rq, "eni-")
        return [dataclasses.replace(base, eni=eni_id, patch=_Patch(tuple(values)))] if eni_id else []
    if name == "AttachNetworkInterface":
        eni_id = payload.text(request, "networkInterfaceId", rq, "eni-")
        instance = payload.text(request, "instanceId", rq, "i-")
        if not eni_id or not instance:
            return []
        return [dataclasses.replace(
            base, eni=eni_id, patch=_Patch((("instance_id", instance),)),
            primary_of=instance if request.get("deviceIndex") == 0 else None,
            attachment_id=payload.text(response, "attachmentId", rs),
        )]  # fmt: skip
    if name == "DetachNetworkInterface":
        attachment = payload.text(request, "attachmentId", rq)
        if not attachment:
            return []
        return [dataclasses.replace(base, attachment=attachment, patch=_Patch((("instance_id", DETACHED),)))]
    if name in ("AssignPrivateIpAddresses", "UnassignPrivateIpAddresses",
                "AssignIpv6Addresses", "UnassignIpv6Addresses"):  # fmt: skip
        eni_id = payload.text(request, "networkInterfaceId", rq, "eni-")
        if not eni_id:
            return []
        ipv6 = "Ipv6" in name
        field_name = "ipv6Address" if ipv6 else "privateIpAddress"
        request_keys = ("ipv6Addresses", "ipv6AddressesSet") if ipv6 else \
            ("privateIpAddressesSet", "privateIpAddress")  # fmt: skip
        listed = [a for key in request_keys for a in payload.addresses(request, key, rq, field_name)]
        if name.startswith("Assign") and not listed:  # a count was asked for: the response names them
            keys = ("assignedIpv6Addresses",) if ipv6 else ("assignedPrivateIpAddressesSet",)
            listed = [a for key in keys for a in payload.addresses(response, key, rs, field_name)]
        if not listed:
            return [dataclasses.replace(base, eni=eni_id, patch=_Patch(forget_addresses=True))]
        change = _Patch(add=tuple(listed)) if name.startswith("Assign") else _Patch(remove=tuple(listed))
        return [dataclasses.replace(base, eni=eni_id, patch=change)]
    if name == "DeleteNetworkInterface":
        eni_id = payload.text(request, "networkInterfaceId", rq, "eni-")
        return [dataclasses.replace(base, eni=eni_id, deleted=True)] if eni_id else []
    return []


# --------------------------------------------------------------------------------------------------------
# Accumulating files, then building histories
# --------------------------------------------------------------------------------------------------------


@dataclass
class HistoryFiles:
    """Reads history files into observations (de-duplicated by record identity), then builds histories."""

    records: dict[str, tuple[tuple[_Observation, ...], Path]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def read(self, data: Mapping[str, Any], path: Path) -> None:
        """Read every history key of one file. Raises ValidationError (located from the top of the file)
        or InputError."""
        if CONFIG_KEY in data:
            self._read_config(data[CONFIG_KEY], path)
            if data.get("nextToken"):
                self.warnings.append(
                    f"{path}: has a nextToken, so the configuration history is incomplete: add the next pages"
                )
        if LOOKUP_KEY in data:
            self._read_lookup(data[LOOKUP_KEY], path)
        if TRAIL_KEY in data:
            self._read_trail(data[TRAIL_KEY], path)

    def _list(self, value: object, key: str) -> list[Any]:
        if not isinstance(value, list):
            raise ValidationError.from_exception_data(
                "history", [{"type": "list_type", "loc": (key,), "input": value}]
            )
        return value

    def _read_config(self, value: object, path: Path) -> None:
        items = self._list(value, CONFIG_KEY)
        used = 0
        for index, raw in enumerate(items):
            if not isinstance(raw, dict):
                raise ValidationError.from_exception_data(
                    "history", [{"type": "dict_type", "loc": (CONFIG_KEY, index), "input": raw}]
                )
            if raw.get("resourceType") != ENI_TYPE:
                continue
            try:
                item = _ConfigItem.model_validate(raw)
            except ValidationError as exc:
                raise _located(exc, CONFIG_KEY, index) from None
            used += 1
            observation = _config_observation(item)
            self._add(observation.record, (observation,), path)
        if items and not used:
            self.warnings.append(f"{path}: no {ENI_TYPE} configuration items: nothing used")

    def _read_lookup(self, value: object, path: Path) -> None:
        for index, raw in enumerate(self._list(value, LOOKUP_KEY)):
            if not isinstance(raw, dict):
                raise ValidationError.from_exception_data(
                    "history", [{"type": "dict_type", "loc": (LOOKUP_KEY, index), "input": raw}]
                )
            if raw.get("EventName") is not None and raw.get("EventName") not in _EVENTS:
                continue
            try:
                event = _LookupEvent.model_validate(raw).cloud_trail_event
            except ValidationError as exc:
                raise _located(exc, LOOKUP_KEY, index) from None
            self._event(event, path, f"{LOOKUP_KEY}[{index}].CloudTrailEvent")

    def _read_trail(self, value: object, path: Path) -> None:
        for index, raw in enumerate(self._list(value, TRAIL_KEY)):
            if not isinstance(raw, dict):
                raise ValidationError.from_exception_data(
                    "history", [{"type": "dict_type", "loc": (TRAIL_KEY, index), "input": raw}]
                )
            if raw.get("eventName") not in _EVENTS or raw.get("eventSource", "ec2.amazonaws.com") != \
                    "ec2.amazonaws.com":  # fmt: skip
                continue
            try:
                event = _TrailEvent.model_validate(raw)
            except ValidationError as exc:
                raise _located(exc, TRAIL_KEY, index) from None
            self._event(event, path, f"{TRAIL_KEY}[{index}]")

    def _event(self, event: _TrailEvent, path: Path, where: str) -> None:
        if event.error_code or event.event_name not in _EVENTS:
            return
        if event.event_source not in (None, "ec2.amazonaws.com"):
            return
        self._add(f"cloudtrail {event.event_id}", tuple(_trail_observations(event, path, where)), path)

    def _add(self, key: str, observations: tuple[_Observation, ...], path: Path) -> None:
        seen = self.records.get(key)
        if seen is None:
            self.records[key] = (observations, path)
        elif seen[0] != observations:
            where = f"twice in {seen[1]}" if seen[1] == path else f"in {seen[1]} and {path}"
            raise InputError(
                f"history record {key.split(' ', 1)[1]} appears {where} with different content",
                hint="a record's identity (Config: resourceId + configurationStateId; CloudTrail: eventID) "
                "names one record: check that the files come from the same account and were not edited",
            )

    # ---- building ---------------------------------------------------------------------------------------

    def build(
        self,
        interfaces: Mapping[str, Interface],
        primary_enis: Mapping[str, str],
        attachments: Mapping[str, str],
    ) -> tuple[EniHistories, list[str]]:
        """Histories by ENI, and warnings: contradicting sources, records after a deletion, events whose
        ENI cannot be told, and histories whose last state disagrees with the inventory."""
        warnings = list(self.warnings)
        observations = [
            (obs, HistorySource(str(path), obs.record, obs.what))
            for key in sorted(self.records)
            for observed, path in [self.records[key]]
            for obs in observed
        ]
        primary = dict(primary_enis)
        attached = dict(attachments)
        for obs, _ in sorted(observations, key=lambda pair: (pair[0].time, pair[0].record)):
            if obs.eni and obs.primary_of:
                primary[obs.primary_of] = obs.eni
            if obs.eni and obs.attachment_id:
                attached[obs.attachment_id] = obs.eni
        by_eni: dict[str, list[tuple[_Observation, HistorySource]]] = {}
        unresolved: dict[str, set[str]] = {}
        for obs, source in observations:
            eni = obs.eni
            if eni is None and obs.instance is not None:
                eni = primary.get(obs.instance)
            if eni is None and obs.attachment is not None:
                eni = attached.get(obs.attachment)
            if eni is None:
                if obs.instance or obs.attachment:
                    unresolved.setdefault(obs.what, set()).add(obs.instance or obs.attachment or "")
                continue
            by_eni.setdefault(eni, []).append((dataclasses.replace(obs, eni=eni), source))
        for what in sorted(unresolved):
            names = sorted(unresolved[what])
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            warnings.append(
                f"{len(names)} {what} event(s) name an instance or attachment whose ENI no RunInstances, "
                f"AttachNetworkInterface, Config item or inventory attachment tells ({shown}): ignored"
            )
        histories = {eni: _fold(eni, by_eni[eni], warnings) for eni in sorted(by_eni)}
        warnings.extend(_against_inventory(histories, interfaces))
        return EniHistories(histories), warnings


_ORDER: Final = {"created": 0, "full": 1, "patch": 2, "deleted": 3}


def _rank(obs: _Observation) -> int:
    if obs.deleted:
        return _ORDER["deleted"]
    if obs.created is not None and obs.kind == "CloudTrail":
        return _ORDER["created"]
    return _ORDER["full"] if obs.full else _ORDER["patch"]


def _describe(source: HistorySource, time: int) -> str:
    kind, identity = source.record.split(" ", 1)
    what = f"{source.what} " if source.what else ""
    return f"{'Config' if kind == 'config' else 'CloudTrail'} {what}at {iso(time)} ({source.file})" \
        if kind == "config" else f"CloudTrail {what}{identity} at {iso(time)} ({source.file})"  # fmt: skip


def _show_value(value: object) -> str:
    if value is None:
        return "unknown"
    if value == DETACHED:
        return "no instance"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "none"
    return str(value)


def _fold(eni: str, seen: list[tuple[_Observation, HistorySource]], warnings: list[str]) -> EniHistory:
    """One ENI's observations in time order → its states, creation and deletion."""
    seen = sorted(seen, key=lambda pair: (pair[0].time, _rank(pair[0]), pair[0].record))
    current: dict[str, object] = dict.fromkeys(STATE_FIELDS)
    setter: dict[str, tuple[_Observation, HistorySource]] = {}
    states: list[EniState] = []
    created: int | None = None
    deleted: tuple[int, HistorySource] | None = None
    first_discovered = False
    for obs, source in seen:
        if obs.created is not None:
            created = obs.created if created is None else min(created, obs.created)
        if obs.deleted:
            if deleted is None or obs.time < deleted[0]:
                deleted = (obs.time, source)
            continue
        if obs.patch is None:
            continue
        if deleted is not None and obs.time > deleted[0]:
            warnings.append(
                f"{eni}: {_describe(source, obs.time)} records it after its deletion "
                f"({_describe(deleted[1], deleted[0])}): ignored"
            )
            continue
        values = dict(obs.patch.values)
        if obs.full:
            clashes = [
                (name, setter[name]) for name, value in values.items()
                if name in setter and setter[name][0].kind == "CloudTrail" and current[name] is not None
                and current[name] != value
            ]  # fmt: skip
            for name, (prior, prior_source) in clashes:
                warnings.append(
                    f"{eni}: {_describe(source, obs.time)} says {name.replace('_', ' ')} "
                    f"{_show_value(values[name])}, but {_describe(prior_source, prior.time)} set "
                    f"{_show_value(current[name])} and no record after it says so; Config's state is "
                    f"used from {iso(obs.time)}"
                )
        for name, value in values.items():
            current[name] = value
            setter[name] = (obs, source)
        addresses = current["addresses"]
        if obs.patch.forget_addresses:
            current["addresses"] = None
        elif (obs.patch.add or obs.patch.remove) and isinstance(addresses, tuple):
            kept = [a for a in addresses if a not in obs.patch.remove]
            primary = kept[0] if kept and addresses and kept[0] == addresses[0] else None
            current["addresses"] = _ordered_addresses(primary, [*kept, *obs.patch.add])
        state = EniState(start=obs.time, source=source, **current)  # type: ignore[arg-type]
        if not states:
            first_discovered = obs.full and obs.discovered
        if states and states[-1].same_facts(state):
            continue
        if states and states[-1].start == state.start:
            states[-1] = state
        else:
            states.append(state)
    if created is not None:
        early = [state for state in states if state.start < created]
        if early:  # clock skew: nothing before the creation
            states = [dataclasses.replace(early[-1], start=created)] + [
                s for s in states if s.start >= created
            ]
        elif states and first_discovered and states[0].start > created:
            # Config's first record of a resource it just discovered: the ENI was so since its creation.
            states[0] = dataclasses.replace(states[0], start=created)
    if deleted is not None:
        states = [state for state in states if state.start < deleted[0]]
    sources = tuple(sorted({source for _, source in seen}))
    return EniHistory(eni, created, None if deleted is None else deleted[0], tuple(states), sources)


def _against_inventory(histories: Mapping[str, EniHistory], interfaces: Mapping[str, Interface]) -> list[str]:
    """The inventory says what an ENI is now: the history's last state should agree (DESIGN §4.3)."""
    out = []
    for eni in sorted(set(histories) & set(interfaces)):
        history, itf = histories[eni], interfaces[eni]
        if history.deleted is not None:
            out.append(
                f"{eni}: the history says it was deleted at {iso(history.deleted)}, "
                "but the inventory lists it"
            )
            continue
        last = history.last_state
        if last is None:
            continue
        now: dict[str, object] = {
            "group_ids": itf.group_ids,
            "addresses": tuple(sorted(itf.addresses, key=address_order)),
            "vpc_id": itf.vpc_id,
            "subnet_id": itf.subnet_id,
            "interface_type": itf.interface_type,
            "requester_managed": itf.requester_managed,
            "description": itf.description,
            "instance_id": itf.instance_id or DETACHED,
        }
        differs = []
        for name in STATE_FIELDS:
            ours = getattr(last, name)
            if name == "addresses" and ours is not None:
                ours = tuple(sorted(ours, key=address_order))
            if ours is not None and now[name] is not None and ours != now[name]:
                differs.append(f"{name.replace('_', ' ')} {_show_value(ours)} vs {_show_value(now[name])}")
        if differs:
            where = _describe(last.source, last.start) if last.source else iso(last.start)
            out.append(
                f"{eni}: the history's last state ({where}) disagrees with the inventory: "
                f"{'; '.join(differs)}; the inventory is taken as the current state"
            )
    return out


def window_warnings(histories: Mapping[str, EniHistory], window_start: int, window_end: int) -> list[str]:
    """Warnings for the ENIs whose history does not tell their groups over all of their life in the
    window (most often: it does not reach back over the window's start)."""
    out = []
    for eni in sorted(histories):
        history = histories[eni]
        life = history.life_in(window_start, window_end)
        gaps = history.unknown_groups_during(window_start, window_end)
        if life is not None and gaps:
            spans = ", ".join(f"{iso(lo)} to {iso(hi)}" for lo, hi in gaps)
            reach = (
                " (the history does not reach back over the window's start)" if gaps[0][0] == life[0] else ""
            )
            out.append(f"{eni}: its groups are unknown from {spans}{reach}")
    return out
