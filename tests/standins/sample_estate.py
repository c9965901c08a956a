"""A deterministic, realistic small VPC estate and the flow logs it produces.

Why this exists: every layer of sgadvisor (flow-log readers, inventory loader, direction inference,
synthesis, renderers, the moto and Insights stand-ins) needs the same realistic ground truth, and hand
written fixtures drift apart. This module is that ground truth:

* :func:`build_estate` returns the estate as frozen dataclasses (VPC, subnets, security groups with their
  rules, prefix lists, ENIs, flow logs, and the traffic the hosts generate), so tests can reason about
  it without parsing JSON;
* :func:`generate` writes the inventory snapshot (AWS CLI response shapes), eight days of flow logs
  (S3 ``*.log.gz`` in the default v2 format and in a custom v5 format, plus one CloudWatch
  ``filter-log-events`` export) and the Route 53 Resolver query logs of the same days (``dns/``, in
  their S3 layout) into a directory — ``sample_data/`` in the repository is its output;
* ``id_map`` renames every AWS id everywhere, because moto (and real accounts) assign their own ids and a
  topology created there needs the same flows under its ids.

Everything is a pure function of the seed: one ``random.Random`` per traffic pattern, seeded by the
pattern's *name* (never by an id, so renaming ids cannot change the traffic), sorted iteration, no clock.

Realism that the analysis relies on (each of these really occurs in the output):

* a connection is logged on every ENI it passes: egress + ingress on the client, ingress + egress on the
  server, four records on the NAT gateway ENI; replies leave from service ports to ephemeral ports;
* Linux clients use source ports 32768-60999, Windows clients 49152-65535, the NAT gateway 1024-65535;
* long-lived connections repeat their 5-tuple over many 600 s intervals; TCP flags are OR-ed per interval
  (client SYN 2 / server SYN-ACK 18 first, 0 in between, FIN 1 last; 3 and 19 for one-interval
  connections); a connection open before the window starts shows no SYN;
* a gRPC service on 50051 (inside the ephemeral range), reached also through a secondary private IP
  (``pkt-dstaddr`` differs from ``dstaddr``);
* UDP DNS to a self-managed resolver, UDP NTP (w32time, source port 123) through the NAT gateway, ICMP
  pings, HTTPS to internet hosts over IPv4 and IPv6, S3 through a gateway endpoint (addresses inside the
  S3 prefix list, ``pkt-dst-aws-service`` S3), an interface endpoint that only replies;
* REJECTs (the seed ENI to 10.0.2.15:22, inbound scans), NODATA and SKIPDATA rows, and one ENI without
  any flow log;
* Route 53 Resolver query logs that agree with the flows: a host looks a name up just before it
  connects, and only what its resolver cannot answer from its cache (TTL, negative TTL) is logged, so a
  name is seen about once per TTL while used, not once per connection. A stable name (the partner API,
  an AAAA-only API), a CDN name behind a CNAME whose answers rotate (each connection goes to an address
  of the answer the client holds), a name looked up twice, S3 bucket names (one address per answer),
  NXDOMAINs, names no flow uses, a private zone, hosts whose lookups reach the Resolver through the
  dns-1 forwarder (the log shows dns-1, not them), and queries of the head office through an inbound
  endpoint in another account's hub VPC;
* churn, with the ENI history that tells it (``inventory/AWSLogs/``: AWS Config ConfigHistory files and
  CloudTrail log files, in their S3 layouts): an Auto Scaling instance replaced mid-window, a replaced
  destination (the old address stops, the new one starts), ECS (Fargate) task ENIs that live hours to
  days, a Lambda ENI, and a destination whose ENI and group are gone by the end (its address is reused
  by a later task). Each ENI's records lie inside its life (:class:`Lifecycle`); the inventory snapshot
  is the end of the window, so former ENIs are only in :attr:`Estate.former_interfaces` and the history.

Deliberate departure from a naive picture: traffic to the Amazon DNS server (10.0.0.2) and to the Amazon
Time Sync Service (169.254.169.123) is *not* in the data, because VPC Flow Logs do not record it (and
security groups do not filter it). Rules that exist only for it therefore look unused, which is what a
real account shows; sample_data/README.md explains this.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import gzip
import hashlib
import io
import ipaddress
import json
import math
import random
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar, cast

__all__ = [
    "ACCOUNT_ID",
    "CLOUDTRAIL_START",
    "CUSTOM_V5_FIELDS",
    "DEFAULT_FIELDS",
    "REGION",
    "SEED",
    "SEED_ENI_ID",
    "WINDOW_END",
    "WINDOW_START",
    "Estate",
    "FlowLog",
    "Lifecycle",
    "NetworkInterface",
    "PrefixList",
    "PrefixListEntry",
    "Rule",
    "SecurityGroup",
    "Subnet",
    "TrafficSpec",
    "Vpc",
    "build_estate",
    "check_consistency",
    "generate",
    "history_files",
    "main",
    "render_files",
    "resolve_address",
    "rule_usage",
]

ACCOUNT_ID: Final = "123456789012"
REGION: Final = "eu-west-1"
AVAILABILITY_ZONE: Final = "eu-west-1a"
AVAILABILITY_ZONE_ID: Final = "euw1-az2"
SEED: Final = 20261101
WINDOW_START: Final = 1_793_491_200  # 2026-11-01T00:00:00Z, a Sunday
DAYS: Final = 8
INTERVAL_SECONDS: Final = 600  # the flow logs' MaxAggregationInterval; the hosts are Xen-based (t2/m4)
INTERVALS_PER_DAY: Final = 86_400 // INTERVAL_SECONDS
INTERVALS: Final = DAYS * INTERVALS_PER_DAY
WINDOW_END: Final = WINDOW_START + DAYS * 86_400  # 2026-11-09T00:00:00Z
SEED_ENI_ID: Final = "eni-0e7ae111222111000"
CLOUDWATCH_DAY: Final = 2  # 2026-11-03: the day exported from the NAT gateway's CloudWatch Logs flow log
S3_BUCKET: Final = f"acme-vpc-flow-logs-{ACCOUNT_ID}"

DEFAULT_FIELDS: Final = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
    "packets", "bytes", "start", "end", "action", "log-status",
)  # fmt: skip
# The custom format of the app, db and batch subnets: interface-id is not third, bytes comes before
# packets (as in AWS's own TCP-flags example), so a reader that assumes the default order fails loudly.
CUSTOM_V5_FIELDS: Final = (
    "version", "vpc-id", "subnet-id", "instance-id", "interface-id", "account-id", "type", "srcaddr",
    "dstaddr", "srcport", "dstport", "pkt-srcaddr", "pkt-dstaddr", "protocol", "bytes", "packets", "start",
    "end", "action", "tcp-flags", "log-status", "region", "az-id", "flow-direction", "traffic-path",
    "pkt-src-aws-service", "pkt-dst-aws-service",
)  # fmt: skip

LINUX_EPHEMERAL: Final = (32768, 60999)  # net.ipv4.ip_local_port_range default
WINDOWS_EPHEMERAL: Final = (49152, 65535)  # Windows dynamic port range since Vista/2008
NAT_GATEWAY_PORTS: Final = (1024, 65535)


def _at(text: str) -> int:
    """Epoch seconds of a UTC time written ``2026-11-04T10:02:41``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


# The ENI history given with the snapshot: CloudTrail's log files from this day on (only those holding the
# churning ENIs' events), and AWS Config's ConfigHistory files since its recorder started (2026-10-01).
CLOUDTRAIL_START: Final = _at("2026-10-01T00:00:00")

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vpc:
    """The one VPC of the estate (dual-stack: the web tier uses IPv6)."""

    vpc_id: str
    name: str
    cidr: str
    ipv6_cidr: str


@dataclass(frozen=True)
class Subnet:
    """A subnet; ``default_route`` says how its hosts reach the internet (which changes what is logged)."""

    subnet_id: str
    name: str
    cidr: str
    ipv6_cidr: str
    default_route: str  # "igw" (public) or "nat" (private, via the NAT gateway)


@dataclass(frozen=True)
class Rule:
    """One security-group rule, as DescribeSecurityGroupRules describes it (exactly one destination).

    ``expect`` is the ground truth for egress rules, judged from the traffic the estate generates:
    ``used`` (needed as it is), ``partly-used`` (needed traffic uses a small part: narrow it),
    ``unused`` (no initiated egress needs it), ``invisible`` (serves traffic that flow logs never record,
    such as the Amazon DNS server or Time Sync: looks unused), ``no-evidence`` (its group has no flow-log
    coverage), ``unattached`` (its group has no members). Empty for ingress rules.

    Internet destinations are port-scoped by default (DESIGN §6 "Internet destinations"): a rule to
    ``0.0.0.0/0`` or ``::/0`` that internet traffic uses on the rule's own protocol and ports is ``used``,
    however few addresses it reached, because an address rule would break at the peer's next DNS change.
    ``expect_dns`` is the verdict where DNS evidence changes it (the main job with ``--dns-logs
    sample_data/dns``): ``partly-used`` when every address behind the rule resolved from a stable name,
    so pinned /32s (/128s) replace it. Empty where the verdict is ``expect`` either way.
    """

    rule_id: str
    is_egress: bool
    ip_protocol: str  # "-1", "tcp", "udp", "icmp"
    from_port: int  # -1 for protocol -1 and for "any ICMP type"
    to_port: int
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    prefix_list_id: str | None = None
    referenced_group_id: str | None = None
    description: str | None = None
    expect: str = ""
    expect_dns: str = ""

    @property
    def destination(self) -> str:
        """The one peer of the rule (CIDR, prefix-list id or group id)."""
        for value in (self.cidr_ipv4, self.cidr_ipv6, self.prefix_list_id, self.referenced_group_id):
            if value is not None:
                return value
        raise ValueError(f"rule {self.rule_id} has no peer")


@dataclass(frozen=True)
class SecurityGroup:
    """A security group and its rules, ingress and egress, in creation order (a former group has none:
    its rules are not in the snapshot)."""

    group_id: str
    group_name: str
    description: str
    name_tag: str | None
    rules: tuple[Rule, ...]
    deleted: int | None = None  # epoch s of DeleteSecurityGroup: a former group (Estate.former_groups)

    @property
    def egress(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.is_egress)

    @property
    def ingress(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if not rule.is_egress)


@dataclass(frozen=True)
class PrefixListEntry:
    cidr: str
    description: str | None = None


@dataclass(frozen=True)
class PrefixList:
    """A managed prefix list; ``entries`` is None when GetManagedPrefixListEntries was not captured."""

    prefix_list_id: str
    name: str
    owner_id: str  # "AWS" for AWS-managed lists
    entries: tuple[PrefixListEntry, ...] | None
    max_entries: int | None = None  # not returned for AWS-managed lists
    version: int | None = None
    name_tag: str | None = None

    @property
    def aws_managed(self) -> bool:
        return self.owner_id == "AWS"


@dataclass(frozen=True)
class Lifecycle:
    """When an ENI existed, and what recorded it (the ENI history under ``inventory/AWSLogs/``).

    ``created``/``deleted`` are epoch seconds (``deleted`` None: current at the window's end). ``creator``
    created and deleted it: ``autoscaling`` (an Auto Scaling group's RunInstances and TerminateInstances),
    ``admin`` (a person with the AWS CLI: RunInstances, TerminateInstances), ``ecs`` (CreateNetworkInterface
    and DeleteNetworkInterface for a Fargate task), ``lambda`` (the same for a Hyperplane ENI). CloudTrail
    has these events from :data:`CLOUDTRAIL_START` on. ``config`` lists AWS Config's items of the ENI
    (capture time, ``configurationItemStatus``) where Config's history of it is given.
    """

    created: int
    deleted: int | None = None
    creator: str = "admin"
    config: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class NetworkInterface:
    """An ENI; ``name`` is the estate's handle (and Name tag), ``role`` what it does, ``os`` its stack.

    ``life`` is None for an ENI that existed long before the window and still does (no history of it);
    otherwise its records lie inside ``life`` (traffic only in the 600 s intervals it lives through).
    ``resolver`` names the DNS forwarder (dns-1) the host sends every lookup to; None: its internet
    lookups go to the Amazon DNS server itself (split DNS), so the query logs show its own address.
    """

    eni_id: str
    name: str
    role: str
    subnet_id: str
    private_ip: str
    mac_address: str
    secondary_ips: tuple[str, ...] = ()
    ipv6_addresses: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    interface_type: str = "interface"  # "interface", "nat_gateway", "vpc_endpoint"
    requester_managed: bool = False
    requester_id: str | None = None
    instance_id: str | None = None
    os: str = "linux"  # "linux", "windows" (ephemeral port range), "managed" (AWS-operated)
    description: str = ""
    public_ip: str | None = None
    public_ip_owner: str = "amazon"  # "amazon" for auto-assigned, the account for Elastic IPs
    allocation_id: str | None = None
    association_id: str | None = None
    attachment_id: str = ""
    attach_time: str = ""
    source_dest_check: bool = True
    tagged: bool = True  # requester-managed ENIs carry no Name tag
    tags: tuple[tuple[str, str], ...] = ()  # the tags of an untagged ENI that AWS puts on (ECS's)
    attachment_owner: str = "amazon-aws"  # InstanceOwnerId of a requester-managed ENI's attachment
    life: Lifecycle | None = None
    resolver: str | None = None  # the DNS forwarder (an ENI name) its internet lookups go through

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every address of the ENI (what an SG reference to one of its groups admits)."""
        return (self.private_ip, *self.secondary_ips, *self.ipv6_addresses)

    def life_in(self, start: int, end: int) -> tuple[int, int] | None:
        """``[start, end)`` cut to the ENI's life; None when it did not exist in it."""
        low = start if self.life is None else max(start, self.life.created)
        high = end if self.life is None or self.life.deleted is None else min(end, self.life.deleted)
        return (low, high) if low < high else None

    def lives_through(self, start: int, end: int) -> bool:
        """Whether the ENI exists over all of ``[start, end)``."""
        return self.life_in(start, end) == (start, end)


@dataclass(frozen=True)
class FlowLog:
    """A flow log: where it delivers, what it covers, and the fields of its records in order."""

    flow_log_id: str
    name: str
    resource_id: str
    destination_type: str  # "s3" or "cloud-watch-logs"
    log_destination: str
    fields: tuple[str, ...]
    creation_time: str
    log_group_name: str | None = None
    deliver_logs_permission_arn: str | None = None

    @property
    def log_format(self) -> str:
        return " ".join(f"${{{name}}}" for name in self.fields)

    @property
    def version(self) -> int:
        """The record version AWS writes: 2 for the default format, else the newest field's version."""
        return 2 if self.fields == DEFAULT_FIELDS else 5


@dataclass(frozen=True)
class TrafficSpec:
    """One traffic pattern of the estate: who talks to whom, how often, and over which path.

    ``clients``/``servers`` name ENIs (``web-1``; ``web-1/ipv6`` for its IPv6 address; ``app-2/secondary``
    for its secondary private IP), internet address pools (``@users``, ``@users6``, ``@scanners``), or
    literal external addresses. Styles: ``session`` (long-lived connections back to back while active),
    ``short`` (Poisson-many one-interval connections: ``rate`` while active, ``night_rate`` otherwise;
    per client ENI, or per server when the clients are a pool), ``periodic`` (one connection every
    ``every`` intervals; to every server when ``fanout``), ``count`` (``count`` connections at random
    active times). ``route``: ``local``, ``nat`` (via the NAT gateway), ``igw``, ``s3`` (gateway
    endpoint), ``endpoint`` (interface endpoint). ``resolves``: the DNS name (:class:`DnsName`) the
    clients look up before they connect; the servers are its addresses, and each lookup the resolver
    cannot answer from its cache is a record of the Route 53 Resolver query logs.
    """

    name: str
    clients: tuple[str, ...]
    servers: tuple[str, ...]
    protocol: int
    ports: tuple[int, ...]
    style: str
    summary: str
    hours: tuple[int, int] = (0, 24)
    weekdays_only: bool = False
    rate: float = 0.0
    night_rate: float = 0.0
    every: int = 0
    count: int = 0
    length: tuple[int, int] = (1, 1)
    fanout: bool = False
    route: str = "local"
    aws_service: str | None = None
    client_port: int | None = None
    volume: str = "api"
    action: str = "ACCEPT"
    resolves: str | None = None


@dataclass(frozen=True)
class DnsName:
    """A DNS name the estate's hosts resolve, and what the Route 53 Resolver answers for it.

    ``answers`` says how the answer behaves over time: ``all`` (every answer holds all of
    ``addresses``: a stable name), ``rotate`` (each answer holds ``per_answer`` addresses of the pool
    ``addresses``, another subset every ``rotate_seconds``: a CDN), ``flow`` (each answer holds the one
    address the connection then used, as S3 answers one address per query). ``chain`` lists the CNAME
    targets in order (the addresses belong to the last). An NXDOMAIN name (``rcode``) has no addresses.
    A resolver caches an answer for ``ttl`` seconds (an empty answer or NXDOMAIN for ``negative_ttl``,
    the zone's SOA minimum), and the Resolver logs only what it did not answer from its cache.
    """

    name: str
    addresses: tuple[str, ...] = ()
    ttl: int = 300
    chain: tuple[str, ...] = ()
    answers: str = "all"  # "all", "rotate", "flow"
    per_answer: int = 0
    rotate_seconds: int = 0
    rcode: str = "NOERROR"
    negative_ttl: int = 900


@dataclass(frozen=True)
class QuerySpec:
    """Lookups that no traffic spec makes: names no flow uses, NXDOMAINs, dns-1's private-zone
    forwarding, and queries that come in through the network account's inbound Resolver endpoint.

    ``clients`` are ENI names (an ENI whose ``resolver`` is set asks through that forwarder) or
    ``@inbound`` (the head office's DNS server through the inbound endpoint). A client looks the name up
    every ``every`` seconds while active (``hours``, UTC, on ``days`` of the window), or ``count`` times
    at random active moments; only the lookups its resolver's cache cannot answer are logged.
    """

    label: str
    clients: tuple[str, ...]
    name: str
    summary: str
    hours: tuple[int, int] = (0, 24)
    days: tuple[int, ...] = tuple(range(DAYS))
    every: int = 0
    count: int = 0


