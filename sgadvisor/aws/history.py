"""ENI history from AWS (DESIGN §4.3, §6 "Identity over time"): AWS Config first, CloudTrail where Config
has nothing, written in the AWS CLI output shapes so that the offline loader reads what ``collect`` wrote.

For each ENI asked for:

* **Config** — ``GetResourceConfigHistory`` (``AWS::EC2::NetworkInterface``, Forward, the window as
  earlierTime/laterTime, pages of 100), plus the one item in effect when the window began (a second call,
  laterTime = the window's start, Reverse, limit 1) when the window holds no item from its very start.
  Whether Config records ENIs at all is asked once (``ListDiscoveredResources``, limit 1, deleted ones
  included): when it records none, no ENI is asked for. An ENI Config never discovered
  (ResourceNotDiscoveredException) or with no item falls back to CloudTrail.
* **CloudTrail** — ``LookupEvents`` by ``ResourceName`` = the ENI id (events up to the window's end; the
  service keeps 90 days, and the event that created an ENI before the window is what says its first
  groups); for the ENIs no event names, and for addresses whose owner is unknown, the events
  CreateNetworkInterface, RunInstances, TerminateInstances and DeleteNetworkInterface within the window
  (``EventName`` lookups), kept when they mention one of those ENIs or addresses (TerminateInstances names
  only the instance: kept when it names an instance a kept RunInstances event launched).

Neither API searches by IP address: for an address no known ENI holds, Config's list of ENIs (deleted
ones included, ``ListDiscoveredResources``) gives the candidates not in the inventory, whose histories in
the window are read and kept when an item holds the address; what Config cannot place goes to the
CloudTrail event-name lookups.

Rate limits: LookupEvents allows 2 requests per second per account and region, so calls are spaced
(:data:`LOOKUP_INTERVAL`); a ThrottlingException that outlives botocore's own retries is retried here
with exponential backoff. Every wait and every call ends with the run's ``--timeout``
(:class:`sgadvisor.aws.control.Deadline`); the clients come from :func:`sgadvisor.aws.clients.make_client`.
"""

from __future__ import annotations

import ipaddress
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sgadvisor.aws.clients import aws_errors
from sgadvisor.aws.control import Deadline
from sgadvisor.flowlogs.edges import Window

ENI_TYPE = "AWS::EC2::NetworkInterface"
ENI_EVENTS = ("CreateNetworkInterface", "RunInstances", "TerminateInstances", "DeleteNetworkInterface")
CONFIG_PAGE = 100  # GetResourceConfigHistory / ListDiscoveredResources: limit at most 100
LOOKUP_PAGE = 50  # LookupEvents: MaxResults at most 50
# LookupEvents: 2 requests per second per account and region; a little slower, so that the service's
# one-second window never holds three of ours.
LOOKUP_INTERVAL = 0.55
THROTTLE_RETRIES = 6  # ThrottlingException after botocore's own retries: this many more rounds
THROTTLE_BASE = 1.0  # seconds, doubled each round, jittered, at most THROTTLE_CAP
THROTTLE_CAP = 20.0
_THROTTLING = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
_CONFIG_FILE = "get-resource-config-history-{}.json"
LOOKUP_FILE = "lookup-events.json"


class HistoryMode(StrEnum):
    """``collect --history``: which ENIs' history is fetched."""

    missing = "missing"  # the ENIs (and addresses) the collected flows name that the inventory lacks
    all = "all"  # those, and every ENI in scope
    none = "none"


@dataclass(frozen=True)
class HistoryRequest:
    """What to fetch: ENI ids, addresses whose owner is unknown, the window; ``known`` the inventory's ENIs
    (never candidates for an address)."""

    enis: tuple[str, ...]
    window: Window
    addresses: tuple[str, ...] = ()
    known: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.enis or self.addresses)


