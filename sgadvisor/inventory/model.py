"""The inventory the analysis reasons about: security groups with their rules, ENIs, prefix lists, flow logs.

Plain frozen dataclasses, built once from a snapshot (DESIGN §4.3) or the EC2 API, then only read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from sgadvisor.inventory.history import EniHistories, EniHistory
from sgadvisor.inventory.kinds import (
    INFRASTRUCTURE_TYPES,  # re-exported: ENI types never turned into rules (DESIGN §6)
    WorkloadKind,
    canonical_interface_type,
    workload_kind,
)
from sgadvisor.rules import DestKind, RuleKey, make_key

# AWS-managed prefix-list weights are not in the API (DESIGN §4.3): a rule referencing one counts this
# many rules against the group's quota. https://docs.aws.amazon.com/vpc/latest/userguide/working-with-aws-managed-prefix-lists.html
AWS_MANAGED_WEIGHTS: dict[str, int] = {
    "s3": 1,
    "dynamodb": 1,
    "cloudfront.origin-facing": 55,
    "vpc-lattice": 10,
    "ipv6.vpc-lattice": 10,
    "groundstation": 5,
}


@dataclass(frozen=True, slots=True)
class SgRule:
    """One rule of one group, one destination (the API's permission objects are expanded)."""

    group_id: str
    egress: bool
    ip_protocol: str  # canonical: tcp, udp, icmp, icmpv6, -1 or a number
    from_port: int | None
    to_port: int | None
    kind: DestKind
    value: str
    description: str | None = None
    rule_id: str | None = None  # sgr-… when describe-security-group-rules was given

    @classmethod
    def build(
        cls,
        group_id: str,
        egress: bool,
        protocol: str | int,
        from_port: int | None,
        to_port: int | None,
        kind: DestKind,
        value: str,
        description: str | None = None,
        rule_id: str | None = None,
    ) -> SgRule:
        key = make_key(protocol, from_port, to_port, kind, value)
        return cls(group_id, egress, key.ip_protocol, key.from_port, key.to_port, kind, key.value,
                   description or None, rule_id)  # fmt: skip

    def key(self) -> RuleKey:
        return RuleKey(self.ip_protocol, self.from_port, self.to_port, self.kind, self.value)


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    group_id: str
    group_name: str
    vpc_id: str | None
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    egress: tuple[SgRule, ...] = ()
    ingress: tuple[SgRule, ...] = ()

    @property
    def name_tag(self) -> str | None:
        return self.tags.get("Name")


@dataclass(frozen=True, slots=True)
class Interface:
    eni_id: str
    addresses: tuple[str, ...]  # private IPv4 (primary first, then secondaries) and IPv6, canonical
    group_ids: tuple[str, ...]
    interface_type: str = "interface"
    requester_managed: bool = False
    description: str = ""
    subnet_id: str | None = None
    vpc_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    instance_id: str | None = None
    public_ip: str | None = None
    requester_id: str | None = None  # RequesterId: the account or service (amazon-elb, …) that created it

    @property
    def name_tag(self) -> str | None:
        return self.tags.get("Name")

    @property
    def is_infrastructure(self) -> bool:
        """Decided by InterfaceType alone (API-controlled), never by the description (inventory/kinds.py)."""
        return canonical_interface_type(self.interface_type) in INFRASTRUCTURE_TYPES

    @property
    def kind(self) -> WorkloadKind:
        """What runs behind the ENI (ecs-task, lambda, alb, nat-gateway, …): for labels, not decisions."""
        return workload_kind(self.interface_type, self.description, self.requester_id,
                             self.requester_managed, self.instance_id, self.tags)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PrefixList:
    prefix_list_id: str
    name: str
    address_family: str  # IPv4 | IPv6
    owner_id: str
    max_entries: int | None = None
    entries: tuple[str, ...] | None = None  # canonical CIDRs; None when the entries were not fetched

    @property
    def aws_managed(self) -> bool:
        return self.owner_id == "AWS"

    @property
    def weight(self) -> int | None:
        """Rules a reference costs against the quota: MaxEntries, or the AWS-managed weight table."""
        if not self.aws_managed:
            return self.max_entries
        service = self.name.split(".", 3)[-1] if self.name.startswith("com.amazonaws.") else self.name
        for suffix, weight in AWS_MANAGED_WEIGHTS.items():
            if service == suffix or service.endswith("." + suffix):
                return weight
        return self.max_entries


@dataclass(frozen=True, slots=True)
class FlowLogConfig:
    flow_log_id: str
    resource_id: str  # vpc-…, subnet-… or eni-…
    traffic_type: str  # ALL | ACCEPT | REJECT
    log_format: str | None
    destination_type: str  # cloud-watch-logs | s3 | kinesis-data-firehose
    destination: str | None
    log_group: str | None
    created: int | None  # epoch seconds


@dataclass(frozen=True, slots=True)
class Vpc:
    """A VPC's address blocks (DescribeVpcs): where the Amazon DNS server (base + 2) and the VPC router
    (base + 1) live, whose traffic security groups do not filter and flow logs do not record."""

    vpc_id: str
    cidrs: tuple[str, ...] = ()  # canonical CIDRs, IPv4 (primary first) then IPv6


@dataclass(frozen=True)
class Inventory:
    groups: Mapping[str, SecurityGroup]
    interfaces: Mapping[str, Interface]
    prefix_lists: Mapping[str, PrefixList] = field(default_factory=dict)
    flow_logs: tuple[FlowLogConfig, ...] = ()
    has_rule_ids: bool = False  # describe-security-group-rules was part of the snapshot
    warnings: tuple[str, ...] = ()
    vpcs: Mapping[str, Vpc] = field(default_factory=dict)  # describe-vpcs.json (optional)
    # ENI history (Config items, CloudTrail events; optional, DESIGN §6 "Identity over time"). Last, so
    # that positional constructors keep working.
    history: Mapping[str, EniHistory] = field(default_factory=EniHistories)

    @cached_property
    def members(self) -> Mapping[str, tuple[str, ...]]:
        """Group id → the ENIs that carry it (sorted)."""
        out: dict[str, list[str]] = {gid: [] for gid in self.groups}
        for eni in sorted(self.interfaces):
            for gid in self.interfaces[eni].group_ids:
                out.setdefault(gid, []).append(eni)
        return {gid: tuple(enis) for gid, enis in out.items()}

    @cached_property
    def addresses(self) -> Mapping[str, tuple[str, ...]]:
        """ENI → its addresses, the map flow ingestion uses to tell egress from ingress."""
        return {eni: itf.addresses for eni, itf in self.interfaces.items()}

    @cached_property
    def flow_logs_on(self) -> Mapping[str, tuple[FlowLogConfig, ...]]:
        """Resource (ENI, subnet, VPC id) → the flow logs attached to it: asked per ENI of every group,
        where one flow log per ENI is common."""
        out: dict[str, list[FlowLogConfig]] = {}
        for log in self.flow_logs:
            out.setdefault(log.resource_id, []).append(log)
        return {resource: tuple(logs) for resource, logs in out.items()}

    @cached_property
    def owner_of_address(self) -> Mapping[str, str]:
        """Address → the ENI that holds it (first by ENI id when several claim one)."""
        owners: dict[str, str] = {}
        for eni in sorted(self.interfaces):
            for address in self.interfaces[eni].addresses:
                owners.setdefault(address, eni)
        return owners