@dataclass(frozen=True)
class Estate:
    """The whole sample: inventory, flow logs and traffic. Look-ups accept a name or an id."""

    account_id: str
    region: str
    vpc: Vpc
    subnets: tuple[Subnet, ...]
    security_groups: tuple[SecurityGroup, ...]
    prefix_lists: tuple[PrefixList, ...]
    network_interfaces: tuple[NetworkInterface, ...]
    flow_logs: tuple[FlowLog, ...]
    traffic: tuple[TrafficSpec, ...]
    nat_gateway_id: str
    vpc_endpoint_id: str
    window_start: int = WINDOW_START
    window_end: int = WINDOW_END
    # Deleted in the window: not in the snapshot, known from the history (and, for ENIs, their records).
    former_interfaces: tuple[NetworkInterface, ...] = ()
    former_groups: tuple[SecurityGroup, ...] = ()
    # The names the hosts resolve (Route 53 Resolver query logs, ``dns/``) and the lookups no flow makes.
    dns_names: tuple[DnsName, ...] = ()
    dns_queries: tuple[QuerySpec, ...] = ()

    def dns_name(self, name: str) -> DnsName:
        return _find(self.dns_names, name, lambda d: (d.name,))

    @property
    def all_interfaces(self) -> tuple[NetworkInterface, ...]:
        """The current ENIs, then the former ones."""
        return self.network_interfaces + self.former_interfaces

    def eni(self, key: str) -> NetworkInterface:
        """An ENI by id or name, current or former."""
        return _find(self.all_interfaces, key, lambda e: (e.eni_id, e.name))

    def group(self, key: str) -> SecurityGroup:
        """A group by id or name, current or former."""
        return _find(self.security_groups + self.former_groups, key, lambda g: (g.group_id, g.group_name))

    def subnet(self, key: str) -> Subnet:
        return _find(self.subnets, key, lambda s: (s.subnet_id, s.name))

    def prefix_list(self, key: str) -> PrefixList:
        return _find(self.prefix_lists, key, lambda p: (p.prefix_list_id, p.name))

    def flow_log(self, key: str) -> FlowLog:
        return _find(self.flow_logs, key, lambda f: (f.flow_log_id, f.name))

    def rule(self, rule_id: str) -> Rule:
        for group in self.security_groups:
            for rule in group.rules:
                if rule.rule_id == rule_id:
                    return rule
        raise KeyError(rule_id)

    def group_of_rule(self, rule_id: str) -> SecurityGroup:
        for group in self.security_groups:
            if any(rule.rule_id == rule_id for rule in group.rules):
                return group
        raise KeyError(rule_id)

    def members(self, group_id: str) -> tuple[NetworkInterface, ...]:
        """The group's members at the end of the window (the snapshot's)."""
        return tuple(eni for eni in self.network_interfaces if group_id in eni.group_ids)

    def members_ever(self, group_id: str) -> tuple[NetworkInterface, ...]:
        """Every ENI that was a member at some moment of the window (an ENI's groups do not change here)."""
        return tuple(eni for eni in self.all_interfaces if group_id in eni.group_ids)

    def flow_log_of(self, eni: NetworkInterface) -> FlowLog | None:
        """The flow log covering an ENI (ENI-level, else its subnet's, else the VPC's), if any."""
        for resource in (eni.eni_id, eni.subnet_id, self.vpc.vpc_id):
            for flow_log in self.flow_logs:
                if flow_log.resource_id == resource:
                    return flow_log
        return None

    def ids(self) -> tuple[str, ...]:
        """Every AWS id of the sample (the keys an ``id_map`` may rename), sorted."""
        found: set[str] = set()
        for text in _strings(self):
            found.update(_ID_TOKEN.findall(text))
        return tuple(sorted(found))

    def remapped(self, id_map: Mapping[str, str]) -> Estate:
        """The same estate with ids renamed everywhere (descriptions included)."""
        mapper = _IdMapper(self.ids(), id_map)
        return _map_strings(self, mapper)

    def permitting_rules(
        self, group_ids: Sequence[str], *, egress: bool, peer: str, protocol: int, port: int
    ) -> tuple[Rule, ...]:
        """The rules of these groups that permit traffic with this peer address, protocol and port.

        A small, exact evaluator used to prove the sample consistent (every ACCEPT permitted, every
        REJECT not); SG references admit every address of the member ENIs (former members too: the rules
        do not change in the window, so a reference admitted a former member while it was one), prefix
        lists their entries.
        """
        address = ipaddress.ip_address(peer)
        result: list[Rule] = []
        for group_id in group_ids:
            for rule in self.group(group_id).rules:
                if rule.is_egress != egress or not _protocol_matches(rule, protocol, port):
                    continue
                if _peer_matches(self, rule, address):
                    result.append(rule)
        return tuple(result)


def _find(items: Iterable[_T], key: str, names: Callable[[_T], tuple[str, ...]]) -> _T:
    for item in items:
        if key in names(item):
            return item
    raise KeyError(key)


_PROTOCOL_NAMES: Final = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


def _protocol_matches(rule: Rule, protocol: int, port: int) -> bool:
    if rule.ip_protocol == "-1":
        return True
    if rule.ip_protocol != _PROTOCOL_NAMES.get(protocol):
        return False
    if protocol in (1, 58):
        return rule.from_port == -1 or rule.from_port == port  # flow logs carry no ICMP type
    return rule.from_port <= port <= rule.to_port


def _peer_matches(estate: Estate, rule: Rule, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    cidrs: list[str] = []
    if rule.cidr_ipv4 is not None:
        cidrs.append(rule.cidr_ipv4)
    if rule.cidr_ipv6 is not None:
        cidrs.append(rule.cidr_ipv6)
    if rule.prefix_list_id is not None:
        entries = estate.prefix_list(rule.prefix_list_id).entries or ()
        cidrs.extend(entry.cidr for entry in entries)
    if rule.referenced_group_id is not None:
        return any(
            str(address) == member_address
            for member in estate.members_ever(rule.referenced_group_id)
            for member_address in member.addresses
        )
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr)
        if network.version == address.version and address in network:
            return True
    return False


# --------------------------------------------------------------------------------------------------------
# Ids: deterministic generation, discovery and renaming
# --------------------------------------------------------------------------------------------------------

# Longest prefixes first, so "eni-attach-…" is not read as "eni-…".
_ID_TOKEN: Final = re.compile(
    r"(?<![0-9A-Za-z-])(?:eni-attach|ela-attach|eipalloc|eipassoc|subnet|vpce|sgr|eni|vpc|nat|sg|pl|fl|i)"
    r"-[0-9a-f]{8,17}(?![0-9A-Za-z])"
)


def _aws_id(prefix: str, label: str, width: int = 17) -> str:
    """A realistic-looking id (17 hex digits, leading 0 like modern EC2 ids) derived from a label."""
    digest = hashlib.sha256(f"sgadvisor-sample/{prefix}/{label}".encode()).hexdigest()
    return f"{prefix}-0{digest[: width - 1]}"


def _ela_attachment(label: str) -> str:
    """Attachment ids of AWS-managed ENIs (NAT gateway, endpoint) are short: ``ela-attach-`` + 8 hex."""
    return "ela-attach-" + hashlib.sha256(f"sgadvisor-sample/ela/{label}".encode()).hexdigest()[:8]


def _mac(label: str) -> str:
    digest = hashlib.sha256(f"sgadvisor-sample/mac/{label}".encode()).digest()
    return "0a:" + ":".join(f"{byte:02x}" for byte in digest[:5])


def _uuid(label: str) -> str:
    """A version-4-looking UUID derived from a label (never from an id, so renaming cannot change it)."""
    digest = hashlib.sha256(f"sgadvisor-sample/uuid/{label}".encode()).hexdigest()
    variant = "89ab"[int(digest[16], 16) % 4]
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"


def _iso(epoch: int, *, millis: int | None = None) -> str:
    """``2026-11-04T10:02:41Z``, or with milliseconds ``2026-11-04T10:02:41.318Z``."""
    text = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis is not None else f"{text}Z"


