"""Issue 16, point 1: what an inventory must be before anything is judged on it, and what it says.

1. No security group, no network interface, or a scope that selects no group: exit 2 with a hint, in
   ``recommend``, ``check`` and ``collect`` (AWS mode against moto) — never "0 groups" or "no drift".
2. The two rule sources of a snapshot are read as their union, with a warning naming the group and rule.
3. Rules whose only destinations security groups do not filter and flow logs do not record say so.
4. Evidence shorter than 30 days carries a warning pointing at ``[[pin]]``, shown in report.html.

Every test runs the real CLI on the bundled sample (or a copy of it with one thing changed).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.cli import main
from tests.conftest import DEFAULT_HEADER, default_line, write_lines
from tests.standins.sample_estate import build_estate

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
FLOWS = SAMPLE / "flows"
INVENTORY = SAMPLE / "inventory"
BASELINE = SAMPLE / "expected" / "recommendation.json"
ESTATE = build_estate()
REGION = "eu-west-1"


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    code = caught.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)


def _inventory_copy(tmp_path: Path) -> Path:
    target = tmp_path / "inventory"
    shutil.copytree(INVENTORY, target)
    return target


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _save(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2))


def _recommend(tmp_path: Path, inventory: Path, *extra: str, flows: Path = FLOWS) -> tuple[int, Path]:
    out = tmp_path / "out"
    code = run(["recommend", "--flows", str(flows), "--inventory", str(inventory), "--out", str(out),
                "--quiet", *extra])  # fmt: skip
    return code, out


# ---- 1. an inventory of the wrong call, region or scope is exit 2 ---------------------------------------


def test_no_network_interfaces_is_exit_2_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = _inventory_copy(tmp_path)
    _save(inventory / "describe-network-interfaces.json", {"NetworkInterfaces": []})
    code, out = _recommend(tmp_path, inventory)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "holds no network interfaces" in err
    assert "describe-network-interfaces.json holds no interfaces" in err and "region" in err


def test_no_security_groups_is_exit_2_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A describe-security-groups of another region: no groups (and so no rules) at all."""
    inventory = _inventory_copy(tmp_path)
    _save(inventory / "describe-security-groups.json", {"SecurityGroups": []})
    _save(inventory / "describe-security-group-rules.json", {"SecurityGroupRules": []})
    code, out = _recommend(tmp_path, inventory)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "holds no security groups" in err and "describe-security-groups" in err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--vpc", "vpc-0000000000000dead", "--vpc vpc-0000000000000dead: no security group"),
        ("--group", "sg-0000000000000dead", "--group sg-0000000000000dead: no such security group"),
        ("--eni", "eni-0000000000000dead", "--eni eni-0000000000000dead: no such network interface"),
        ("--tag", "Team=nobody", "--tag Team=nobody: no security group"),
    ],
)
def test_a_scope_matching_nothing_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, says: str
) -> None:
    code, out = _recommend(tmp_path, INVENTORY, option, value)
    assert code == 2 and not out.exists()
    assert says in capsys.readouterr().err
    # An unattached group inside a valid scope is still just coverage "none", not an error.
    unattached = ESTATE.group("launch-wizard-1").group_id
    code, out = _recommend(tmp_path, INVENTORY, "--group", unattached, "--format", "json")
    assert code == 0
    (group,) = _load(out / "recommendation.json")["security_groups"]
    assert group["unattached"] and group["coverage"]["status"] == "none"


