"""A local AWS Config + CloudTrail endpoint for tests: ENI history fixtures on the real JSON 1.1 wire.

moto (5.2) does not serve ENI history usefully (DESIGN §8): its Config backend records only S3, IAM and
SNS resources, so ``GetResourceConfigHistory`` of an ``AWS::EC2::NetworkInterface`` is always
``ResourceNotDiscoveredException`` and ``ListDiscoveredResources`` is empty; its CloudTrail backend does not
implement ``LookupEvents`` at all (HTTP 500, NotImplementedError). So this small threaded HTTP server
stands in for ``config.<region>.amazonaws.com`` and ``cloudtrail.<region>.amazonaws.com`` at once; boto3
reaches it through ``endpoint_url`` (``AWS_ENDPOINT_URL_CONFIG_SERVICE``: botocore names it after the service
id "Config Service"; and ``AWS_ENDPOINT_URL_CLOUDTRAIL``)::

    with HistoryServer() as server:
        server.add_config_item("eni-1", 1_700_000_000, configuration=eni_configuration("eni-1", "10.0.1.5"))
        server.add_event("CreateNetworkInterface", 1_700_000_000, resources=[("AWS::EC2::NetworkInterface",
                         "eni-2")], detail={...})
        config = server.client("config")

Protocol (AWS JSON 1.1, as botocore's ``config/2014-11-12`` and ``cloudtrail/2013-11-01`` service models
say): ``POST /`` with ``X-Amz-Target: StarlingDoveService.<Operation>`` (Config) or
``com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Operation>`` (CloudTrail); timestamps are epoch
seconds on the wire; errors are HTTP 400 ``{"__type": code, "message": …}``. Signatures are not checked.

Operations and the service rules they keep:

* ``GetResourceConfigHistory`` — items whose capture time lies in [earlierTime, laterTime] (laterTime
  defaults to now, earlierTime to the first item), ``chronologicalOrder`` Reverse (default) or Forward,
  ``limit`` default 10 and at most 100 (InvalidLimitException), ``nextToken`` bound to the request
  (InvalidNextTokenException otherwise), earlierTime after laterTime is InvalidTimeRangeException; an ENI
  Config never recorded (or every ENI, with :attr:`records_enis` False) is ResourceNotDiscoveredException.
* ``ListDiscoveredResources`` — the recorded resources of a type, sorted by id, ``limit`` default and
  at most 100, deleted ones (their last item ``ResourceDeleted``) only with ``includeDeletedResources``,
  ``resourceIds`` and ``resourceName`` not both (ValidationException).
* ``LookupEvents`` — newest first, at most one lookup attribute (InvalidLookupAttributesException),
  ``MaxResults`` default and at most 50 (InvalidMaxResultsException), StartTime/EndTime inclusive (default:
  the last 90 days), and the service's rate limit: 2 requests per second per account and region, beyond
  which ThrottlingException (the switch :attr:`lookup_rate`; None: no limit).

Fixtures from files: :func:`load_sample_history` serves what Config delivered to S3 (ConfigHistory files)
and CloudTrail's S3 log files, as the two APIs return them (:meth:`HistoryServer.add_wire_item`,
:meth:`HistoryServer.add_wire_event`), e.g. the sample's ``inventory/AWSLogs/``.

Switches: :attr:`recorder` (False: NoAvailableConfigurationRecorderException from Config),
:attr:`records_enis`, :attr:`lookup_rate`, :meth:`throttle` (the next N calls of an operation) and
:meth:`throttle_forever`. Every request is recorded in :attr:`calls`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from tests.standins.cwl_store import ApiError

__all__ = [
    "ENI_TYPE",
    "HistoryCall",
    "HistoryServer",
    "config_item_from_file",
    "eni_configuration",
    "event_from_record",
    "load_sample_history",
]

CONFIG_TARGET = "StarlingDoveService."  # config/2014-11-12 metadata.targetPrefix
CLOUDTRAIL_TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."  # cloudtrail/2013-11-01
CONTENT_TYPE = "application/x-amz-json-1.1"
ENI_TYPE = "AWS::EC2::NetworkInterface"
CONFIG_HISTORY_DEFAULT_LIMIT = 10  # GetResourceConfigHistory: "The default is 10"
CONFIG_MAX_LIMIT = 100  # shape Limit: max 100 (both Config operations)
LOOKUP_MAX_RESULTS = 50  # shape MaxResults: 1..50, default 50
LOOKUP_RATE = 2.0  # LookupEvents: 2 requests per second per account per region
LOOKUP_DAYS = 90  # LookupEvents covers the last 90 days
LOOKUP_KEYS = {  # LookupAttributeKey → what it matches in an event
    "EventId": "EventId",
    "EventName": "EventName",
    "ReadOnly": "ReadOnly",
    "Username": "Username",
    "EventSource": "EventSource",
    "AccessKeyId": "AccessKeyId",
}


@dataclass(frozen=True)
class HistoryCall:
    """One request as the endpoint saw it (``error``: the error code it answered with)."""

    operation: str
    params: dict[str, Any]
    error: str | None = None
    at: float = 0.0  # monotonic arrival time


def eni_configuration(
    eni: str,
    address: str,
    *,
    groups: Sequence[str] = (),
    subnet: str = "subnet-1",
    vpc: str = "vpc-1",
    instance: str | None = None,
    interface_type: str = "interface",
) -> dict[str, Any]:
    """The ``configuration`` of an AWS::EC2::NetworkInterface item: DescribeNetworkInterfaces in camelCase."""
    return {
        "networkInterfaceId": eni,
        "privateIpAddress": address,
        "privateIpAddresses": [{"privateIpAddress": address, "primary": True}],
        "ipv6Addresses": [],
        "groups": [{"groupId": g, "groupName": g} for g in groups],
        "subnetId": subnet,
        "vpcId": vpc,
        "interfaceType": interface_type,
        "status": "in-use" if instance else "available",
        "attachment": {"instanceId": instance, "deviceIndex": 0, "status": "attached"} if instance else None,
        "requesterManaged": False,
    }


class HistoryServer:
    """The endpoint: fixtures, switches and the HTTP server. Start with ``with`` or :meth:`start`."""

    def __init__(
        self,
        *,
        account_id: str = "123456789012",
        region: str = "eu-west-1",
        host: str = "127.0.0.1",
        port: int = 0,
        lookup_rate: float | None = LOOKUP_RATE,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.lookup_rate = lookup_rate
        self.recorder = True
        self.records_enis = True
        self.clock = clock
        self.now = now
        self.items: dict[str, list[dict[str, Any]]] = {}  # resourceId → items (wire shape)
        self.events: list[dict[str, Any]] = []  # wire shape
        self._throttle_next: dict[str, int] = {}
        self._throttle_always: set[str] = set()
        self._lookups: deque[float] = deque()  # arrival times of the LookupEvents calls served
        self._calls: list[HistoryCall] = []
        self._lock = threading.RLock()
        self._address = (host, port)
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            CONFIG_TARGET + "GetResourceConfigHistory": self._get_resource_config_history,
            CONFIG_TARGET + "ListDiscoveredResources": self._list_discovered_resources,
            CLOUDTRAIL_TARGET + "LookupEvents": self._lookup_events,
        }

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._http is None:
            self._http = _HttpServer(self._address, _Handler, self)
            self._thread = threading.Thread(
                target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="history", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            if self._thread is not None:
                self._thread.join()
            self._http = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._http is None:
            raise RuntimeError("the endpoint is not started")
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 ``config`` or ``cloudtrail`` client for this endpoint (dummy credentials)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**config) if config else None,
        )

    # ------------------------------------------------------------------------------------ fixtures

    def add_config_item(
        self,
        resource_id: str,
        capture_time: float,
        *,
        configuration: Mapping[str, Any] | None = None,
        status: str = "OK",
        state_id: str | None = None,
        resource_type: str = ENI_TYPE,
        related_events: Sequence[str] = (),
        relationships: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """Record one configuration item (``configuration`` None for a ``ResourceDeleted`` item)."""
        with self._lock:
            items = self.items.setdefault(resource_id, [])
            item: dict[str, Any] = {
                "version": "1.3",
                "accountId": self.account_id,
                "configurationItemCaptureTime": float(capture_time),
                "configurationItemStatus": status,
                "configurationStateId": state_id or str(int(capture_time * 1000) + len(items)),
                "configurationItemMD5Hash": "",
                "arn": f"arn:aws:ec2:{self.region}:{self.account_id}:network-interface/{resource_id}",
                "resourceType": resource_type,
                "resourceId": resource_id,
                "awsRegion": self.region,
                "availabilityZone": f"{self.region}a",
                "tags": {},
                "relatedEvents": list(related_events),
                "relationships": [dict(r) for r in relationships],
                "configuration": json.dumps(configuration) if configuration is not None else None,
                "supplementaryConfiguration": {},
                "recordingFrequency": "CONTINUOUS",
            }
            if items:
                item["resourceCreationTime"] = items[0].get("resourceCreationTime", items[0][
                    "configurationItemCaptureTime"])  # fmt: skip
            else:
                item["resourceCreationTime"] = float(capture_time)
            items.append(item)
            items.sort(key=lambda i: i["configurationItemCaptureTime"])
            return item

    def add_event(
        self,
        name: str,
        event_time: float,
        *,
        resources: Iterable[tuple[str, str]] = (),
        detail: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        username: str = "ci-deployer",
        source: str = "ec2.amazonaws.com",
        read_only: bool = False,
    ) -> dict[str, Any]:
        """Record one management event; ``detail``: extra fields of the CloudTrail record
        (requestParameters, responseElements)."""
        with self._lock:
            event_id = event_id or str(uuid.UUID(int=len(self.events) + 1))
            record = {
                "eventVersion": "1.09",
                "userIdentity": {"type": "IAMUser", "userName": username, "accountId": self.account_id},
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event_time)),
                "eventSource": source,
                "eventName": name,
                "awsRegion": self.region,
                "sourceIPAddress": "192.0.2.1",
                "userAgent": "aws-cli/2",
                "requestParameters": None,
                "responseElements": None,
                "eventID": event_id,
                "readOnly": read_only,
                "eventType": "AwsApiCall",
                "managementEvent": True,
                "recipientAccountId": self.account_id,
                **(detail or {}),
            }
            event = {
                "EventId": event_id,
                "EventName": name,
                "ReadOnly": "true" if read_only else "false",
                "AccessKeyId": "AKIAEXAMPLE",
                "EventTime": float(event_time),
                "EventSource": source,
                "Username": username,
                "Resources": [{"ResourceType": t, "ResourceName": n} for t, n in resources],
                "CloudTrailEvent": json.dumps(record),
            }
            self.events.append(event)
            return event

    def add_wire_item(self, item: Mapping[str, Any]) -> None:
        """Record one configuration item already in the API's shape (:func:`config_item_from_file`)."""
        with self._lock:
            items = self.items.setdefault(str(item["resourceId"]), [])
            items.append(dict(item))
            items.sort(key=lambda i: (i["configurationItemCaptureTime"], i["configurationStateId"]))

    def add_wire_event(self, event: Mapping[str, Any]) -> None:
        """Record one event already in LookupEvents' shape (:func:`event_from_record`)."""
        with self._lock:
            self.events.append(dict(event))

    # ------------------------------------------------------------------------------------ switches

    def throttle(self, operation: str, times: int) -> None:
        """The next ``times`` calls of ``operation`` answer ThrottlingException."""
        with self._lock:
            self._throttle_next[operation] = times

    def throttle_forever(self, operation: str) -> None:
        with self._lock:
            self._throttle_always.add(operation)

    # ------------------------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[HistoryCall]:
        with self._lock:
            return list(self._calls)

    def calls_of(self, operation: str) -> list[HistoryCall]:
        return [call for call in self.calls if call.operation == operation]

    def count(self, operation: str, *, succeeded: bool = False, error: str | None = None) -> int:
        return sum(
            1
            for call in self.calls_of(operation)
            if (not succeeded or call.error is None) and (error is None or call.error == error)
        )

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # ------------------------------------------------------------------------------------ dispatch

    def handle(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        operation = target.rsplit(".", 1)[-1]
        params: dict[str, Any] = {}
        arrived = self.clock()
        try:
            params = _json_body(body)
            handler = self._operations.get(target)
            if handler is None:
                raise ApiError("UnknownOperationException", f"Operation {target!r} is not supported here")
            self._maybe_throttle(operation, arrived)
            payload = handler(params)
        except ApiError as error:
            self._record(HistoryCall(operation, params, error.code, arrived))
            return error.status, {"__type": error.code, "message": error.message}
        except Exception as error:  # a bug here: say so loudly rather than look like a service fault
            self._record(HistoryCall(operation, params, "InternalFailure", arrived))
            return 500, {"__type": "InternalFailure", "message": "".join(traceback.format_exception(error))}
        self._record(HistoryCall(operation, params, None, arrived))
        return 200, payload

    def _record(self, call: HistoryCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _maybe_throttle(self, operation: str, arrived: float) -> None:
        with self._lock:
            if operation in self._throttle_always:
                raise ApiError("ThrottlingException", "Rate exceeded")
            if self._throttle_next.get(operation, 0) > 0:
                self._throttle_next[operation] -= 1
                raise ApiError("ThrottlingException", "Rate exceeded")
            if operation == "LookupEvents" and self.lookup_rate:
                # A sliding one-second window: at most lookup_rate calls served in any second.
                while self._lookups and self._lookups[0] <= arrived - 1.0:
                    self._lookups.popleft()
                if len(self._lookups) >= self.lookup_rate:
                    raise ApiError("ThrottlingException", "Rate exceeded")
                self._lookups.append(arrived)

    # ------------------------------------------------------------------------------------ Config

    def _require_recorder(self) -> None:
        if not self.recorder:
            raise ApiError(
                "NoAvailableConfigurationRecorderException",
                "There are no configuration recorders available to provide the ConfigRecorder status.",
            )

    def _get_resource_config_history(self, params: dict[str, Any]) -> dict[str, Any]:
        resource_type = _required(params, "resourceType")
        resource_id = _required(params, "resourceId")
        limit = _limit(
            params, "limit", CONFIG_HISTORY_DEFAULT_LIMIT, CONFIG_MAX_LIMIT, "InvalidLimitException"
        )
        order = params.get("chronologicalOrder", "Reverse")
        if order not in ("Reverse", "Forward"):
            raise ApiError("ValidationException", f"Value '{order}' at 'chronologicalOrder' is not valid")
        later = float(params["laterTime"]) if params.get("laterTime") is not None else self.now()
        earlier = float(params["earlierTime"]) if params.get("earlierTime") is not None else None
        if earlier is not None and earlier > later:
            raise ApiError("InvalidTimeRangeException", "The earlier time must be before the later time.")
        with self._lock:
            self._require_recorder()
            items = list(self.items.get(resource_id, ()))
            if not self.records_enis and resource_type == ENI_TYPE:
                items = []
            if not items or items[0]["resourceType"] != resource_type:
                raise ApiError(
                    "ResourceNotDiscoveredException",
                    f"Resource {resource_id} of resourceType:{resource_type} is unknown or has not been "
                    "discovered",
                )
        chosen = [
            item
            for item in items
            if item["configurationItemCaptureTime"] <= later
            and (earlier is None or item["configurationItemCaptureTime"] >= earlier)
        ]
        if order == "Reverse":
            chosen.reverse()
        page, token = _page(chosen, params, limit, "nextToken", "InvalidNextTokenException")
        return {"configurationItems": page, **({"nextToken": token} if token else {})}

    def _list_discovered_resources(self, params: dict[str, Any]) -> dict[str, Any]:
        resource_type = _required(params, "resourceType")
        limit = _limit(params, "limit", CONFIG_MAX_LIMIT, CONFIG_MAX_LIMIT, "InvalidLimitException")
        ids, name = params.get("resourceIds"), params.get("resourceName")
        if ids and name:
            raise ApiError(
                "ValidationException", "You can specify either resourceIds or resourceName, not both"
            )
        deleted_too = bool(params.get("includeDeletedResources"))
        with self._lock:
            self._require_recorder()
            found = []
            for resource_id, items in sorted(self.items.items()):
                if not items or items[0]["resourceType"] != resource_type:
                    continue
                if resource_type == ENI_TYPE and not self.records_enis:
                    continue
                if ids and resource_id not in ids:
                    continue
                identifier: dict[str, Any] = {"resourceType": resource_type, "resourceId": resource_id}
                last = items[-1]
                if last["configurationItemStatus"] in ("ResourceDeleted", "ResourceDeletedNotRecorded"):
                    if not deleted_too:
                        continue
                    identifier["resourceDeletionTime"] = last["configurationItemCaptureTime"]
                if name and last.get("resourceName") != name:
                    continue
                found.append(identifier)
        page, token = _page(found, params, limit, "nextToken", "InvalidNextTokenException")
        return {"resourceIdentifiers": page, **({"nextToken": token} if token else {})}

    # ------------------------------------------------------------------------------------ CloudTrail

    def _lookup_events(self, params: dict[str, Any]) -> dict[str, Any]:
        attributes = params.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise ApiError(
                "InvalidLookupAttributesException", "You cannot specify more than one lookup attribute."
            )
        match: Callable[[dict[str, Any]], bool] = lambda event: True  # noqa: E731
        if attributes:
            key, value = attributes[0].get("AttributeKey"), attributes[0].get("AttributeValue")
            if not value or not isinstance(value, str):
                raise ApiError("InvalidLookupAttributesException", "AttributeValue is required.")
            if key == "ResourceName":
                match = lambda e: any(r.get("ResourceName") == value for r in e["Resources"])  # noqa: E731
            elif key == "ResourceType":
                match = lambda e: any(r.get("ResourceType") == value for r in e["Resources"])  # noqa: E731
            elif key in LOOKUP_KEYS:
                field = LOOKUP_KEYS[key]
                match = lambda e: e.get(field) == value  # noqa: E731
            else:
                raise ApiError("InvalidLookupAttributesException", f"Invalid AttributeKey {key!r}.")
        limit = _limit(
            params, "MaxResults", LOOKUP_MAX_RESULTS, LOOKUP_MAX_RESULTS, "InvalidMaxResultsException"
        )
        now = self.now()
        start = (
            float(params["StartTime"]) if params.get("StartTime") is not None else now - LOOKUP_DAYS * 86400
        )
        end = float(params["EndTime"]) if params.get("EndTime") is not None else now
        if start > end:
            raise ApiError("InvalidTimeRangeException", "Start time must be before end time.")
        if params.get("EventCategory") not in (None, "insight"):
            raise ApiError("InvalidEventCategoryException", "EventCategory must be insight.")
        with self._lock:
            events = [] if params.get("EventCategory") else list(self.events)
        chosen = [e for e in events if start <= e["EventTime"] <= end and match(e)]
        chosen.sort(key=lambda e: (e["EventTime"], e["EventId"]), reverse=True)  # newest first
        page, token = _page(chosen, params, limit, "NextToken", "InvalidNextTokenException")
        return {"Events": page, **({"NextToken": token} if token else {})}


# ------------------------------------------------------------------------------- from delivered files


def load_sample_history(server: HistoryServer, folder: Path) -> tuple[int, int]:
    """Serve the ENI history delivered to S3 under ``folder`` (any ``AWSLogs/`` below it, gzipped or not:
    Config's ConfigHistory files and CloudTrail's log files, e.g. a generated sample's ``inventory/``) as
    the APIs would: each Config item from ``GetResourceConfigHistory`` of its resource (and
    ``ListDiscoveredResources``), each CloudTrail record from ``LookupEvents``. Returns (items, events).

    An item or record delivered twice (Config and CloudTrail may deliver a record again) is served once.
    """
    items = events = 0
    seen_items: set[tuple[str, str]] = set()
    seen_events: set[str] = set()
    for path in sorted(Path(folder).rglob("AWSLogs/**/*.json*")):
        if not path.is_file() or not path.name.endswith((".json", ".json.gz")):
            continue
        raw = path.read_bytes()
        document = json.loads(gzip.decompress(raw) if path.name.endswith(".gz") else raw)
        for delivered in document.get("configurationItems", []):
            item = config_item_from_file(delivered)
            key = (item["resourceId"], item["configurationStateId"])
            if key not in seen_items:
                seen_items.add(key)
                server.add_wire_item(item)
                items += 1
        for record in document.get("Records", []):
            if record.get("eventID") not in seen_events:
                seen_events.add(record["eventID"])
                server.add_wire_event(event_from_record(record))
                events += 1
    return items, events


def config_item_from_file(delivered: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration item as Config writes it to S3 → as ``GetResourceConfigHistory`` returns it.

    The API renames some keys (``configurationItemVersion`` → ``version``, ``awsAccountId`` →
    ``accountId``, ``ARN`` → ``arn``, ``configurationStateMd5Hash`` → ``configurationItemMD5Hash``, a
    relationship's ``name`` → ``relationshipName``), returns ``configuration`` as a JSON *string*, the
    state id as text and times as epoch seconds (JSON 1.1); null members are left out, as AWS does.
    """
    item: dict[str, Any] = {
        "version": delivered.get("configurationItemVersion"),
        "accountId": delivered.get("awsAccountId"),
        "configurationItemCaptureTime": _epoch(delivered["configurationItemCaptureTime"]),
        "configurationItemStatus": delivered.get("configurationItemStatus"),
        "configurationStateId": str(delivered.get("configurationStateId")),
        "configurationItemMD5Hash": delivered.get("configurationStateMd5Hash"),
        "arn": delivered.get("ARN"),
        "resourceType": delivered["resourceType"],
        "resourceId": delivered["resourceId"],
        "resourceName": delivered.get("resourceName"),
        "awsRegion": delivered.get("awsRegion"),
        "availabilityZone": delivered.get("availabilityZone"),
        "resourceCreationTime": _epoch(delivered.get("resourceCreationTime")),
        "tags": delivered.get("tags") or {},
        "relatedEvents": delivered.get("relatedEvents") or [],
        "relationships": [
            {
                key: value
                for key, value in (
                    ("resourceType", r.get("resourceType")),
                    ("resourceId", r.get("resourceId")),
                    ("resourceName", r.get("resourceName")),
                    ("relationshipName", r.get("name", r.get("relationshipName"))),
                )
                if value is not None
            }
            for r in delivered.get("relationships") or []
        ],
        "configuration": None
        if delivered.get("configuration") is None
        else json.dumps(delivered["configuration"], separators=(",", ":")),
        "supplementaryConfiguration": {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in (delivered.get("supplementaryConfiguration") or {}).items()
        },
        "recordingFrequency": delivered.get("recordingFrequency", "CONTINUOUS"),
    }
    return {key: value for key, value in item.items() if value is not None}


# The resources LookupEvents lists for an event: the EC2 ids its request and response name, by prefix.
# CloudTrail documents no per-event list; real CreateNetworkInterface events list the interface, its
# groups, subnet and VPC (the VPC named only in the response), which this rule gives. For RunInstances it
# lists the instance's ENIs too (named in the response's networkInterfaceSet): an assumption the fetcher's
# ResourceName lookup relies on for an instance created before the window that Config never recorded.
_RESOURCE_TYPES: Final = (
    (re.compile(r"i-[0-9a-f]{8,17}"), "AWS::EC2::Instance"),
    (re.compile(r"eni-[0-9a-f]{8,17}"), ENI_TYPE),
    (re.compile(r"sg-[0-9a-f]{8,17}"), "AWS::EC2::SecurityGroup"),
    (re.compile(r"subnet-[0-9a-f]{8,17}"), "AWS::EC2::Subnet"),
    (re.compile(r"vpc-[0-9a-f]{8,17}"), "AWS::EC2::VPC"),
    (re.compile(r"ami-[0-9a-f]{8,17}"), "AWS::EC2::Ami"),
)


def event_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudTrail record as in its S3 log files → as ``LookupEvents`` returns it: the record itself
    in ``CloudTrailEvent`` (a JSON string), with the event's id, name, source, time (epoch seconds),
    ``ReadOnly`` as text, the caller's access key and user name (an assumed role's session name), and
    the resources it names."""
    identity = record.get("userIdentity") or {}
    username = identity.get("userName") or str(identity.get("arn", "")).rsplit("/", 1)[-1] or None
    resources: list[dict[str, str]] = []
    for value in _leaves({"request": record.get("requestParameters"), "response": record.get(
            "responseElements")}):  # fmt: skip
        for pattern, resource_type in _RESOURCE_TYPES:
            if pattern.fullmatch(value):
                entry = {"ResourceType": resource_type, "ResourceName": value}
                if entry not in resources:
                    resources.append(entry)
    event = {
        "EventId": record["eventID"],
        "EventName": record["eventName"],
        "ReadOnly": "true" if record.get("readOnly") else "false",
        "AccessKeyId": identity.get("accessKeyId"),
        "EventTime": _epoch(record["eventTime"]),
        "EventSource": record.get("eventSource"),
        "Username": username,
        "Resources": resources,
        "CloudTrailEvent": json.dumps(record, separators=(",", ":")),
    }
    return {key: value for key, value in event.items() if value is not None}


def _leaves(value: object) -> Iterable[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _epoch(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    moment = datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


# ---------------------------------------------------------------------------------------- helpers


def _required(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError("ValidationException", f"1 validation error detected: '{name}' must not be null")
    return value


def _limit(params: Mapping[str, Any], name: str, default: int, high: int, code: str) -> int:
    value = params.get(name)
    if value is None or value == 0:
        return default
    if not isinstance(value, int) or value < 0 or value > high:
        raise ApiError(code, f"Value '{value}' at '{name}' failed to satisfy constraint: at most {high}")
    return value


def _request_key(params: Mapping[str, Any], token_name: str) -> str:
    """What a paging token is bound to: the request less its token and page size."""
    rest = {k: v for k, v in params.items() if k not in (token_name, "limit", "MaxResults")}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:16]


def _page(
    items: Sequence[dict[str, Any]], params: Mapping[str, Any], limit: int, token_name: str, code: str
) -> tuple[list[dict[str, Any]], str | None]:
    offset = 0
    token = params.get(token_name)
    key = _request_key(params, token_name)
    if token:
        try:
            state = json.loads(base64.urlsafe_b64decode(str(token).encode()))
            offset, bound = int(state["o"]), state["k"]
        except (ValueError, KeyError, TypeError):
            raise ApiError(code, "The nextToken provided is invalid") from None
        if bound != key:
            raise ApiError(code, "The nextToken does not belong to this request")
    page = list(items[offset : offset + limit])
    following = offset + limit
    if following >= len(items):
        return page, None
    return page, base64.urlsafe_b64encode(json.dumps({"o": following, "k": key}).encode()).decode()


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except ValueError as error:
        raise ApiError("SerializationException", f"The request body is not JSON: {error}") from error
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object")
    return params


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: HistoryServer):
        super().__init__(address, handler)
        self.app = app


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_POST(self) -> None:  # the name http.server dispatches to
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload = self.server.app.handle(self.headers.get("X-Amz-Target", ""), body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr lines of http.server."""