class _IdMapper:
    """Renames known ids inside any text, whole tokens only; refuses maps that would be ambiguous."""

    def __init__(self, known: Iterable[str], id_map: Mapping[str, str]) -> None:
        known_set = set(known)
        unknown = sorted(set(id_map) - known_set)
        if unknown:
            raise ValueError(f"id_map names ids that are not in the sample: {', '.join(unknown[:5])}")
        targets = [value for key, value in id_map.items() if value != key]
        if len(set(targets)) != len(targets):
            raise ValueError("id_map maps two ids to the same new id")
        kept = known_set - {key for key, value in id_map.items() if value != key}
        clash = sorted(set(targets) & kept)
        if clash:
            raise ValueError(f"id_map maps to an id the sample still uses: {', '.join(clash[:5])}")
        for key, value in id_map.items():
            prefix = key.rsplit("-", 1)[0]
            if not value.startswith(prefix + "-"):
                raise ValueError(f"id_map must keep the id's kind: {key} -> {value}")
        self._map = {key: value for key, value in id_map.items() if value != key}
        self._pattern = (
            re.compile(
                r"(?<![0-9A-Za-z-])(?:"
                + "|".join(re.escape(key) for key in sorted(self._map, key=len, reverse=True))
                + r")(?![0-9A-Za-z])"
            )
            if self._map
            else None
        )

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self._map[match.group(0)], text)


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _strings(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _strings(getattr(value, item.name))


def _map_strings(value: _T, mapper: Callable[[str], str]) -> _T:
    result: Any
    if isinstance(value, str):
        result = mapper(value)
    elif isinstance(value, tuple):
        result = tuple(_map_strings(item, mapper) for item in value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            item.name: _map_strings(getattr(value, item.name), mapper) for item in dataclasses.fields(value)
        }
        result = dataclasses.replace(value, **changes)
    else:
        result = value
    return cast(_T, result)


# --------------------------------------------------------------------------------------------------------
# The estate
# --------------------------------------------------------------------------------------------------------

NAT_REQUESTER_ID: Final = "036872051663"  # what eu-west-1 NAT gateway ENIs show as RequesterId
ENDPOINT_REQUESTER_ID: Final = "727180483921"  # illustrative: an AWS-owned account
# Fargate task ENIs: RequesterId and the attachment's InstanceOwnerId are AWS-owned accounts (illustrative).
ECS_REQUESTER_ID: Final = "578734482556"
FARGATE_INSTANCE_OWNER: Final = "701532882619"
ECS_CLUSTER: Final = "acme-prod"
ECS_SERVICE: Final = "invoicer"
LAMBDA_FUNCTION: Final = "reconciler"
LAMBDA_ROLE: Final = "reconciler-execution"
LAMBDA_REQUESTER_ID: Final = f"AROAWJ4XK7EXAMPLE3LQN:{LAMBDA_FUNCTION}"  # the role's id and session
ASG_NAME: Final = "orders-asg"
ADMIN_ADDRESS: Final = "203.0.113.70"  # the Dublin office (corp-office's 203.0.113.64/27)

# Third parties on the internet use documentation ranges (RFC 5737 / RFC 3849): nothing real is named.
PAYMENT_API: Final = ("198.51.100.20", "198.51.100.21")
CAPTCHA_API: Final = ("203.0.113.10", "203.0.113.11")
IPV6_API: Final = ("2001:db8:4006:80b::200e", "2001:db8:4006:80b::2003")
FX_RATES_API: Final = "203.0.113.50"
APT_MIRROR: Final = "192.0.2.80"
WINDOWS_TIME: Final = "192.0.2.123"
PARTNER_DNS: Final = "192.0.2.53"
PARTNER_SFTP: Final = "198.51.100.25"
ALERT_WEBHOOK: Final = "198.51.100.77"
# Addresses inside the S3 prefix list's entries (what s3.eu-west-1.amazonaws.com resolves to).
S3_ADDRESSES: Final = ("52.218.44.17", "52.218.62.203", "52.218.100.42", "3.5.68.144", "3.5.72.13")
# Reached by the app tier from 2026-11 on: a SaaS whose webhooks sit behind a CDN (rotating addresses) and
# a software vendor's licence server.
WEBHOOKS_POOL: Final = tuple(f"198.51.100.{host}" for host in (33, 34, 41, 42, 49, 50, 57, 58))
LICENSE_API: Final = "203.0.113.40"

# DNS names (Route 53 Resolver query logs, dns/), under reserved example domains like the addresses.
PARTNER_API_NAME: Final = "api.partner.example.com"  # -> CAPTCHA_API, stable
IPV6_API_NAME: Final = "api6.example.net"  # -> IPV6_API (AAAA only), stable
WEBHOOKS_NAME: Final = "hooks.saas.example.net"  # CNAME to the CDN, whose answers rotate
WEBHOOKS_CDN: Final = "hooks.saas.example.net.cdn.example.org"
LICENSE_NAME: Final = "license.vendor.example.com"  # looked up twice in the window: not stable
FX_RATES_NAME: Final = "rates.fx.example.com"
APT_MIRROR_NAME: Final = "deb.example.org"
ALERTS_NAME: Final = "events.pager.example.com"
TIME_NAME: Final = "time.windows.example.com"
S3_ENDPOINT_NAME: Final = f"s3-r-w.{REGION}.amazonaws.com"  # what a bucket's virtual-hosted name CNAMEs to
SECRETS_MANAGER_NAME: Final = f"secretsmanager.{REGION}.amazonaws.com"  # the endpoint's private DNS name
# The network account's hub VPC holds the Route 53 Resolver inbound endpoint through which the head office
# (over Direct Connect) resolves names; its query logs go to the same log-archive bucket.
NETWORK_ACCOUNT_ID: Final = "444455556666"
HUB_VPC_ID: Final = _aws_id("vpc", "network-hub")
INBOUND_ENDPOINT: Final = _aws_id("rslvr-in", "head-office")
INBOUND_ENDPOINT_ENI: Final = _aws_id("rni", "head-office/a")
HEAD_OFFICE_DNS: Final = "10.64.0.53"  # the head office's DNS server, forwarding to the inbound endpoint


def build_estate(id_map: Mapping[str, str] | None = None) -> Estate:
    """The sample estate (with ids renamed by ``id_map`` when given). See sample_data/README.md."""
    estate = _build_estate()
    return estate.remapped(id_map) if id_map else estate


def _build_estate() -> Estate:
    vpc = Vpc(_aws_id("vpc", "main"), "acme-prod", "10.0.0.0/16", "2a05:d018:abcd:1200::/56")
    subnets = tuple(
        Subnet(_aws_id("subnet", name), name, f"10.0.{index}.0/24", f"2a05:d018:abcd:120{index}::/64", route)
        for index, (name, route) in enumerate(
            (("public", "igw"), ("web", "igw"), ("app", "nat"), ("db", "nat"), ("batch", "nat"))
        )
    )
    sub = {subnet.name: subnet.subnet_id for subnet in subnets}
    sg = {
        name: _aws_id("sg", name)
        for name in (
            "default", "web", "app", "db", "batch", "monitoring", "bastion", "dns",
            "vpce-secretsmanager", "launch-wizard-1", "orders", "ledger", "invoicer-tasks",
            "lambda-reconciler", "reports-legacy",
        )
    }  # fmt: skip
    pl_s3, pl_ddb, pl_cf, pl_corp = "pl-6da54004", "pl-6fa54006", "pl-4fa04526", _aws_id("pl", "corp-office")

    def rules(group: str, *specs: tuple[Any, ...]) -> tuple[Rule, ...]:
        """Rules from (direction, protocol, from, to, peer, description, expect[, expect_dns]) tuples."""
        out: list[Rule] = []
        for index, spec in enumerate(specs):
            direction, protocol, low, high, peer, description, expect = spec[:7]
            expect_dns = spec[7] if len(spec) > 7 else ""
            kind: dict[str, str] = {}
            if peer.startswith("sg:"):
                kind["referenced_group_id"] = sg[peer[3:]]
            elif peer.startswith("pl-"):
                kind["prefix_list_id"] = peer
            elif ":" in peer:
                kind["cidr_ipv6"] = peer
            else:
                kind["cidr_ipv4"] = peer
            out.append(
                Rule(
                    rule_id=_aws_id("sgr", f"{group}/{index}"),
                    is_egress=direction == "out",
                    ip_protocol=protocol,
                    from_port=low,
                    to_port=high,
                    description=description,
                    expect=expect if direction == "out" else "",
                    expect_dns=expect_dns,
                    **kind,
                )
            )
        return tuple(out)

    groups = (
        SecurityGroup(sg["default"], "default", "default VPC security group", None, rules(
            "default",
            ("in", "-1", -1, -1, "sg:default", None, ""),
            ("out", "-1", -1, -1, "0.0.0.0/0", None, "partly-used"),
            ("out", "-1", -1, -1, "::/0", None, "unused"),
        )),
        SecurityGroup(sg["web"], "web", "Web tier (public, dual-stack)", "web", rules(
            "web",
            ("in", "tcp", 443, 443, "0.0.0.0/0", "HTTPS from anywhere", ""),
            ("in", "tcp", 443, 443, "::/0", "HTTPS from anywhere (IPv6)", ""),
            ("in", "tcp", 80, 80, "0.0.0.0/0", "HTTP redirect", ""),
            ("in", "tcp", 22, 22, "sg:bastion", "SSH from bastion", ""),
            ("in", "icmp", -1, -1, "sg:monitoring", "Ping from monitoring", ""),
            ("out", "tcp", 8080, 8080, "sg:app", "App API", "used"),
            ("out", "tcp", 50051, 50051, "sg:app", "App gRPC", "used"),
            ("out", "tcp", 443, 443, "0.0.0.0/0", "HTTPS out", "used", "partly-used"),
            ("out", "tcp", 443, 443, "::/0", "HTTPS out (IPv6)", "used", "partly-used"),
            ("out", "udp", 53, 53, "10.0.2.53/32", "Internal DNS resolver", "used"),
            ("out", "udp", 123, 123, "169.254.169.123/32", "Amazon Time Sync", "invisible"),
            ("out", "tcp", 5432, 5432, "sg:db", "Legacy direct DB access", "unused"),
            ("out", "tcp", 6379, 6379, "10.0.2.0/24", "Redis (decommissioned)", "unused"),
        )),
        SecurityGroup(sg["app"], "app", "App tier: HTTP API 8080, gRPC 50051", "app", rules(
            "app",
            ("in", "tcp", 8080, 8080, "sg:web", "API from web", ""),
            ("in", "tcp", 50051, 50051, "sg:web", "gRPC from web", ""),
            ("in", "tcp", 8080, 8080, "sg:app", "API from app", ""),
            ("in", "tcp", 50051, 50051, "sg:app", "gRPC from app", ""),
            ("in", "tcp", 22, 22, "sg:bastion", "SSH from bastion", ""),
            ("in", "tcp", 9100, 9100, "sg:monitoring", "node_exporter", ""),
            ("out", "tcp", 5432, 5432, "sg:db", "PostgreSQL", "used"),
            ("out", "tcp", 8080, 8080, "sg:app", "App to app API", "used"),
            ("out", "tcp", 50051, 50051, "sg:app", "App to app gRPC", "used"),
            ("out", "tcp", 443, 443, "sg:vpce-secretsmanager", "Secrets Manager endpoint", "used"),
            ("out", "tcp", 443, 443, "0.0.0.0/0", "HTTPS out via NAT", "used"),
            ("out", "udp", 53, 53, "10.0.0.0/16", "DNS", "partly-used"),
            ("out", "tcp", 11211, 11211, "10.0.2.0/24", "memcached (never deployed)", "unused"),
            ("out", "udp", 123, 123, "0.0.0.0/0", "NTP", "used"),
        )),
        SecurityGroup(sg["db"], "db", "PostgreSQL primary and replica", "db", rules(
            "db",
            ("in", "tcp", 5432, 5432, "sg:app", "PostgreSQL from app", ""),
            ("in", "tcp", 5432, 5432, "sg:batch", "PostgreSQL from batch", ""),
            ("in", "tcp", 5432, 5432, "sg:db", "Replication", ""),
            ("in", "tcp", 22, 22, "sg:bastion", "SSH from bastion", ""),
            ("in", "tcp", 9100, 9100, "sg:monitoring", "node_exporter", ""),
            ("out", "tcp", 5432, 5432, "sg:db", "Replication", "used"),
            ("out", "tcp", 443, 443, pl_s3, "WAL archive to S3", "used"),
            ("out", "-1", -1, -1, "10.0.0.0/16", "Anything inside the VPC", "partly-used"),
            # Added for the services of the app subnet (orders, ledger, invoicer tasks, the Lambda ENI).
            ("in", "tcp", 5432, 5432, "10.0.2.0/24", "PostgreSQL from the app subnet's services", ""),
        )),
        SecurityGroup(sg["batch"], "batch", "Nightly batch jobs", "batch", rules(
            "batch",
            ("in", "tcp", 22, 22, "sg:bastion", "SSH from bastion", ""),
            ("in", "tcp", 3389, 3389, "sg:bastion", "RDP from bastion", ""),
            ("out", "tcp", 443, 443, pl_s3, "S3 via gateway endpoint", "used"),
            ("out", "tcp", 5432, 5432, "sg:db", "PostgreSQL", "used"),
            ("out", "tcp", 443, 443, "0.0.0.0/0", "HTTPS out via NAT", "used"),
            ("out", "tcp", 80, 80, "0.0.0.0/0", "HTTP out (apt)", "used"),
            ("out", "tcp", 443, 443, pl_ddb, "DynamoDB (never used)", "unused"),
            ("out", "tcp", 22, 22, f"{PARTNER_SFTP}/32", "Partner SFTP, monthly upload", "unused"),
            ("out", "udp", 53, 53, "10.0.2.53/32", "Internal DNS resolver", "used"),
        )),
        SecurityGroup(sg["monitoring"], "monitoring", "Prometheus and blackbox probes", "monitoring", rules(
            "monitoring",
            ("in", "tcp", 9090, 9090, "sg:bastion", "Prometheus UI from bastion", ""),
            ("out", "tcp", 9100, 9100, "sg:app", "Scrape app", "used"),
            ("out", "tcp", 9100, 9100, "sg:db", "Scrape db", "used"),
            ("out", "tcp", 9100, 9100, "sg:web", "Scrape web (exporter removed)", "unused"),
            ("out", "icmp", -1, -1, "10.0.1.0/24", "Ping web tier", "partly-used"),
            ("out", "tcp", 443, 443, "0.0.0.0/0", "Alert webhooks", "used"),
            ("out", "udp", 53, 53, "10.0.2.53/32", "Internal DNS resolver", "used"),
        )),
        SecurityGroup(sg["bastion"], "bastion", "SSH bastion (no flow log in its subnet)", "bastion", rules(
            "bastion",
            ("in", "tcp", 22, 22, pl_corp, "SSH from the office", ""),
            ("out", "tcp", 22, 22, "10.0.0.0/16", "SSH to hosts", "no-evidence"),
            ("out", "tcp", 3389, 3389, "10.0.4.0/24", "RDP to Windows batch hosts", "no-evidence"),
            ("out", "tcp", 443, 443, "0.0.0.0/0", "Package updates", "no-evidence"),
        )),
        SecurityGroup(sg["dns"], "dns", "Internal DNS resolver (unbound)", "dns", rules(
            "dns",
            ("in", "udp", 53, 53, "10.0.0.0/16", "DNS from the VPC", ""),
            ("in", "tcp", 53, 53, "10.0.0.0/16", "DNS over TCP from the VPC", ""),
            ("out", "udp", 53, 53, "10.0.0.2/32", "Forward to the Amazon DNS server", "invisible"),
            ("out", "tcp", 53, 53, "10.0.0.2/32", "Forward to the Amazon DNS server (TCP)", "invisible"),
            ("out", "udp", 53, 53, "0.0.0.0/0", "Forward partner zone", "used"),
        )),
        SecurityGroup(
            sg["vpce-secretsmanager"], "vpce-secretsmanager", "Secrets Manager interface endpoint",
            "vpce-secretsmanager", rules(
                "vpce-secretsmanager",
                ("in", "tcp", 443, 443, "10.0.0.0/16", "HTTPS from the VPC", ""),
                ("out", "-1", -1, -1, "0.0.0.0/0", None, "unused"),
            ),
        ),
        SecurityGroup(sg["launch-wizard-1"], "launch-wizard-1",
                      "launch-wizard-1 created 2026-03-02T09:14:55Z",
                      None, rules(
            "launch-wizard-1",
            ("in", "tcp", 22, 22, "0.0.0.0/0", None, ""),
            ("out", "-1", -1, -1, "0.0.0.0/0", None, "unattached"),
        )),
        # ---- churn: their members come and go in the window (see _build_estate's ENIs and the README)
        # The Auto Scaling group's instances keep the egress a new group starts with (allow-all, both
        # families): everything they need is inside the VPC, so it narrows to SG references.
        SecurityGroup(sg["orders"], "orders", f"Orders service (Auto Scaling group {ASG_NAME})", "orders",
                      rules(
            "orders",
            ("in", "tcp", 22, 22, "sg:bastion", "SSH from bastion", ""),
            ("out", "-1", -1, -1, "0.0.0.0/0", None, "partly-used"),
            ("out", "-1", -1, -1, "::/0", None, "partly-used"),
        )),
        SecurityGroup(sg["ledger"], "ledger", "Ledger internal API (8443, dual-stack)", "ledger", rules(
            "ledger",
            ("in", "tcp", 8443, 8443, "sg:orders", "Ledger API from orders", ""),
            ("in", "tcp", 8443, 8443, "sg:invoicer-tasks", "Ledger API from invoicer tasks", ""),
            ("in", "tcp", 22, 22, "sg:bastion", "SSH from bastion", ""),
            ("out", "tcp", 5432, 5432, "sg:db", "PostgreSQL", "used"),
            ("out", "udp", 53, 53, "10.0.2.53/32", "Internal DNS resolver", "used"),
            ("out", "tcp", 443, 443, "0.0.0.0/0", "HTTPS out via NAT (never used)", "unused"),
        )),
        SecurityGroup(sg["invoicer-tasks"], "invoicer-tasks",
                      f"ECS service {ECS_SERVICE} (Fargate tasks, awsvpc)", "invoicer-tasks", rules(
            "invoicer-tasks",
            ("out", "-1", -1, -1, "0.0.0.0/0", None, "partly-used"),
        )),
        SecurityGroup(sg["lambda-reconciler"], "lambda-reconciler",
                      f"Lambda function {LAMBDA_FUNCTION} (VPC access)", "lambda-reconciler", rules(
            "lambda-reconciler",
            ("out", "tcp", 5432, 5432, "10.0.3.0/24", "PostgreSQL subnet", "partly-used"),
            ("out", "tcp", 443, 443, "0.0.0.0/0", "AWS APIs", "partly-used"),
            ("out", "udp", 53, 53, "10.0.2.53/32", "Internal DNS resolver", "used"),
        )),
    )  # fmt: skip
    # Deleted on 2026-11-01 with its last member: absent from describe-security-groups (rules unknown).
    former_groups = (
        SecurityGroup(
            sg["reports-legacy"],
            "reports-legacy",
            "Legacy reporting service",
            "reports-legacy",
            (),
            deleted=_at("2026-11-01T09:52:05"),
        ),
    )

    prefix_lists = (
        PrefixList(pl_cf, "com.amazonaws.global.cloudfront.origin-facing", "AWS", None),
        PrefixList(pl_s3, f"com.amazonaws.{REGION}.s3", "AWS", tuple(
            PrefixListEntry(cidr) for cidr in ("3.5.64.0/21", "3.5.72.0/23", "52.92.0.0/17", "52.218.0.0/17")
        )),
        PrefixList(pl_ddb, f"com.amazonaws.{REGION}.dynamodb", "AWS", tuple(
            PrefixListEntry(cidr) for cidr in ("52.94.5.0/24", "52.94.24.0/23", "52.119.240.0/21")
        )),
        PrefixList(pl_corp, "corp-office", ACCOUNT_ID, (
            PrefixListEntry("203.0.113.64/27", "Dublin office"),
            PrefixListEntry("198.51.100.96/28", "VPN egress"),
        ), max_entries=10, version=3, name_tag="corp-office"),
    )  # fmt: skip

    nat_id = _aws_id("nat", "public")
    vpce_id = _aws_id("vpce", "secretsmanager")

    def host(
        name: str,
        role: str,
        subnet: str,
        ip: str,
        groups: tuple[str, ...],
        *,
        os: str = "linux",
        life: Lifecycle | None = None,
        **extra: Any,
    ) -> NetworkInterface:
        eni_id = SEED_ENI_ID if name == "web-1" else _aws_id("eni", name)
        launched = "2026-09-14T08:12:03+00:00" if life is None else \
            datetime.fromtimestamp(life.created, UTC).isoformat()  # fmt: skip
        return NetworkInterface(
            eni_id=eni_id,
            name=name,
            role=role,
            subnet_id=sub[subnet],
            private_ip=ip,
            mac_address=_mac(name),
            group_ids=tuple(sg[group] for group in groups),
            instance_id=_aws_id("i", name),
            os=os,
            attachment_id=_aws_id("eni-attach", name),
            attach_time=launched,
            life=life,
            **extra,
        )

    def task(index: int, ip: str, created: str, deleted: str | None = None) -> NetworkInterface:
        """A Fargate task ENI of the ECS service (one task, one ENI; ECS creates and deletes it)."""
        name = f"invoicer-task-{index}"
        born = _at(created)
        return NetworkInterface(
            eni_id=_aws_id("eni", name), name=name, role="ecs-task", subnet_id=sub["app"], private_ip=ip,
            mac_address=_mac(name), group_ids=(sg["invoicer-tasks"],), requester_managed=True,
            requester_id=ECS_REQUESTER_ID,
            description=f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:attachment/{_uuid(f'ecs-attachment/{name}')}",
            # A former task's attachment is in no file (CreateNetworkInterface precedes it): no id for it.
            attachment_id=_aws_id("eni-attach", name) if deleted is None else "",
            attach_time=datetime.fromtimestamp(born + 11, UTC).isoformat(), tagged=False,
            tags=(("aws:ecs:clusterName", ECS_CLUSTER),), attachment_owner=FARGATE_INSTANCE_OWNER,
            life=Lifecycle(born, None if deleted is None else _at(deleted), "ecs"),
        )  # fmt: skip

    enis = (
        NetworkInterface(
            eni_id=_aws_id("eni", "nat-gateway"), name="nat-gateway", role="nat", subnet_id=sub["public"],
            private_ip="10.0.0.201", mac_address=_mac("nat-gateway"), interface_type="nat_gateway",
            requester_managed=True, requester_id=NAT_REQUESTER_ID, os="managed",
            description=f"Interface for NAT Gateway {nat_id}", public_ip="52.30.211.45",
            public_ip_owner=ACCOUNT_ID, allocation_id=_aws_id("eipalloc", "nat"),
            association_id=_aws_id("eipassoc", "nat"), attachment_id=_ela_attachment("nat"),
            source_dest_check=False, tagged=False,
        ),
        host("bastion", "bastion", "public", "10.0.0.50", ("bastion",), public_ip="52.31.8.120",
             public_ip_owner=ACCOUNT_ID, allocation_id=_aws_id("eipalloc", "bastion"),
             association_id=_aws_id("eipassoc", "bastion")),
        host("web-1", "web", "web", "10.0.1.10", ("web",), public_ip="34.242.17.201",
             ipv6_addresses=("2a05:d018:abcd:1201:8f4b:2c6e:d1a0:310a",)),
        host("web-2", "web", "web", "10.0.1.11", ("web",), public_ip="34.242.88.14",
             ipv6_addresses=("2a05:d018:abcd:1201:47e2:9b15:c3d8:5e21",)),
        host("web-3", "web", "web", "10.0.1.12", ("web",), public_ip="34.243.5.166"),
        host("app-1", "app", "app", "10.0.2.15", ("app",)),
        host("app-2", "app", "app", "10.0.2.16", ("app",), secondary_ips=("10.0.2.17",)),
        host("app-3", "app", "app", "10.0.2.30", ("app",), os="windows", resolver="dns-1"),
        host("dns-1", "dns", "app", "10.0.2.53", ("dns",)),
        NetworkInterface(
            eni_id=_aws_id("eni", "vpce-secretsmanager"), name="vpce-secretsmanager", role="endpoint",
            subnet_id=sub["app"], private_ip="10.0.2.100", mac_address=_mac("vpce-secretsmanager"),
            group_ids=(sg["vpce-secretsmanager"],), interface_type="vpc_endpoint", requester_managed=True,
            requester_id=ENDPOINT_REQUESTER_ID, os="managed", description=f"VPC Endpoint Interface {vpce_id}",
            attachment_id=_ela_attachment("vpce"), tagged=False,
        ),
        host("db-1", "db", "db", "10.0.3.10", ("db",), resolver="dns-1"),
        host("db-2", "db", "db", "10.0.3.11", ("db",), resolver="dns-1"),
        host("batch-1", "batch", "batch", "10.0.4.10", ("batch",), resolver="dns-1"),
        host("batch-2", "batch", "batch", "10.0.4.20", ("batch", "default"), os="windows", resolver="dns-1"),
        host("mon-1", "monitoring", "batch", "10.0.4.50", ("monitoring",), resolver="dns-1"),
        # ---- churn: current at the end, created before or in the window (Lifecycle; README "Churn")
        host("orders-2", "orders", "app", "10.0.2.129", ("orders",),
             ipv6_addresses=("2a05:d018:abcd:1202:1f7a:c3d5:92e4:b68",),
             life=Lifecycle(_at("2026-11-04T09:56:33"), None, "autoscaling",
                            ((_at("2026-11-04T09:59:58"), "ResourceDiscovered"),))),
        host("ledger-2", "ledger", "app", "10.0.2.212", ("ledger",),
             ipv6_addresses=("2a05:d018:abcd:1202:e5c4:7a19:3b02:d6f1",),
             life=Lifecycle(_at("2026-11-05T13:51:10"), None, "admin",
                            ((_at("2026-11-05T13:54:47"), "ResourceDiscovered"),))),
        task(7, "10.0.2.70", "2026-11-06T12:29:40"),  # the address reports-1 had until 2026-11-01
        task(8, "10.0.2.96", "2026-11-08T16:21:03"),
        NetworkInterface(
            eni_id=_aws_id("eni", "reconciler-eni"), name="reconciler-eni", role="lambda",
            subnet_id=sub["app"], private_ip="10.0.2.141", mac_address=_mac("reconciler-eni"),
            group_ids=(sg["lambda-reconciler"],), interface_type="lambda", requester_managed=True,
            requester_id=LAMBDA_REQUESTER_ID,
            description=f"AWS Lambda VPC ENI-{LAMBDA_FUNCTION}-{_uuid('lambda-eni/reconciler')}",
            attachment_id=_ela_attachment("reconciler"), tagged=False,
            life=Lifecycle(_at("2026-10-02T13:05:27"), None, "lambda"),
        ),
    )  # fmt: skip
    # Deleted in the window: their records end at their deletion; only the history names them afterwards.
    former_enis = (
        host("orders-1", "orders", "app", "10.0.2.44", ("orders",),
             ipv6_addresses=("2a05:d018:abcd:1202:6c1e:8b2f:40a9:d3e1",),
             life=Lifecycle(_at("2026-10-12T10:14:07"), _at("2026-11-04T10:02:41"), "autoscaling",
                            ((_at("2026-10-12T10:17:42"), "ResourceDiscovered"),
                             (_at("2026-11-04T10:08:19"), "ResourceDeleted")))),
        host("ledger-1", "ledger", "app", "10.0.2.58", ("ledger",),
             ipv6_addresses=("2a05:d018:abcd:1202:9d3:5e7a:c21f:4b80",),
             life=Lifecycle(_at("2026-09-14T08:12:03"), _at("2026-11-05T14:03:52"), "admin",
                            ((_at("2026-10-01T11:42:17"), "ResourceDiscovered"),
                             (_at("2026-11-05T14:09:26"), "ResourceDeleted")))),
        host("reports-1", "reports", "app", "10.0.2.70", ("reports-legacy",),
             life=Lifecycle(_at("2026-10-20T15:31:44"), _at("2026-11-01T09:37:12"), "admin")),
        task(1, "10.0.2.112", "2026-10-31T18:22:41", "2026-11-01T16:07:55"),  # a deployment replaces it
        task(2, "10.0.2.201", "2026-11-01T16:02:18", "2026-11-03T07:48:31"),  # failed its health check
        task(3, "10.0.2.87", "2026-11-03T07:45:06", "2026-11-04T21:11:37"),  # a deployment
        task(4, "10.0.2.164", "2026-11-03T09:31:52", "2026-11-03T19:03:14"),  # scale-out for the peak
        task(5, "10.0.2.233", "2026-11-04T21:08:23", "2026-11-06T12:33:09"),  # a deployment
        task(6, "10.0.2.45", "2026-11-05T10:16:45", "2026-11-05T17:42:58"),  # scale-out
    )  # fmt: skip

    s3_destination = f"arn:aws:s3:::{S3_BUCKET}"
    flow_logs = (
        FlowLog(_aws_id("fl", "web"), "web-subnet", sub["web"], "s3", s3_destination, DEFAULT_FIELDS,
                "2026-09-15T10:21:37.429000+00:00"),
        FlowLog(_aws_id("fl", "app"), "app-subnet", sub["app"], "s3", s3_destination, CUSTOM_V5_FIELDS,
                "2026-09-15T10:24:02.918000+00:00"),
        FlowLog(_aws_id("fl", "db"), "db-subnet", sub["db"], "s3", s3_destination, CUSTOM_V5_FIELDS,
                "2026-09-15T10:24:03.377000+00:00"),
        FlowLog(_aws_id("fl", "batch"), "batch-subnet", sub["batch"], "s3", s3_destination, CUSTOM_V5_FIELDS,
                "2026-09-15T10:24:03.841000+00:00"),
        FlowLog(_aws_id("fl", "nat"), "nat-gateway", _aws_id("eni", "nat-gateway"), "cloud-watch-logs",
                f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/vpc/flowlogs/nat-gateway", DEFAULT_FIELDS,
                "2026-09-16T14:02:51.006000+00:00", log_group_name="/vpc/flowlogs/nat-gateway",
                deliver_logs_permission_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/vpc-flow-logs-to-cloudwatch"),
    )  # fmt: skip

    return Estate(
        account_id=ACCOUNT_ID,
        region=REGION,
        vpc=vpc,
        subnets=subnets,
        security_groups=groups,
        prefix_lists=prefix_lists,
        network_interfaces=enis,
        flow_logs=flow_logs,
        traffic=_traffic(),
        nat_gateway_id=nat_id,
        vpc_endpoint_id=vpce_id,
        former_interfaces=former_enis,
        former_groups=former_groups,
        dns_names=_dns_names(),
        dns_queries=_dns_queries(),
    )


def _traffic() -> tuple[TrafficSpec, ...]:
    """The estate's traffic. Hours are UTC; the business day is 07-19/20. An ENI with a ``life`` takes part
    only in the intervals it lives through (a connection to a server ends when the server goes)."""
    web = ("web-1", "web-2", "web-3")
    tasks = tuple(f"invoicer-task-{index}" for index in range(1, 9))
    return (
        # ---- internet -> web tier (ingress; the web ENIs' egress records are replies from 443/80)
        TrafficSpec("users-https", ("@users",), web, 6, (443,), "short", "internet users browse the site",
                    hours=(7, 22), rate=0.8, night_rate=0.15),
        TrafficSpec("users-https-ipv6", ("@users6",), ("web-1/ipv6",), 6, (443,), "short",
                    "IPv6 users reach web-1", hours=(7, 22), rate=0.2, night_rate=0.03),
        TrafficSpec("users-http", ("@users",), web, 6, (80,), "short", "plain-HTTP hits, redirected",
                    hours=(7, 22), rate=0.05, night_rate=0.02, volume="small"),
        TrafficSpec("scans", ("@scanners",), web, 6, (22, 23, 445, 3389, 5900, 6379, 8080), "short",
                    "internet scanners, rejected by the web SG", rate=0.05, night_rate=0.05,
                    volume="syn", action="REJECT"),
        # ---- web tier
        TrafficSpec("web-app-api", web, ("app-1", "app-2"), 6, (8080,), "session",
                    "keep-alive HTTP pool to the app API", hours=(8, 18), length=(6, 24), volume="api"),
        TrafficSpec("web-app-grpc", ("web-1",), ("app-1", "app-2"), 6, (50051,), "short",
                    "gRPC calls (service port inside the ephemeral range)", hours=(7, 20), rate=0.15,
                    volume="grpc"),
        TrafficSpec("web-app-grpc-vip", ("web-3",), ("app-2/secondary",), 6, (50051,), "short",
                    "gRPC to app-2's secondary IP (pkt-dstaddr differs from dstaddr)", hours=(7, 20),
                    rate=0.15, volume="grpc"),
        TrafficSpec("web-captcha", web, CAPTCHA_API, 6, (443,), "short",
                    "the partner's captcha verification API (a stable name)", route="igw", hours=(7, 22),
                    rate=0.2, night_rate=0.02, volume="small", resolves=PARTNER_API_NAME),
        TrafficSpec("web1-ipv6-api", ("web-1/ipv6",), IPV6_API, 6, (443,), "short",
                    "an API reached over IPv6 (a stable AAAA name)", route="igw", hours=(7, 22), rate=0.1,
                    volume="small", resolves=IPV6_API_NAME),
        TrafficSpec("web-dns", web, ("dns-1",), 17, (53,), "short", "name lookups", rate=0.15,
                    night_rate=0.15, volume="dns"),
        TrafficSpec("seed-ssh-reject", ("web-1",), ("app-1",), 6, (22,), "periodic",
                    "a deploy hook on web-1 retries ssh to app-1 every 2 h: rejected by web-1's egress rules",
                    every=12, volume="syn-retry", action="REJECT"),
        # ---- app tier
        TrafficSpec("app-db-pool", ("app-1", "app-2"), ("db-1",), 6, (5432,), "session",
                    "connection pool to PostgreSQL", hours=(7, 19), length=(12, 48), volume="pool"),
        TrafficSpec("app-intra", ("app-1",), ("app-2",), 6, (8080,), "short", "app-to-app API calls",
                    hours=(7, 20), rate=0.1, volume="api"),
        TrafficSpec("app-secrets", ("app-1", "app-2"), ("vpce-secretsmanager",), 6, (443,), "periodic",
                    "secret refresh through the interface endpoint (its private DNS name)", every=12,
                    route="endpoint", volume="small", resolves=SECRETS_MANAGER_NAME),
        TrafficSpec("app-payments", ("app-1", "app-2"), PAYMENT_API, 6, (443,), "short",
                    "payment provider API via the NAT gateway (its fixed addresses are configured: no "
                    "lookup)", route="nat", hours=(7, 22), rate=0.2, night_rate=0.02, volume="small"),
        TrafficSpec("app-webhooks", ("app-1", "app-2"), WEBHOOKS_POOL, 6, (443,), "short",
                    "webhooks to a SaaS behind a CDN whose addresses rotate, via the NAT gateway",
                    route="nat", hours=(7, 20), rate=0.4, night_rate=0.03, volume="small",
                    resolves=WEBHOOKS_NAME),
        TrafficSpec("app-license", ("app-2",), (LICENSE_API,), 6, (443,), "count",
                    "the vendor's licence check: twice in the window", route="nat", hours=(9, 17),
                    weekdays_only=True, count=2, volume="small", resolves=LICENSE_NAME),
        TrafficSpec("app-dns", ("app-1", "app-2", "app-3"), ("dns-1",), 17, (53,), "short", "name lookups",
                    rate=0.1, night_rate=0.1, volume="dns"),
        TrafficSpec("reporting-grpc", ("app-3",), ("app-1",), 6, (50051,), "periodic",
                    "Windows reporting service polls gRPC (both ports look ephemeral)", hours=(7, 19),
                    weekdays_only=True, every=3, volume="grpc"),
        TrafficSpec("reporting-db", ("app-3",), ("db-1",), 6, (5432,), "session", "nightly report query",
                    hours=(2, 3), length=(3, 6), volume="pool"),
        TrafficSpec("reporting-ntp", ("app-3",), (WINDOWS_TIME,), 17, (123,), "periodic",
                    "w32time sync (source port 123) via the NAT gateway", every=24, route="nat",
                    client_port=123, volume="ntp", resolves=TIME_NAME),
        TrafficSpec("dns-forward-partner", ("dns-1",), (PARTNER_DNS,), 17, (53,), "short",
                    "resolver forwards the partner zone via the NAT gateway", route="nat", rate=0.05,
                    night_rate=0.05, volume="dns"),
        # ---- db tier
        TrafficSpec("db-replication", ("db-2",), ("db-1",), 6, (5432,), "session",
                    "streaming replication (open before the window starts, still open at its end)",
                    length=(150, 420), volume="replication"),
        TrafficSpec("db-wal-archive", ("db-1",), S3_ADDRESSES, 6, (443,), "periodic",
                    "WAL archive uploads to S3 via the gateway endpoint", every=6, route="s3",
                    aws_service="S3", volume="upload", resolves=f"acme-wal-archive.s3.{REGION}.amazonaws.com"),
        TrafficSpec("db-dns", ("db-1", "db-2"), ("dns-1",), 17, (53,), "short", "name lookups", rate=0.03,
                    night_rate=0.03, volume="dns"),
        # ---- batch subnet
        TrafficSpec("batch-s3", ("batch-1",), S3_ADDRESSES, 6, (443,), "short",
                    "nightly export to S3 via the gateway endpoint", hours=(1, 4), rate=1.0, route="s3",
                    aws_service="S3", volume="upload", resolves=f"acme-exports.s3.{REGION}.amazonaws.com"),
        TrafficSpec("batch-db", ("batch-1",), ("db-1",), 6, (5432,), "session", "nightly extract",
                    hours=(1, 4), length=(10, 18), volume="pool"),
        TrafficSpec("batch-fx", ("batch-1",), (FX_RATES_API,), 6, (443,), "short", "FX rates download",
                    route="nat", hours=(1, 2), rate=0.5, volume="download", resolves=FX_RATES_NAME),
        TrafficSpec("batch-apt-http", ("batch-1",), (APT_MIRROR,), 6, (80,), "short", "apt update",
                    route="nat", hours=(6, 7), rate=0.5, volume="download", resolves=APT_MIRROR_NAME),
        TrafficSpec("batch-apt-https", ("batch-1",), (APT_MIRROR,), 6, (443,), "short", "apt security repo",
                    route="nat", hours=(6, 7), rate=0.3, volume="download", resolves=APT_MIRROR_NAME),
        TrafficSpec("batch-dns", ("batch-1",), ("dns-1",), 17, (53,), "short", "name lookups", hours=(1, 7),
                    rate=0.5, volume="dns"),
        TrafficSpec("batch2-db", ("batch-2",), ("db-1",), 6, (5432,), "session",
                    "Windows batch job (ephemeral 49152-65535)", hours=(2, 3), length=(3, 5), volume="pool"),
        TrafficSpec("batch2-s3", ("batch-2",), S3_ADDRESSES, 6, (443,), "short", "Windows batch upload",
                    hours=(2, 3), rate=0.5, route="s3", aws_service="S3", volume="upload",
                    resolves=f"acme-exports.s3.{REGION}.amazonaws.com"),
        TrafficSpec("batch2-dns", ("batch-2",), ("dns-1",), 17, (53,), "short", "name lookups", hours=(2, 3),
                    rate=0.5, volume="dns"),
        TrafficSpec("batch2-ntp", ("batch-2",), (WINDOWS_TIME,), 17, (123,), "count",
                    "weekly w32time sync via the NAT gateway (only the default SG permits it)", count=2,
                    route="nat", client_port=123, volume="ntp", resolves=TIME_NAME),
        # ---- monitoring
        TrafficSpec("mon-ping-web", ("mon-1",), web, 1, (0,), "periodic", "blackbox ping of the web hosts",
                    every=6, fanout=True, volume="icmp"),
        TrafficSpec("mon-scrape", ("mon-1",), ("app-1", "app-2", "db-1", "db-2"), 6, (9100,), "periodic",
                    "node_exporter scrapes", every=6, fanout=True, volume="scrape"),
        TrafficSpec("mon-alerts", ("mon-1",), (ALERT_WEBHOOK,), 6, (443,), "count", "alert webhooks",
                    count=5, route="nat", volume="small", resolves=ALERTS_NAME),
        TrafficSpec("mon-dns", ("mon-1",), ("dns-1",), 17, (53,), "short", "name lookups", rate=0.05,
                    night_rate=0.05, volume="dns"),
        # ---- the bastion has no flow log: only its peers log these sessions
        TrafficSpec("bastion-ssh", ("bastion",), ("web-2", "app-1", "db-1"), 6, (22,), "count",
                    "admin SSH sessions", hours=(9, 17), weekdays_only=True, count=4, length=(2, 6),
                    volume="ssh"),
        TrafficSpec("bastion-rdp", ("bastion",), ("batch-2",), 6, (3389,), "count", "an RDP session",
                    hours=(9, 17), weekdays_only=True, count=1, length=(3, 5), volume="rdp"),
        # ---- churn in the app subnet: orders-1 -> orders-2 (11-04 10:00), ledger-1 -> ledger-2
        # (11-05 14:00), eight invoicer tasks one after another, the Lambda ENI, reports-1 (gone 11-01)
        TrafficSpec("orders-db-pool", ("orders-1", "orders-2"), ("db-1",), 6, (5432,), "session",
                    "orders' connection pool to PostgreSQL", hours=(6, 23), length=(12, 48), volume="pool"),
        TrafficSpec("orders-ledger", ("orders-1/ipv6", "orders-2/ipv6"), ("ledger-1/ipv6", "ledger-2/ipv6"),
                    6, (8443,), "short", "ledger API calls over IPv6 (the client prefers IPv6)",
                    hours=(7, 22), rate=0.4, night_rate=0.05, volume="api"),
        TrafficSpec("orders-ledger-v4", ("orders-1", "orders-2"), ("ledger-1", "ledger-2"), 6, (8443,),
                    "periodic", "the nightly statement export, an IPv4-only client", hours=(0, 5), every=3,
                    volume="api"),
        TrafficSpec("orders-dns", ("orders-1", "orders-2"), ("dns-1",), 17, (53,), "short", "name lookups",
                    rate=0.1, night_rate=0.1, volume="dns"),
        TrafficSpec("orders-legacy-reports", ("orders-1",), ("reports-1",), 6, (9000,), "count",
                    "the last pulls from the legacy reporting service (decommissioned 11-01 09:37)",
                    hours=(1, 9), count=4, length=(1, 2), volume="api"),
        TrafficSpec("ledger-db-pool", ("ledger-1", "ledger-2"), ("db-1",), 6, (5432,), "session",
                    "ledger's connection pool (ledger-1's is open before the window starts)",
                    length=(36, 144), volume="pool"),
        TrafficSpec("ledger-dns", ("ledger-1", "ledger-2"), ("dns-1",), 17, (53,), "short", "name lookups",
                    rate=0.05, night_rate=0.05, volume="dns"),
        TrafficSpec("invoicer-db", tasks, ("db-1",), 6, (5432,), "session", "each task's PostgreSQL pool",
                    length=(6, 36), volume="pool"),
        TrafficSpec("invoicer-ledger", tasks, ("ledger-1", "ledger-2"), 6, (8443,), "short",
                    "invoice postings to the ledger API", hours=(7, 20), rate=0.3, night_rate=0.03,
                    volume="api"),
        TrafficSpec("invoicer-dns", tasks, ("dns-1",), 17, (53,), "short", "name lookups", rate=0.08,
                    night_rate=0.08, volume="dns"),
        TrafficSpec("reconciler-db", ("reconciler-eni",), ("db-1",), 6, (5432,), "periodic",
                    "the Lambda function runs every 20 minutes", every=2, volume="api"),
        TrafficSpec("reconciler-secrets", ("reconciler-eni",), ("vpce-secretsmanager",), 6, (443,),
                    "periodic", "its database secret, at cold starts, through the interface endpoint",
                    every=18, route="endpoint", volume="small"),
        TrafficSpec("reconciler-dns", ("reconciler-eni",), ("dns-1",), 17, (53,), "periodic",
                    "name lookups at each run", every=2, volume="dns"),
    )  # fmt: skip


def _dns_names() -> tuple[DnsName, ...]:
    """What the Route 53 Resolver answers for the names the hosts look up (README "DNS")."""
    s3_chain = (S3_ENDPOINT_NAME,)
    return (
        # ---- names of internet destinations the workloads reach
        DnsName(PARTNER_API_NAME, CAPTCHA_API, ttl=3600),
        DnsName(IPV6_API_NAME, IPV6_API, ttl=300),
        DnsName(WEBHOOKS_NAME, WEBHOOKS_POOL, ttl=60, chain=(WEBHOOKS_CDN,), answers="rotate", per_answer=2,
                rotate_seconds=7200),
        DnsName(LICENSE_NAME, (LICENSE_API,), ttl=300),
        DnsName(FX_RATES_NAME, (FX_RATES_API,), ttl=300),
        DnsName(APT_MIRROR_NAME, (APT_MIRROR,), ttl=3600),
        DnsName(ALERTS_NAME, (ALERT_WEBHOOK,), ttl=60),
        DnsName(TIME_NAME, (WINDOWS_TIME,), ttl=3600),
        # ---- S3 buckets (virtual-hosted names): one address per answer, 5 s TTL, behind the prefix list
        DnsName(f"acme-wal-archive.s3.{REGION}.amazonaws.com", S3_ADDRESSES, ttl=5, chain=s3_chain,
                answers="flow"),
        DnsName(f"acme-exports.s3.{REGION}.amazonaws.com", S3_ADDRESSES, ttl=5, chain=s3_chain, answers="flow"),
        # ---- the interface endpoint's private DNS: the service's regional name answers the endpoint's ENI
        DnsName(SECRETS_MANAGER_NAME, ("10.0.2.100",), ttl=60),
        # ---- names no flow uses
        DnsName("telemetry.vendor.example.com", ("192.0.2.150",), ttl=300),
        DnsName("hooks-v1.saas.example.net", rcode="NXDOMAIN", negative_ttl=900),
        DnsName("db.acme.internal", ("10.0.3.10",), ttl=300),
        DnsName("api.acme.internal", ("10.0.2.15", "10.0.2.16"), ttl=300),
        DnsName("reports.acme.internal", rcode="NXDOMAIN", negative_ttl=300),
    )  # fmt: skip


def _dns_queries() -> tuple[QuerySpec, ...]:
    """The lookups behind no flow. Days count from Sunday 2026-11-01 (day 0)."""
    weekdays = (1, 2, 3, 4, 5)
    return (
        QuerySpec("telemetry", ("app-1", "app-2"), "telemetry.vendor.example.com",
                  "the vendor SDK resolves its telemetry host at each daily restart; telemetry is off",
                  hours=(5, 6), every=3600),
        QuerySpec("stale-webhook", ("app-2",), "hooks-v1.saas.example.net",
                  "a retired webhook endpoint left in app-2's config: NXDOMAIN until the fix on 11-04",
                  hours=(8, 18), days=(1, 2), every=1800),
        QuerySpec("private-zone-db", ("dns-1",), "db.acme.internal",
                  "dns-1 forwards the private zone acme.internal to the Amazon DNS server", hours=(6, 22),
                  every=900),
        QuerySpec("private-zone-api", ("dns-1",), "api.acme.internal",
                  "dns-1 forwards the private zone acme.internal to the Amazon DNS server", hours=(6, 22),
                  every=900),
        QuerySpec("head-office-db", ("@inbound",), "db.acme.internal",
                  "the head office resolves the private zone through the inbound endpoint", hours=(8, 18),
                  days=weekdays, count=6),
        QuerySpec("head-office-reports", ("@inbound",), "reports.acme.internal",
                  "an old bookmark: the legacy reporting service is gone (NXDOMAIN)", hours=(8, 18),
                  days=weekdays, count=2),
        QuerySpec("head-office-fx", ("@inbound",), FX_RATES_NAME,
                  "the treasury system at the head office fetches the same FX rates", hours=(7, 9),
                  days=weekdays, count=3),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------------
# Traffic simulation
# --------------------------------------------------------------------------------------------------------

# (client->server packets, bytes per packet, server->client packets, bytes per packet) per interval.
_VOLUMES: Final[dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]]] = {
    "api": ((6, 60), (80, 700), (6, 80), (120, 1400)),
    "small": ((8, 20), (80, 600), (8, 25), (100, 1400)),
    "pool": ((10, 300), (90, 600), (10, 400), (200, 1400)),
    "replication": ((40, 400), (52, 90), (60, 3000), (900, 1448)),
    "grpc": ((6, 30), (90, 400), (6, 30), (90, 900)),
    "dns": ((1, 1), (62, 92), (1, 1), (90, 320)),
    "ntp": ((1, 1), (76, 76), (1, 1), (76, 76)),
    "icmp": ((3, 3), (84, 84), (3, 3), (84, 84)),
    "upload": ((200, 4000), (1200, 1448), (60, 900), (52, 140)),
    "download": ((8, 80), (80, 400), (20, 2500), (1200, 1448)),
    "scrape": ((5, 9), (90, 320), (8, 60), (900, 1448)),
    "ssh": ((20, 600), (52, 180), (20, 800), (52, 400)),
    "rdp": ((200, 3000), (52, 300), (400, 6000), (200, 1448)),
    "syn": ((1, 1), (40, 44), (0, 0), (0, 0)),
    "syn-retry": ((3, 4), (60, 60), (0, 0), (0, 0)),
}
_SKIPDATA: Final = {
    ("app-2", 4 * INTERVALS_PER_DAY + 86),
    ("app-2", 4 * INTERVALS_PER_DAY + 87),
}  # 11-05 14:20
_TRAFFIC_PATH: Final = {"local": "1", "nat": "1", "endpoint": "1", "s3": "2", "igw": "2"}


@dataclass(frozen=True)
class _Party:
    address: str
    eni: NetworkInterface | None
    os: str

    @property
    def wire_address(self) -> str:
        """What srcaddr/dstaddr show on this party's own ENI: the primary IP stands in for a secondary."""
        if self.eni is not None and self.address in self.eni.secondary_ips:
            return self.eni.private_ip
        return self.address


@dataclass
class _Record:
    eni: NetworkInterface
    interval: int
    direction: str
    srcaddr: str
    dstaddr: str
    srcport: int
    dstport: int
    protocol: int
    action: str
    packets: int
    bytes: int
    flags: int
    start: int
    end: int
    pkt_srcaddr: str
    pkt_dstaddr: str
    src_service: str | None
    dst_service: str | None
    traffic_path: str | None
    delay_ms: int  # CloudWatch ingestion delay (only the CloudWatch export uses it)
    log_status: str = "OK"


_Key = tuple[str, int, str, str, str, int, int, int, str]


class _Simulator:
    """Turns the traffic specs into per-ENI flow-log records, the way VPC Flow Logs would log them."""

    def __init__(self, estate: Estate, seed: int) -> None:
        self.estate = estate
        self.seed = seed
        self.records: dict[_Key, _Record] = {}
        self.nat = next(eni for eni in estate.network_interfaces if eni.role == "nat")
        self.vpc_network = ipaddress.ip_network(estate.vpc.cidr)
        self.pools = {
            "@users": self._pool("users", ("203.0.113.", "198.51.100."), range(128, 255), 80),
            "@users6": [
                _Party(f"2001:db8:{0x1000 + index * 37:x}:{index * 11 + 3:x}::{index * 7 + 5:x}", None,
                       "windows" if index % 2 else "linux")
                for index in range(24)
            ],
            "@scanners": self._pool("scanners", ("192.0.2.",), range(192, 255), 20),
        }  # fmt: skip
        # Route 53 Resolver query logs: the queries logged, each resolver's cache (source address, name,
        # type) -> (asked, expires, addresses), and lookups to make once every connection is known.
        self.queries: list[_Query] = []
        self._cache: dict[tuple[str, str, str], tuple[int, int, tuple[str, ...]]] = {}
        self._pending: list[tuple[int, int, str, NetworkInterface | None, str, str | None]] = []
        self._dns_rngs: dict[str, random.Random] = {}

    def _pool(self, label: str, prefixes: tuple[str, ...], hosts: range, size: int) -> list[_Party]:
        rng = random.Random(f"{self.seed}/pool/{label}")
        addresses = sorted({f"{rng.choice(prefixes)}{rng.choice(hosts)}" for _ in range(size * 3)})[:size]
        return [_Party(address, None, rng.choice(("linux", "windows", "windows"))) for address in addresses]

    # ---- specs -------------------------------------------------------------------------------------------

    def run(self) -> list[_Record]:
        for spec in self.estate.traffic:
            self._run_spec(spec)
        self._schedule_queries()
        self._resolve_pending()
        self._fill_status_rows()
        return list(self.records.values())

    def _parties(self, names: Sequence[str]) -> list[_Party]:
        parties: list[_Party] = []
        for name in names:
            if name.startswith("@"):
                parties.extend(self.pools[name])
                continue
            try:
                eni = self.estate.eni(name.partition("/")[0])
            except KeyError:  # an address on the internet
                parties.append(_Party(name, None, "linux"))
                continue
            parties.append(_Party(resolve_address(self.estate, name), eni, eni.os))
        return parties

    @staticmethod
    def _alive(party: _Party, interval: int) -> bool:
        """Whether the party exists over the whole interval (internet hosts always do)."""
        base = WINDOW_START + interval * INTERVAL_SECONDS
        return party.eni is None or party.eni.lives_through(base, base + INTERVAL_SECONDS)

    @staticmethod
    def _last_alive(party: _Party) -> int:
        """The last interval the party lives through (the window's last for a current ENI)."""
        life = party.eni.life if party.eni is not None else None
        if life is None or life.deleted is None:
            return INTERVALS - 1
        return min(INTERVALS - 1, (life.deleted - WINDOW_START) // INTERVAL_SECONDS - 1)

    @staticmethod
    def _active(spec: TrafficSpec, interval: int) -> bool:
        hour = (interval % INTERVALS_PER_DAY) // 6
        weekday = (6 + interval // INTERVALS_PER_DAY) % 7  # day 0 is a Sunday; Monday = 0
        if spec.weekdays_only and weekday >= 5:
            return False
        return spec.hours[0] <= hour < spec.hours[1]

    def _run_spec(self, spec: TrafficSpec) -> None:
        rng = random.Random(f"{self.seed}/{spec.name}")
        clients = self._parties(spec.clients)
        servers = self._parties(spec.servers)
        pool_clients = spec.clients[0].startswith("@")
        if spec.style == "session":
            for client in clients:
                self._sessions(rng, spec, client, servers)
        elif spec.style == "short" and self._rotating(spec):
            self._short_resolved(rng, spec, clients, servers)
        elif spec.style == "short":
            for interval in range(INTERVALS):
                rate = spec.rate if self._active(spec, interval) else spec.night_rate
                alive = [server for server in servers if self._alive(server, interval)]
                for unit in servers if pool_clients else clients:
                    if not self._alive(unit, interval):
                        continue
                    for _ in range(_poisson(rng, rate) if alive else 0):
                        client = rng.choice(clients) if pool_clients else unit
                        server = unit if pool_clients else rng.choice(alive)
                        start = self._connection(
                            rng, spec, client, server, rng.choice(spec.ports), interval, interval
                        )
                        self._will_resolve(spec, client, server, start)
        elif spec.style == "periodic":
            phase = rng.randrange(spec.every)
            for interval in range(phase, INTERVALS, spec.every):
                if not self._active(spec, interval):
                    continue
                alive = [server for server in servers if self._alive(server, interval)]
                for client in clients:
                    if not alive or not self._alive(client, interval):
                        continue
                    for server in alive if spec.fanout else [rng.choice(alive)]:
                        start = self._connection(
                            rng, spec, client, server, rng.choice(spec.ports), interval, interval
                        )
                        self._will_resolve(spec, client, server, start)
        elif spec.style == "count":
            for client in clients:
                candidates = [
                    interval for interval in range(INTERVALS)
                    if self._active(spec, interval) and self._alive(client, interval)
                    and any(self._alive(server, interval) for server in servers)
                ]  # fmt: skip
                for first in sorted(rng.sample(candidates, spec.count)):
                    last = min(INTERVALS - 1, first + rng.randint(*spec.length) - 1)
                    server = rng.choice([server for server in servers if self._alive(server, first)])
                    last = min(last, self._last_alive(client), self._last_alive(server))
                    start = self._connection(rng, spec, client, server, rng.choice(spec.ports), first, last)
                    self._will_resolve(spec, client, server, start)
        else:
            raise ValueError(f"unknown traffic style {spec.style!r}")

    # ---- DNS lookups (Route 53 Resolver query logs) ------------------------------------------------------

    def _rotating(self, spec: TrafficSpec) -> bool:
        return spec.resolves is not None and self.estate.dns_name(spec.resolves).answers == "rotate"

    def _short_resolved(
        self, rng: random.Random, spec: TrafficSpec, clients: list[_Party], servers: list[_Party]
    ) -> None:
        """``short`` connections to a name whose answer rotates: each connection goes to an address of the
        answer the client holds at that moment (its own cached one, or a fresh one when that expired)."""
        assert spec.resolves is not None
        name = self.estate.dns_name(spec.resolves)
        for interval in range(INTERVALS):
            rate = spec.rate if self._active(spec, interval) else spec.night_rate
            base = WINDOW_START + interval * INTERVAL_SECONDS
            for client in clients:
                if not self._alive(client, interval) or client.eni is None:
                    continue
                for offset in sorted(rng.randint(0, 540) for _ in range(_poisson(rng, rate))):
                    answer = self._lookup(spec.name, client.eni, name, base + offset)
                    choices = [s for s in servers if s.address in answer and self._alive(s, interval)]
                    server = rng.choice(choices)
                    self._connection(
                        rng, spec, client, server, rng.choice(spec.ports), interval, interval, offset=offset
                    )

    def _will_resolve(self, spec: TrafficSpec, client: _Party, server: _Party, start: int) -> None:
        """Note that the client looked the server's name up just before this connection (resolved once
        every connection is known, in time order, so each resolver's cache sees them as they happened)."""
        if spec.resolves is not None and client.eni is not None:
            self._pending.append(
                (start, len(self._pending), spec.name, client.eni, spec.resolves, server.address)
            )

    def _schedule_queries(self) -> None:
        """The lookups behind no flow (:class:`QuerySpec`), at their times."""
        for spec in self.estate.dns_queries:
            rng = random.Random(f"{self.seed}/dns-schedule/{spec.label}")
            for client in spec.clients:
                asker = None if client == "@inbound" else self.estate.eni(client)
                times: list[int] = []
                day_starts = [WINDOW_START + day * 86_400 for day in spec.days]
                if spec.every:
                    for day in day_starts:
                        for slot in range(day + spec.hours[0] * 3600, day + spec.hours[1] * 3600, spec.every):
                            times.append(slot + rng.randint(0, spec.every // 2))
                else:
                    minutes = [day + hour * 3600 + minute * 60 for day in day_starts
                               for hour in range(*spec.hours) for minute in range(60)]  # fmt: skip
                    times = [
                        minute + rng.randint(0, 59) for minute in sorted(rng.sample(minutes, spec.count))
                    ]
                for time in times:
                    if asker is None or asker.life_in(time, time + 1) is not None:
                        self._pending.append((time, len(self._pending), spec.label, asker, spec.name, None))

    def _resolve_pending(self) -> None:
        for time, _, label, asker, name, server in sorted(self._pending, key=lambda item: item[:2]):
            got = self._lookup(label, asker, self.estate.dns_name(name), time, server)
            assert server is None or server in got, (label, name, server, got)
        self._pending.clear()

    def _lookup(
        self,
        label: str,
        asker: NetworkInterface | None,
        name: DnsName,
        time: int,
        server: str | None = None,
    ) -> tuple[str, ...]:
        """The addresses ``asker`` gets for ``name`` at ``time`` (None: the head office, through the inbound
        endpoint). A dual-stack host asking the Amazon DNS server itself asks A and AAAA (getaddrinfo,
        from one socket); each answer its resolver still caches is not asked again, and so not logged.
        ``server`` is the address the connection then used (a ``flow`` name answers just that)."""
        rng = self._dns_rngs.setdefault(label, random.Random(f"{self.seed}/dns/{label}"))
        srcids: tuple[tuple[str, str], ...]
        qtypes: tuple[str, ...]
        if asker is None:
            source, account, vpc = HEAD_OFFICE_DNS, NETWORK_ACCOUNT_ID, HUB_VPC_ID
            srcids = (
                ("resolver_endpoint", INBOUND_ENDPOINT),
                ("resolver_network_interface", INBOUND_ENDPOINT_ENI),
            )
            qtypes, ports = ("A",), (1024, 65535)
        else:
            via = self.estate.eni(asker.resolver) if asker.resolver is not None else asker
            source, account, vpc = via.private_ip, self.estate.account_id, self.estate.vpc.vpc_id
            srcids = (("instance", via.instance_id or ""),)
            qtypes = ("A", "AAAA") if via is asker and asker.ipv6_addresses else ("A",)
            ports = _ephemeral(asker.os) if via is asker else (1024, 65535)  # unbound randomises its ports
        got: list[str] = []
        port: int | None = None
        for qtype in qtypes:
            key = (source, name.name, qtype)
            cached = self._cache.get(key)
            wanted = server if server is not None and _family(server) == _QTYPE_FAMILY[qtype] else None
            if (
                cached is not None
                and cached[0] <= time < cached[1]
                and (name.answers != "flow" or wanted is None or wanted in cached[2])
            ):
                got.extend(cached[2])
                continue
            addresses = _answer(name, qtype, time, wanted)
            port = rng.randint(*ports) if port is None else port
            self.queries.append(_Query(time, account, vpc, name.name, qtype, name.rcode,
                                       _answer_records(name, qtype, addresses), source, port, srcids))  # fmt: skip
            self._cache[key] = (time, time + (name.ttl if addresses else name.negative_ttl), addresses)
            got.extend(addresses)
        return tuple(got)

    def _sessions(self, rng: random.Random, spec: TrafficSpec, client: _Party, servers: list[_Party]) -> None:
        """Back-to-back long-lived connections over each run of active intervals (of the client's life; a
        connection ends when its server goes)."""
        always = spec.hours == (0, 24) and not spec.weekdays_only
        blocks: list[tuple[int, int]] = []
        for interval in range(INTERVALS):
            if self._active(spec, interval) and self._alive(client, interval):
                if blocks and blocks[-1][1] == interval - 1:
                    blocks[-1] = (blocks[-1][0], interval)
                else:
                    blocks.append((interval, interval))
        for block_start, block_end in blocks:
            first = block_start
            while first <= block_end:
                last = min(block_end, first + rng.randint(*spec.length) - 1)
                server = rng.choice([server for server in servers if self._alive(server, first)])
                last = min(last, self._last_alive(server))
                start = self._connection(
                    rng, spec, client, server, rng.choice(spec.ports), first, last,
                    syn=not (always and first == 0), fin=not (always and last == INTERVALS - 1),
                )  # fmt: skip
                self._will_resolve(spec, client, server, start)
                # The pool reopens at once (same interval as the FIN) or after an idle interval or two.
                first = max(last + rng.choice((0, 1, 1, 2)), first + 1)

    # ---- one connection ----------------------------------------------------------------------------------

    def _connection(
        self,
        rng: random.Random,
        spec: TrafficSpec,
        client: _Party,
        server: _Party,
        port: int,
        first: int,
        last: int,
        *,
        syn: bool = True,
        fin: bool = True,
        offset: int | None = None,
    ) -> int:
        """Log one connection over intervals ``first``..``last``; its start (epoch s). ``offset`` (seconds
        into the first interval) is drawn here unless the caller already knows it."""
        protocol = spec.protocol
        icmp = protocol in (1, 58)
        client_port = 0 if icmp else spec.client_port or rng.randint(*_ephemeral(client.os))
        server_port = 0 if icmp else port
        nat_port = rng.randint(*NAT_GATEWAY_PORTS)
        offset = rng.randint(0, 540) if offset is None else offset
        c2s_packets, c2s_size, s2c_packets, s2c_size = _VOLUMES[spec.volume]
        opened = 0
        for interval in range(first, last + 1):
            base = WINDOW_START + interval * INTERVAL_SECONDS
            # A connection open before the window (no SYN) or after it (no FIN) spans whole intervals.
            start = base + (offset if interval == first and syn else rng.randint(0, 2))
            opened = opened or start
            if first == last and syn and fin:
                end = min(base + INTERVAL_SECONDS - 1, start + rng.randint(0, 45))
            elif interval == last and fin:
                end = max(start, base + rng.randint(20, 590))
            else:
                end = base + INTERVAL_SECONDS - rng.randint(1, 4)
            c2s_flags = s2c_flags = 0
            if protocol == 6 and spec.action == "REJECT":
                c2s_flags = 2  # unanswered SYNs
            elif protocol == 6:
                if interval == first and syn:
                    c2s_flags, s2c_flags = c2s_flags | 2, s2c_flags | 18
                if interval == last and fin:
                    c2s_flags, s2c_flags = c2s_flags | 1, s2c_flags | 1
            up_packets = rng.randint(*c2s_packets)
            up_bytes = up_packets * rng.randint(*c2s_size)
            down_packets = rng.randint(*s2c_packets)
            down_bytes = down_packets * rng.randint(*s2c_size)
            flow = _Flow(
                spec, client, server, client_port, server_port, nat_port, interval, start, end,
                (up_packets, up_bytes, c2s_flags), (down_packets, down_bytes, s2c_flags),
            )  # fmt: skip
            self._log(rng, flow)
        return opened

    def _log(self, rng: random.Random, flow: _Flow) -> None:
        """Records of one connection in one interval, on every logged ENI it passes."""
        spec, client, server = flow.spec, flow.client, flow.server
        # The client's packets as the client ENI sends them and as the server ENI receives them (the
        # primary private IP stands in for a secondary one in srcaddr/dstaddr; pkt-* keep the real one).
        up_out = _Leg("egress", client.wire_address, server.address, flow.client_port, flow.server_port,
                      client.address, server.address, flow.up, dst_service=spec.aws_service,
                      traffic_path=_TRAFFIC_PATH[spec.route])  # fmt: skip
        up_in = _Leg("ingress", client.address, server.wire_address, flow.client_port, flow.server_port,
                     client.address, server.address, flow.up)  # fmt: skip
        down_out = _Leg(
            "egress",
            server.wire_address,
            client.address,
            flow.server_port,
            flow.client_port,
            server.address,
            client.address,
            flow.down,
            traffic_path="1" if client.eni is not None or self._in_vpc(client.address) else "2",
        )
        down_in = _Leg("ingress", server.address, client.wire_address, flow.server_port, flow.client_port,
                       server.address, client.address, flow.down, src_service=spec.aws_service)  # fmt: skip
        if spec.action == "REJECT":
            # Egress rules stop it at the client ENI; ingress rules at the server ENI for outside clients.
            if client.eni is not None:
                self._add(rng, client.eni, flow, dataclasses.replace(up_out, traffic_path=None), "REJECT")
            elif server.eni is not None:
                self._add(rng, server.eni, flow, up_in, "REJECT")
            return
        if client.eni is not None:
            self._add(rng, client.eni, flow, up_out, "ACCEPT")
            self._add(rng, client.eni, flow, down_in, "ACCEPT")
        if server.eni is not None:
            self._add(rng, server.eni, flow, up_in, "ACCEPT")
            self._add(rng, server.eni, flow, down_out, "ACCEPT")
        if spec.route == "nat":
            # The NAT gateway ENI logs both legs; srcaddr/dstaddr show its own address on the inside leg.
            nat, nat_ip = self.nat, self.nat.private_ip
            for leg in (
                _Leg("ingress", client.address, nat_ip, flow.client_port, flow.server_port, client.address,
                     server.address, flow.up),
                _Leg("egress", nat_ip, server.address, flow.nat_port, flow.server_port, nat_ip,
                     server.address, flow.up, traffic_path="8"),
                _Leg("ingress", server.address, nat_ip, flow.server_port, flow.nat_port, server.address,
                     nat_ip, flow.down),
                _Leg("egress", nat_ip, client.address, flow.server_port, flow.client_port, server.address,
                     client.address, flow.down, traffic_path="1"),
            ):  # fmt: skip
                self._add(rng, nat, flow, leg, "ACCEPT")

    def _in_vpc(self, address: str) -> bool:
        parsed = ipaddress.ip_address(address)
        return parsed.version == 4 and parsed in self.vpc_network

    def _logged(self, eni: NetworkInterface, interval: int) -> bool:
        if self.estate.flow_log_of(eni) is None or (eni.name, interval) in _SKIPDATA:
            return False
        if eni.role == "nat":  # only one day of its CloudWatch flow log is exported
            return interval // INTERVALS_PER_DAY == CLOUDWATCH_DAY
        return True

    def _add(self, rng: random.Random, eni: NetworkInterface, flow: _Flow, leg: _Leg, action: str) -> None:
        if not self._logged(eni, flow.interval):
            return
        packets, nbytes, flags = leg.volume
        key: _Key = (eni.eni_id, flow.interval, leg.direction, leg.srcaddr, leg.dstaddr, leg.srcport,
                     leg.dstport, flow.spec.protocol, action)  # fmt: skip
        existing = self.records.get(key)
        if existing is not None:  # the same 5-tuple again in this interval: one aggregated record
            existing.packets += packets
            existing.bytes += nbytes
            existing.flags |= flags
            existing.start = min(existing.start, flow.start)
            existing.end = max(existing.end, flow.end)
            return
        self.records[key] = _Record(
            eni, flow.interval, leg.direction, leg.srcaddr, leg.dstaddr, leg.srcport, leg.dstport,
            flow.spec.protocol, action, packets, nbytes, flags, flow.start, flow.end, leg.pkt_srcaddr,
            leg.pkt_dstaddr, leg.src_service, leg.dst_service, leg.traffic_path, rng.randint(60_000, 540_000),
        )  # fmt: skip

    def _fill_status_rows(self) -> None:
        """NODATA for every logged interval of an ENI's life without traffic (start and end inside its life,
        in the intervals it was created or deleted in too); SKIPDATA where capture failed."""
        busy = {(record.eni.eni_id, record.interval) for record in self.records.values()}
        for eni in self.estate.all_interfaces:
            if self.estate.flow_log_of(eni) is None:
                continue
            rng = random.Random(f"{self.seed}/status/{eni.name}")
            for interval in range(INTERVALS):
                base = WINDOW_START + interval * INTERVAL_SECONDS
                life = eni.life_in(base, base + INTERVAL_SECONDS)
                skipped = (eni.name, interval) in _SKIPDATA
                if life is None or (
                    not skipped and (not self._logged(eni, interval) or (eni.eni_id, interval) in busy)
                ):
                    continue
                status = "SKIPDATA" if skipped else "NODATA"
                start = max(life[0], base + rng.randint(0, 20))
                end = min(life[1] - 1, base + INTERVAL_SECONDS - rng.randint(1, 20))
                assert start < end, (eni.name, interval)
                key: _Key = (eni.eni_id, interval, status, "-", "-", 0, 0, 0, "-")
                self.records[key] = _Record(
                    eni, interval, "-", "-", "-", 0, 0, 0, "-", 0, 0, 0, start, end, "-", "-", None, None,
                    None, rng.randint(60_000, 540_000), status,
                )  # fmt: skip


@dataclass(frozen=True)
class _Leg:
    """One direction of a connection as one ENI logs it."""

    direction: str
    srcaddr: str
    dstaddr: str
    srcport: int
    dstport: int
    pkt_srcaddr: str
    pkt_dstaddr: str
    volume: tuple[int, int, int]  # packets, bytes, tcp-flags
    src_service: str | None = None
    dst_service: str | None = None
    traffic_path: str | None = None


@dataclass(frozen=True)
class _Flow:
    spec: TrafficSpec
    client: _Party
    server: _Party
    client_port: int
    server_port: int
    nat_port: int
    interval: int
    start: int
    end: int
    up: tuple[int, int, int]  # packets, bytes, tcp-flags client -> server
    down: tuple[int, int, int]  # the same server -> client


def _ephemeral(os: str) -> tuple[int, int]:
    return WINDOWS_EPHEMERAL if os == "windows" else LINUX_EPHEMERAL


def _poisson(rng: random.Random, rate: float) -> int:
    if rate <= 0:
        return 0
    limit, count, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass(frozen=True)
class _Query:
    """One query the Route 53 Resolver logged (a cache miss), with its answer records as written."""

    timestamp: int
    account_id: str
    vpc_id: str
    name: str
    qtype: str
    rcode: str
    answers: tuple[tuple[str, str], ...]  # (type, rdata): names with their trailing dot
    srcaddr: str
    srcport: int
    srcids: tuple[tuple[str, str], ...]


_QTYPE_FAMILY: Final = {"A": 4, "AAAA": 6}


def _family(address: str) -> int:
    return ipaddress.ip_address(address).version


def _answer(name: DnsName, qtype: str, time: int, server: str | None) -> tuple[str, ...]:
    """The addresses of type ``qtype`` the Resolver answers for ``name`` at ``time``."""
    if name.rcode != "NOERROR":
        return ()
    if name.answers == "flow":
        pool: tuple[str, ...] = (server,) if server is not None else name.addresses[:1]
    elif name.answers == "rotate":
        epoch = time // name.rotate_seconds
        pool = tuple(
            random.Random(f"sgadvisor-sample/dns/{name.name}/{epoch}").sample(name.addresses, name.per_answer)
        )
    else:
        pool = name.addresses
    return tuple(address for address in pool if _family(address) == _QTYPE_FAMILY[qtype])


def _answer_records(name: DnsName, qtype: str, addresses: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The answer section: the CNAME chain (also when the target has no record of the type asked), then
    the addresses. NXDOMAIN has none."""
    if name.rcode != "NOERROR":
        return ()
    return tuple(("CNAME", f"{target}.") for target in name.chain) + tuple((qtype, a) for a in addresses)


# --------------------------------------------------------------------------------------------------------
# Consistency: the traffic must be what these rules would let through
# --------------------------------------------------------------------------------------------------------


def check_consistency(estate: Estate) -> list[str]:
    """Problems that would make the sample unrealistic (empty when it is consistent).

    Every ACCEPTed connection must be permitted by the client ENI's egress rules and, inside the VPC, by
    the server ENI's ingress rules (unless the server's group is a former one, whose rules the snapshot
    does not have); every REJECTed one must not be; the seed ENI must be what the design says it is.
    Lives must be coherent: no two ENIs hold one address at once, a former ENI ends in the window, the
    creator matches the kind of ENI. Generation refuses to write an inconsistent sample.
    """
    problems: list[str] = []
    simulator = _Simulator(estate, SEED)
    current_groups = {group.group_id for group in estate.security_groups}
    for spec in estate.traffic:
        clients = simulator._parties(spec.clients)
        servers = simulator._parties(spec.servers)
        for client in clients:
            for server in servers:
                if not _coexist(client.eni, server.eni):
                    continue
                for port in spec.ports:
                    allowed = True
                    if client.eni is not None and client.eni.group_ids:
                        allowed = bool(estate.permitting_rules(
                            client.eni.group_ids, egress=True, peer=server.address, protocol=spec.protocol,
                            port=port,
                        ))  # fmt: skip
                    if allowed and server.eni is not None and set(server.eni.group_ids) & current_groups:
                        allowed = bool(estate.permitting_rules(
                            server.eni.group_ids, egress=False, peer=client.address, protocol=spec.protocol,
                            port=port,
                        ))  # fmt: skip
                    if allowed != (spec.action == "ACCEPT"):
                        problems.append(
                            f"{spec.name}: {client.address} -> {server.address}:{port} is "
                            f"{'permitted' if allowed else 'not permitted'} but the sample says {spec.action}"
                        )
    seed = estate.eni(SEED_ENI_ID) if SEED_ENI_ID in estate.ids() else None
    if seed is None or seed.private_ip != "10.0.1.10":
        problems.append("the seed ENI eni-0e7ae111222111000 must have the private IP 10.0.1.10")
    problems += _lifecycle_problems(estate)
    problems += _dns_problems(estate)
    usage = rule_usage(estate)
    for group in estate.security_groups:
        logged = [eni for eni in estate.members(group.group_id) if estate.flow_log_of(eni) is not None]
        for rule in group.egress:
            used = bool(usage[rule.rule_id])
            expected_used = {"used": True, "partly-used": True, "unused": False, "invisible": False,
                             "unattached": False, "no-evidence": used}.get(rule.expect)  # fmt: skip
            if expected_used is None or expected_used != used or (rule.expect == "no-evidence" and logged):
                problems.append(f"{group.group_name} {rule.rule_id}: expect={rule.expect!r} but used={used}")
    return problems


def _dns_problems(estate: Estate) -> list[str]:
    """What would make the query logs disagree with the flows (see :func:`check_consistency`)."""
    problems: list[str] = []
    names = [name.name for name in estate.dns_names]
    if len(set(names)) != len(names):
        problems.append("a DNS name is defined twice")
    known = set(names)
    for spec in estate.traffic:
        if spec.resolves is None:
            continue
        if spec.resolves not in known:
            problems.append(f"{spec.name}: resolves {spec.resolves}, which is not a DnsName")
            continue
        name = estate.dns_name(spec.resolves)
        if any(client.startswith("@") for client in spec.clients):
            problems.append(f"{spec.name}: only ENIs look names up")
        outside = [s for s in spec.servers if resolve_address(estate, s) not in name.addresses]
        if outside or name.rcode != "NOERROR":
            problems.append(
                f"{spec.name}: {', '.join(outside) or 'its servers'} not among {name.name}'s answers"
            )
    for group in estate.security_groups:
        for rule in group.egress:
            if rule.expect_dns not in ("", "used", "partly-used", "unused"):
                problems.append(f"{group.group_name} {rule.rule_id}: expect_dns={rule.expect_dns!r}")
    for eni in estate.all_interfaces:
        if eni.resolver is not None and estate.eni(eni.resolver).resolver is not None:
            problems.append(f"{eni.name}: its resolver {eni.resolver} must ask the Amazon DNS server itself")
    for query in estate.dns_queries:
        if query.name not in known:
            problems.append(f"{query.label}: {query.name} is not a DnsName")
        if bool(query.every) == bool(query.count):
            problems.append(f"{query.label}: give exactly one of every and count")
    return problems


def _coexist(first: NetworkInterface | None, second: NetworkInterface | None) -> bool:
    """Whether both (None: an internet host) exist over some whole interval of the window."""
    low, high = WINDOW_START, WINDOW_END
    for eni in (first, second):
        life = eni.life_in(low, high) if eni is not None else (low, high)
        if life is None:
            return False
        low, high = life
    start = WINDOW_START + -(-(low - WINDOW_START) // INTERVAL_SECONDS) * INTERVAL_SECONDS
    return start + INTERVAL_SECONDS <= high


def _lifecycle_problems(estate: Estate) -> list[str]:
    """What would make the churn incoherent (see :func:`check_consistency`)."""
    problems: list[str] = []
    known_groups = {group.group_id for group in (*estate.security_groups, *estate.former_groups)}
    for eni in estate.all_interfaces:
        life, former = eni.life, eni in estate.former_interfaces
        if not set(eni.group_ids) <= known_groups:
            problems.append(f"{eni.name}: holds a group that is neither current nor former")
        if life is None:
            if former:
                problems.append(f"{eni.name}: a former ENI needs a life")
            continue
        if (life.deleted is not None) != former:
            problems.append(f"{eni.name}: the former ENIs, and only they, are deleted")
        elif life.deleted is not None and not (
            max(life.created, WINDOW_START) + INTERVAL_SECONDS < life.deleted < WINDOW_END
        ):
            problems.append(f"{eni.name}: must be deleted in the window, after an interval of it")
        if life.creator not in ("autoscaling", "admin", "ecs", "lambda"):
            problems.append(f"{eni.name}: unknown creator {life.creator!r}")
        elif (life.creator in ("autoscaling", "admin")) != (eni.instance_id is not None):
            problems.append(f"{eni.name}: instances are run and terminated, other ENIs created and deleted")
        deleted = WINDOW_END if life.deleted is None else life.deleted
        for time, status in life.config:
            if time < life.created or (status == "ResourceDeleted") != (time >= deleted):
                problems.append(f"{eni.name}: Config item {status} at {_iso(time)} is outside its life")
    holders: dict[str, list[NetworkInterface]] = {}
    for eni in estate.all_interfaces:
        for address in eni.addresses:
            holders.setdefault(address, []).append(eni)
    for address, enis in sorted(holders.items()):
        for index, first in enumerate(enis):
            for second in enis[index + 1 :]:
                whole = first.life_in(-(2**62), 2**62)
                if whole is not None and second.life_in(*whole) is not None:
                    problems.append(f"{address} is held by {first.name} and {second.name} at once")
    for group in estate.former_groups:
        ends = [eni.life.deleted if eni.life is not None and eni.life.deleted is not None else WINDOW_END
                for eni in estate.members_ever(group.group_id)]  # fmt: skip
        if group.deleted is None or not max(ends, default=WINDOW_START) <= group.deleted < WINDOW_END:
            problems.append(f"{group.group_name}: a former group is deleted in the window, after its members")
        if group.rules:
            problems.append(f"{group.group_name}: a former group's rules are not in the snapshot: give none")
    return problems


def resolve_address(estate: Estate, name: str) -> str:
    """The address a traffic-spec endpoint names (``web-1``, ``web-1/ipv6``, ``app-2/secondary``, literal)."""
    base, _, variant = name.partition("/")
    try:
        eni = estate.eni(base)
    except KeyError:
        return name
    if variant == "ipv6":
        return eni.ipv6_addresses[0]
    if variant == "secondary":
        return eni.secondary_ips[0]
    return eni.private_ip


def rule_usage(estate: Estate) -> dict[str, tuple[str, ...]]:
    """Rule id -> names of the traffic specs whose *initiated, accepted* egress the rule permits.

    This is the ground truth behind each rule's ``expect`` and the README's table: replies, ingress and
    rejected attempts never count, exactly as §6 of the design requires of the analysis.
    """
    usage: dict[str, list[str]] = {
        rule.rule_id: [] for group in estate.security_groups for rule in group.rules
    }
    for spec in estate.traffic:
        if spec.action != "ACCEPT" or spec.clients[0].startswith("@"):
            continue
        for client_name in spec.clients:
            client = estate.eni(client_name.partition("/")[0])
            for server_name in spec.servers:
                try:
                    server: NetworkInterface | None = estate.eni(server_name.partition("/")[0])
                except KeyError:  # an address on the internet
                    server = None
                if not _coexist(client, server):
                    continue
                for port in spec.ports:
                    for rule in estate.permitting_rules(
                        client.group_ids, egress=True, peer=resolve_address(estate, server_name),
                        protocol=spec.protocol, port=port,
                    ):  # fmt: skip
                        if spec.name not in usage[rule.rule_id]:
                            usage[rule.rule_id].append(spec.name)
    return {rule_id: tuple(names) for rule_id, names in usage.items()}


# --------------------------------------------------------------------------------------------------------
# Output: inventory snapshot (AWS CLI shapes, keys in the order the CLI prints them)
# --------------------------------------------------------------------------------------------------------


def _ip_permissions(estate: Estate, rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """Rules folded into IpPermissions the way EC2 does: one entry per (protocol, ports)."""
    grouped: dict[tuple[str, int, int], list[Rule]] = {}
    for rule in rules:
        grouped.setdefault((rule.ip_protocol, rule.from_port, rule.to_port), []).append(rule)
    permissions: list[dict[str, Any]] = []
    for (protocol, low, high), members in grouped.items():
        permission: dict[str, Any] = {"IpProtocol": protocol}
        if protocol != "-1":
            permission["FromPort"] = low
            permission["ToPort"] = high
        permission["UserIdGroupPairs"] = [
            {**_description(rule), "UserId": estate.account_id, "GroupId": rule.referenced_group_id}
            for rule in members
            if rule.referenced_group_id is not None
        ]
        permission["IpRanges"] = [
            {**_description(rule), "CidrIp": rule.cidr_ipv4} for rule in members if rule.cidr_ipv4 is not None
        ]
        permission["Ipv6Ranges"] = [
            {**_description(rule), "CidrIpv6": rule.cidr_ipv6}
            for rule in members
            if rule.cidr_ipv6 is not None
        ]
        permission["PrefixListIds"] = [
            {**_description(rule), "PrefixListId": rule.prefix_list_id}
            for rule in members
            if rule.prefix_list_id is not None
        ]
        permissions.append(permission)
    return permissions


def _arn(estate: Estate, resource: str) -> str:
    return f"arn:aws:ec2:{estate.region}:{estate.account_id}:{resource}"


def _description(rule: Rule) -> dict[str, str]:
    return {"Description": rule.description} if rule.description is not None else {}


def _tags(**tags: str | None) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items() if value is not None]


def describe_security_groups(estate: Estate) -> dict[str, Any]:
    groups = []
    for group in sorted(estate.security_groups, key=lambda item: item.group_id):
        entry: dict[str, Any] = {
            "GroupId": group.group_id,
            "IpPermissionsEgress": _ip_permissions(estate, group.egress),
        }
        if group.name_tag is not None:
            entry["Tags"] = _tags(Name=group.name_tag)
        entry.update(
            {
                "VpcId": estate.vpc.vpc_id,
                "SecurityGroupArn": f"{_arn(estate, 'security-group')}/{group.group_id}",
                "OwnerId": estate.account_id,
                "GroupName": group.group_name,
                "Description": group.description,
                "IpPermissions": _ip_permissions(estate, group.ingress),
            }
        )
        groups.append(entry)
    return {"SecurityGroups": groups}


def describe_security_group_rules(estate: Estate) -> dict[str, Any]:
    rules = []
    for group in sorted(estate.security_groups, key=lambda item: item.group_id):
        for rule in sorted(group.rules, key=lambda item: (item.is_egress, item.rule_id)):
            entry: dict[str, Any] = {
                "SecurityGroupRuleId": rule.rule_id,
                "GroupId": group.group_id,
                "GroupOwnerId": estate.account_id,
                "IsEgress": rule.is_egress,
                "IpProtocol": rule.ip_protocol,
                "FromPort": rule.from_port,
                "ToPort": rule.to_port,
            }
            if rule.cidr_ipv4 is not None:
                entry["CidrIpv4"] = rule.cidr_ipv4
            if rule.cidr_ipv6 is not None:
                entry["CidrIpv6"] = rule.cidr_ipv6
            if rule.prefix_list_id is not None:
                entry["PrefixListId"] = rule.prefix_list_id
            if rule.referenced_group_id is not None:
                entry["ReferencedGroupInfo"] = {
                    "GroupId": rule.referenced_group_id,
                    "UserId": estate.account_id,
                }
            entry.update(_description(rule))
            entry["Tags"] = []
            entry["SecurityGroupRuleArn"] = f"{_arn(estate, 'security-group-rule')}/{rule.rule_id}"
            rules.append(entry)
    return {"SecurityGroupRules": rules}


def _dns_name(address: str, public: bool) -> str:
    dashed = address.replace(".", "-")
    return (
        f"ec2-{dashed}.{REGION}.compute.amazonaws.com" if public else f"ip-{dashed}.{REGION}.compute.internal"
    )


def describe_network_interfaces(estate: Estate) -> dict[str, Any]:
    names = {group.group_id: group.group_name for group in estate.security_groups}
    interfaces = []
    for eni in sorted(estate.network_interfaces, key=lambda item: item.eni_id):
        association: dict[str, Any] | None = None
        if eni.public_ip is not None:
            association = {}
            if eni.allocation_id is not None:
                association["AllocationId"] = eni.allocation_id
                association["AssociationId"] = eni.association_id
            association["IpOwnerId"] = eni.public_ip_owner
            association["PublicDnsName"] = _dns_name(eni.public_ip, public=True)
            association["PublicIp"] = eni.public_ip
        entry: dict[str, Any] = {}
        if association is not None:
            entry["Association"] = association
        if eni.instance_id is not None:
            entry["Attachment"] = {
                "AttachTime": eni.attach_time,
                "AttachmentId": eni.attachment_id,
                "DeleteOnTermination": True,
                "DeviceIndex": 0,
                "NetworkCardIndex": 0,
                "InstanceId": eni.instance_id,
                "InstanceOwnerId": estate.account_id,
                "Status": "attached",
            }
        elif eni.role == "ecs-task":  # attached to a Fargate host in an AWS account
            entry["Attachment"] = {
                "AttachTime": eni.attach_time,
                "AttachmentId": eni.attachment_id,
                "DeleteOnTermination": False,
                "DeviceIndex": 1,
                "NetworkCardIndex": 0,
                "InstanceOwnerId": eni.attachment_owner,
                "Status": "attached",
            }
        else:
            entry["Attachment"] = {
                "AttachmentId": eni.attachment_id,
                "DeleteOnTermination": False,
                "DeviceIndex": 1,
                "InstanceOwnerId": eni.attachment_owner,
                "Status": "attached",
            }
        entry.update(
            {
                "AvailabilityZone": AVAILABILITY_ZONE,
                "Description": eni.description,
                "Groups": [{"GroupId": group_id, "GroupName": names[group_id]} for group_id in eni.group_ids],
                "InterfaceType": eni.interface_type,
                "Ipv6Addresses": [
                    {"Ipv6Address": address, "IsPrimaryIpv6": False} for address in eni.ipv6_addresses
                ],
                "MacAddress": eni.mac_address,
                "NetworkInterfaceId": eni.eni_id,
                "OwnerId": estate.account_id,
                "PrivateDnsName": _dns_name(eni.private_ip, public=False),
                "PrivateIpAddress": eni.private_ip,
            }
        )
        private_addresses = []
        for index, address in enumerate((eni.private_ip, *eni.secondary_ips)):
            item: dict[str, Any] = {}
            if index == 0 and association is not None:
                item["Association"] = dict(association)
            item.update(
                {
                    "Primary": index == 0,
                    "PrivateDnsName": _dns_name(address, public=False),
                    "PrivateIpAddress": address,
                }
            )
            private_addresses.append(item)
        entry["PrivateIpAddresses"] = private_addresses
        if eni.requester_id is not None:
            entry["RequesterId"] = eni.requester_id
        entry.update(
            {
                "RequesterManaged": eni.requester_managed,
                "SourceDestCheck": eni.source_dest_check,
                "Status": "in-use",
                "SubnetId": eni.subnet_id,
                "TagSet": _tags(Name=eni.name, Role=eni.role) if eni.tagged else _tags(**dict(eni.tags)),
                "VpcId": estate.vpc.vpc_id,
            }
        )
        interfaces.append(entry)
    return {"NetworkInterfaces": interfaces}


def describe_managed_prefix_lists(estate: Estate) -> dict[str, Any]:
    lists = []
    for prefix_list in sorted(estate.prefix_lists, key=lambda item: item.prefix_list_id):
        owner = "aws" if prefix_list.aws_managed else estate.account_id
        entry: dict[str, Any] = {
            "PrefixListId": prefix_list.prefix_list_id,
            "AddressFamily": "IPv4",
            "State": "create-complete",
            "PrefixListArn": f"arn:aws:ec2:{estate.region}:{owner}:prefix-list/{prefix_list.prefix_list_id}",
            "PrefixListName": prefix_list.name,
        }
        if prefix_list.max_entries is not None:
            entry["MaxEntries"] = prefix_list.max_entries
        if prefix_list.version is not None:
            entry["Version"] = prefix_list.version
        entry["Tags"] = _tags(Name=prefix_list.name_tag)
        entry["OwnerId"] = prefix_list.owner_id
        if prefix_list.entries is not None:  # merged from get-managed-prefix-list-entries
            entry["Entries"] = [
                {"Cidr": item.cidr, **({"Description": item.description} if item.description else {})}
                for item in prefix_list.entries
            ]
        lists.append(entry)
    return {"PrefixLists": lists}


def describe_vpcs(estate: Estate) -> dict[str, Any]:
    """The VPC and its blocks: the analysis finds the Amazon DNS server (base + 2) and the VPC router
    (base + 1) here. Association ids are left out (they are not sample ids that ``id_map`` renames)."""
    vpc = estate.vpc
    return {
        "Vpcs": [
            {
                "OwnerId": estate.account_id,
                "InstanceTenancy": "default",
                "Ipv6CidrBlockAssociationSet": [
                    {
                        "Ipv6CidrBlock": vpc.ipv6_cidr,
                        "Ipv6CidrBlockState": {"State": "associated"},
                        "NetworkBorderGroup": estate.region,
                        "Ipv6Pool": "Amazon",
                    }
                ],
                "CidrBlockAssociationSet": [
                    {"CidrBlock": vpc.cidr, "CidrBlockState": {"State": "associated"}}
                ],
                "IsDefault": False,
                "Tags": _tags(Name=vpc.name),
                "VpcId": vpc.vpc_id,
                "State": "available",
                "CidrBlock": vpc.cidr,
            }
        ]
    }


def describe_flow_logs(estate: Estate) -> dict[str, Any]:
    flow_logs = []
    for flow_log in sorted(estate.flow_logs, key=lambda item: item.flow_log_id):
        entry: dict[str, Any] = {"CreationTime": flow_log.creation_time}
        if flow_log.deliver_logs_permission_arn is not None:
            entry["DeliverLogsPermissionArn"] = flow_log.deliver_logs_permission_arn
        entry.update(
            {"DeliverLogsStatus": "SUCCESS", "FlowLogId": flow_log.flow_log_id, "FlowLogStatus": "ACTIVE"}
        )
        if flow_log.log_group_name is not None:
            entry["LogGroupName"] = flow_log.log_group_name
        entry.update(
            {
                "ResourceId": flow_log.resource_id,
                "TrafficType": "ALL",
                "LogDestinationType": flow_log.destination_type,
                "LogDestination": flow_log.log_destination,
                "LogFormat": flow_log.log_format,
                "Tags": _tags(Name=flow_log.name),
                "MaxAggregationInterval": INTERVAL_SECONDS,
            }
        )
        if flow_log.destination_type == "s3":
            entry["DestinationOptions"] = {
                "FileFormat": "plain-text",
                "HiveCompatiblePartitions": False,
                "PerHourPartition": False,
            }
        flow_logs.append(entry)
    return {"FlowLogs": flow_logs}


# --------------------------------------------------------------------------------------------------------
# Output: ENI history (AWS Config ConfigHistory files and CloudTrail log files, in their S3 layouts)
# --------------------------------------------------------------------------------------------------------

_ENI_TYPE: Final = "AWS::EC2::NetworkInterface"
_CONFIG_DELIVERY: Final = 6 * 3600  # Config delivers configuration history every 6 hours
_TRAIL_DELIVERY: Final = 300  # CloudTrail writes a log file about every 5 minutes
_IMAGE_ID: Final = "ami-0b9d07a5c1e3f2d48"  # illustrative
_LAUNCH_TEMPLATE: Final = {"launchTemplateId": "lt-0d3f5a7c9e1b2d4f6", "version": "4"}  # illustrative
_ROLES: Final = {  # creator -> (role, session, role path, the service that calls for it)
    "autoscaling": ("AWSServiceRoleForAutoScaling", "AutoScaling", "aws-service-role/autoscaling.amazonaws.com/",
                    "autoscaling.amazonaws.com"),
    "ecs": ("AWSServiceRoleForECS", "ecs-service-scheduler", "aws-service-role/ecs.amazonaws.com/",
            "ecs.amazonaws.com"),
    "lambda": (LAMBDA_ROLE, LAMBDA_FUNCTION, "service-role/", "lambda.amazonaws.com"),
    "admin": ("AWSReservedSSO_PlatformAdmin_5f3c0a1b2d4e6f70", "jane.doe@acme.example",
              f"aws-reserved/sso.amazonaws.com/{REGION}/", ""),
}  # fmt: skip
_CLI_AGENT: Final = (
    "aws-cli/2.18.4 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-45-generic md/arch#x86_64 lang/python#3.12.6 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off "
    "md/command#ec2.{command}"
)


def history_files(estate: Estate) -> dict[str, str]:
    """The ENI history given with the snapshot: path under ``inventory/`` -> JSON text (gzipped on write).

    AWS Config's ConfigHistory files hold the items of the ENIs whose :class:`Lifecycle` lists them
    (``AWSLogs/<acct>/Config/<region>/<y>/<m>/<d>/ConfigHistory/…json.gz``, unpadded month and day, one
    file per 6-hour delivery); CloudTrail's log files hold the events that created and deleted the ENIs
    from :data:`CLOUDTRAIL_START` on, and DeleteSecurityGroup of the former groups
    (``AWSLogs/<acct>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/<acct>_CloudTrail_<region>_<time>_<unique>.json.gz``,
    one file per 5-minute delivery). Both are compact JSON, as delivered.
    """
    names = {group.group_id: group.group_name for group in (*estate.security_groups, *estate.former_groups)}
    files = _config_history(estate, names)
    files.update(_cloudtrail_logs(estate, names))
    return files


def _compact(document: object) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _token(label: str, length: int) -> str:
    """Upper-case letters and digits derived from a label (role and key ids, file-name uniqueness)."""
    digest = hashlib.sha256(f"sgadvisor-sample/token/{label}".encode()).digest()
    return base64.b32encode(digest).decode()[:length]


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _config_history(estate: Estate, names: Mapping[str, str]) -> dict[str, str]:
    slots: dict[int, list[tuple[int, str, NetworkInterface]]] = {}
    for eni in estate.all_interfaces:
        for captured, status in eni.life.config if eni.life is not None else ():
            slots.setdefault(captured // _CONFIG_DELIVERY, []).append((captured, status, eni))
    files: dict[str, str] = {}
    for slot, items in sorted(slots.items()):
        items.sort(key=lambda item: (item[0], item[2].name))
        first, last = _utc(items[0][0]), _utc(items[-1][0])
        folder = (
            f"AWSLogs/{estate.account_id}/Config/{estate.region}/{first.year}/{first.month}/{first.day}/"
            "ConfigHistory"
        )
        name = (
            f"{estate.account_id}_Config_{estate.region}_ConfigHistory_{_ENI_TYPE}_{first:%Y%m%dT%H%M%SZ}_"
            f"{last:%Y%m%dT%H%M%SZ}_1.json.gz"
        )
        document = {
            "fileVersion": "1.0",
            "requestId": _uuid(f"config-delivery/{slot}"),
            "configurationItems": [
                _config_item(estate, eni, captured, status, names) for captured, status, eni in items
            ],
        }
        files[f"{folder}/{name}"] = _compact(document)
    return files


def _config_item(
    estate: Estate, eni: NetworkInterface, captured: int, status: str, names: Mapping[str, str]
) -> dict[str, Any]:
    """One configuration item as Config writes it to S3 (``configuration`` an object, relationships with
    ``name``, ISO times, a numeric ``configurationStateId``); a deleted resource's has no configuration."""
    assert eni.life is not None
    millis = int(hashlib.sha256(f"config/{eni.name}/{captured}".encode()).hexdigest(), 16) % 1000
    gone = status == "ResourceDeleted"
    tags = (("Name", eni.name), ("Role", eni.role)) if eni.tagged else eni.tags
    related = [(eni.instance_id, "AWS::EC2::Instance", "Is attached to Instance")] if eni.instance_id else []
    related += [(gid, "AWS::EC2::SecurityGroup", "Is associated with SecurityGroup") for gid in eni.group_ids]
    related += [(eni.subnet_id, "AWS::EC2::Subnet", "Is contained in Subnet"),
                (estate.vpc.vpc_id, "AWS::EC2::VPC", "Is contained in Vpc")]  # fmt: skip
    return {
        "relatedEvents": [],
        "relationships": [] if gone else [
            {"resourceId": rid, "resourceName": None, "resourceType": rtype, "name": rname}
            for rid, rtype, rname in related
        ],
        "configuration": None if gone else _eni_configuration(estate, eni, names),
        "supplementaryConfiguration": {},
        "tags": {} if gone else dict(tags),
        "configurationItemVersion": "1.3",
        "configurationItemCaptureTime": _iso(captured, millis=millis),
        "configurationStateId": captured * 1000 + millis,
        "awsAccountId": estate.account_id,
        "configurationItemStatus": status,
        "resourceType": _ENI_TYPE,
        "resourceId": eni.eni_id,
        "resourceName": None,
        "ARN": _arn(estate, f"network-interface/{eni.eni_id}"),
        "awsRegion": estate.region,
        "availabilityZone": AVAILABILITY_ZONE,
        "configurationStateMd5Hash": "",
        "resourceCreationTime": None if gone else _iso(eni.life.created, millis=0),
    }  # fmt: skip


def _eni_configuration(estate: Estate, eni: NetworkInterface, names: Mapping[str, str]) -> dict[str, Any]:
    """The ENI as Config records it: EC2's NetworkInterface with camelCase keys."""
    assert eni.life is not None
    attachment = None
    if eni.instance_id is not None:
        attachment = {
            "attachTime": _iso(eni.life.created, millis=0),
            "attachmentId": eni.attachment_id,
            "deleteOnTermination": True,
            "deviceIndex": 0,
            "networkCardIndex": 0,
            "instanceId": eni.instance_id,
            "instanceOwnerId": estate.account_id,
            "status": "attached",
        }
    tags = (("Name", eni.name), ("Role", eni.role)) if eni.tagged else eni.tags
    return {
        "association": None,
        "attachment": attachment,
        "availabilityZone": AVAILABILITY_ZONE,
        "description": eni.description,
        "groups": [{"groupName": names[gid], "groupId": gid} for gid in eni.group_ids],
        "interfaceType": eni.interface_type,
        "ipv6Addresses": [{"ipv6Address": address, "isPrimaryIpv6": False} for address in eni.ipv6_addresses],
        "macAddress": eni.mac_address,
        "networkInterfaceId": eni.eni_id,
        "outpostArn": None,
        "ownerId": estate.account_id,
        "privateDnsName": _dns_name(eni.private_ip, public=False),
        "privateIpAddress": eni.private_ip,
        "privateIpAddresses": [
            {
                "association": None,
                "primary": index == 0,
                "privateDnsName": _dns_name(address, public=False),
                "privateIpAddress": address,
            }
            for index, address in enumerate((eni.private_ip, *eni.secondary_ips))
        ],
        "requesterId": eni.requester_id,
        "requesterManaged": eni.requester_managed,
        "sourceDestCheck": eni.source_dest_check,
        "status": "in-use",
        "subnetId": eni.subnet_id,
        "tagSet": [{"key": key, "value": value} for key, value in tags],
        "vpcId": estate.vpc.vpc_id,
    }


def _cloudtrail_logs(estate: Estate, names: Mapping[str, str]) -> dict[str, str]:
    events: list[tuple[int, dict[str, Any]]] = []
    for eni in estate.all_interfaces:
        life = eni.life
        if life is None:
            continue
        if life.created >= CLOUDTRAIL_START:
            maker = _run_instances if eni.instance_id is not None else _create_network_interface
            events.append((life.created, maker(estate, eni, names)))
        if life.deleted is not None:
            ender = _terminate_instances if eni.instance_id is not None else _delete_network_interface
            events.append((life.deleted, ender(estate, eni)))
    for group in estate.former_groups:
        assert group.deleted is not None
        events.append((group.deleted, _trail_record(
            estate, group.deleted, "DeleteSecurityGroup", "admin", f"delete-group/{group.group_name}",
            {"groupId": group.group_id}, {"_return": True, "groupId": group.group_id},
        )))  # fmt: skip
    by_delivery: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for time, record in events:
        slot = time // _TRAIL_DELIVERY
        delay = 60 * (1 + int(hashlib.sha256(f"delivery/{slot}".encode()).hexdigest(), 16) % 4)
        by_delivery.setdefault((slot + 1) * _TRAIL_DELIVERY + delay, []).append((time, record))
    files: dict[str, str] = {}
    for delivered, records in sorted(by_delivery.items()):
        when = _utc(delivered)
        name = (
            f"{estate.account_id}_CloudTrail_{estate.region}_{when:%Y%m%dT%H%MZ}_"
            f"{_token(f'cloudtrail/{delivered}', 16)}.json.gz"
        )
        records.sort(key=lambda item: (item[0], item[1]["eventID"]))
        document = {"Records": [record for _, record in records]}
        files[f"AWSLogs/{estate.account_id}/CloudTrail/{estate.region}/{when:%Y/%m/%d}/{name}"] = _compact(
            document
        )
    return files


def _trail_record(
    estate: Estate,
    time: int,
    event: str,
    creator: str,
    label: str,
    request: dict[str, Any],
    response: dict[str, Any],
) -> dict[str, Any]:
    """One CloudTrail record as in the S3 log files. A service's call is made with its (service-linked or
    execution) role and ``invokedBy`` it; a person's with the AWS CLI from the office."""
    role, session, path, service = _ROLES[creator]
    role_id = (
        LAMBDA_REQUESTER_ID.split(":")[0] if creator == "lambda" else f"AROA{_token(f'role/{role}', 17)}"
    )
    identity: dict[str, Any] = {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{session}",
        "arn": f"arn:aws:sts::{estate.account_id}:assumed-role/{role}/{session}",
        "accountId": estate.account_id,
        "accessKeyId": f"ASIA{_token(f'key/{role}/{time // 3600}', 16)}",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{estate.account_id}:role/{path}{role}",
                "accountId": estate.account_id,
                "userName": role,
            },
            "attributes": {"creationDate": _iso(time - time % 3600), "mfaAuthenticated": "false"},
        },
    }
    if service:
        identity["invokedBy"] = service
    command = re.sub(r"(?<!^)(?=[A-Z])", "-", event).lower()
    record: dict[str, Any] = {
        "eventVersion": "1.10",
        "userIdentity": identity,
        "eventTime": _iso(time),
        "eventSource": "ec2.amazonaws.com",
        "eventName": event,
        "awsRegion": estate.region,
        "sourceIPAddress": service or ADMIN_ADDRESS,
        "userAgent": service or _CLI_AGENT.format(command=command),
        "requestParameters": request,
        "responseElements": {"requestId": _uuid(f"request/{label}"), **response},
        "requestID": _uuid(f"request/{label}"),
        "eventID": _uuid(f"event/{label}"),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": estate.account_id,
        "eventCategory": "Management",
    }
    if not service:
        record["tlsDetails"] = {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"ec2.{estate.region}.amazonaws.com",
        }
    return record


def _group_set(eni: NetworkInterface, names: Mapping[str, str]) -> dict[str, Any]:
    return {"items": [{"groupId": gid, "groupName": names[gid]} for gid in eni.group_ids]}


def _private_addresses(eni: NetworkInterface) -> dict[str, Any]:
    return {"item": [
        {"privateIpAddress": address, "privateDnsName": _dns_name(address, public=False), "primary": index == 0}
        for index, address in enumerate((eni.private_ip, *eni.secondary_ips))
    ]}  # fmt: skip


def _ipv6_addresses(eni: NetworkInterface) -> dict[str, Any]:
    if not eni.ipv6_addresses:
        return {}
    return {"item": [{"ipv6Address": address, "isPrimaryIpv6": False} for address in eni.ipv6_addresses]}


def _run_instances(estate: Estate, eni: NetworkInterface, names: Mapping[str, str]) -> dict[str, Any]:
    """RunInstances of one instance whose primary ENI is ``eni`` (an Auto Scaling group's launch from its
    launch template, or a person's from the CLI)."""
    assert eni.life is not None and eni.instance_id is not None
    time, creator = eni.life.created, eni.life.creator
    scaled = creator == "autoscaling"
    label = f"run/{eni.name}"
    tags = [{"key": "aws:autoscaling:groupName", "value": ASG_NAME}] if scaled else \
        [{"key": "Name", "value": eni.name}]  # fmt: skip
    interface = {
        "networkInterfaceId": eni.eni_id,
        "subnetId": eni.subnet_id,
        "vpcId": estate.vpc.vpc_id,
        "ownerId": estate.account_id,
        "status": "in-use",
        "macAddress": eni.mac_address,
        "privateIpAddress": eni.private_ip,
        "privateDnsName": _dns_name(eni.private_ip, public=False),
        "sourceDestCheck": True,
        "interfaceType": eni.interface_type,
        "groupSet": _group_set(eni, names),
        "attachment": {
            "attachmentId": eni.attachment_id,
            "deviceIndex": 0,
            "networkCardIndex": 0,
            "status": "attaching",
            "attachTime": time * 1000,
            "deleteOnTermination": True,
        },
        "privateIpAddressesSet": _private_addresses(eni),
        "ipv6AddressesSet": _ipv6_addresses(eni),
        "tagSet": {},
    }
    if scaled:
        request: dict[str, Any] = {
            "instancesSet": {"items": [{"minCount": 1, "maxCount": 1}]},
            "availabilityZone": AVAILABILITY_ZONE,
            "subnetId": eni.subnet_id,
            "clientToken": _uuid(f"token/{label}"),
            "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": tags}]},
            "launchTemplate": dict(_LAUNCH_TEMPLATE),
        }
    else:
        request = {
            "instancesSet": {"items": [{"imageId": _IMAGE_ID, "minCount": 1, "maxCount": 1}]},
            "instanceType": "t2.medium",
            "blockDeviceMapping": {},
            "monitoring": {"enabled": False},
            "disableApiTermination": False,
            "disableApiStop": False,
            "clientToken": _uuid(f"token/{label}"),
            "networkInterfaceSet": {"items": [{
                "deviceIndex": 0, "subnetId": eni.subnet_id, "associatePublicIpAddress": False,
                "groupSet": {"items": [{"groupId": gid} for gid in eni.group_ids]},
                "ipv6AddressCount": len(eni.ipv6_addresses),
            }]},
            "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": tags}]},
        }  # fmt: skip
    instance = {
        "instanceId": eni.instance_id,
        "imageId": _IMAGE_ID,
        "currentInstanceBootMode": "legacy-bios",
        "instanceState": {"code": 0, "name": "pending"},
        "privateDnsName": _dns_name(eni.private_ip, public=False),
        "amiLaunchIndex": 0,
        "productCodes": {},
        "instanceType": "m4.large" if scaled else "t2.medium",
        "launchTime": time * 1000,
        "placement": {"availabilityZone": AVAILABILITY_ZONE, "tenancy": "default"},
        "monitoring": {"state": "disabled"},
        "subnetId": eni.subnet_id,
        "vpcId": estate.vpc.vpc_id,
        "privateIpAddress": eni.private_ip,
        "stateReason": {"code": "pending", "message": "pending"},
        "architecture": "x86_64",
        "rootDeviceType": "ebs",
        "rootDeviceName": "/dev/xvda",
        "blockDeviceMapping": {},
        "virtualizationType": "hvm",
        "hypervisor": "xen",
        "tagSet": {"items": tags},
        "clientToken": _uuid(f"token/{label}"),
        "groupSet": _group_set(eni, names),
        "sourceDestCheck": True,
        "networkInterfaceSet": {"items": [interface]},
        "ebsOptimized": False,
        "enaSupport": False,
        "metadataOptions": {"state": "pending", "httpTokens": "required", "httpPutResponseHopLimit": 2,
                            "httpEndpoint": "enabled"},
    }  # fmt: skip
    response: dict[str, Any] = {
        "reservationId": f"r-0{hashlib.sha256(label.encode()).hexdigest()[:16]}",
        "ownerId": estate.account_id,
    }
    if scaled:
        response["requesterId"] = "940372691376"  # illustrative: the Auto Scaling service's account
    response.update({"groupSet": {}, "instancesSet": {"items": [instance]}})
    return _trail_record(estate, time, "RunInstances", creator, label, request, response)


