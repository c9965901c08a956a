"""Workload kinds (issue 17): what runs behind each ENI, read from describe-network-interfaces, kept out of
the rules where it is infrastructure, and shown wherever an ENI is named.

The field values are real ones (DescribeNetworkInterfaces output, Terraform exports of real accounts,
the VPC CNI and ECS agent issue trackers); the ids are those of the samples. Sources: the README note
and sgadvisor/inventory/kinds.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.flowlogs.ingest import read_flows
from sgadvisor.inventory.kinds import WorkloadKind
from sgadvisor.inventory.model import Inventory
from sgadvisor.inventory.snapshot import load_snapshot
from sgadvisor.models import Recommendation
from sgadvisor.render.html import render_html
from sgadvisor.render.markdown import render_summary
from tests.conftest import DEFAULT_HEADER, default_line, write_lines

VPC = "vpc-0c135279d2fedea3d"
SUBNET = "subnet-0699b5b8ff97ac92d"


def _eni(eni_id: str, ip: str, groups: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    """One NetworkInterfaces entry as the AWS CLI prints it."""
    entry: dict[str, Any] = {
        "AvailabilityZone": "eu-west-1c",
        "Description": "",
        "Groups": [{"GroupId": gid, "GroupName": gid.removeprefix("sg-")} for gid in groups],
        "InterfaceType": "interface",
        "Ipv6Addresses": [],
        "NetworkInterfaceId": eni_id,
        "OwnerId": "111111111111",
        "PrivateIpAddress": ip,
        "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": ip}],
        "RequesterManaged": False,
        "SourceDestCheck": True,
        "Status": "in-use",
        "SubnetId": SUBNET,
        "TagSet": [],
        "VpcId": VPC,
    }
    entry.update(fields)
    return entry


def _attached(instance_id: str, device_index: int, owner: str = "111111111111") -> dict[str, Any]:
    return {
        "Attachment": {
            "AttachmentId": "eni-attach-003f2b4fdcff1d81b",
            "DeviceIndex": device_index,
            "InstanceId": instance_id,
            "InstanceOwnerId": owner,
            "Status": "attached",
        }
    }


# (expected kind, entry): one fixture per kind, field values as real accounts show them.
FIXTURES: list[tuple[WorkloadKind, dict[str, Any]]] = [
    (WorkloadKind.INSTANCE, _eni("eni-02f8e8bd70169a2f3", "172.31.46.122", ("sg-0c3a2e558a6a67a84",),
                                 Description="Primary network interface", **_attached("i-03617f5ddb18672ca", 0))),
    # ECS awsvpc task on Fargate (no instance) and on an EC2 container instance (attached to it)
    (WorkloadKind.ECS_TASK, _eni("eni-0360b6116e121ea9f", "10.100.128.252", ("sg-0dd82609d8f080a0f",),
                                 Description="arn:aws:ecs:ap-northeast-2:726629337826:attachment/"
                                 "737ff408-0e2b-41af-837c-49ce4048de9b", RequesterManaged=True)),
    (WorkloadKind.ECS_TASK, _eni("eni-07cd0fb55a213e389", "10.100.144.20", ("sg-0dd82609d8f080a0f",),
                                 Description="arn:aws:ecs:eu-central-1:975050320203:attachment/"
                                 "2fb802a1-d6f7-45dc-a7e8-a11b3a48a573", **_attached("i-0494ad4d4f5fb818b", 1))),
    (WorkloadKind.LAMBDA, _eni("eni-0050a87d126f95d79", "10.0.0.39", ("sg-04be8e9c0e99edd02",),
                               InterfaceType="lambda", RequesterManaged=True,
                               Description="AWS Lambda VPC ENI-sandbox_DependencyTrackInterface_usw2-"
                               "30bb1fd5-e726-4d80-9ff2-52fd62cd548c")),
    (WorkloadKind.EKS_NODE, _eni("eni-01d8a33b348ff17b7", "10.40.158.134", ("sg-0dcadb90255b530c2",),
                                 Description="aws-K8S-i-0e5f6eaf5507b2388", **_attached("i-0e5f6eaf5507b2388", 1),
                                 TagSet=[{"Key": "cluster.k8s.amazonaws.com/name", "Value": "eks-cluster"}])),
    # the node's primary ENI: no description, only the VPC CNI's tag tells
    (WorkloadKind.EKS_NODE, _eni("eni-047d27e7ce637402c", "10.40.159.213", ("sg-0dcadb90255b530c2",),
                                 **_attached("i-0e5f6eaf5507b2388", 0),
                                 TagSet=[{"Key": "cluster.k8s.amazonaws.com/name", "Value": "eks-cluster"},
                                         {"Key": "node.k8s.amazonaws.com/instance_id",
                                          "Value": "i-0e5f6eaf5507b2388"}])),
    (WorkloadKind.EKS_TRUNK, _eni("eni-03e61f90252a662d1", "192.168.13.247", ("sg-0a48a1b77f21917a1",),
                                  Description="aws-k8s-trunk-eni", InterfaceType="trunk", RequesterId="895095153028",
                                  **_attached("i-00018772909497f61", 2),
                                  TagSet=[{"Key": "eks:eni:owner", "Value": "eks-vpc-resource-controller"}])),
    (WorkloadKind.EKS_BRANCH, _eni("eni-047ff73e04f5b733c", "192.168.29.178", ("sg-01d949d847be58d1c",),
                                   Description="aws-k8s-branch-eni", InterfaceType="branch",
                                   RequesterId="895095153028",
                                   TagSet=[{"Key": "vpcresources.k8s.aws/trunk-eni-id",
                                            "Value": "eni-03e61f90252a662d1"}])),
    (WorkloadKind.EKS_CONTROL_PLANE, _eni("eni-027868e05aa934710", "10.40.137.111", ("sg-0dcadb90255b530c2",),
                                          Description="Amazon EKS eks-cluster")),
    (WorkloadKind.ALB, _eni("eni-0779d6c0e3a03df3c", "10.100.128.251", ("sg-04de431b39e807229",),
                            Description="ELB app/info-final/5bd164072db03311", RequesterId="amazon-elb",
                            RequesterManaged=True)),
    (WorkloadKind.NLB, _eni("eni-024806e1d471b89ae", "10.20.101.122", Description="ELB net/nlb/ab25f3ac807d0ea8",
                            InterfaceType="network_load_balancer", RequesterId="amazon-elb", RequesterManaged=True,
                            SourceDestCheck=False)),
    (WorkloadKind.GWLB, _eni("eni-0b1c2d3e4f5a60718", "10.50.1.20", Description="ELB gwy/inspection/1c2d3e4f5a6b7c8d",
                             InterfaceType="gateway_load_balancer", RequesterId="amazon-elb", RequesterManaged=True)),
    (WorkloadKind.CLB, _eni("eni-0c1d2e3f4a5b60719", "10.0.2.91", ("sg-0b55f98929a27725a",),
                            Description="ELB legacy-web", RequesterId="amazon-elb", RequesterManaged=True)),
    (WorkloadKind.INTERFACE_ENDPOINT, _eni("eni-07fa670621d4eb5c1", "10.100.138.230", ("sg-0fb55cc0d37e47a52",),
                                           Description="VPC Endpoint Interface vpce-0f7e3a4b10d87e195",
                                           InterfaceType="vpc_endpoint", RequesterId="727180483921",
                                           RequesterManaged=True)),
    (WorkloadKind.GWLB_ENDPOINT, _eni("eni-0d1e2f3a4b5c6d7e8", "10.60.0.10",
                                      Description="VPC Endpoint Interface vpce-0a1b2c3d4e5f60718",
                                      InterfaceType="gateway_load_balancer_endpoint", RequesterManaged=True)),
    (WorkloadKind.NAT_GATEWAY, _eni("eni-0401f525b76d15fb1", "10.100.1.153",
                                    Description="Interface for NAT Gateway nat-0d1d1ba9ec02d3aa6",
                                    InterfaceType="nat_gateway", RequesterId="036872051663", RequesterManaged=True,
                                    SourceDestCheck=False)),
    (WorkloadKind.TRANSIT_GATEWAY, _eni("eni-0027101acd69604b1", "10.50.0.132",
                                        Description="Network Interface for Transit Gateway Attachment "
                                        "tgw-attach-08697ea35792e3e3b", InterfaceType="transit_gateway",
                                        RequesterManaged=True, SourceDestCheck=False)),
    (WorkloadKind.RDS, _eni("eni-01b6af54923d675fe", "10.100.131.91", ("sg-09dcb1de62d658b08",),
                            Description="RDSNetworkInterface", RequesterId="amazon-rds", RequesterManaged=True)),
    (WorkloadKind.EFS, _eni("eni-06d89663249a7b5e8", "10.0.0.5", ("sg-054dc2a574201ef5b",),
                            Description="EFS mount target for fs-e7507afe (fsmt-4d56ee54)", RequesterManaged=True)),
    (WorkloadKind.OTHER_MANAGED, _eni("eni-0e7302e0797b46b20", "10.100.141.137", ("sg-04de431b39e807229",),
                                      Description="ENI managed by APIGateway", InterfaceType="api_gateway_managed",
                                      RequesterManaged=True)),
    (WorkloadKind.OTHER_MANAGED, _eni("eni-030cd191dfbaad8bf", "10.40.175.7", ("sg-0eb93ca9d68a52789",),
                                      Description="ElastiCache redis-001", RequesterId="amazon-elasticache",
                                      RequesterManaged=True)),
    (WorkloadKind.INTERFACE, _eni("eni-0f0e0d0c0b0a09080", "10.0.9.9", ("sg-0c3a2e558a6a67a84",), Status="available")),
]  # fmt: skip


def _load(tmp_path: Path, entries: list[dict[str, Any]]) -> Inventory:
    groups = sorted({g["GroupId"] for entry in entries for g in entry["Groups"]})
    (tmp_path / "inventory").mkdir(exist_ok=True)
    (tmp_path / "inventory" / "describe-network-interfaces.json").write_text(
        json.dumps({"NetworkInterfaces": entries}), encoding="utf-8"
    )
    (tmp_path / "inventory" / "describe-security-groups.json").write_text(
        json.dumps(
            {
                "SecurityGroups": [
                    {
                        "GroupId": gid,
                        "GroupName": gid.removeprefix("sg-"),
                        "VpcId": VPC,
                        "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
                    }
                    for gid in groups
                ]
            }
        ),
        encoding="utf-8",
    )
    return load_snapshot([tmp_path / "inventory"])


@pytest.mark.parametrize(
    ("expected", "entry"),
    FIXTURES,
    ids=[f"{kind.value}-{entry['NetworkInterfaceId']}" for kind, entry in FIXTURES],
)
def test_each_kind_is_recognised_from_describe_network_interfaces(
    tmp_path: Path, expected: WorkloadKind, entry: dict[str, Any]
) -> None:
    inventory = _load(tmp_path, [entry])
    assert inventory.interfaces[entry["NetworkInterfaceId"]].kind is expected


def test_every_kind_has_a_fixture() -> None:
    assert {kind for kind, _ in FIXTURES} == set(WorkloadKind) - {WorkloadKind.LOAD_BALANCER}


@pytest.mark.parametrize(
    ("api", "sdk", "kind", "infrastructure"),
    [
        ("nat_gateway", "natGateway", WorkloadKind.NAT_GATEWAY, True),  # the one camelCase value in botocore
        ("transit_gateway", "transitGateway", WorkloadKind.TRANSIT_GATEWAY, True),
        ("gateway_load_balancer_endpoint", "gatewayLoadBalancerEndpoint", WorkloadKind.GWLB_ENDPOINT, True),
        ("network_load_balancer", "networkLoadBalancer", WorkloadKind.NLB, False),
        ("vpc_endpoint", "vpcEndpoint", WorkloadKind.INTERFACE_ENDPOINT, False),
    ],
)
def test_both_spellings_of_interface_type(
    tmp_path: Path, api: str, sdk: str, kind: WorkloadKind, infrastructure: bool
) -> None:
    entries = [
        _eni("eni-0a0a0a0a0a0a0a0a1", "10.0.0.11", InterfaceType=api, RequesterManaged=True),
        _eni("eni-0a0a0a0a0a0a0a0a2", "10.0.0.12", InterfaceType=sdk, RequesterManaged=True),
    ]
    inventory = _load(tmp_path, entries)
    for itf in inventory.interfaces.values():
        assert itf.interface_type == api  # the API's spelling from here on (infrastructure_enis "type")
        assert (itf.kind, itf.is_infrastructure) == (kind, infrastructure)


ALB = "eni-0779d6c0e3a03df3c"
ENDPOINT = "eni-07fa670621d4eb5c1"
NAT = "eni-0401f525b76d15fb1"
TGW = "eni-0027101acd69604b1"
RDS = "eni-01b6af54923d675fe"
TARGET = "10.100.131.91"  # the RDS ENI: the ALB's target here, for the sake of one flow


@pytest.fixture
def estate(tmp_path: Path) -> Recommendation:
    """An ALB that opens connections to a target, an interface endpoint that only replies, a NAT gateway
    (in the SDK's spelling) and a transit gateway forwarding others' traffic, an RDS ENI with no record."""
    by_id = {entry["NetworkInterfaceId"]: entry for _, entry in FIXTURES}
    entries = [by_id[eni] for eni in (ALB, ENDPOINT, TGW, RDS)] + [
        dict(by_id[NAT], InterfaceType="natGateway")
    ]
    inventory = _load(tmp_path, entries)
    start = 1_793_491_200
    lines = [
        default_line("10.100.128.251", TARGET, 41000 + i, 8080, eni=ALB, start=start + 60 * i)
        for i in range(5)
    ]
    lines += [default_line("10.100.138.230", "10.100.128.251", 443, 50000, eni=ENDPOINT, start=start)]
    lines += [default_line("10.100.1.153", "198.51.100.20", 1024, 443, eni=NAT, start=start)]
    lines += [default_line("10.50.0.132", "10.60.0.10", 40000, 443, eni=TGW, start=start)]
    flows_file = write_lines(tmp_path / "flows" / "flows.log", lines, header=DEFAULT_HEADER)
    flows = read_flows([flows_file], addresses=inventory.addresses)
    return build_recommendation(flows, inventory, AnalysisOptions(min_window=0))


def test_nat_and_transit_gateway_are_infrastructure_load_balancers_and_endpoints_are_analysed(
    estate: Recommendation,
) -> None:
    assert [(i.eni, i.type) for i in estate.infrastructure_enis] == [
        (TGW, "transit_gateway"),
        (NAT, "nat_gateway"),
    ]
    by_group = {g.group_id: g for g in estate.security_groups}
    alb_group = by_group["sg-04de431b39e807229"]
    assert {(e.eni, e.remote, e.port) for e in alb_group.edges} == {(ALB, TARGET, 8080)}
    assert "sg-0fb55cc0d37e47a52" in by_group  # the endpoint's group is analysed like any other


def test_labels_name_the_kind_in_recommendation_json_and_report_html(estate: Recommendation) -> None:
    labels = json.loads(estate.model_dump_json())["labels"]
    assert labels[ALB] == "ELB app/info-final/5bd164072db03311 (alb)"
    assert labels[ENDPOINT] == "VPC Endpoint Interface vpce-0f7e3a4b10d87e195 (interface-endpoint)"
    assert labels[NAT] == "Interface for NAT Gateway nat-0d1d1ba9ec02d3aa6 (nat-gateway)"
    assert labels[RDS] == "RDSNetworkInterface (rds)"
    assert labels["sg-04de431b39e807229"] == "04de431b39e807229"  # groups keep their labels
    html = render_html(estate)
    assert f'<code>{ALB}</code> <span class="lbl">ELB app/info-final/5bd164072db03311 (alb)</span>' in html


def test_summary_names_the_kind_of_an_eni_in_the_reasons(estate: Recommendation) -> None:
    rds_group = next(g for g in estate.security_groups if g.group_id == "sg-09dcb1de62d658b08")
    assert any(RDS in reason for reason in rds_group.coverage.reasons)  # no record of it: not judged
    assert f"{RDS} \\[RDSNetworkInterface (rds)\\]" in render_summary(estate)