@dataclass
class HistoryFetch:
    """What was fetched, in the API's shapes (times as datetimes, ``configuration`` a JSON string)."""

    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ENI → Config items
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # EventId → CloudTrail event
    by_config: set[str] = field(default_factory=set)
    by_cloudtrail: set[str] = field(default_factory=set)
    not_found: set[str] = field(default_factory=set)
    addresses_found: set[str] = field(default_factory=set)
    addresses_missing: set[str] = field(default_factory=set)
    config_records_enis: bool | None = None
    calls: Counter[str] = field(default_factory=Counter)
    throttled: int = 0

    def documents(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """File name → document, as ``aws configservice get-resource-config-history`` and ``aws cloudtrail
        lookup-events`` print them (every page merged, no NextToken)."""
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for eni, items in sorted(self.items.items()):
            out[_CONFIG_FILE.format(eni)] = {
                "configurationItems": sorted(
                    items, key=lambda i: _sort_time(i.get("configurationItemCaptureTime"))
                )
            }
        if self.events:
            out[LOOKUP_FILE] = {
                "Events": sorted(
                    self.events.values(), key=lambda e: (_sort_time(e.get("EventTime")), e.get("EventId", ""))
                )
            }
        return out

    def describe(self) -> str:
        calls = ", ".join(f"{count} {name}" for name, count in sorted(self.calls.items())) or "no calls"
        parts = [
            f"{len(self.by_config)} ENIs from Config ({sum(len(v) for v in self.items.values())} items)",
            f"{len(self.by_cloudtrail)} from CloudTrail ({len(self.events)} events)",
        ]
        if self.not_found:
            parts.append(f"{len(self.not_found)} without history")
        if self.addresses_found or self.addresses_missing:
            parts.append(
                f"{len(self.addresses_found)} of {len(self.addresses_found) + len(self.addresses_missing)} "
                "unknown addresses placed"
            )
        throttled = f"; {self.throttled} throttled and retried" if self.throttled else ""
        return f"ENI history: {', '.join(parts)} ({calls}{throttled})"


def history_text(document: Mapping[str, Any]) -> str:
    """A history document as the AWS CLI v2 prints it: times in ISO 8601 (``datetime.isoformat``)."""
    return json.dumps(document, indent=2, sort_keys=True, default=_cli_time) + "\n"


def _cli_time(value: object) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    raise TypeError(f"cannot write {type(value).__name__} into a history file")


def _sort_time(value: object) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value)
    return 0.0