def _terminate_instances(estate: Estate, eni: NetworkInterface) -> dict[str, Any]:
    """TerminateInstances names the instance only: its primary ENI goes with it."""
    assert eni.life is not None and eni.life.deleted is not None
    return _trail_record(
        estate, eni.life.deleted, "TerminateInstances", eni.life.creator, f"terminate/{eni.name}",
        {"instancesSet": {"items": [{"instanceId": eni.instance_id}]}},
        {"instancesSet": {"items": [{"instanceId": eni.instance_id,
                                     "currentState": {"code": 32, "name": "shutting-down"},
                                     "previousState": {"code": 16, "name": "running"}}]}},
    )  # fmt: skip


def _create_network_interface(
    estate: Estate, eni: NetworkInterface, names: Mapping[str, str]
) -> dict[str, Any]:
    """CreateNetworkInterface by ECS (a Fargate task's ENI) or Lambda (a Hyperplane ENI)."""
    assert eni.life is not None
    request = {
        "subnetId": eni.subnet_id,
        "description": eni.description,
        "groupSet": {"items": [{"groupId": gid} for gid in eni.group_ids]},
        "privateIpAddressesSet": {},
        "clientToken": _uuid(f"token/create/{eni.name}"),
    }
    interface = {
        "networkInterfaceId": eni.eni_id,
        "subnetId": eni.subnet_id,
        "vpcId": estate.vpc.vpc_id,
        "availabilityZone": AVAILABILITY_ZONE,
        "description": eni.description,
        "ownerId": estate.account_id,
        "requesterId": eni.requester_id,
        "requesterManaged": eni.requester_managed,
        "status": "pending",
        "macAddress": eni.mac_address,
        "privateIpAddress": eni.private_ip,
        "privateDnsName": _dns_name(eni.private_ip, public=False),
        "sourceDestCheck": eni.source_dest_check,
        "interfaceType": eni.interface_type,
        "groupSet": _group_set(eni, names),
        "privateIpAddressesSet": _private_addresses(eni),
        "ipv6AddressesSet": _ipv6_addresses(eni),
        "tagSet": {},
    }
    return _trail_record(
        estate,
        eni.life.created,
        "CreateNetworkInterface",
        eni.life.creator,
        f"create/{eni.name}",
        request,
        {"networkInterface": interface},
    )


