"""Create the sample estate in an EC2 endpoint (moto's server in the tests) and return the id map.

moto assigns its own ids and cannot take the sample's (DESIGN §8), so the topology is created first and
the flows are then generated for moto's ids (``sample_estate.generate(out, id_map)``). What moto cannot
represent is created as close as it allows and listed here, so a test knows what differs:

* NAT gateway and interface-endpoint ENIs come out as plain ``interface`` ENIs (moto ignores
  ``InterfaceType`` and requester management); the NAT gateway ENI carries no groups, as in AWS, so no
  rule is ever proposed from its traffic;
* AWS-managed prefix lists exist in moto with ids of its own and entries of its own: they are looked up
  by name, and their entries are moto's, not the sample's;
* no flow logs are created: moto dates them "now", after the sample's window, so they could not
  extend any ENI's coverage anyway; coverage comes from the records, as for files.
"""

from __future__ import annotations

from typing import Any

from tests.standins.sample_estate import Estate, NetworkInterface, Rule, SecurityGroup


def create_estate(ec2: Any, estate: Estate) -> dict[str, str]:
    """Create VPC, subnets, prefix lists, groups with their rules (in order) and ENIs; sample id → new id."""
    id_map: dict[str, str] = {}
    vpc = ec2.create_vpc(CidrBlock=estate.vpc.cidr, TagSpecifications=_name("vpc", estate.vpc.name))
    vpc_id = vpc["Vpc"]["VpcId"]
    id_map[estate.vpc.vpc_id] = vpc_id
    for subnet in estate.subnets:
        created = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=subnet.cidr, TagSpecifications=_name("subnet", subnet.name)
        )
        id_map[subnet.subnet_id] = created["Subnet"]["SubnetId"]
    id_map.update(_prefix_lists(ec2, estate))
    id_map.update(_groups(ec2, estate, vpc_id))
    for group in estate.security_groups:
        id_map.update(_rules(ec2, group, id_map))
    for eni in estate.network_interfaces:
        id_map[eni.eni_id] = _interface(ec2, eni, id_map)
    return {old: new for old, new in id_map.items() if old != new}


def _name(resource: str, name: str | None) -> list[dict[str, Any]]:
    return [{"ResourceType": resource, "Tags": [{"Key": "Name", "Value": name}]}] if name else []


def _prefix_lists(ec2: Any, estate: Estate) -> dict[str, str]:
    existing = {
        p["PrefixListName"]: p["PrefixListId"] for p in ec2.describe_managed_prefix_lists()["PrefixLists"]
    }
    mapped = {}
    for prefix_list in estate.prefix_lists:
        if prefix_list.aws_managed:
            if prefix_list.name in existing:
                mapped[prefix_list.prefix_list_id] = existing[prefix_list.name]
            continue
        created = ec2.create_managed_prefix_list(
            PrefixListName=prefix_list.name,
            AddressFamily="IPv6" if any(":" in e.cidr for e in prefix_list.entries or ()) else "IPv4",
            MaxEntries=prefix_list.max_entries or max(1, len(prefix_list.entries or ())),
            Entries=[
                {"Cidr": e.cidr, **({"Description": e.description} if e.description else {})}
                for e in prefix_list.entries or ()
            ],
            TagSpecifications=_name("prefix-list", prefix_list.name_tag),
        )
        mapped[prefix_list.prefix_list_id] = created["PrefixList"]["PrefixListId"]
    return mapped


