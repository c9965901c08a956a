"""The inventory snapshot loader (DESIGN §4.3) on real files: the sample estate and variations of it.

Why these tests: the snapshot is the ground truth every later stage reasons about (which rules exist, which
ENI holds which address), so every value of the sample estate must come through exactly, pages and
duplicates must merge without depending on file order, and a wrong shape must stop the run with a message
that names the file and the key.
"""

from __future__ import annotations

import copy
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgadvisor.errors import InputError
from sgadvisor.inventory.model import Inventory, SgRule
from sgadvisor.inventory.snapshot import load_snapshot
from sgadvisor.rules import DestKind
from tests.conftest import REPO
from tests.standins.sample_estate import SEED_ENI_ID, build_estate
from tests.standins.sample_estate import Rule as EstateRule

SAMPLE = REPO / "sample_data" / "inventory"
GROUPS = "describe-security-groups.json"
RULES = "describe-security-group-rules.json"
ENIS = "describe-network-interfaces.json"
PREFIX_LISTS = "describe-managed-prefix-lists.json"
FLOW_LOGS = "describe-flow-logs.json"
VPCS = "describe-vpcs.json"
ESTATE = build_estate()
# The snapshot's own describe-*.json files; the sample's ENI history (AWSLogs/…) is tested elsewhere.
SAMPLE_INVENTORY = load_snapshot(sorted(SAMPLE.glob("*.json")))


def _doc(name: str) -> dict[str, Any]:
    """A fresh copy of one sample file's JSON, to mutate."""
    document: dict[str, Any] = json.loads((SAMPLE / name).read_text())
    return document


def _write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))
    return path


def _copy_sample(target: Path, *, without: tuple[str, ...] = ()) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for path in SAMPLE.glob("*.json"):
        if path.name not in without:
            shutil.copy(path, target / path.name)
    return target


def _error(paths: list[Path]) -> str:
    with pytest.raises(InputError) as caught:
        load_snapshot(paths)
    return caught.value.message


def _expected_rule(group_id: str, rule: EstateRule) -> SgRule:
    """The estate's rule as the loader must give it (canonical protocol/ports/CIDR, one destination)."""
    for kind, value in (
        (DestKind.CIDR_IPV4, rule.cidr_ipv4),
        (DestKind.CIDR_IPV6, rule.cidr_ipv6),
        (DestKind.PREFIX_LIST, rule.prefix_list_id),
        (DestKind.SECURITY_GROUP, rule.referenced_group_id),
    ):
        if value is not None:
            return SgRule.build(group_id, rule.is_egress, rule.ip_protocol, rule.from_port, rule.to_port,
                                kind, value, rule.description, rule.rule_id)  # fmt: skip
    raise AssertionError(rule)


# ---- the sample estate ---------------------------------------------------------------------------------


def test_sample_groups_and_rules_match_the_estate() -> None:
    inventory = SAMPLE_INVENTORY
    assert inventory.has_rule_ids
    assert inventory.warnings == ()
    assert sorted(inventory.groups) == sorted(group.group_id for group in ESTATE.security_groups)
    assert sum(len(g.egress) + len(g.ingress) for g in inventory.groups.values()) == sum(
        len(group.rules) for group in ESTATE.security_groups
    )
    for group in ESTATE.security_groups:
        loaded = inventory.groups[group.group_id]
        assert (loaded.group_name, loaded.description, loaded.name_tag) == (
            group.group_name, group.description, group.name_tag,
        )  # fmt: skip
        assert loaded.vpc_id == ESTATE.vpc.vpc_id
        assert all(rule.egress for rule in loaded.egress)
        assert not any(rule.egress for rule in loaded.ingress)
        expected = {rule.rule_id: _expected_rule(group.group_id, rule) for rule in group.rules}
        assert {rule.rule_id: rule for rule in (*loaded.egress, *loaded.ingress)} == expected


