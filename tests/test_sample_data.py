"""sample_data/ is exactly what the generator writes, and it has the realism the analysis is tested against.

The committed files are compared with a fresh generation (gzip members by their decompressed text, so a
different zlib build cannot fail the test; the gzip header is checked separately). The other tests read
the regenerated data with the standard library only, so they stay independent of sgadvisor's own readers:
a bug there cannot hide a bug here.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.standins.sample_estate import (
    CUSTOM_V5_FIELDS,
    DEFAULT_FIELDS,
    SEED_ENI_ID,
    WINDOW_END,
    WINDOW_START,
    Estate,
    build_estate,
    check_consistency,
    generate,
    rule_usage,
)

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
REGENERATE = "python -m tests.standins.sample_estate --out sample_data"

Record = dict[str, str]


@pytest.fixture(scope="module")
def estate() -> Estate:
    return build_estate()


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample_data")
    generate(out)
    return out


@pytest.fixture(scope="module")
def records(regenerated: Path) -> list[Record]:
    """Every S3 flow record as field -> value, plus the file's flow-log id under ``_flow_log``."""
    result: list[Record] = []
    for path in sorted((regenerated / "flows").rglob("*.log.gz")):
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        header = lines[0].split(" ")
        flow_log = re.search(r"_(fl-[0-9a-f]+)_", path.name)
        assert flow_log is not None, path.name
        for line in lines[1:]:
            values = line.split(" ")
            assert len(values) == len(header), line
            record = dict(zip(header, values, strict=True))
            record["_flow_log"] = flow_log.group(1)
            result.append(record)
    return result


def _files(root: Path) -> dict[str, Path]:
    """The generated files (README.md is hand-written; expected/ holds outputs, see test_golden.py)."""
    return {
        relative: path
        for path in root.rglob("*")
        if path.is_file()
        and (relative := path.relative_to(root).as_posix()) != "README.md"
        and not relative.startswith("expected/")
    }