def _groups(ec2: Any, estate: Estate, vpc_id: str) -> dict[str, str]:
    """Create every group (the VPC's own ``default`` is reused) and strip the egress rules a new group
    starts with (allow-all, DESIGN §7), so that exactly the sample's rules follow."""
    mapped = {}
    for group in estate.security_groups:
        if group.group_name == "default":
            found = ec2.describe_security_groups(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc_id]},
                    {"Name": "group-name", "Values": ["default"]},
                ]
            )["SecurityGroups"]
            group_id = found[0]["GroupId"]
            if group.name_tag:
                ec2.create_tags(Resources=[group_id], Tags=[{"Key": "Name", "Value": group.name_tag}])
        else:
            group_id = ec2.create_security_group(
                GroupName=group.group_name,
                Description=group.description,
                VpcId=vpc_id,
                TagSpecifications=_name("security-group", group.name_tag),
            )["GroupId"]
        mapped[group.group_id] = group_id
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
        starting = [r["SecurityGroupRuleId"] for r in rules["SecurityGroupRules"]]
        egress = [r["SecurityGroupRuleId"] for r in rules["SecurityGroupRules"] if r["IsEgress"]]
        ingress = sorted(set(starting) - set(egress))
        if egress:
            ec2.revoke_security_group_egress(GroupId=group_id, SecurityGroupRuleIds=egress)
        if ingress:
            ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=ingress)
    return mapped


def _rules(ec2: Any, group: SecurityGroup, id_map: dict[str, str]) -> dict[str, str]:
    mapped = {}
    group_id = id_map[group.group_id]
    for rule in group.rules:
        permission = _permission(rule, id_map)
        call = ec2.authorize_security_group_egress if rule.is_egress else ec2.authorize_security_group_ingress
        created = call(GroupId=group_id, IpPermissions=[permission])["SecurityGroupRules"]
        mapped[rule.rule_id] = created[0]["SecurityGroupRuleId"]
    return mapped


def _permission(rule: Rule, id_map: dict[str, str]) -> dict[str, Any]:
    permission: dict[str, Any] = {"IpProtocol": rule.ip_protocol}
    if rule.ip_protocol != "-1":
        permission.update(FromPort=rule.from_port, ToPort=rule.to_port)
    described = {"Description": rule.description} if rule.description else {}
    if rule.cidr_ipv4:
        permission["IpRanges"] = [{"CidrIp": rule.cidr_ipv4, **described}]
    elif rule.cidr_ipv6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule.cidr_ipv6, **described}]
    elif rule.prefix_list_id:
        pl_id = id_map.get(rule.prefix_list_id, rule.prefix_list_id)
        permission["PrefixListIds"] = [{"PrefixListId": pl_id, **described}]
    elif rule.referenced_group_id:
        permission["UserIdGroupPairs"] = [{"GroupId": id_map[rule.referenced_group_id], **described}]
    return permission


def _interface(ec2: Any, eni: NetworkInterface, id_map: dict[str, str]) -> str:
    addresses = [{"PrivateIpAddress": eni.private_ip, "Primary": True}] + [
        {"PrivateIpAddress": ip, "Primary": False} for ip in eni.secondary_ips
    ]
    created = ec2.create_network_interface(
        SubnetId=id_map[eni.subnet_id],
        Description=eni.description,
        Groups=[id_map[g] for g in eni.group_ids],
        PrivateIpAddresses=addresses,
        Ipv6Addresses=[{"Ipv6Address": ip} for ip in eni.ipv6_addresses],
        TagSpecifications=_name("network-interface", eni.name if eni.tagged else None),
    )
    eni_id: str = created["NetworkInterface"]["NetworkInterfaceId"]
    return eni_id


def describe_like_aws(
    documents: dict[str, dict[str, list[dict[str, Any]]]], estate: Estate, id_map: dict[str, str]
) -> None:
    """Fill in, in collected snapshot documents, what moto cannot represent: the interface type and
    requester management of AWS-operated ENIs, and that a NAT gateway ENI has no groups (moto puts
    every new ENI in the VPC's default group)."""
    special = {
        id_map.get(e.eni_id, e.eni_id): e
        for e in estate.network_interfaces
        if e.interface_type != "interface"
    }
    for record in documents["describe-network-interfaces.json"]["NetworkInterfaces"]:
        eni = special.get(record["NetworkInterfaceId"])
        if eni is None:
            continue
        record["InterfaceType"] = eni.interface_type
        record["RequesterManaged"] = eni.requester_managed
        if not eni.group_ids:
            record["Groups"] = []
