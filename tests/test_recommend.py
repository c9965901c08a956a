"""The main job on the bundled sample estate: the decisions a reviewer would expect, and the CLI contract."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sgadvisor.analysis.internet import InternetOptions, InternetPolicy
from sgadvisor.analysis.recommend import AnalysisOptions, Scope, build_recommendation
from sgadvisor.cli import main
from sgadvisor.errors import InputError
from sgadvisor.flowlogs.edges import Window
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from sgadvisor.inventory.snapshot import load_snapshot
from sgadvisor.models import Recommendation
from tests.conftest import DEFAULT_HEADER, REPO, write_lines
from tests.standins.sample_estate import build_estate

SAMPLE = REPO / "sample_data"
SEED_ENI = "eni-0e7ae111222111000"
# The generator's own verdict for each egress rule (worked out from the traffic it generates).
EXPECTED_ACTION = {
    "used": "keep",
    "partly-used": "narrow",
    "unused": "remove",
    "invisible": "remove",  # traffic flow logs never record (Amazon DNS, Time Sync): unused as far as they show
    "no-evidence": "keep",
    "unattached": "keep",
}


@pytest.fixture(scope="module")
def sample() -> Recommendation:
    inventory = load_snapshot([SAMPLE / "inventory"])
    flows = read_flows([SAMPLE / "flows"], addresses=inventory.addresses)
    return build_recommendation(flows, inventory, AnalysisOptions())


def test_every_current_rule_gets_the_verdict_the_traffic_implies(sample: Recommendation) -> None:
    expected = {r.rule_id: r.expect for g in build_estate().security_groups for r in g.egress}
    got = {
        c.security_group_rule_id or "": c.action
        for g in sample.security_groups
        for c in g.changes
        if c.action != "add"
    }
    assert set(got) == set(expected)
    wrong = {rid: (expected[rid], got[rid]) for rid in got if EXPECTED_ACTION[expected[rid]] != got[rid]}
    assert not wrong


def test_coverage_and_special_sections(sample: Recommendation) -> None:
    status = {g.group_name: g.coverage.status for g in sample.security_groups}
    assert status["bastion"] == "none"  # its ENI has no flow log: nothing removed on silence
    assert status["launch-wizard-1"] == "none"
    assert next(g for g in sample.security_groups if g.group_name == "launch-wizard-1").unattached
    assert all(s == "ok" for name, s in status.items() if name not in ("bastion", "launch-wizard-1"))
    assert [i.type for i in sample.infrastructure_enis] == ["nat_gateway"]
    seed = [r for r in sample.rejected_egress if r.eni == SEED_ENI]
    assert [(r.ip_protocol, r.dst, r.port) for r in seed] == [("tcp", "10.0.2.15", 22)]
    assert sample.input_accounting.balanced and sample.input_accounting.malformed == 0


def test_replies_never_become_rules(sample: Recommendation) -> None:
    """No proposed rule exists only for replies: every added rule's evidence has initiated reasons."""
    for group in sample.security_groups:
        for rule in group.proposed_egress:
            if rule.evidence is None:
                continue
            assert rule.evidence.why != ["tcp-flags: SYN-ACK from the ENI (a reply)"]
            if rule.ip_protocol in ("tcp", "udp"):
                assert (rule.from_port is not None and rule.from_port < 32768) or rule.from_port == 50051


def test_proposals_use_identity_where_they_can(sample: Recommendation) -> None:
    web = next(g for g in sample.security_groups if g.group_name == "web")
    kinds = {(r.ip_protocol, r.from_port): r for r in web.proposed_egress}
    assert kinds[("tcp", 8080)].referenced_security_group_id is not None
    batch = next(g for g in sample.security_groups if g.group_name == "batch")
    assert any(r.prefix_list_id == "pl-6da54004" for r in batch.proposed_egress)
    monitoring = next(g for g in sample.security_groups if g.group_name == "monitoring")
    icmp = [r for r in monitoring.proposed_egress if r.ip_protocol == "icmp"]
    assert icmp and icmp[0].referenced_security_group_id is not None  # the web group, IPv4 members only