def test_sample_rule_normalisation() -> None:
    default = SAMPLE_INVENTORY.groups[ESTATE.group("default").group_id]
    assert {(r.ip_protocol, r.from_port, r.to_port, r.value) for r in default.egress} == {
        ("-1", None, None, "0.0.0.0/0"),
        ("-1", None, None, "::/0"),
    }
    monitoring = SAMPLE_INVENTORY.groups[ESTATE.group("monitoring").group_id]
    (ping,) = [rule for rule in monitoring.egress if rule.ip_protocol == "icmp"]
    assert (ping.from_port, ping.to_port, ping.kind) == (-1, -1, DestKind.CIDR_IPV4)
    assert all(rule.rule_id and rule.rule_id.startswith("sgr-") for g in SAMPLE_INVENTORY.groups.values()
               for rule in (*g.egress, *g.ingress))  # fmt: skip


def test_sample_interfaces_match_the_estate() -> None:
    inventory = SAMPLE_INVENTORY
    assert sorted(inventory.interfaces) == sorted(eni.eni_id for eni in ESTATE.network_interfaces)
    for eni in ESTATE.network_interfaces:
        loaded = inventory.interfaces[eni.eni_id]
        assert loaded.addresses == eni.addresses
        assert set(loaded.group_ids) == set(eni.group_ids)
        assert (loaded.interface_type, loaded.requester_managed) == (
            eni.interface_type,
            eni.requester_managed,
        )
        assert (loaded.instance_id, loaded.public_ip, loaded.subnet_id) == (
            eni.instance_id, eni.public_ip, eni.subnet_id,
        )  # fmt: skip
        assert loaded.description == eni.description
        assert loaded.name_tag == (eni.name if eni.tagged else None)


def test_seed_eni_and_special_interfaces() -> None:
    inventory = SAMPLE_INVENTORY
    seed = inventory.interfaces[SEED_ENI_ID]
    assert seed.addresses[0] == "10.0.1.10"
    assert inventory.owner_of_address["10.0.1.10"] == SEED_ENI_ID
    two = inventory.interfaces[ESTATE.eni("batch-2").eni_id]
    assert set(two.group_ids) == {ESTATE.group("batch").group_id, ESTATE.group("default").group_id}
    assert two.eni_id in inventory.members[ESTATE.group("default").group_id]
    secondary = inventory.interfaces[ESTATE.eni("app-2").eni_id]
    assert secondary.addresses == ("10.0.2.16", "10.0.2.17")
    nat = inventory.interfaces[ESTATE.eni("nat-gateway").eni_id]
    assert (nat.interface_type, nat.requester_managed, nat.group_ids) == ("nat_gateway", True, ())
    assert nat.is_infrastructure
    endpoint = inventory.interfaces[ESTATE.eni("vpce-secretsmanager").eni_id]
    assert (endpoint.interface_type, endpoint.requester_managed) == ("vpc_endpoint", True)
    assert not endpoint.is_infrastructure


def test_sample_prefix_lists_and_flow_logs() -> None:
    inventory = SAMPLE_INVENTORY
    for prefix_list in ESTATE.prefix_lists:
        loaded = inventory.prefix_lists[prefix_list.prefix_list_id]
        assert (loaded.name, loaded.owner_id, loaded.max_entries) == (
            prefix_list.name, prefix_list.owner_id, prefix_list.max_entries,
        )  # fmt: skip
        if prefix_list.entries is None:
            assert loaded.entries is None
        else:
            assert loaded.entries is not None
            assert set(loaded.entries) == {entry.cidr for entry in prefix_list.entries}
    s3 = inventory.prefix_lists[ESTATE.prefix_list("com.amazonaws.eu-west-1.s3").prefix_list_id]
    assert s3.aws_managed and s3.weight == 1 and s3.entries and "52.92.0.0/17" in s3.entries
    assert [flow_log.flow_log_id for flow_log in inventory.flow_logs] == sorted(
        flow_log.flow_log_id for flow_log in ESTATE.flow_logs
    )
    for flow_log in ESTATE.flow_logs:
        (loaded_log,) = [item for item in inventory.flow_logs if item.flow_log_id == flow_log.flow_log_id]
        assert loaded_log.created == int(datetime.fromisoformat(flow_log.creation_time).timestamp())
        assert (loaded_log.resource_id, loaded_log.destination_type, loaded_log.log_format) == (
            flow_log.resource_id, flow_log.destination_type, flow_log.log_format,
        )  # fmt: skip
        assert (loaded_log.destination, loaded_log.log_group) == (
            flow_log.log_destination, flow_log.log_group_name,
        )  # fmt: skip


