"""The round trip of DESIGN §3 ``check``: the state that results from applying a recommendation, checked
against that recommendation with the same flows, has no drift; a rule added out of band afterwards is.

As a property over generated estates (tests/estates.py), and end to end through moto's EC2: create the
sample there, recommend, apply the changes with boto3 exactly as egress.tf + removals.sh would, collect
the inventory again (with the sample's ENI history, fetched from the Config + CloudTrail stand-in), and run
``sgadvisor check``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.check.baseline import baseline_from_recommendation
from sgadvisor.check.findings import Policy, check_drift
from sgadvisor.check.model import FindingKind
from sgadvisor.inventory.model import Inventory, SgRule
from sgadvisor.models import Recommendation
from sgadvisor.rules import DestKind
from tests.estates import Scenario, scenarios

OPTION_SETS = [
    AnalysisOptions(),
    AnalysisOptions(cidr_tolerance=8, rule_budget=2),
    AnalysisOptions(min_records=2),
]


def _applied(rec: Recommendation, inventory: Inventory) -> Inventory:
    """Each group's egress becomes its proposed rules (new rules get new ids, as EC2 would give)."""
    groups = dict(inventory.groups)
    for report in rec.security_groups:
        rules = []
        for index, rule in enumerate(report.proposed_egress):
            key = rule.key()
            rules.append(
                SgRule(
                    report.group_id,
                    True,
                    key.ip_protocol,
                    key.from_port,
                    key.to_port,
                    key.kind,
                    key.value,
                    rule.description,
                    f"sgr-applied-{index}",
                )
            )
        groups[report.group_id] = replace(groups[report.group_id], egress=tuple(rules))
    return replace(inventory, groups=groups)


@settings(max_examples=80)
@given(scenarios(), st.sampled_from(OPTION_SETS), st.booleans())
def test_applying_a_recommendation_then_checking_it_finds_nothing(
    scenario: Scenario, options: AnalysisOptions, no_flows: bool
) -> None:
    rec = build_recommendation(scenario.flows, scenario.inventory, options)
    baseline = baseline_from_recommendation(rec, Path("recommendation.json"))
    applied = _applied(rec, scenario.inventory)
    report = check_drift(baseline, applied, None if no_flows else scenario.flows, options, Policy())
    assert report.findings == [], [f.message for f in report.findings]
    assert report.exit_code == 0


@settings(max_examples=40)
@given(scenarios())
def test_an_out_of_band_rule_after_applying_is_drift(scenario: Scenario) -> None:
    rec = build_recommendation(scenario.flows, scenario.inventory, AnalysisOptions())
    applied = _applied(rec, scenario.inventory)
    gid = rec.security_groups[0].group_id
    extra = SgRule.build(gid, True, "tcp", 3389, 3389, DestKind.CIDR_IPV4, "203.0.113.0/24", None, "sgr-oob")
    sg = applied.groups[gid]
    tampered = replace(applied, groups={**applied.groups, gid: replace(sg, egress=(*sg.egress, extra))})
    baseline = baseline_from_recommendation(rec, Path("recommendation.json"))
    report = check_drift(baseline, tampered, scenario.flows, AnalysisOptions(), Policy())
    assert [(f.kind, f.groups) for f in report.findings] == [(FindingKind.RULE_NOT_IN_BASELINE, [gid])]
    assert report.exit_code == 1


# ------------------------------------------------------------------------------------------ moto


REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] is a test dependency")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _permission(rule: Any) -> dict[str, Any]:
    """The IpPermissions entry egress.tf's resource creates for one rule (one destination)."""
    permission: dict[str, Any] = {"IpProtocol": rule.ip_protocol}
    if rule.ip_protocol != "-1" and rule.from_port is not None:
        permission.update(FromPort=rule.from_port, ToPort=rule.to_port)
    kind, value = rule.destination
    extra = {"Description": rule.description} if rule.description else {}
    if kind is DestKind.CIDR_IPV4:
        permission["IpRanges"] = [{"CidrIp": value, **extra}]
    elif kind is DestKind.CIDR_IPV6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": value, **extra}]
    elif kind is DestKind.PREFIX_LIST:
        permission["PrefixListIds"] = [{"PrefixListId": value, **extra}]
    else:
        permission["UserIdGroupPairs"] = [{"GroupId": value, **extra}]
    return permission


