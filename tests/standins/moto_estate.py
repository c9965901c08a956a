"""Create the sample estate in an EC2 endpoint (moto's server in the tests) and return the id map.

moto assigns its own ids and cannot take the sample's (DESIGN §8), so the topology is created first and
the flows are then generated for moto's ids (``sample_estate.generate(out, id_map)``). What moto cannot
represent is created as close as it allows and listed here, so a test knows what differs:

* moto's API cannot create AWS-operated ENIs (NAT gateway, interface endpoint, Lambda, ECS tasks): they are
  created as plain ENIs, then :func:`dress_like_aws` sets in moto's in-process backend what EC2 shows for
  them (``InterfaceType``, ``RequesterManaged``, ``RequesterId``, the tags AWS puts on, ``in-use``; no
  groups on the NAT gateway ENI, so no rule is ever proposed from its traffic), and removes the
  ``RequesterId`` moto puts on every ENI (EC2 shows none on an ENI the account created). Their
  attachments (to AWS-owned hosts) are not shown: moto attaches only to its own instances;
* an instance's ENI is attached to a moto instance (``RunInstances`` on the ENI, device index 0), whose id
  replaces the sample's in the id map (so the flows' ``instance-id`` and the history name moto's);
* the ENIs and groups deleted in the window (:attr:`Estate.former_interfaces`) are not created: EC2 no
  longer lists them, only their history tells them (:func:`tests.standins.history_server.load_sample_history`
  serves it from the generated sample's ``inventory/AWSLogs/``);
* AWS-managed prefix lists exist in moto with ids of its own and entries of its own: they are looked up
  by name, and their entries are moto's, not the sample's;
* no flow logs are created: moto dates them "now", after the sample's window, so they could not
  extend any ENI's coverage anyway; coverage comes from the records, as for files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.standins.history_server import HistoryServer, load_sample_history
from tests.standins.sample_estate import ACCOUNT_ID, WINDOW_END, Estate, NetworkInterface, Rule, SecurityGroup

MOTO_ACCOUNT = "123456789012"  # moto's default account, the sample's too
# File name → document, as sgadvisor.aws.source names them (EC2 snapshot files, fetched history).
Documents = dict[str, dict[str, list[dict[str, Any]]]]


def create_estate(ec2: Any, estate: Estate) -> dict[str, str]:
    """Create VPC, subnets, prefix lists, groups with their rules (in order), ENIs and the instances they
    are attached to; dress the ENIs as EC2 shows them (:func:`dress_like_aws`); sample id → new id."""
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
        if eni.instance_id is not None and not eni.requester_managed:
            id_map[eni.instance_id] = _instance(ec2, id_map[eni.eni_id])
    renamed = {old: new for old, new in id_map.items() if old != new}
    dress_like_aws(estate, renamed, region=ec2.meta.region_name)
    return renamed


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
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
            {"Key": "Name", "Value": eni.name}, {"Key": "Role", "Value": eni.role}]}] if eni.tagged else [],
    )  # fmt: skip
    eni_id: str = created["NetworkInterface"]["NetworkInterfaceId"]
    return eni_id


_IMAGES: dict[str, str] = {}


def _instance(ec2: Any, eni_id: str) -> str:
    """An instance on the ENI (its primary, device index 0), as RunInstances with an existing ENI makes
    it: DescribeNetworkInterfaces then shows the attachment. Any image moto knows serves."""
    region = ec2.meta.region_name
    if region not in _IMAGES:
        _IMAGES[region] = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    created = ec2.run_instances(
        ImageId=_IMAGES[region],
        MinCount=1,
        MaxCount=1,
        InstanceType="t2.medium",
        NetworkInterfaces=[{"NetworkInterfaceId": eni_id, "DeviceIndex": 0}],
    )
    instance_id: str = created["Instances"][0]["InstanceId"]
    return instance_id


def dress_like_aws(
    estate: Estate, id_map: dict[str, str], *, region: str, account_id: str = MOTO_ACCOUNT
) -> bool:
    """In moto's in-process backend (``ThreadedMotoServer`` shares it), give the sample's ENIs what EC2's
    DescribeNetworkInterfaces shows and moto's API cannot set: ``InterfaceType``, ``RequesterManaged`` and
    ``RequesterId`` of the AWS-operated ENIs (none on the account's own: moto puts one on every ENI), the
    tags AWS puts on them (ECS's cluster name), ``in-use``, and no groups on the NAT gateway ENI (moto
    puts every new ENI in the VPC's default group). Only fields real EC2 returns, with the sample's
    values. False when the backend is not in this process (nothing changed)."""
    from moto.ec2.models import ec2_backends

    assert account_id == ACCOUNT_ID, "the sample's account is moto's default"
    backend = ec2_backends[account_id][region]
    found_by_eni: dict[str, Any] = {}
    for eni in estate.network_interfaces:
        found = backend.enis.get(id_map.get(eni.eni_id, eni.eni_id))
        if found is None:
            return False
        found_by_eni[eni.eni_id] = found
    for eni in estate.network_interfaces:
        found = found_by_eni[eni.eni_id]
        found.interface_type = eni.interface_type
        found.requester_managed = eni.requester_managed
        found.requester_id = eni.requester_id
        found.status = "in-use"
        found.source_dest_check = eni.source_dest_check
        if not eni.tagged and eni.tags:
            found.add_tags(dict(eni.tags))
        if not eni.group_ids:
            found._group_set = []
    return True


def describe_like_aws(
    documents: dict[str, dict[str, list[dict[str, Any]]]], estate: Estate, id_map: dict[str, str]
) -> None:
    """Fill in, in collected snapshot documents, what moto cannot represent: the interface type and
    requester management of AWS-operated ENIs, and that a NAT gateway ENI has no groups (moto puts
    every new ENI in the VPC's default group). A no-op on documents of a backend :func:`dress_like_aws`
    dressed (what :func:`create_estate` does in-process); kept for an out-of-process endpoint."""
    known = {id_map.get(e.eni_id, e.eni_id): e for e in estate.network_interfaces}
    for record in documents["describe-network-interfaces.json"]["NetworkInterfaces"]:
        eni = known.get(record["NetworkInterfaceId"])
        if eni is None:
            continue
        record["InterfaceType"] = eni.interface_type
        record["RequesterManaged"] = eni.requester_managed
        record.pop("RequesterId", None)
        if eni.requester_id is not None:
            record["RequesterId"] = eni.requester_id
        if not eni.group_ids:
            record["Groups"] = []


# --------------------------------------------------------------------------------------------------------
# ENI history: the sample's, served by the Config + CloudTrail stand-in
# --------------------------------------------------------------------------------------------------------


def sample_history_server(sample_dir: Path) -> HistoryServer:
    """The Config + CloudTrail stand-in, started, serving the ENI history of a generated sample
    (``sample_dir/inventory/AWSLogs``: Config's items and CloudTrail's records, under the ids the sample
    was generated with). Its clock is an hour after the window (so LookupEvents' 90 days reach back to the
    events before the window whatever today is); LookupEvents is not rate-limited (its pacing is tested in
    tests/test_history_fetch.py; set ``sgadvisor.aws.history.LOOKUP_INTERVAL`` to 0 in-process). Stop it
    (or use it in ``with``) when done."""
    server = HistoryServer(lookup_rate=None, now=lambda: WINDOW_END + 3600)
    load_sample_history(server, sample_dir / "inventory")
    return server.start()


def history_endpoint_env(server: HistoryServer) -> dict[str, str]:
    """The variables that point the SDK (sgadvisor's clients, the AWS CLI) at the stand-in."""
    return {
        "AWS_ENDPOINT_URL_CONFIG_SERVICE": server.endpoint_url,
        "AWS_ENDPOINT_URL_CLOUDTRAIL": server.endpoint_url,
    }


def fetch_history(
    server: HistoryServer, ec2: Any, vpc_id: str, flows: Sequence[Path], *, mode: str = "all"
) -> Documents:
    """The history ``collect --vpc <vpc_id> --history <mode>`` fetches and writes beside the EC2 documents
    when its flows are ``flows`` (files here; Insights there), through sgadvisor's own request and
    fetcher: ``all`` (the default here) also asks for every ENI of the VPC, so that ENIs EC2 still lists
    but that were created in the window are judged over their life, as the sample's history files say."""
    from sgadvisor.aws.history import HistoryFetcher, HistoryMode
    from sgadvisor.aws.source import AwsInputs, history_request, snapshot_inventory
    from sgadvisor.flowlogs.ingest import read_flows
    from sgadvisor.inventory.ec2 import collect_inventory

    inventory = snapshot_inventory(collect_inventory(ec2, [vpc_id]))
    edges = read_flows(list(flows), addresses=inventory.addresses)
    request = history_request(HistoryMode(mode), AwsInputs(vpcs=(vpc_id,)), inventory, edges)
    fetcher = HistoryFetcher(server.client("config"), server.client("cloudtrail"), lookup_interval=0.0)
    return fetcher.fetch(request).documents()


def sample_history(ec2: Any, sample_dir: Path, vpc_id: str, *, mode: str = "all") -> Documents:
    """:func:`fetch_history` of a generated sample (its flows, its history) through a stand-in started
    and stopped for it."""
    with sample_history_server(sample_dir) as server:
        return fetch_history(server, ec2, vpc_id, [sample_dir / "flows"], mode=mode)


def write_sample_snapshot(
    ec2: Any, estate: Estate, id_map: dict[str, str], out: Path, history: Documents | None = None
) -> Path:
    """What ``collect`` writes: the EC2 documents (every VPC; :func:`describe_like_aws` applied) and the
    fetched history (:func:`sample_history`), as the AWS CLI prints it. Returns ``out``."""
    from sgadvisor.aws.history import history_text
    from sgadvisor.inventory.ec2 import collect_inventory, snapshot_text
    from sgadvisor.outputs import write_files

    documents = collect_inventory(ec2)
    describe_like_aws(documents, estate, id_map)
    files = {out / name: snapshot_text(document) for name, document in sorted(documents.items())}
    files.update({out / name: history_text(document) for name, document in (history or {}).items()})
    write_files(files)
    return out