def test_check_against_the_wrong_region_or_vpc_is_exit_2_not_no_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Today's failure: a snapshot of the wrong region (no groups, no ENIs: every baseline rule merely
    "missing", low) or a --vpc of another region passed the drift gate with "no drift"."""
    inventory = _inventory_copy(tmp_path)
    _save(inventory / "describe-security-groups.json", {"SecurityGroups": []})
    _save(inventory / "describe-security-group-rules.json", {"SecurityGroupRules": []})
    _save(inventory / "describe-network-interfaces.json", {"NetworkInterfaces": []})
    markdown = tmp_path / "drift.md"
    code = run(["check", "--baseline", str(BASELINE), "--inventory", str(inventory), "--no-flows",
                "--markdown", str(markdown)])  # fmt: skip
    assert code == 2 and not markdown.exists()
    assert "holds no security groups" in capsys.readouterr().err
    _save(inventory / "describe-security-groups.json", _load(INVENTORY / "describe-security-groups.json"))
    assert run(["check", "--baseline", str(BASELINE), "--inventory", str(inventory), "--no-flows"]) == 2
    assert "holds no network interfaces" in capsys.readouterr().err
    code = run(["check", "--baseline", str(BASELINE), "--inventory", str(INVENTORY), "--flows", str(FLOWS),
                "--vpc", "vpc-0000000000000dead"])  # fmt: skip
    assert code == 2
    assert "--vpc vpc-0000000000000dead" in capsys.readouterr().err
    # The right inventory is checked (the sample's current rules drift from its own proposal: exit 1).
    assert run(["check", "--baseline", str(BASELINE), "--inventory", str(INVENTORY), "--no-flows"]) == 1


@pytest.fixture(scope="module")
def moto_ec2() -> Iterator[str]:
    """moto's EC2 server with one VPC (a group with one ENI) in eu-west-1; other regions hold only
    moto's default VPC and its default group, as a fresh AWS region does."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url, aws_access_key_id="x",
                       aws_secret_access_key="x")  # fmt: skip
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    ec2.create_tags(Resources=[group], Tags=[{"Key": "Team", "Value": "payments"}])
    ec2.create_network_interface(SubnetId=subnet, Groups=[group])
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def aws(moto_ec2: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", moto_ec2)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_ec2


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--region", "us-east-2"], "the EC2 API (region us-east-2) holds no network interfaces"),
        (["--vpc", "vpc-0000000000000dead"], "--vpc vpc-0000000000000dead: no security group"),
        (["--tag", "Team=nobody"], "--tag Team=nobody"),
    ],
)
def test_collect_of_the_wrong_region_or_scope_is_exit_2(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    out = tmp_path / "snapshot"
    assert run(["collect", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and not out.exists()
    # The right region and scope collect as before.
    assert run(["collect", "--out", str(out), "--tag", "Team=payments", "--quiet"]) == 0
    assert _load(out / "describe-network-interfaces.json")["NetworkInterfaces"]
    assert _load(out / "describe-vpcs.json")["Vpcs"][0]["CidrBlock"] == "10.9.0.0/16"


# ---- 2. the two rule sources are read as their union ----------------------------------------------------


def test_a_rule_only_in_ip_permissions_egress_is_read_and_fails_the_drift_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """describe-security-groups lists an all-traffic rule to 0.0.0.0/0 on web that
    describe-security-group-rules does not (a filtered or lost page): it is there, so check fails."""
    # A baseline equal to today's rules: with --min-window 30d no group is ok, so every rule is kept.
    approved = tmp_path / "approved"
    assert run(["recommend", "--flows", str(FLOWS), "--inventory", str(INVENTORY), "--min-window", "30d",
                "--out", str(approved), "--format", "json", "--quiet"]) == 0  # fmt: skip
    baseline = str(approved / "recommendation.json")
    assert run(["check", "--baseline", baseline, "--inventory", str(INVENTORY), "--no-flows"]) == 0

    web = ESTATE.group("web").group_id
    inventory = _inventory_copy(tmp_path)
    groups = _load(inventory / "describe-security-groups.json")
    (entry,) = [g for g in groups["SecurityGroups"] if g["GroupId"] == web]
    entry["IpPermissionsEgress"].append(
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": [],
         "UserIdGroupPairs": []}
    )  # fmt: skip
    _save(inventory / "describe-security-groups.json", groups)
    report = tmp_path / "drift.md"
    capsys.readouterr()
    code = run(["check", "--baseline", baseline, "--inventory", str(inventory), "--no-flows",
                "--markdown", str(report)])  # fmt: skip
    assert code == 1, "a drift gate must never pass an open rule"
    assert "all traffic to 0.0.0.0/0" in capsys.readouterr().out + report.read_text()

    # … and the reverse: a rule only describe-security-group-rules has (on db) is read too.
    rules = _load(inventory / "describe-security-group-rules.json")
    db = ESTATE.group("db").group_id
    extra = {"SecurityGroupRuleId": "sgr-0000000000000beef", "GroupId": db, "GroupOwnerId": "123456789012",
             "IsEgress": True, "IpProtocol": "tcp", "FromPort": 25, "ToPort": 25, "CidrIpv4": "192.0.2.25/32"}  # fmt: skip
    rules["SecurityGroupRules"].append(extra)
    _save(inventory / "describe-security-group-rules.json", rules)
    code, out = _recommend(tmp_path, inventory)
    assert code == 0
    recommendation = _load(out / "recommendation.json")
    warnings = "\n".join(recommendation["warnings"])
    assert (f"{web}: egress rule (all traffic to 0.0.0.0/0) is in the group's IpPermissionsEgress but not "
            "in SecurityGroupRules; both sources are read as their union") in warnings  # fmt: skip
    assert (
        f"{db}: egress rule sgr-0000000000000beef (tcp 25 to 192.0.2.25/32) is in SecurityGroupRules"
        in warnings
    )
    (web_report,) = [g for g in recommendation["security_groups"] if g["group_id"] == web]
    (open_rule,) = [r for r in web_report["current_egress"] if r["ip_protocol"] == "-1"]
    assert open_rule.get("cidr_ipv4") == "0.0.0.0/0" and "security_group_rule_id" not in open_rule
    (change,) = [c for c in web_report["changes"] if c["rule"]["ip_protocol"] == "-1"]
    assert change["action"] in ("remove", "narrow") and "security_group_rule_id" not in change
    # Without an sgr- id, removals.sh names the rule by --ip-permissions, as for a snapshot without ids.
    removals = (out / "removals.sh").read_text()
    assert "--ip-permissions" in removals and '"IpProtocol":"-1"' in removals.replace(" ", "")


# ---- 3. destinations security groups do not filter and flow logs do not record -------------------------


def test_rules_to_unfiltered_unlogged_destinations_say_so(tmp_path: Path) -> None:
    web = ESTATE.group("web").group_id
    inventory = _inventory_copy(tmp_path)
    groups = _load(inventory / "describe-security-groups.json")
    (entry,) = [g for g in groups["SecurityGroups"] if g["GroupId"] == web]

    def rule(protocol: str, port: int | None, cidr: str, to_port: int | None = None) -> dict[str, Any]:
        ports = {} if port is None else {"FromPort": port, "ToPort": to_port or port}
        family = "Ipv6Ranges" if ":" in cidr else "IpRanges"
        key = "CidrIpv6" if ":" in cidr else "CidrIp"
        return {"IpProtocol": protocol, **ports, family: [{key: cidr}]}

    entry["IpPermissionsEgress"] += [
        rule("tcp", 80, "169.254.169.254/32"),  # instance metadata
        rule("tcp", 80, "fd00:ec2::254/128"),
        rule("tcp", 80, "169.254.170.2/32"),  # ECS task metadata
        rule("tcp", 1688, "169.254.169.250/31"),  # Windows license activation (.250 and .251)
        rule("udp", 67, "0.0.0.0/0", 68),  # DHCP
        rule("udp", 53, "169.254.169.253/32"),  # Amazon DNS, link-local
        rule("-1", None, "10.0.0.1/32"),  # the VPC router (base + 1)
        rule("tcp", 80, "10.0.0.3/32"),  # an ordinary reserved-looking address: no special reason
    ]
    _save(inventory / "describe-security-groups.json", groups)
    (inventory / "describe-security-group-rules.json").unlink()  # rules from IpPermissions, without ids
    code, out = _recommend(tmp_path, inventory, "--format", "json")
    assert code == 0
    recommendation = _load(out / "recommendation.json")
    reasons: dict[str, tuple[str, str]] = {}
    for group in recommendation["security_groups"]:
        for change in group["changes"]:
            rule_out = change["rule"]
            destination = rule_out.get("cidr_ipv4") or rule_out.get("cidr_ipv6") or ""
            reasons[f"{group['group_name']} {rule_out['ip_protocol']} {rule_out.get('from_port')} {destination}"] = (
                change["action"], change["reason"],
            )  # fmt: skip
    expected = {
        "web tcp 80 169.254.169.254/32": "the instance metadata service (169.254.169.254)",
        "web tcp 80 fd00:ec2::254/128": "the instance metadata service (fd00:ec2::254)",
        "web tcp 80 169.254.170.2/32": "the ECS task metadata endpoint",
        "web tcp 1688 169.254.169.250/31": "Windows license activation (169.254.169.250, 169.254.169.251)",
        "web udp 67 0.0.0.0/0": "DHCP (udp 67-68)",
        "web udp 53 169.254.169.253/32": "the Amazon DNS server (169.254.169.253)",
        "web -1 None 10.0.0.1/32": "the VPC router's reserved address (10.0.0.1, base + 1 of",
        "web udp 123 169.254.169.123/32": "the Amazon Time Sync Service (169.254.169.123)",
        # the sample's own rules: dns-1 forwards to the Amazon DNS server at VPC base + 2
        "dns udp 53 10.0.0.2/32": "the Amazon DNS server (10.0.0.2, base + 2 of",
        "dns tcp 53 10.0.0.2/32": "the Amazon DNS server (10.0.0.2, base + 2 of",
    }
    for key, says in expected.items():
        action, reason = reasons[key]
        assert action == "remove", key
        assert says in reason, (key, reason)
        assert "security groups do not filter that traffic and VPC Flow Logs do not record it" in reason
        assert "removing it changes nothing for that traffic" in reason
    action, reason = reasons["web tcp 80 10.0.0.3/32"]
    assert action == "remove" and reason.startswith("no initiated traffic used it")


# ---- 4. a window shorter than 30 days says monthly traffic may be missing --------------------------------


def test_a_window_under_30_days_warns_about_rare_traffic(tmp_path: Path) -> None:
    code, out = _recommend(tmp_path, INVENTORY, "--format", "json", "--format", "html")
    assert code == 0
    warnings = _load(out / "recommendation.json")["warnings"]
    (short,) = [w for w in warnings if w.startswith("the evidence window is 8.0 days (< 30 days)")]
    assert "monthly" in short and "[[pin]]" in short
    html = (out / "report.html").read_text()
    assert 'id="warnings"' in html and "the evidence window is 8.0 days (&lt; 30 days)" in html
    assert "[[pin]]" in html

    # 31 days of evidence: no such warning.
    start = 1_793_491_200
    flows = write_lines(
        tmp_path / "long" / "f.log",
        [default_line(start=start), default_line(start=start + 31 * 86400)],
        header=DEFAULT_HEADER,
    )
    code, out = _recommend(tmp_path / "long-run", INVENTORY, "--format", "json", flows=flows)
    assert code == 0
    assert not [w for w in _load(out / "recommendation.json")["warnings"] if "evidence window" in w]