def _apply_in_ec2(ec2: Any, rec: Recommendation) -> None:
    """egress.tf (creates the added rules; kept ones are imported, unchanged) + removals.sh (revokes the
    removed and narrowed rules by sgr- id)."""
    for group in rec.security_groups:
        for change in group.changes:
            if change.action == "add":
                ec2.authorize_security_group_egress(
                    GroupId=group.group_id, IpPermissions=[_permission(change.rule)]
                )
        going = [c.security_group_rule_id for c in group.changes if c.action in ("remove", "narrow")]
        if going:
            ec2.revoke_security_group_egress(GroupId=group.group_id, SecurityGroupRuleIds=going)


@pytest.mark.slow
def test_round_trip_through_moto(
    moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from sgadvisor.cli import main
    from tests.standins.moto_estate import create_estate, sample_history, write_sample_snapshot
    from tests.standins.sample_estate import build_estate, generate

    ec2 = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    estate = build_estate()
    id_map = create_estate(ec2, estate)
    generate(tmp_path / "sample", id_map)
    flows = str(tmp_path / "sample" / "flows")
    vpc = id_map[estate.vpc.vpc_id]
    # The ENI history (replaced instances, finished tasks) as collect fetches it from Config and CloudTrail
    # (the stand-in serves the sample's): without it every group with churn would stay partial.
    history = sample_history(ec2, tmp_path / "sample", vpc)

    def snapshot(name: str) -> str:
        return str(write_sample_snapshot(ec2, estate, id_map, tmp_path / name, history))

    def run(argv: list[str]) -> int:
        with pytest.raises(SystemExit) as caught:
            main(argv)
        code = caught.value.code
        return code if isinstance(code, int) else (0 if code is None else 1)

    out = tmp_path / "rec"
    assert (
        run(
            [
                "recommend",
                "--inventory",
                snapshot("before"),
                "--flows",
                flows,
                "--vpc",
                vpc,
                "--out",
                str(out),
                "--format",
                "json",
                "-q",
            ]
        )
        == 0
    )
    rec = Recommendation.model_validate_json((out / "recommendation.json").read_text())
    assert {"add", "remove", "narrow"} <= {c.action for g in rec.security_groups for c in g.changes}
    tasks = next(g for g in rec.security_groups if g.group_name == "invoicer-tasks")
    assert tasks.coverage.enis == 8  # 2 current task ENIs and the 6 finished ones the history tells
    baseline = str(out / "recommendation.json")
    capsys.readouterr()

    # Before applying, the estate drifts from the approved baseline.
    assert (
        run(
            [
                "check",
                "--baseline",
                baseline,
                "--inventory",
                snapshot("unapplied"),
                "--flows",
                flows,
                "--vpc",
                vpc,
                "-q",
            ]
        )
        == 1
    )

    _apply_in_ec2(ec2, rec)
    applied = snapshot("applied")
    sarif = tmp_path / "check.sarif"
    code = run(
        [
            "check",
            "--baseline",
            baseline,
            "--inventory",
            applied,
            "--flows",
            flows,
            "--vpc",
            vpc,
            "--sarif",
            str(sarif),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert text.rstrip().endswith("no drift — exit 0")
    assert (
        run(["check", "--baseline", baseline, "--inventory", applied, "--no-flows", "--vpc", vpc, "-q"]) == 0
    )

    # An out-of-band rule afterwards is drift.
    web = next(g.group_id for g in rec.security_groups if g.group_name == "web")
    ec2.authorize_security_group_egress(
        GroupId=web,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 3389,
                "ToPort": 3389,
                "IpRanges": [{"CidrIp": "203.0.113.0/24"}],
            }
        ],
    )
    code = run(
        ["check", "--baseline", baseline, "--inventory", snapshot("tampered"), "--flows", flows, "--vpc", vpc]
    )
    text = capsys.readouterr().out
    assert code == 1
    findings = [line for line in text.splitlines() if line.startswith(("HIGH", "MEDIUM", "LOW"))]
    assert len(findings) == 1 and "rule-not-in-baseline" in findings[0]
    assert f"{web} web: current rule tcp 3389 to 203.0.113.0/24 is not in the baseline" in text