def test_scope_filters_groups_and_accounts_for_records(sample: Recommendation) -> None:
    inventory = load_snapshot([SAMPLE / "inventory"])
    flows = read_flows([SAMPLE / "flows"], addresses=inventory.addresses)
    web = next(g for g in sample.security_groups if g.group_name == "web").group_id
    scoped = build_recommendation(flows, inventory, AnalysisOptions(scope=Scope(groups=frozenset({web}))))
    assert [g.group_id for g in scoped.security_groups] == [web]
    assert scoped.input_accounting.filtered.get("out of scope", 0) > 0
    assert scoped.input_accounting.balanced


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    return caught.value.code if isinstance(caught.value.code, int) else 0


def test_cli_writes_byte_identical_json_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["recommend", "--flows", str(SAMPLE / "flows"), "--inventory", str(SAMPLE / "inventory")]
    assert run([*args, "--out", str(tmp_path / "a")]) == 0
    summary = capsys.readouterr().out
    assert "sg-00bfbbaf678e7c95f" in summary and "coverage" in summary
    assert run([*args, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    first = (tmp_path / "a" / "recommendation.json").read_bytes()
    assert first == (tmp_path / "b" / "recommendation.json").read_bytes()
    Recommendation.model_validate_json(first)  # reads back into the model renderers use
    capsys.readouterr()
    assert run([*args, "--out", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out.encode() == first
    assert "coverage" in captured.err  # the table moves to stderr when stdout carries the JSON


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_aws: None) -> None:
    # Without --inventory the EC2 API is the source; with no AWS configured the message says what to pass.
    assert run(["recommend", "--flows", str(SAMPLE / "flows")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no AWS region") and "--inventory" in err and "sample_data" in err
    bad = tmp_path / "inventory.json"
    bad.write_text(json.dumps({"SecurityGroups": [{"GroupName": "x"}]}))
    out = tmp_path / "out"
    assert (
        run(["recommend", "--flows", str(SAMPLE / "flows"), "--inventory", str(bad), "--out", str(out)]) == 2
    )
    assert "inventory.json" in capsys.readouterr().err
    assert not out.exists()
    assert run(["recommend", "--flows", str(SAMPLE / "flows"), "--inventory", str(SAMPLE / "inventory"),
                "--format", "pdf"]) == 2  # fmt: skip
    assert "pdf" in capsys.readouterr().err
    assert run(["recommend", "--flows", str(SAMPLE / "flows"), "--inventory", str(SAMPLE / "inventory"),
                "--min-window", "soon"]) == 2  # fmt: skip


def test_min_window_longer_than_the_data_removes_nothing(tmp_path: Path) -> None:
    inventory = load_snapshot([SAMPLE / "inventory"])
    flows = read_flows([SAMPLE / "flows"], addresses=inventory.addresses)
    # The sample's flow logs exist since before the window, so coverage holds for the window itself;
    # ask for more evidence than the window has and nothing may be removed.
    rec = build_recommendation(flows, inventory, AnalysisOptions(min_window=30 * 86400))
    assert all(c.action == "keep" for g in rec.security_groups for c in g.changes)
    assert {g.coverage.status for g in rec.security_groups} <= {"none", "partial"}


def test_thresholds_list_what_would_be_blocked() -> None:
    inventory = load_snapshot([SAMPLE / "inventory"])
    flows = read_flows([SAMPLE / "flows"], addresses=inventory.addresses)
    rec = build_recommendation(flows, inventory, AnalysisOptions(min_records=100))
    blocked = {(b.eni, b.remote, b.port) for b in rec.would_be_blocked}
    assert blocked and all(b.records < 100 for b in rec.would_be_blocked)
    assert all("below --min-records 100" in b.reason for b in rec.would_be_blocked)


def test_pin_keeps_a_rule_that_rare_traffic_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = next(g for g in build_estate().security_groups if g.group_name == "batch")
    sftp = next(r for r in batch.egress if r.from_port == 22)
    config = tmp_path / "sgadvisor.toml"
    config.write_text(
        f'[[pin]]\ngroup = "{batch.group_id}"\nip_protocol = "tcp"\nfrom_port = 22\nto_port = 22\n'
        f'cidr_ipv4 = "{sftp.cidr_ipv4}"\nreason = "monthly partner SFTP"\nexpires = 2027-06-30\n'
        f'[[pin]]\ngroup = "{batch.group_id}"\nip_protocol = "tcp"\nfrom_port = 2222\nto_port = 2222\n'
        f'cidr_ipv4 = "{sftp.cidr_ipv4}"\nreason = "old"\nexpires = 2026-01-01\n'
    )
    out = tmp_path / "out"
    args = ["recommend", "--config", str(config), "--flows", str(SAMPLE / "flows"),
            "--inventory", str(SAMPLE / "inventory"), "--out", str(out), "--quiet"]  # fmt: skip
    assert run(args) == 0
    rec = Recommendation.model_validate_json((out / "recommendation.json").read_text())
    change = next(
        c for g in rec.security_groups for c in g.changes if c.security_group_rule_id == sftp.rule_id
    )
    assert change.action == "keep" and change.reason.startswith("pinned: monthly partner SFTP")
    assert any("expired" in w for w in rec.warnings)


def test_cidr_tolerance_and_rule_budget_widen_only_never_wider() -> None:
    inventory = load_snapshot([SAMPLE / "inventory"])
    flows = read_flows([SAMPLE / "flows"], addresses=inventory.addresses)

    def web_443(rec: Recommendation) -> list[str]:
        web = next(g for g in rec.security_groups if g.group_name == "web")
        return [r.cidr_ipv4 for r in web.proposed_egress if r.from_port == 443 and r.cidr_ipv4]

    # By default an internet destination is port-scoped: it survives the partner's next DNS change.
    assert web_443(build_recommendation(flows, inventory, AnalysisOptions())) == ["0.0.0.0/0"]
    pinned = AnalysisOptions(internet=InternetOptions(policy=InternetPolicy.address))
    assert web_443(build_recommendation(flows, inventory, pinned)) == ["203.0.113.10/32", "203.0.113.11/32"]
    # Two neighbours merge into a /31 that admits no unobserved address: tolerance 0 suffices.
    aggregated = build_recommendation(flows, inventory, replace(pinned, cidr_tolerance=0))
    assert web_443(aggregated) == ["203.0.113.10/31"]
    # A budget of one rule per family cannot be met without widening beyond today's rules: it yields.
    tight = build_recommendation(flows, inventory, replace(pinned, rule_budget=1))
    assert any("exceeds the rule budget of 1" in w for w in tight.warnings)
    assert web_443(tight) == ["203.0.113.10/31"]


def test_ip_ranges_label_destinations(tmp_path: Path) -> None:
    from sgadvisor.analysis.awsranges import load_ip_ranges

    ranges = tmp_path / "ip-ranges.json"
    ranges.write_text(
        json.dumps(
            {
                "syncToken": "1",
                "prefixes": [
                    {"ip_prefix": "203.0.112.0/22", "region": "eu-west-1", "service": "AMAZON"},
                    {"ip_prefix": "203.0.113.0/24", "region": "eu-west-1", "service": "EC2"},
                ],
                "ipv6_prefixes": [
                    {"ipv6_prefix": "2001:db8::/32", "region": "eu-west-1", "service": "AMAZON"}
                ],
            }
        )
    )
    labels = load_ip_ranges(ranges)
    assert labels.label("203.0.113.10") == "EC2"
    assert labels.label("203.0.114.1") == "AMAZON"
    assert labels.label("2001:db8:4006:80b::2003") == "AMAZON"
    assert labels.label("198.51.100.1") is None
    inventory = load_snapshot([SAMPLE / "inventory"])
    flows = read_flows([SAMPLE / "flows"], addresses=inventory.addresses)
    rec = build_recommendation(flows, inventory, AnalysisOptions(ip_ranges=labels))
    web = next(g for g in rec.security_groups if g.group_name == "web")
    described = {r.cidr_ipv4 or r.cidr_ipv6: r.description or "" for r in web.proposed_egress}
    assert described["203.0.113.10/32"].startswith("sgadvisor EC2 ")
    assert described["2001:db8:4006:80b::2003/128"].startswith("sgadvisor AMAZON ")
    broken = tmp_path / "broken.json"
    broken.write_text('{"prefixes": [{"ip_prefix": "300.0.0.0/8", "service": "S3"}]}')
    with pytest.raises(InputError, match=r"broken\.json: ip entry 0"):
        load_ip_ranges(broken)


def test_unattributed_traffic_and_skipdata_lower_coverage() -> None:
    """Records of an ENI missing from the inventory are reported, and a group whose rules permit that
    ENI's initiated traffic loses `ok` (no removals); so does a group with too much SKIPDATA."""
    from dataclasses import replace

    import polars as pl

    inventory = load_snapshot([SAMPLE / "inventory"])
    flows = read_flows([SAMPLE / "flows"], addresses=inventory.addresses)
    gone = "eni-0527cbf755e48af1d"  # web-2: pretend the instance was replaced
    interfaces = {eni: itf for eni, itf in inventory.interfaces.items() if eni != gone}
    without = replace(inventory, interfaces=interfaces)
    rec = build_recommendation(flows, without, AnalysisOptions())
    assert [u.interface_id for u in rec.unattributed] == [gone]
    assert rec.unattributed[0].records > 0 and rec.unattributed[0].destinations
    web = next(g for g in rec.security_groups if g.group_name == "web")
    assert web.coverage.status == "partial"
    assert any("unknown ENI" in r for r in web.coverage.reasons)
    tolerant = build_recommendation(flows, without, AnalysisOptions(max_unattributed=10**9))
    assert next(g for g in tolerant.security_groups if g.group_name == "web").coverage.status == "ok"

    db = next(g for g in build_estate().security_groups if g.group_name == "db")
    member = sorted(inventory.members[db.group_id])[0]
    skipped = flows.coverage.with_columns(
        pl.when(pl.col("interface_id") == member)
        .then(86400)
        .otherwise(pl.col("skipdata_seconds"))
        .alias("skipdata_seconds")
    )
    rec = build_recommendation(replace(flows, coverage=skipped), inventory, AnalysisOptions())
    report = next(g for g in rec.security_groups if g.group_id == db.group_id)
    assert report.coverage.status == "partial" and report.coverage.skipdata_share > 0.1
    assert all(c.action in ("keep", "add") for c in report.changes) and not any(
        c.action == "add" for c in report.changes
    )


def test_group_edges_are_the_busiest_and_count_the_rest(sample: Recommendation) -> None:
    from sgadvisor.analysis import recommend as module

    inventory = load_snapshot([SAMPLE / "inventory"])
    flows = read_flows([SAMPLE / "flows"], addresses=inventory.addresses)
    original = module.EDGES_PER_GROUP
    try:
        module.EDGES_PER_GROUP = 5
        small = build_recommendation(flows, inventory, AnalysisOptions())
    finally:
        module.EDGES_PER_GROUP = original
    for full, cut in zip(sample.security_groups, small.security_groups, strict=True):
        total = len(full.edges) + full.edges_omitted
        assert len(cut.edges) == min(5, total) and cut.edges_omitted == total - len(cut.edges)
        assert [e.records for e in cut.edges] == [e.records for e in full.edges[:5]]


def test_silence_is_never_evidence_even_with_flow_logs_on_record(tmp_path: Path) -> None:
    """describe-flow-logs shows flow logs covering every ENI since before the window; when none of their
    records were read, no group may lose a rule (a wrong --flows path must not empty the groups)."""
    inventory = load_snapshot([SAMPLE / "inventory"])
    assert inventory.flow_logs
    empty = write_lines(tmp_path / "empty.log", [], header=DEFAULT_HEADER)
    flows = read_flows([empty], IngestOptions(window=Window(1_793_491_200, 1_794_182_400)))
    result = build_recommendation(flows, inventory, AnalysisOptions())
    assert all(c.action in ("keep",) for g in result.security_groups for c in g.changes)
    assert {g.coverage.status for g in result.security_groups} == {"none"}


def test_no_records_at_all_is_exit_2_with_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "notes.txt").write_text("not a flow log\n")
    out = tmp_path / "out"
    assert run(["recommend", "--flows", str(tmp_path / "flows"), "--inventory", str(SAMPLE / "inventory"),
                "--out", str(out)]) == 2  # fmt: skip
    assert "no flow-log records" in capsys.readouterr().err
    assert not out.exists()


def test_scope_by_tag(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["recommend", "--flows", str(SAMPLE / "flows"), "--inventory", str(SAMPLE / "inventory")]
    assert run([*argv, "--tag", "Name=web", "--out", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [g["group_name"] for g in data["security_groups"]] == ["web"]
    assert run([*argv, "--tag", "Name"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