def _delete_network_interface(estate: Estate, eni: NetworkInterface) -> dict[str, Any]:
    assert eni.life is not None and eni.life.deleted is not None
    return _trail_record(
        estate,
        eni.life.deleted,
        "DeleteNetworkInterface",
        eni.life.creator,
        f"delete/{eni.name}",
        {"networkInterfaceId": eni.eni_id},
        {"_return": True},
    )


# --------------------------------------------------------------------------------------------------------
# Output: flow records
# --------------------------------------------------------------------------------------------------------


def _field_values(estate: Estate, record: _Record, version: int) -> dict[str, str]:
    eni = record.eni
    has_traffic = record.log_status == "OK"

    def traffic(value: object) -> str:
        return str(value) if has_traffic and value is not None else "-"

    return {
        "version": str(version),
        "account-id": estate.account_id,
        "interface-id": eni.eni_id,
        "srcaddr": traffic(record.srcaddr),
        "dstaddr": traffic(record.dstaddr),
        "srcport": traffic(record.srcport),
        "dstport": traffic(record.dstport),
        "protocol": traffic(record.protocol),
        "packets": traffic(record.packets),
        "bytes": traffic(record.bytes),
        "start": str(record.start),
        "end": str(record.end),
        "action": traffic(record.action),
        "log-status": record.log_status,
        "vpc-id": estate.vpc.vpc_id,
        "subnet-id": eni.subnet_id,
        "instance-id": eni.instance_id or "-",
        "tcp-flags": traffic(record.flags),
        "type": traffic("IPv6" if ":" in record.srcaddr else "IPv4"),
        "pkt-srcaddr": traffic(record.pkt_srcaddr),
        "pkt-dstaddr": traffic(record.pkt_dstaddr),
        "region": estate.region,
        "az-id": AVAILABILITY_ZONE_ID,
        "sublocation-type": "-",
        "sublocation-id": "-",
        "pkt-src-aws-service": traffic(record.src_service),
        "pkt-dst-aws-service": traffic(record.dst_service),
        "flow-direction": traffic(record.direction),
        "traffic-path": traffic(record.traffic_path),
    }