def test_without_rules_file_rules_come_from_ip_permissions(tmp_path: Path) -> None:
    inventory = load_snapshot([_copy_sample(tmp_path, without=(RULES,))])
    assert not inventory.has_rule_ids
    assert inventory.warnings == ()
    for group_id, group in inventory.groups.items():
        sample = SAMPLE_INVENTORY.groups[group_id]
        for mine, theirs in ((group.egress, sample.egress), (group.ingress, sample.ingress)):
            assert all(rule.rule_id is None for rule in mine)
            assert [(r.key(), r.description) for r in mine] == [(r.key(), r.description) for r in theirs]


# ---- merging -------------------------------------------------------------------------------------------


@given(data=st.data())
def test_pages_split_across_files_merge_in_any_order(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Every list split into pages (files), given in any order, and one page repeated: same inventory."""
    root = tmp_path_factory.mktemp("pages")
    files: list[Path] = []
    for name in (GROUPS, RULES, ENIS, PREFIX_LISTS, FLOW_LOGS, VPCS):
        document = _doc(name)
        (key,) = document
        items = document[key]
        cut = data.draw(st.integers(0, len(items)), label=f"cut {key}")
        for page, part in enumerate((items[:cut], items[cut:])):
            files.append(_write(root / f"{page}-{name}", {key: part, "NextToken": None}))
    files.append(_write(root / "again.json", {"SecurityGroups": _doc(GROUPS)["SecurityGroups"][:2]}))
    order = data.draw(st.permutations(files), label="order")
    assert load_snapshot(list(order)) == SAMPLE_INVENTORY


def test_directory_and_files_give_the_same_inventory() -> None:
    files = sorted(SAMPLE.glob("*.json"), reverse=True)
    assert load_snapshot(files) == SAMPLE_INVENTORY
    assert load_snapshot([SAMPLE]) == load_snapshot([SAMPLE, *files])
    assert load_snapshot([SAMPLE]).history  # the folder holds the ENI history too


def test_conflicting_duplicate_names_both_files(tmp_path: Path) -> None:
    first = _copy_sample(tmp_path / "a")
    changed = _doc(GROUPS)
    group = changed["SecurityGroups"][1]
    group["Description"] = "edited later"
    second = _write(tmp_path / "b" / GROUPS, {"SecurityGroups": [group]})
    message = _error([second, first])
    assert f"security group {group['GroupId']}" in message
    assert str(first / GROUPS) in message and str(second) in message
    assert "description" in message


def test_conflicting_duplicate_eni_in_one_file(tmp_path: Path) -> None:
    enis = _doc(ENIS)["NetworkInterfaces"]
    twin = copy.deepcopy(enis[0])
    twin["PrivateIpAddress"] = "10.9.9.9"
    path = _write(tmp_path / "enis.json", {"NetworkInterfaces": [enis[0], twin]})
    message = _error([path])
    assert f"network interface {enis[0]['NetworkInterfaceId']} appears twice in {path}" in message


def test_prefix_list_and_entries_file_merge(tmp_path: Path) -> None:
    s3 = ESTATE.prefix_list("com.amazonaws.eu-west-1.s3")
    described = _doc(PREFIX_LISTS)
    for item in described["PrefixLists"]:
        item.pop("Entries", None)
    directory = _copy_sample(tmp_path, without=(PREFIX_LISTS,))
    _write(directory / "lists" / "describe-managed-prefix-lists.json", described)
    assert s3.entries is not None
    cidrs = [{"Cidr": entry.cidr} for entry in s3.entries]
    # get-managed-prefix-list-entries output in two pages, the id in the names
    _write(directory / f"get-managed-prefix-list-entries-{s3.prefix_list_id}.json", {"Entries": cidrs[:2]})
    _write(directory / f"{s3.prefix_list_id}-page2.json", {"Entries": cidrs[2:], "NextToken": None})
    inventory = load_snapshot([directory])
    assert inventory.prefix_lists[s3.prefix_list_id] == SAMPLE_INVENTORY.prefix_lists[s3.prefix_list_id]
    corp = ESTATE.prefix_list("corp-office").prefix_list_id
    assert inventory.prefix_lists[corp].entries is None
    assert inventory.prefix_lists[corp].max_entries == 10
    # the S3 list has entries, so no warning for it; DynamoDB is referenced by a rule and lacks them
    ddb = ESTATE.prefix_list("com.amazonaws.eu-west-1.dynamodb").prefix_list_id
    assert [w for w in inventory.warnings if "entries were not captured" in w] == [
        f"{ddb}: referenced by egress rules of {ESTATE.group('batch').group_id} but its entries were not "
        f"captured (aws ec2 get-managed-prefix-list-entries --prefix-list-id {ddb} > {ddb}.json)"
    ]


def test_prefix_list_with_and_without_entries_merge_and_conflicting_entries_fail(tmp_path: Path) -> None:
    bare = _doc(PREFIX_LISTS)
    for item in bare["PrefixLists"]:
        item.pop("Entries", None)
    directory = _copy_sample(tmp_path / "snapshot")
    _write(directory / "bare.json", bare)
    assert load_snapshot([directory]).prefix_lists == SAMPLE_INVENTORY.prefix_lists
    s3 = ESTATE.prefix_list("com.amazonaws.eu-west-1.s3").prefix_list_id
    entries = _write(directory / f"{s3}.json", {"Entries": [{"Cidr": "192.0.2.0/24"}]})
    message = _error([directory])
    assert f"prefix list {s3}" in message and str(entries) in message and "Entries" in message


def test_entries_file_without_a_list_id(tmp_path: Path) -> None:
    directory = _copy_sample(tmp_path)
    entries = _write(directory / "entries.json", {"Entries": [{"Cidr": "192.0.2.0/24"}]})
    inventory = load_snapshot([directory])
    assert any(w.startswith(f"{entries}: skipped") and "prefix-list id" in w for w in inventory.warnings)
    assert "prefix-list id" in _error([entries])  # named directly: an error
    orphan = _write(tmp_path / "other" / "pl-0123abcd.json", {"Entries": [{"Cidr": "192.0.2.0/24"}]})
    inventory = load_snapshot([directory, orphan])
    assert any("entries of pl-0123abcd" in w and "ignored" in w for w in inventory.warnings)


# ---- the two rule sources ------------------------------------------------------------------------------


def test_rule_sources_disagreeing_are_read_as_their_union(tmp_path: Path) -> None:
    web = ESTATE.group("web")
    redis = next(rule for rule in web.egress if rule.from_port == 6379)
    rules = _doc(RULES)
    rules["SecurityGroupRules"] = [
        item for item in rules["SecurityGroupRules"] if item["SecurityGroupRuleId"] != redis.rule_id
    ]
    extra = copy.deepcopy(next(i for i in rules["SecurityGroupRules"] if i["GroupId"] == web.group_id))
    extra.update({"SecurityGroupRuleId": "sgr-0000000000000beef", "IsEgress": True, "FromPort": 25,
                  "ToPort": 25, "IpProtocol": "6"})  # fmt: skip
    rules["SecurityGroupRules"].append(extra)
    directory = _copy_sample(tmp_path, without=(RULES,))
    _write(directory / RULES, rules)
    inventory = load_snapshot([directory])
    assert inventory.has_rule_ids
    bastion = ESTATE.group("bastion").group_id
    assert inventory.warnings == (
        f"{web.group_id}: egress rule sgr-0000000000000beef (tcp 25 to {bastion}) is in SecurityGroupRules "
        "but not in the group's IpPermissionsEgress; both sources are read as their union, so the rule is "
        "kept",
        f"{web.group_id}: egress rule (tcp 6379 to 10.0.2.0/24) is in the group's IpPermissionsEgress but "
        "not in SecurityGroupRules; both sources are read as their union, so the rule is kept, without an "
        "sgr- id",
    )
    egress = inventory.groups[web.group_id].egress
    egress_ids = {rule.rule_id for rule in egress}
    assert redis.rule_id not in egress_ids and "sgr-0000000000000beef" in egress_ids
    (kept,) = [rule for rule in egress if rule.from_port == 6379]
    assert kept.rule_id is None and kept.value == "10.0.2.0/24"  # the union: no source forgets a rule


def test_rules_of_unknown_group_and_group_without_rules(tmp_path: Path) -> None:
    rules = _doc(RULES)
    db = ESTATE.group("db").group_id
    orphan = copy.deepcopy(rules["SecurityGroupRules"][0])
    orphan.update({"SecurityGroupRuleId": "sgr-0000000000000cafe", "GroupId": "sg-0000000000000dead"})
    rules["SecurityGroupRules"] = [i for i in rules["SecurityGroupRules"] if i["GroupId"] != db] + [orphan]
    directory = _copy_sample(tmp_path, without=(RULES,))
    _write(directory / RULES, rules)
    inventory = load_snapshot([directory])
    assert "sg-0000000000000dead" not in inventory.groups
    assert any(
        w.startswith("sg-0000000000000dead: 1 rules in SecurityGroupRules") for w in inventory.warnings
    )
    # a group the rules file does not cover keeps its IpPermissions rules, without ids, with a warning
    assert f"{db}: no rules in SecurityGroupRules; using its IpPermissions and IpPermissionsEgress, " \
           "without sgr- ids" in inventory.warnings  # fmt: skip
    assert [rule.key() for rule in inventory.groups[db].egress] == [
        rule.key() for rule in SAMPLE_INVENTORY.groups[db].egress
    ]
    assert all(rule.rule_id is None for rule in inventory.groups[db].egress)


def test_protocol_spellings_normalise_to_one_key(tmp_path: Path) -> None:
    """6 is tcp, ports of -1 and of protocols without ports vanish: both rule sources agree."""
    group = {"GroupId": "sg-0123456789abcdef0", "GroupName": "g", "IpPermissionsEgress": [
        {"IpProtocol": "6", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.1.7/24"}]},
        {"IpProtocol": "50", "IpRanges": [{"CidrIp": "192.0.2.1/32"}]},
        {"IpProtocol": "icmpv6", "FromPort": 128, "ToPort": -1, "Ipv6Ranges": [{"CidrIpv6": "2001:DB8::/32"}]},
    ]}  # fmt: skip
    rules = [
        {"SecurityGroupRuleId": "sgr-01", "GroupId": "sg-0123456789abcdef0", "IsEgress": True,
         "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv4": "10.0.1.0/24"},
        {"SecurityGroupRuleId": "sgr-02", "GroupId": "sg-0123456789abcdef0", "IsEgress": True,
         "IpProtocol": 50, "FromPort": -1, "ToPort": -1, "CidrIpv4": "192.0.2.1/32"},
        {"SecurityGroupRuleId": "sgr-03", "GroupId": "sg-0123456789abcdef0", "IsEgress": True,
         "IpProtocol": "58", "FromPort": 128, "ToPort": -1, "CidrIpv6": "2001:db8::/32"},
    ]  # fmt: skip
    path = _write(tmp_path / "x.json", {"SecurityGroups": [group], "SecurityGroupRules": rules,
                                        "NetworkInterfaces": []})  # fmt: skip
    inventory = load_snapshot([path])
    assert inventory.warnings == ()
    assert [rule.key() for rule in inventory.groups["sg-0123456789abcdef0"].egress] == [
        ("50", None, None, DestKind.CIDR_IPV4, "192.0.2.1/32"),
        ("icmpv6", 128, -1, DestKind.CIDR_IPV6, "2001:db8::/32"),
        ("tcp", 443, 443, DestKind.CIDR_IPV4, "10.0.1.0/24"),
    ]


# ---- interfaces and flow logs --------------------------------------------------------------------------


def test_interface_addresses_primary_first_then_sorted_and_canonical(tmp_path: Path) -> None:
    eni = {
        "NetworkInterfaceId": "eni-0123456789abcdef0",
        "PrivateIpAddress": "10.0.0.20",
        "PrivateIpAddresses": [{"PrivateIpAddress": a} for a in ("10.0.0.9", "10.0.0.20", "10.0.0.100")],
        "Ipv6Addresses": [{"Ipv6Address": "2001:DB8::0001"}, {"Ipv6Address": "2001:db8::0:0"}],
        "Groups": [{"GroupId": "sg-0b"}, {"GroupId": "sg-0a"}],
        "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.0.48/28"}],
    }
    path = _write(tmp_path / "enis.json", {"NetworkInterfaces": [eni]})
    inventory = load_snapshot([path])
    loaded = inventory.interfaces["eni-0123456789abcdef0"]
    assert loaded.addresses == ("10.0.0.20", "10.0.0.9", "10.0.0.100", "2001:db8::", "2001:db8::1")
    assert loaded.group_ids == ("sg-0a", "sg-0b")
    assert (loaded.interface_type, loaded.requester_managed, loaded.instance_id) == ("interface", False, None)
    assert any("delegated IP prefixes" in w for w in inventory.warnings)
    assert "the snapshot has no SecurityGroups" in inventory.warnings


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-09-15T10:24:03.841000+00:00", 1_789_467_843),
        ("2026-09-15T12:24:03.999+02:00", 1_789_467_843),
        ("2026-09-15T10:24:03Z", 1_789_467_843),
        ("2026-09-15 10:24:03", 1_789_467_843),
    ],
)
def test_flow_log_creation_time(tmp_path: Path, text: str, epoch: int) -> None:
    flow_log = {"FlowLogId": "fl-0123", "ResourceId": "vpc-0123", "CreationTime": text,
                "LogDestinationType": "s3", "TrafficType": "REJECT"}  # fmt: skip
    inventory = load_snapshot([_write(tmp_path / "fl.json", {"FlowLogs": [flow_log]})])
    (loaded,) = inventory.flow_logs
    assert (loaded.created, loaded.traffic_type, loaded.log_format, loaded.log_group) == (
        epoch, "REJECT", None, None,
    )  # fmt: skip


# ---- wrong shapes --------------------------------------------------------------------------------------


def _broken_groups(change: str) -> dict[str, Any]:
    document = _doc(GROUPS)
    groups = document["SecurityGroups"]
    if change == "list-instead-of-object":
        groups[3] = [groups[3]]
    elif change == "object-instead-of-list":
        document["SecurityGroups"] = {"GroupId": "sg-1"}
    elif change == "missing-group-id":
        del groups[3]["GroupId"]
    elif change == "port":
        groups[3]["IpPermissionsEgress"][0]["FromPort"] = "abc"
    elif change == "cidr":
        groups[3]["IpPermissionsEgress"][0]["IpRanges"] = [{"CidrIp": "10.0.0.300/24"}]
    elif change == "ipv6-in-ipv4":
        groups[3]["IpPermissionsEgress"][0]["IpRanges"] = [{"CidrIp": "::/0"}]
    elif change == "protocol":
        groups[3]["IpPermissionsEgress"][0]["IpProtocol"] = "tpc"
    elif change == "name-for-id":
        groups[3]["IpPermissionsEgress"][0]["UserIdGroupPairs"] = [{"GroupId": "web"}]
    return document


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("list-instead-of-object", "SecurityGroups[3]: expected an object, got a list"),
        ("object-instead-of-list", "SecurityGroups: expected a list, got an object"),
        ("missing-group-id", "SecurityGroups[3].GroupId: required field is missing"),
        ("port", 'SecurityGroups[3].IpPermissionsEgress[0].FromPort: expected an integer, got "abc"'),
        ("cidr", 'SecurityGroups[3].IpPermissionsEgress[0].IpRanges[0].CidrIp: expected an IPv4 CIDR, '
                 'got "10.0.0.300/24"'),
        ("ipv6-in-ipv4", 'SecurityGroups[3].IpPermissionsEgress[0].IpRanges[0].CidrIp: expected an IPv4 CIDR, '
                         'got "::/0"'),
        ("protocol", "SecurityGroups[3].IpPermissionsEgress[0].IpProtocol: expected an IP protocol"),
        ("name-for-id", "SecurityGroups[3].IpPermissionsEgress[0].UserIdGroupPairs[0].GroupId: expected an "
                        'id starting with sg-, got "web"'),
    ],
)  # fmt: skip
def test_wrong_shapes_name_the_file_and_the_key(tmp_path: Path, change: str, expected: str) -> None:
    path = _write(tmp_path / GROUPS, _broken_groups(change))
    message = _error([path])
    assert message.startswith(f"{path}: {expected}"), message


def test_wrong_shapes_in_other_files(tmp_path: Path) -> None:
    rules = _doc(RULES)
    rules["SecurityGroupRules"][5]["CidrIpv6"] = "::/0"  # now two destinations
    path = _write(tmp_path / "rules.json", rules)
    assert _error([path]) == (
        f"{path}: SecurityGroupRules[5]: expected exactly one of CidrIpv4, CidrIpv6, PrefixListId, "
        "ReferencedGroupInfo.GroupId"
    )
    enis = _doc(ENIS)
    enis["NetworkInterfaces"][2]["RequesterManaged"] = "false"
    path = _write(tmp_path / "enis.json", enis)
    assert (
        _error([path])
        == f'{path}: NetworkInterfaces[2].RequesterManaged: expected true or false, got "false"'
    )
    flow_logs = _doc(FLOW_LOGS)
    flow_logs["FlowLogs"][0]["CreationTime"] = "yesterday"
    path = _write(tmp_path / "fl.json", flow_logs)
    assert _error([path]) == f'{path}: FlowLogs[0].CreationTime: expected an ISO 8601 time, got "yesterday"'
    entries = _write(tmp_path / "pl-0123abcd.json", {"Entries": [{"Cidr": "nope"}]})
    assert _error([entries]) == f'{entries}: Entries[0].Cidr: expected a CIDR, got "nope"'


def test_not_json_missing_path_and_named_non_inventory_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"SecurityGroups": [\n  {"GroupId": "sg-1",}\n]}')
    assert _error([broken]).startswith(f"{broken}: not valid JSON: ")
    assert "line 2 column" in _error([broken])
    missing = tmp_path / "nowhere"
    assert _error([missing]) == f"{missing}: no such file or directory"
    top_list = _write(tmp_path / "list.json", [1, 2])
    assert _error([top_list]) == (
        f"{top_list}: not an inventory file: expected a JSON object at the top level, got a list"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _error([empty]) == f"{empty}: no *.json files in this directory"
    assert "no inventory snapshot given" in _error([])


def test_unknown_keys_and_foreign_files_are_warnings(tmp_path: Path) -> None:
    directory = _copy_sample(tmp_path, without=(FLOW_LOGS,))
    document = _doc(FLOW_LOGS)
    document.update({"Subnets": [{"SubnetId": "subnet-1"}], "ResponseMetadata": {"RequestId": "x"},
                     "Region": "x"})  # fmt: skip
    flow_logs = _write(directory / FLOW_LOGS, document)
    foreign = _write(directory / "nested" / "describe-subnets.json", {"Subnets": []})
    _write(directory / ".hidden" / "ignored.json", {"Subnets": []})
    (directory / "notes.txt").write_text("not json, not read")
    paged = _write(directory / "more-enis.json", {"NetworkInterfaces": [], "NextToken": "abc"})
    inventory = load_snapshot([directory])
    assert inventory.warnings == (  # in file order (sorted paths)
        f"{flow_logs}: ignored unknown top-level key 'Subnets'",
        f"{paged}: has a NextToken, so the listing is incomplete: add the next pages "
        "(or run the AWS CLI without --max-items)",
        f"{foreign}: skipped, not an inventory file: none of the known top-level keys (SecurityGroups, "
        "SecurityGroupRules, NetworkInterfaces, PrefixLists, FlowLogs, Vpcs, or Entries)",
    )
    assert _strip_warnings(inventory) == SAMPLE_INVENTORY


def _strip_warnings(inventory: Inventory) -> Inventory:
    return Inventory(inventory.groups, inventory.interfaces, inventory.prefix_lists, inventory.flow_logs,
                     inventory.has_rule_ids, vpcs=inventory.vpcs)  # fmt: skip


def test_missing_references_are_warnings(tmp_path: Path) -> None:
    groups = _doc(GROUPS)
    dropped = ESTATE.group("db").group_id
    groups["SecurityGroups"] = [g for g in groups["SecurityGroups"] if g["GroupId"] != dropped]
    directory = _copy_sample(tmp_path, without=(GROUPS, RULES, PREFIX_LISTS))
    _write(directory / GROUPS, groups)
    inventory = load_snapshot([directory])
    members = ", ".join(sorted(eni.eni_id for eni in ESTATE.members(dropped)))
    assert f"{dropped}: carried by {members} but not in SecurityGroups" in inventory.warnings
    assert any(w.startswith(f"{dropped}: referenced by egress rules of") for w in inventory.warnings)
    s3 = ESTATE.prefix_list("com.amazonaws.eu-west-1.s3").prefix_list_id
    assert any(w.startswith(f"{s3}: referenced by egress rules") and "not in PrefixLists" in w
               for w in inventory.warnings)  # fmt: skip
