"""What runs behind an ENI (its workload kind), read from DescribeNetworkInterfaces fields.

One table, first match wins: the API-controlled ``InterfaceType`` first, then the ``Description`` AWS
services write on the ENIs they create, then ``RequesterId``, then the VPC CNI's node tag, then the
attachment. The kind only names an ENI for the reader (labels, report): the one decision the analysis
takes from an ENI's nature — infrastructure, never turned into rules (DESIGN §6) — stays on the
``InterfaceType`` alone (:data:`INFRASTRUCTURE_TYPES`), because a customer can write any description on
an ENI of their own and must not be able to take it out of the analysis by calling it a NAT gateway.

``InterfaceType`` values are those of botocore's ``NetworkInterfaceType`` enum (ec2 2016-11-15); the API
writes ``nat_gateway`` where the SDK enum says ``natGateway``, and DESIGN §4.3 accepts SDK spellings:
:func:`canonical_interface_type` turns a camelCase spelling into the API's snake_case one.

Real values the table was written against (public samples, see the README note):

* ALB ``ELB app/info-final/5bd164072db03311`` with InterfaceType ``interface`` and RequesterId
  ``amazon-elb``; NLB ``ELB net/nlb/ab25f3ac807d0ea8`` with ``network_load_balancer``; GWLB
  ``ELB gwy/<name>/<id>`` with ``gateway_load_balancer``; Classic ``ELB <name>``.
* ECS awsvpc task ``arn:aws:ecs:ap-northeast-2:726629337826:attachment/737ff408-0e2b-41af-837c-49ce4048de9b``.
* Lambda ``AWS Lambda VPC ENI-<function>-<uuid>`` with InterfaceType ``lambda`` (older ENIs:
  ``AWS Lambda VPC ENI: …`` with ``interface``).
* EKS: node ENIs of the VPC CNI ``aws-K8S-i-0e5f6eaf5507b2388`` (the node's primary ENI has no
  description but the tag ``node.k8s.amazonaws.com/instance_id``); security groups for pods
  ``aws-k8s-trunk-eni`` (``trunk``) and ``aws-k8s-branch-eni`` (``branch``); the control plane's
  cross-account ENIs ``Amazon EKS <cluster>``.
* ``Interface for NAT Gateway nat-0d1d1ba9ec02d3aa6`` (``nat_gateway``), ``Network Interface for Transit
  Gateway Attachment tgw-attach-08697ea35792e3e3b`` (``transit_gateway``), ``VPC Endpoint Interface
  vpce-0f7e3a4b10d87e195`` (``vpc_endpoint``), ``RDSNetworkInterface`` (RequesterId ``amazon-rds``),
  ``EFS mount target for fs-e7507afe (fsmt-4d56ee54)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class WorkloadKind(StrEnum):
    INSTANCE = "instance"  # an EC2 instance's own ENI (primary or secondary, EFA included)
    INTERFACE = "interface"  # a customer ENI attached to nothing
    ECS_TASK = "ecs-task"
    LAMBDA = "lambda"
    EKS_NODE = "eks-node"
    EKS_TRUNK = "eks-trunk"
    EKS_BRANCH = "eks-branch"
    EKS_CONTROL_PLANE = "eks-control-plane"
    ALB = "alb"
    NLB = "nlb"
    GWLB = "gwlb"
    CLB = "clb"
    LOAD_BALANCER = "load-balancer"  # an ELB ENI whose flavour the fields do not tell
    INTERFACE_ENDPOINT = "interface-endpoint"
    GWLB_ENDPOINT = "gwlb-endpoint"
    NAT_GATEWAY = "nat-gateway"
    TRANSIT_GATEWAY = "transit-gateway"
    RDS = "rds"
    EFS = "efs"
    OTHER_MANAGED = "other-managed"  # created by another AWS service (API Gateway, QuickSight, MSK, …)

    @property
    def is_load_balancer(self) -> bool:
        return self in _LOAD_BALANCERS


_LOAD_BALANCERS: Final = frozenset(
    {WorkloadKind.ALB, WorkloadKind.NLB, WorkloadKind.GWLB, WorkloadKind.CLB, WorkloadKind.LOAD_BALANCER}
)

# ENI types that forward other hosts' traffic and carry no security groups: never turned into rules
# (DESIGN §6). Gateway Load Balancers and their endpoints support no security groups either.
INFRASTRUCTURE_TYPES: Final = frozenset(
    {"nat_gateway", "transit_gateway", "gateway_load_balancer", "gateway_load_balancer_endpoint"}
)

_CAMEL_HUMP: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def canonical_interface_type(value: str) -> str:
    """The API's spelling of an InterfaceType: ``natGateway`` → ``nat_gateway``,
    ``networkLoadBalancer`` → ``network_load_balancer``; snake_case values and ``efa-only`` unchanged."""
    text = value.strip()
    return _CAMEL_HUMP.sub("_", text).lower() if any(c.isupper() for c in text) else text


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: WorkloadKind
    interface_types: frozenset[str] = frozenset()  # canonical InterfaceType values
    description: re.Pattern[str] | None = None  # matched at the start of the Description
    requester_ids: frozenset[str] = frozenset()
    tag: str | None = None  # a tag key whose presence decides

    def matches(
        self, interface_type: str, description: str, requester_id: str | None, tags: Mapping[str, str]
    ) -> bool:
        if self.interface_types and interface_type not in self.interface_types:
            return False
        if self.description is not None and not self.description.match(description):
            return False
        if self.requester_ids and requester_id not in self.requester_ids:
            return False
        return self.tag is None or self.tag in tags


def _types(*names: str) -> frozenset[str]:
    return frozenset(names)


def _starts(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix))


_ECS_ATTACHMENT: Final = re.compile(r"arn:aws[a-z-]*:ecs:[^:/]*:\d*:attachment/")
_ANY_ELB: Final = ("load_balancer", "network_load_balancer", "gateway_load_balancer", "interface")
_OTHER_MANAGED_TYPES: Final = frozenset(
    {
        "api_gateway_managed",
        "quicksight",
        "global_accelerator_managed",
        "iot_rules_managed",
        "aws_codestar_connections_managed",
    }
)
_TGW_ATTACHMENT: Final = _starts("Network Interface for Transit Gateway Attachment ")

# First match wins. A rule with several conditions needs all of them.
_RULES: Final[tuple[_Rule, ...]] = (
    # Types only AWS sets, that name the workload whatever the description says.
    _Rule(WorkloadKind.NAT_GATEWAY, _types("nat_gateway")),
    _Rule(WorkloadKind.TRANSIT_GATEWAY, _types("transit_gateway")),
    _Rule(WorkloadKind.GWLB_ENDPOINT, _types("gateway_load_balancer_endpoint")),
    _Rule(WorkloadKind.GWLB, _types("gateway_load_balancer")),
    _Rule(WorkloadKind.NLB, _types("network_load_balancer")),
    _Rule(WorkloadKind.INTERFACE_ENDPOINT, _types("vpc_endpoint")),
    _Rule(WorkloadKind.LAMBDA, _types("lambda")),
    _Rule(WorkloadKind.OTHER_MANAGED, _OTHER_MANAGED_TYPES),
    # Trunk and branch ENIs serve EKS security groups for pods and ECS awsvpc trunking alike.
    _Rule(WorkloadKind.ECS_TASK, _types("branch", "interface"), description=_ECS_ATTACHMENT),
    _Rule(WorkloadKind.EKS_BRANCH, _types("branch")),
    _Rule(WorkloadKind.EKS_TRUNK, _types("trunk"), description=_starts("aws-k8s-trunk-eni")),
    # Descriptions AWS services write on the ENIs they create (InterfaceType "interface").
    _Rule(WorkloadKind.LAMBDA, description=_starts("AWS Lambda VPC ENI")),
    _Rule(WorkloadKind.EKS_NODE, description=_starts("aws-K8S-")),
    _Rule(WorkloadKind.EKS_CONTROL_PLANE, description=_starts("Amazon EKS ")),
    _Rule(WorkloadKind.ALB, _types(*_ANY_ELB), description=_starts("ELB app/")),
    _Rule(WorkloadKind.NLB, _types(*_ANY_ELB), description=_starts("ELB net/")),
    _Rule(WorkloadKind.GWLB, _types(*_ANY_ELB), description=_starts("ELB gwy/")),
    _Rule(WorkloadKind.CLB, _types(*_ANY_ELB), description=re.compile(r"ELB [^/\s]+$")),
    _Rule(WorkloadKind.LOAD_BALANCER, _types("load_balancer")),
    _Rule(WorkloadKind.LOAD_BALANCER, requester_ids=frozenset({"amazon-elb"})),
    _Rule(WorkloadKind.NAT_GATEWAY, description=_starts("Interface for NAT Gateway ")),
    _Rule(WorkloadKind.TRANSIT_GATEWAY, description=_TGW_ATTACHMENT),
    _Rule(WorkloadKind.INTERFACE_ENDPOINT, description=_starts("VPC Endpoint Interface ")),
    _Rule(WorkloadKind.RDS, description=re.compile(r"RDSNetworkInterface$")),
    _Rule(WorkloadKind.RDS, requester_ids=frozenset({"amazon-rds"})),
    _Rule(WorkloadKind.EFS, description=_starts("EFS mount target ")),
    # The primary ENI of an EKS node has no description; the VPC CNI tags it.
    _Rule(WorkloadKind.EKS_NODE, tag="node.k8s.amazonaws.com/instance_id"),
)


def workload_kind(
    interface_type: str,
    description: str = "",
    requester_id: str | None = None,
    requester_managed: bool = False,
    instance_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> WorkloadKind:
    """The workload kind of one ENI from its DescribeNetworkInterfaces fields (see the module text)."""
    itype = canonical_interface_type(interface_type or "interface")
    text = description.strip()
    for rule in _RULES:
        if rule.matches(itype, text, requester_id, tags or {}):
            return rule.kind
    if instance_id:
        return WorkloadKind.INSTANCE
    if requester_managed:
        return WorkloadKind.OTHER_MANAGED
    return WorkloadKind.INTERFACE