def _format(estate: Estate, flow_log: FlowLog, record: _Record) -> str:
    values = _field_values(estate, record, flow_log.version)
    return " ".join(values[name] for name in flow_log.fields)


def _gzip(text: str) -> bytes:
    """Gzip with a fixed header (no name, mtime 0) so the same text always gives the same bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as handle:
        handle.write(text.encode())
    return buffer.getvalue()


def _json(document: object) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _day(day: int) -> datetime:
    return datetime.fromtimestamp(WINDOW_START + day * 86_400, tz=UTC)


def _event_id(timestamp_ms: int, message: str) -> str:
    """A 56-digit event id like CloudWatch Logs', derived from the event (stable, unique per event)."""
    digest = int(hashlib.sha256(f"{timestamp_ms}/{message}".encode()).hexdigest(), 16)
    return f"{digest % 10**56:056d}"


def render_files(
    estate: Estate, id_map: Mapping[str, str] | None = None, seed: int = SEED
) -> dict[str, bytes]:
    """Every output file, relative path -> content. Traffic comes from the original ids, then renamed."""
    problems = check_consistency(estate)
    if problems:
        raise ValueError("inconsistent sample estate:\n" + "\n".join(problems))
    mapper = _IdMapper(estate.ids(), id_map or {})
    mapped = estate.remapped(id_map) if id_map else estate
    files: dict[str, bytes] = {}
    for name, document in (
        ("describe-security-groups.json", describe_security_groups(mapped)),
        ("describe-security-group-rules.json", describe_security_group_rules(mapped)),
        ("describe-network-interfaces.json", describe_network_interfaces(mapped)),
        ("describe-managed-prefix-lists.json", describe_managed_prefix_lists(mapped)),
        ("describe-flow-logs.json", describe_flow_logs(mapped)),
        ("describe-vpcs.json", describe_vpcs(mapped)),
    ):
        files[f"inventory/{name}"] = _json(document).encode()
    # The history is written from the original ids, then renamed like the flow records (its event ids and
    # file names derive from names and times only, so renaming changes nothing else).
    for relative, text in history_files(estate).items():
        files[f"inventory/{relative}"] = _gzip(mapper(text))

    simulator = _Simulator(estate, seed)
    records = simulator.run()
    files.update(_dns_files(estate, simulator.queries, mapper))
    by_log: dict[tuple[str, int], list[tuple[int, int, str]]] = {}
    cloudwatch: list[tuple[int, str, _Record]] = []
    for record in records:
        flow_log = estate.flow_log_of(record.eni)
        assert flow_log is not None  # only logged ENIs produce records
        line = mapper(_format(estate, flow_log, record))
        if flow_log.destination_type == "s3":
            by_log.setdefault((flow_log.flow_log_id, record.interval // INTERVALS_PER_DAY), []).append(
                (record.start, record.end, line)
            )
        else:
            cloudwatch.append((record.start, line, record))

    header_by_log = {flow_log.flow_log_id: " ".join(flow_log.fields) for flow_log in estate.flow_logs}
    for (flow_log_id, day), lines in sorted(by_log.items()):
        date = _day(day)
        new_id = mapper(flow_log_id)
        digest = hashlib.sha256(f"{new_id}/{date:%Y%m%d}".encode()).hexdigest()[:8]
        path = (
            f"flows/AWSLogs/{estate.account_id}/vpcflowlogs/{estate.region}/{date:%Y/%m/%d}/"
            f"{estate.account_id}_vpcflowlogs_{estate.region}_{new_id}_{date:%Y%m%d}T0000Z_{digest}.log.gz"
        )
        body = [header_by_log[flow_log_id]] + [line for _, _, line in sorted(lines)]
        files[path] = _gzip("".join(f"{line}\n" for line in body))

    nat = mapped.eni(mapper(estate.eni("nat-gateway").eni_id))
    stream = f"{nat.eni_id}-all"
    events = [
        {
            "logStreamName": stream,
            "timestamp": start * 1000,
            "message": line,
            "ingestionTime": record.end * 1000 + record.delay_ms,
            "eventId": _event_id(start * 1000, line),
        }
        for start, line, record in sorted(cloudwatch, key=lambda item: (item[0], item[1]))
    ]
    document = {
        "events": events,
        "searchedLogStreams": [{"logStreamName": stream, "searchedCompletely": True}],
    }
    files[f"flows/cloudwatch/filter-log-events_nat-gateway_{_day(CLOUDWATCH_DAY):%Y-%m-%d}.json"] = _json(
        document
    ).encode()
    return files


_DNS_DELIVERY: Final = 3600  # one query-log file per VPC per hour with queries (README "DNS")


def _dns_files(estate: Estate, queries: Sequence[_Query], mapper: Callable[[str], str]) -> dict[str, bytes]:
    """The Route 53 Resolver query logs as delivered to S3: ``dns/AWSLogs/<account>/vpcdnsquerylogs/<vpc>/
    YYYY/MM/DD/<vpc>_vpcdnsquerylogs_<account>_<YYYYMMDDTHHmm>Z_<hash>.log.gz``, one compact JSON record
    per line with the fields in the order the Resolver writes them. The file's time and folder are those
    of its delivery, a few minutes after the hour its queries fell in."""
    by_file: dict[tuple[str, str, int], list[tuple[int, str]]] = {}
    for query in queries:
        record = {
            "version": "1.100000",
            "account_id": query.account_id,
            "region": estate.region,
            "vpc_id": query.vpc_id,
            "query_timestamp": _iso(query.timestamp),
            "query_name": f"{query.name}.",
            "query_type": query.qtype,
            "query_class": "IN",
            "rcode": query.rcode,
            "answers": [{"Rdata": rdata, "Type": kind, "Class": "IN"} for kind, rdata in query.answers],
            "srcaddr": query.srcaddr,
            "srcport": str(query.srcport),
            "transport": "UDP",
            "srcids": dict(query.srcids),
        }
        key = (query.account_id, mapper(query.vpc_id), query.timestamp // _DNS_DELIVERY)
        by_file.setdefault(key, []).append((query.timestamp, mapper(_compact(record))))
    files: dict[str, bytes] = {}
    for (account, vpc, slot), lines in sorted(by_file.items()):
        delay = 60 * (1 + int(hashlib.sha256(f"dns-delivery/{vpc}/{slot}".encode()).hexdigest(), 16) % 6)
        when = _utc((slot + 1) * _DNS_DELIVERY + delay)
        digest = hashlib.sha256(f"{vpc}/{slot}".encode()).hexdigest()[:8]
        path = (
            f"dns/AWSLogs/{account}/vpcdnsquerylogs/{vpc}/{when:%Y/%m/%d}/"
            f"{vpc}_vpcdnsquerylogs_{account}_{when:%Y%m%dT%H%M}Z_{digest}.log.gz"
        )
        files[path] = _gzip("".join(f"{line}\n" for _, line in sorted(lines)))
    return files


def generate(out_dir: Path, id_map: Mapping[str, str] | None = None, *, seed: int = SEED) -> None:
    """Write the sample (``inventory/``, ``flows/`` and ``dns/``) under ``out_dir``, renaming ids by
    ``id_map``.

    ``inventory/``, ``flows/`` and ``dns/`` are replaced wholesale: they are entirely generated, and a
    file left over from an earlier layout would otherwise be read as data. Nothing else in ``out_dir``
    (such as a README or ``expected/``) is touched.
    """
    files = render_files(build_estate(), id_map, seed)
    out_dir = Path(out_dir)
    for generated in ("inventory", "flows", "dns"):
        target = out_dir / generated
        if target.exists():
            shutil.rmtree(target)
    for relative, content in sorted(files.items()):
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.standins.sample_estate --out sample_data [--id-map MAP.json]``."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.standins.sample_estate",
        description="Write the sample VPC estate: inventory snapshot, flow logs and Route 53 Resolver "
        "query logs (deterministic).",
    )
    parser.add_argument(
        "--out", type=Path, help="directory to write inventory/, flows/ and dns/ into (required)"
    )
    parser.add_argument(
        "--id-map", type=Path, help='JSON object {"old-id": "new-id", ...} renaming ids (e.g. to moto\'s)'
    )
    parser.add_argument(
        "--seed", type=int, default=SEED, help=f"traffic seed (default {SEED}: the committed data)"
    )
    parser.add_argument("--list-ids", action="store_true", help="print every id of the sample and exit")
    args = parser.parse_args(argv)
    if args.list_ids:
        print("\n".join(build_estate().ids()))
        return 0
    if args.out is None:
        parser.error("--out is required")
    id_map: dict[str, str] | None = None
    if args.id_map is not None:
        loaded = json.loads(args.id_map.read_text())
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            parser.error("--id-map must hold a JSON object of strings")
        id_map = {str(key): str(value) for key, value in loaded.items()}
    try:
        generate(args.out, id_map, seed=args.seed)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