class HistoryFetcher:
    """Fetches one :class:`HistoryRequest` through a ``config`` and a ``cloudtrail`` client."""

    def __init__(
        self,
        config: Any,
        cloudtrail: Any,
        *,
        deadline: Deadline | None = None,
        progress: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        lookup_interval: float | None = None,
        throttle_retries: int = THROTTLE_RETRIES,
    ) -> None:
        self.config = config
        self.cloudtrail = cloudtrail
        self.deadline = deadline or Deadline()
        self.progress = progress
        self.clock = clock
        self.sleep = sleep
        self.lookup_interval = LOOKUP_INTERVAL if lookup_interval is None else lookup_interval
        self.throttle_retries = throttle_retries
        self.random = random.random
        self._last_lookup: float | None = None
        self.result = HistoryFetch()

    # ------------------------------------------------------------------------------------ the plan

    def fetch(self, request: HistoryRequest) -> HistoryFetch:
        result = self.result
        if request.empty:
            return result
        window = request.window
        enis = list(dict.fromkeys(request.enis))
        self.progress(
            f"ENI history: {len(enis)} ENIs, {len(request.addresses)} addresses of unknown owner, "
            f"{_when(window.start)} to {_when(window.end)}"
        )
        with aws_errors("reading ENI history from AWS Config"):
            records = self._config_records_enis()
            left: list[str] = []
            if records:
                for number, eni in enumerate(enis, 1):
                    if number % 50 == 0:
                        self.progress(f"ENI history: Config, {number} of {len(enis)} ENIs")
                    if not self._config_eni(eni, window):
                        left.append(eni)
            else:
                left = enis
            addresses = set(request.addresses)
            if addresses and records:
                addresses -= self._config_addresses(addresses, request, window)
        if left or addresses:
            if records:
                self.progress(
                    f"ENI history: {len(left)} ENIs and {len(addresses)} addresses left for CloudTrail"
                )
            else:
                self.progress(
                    "ENI history: AWS Config records no ENI here; asking CloudTrail (2 calls a second)"
                )
            with aws_errors("reading ENI history from CloudTrail"):
                unnamed = [eni for eni in left if not self._cloudtrail_eni(eni, window)]
                if unnamed or addresses:
                    self._cloudtrail_by_event_name(set(unnamed), addresses, window)
        result.addresses_missing = set(request.addresses) - result.addresses_found
        result.not_found = set(enis) - result.by_config - result.by_cloudtrail
        self.progress(result.describe())
        return result

    # ------------------------------------------------------------------------------------ Config

    def _config_records_enis(self) -> bool:
        """Whether Config records ENIs here at all (a recorder that lists none cannot know any)."""
        try:
            page = self._call(
                self.config,
                "list_discovered_resources",
                resourceType=ENI_TYPE,
                includeDeletedResources=True,
                limit=1,
            )
        except _ClientError.types() as exc:
            if _code(exc) != "NoAvailableConfigurationRecorderException":
                raise
            page = {}
        self.result.config_records_enis = bool(page.get("resourceIdentifiers"))
        return self.result.config_records_enis

    def _config_in_window(self, eni: str, window: Window) -> list[dict[str, Any]]:
        """Every Config item of the ENI captured in the window, oldest first (all pages)."""
        return list(
            self._config_pages(
                resourceId=eni,
                earlierTime=_utc(window.start),
                laterTime=_utc(window.end),
                chronologicalOrder="Forward",
            )
        )

    def _config_eni(self, eni: str, window: Window) -> bool:
        """The ENI's items in the window (and the one in effect at its start); False: Config has none."""
        try:
            items = self._config_in_window(eni, window)
            first = items[0]["configurationItemCaptureTime"] if items else None
            if first is None or _sort_time(first) > window.start:
                before = self._call(
                    self.config,
                    "get_resource_config_history",
                    resourceType=ENI_TYPE,
                    resourceId=eni,
                    laterTime=_utc(window.start),
                    chronologicalOrder="Reverse",
                    limit=1,
                )
                items = before.get("configurationItems", [])[:1] + items
        except _ClientError.types() as exc:
            if _code(exc) == "ResourceNotDiscoveredException":
                return False
            raise
        if not items:
            return False
        self._keep_items(eni, items)
        self.result.by_config.add(eni)
        return True

    def _config_pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page = self._call(
                self.config,
                "get_resource_config_history",
                resourceType=ENI_TYPE,
                limit=CONFIG_PAGE,
                **kwargs,
                **({"nextToken": token} if token else {}),
            )
            yield from page.get("configurationItems", [])
            token = page.get("nextToken")
            if not token:
                return

    def _keep_items(self, eni: str, items: Iterable[dict[str, Any]]) -> None:
        kept = self.result.items.setdefault(eni, [])
        seen = {_item_key(i) for i in kept}
        for item in items:
            if _item_key(item) not in seen:
                seen.add(_item_key(item))
                kept.append(item)

    def _config_addresses(self, addresses: set[str], request: HistoryRequest, window: Window) -> set[str]:
        """Addresses placed through Config: the ENIs it knows (deleted ones too) that the inventory lacks,
        whose items in the window hold one of ``addresses``."""
        candidates: list[str] = []
        token: str | None = None
        while True:
            page = self._call(
                self.config,
                "list_discovered_resources",
                resourceType=ENI_TYPE,
                includeDeletedResources=True,
                limit=CONFIG_PAGE,
                **({"nextToken": token} if token else {}),
            )
            for identifier in page.get("resourceIdentifiers", []):
                eni = identifier.get("resourceId", "")
                deleted = identifier.get("resourceDeletionTime")
                if eni in request.known or eni in self.result.items:
                    continue
                if deleted is not None and _sort_time(deleted) < window.start:
                    continue  # gone before the window: it held nothing the flows saw
                candidates.append(eni)
            token = page.get("nextToken")
            if not token:
                break
        self.progress(f"ENI history: {len(candidates)} ENIs Config knows beyond the inventory, for addresses")
        placed: set[str] = set()
        for eni in candidates:
            if not addresses - placed:
                break
            try:
                items = self._config_in_window(eni, window)
            except _ClientError.types() as exc:
                if _code(exc) == "ResourceNotDiscoveredException":
                    continue
                raise
            held = {value for item in items for value in _strings(_parsed(item.get("configuration")))}
            if held & addresses:
                placed |= held & addresses
                self._keep_items(eni, items)
                self.result.by_config.add(eni)
        self.result.addresses_found |= placed
        return placed

    # ------------------------------------------------------------------------------------ CloudTrail

    def _cloudtrail_eni(self, eni: str, window: Window) -> bool:
        events = list(
            self._lookup(
                LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": eni}],
                EndTime=_utc(window.end),
            )
        )
        for event in events:
            self.result.events.setdefault(event["EventId"], event)
        if events:
            self.result.by_cloudtrail.add(eni)
        return bool(events)

    def _cloudtrail_by_event_name(self, enis: set[str], addresses: set[str], window: Window) -> None:
        by_name: dict[str, list[dict[str, Any]]] = {}
        for name in ENI_EVENTS:
            by_name[name] = list(
                self._lookup(
                    LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}],
                    StartTime=_utc(window.start),
                    EndTime=_utc(window.end),
                )
            )
        targets = enis | addresses
        instances: set[str] = set()
        kept: dict[str, dict[str, Any]] = {}
        for events in by_name.values():
            for event in events:
                values = _event_strings(event)
                if values & targets:
                    kept[event["EventId"]] = event
                    self.result.by_cloudtrail |= values & enis
                    self.result.addresses_found |= values & addresses
                    instances |= {v for v in values if v.startswith("i-")}
        for event in by_name["TerminateInstances"]:
            if _event_strings(event) & instances:
                kept.setdefault(event["EventId"], event)
        for event_id, event in kept.items():
            self.result.events.setdefault(event_id, event)

    def _lookup(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            self._pace()
            page = self._call(
                self.cloudtrail,
                "lookup_events",
                MaxResults=LOOKUP_PAGE,
                **kwargs,
                **({"NextToken": token} if token else {}),
            )
            yield from page.get("Events", [])
            token = page.get("NextToken")
            if not token:
                return

    def _pace(self) -> None:
        """Space LookupEvents calls by :attr:`lookup_interval` (the service allows 2 a second)."""
        if self._last_lookup is not None:
            wait = self._last_lookup + self.lookup_interval - self.clock()
            if wait > 0:
                self._wait(wait, "waiting for CloudTrail's LookupEvents rate limit (2 calls a second)")
        self._last_lookup = self.clock()

    # ------------------------------------------------------------------------------------ calls

    def _call(self, client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One API call; a throttling error that botocore gave up on is retried with exponential backoff
        (jittered), never past the deadline."""
        name = client.meta.method_to_api_mapping.get(operation, operation)
        for attempt in range(self.throttle_retries + 1):
            self.deadline.check(lambda: f"reading ENI history ({name})")
            self.result.calls[name] += 1
            try:
                response: dict[str, Any] = getattr(client, operation)(**kwargs)
            except _ClientError.types() as exc:
                if _code(exc) not in _THROTTLING or attempt == self.throttle_retries:
                    raise
                self.result.throttled += 1
                delay = min(THROTTLE_CAP, THROTTLE_BASE * 2.0**attempt) * (0.5 + self.random() / 2)
                self._wait(delay, f"{name} was throttled {attempt + 1} times")
                if name == "LookupEvents":
                    self._last_lookup = self.clock()
                continue
            response.pop("ResponseMetadata", None)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, seconds: float, why: str) -> None:
        remaining = self.deadline.remaining()
        if self.deadline.limited and seconds >= remaining:
            raise self.deadline.exceeded(
                f": stopped after {self.deadline.elapsed():.1f} s: {why}, and the next call would come "
                f"after the deadline ({max(remaining, 0):.1f} s left)"
            )
        self.sleep(seconds)


class _ClientError:
    """botocore's ClientError, imported when first needed (botocore loads slowly)."""

    @staticmethod
    def types() -> type[Exception]:
        from botocore.exceptions import ClientError

        return cast(type[Exception], ClientError)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _when(epoch: int) -> str:
    return _utc(epoch).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item_key(item: Mapping[str, Any]) -> tuple[str, str]:
    """A Config item's own identity (DESIGN §4.3): resourceId + configurationStateId, else + captureTime."""
    state = item.get("configurationStateId")
    return (
        str(item.get("resourceId", "")),
        str(state) if state else f"@{_sort_time(item.get('configurationItemCaptureTime'))}",
    )


def _parsed(text: object) -> object:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _strings(value: object) -> set[str]:
    """Every string leaf of a JSON value (addresses canonicalised, so 10.0.1.5 matches itself only)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(_canonical(item))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _canonical(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _event_strings(event: Mapping[str, Any]) -> set[str]:
    names = {str(r.get("ResourceName", "")) for r in event.get("Resources") or []}
    return names | _strings(_parsed(event.get("CloudTrailEvent")))


# -------------------------------------------------------------------------------- what to fetch


def unknown_addresses(
    remote: Iterable[str], owners: Collection[str], vpc_cidrs: Iterable[str]
) -> tuple[str, ...]:
    """The remote addresses of the flows inside a VPC of the inventory that no known ENI holds (the VPC's
    reserved first four addresses left out: network, router, DNS, reserved)."""
    networks = []
    for cidr in vpc_cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    found = set()
    for text in remote:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        canonical = str(address)
        if canonical in owners:
            continue
        for network in networks:
            if address.version == network.version and address in network:
                if int(address) - int(network.network_address) >= 4:
                    found.add(canonical)
                break
    return tuple(sorted(found))