def _content(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


# ---- the committed data ---------------------------------------------------------------------------------


def test_committed_sample_data_matches_the_generator(regenerated: Path) -> None:
    committed, fresh = _files(SAMPLE), _files(regenerated)
    assert sorted(committed) == sorted(fresh), f"sample_data/ is stale: run {REGENERATE}"
    for relative, path in fresh.items():
        assert _content(committed[relative]) == _content(path), f"{relative} differs: run {REGENERATE}"


def test_gzip_members_have_a_fixed_header(regenerated: Path) -> None:
    for path in (regenerated / "flows").rglob("*.gz"):
        header = path.read_bytes()[:10]
        assert header[:3] == b"\x1f\x8b\x08", path  # gzip, deflate
        assert header[3] == 0, f"{path}: no file name or other optional fields"
        assert header[4:8] == b"\0\0\0\0", f"{path}: mtime must be 0"


def test_generation_is_byte_for_byte_deterministic(regenerated: Path, tmp_path: Path) -> None:
    generate(tmp_path)
    again = _files(tmp_path)
    assert sorted(again) == sorted(_files(regenerated))
    for relative, path in again.items():
        assert path.read_bytes() == (regenerated / relative).read_bytes(), relative


def test_sample_is_small(regenerated: Path) -> None:
    assert sum(path.stat().st_size for path in _files(regenerated).values()) < 3_000_000


def test_json_is_indented_with_a_trailing_newline(regenerated: Path) -> None:
    for path in regenerated.rglob("*.json"):
        text = path.read_text()
        assert text.endswith("}\n") and text.startswith('{\n  "'), path
        assert json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n" == text, path


# ---- the estate ----------------------------------------------------------------------------------------


def test_the_seed_eni(estate: Estate) -> None:
    seed = estate.eni(SEED_ENI_ID)
    assert seed.private_ip == "10.0.1.10"
    assert estate.subnet(seed.subnet_id).name == "web"
    target = next(eni for eni in estate.network_interfaces if eni.private_ip == "10.0.2.15")
    assert target.role == "app"
    assert not estate.permitting_rules(seed.group_ids, egress=True, peer="10.0.2.15", protocol=6, port=22)


def test_the_estate_is_consistent(estate: Estate) -> None:
    assert check_consistency(estate) == []


def test_estate_shape(estate: Estate) -> None:
    roles = Counter(eni.role for eni in estate.network_interfaces)
    assert sum(roles[role] for role in ("web", "app", "db", "batch")) >= 8
    nat = [eni for eni in estate.network_interfaces if eni.interface_type == "nat_gateway"]
    assert len(nat) == 1 and nat[0].requester_managed and not nat[0].group_ids
    endpoints = [eni for eni in estate.network_interfaces if eni.interface_type == "vpc_endpoint"]
    assert len(endpoints) == 1 and endpoints[0].requester_managed and endpoints[0].group_ids
    assert any(len(eni.group_ids) == 2 for eni in estate.network_interfaces)
    assert any(eni.os == "windows" for eni in estate.network_interfaces)
    assert len(estate.security_groups) >= 5
    egress = [rule for group in estate.security_groups for rule in group.egress]
    assert any(rule.referenced_group_id for rule in egress)
    assert any(rule.prefix_list_id == "pl-6da54004" for rule in egress)
    assert any(rule.cidr_ipv6 for rule in egress)
    assert any(rule.cidr_ipv4 == "0.0.0.0/0" and rule.ip_protocol == "-1" for rule in egress)
    assert estate.prefix_list("pl-6da54004").name == "com.amazonaws.eu-west-1.s3"
    unlogged = [eni for eni in estate.network_interfaces if estate.flow_log_of(eni) is None]
    assert [eni.name for eni in unlogged] == ["bastion"]


def test_rule_expectations_match_the_traffic(estate: Estate) -> None:
    usage = rule_usage(estate)
    expects = Counter(rule.expect for group in estate.security_groups for rule in group.egress)
    assert expects["unused"] >= 3 and expects["partly-used"] >= 3 and expects["used"] >= 3
    for group in estate.security_groups:
        for rule in group.egress:
            if rule.expect in ("used", "partly-used"):
                assert usage[rule.rule_id], (group.group_name, rule)
            elif rule.expect in ("unused", "invisible", "unattached"):
                assert not usage[rule.rule_id], (group.group_name, rule)


# ---- inventory ------------------------------------------------------------------------------------------


def _normalised_permissions(group: dict[str, Any]) -> Counter[tuple[Any, ...]]:
    rules: Counter[tuple[Any, ...]] = Counter()
    for egress, key in ((False, "IpPermissions"), (True, "IpPermissionsEgress")):
        for permission in group[key]:
            ports = (permission.get("FromPort", -1), permission.get("ToPort", -1))
            base = (group["GroupId"], egress, permission["IpProtocol"], *ports)
            for pair in permission["UserIdGroupPairs"]:
                rules[(*base, "group", pair["GroupId"], pair.get("Description"))] += 1
            for item in permission["IpRanges"]:
                rules[(*base, "ipv4", item["CidrIp"], item.get("Description"))] += 1
            for item in permission["Ipv6Ranges"]:
                rules[(*base, "ipv6", item["CidrIpv6"], item.get("Description"))] += 1
            for item in permission["PrefixListIds"]:
                rules[(*base, "pl", item["PrefixListId"], item.get("Description"))] += 1
    return rules


def test_security_group_rules_equal_the_expanded_permissions(regenerated: Path) -> None:
    inventory = regenerated / "inventory"
    expanded: Counter[tuple[Any, ...]] = Counter()
    for group in _json(inventory / "describe-security-groups.json")["SecurityGroups"]:
        expanded += _normalised_permissions(group)
    listed: Counter[tuple[Any, ...]] = Counter()
    rule_ids = set()
    for rule in _json(inventory / "describe-security-group-rules.json")["SecurityGroupRules"]:
        rule_ids.add(rule["SecurityGroupRuleId"])
        assert rule["SecurityGroupRuleId"].startswith("sgr-")
        peers = [
            (kind, rule[key] if kind != "group" else rule[key]["GroupId"])
            for kind, key in (("ipv4", "CidrIpv4"), ("ipv6", "CidrIpv6"), ("pl", "PrefixListId"),
                              ("group", "ReferencedGroupInfo"))
            if key in rule
        ]  # fmt: skip
        assert len(peers) == 1, rule
        base = (rule["GroupId"], rule["IsEgress"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"])
        listed[(*base, *peers[0], rule.get("Description"))] += 1
    assert listed == expanded
    assert len(rule_ids) == sum(listed.values())


def test_inventory_references_resolve(regenerated: Path) -> None:
    inventory = regenerated / "inventory"
    groups = {
        group["GroupId"] for group in _json(inventory / "describe-security-groups.json")["SecurityGroups"]
    }
    lists = {
        item["PrefixListId"]: item
        for item in _json(inventory / "describe-managed-prefix-lists.json")["PrefixLists"]
    }
    for rule in _json(inventory / "describe-security-group-rules.json")["SecurityGroupRules"]:
        assert rule["GroupId"] in groups
        if "ReferencedGroupInfo" in rule:
            assert rule["ReferencedGroupInfo"]["GroupId"] in groups
        if "PrefixListId" in rule:
            assert "Entries" in lists[rule["PrefixListId"]], "referenced lists carry their entries"
    for eni in _json(inventory / "describe-network-interfaces.json")["NetworkInterfaces"]:
        assert {group["GroupId"] for group in eni["Groups"]} <= groups
    s3 = lists["pl-6da54004"]
    assert s3["PrefixListName"] == "com.amazonaws.eu-west-1.s3" and s3["OwnerId"] == "AWS"


def test_flow_log_formats(regenerated: Path) -> None:
    flow_logs = {
        item["FlowLogId"]: item
        for item in _json(regenerated / "inventory/describe-flow-logs.json")["FlowLogs"]
    }
    seen_formats = set()
    for path in (regenerated / "flows").rglob("*.log.gz"):
        assert re.fullmatch(
            r"123456789012_vpcflowlogs_eu-west-1_fl-[0-9a-f]{17}_\d{8}T\d{4}Z_[0-9a-f]{8}\.log\.gz", path.name
        ), path.name
        flow_log_id = path.name.split("_")[3]
        header = gzip.decompress(path.read_bytes()).decode().split("\n", 1)[0]
        log_format = flow_logs[flow_log_id]["LogFormat"]
        assert log_format == " ".join(f"${{{name}}}" for name in header.split(" "))
        assert flow_logs[flow_log_id]["TrafficType"] == "ALL"
        assert flow_logs[flow_log_id]["CreationTime"] < "2026-11-01"
        seen_formats.add(tuple(header.split(" ")))
    assert seen_formats == {DEFAULT_FIELDS, CUSTOM_V5_FIELDS}
    assert CUSTOM_V5_FIELDS.index("interface-id") != 2
    required = {"tcp-flags", "flow-direction", "pkt-srcaddr", "pkt-dstaddr", "pkt-dst-aws-service",
                "pkt-src-aws-service", "type", "vpc-id", "subnet-id", "instance-id",
                "traffic-path"}  # fmt: skip
    assert required <= set(CUSTOM_V5_FIELDS)


# ---- flow realism ---------------------------------------------------------------------------------------


def _traffic(records: list[Record]) -> Iterator[Record]:
    return (record for record in records if record["log-status"] == "OK")


def test_window_and_intervals(records: list[Record], estate: Estate) -> None:
    starts = [int(record["start"]) for record in records]
    assert min(starts) >= WINDOW_START and max(starts) < WINDOW_END
    assert WINDOW_END - WINDOW_START >= 8 * 86_400
    for record in records:
        interval = (int(record["start"]) - WINDOW_START) // 600
        assert WINDOW_START + interval * 600 <= int(record["end"]) <= WINDOW_START + (interval + 1) * 600
    known = {eni.eni_id for eni in estate.all_interfaces}  # current and former (replaced, tasks)
    assert {record["interface-id"] for record in records} <= known
    assert estate.eni("bastion").eni_id not in {record["interface-id"] for record in records}
    assert 10_000 <= len(records) <= 90_000


def test_seed_rejects_on_its_own_stream(records: list[Record], estate: Estate) -> None:
    seed = estate.eni(SEED_ENI_ID)
    own = [record for record in _traffic(records) if record["interface-id"] == SEED_ENI_ID]
    to_ssh = [
        r for r in own if r["srcaddr"] == "10.0.1.10" and r["dstaddr"] == "10.0.2.15" and r["dstport"] == "22"
    ]
    assert to_ssh and all(record["action"] == "REJECT" for record in to_ssh)
    outbound = [r for r in own if r["srcaddr"] in seed.addresses and r["dstport"] != "22"]
    assert outbound and all(record["action"] == "ACCEPT" for record in outbound)
    app_1 = estate.eni("app-1").eni_id
    assert not [r for r in records if r["interface-id"] == app_1 and r.get("dstport") == "22"
                and r["srcaddr"] == "10.0.1.10"]  # fmt: skip


def test_statuses(records: list[Record]) -> None:
    statuses = Counter(record["log-status"] for record in records)
    assert statuses["NODATA"] > 100 and statuses["SKIPDATA"] >= 1
    for record in records:
        if record["log-status"] != "OK":
            assert record["action"] == "-" and record["srcaddr"] == "-" and record["packets"] == "-"


def test_connections_are_logged_on_both_enis(records: list[Record], estate: Estate) -> None:
    app_1, db_1 = estate.eni("app-1"), estate.eni("db-1")
    client_side = {
        (r["srcport"], r["start"]) for r in _traffic(records)
        if r["interface-id"] == app_1.eni_id and r["dstaddr"] == db_1.private_ip and r["dstport"] == "5432"
    }  # fmt: skip
    server_side = {
        (r["srcport"], r["start"]) for r in _traffic(records)
        if r["interface-id"] == db_1.eni_id and r["srcaddr"] == app_1.private_ip and r["dstport"] == "5432"
    }  # fmt: skip
    assert client_side and client_side == server_side
    web_1, app = estate.eni("web-1"), {estate.eni("app-1").eni_id, estate.eni("app-2").eni_id}
    web_side = {
        r["srcport"]
        for r in _traffic(records)
        if r["interface-id"] == web_1.eni_id and r["srcaddr"] == "10.0.1.10" and r["dstport"] == "8080"
    }
    app_side = {
        r["srcport"]
        for r in _traffic(records)
        if r["interface-id"] in app and r["srcaddr"] == "10.0.1.10" and r["dstport"] == "8080"
    }
    assert web_side and web_side == app_side


def test_ephemeral_ports_by_operating_system(records: list[Record], estate: Estate) -> None:
    by_address = {eni.private_ip: eni for eni in estate.network_interfaces}
    checked: Counter[str] = Counter()
    for record in _traffic(records):
        if record["protocol"] != "6" or record.get("flow-direction", "egress") != "egress":
            continue
        client = by_address.get(record["srcaddr"])
        if (
            client is None
            or client.eni_id != record["interface-id"]
            or record["dstport"] not in ("5432", "50051")
        ):
            continue
        port = int(record["srcport"])
        low = 49152 if client.os == "windows" else 32768
        high = 65535 if client.os == "windows" else 60999
        assert low <= port <= high, record
        checked[client.os] += 1
    assert checked["windows"] and checked["linux"]
    # A service inside the ephemeral range: both ports of the web -> app gRPC calls look ephemeral.
    grpc = [r for r in _traffic(records) if r["dstport"] == "50051" and r["srcaddr"].startswith("10.0.1.")]
    assert grpc and all(int(r["srcport"]) >= 32768 for r in grpc)


def _connections(records: list[Record], eni_id: str) -> dict[tuple[str, ...], list[Record]]:
    """Egress TCP records of one ENI grouped by 5-tuple, in time order (v5 files only)."""
    grouped: dict[tuple[str, ...], list[Record]] = defaultdict(list)
    for record in _traffic(records):
        if (
            record["interface-id"] == eni_id
            and record["protocol"] == "6"
            and record["flow-direction"] == "egress"
        ):
            key = (record["srcaddr"], record["srcport"], record["dstaddr"], record["dstport"])
            grouped[key].append(record)
    for items in grouped.values():
        items.sort(key=lambda record: int(record["start"]))
    return grouped


def test_tcp_flags_of_long_and_short_connections(records: list[Record], estate: Estate) -> None:
    app_1, db_1 = estate.eni("app-1"), estate.eni("db-1")
    long_lived = [items for key, items in _connections(records, app_1.eni_id).items()
                  if key[3] == "5432" and len(items) >= 6]  # fmt: skip
    assert long_lived, "app-1 keeps pooled PostgreSQL connections open for many intervals"
    for items in long_lived:
        intervals = [(int(r["start"]) - WINDOW_START) // 600 for r in items]
        assert intervals == list(range(intervals[0], intervals[0] + len(items))), "consecutive intervals"
        flags = [int(r["tcp-flags"]) for r in items]
        assert flags[0] == 2 and flags[-1] == 1 and set(flags[1:-1]) <= {0}
    server_side = _connections(records, db_1.eni_id)
    replies = [items for key, items in server_side.items() if key[0] == db_1.private_ip and key[1] == "5432"
               and key[2] == app_1.private_ip and len(items) >= 6]  # fmt: skip
    assert replies and all(int(items[0]["tcp-flags"]) == 18 for items in replies)
    short = [items[0] for key, items in _connections(records, estate.eni("app-3").eni_id).items()
             if key[3] == "50051" and len(items) == 1]  # fmt: skip
    assert short and all(record["tcp-flags"] == "3" for record in short)
    app_1_short = [items[0] for key, items in _connections(records, app_1.eni_id).items()
                   if key[1] == "50051" and len(items) == 1]  # fmt: skip
    assert app_1_short and all(record["tcp-flags"] == "19" for record in app_1_short)


def test_protocol_variety(records: list[Record], estate: Estate) -> None:
    traffic = list(_traffic(records))
    assert any(
        r["protocol"] == "17" and r["dstaddr"] == "10.0.2.53" and r["dstport"] == "53" for r in traffic
    )
    assert any(r["protocol"] == "17" and r["dstport"] == "123" and r["srcport"] == "123" for r in traffic)
    assert any(r["protocol"] == "1" and r["srcport"] == "0" and r["dstport"] == "0" for r in traffic)
    web_1 = estate.eni("web-1")
    assert any(r["srcaddr"] == web_1.ipv6_addresses[0] and r["dstport"] == "443" for r in traffic)
    s3_networks = [ipaddress.ip_network(e.cidr) for e in estate.prefix_list("pl-6da54004").entries or ()]
    s3 = [r for r in traffic if r.get("pkt-dst-aws-service") == "S3"]
    assert s3 and all(any(ipaddress.ip_address(r["dstaddr"]) in net for net in s3_networks) for r in s3)
    assert any(r.get("pkt-src-aws-service") == "S3" for r in traffic)
    secondary = [r for r in traffic if r.get("pkt-dstaddr") == "10.0.2.17"]
    assert secondary and all(r["dstaddr"] == "10.0.2.16" for r in secondary)
    scans = [r for r in traffic if r["action"] == "REJECT" and r["srcaddr"].startswith("192.0.2.")]
    assert scans and {r["interface-id"] for r in scans} <= {estate.eni(f"web-{i}").eni_id for i in (1, 2, 3)}


def test_cloudwatch_export_of_the_nat_gateway(regenerated: Path, estate: Estate) -> None:
    [path] = (regenerated / "flows/cloudwatch").glob("*.json")
    document = _json(path)
    nat = estate.eni("nat-gateway")
    assert document["searchedLogStreams"] == [
        {"logStreamName": f"{nat.eni_id}-all", "searchedCompletely": True}
    ]
    events = document["events"]
    assert events and [list(event) for event in events[:1]] == [
        ["logStreamName", "timestamp", "message", "ingestionTime", "eventId"]
    ]
    for event in events:
        fields = event["message"].split(" ")
        assert len(fields) == len(DEFAULT_FIELDS) and fields[2] == nat.eni_id
        assert event["timestamp"] == int(fields[10]) * 1000 and event["ingestionTime"] > event["timestamp"]
    assert len({event["eventId"] for event in events}) == len(events)
    inside = [event for event in events if f" {nat.private_ip} 443 " in event["message"]]
    assert inside, "replies leave the NAT gateway from 443 towards the clients' ephemeral ports"


# ---- id_map ---------------------------------------------------------------------------------------------


def _new_id(old: str) -> str:
    prefix = old.rsplit("-", 1)[0]
    return f"{prefix}-{hashlib.sha256(old.encode()).hexdigest()[:17]}"


def _id_pattern(ids: Iterable[str]) -> re.Pattern[str]:
    """Whole-token matches of any of these ids (one pass over the text, not one per id)."""
    alternatives = "|".join(re.escape(item) for item in sorted(ids, key=len, reverse=True))
    return re.compile(rf"(?<![0-9A-Za-z-])(?:{alternatives})(?![0-9A-Za-z])")


def _observations(root: Path) -> tuple[Counter[str], dict[str, list[str]]]:
    """Flow lines (S3 records and CloudWatch messages) as a multiset; inventory lists as sorted items."""
    lines: Counter[str] = Counter()
    for path in (root / "flows").rglob("*.log.gz"):
        lines.update(_content(path).decode().splitlines())
    for path in (root / "flows").rglob("*.json"):
        lines.update(event["message"] for event in _json(path)["events"])
    inventory = {}
    for path in sorted((root / "inventory").glob("*.json")):
        [(key, items)] = _json(path).items()
        inventory[key] = sorted(json.dumps(item, sort_keys=True) for item in items)
    return lines, inventory


def test_id_map_replaces_every_id_everywhere(estate: Estate, regenerated: Path, tmp_path: Path) -> None:
    ids = estate.ids()
    assert SEED_ENI_ID in ids and "pl-6da54004" in ids
    kinds = {old.rsplit("-", 1)[0] for old in ids}
    assert kinds >= {"sg", "sgr", "eni", "vpc", "subnet", "pl", "i", "fl", "nat", "vpce"}
    id_map = {old: _new_id(old) for old in ids}
    generate(tmp_path, id_map)
    old_ids = _id_pattern(ids)
    for relative, path in _files(tmp_path).items():
        found = old_ids.search(relative) or old_ids.search(_content(path).decode())
        assert found is None, f"{relative} still names {found.group(0) if found else ''}"
    new_text = "\n".join(_content(path).decode() for path in _files(tmp_path).values())
    for old in ids:
        if old.startswith(("eni-", "sg-", "sgr-", "subnet-", "fl-", "vpc-")):
            assert id_map[old] in new_text, old
    # Renaming changes ids only: the same records and the same inventory items, under the new ids.
    original_lines, original_inventory = _observations(regenerated)
    renamed_lines, renamed_inventory = _observations(tmp_path)

    def rename(text: str) -> str:
        return old_ids.sub(lambda match: id_map[match.group(0)], text)

    assert Counter({rename(line): count for line, count in original_lines.items()}) == renamed_lines
    for key, items in original_inventory.items():
        assert sorted(rename(item) for item in items) == renamed_inventory[key], key
    remapped = build_estate(id_map)
    assert remapped.eni(id_map[SEED_ENI_ID]).private_ip == "10.0.1.10"


def test_id_map_refuses_unknown_or_ambiguous_maps(estate: Estate, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not in the sample"):
        generate(tmp_path, {"sg-0123456789abcdef0": "sg-0fedcba9876543210"})
    groups = [group.group_id for group in estate.security_groups]
    with pytest.raises(ValueError, match="same new id"):
        generate(tmp_path, {groups[0]: "sg-0aaaaaaaaaaaaaaaa", groups[1]: "sg-0aaaaaaaaaaaaaaaa"})
    with pytest.raises(ValueError, match="kind"):
        generate(tmp_path, {groups[0]: "eni-0aaaaaaaaaaaaaaaa"})
