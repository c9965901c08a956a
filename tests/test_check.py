"""``check`` findings on a small hand-made estate: every kind, default severities, overrides, --fail-on,
one finding per rule, stable ids, [[allow]]/[[pin]] with expiry, --no-flows, and the output formats."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest

from sgadvisor.analysis.recommend import AnalysisOptions, Scope
from sgadvisor.check.baseline import Baseline, BaselineRule
from sgadvisor.check.findings import Policy, check_drift
from sgadvisor.check.junit import render_junit
from sgadvisor.check.markdown import render_markdown
from sgadvisor.check.model import (
    KINDS,
    CheckReport,
    FindingKind,
    Severity,
    finding_id,
    parse_severity_overrides,
)
from sgadvisor.check.sarif import render_sarif
from sgadvisor.check.text import render_text
from sgadvisor.config import RuleException
from sgadvisor.errors import UsageError
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.flowlogs.ingest import read_flows
from sgadvisor.inventory.model import Interface, Inventory, SecurityGroup, SgRule
from sgadvisor.rules import DestKind, Rule, make_key
from tests.conftest import DEFAULT_HEADER, default_line, nodata_lines, write_lines

T0 = 1_793_491_200
OPTIONS = AnalysisOptions(min_window=3600)
TODAY = date(2026, 11, 20)

# (protocol, from, to, kind, value)
R = tuple[str, int | None, int | None, DestKind, str]
DB_5432: R = ("tcp", 5432, 5432, DestKind.SECURITY_GROUP, "sg-db")
WEB_443: R = ("tcp", 443, 443, DestKind.CIDR_IPV4, "93.184.216.34/32")
DNS: R = ("udp", 53, 53, DestKind.CIDR_IPV4, "10.0.0.2/32")
SSH_OUT: R = ("tcp", 22, 22, DestKind.CIDR_IPV4, "198.51.100.0/24")
IDLE: R = ("tcp", 8080, 8080, DestKind.CIDR_IPV4, "10.0.3.0/24")
ANY_443: R = ("tcp", 443, 443, DestKind.CIDR_IPV4, "0.0.0.0/0")
WIDE_5432: R = ("tcp", 5432, 5432, DestKind.CIDR_IPV4, "10.0.0.0/16")


def _rule(group: str, spec: R, index: int) -> SgRule:
    proto, low, high, kind, value = spec
    return SgRule.build(group, True, proto, low, high, kind, value, f"desc {index}", f"sgr-{group}-{index}")


def _inventory(app: list[R], db: list[R] | None = None, extra_group: bool = False) -> Inventory:
    groups = {
        "sg-app": SecurityGroup(
            "sg-app", "app", "vpc-1", egress=tuple(_rule("sg-app", r, i) for i, r in enumerate(app))
        ),
        "sg-db": SecurityGroup(
            "sg-db", "db", "vpc-1", egress=tuple(_rule("sg-db", r, i) for i, r in enumerate(db or []))
        ),
    }
    interfaces = {
        "eni-app": Interface("eni-app", ("10.0.1.10",), ("sg-app",), subnet_id="subnet-1", vpc_id="vpc-1"),
        "eni-db": Interface("eni-db", ("10.0.2.15",), ("sg-db",), subnet_id="subnet-1", vpc_id="vpc-1"),
    }
    if extra_group:
        groups["sg-new"] = SecurityGroup(
            "sg-new",
            "new",
            "vpc-1",
            egress=(_rule("sg-new", ("-1", None, None, DestKind.CIDR_IPV4, "0.0.0.0/0"), 0),),
        )
        interfaces["eni-new"] = Interface(
            "eni-new", ("10.0.1.20",), ("sg-new",), subnet_id="subnet-1", vpc_id="vpc-1"
        )
    return Inventory(groups=groups, interfaces=interfaces)


def _baseline(app: list[R], db: list[R] | None = None, **more: list[R]) -> Baseline:
    groups = {"sg-app": app, "sg-db": db or [], **{k.replace("_", "-"): v for k, v in more.items()}}
    return Baseline(
        path=Path("baseline.json"),
        format="recommendation",
        groups={
            gid: [
                BaselineRule(rule=Rule.from_key(make_key(*spec)), source=f"{gid}[{index}]")
                for index, spec in enumerate(specs)
            ]
            for gid, specs in groups.items()
        },
        vpcs=dict.fromkeys(groups, "vpc-1"),
    )


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> FlowEdges:
    """eni-app initiates to the database (5432) and to 93.184.216.34:443, at the start and two hours
    later (coverage ok for a one-hour --min-window); the database replies; eni-new talks to nobody."""
    lines = []
    for start in (T0, T0 + 7200):
        lines += [
            default_line("10.0.1.10", "10.0.2.15", 40000, 5432, eni="eni-app", start=start),
            default_line("10.0.1.10", "93.184.216.34", 40001, 443, eni="eni-app", start=start),
            default_line("10.0.2.15", "10.0.1.10", 5432, 40000, eni="eni-db", start=start),
            default_line("10.0.1.10", "10.0.2.15", 40000, 5432, eni="eni-db", start=start),
            default_line("10.0.1.20", "10.0.0.2", 40002, 53, eni="eni-new", proto=17, start=start),
        ]
    for eni in ("eni-app", "eni-db", "eni-new"):  # idle in between, as AWS logs it
        lines += nodata_lines(eni, T0, T0 + 7200, busy=(T0,))
    path = write_lines(tmp_path_factory.mktemp("flows") / "f.log", lines, header=DEFAULT_HEADER)
    addresses = {"eni-app": ["10.0.1.10"], "eni-db": ["10.0.2.15"], "eni-new": ["10.0.1.20"]}
    return read_flows([path], addresses=addresses)


def _check(
    inventory: Inventory,
    baseline: Baseline,
    flows: FlowEdges | None,
    policy: Policy | None = None,
    options: AnalysisOptions = OPTIONS,
) -> CheckReport:
    return check_drift(baseline, inventory, flows, options, policy or Policy(today=TODAY))


def _kinds(report: CheckReport) -> list[tuple[FindingKind, str | None]]:
    return [(f.kind, str(f.rule.key().value) if f.rule else None) for f in report.active()]


# ------------------------------------------------------------------------------------------ kinds


def test_matching_state_has_no_drift(flows: FlowEdges) -> None:
    report = _check(_inventory([DB_5432, WEB_443]), _baseline([DB_5432, WEB_443]), flows)
    assert report.findings == [] and report.exit_code == 0
    assert report.flows_checked and report.flows == 2
    assert {g.group_id: g.coverage for g in report.groups} == {"sg-app": "ok", "sg-db": "ok"}


def test_current_rule_not_in_baseline_is_high(flows: FlowEdges) -> None:
    report = _check(_inventory([DB_5432, WEB_443, SSH_OUT]), _baseline([DB_5432, WEB_443]), flows)
    [finding] = report.findings
    assert finding.kind is FindingKind.RULE_NOT_IN_BASELINE and finding.severity is Severity.HIGH
    assert finding.groups == ["sg-app"] and finding.rule is not None
    assert finding.rule.key() == make_key(*SSH_OUT)
    assert "sgr-sg-app-2" in finding.details[0]
    assert report.exit_code == 1


def test_broader_rule_replaces_the_baseline_rule_and_is_the_only_finding_for_it(flows: FlowEdges) -> None:
    report = _check(_inventory([WIDE_5432, WEB_443]), _baseline([DB_5432, WEB_443]), flows)
    [finding] = report.findings
    assert finding.kind is FindingKind.RULE_BROADER and finding.severity is Severity.HIGH
    assert "tcp 5432 to sg-db" in finding.message and "broader" in finding.message
    assert finding.baseline_source == "sg-app[0]"
    assert any("used in the window by 1 flow" in d for d in finding.details)


def test_port_widening_to_the_same_destination_is_broader(flows: FlowEdges) -> None:
    wide_ports: R = ("tcp", 0, 65535, DestKind.SECURITY_GROUP, "sg-db")
    report = _check(_inventory([wide_ports, WEB_443]), _baseline([DB_5432, WEB_443]), flows)
    assert _kinds(report) == [(FindingKind.RULE_BROADER, "sg-db")]


def test_narrower_replacement_is_not_broader(flows: FlowEdges) -> None:
    narrow: R = ("tcp", 5432, 5432, DestKind.CIDR_IPV4, "10.0.2.15/32")
    report = _check(_inventory([narrow, WEB_443]), _baseline([WIDE_5432, WEB_443]), flows)
    assert set(_kinds(report)) == {
        (FindingKind.RULE_NOT_IN_BASELINE, "10.0.2.15/32"),
        (FindingKind.BASELINE_RULE_MISSING, "10.0.0.0/16"),
    }


def test_group_not_in_baseline_is_medium_and_its_rules_and_flows_are_not_repeated(flows: FlowEdges) -> None:
    report = _check(_inventory([DB_5432, WEB_443], extra_group=True), _baseline([DB_5432, WEB_443]), flows)
    [finding] = report.findings
    assert finding.kind is FindingKind.GROUP_NOT_IN_BASELINE and finding.severity is Severity.MEDIUM
    assert finding.groups == ["sg-new"] and finding.rule is None
    assert finding.id == finding_id(FindingKind.GROUP_NOT_IN_BASELINE, ["sg-new"], None)


def test_flow_the_current_rules_permit_but_the_baseline_does_not(flows: FlowEdges) -> None:
    report = _check(_inventory([DB_5432, ANY_443]), _baseline([DB_5432]), flows)
    kinds = {f.kind: f for f in report.findings}
    assert set(kinds) == {FindingKind.RULE_NOT_IN_BASELINE, FindingKind.FLOW_NOT_IN_BASELINE}
    flow = kinds[FindingKind.FLOW_NOT_IN_BASELINE]
    assert flow.severity is Severity.MEDIUM and flow.groups == ["sg-app"]
    assert flow.rule is not None and flow.rule.key() == make_key(
        "tcp", 443, 443, DestKind.CIDR_IPV4, "93.184.216.34/32"
    )
    assert "eni-app" in flow.message and "93.184.216.34:443" in flow.message
    assert any("tcp 443 to 0.0.0.0/0" in d for d in flow.details)


def test_a_flow_not_permitted_now_is_never_a_finding(flows: FlowEdges) -> None:
    # Neither the current rules nor the baseline permit the 443 flow: it would be blocked, not drift.
    report = _check(_inventory([DB_5432]), _baseline([DB_5432]), flows)
    assert report.findings == []


def test_baseline_rule_missing_is_low(flows: FlowEdges) -> None:
    report = _check(_inventory([DB_5432, WEB_443]), _baseline([DB_5432, WEB_443, DNS]), flows)
    [finding] = report.findings
    assert finding.kind is FindingKind.BASELINE_RULE_MISSING and finding.severity is Severity.LOW
    assert report.exit_code == 0  # below the default --fail-on medium


def test_baseline_rule_unused_over_a_covered_window_is_low(flows: FlowEdges) -> None:
    report = _check(_inventory([DB_5432, WEB_443, IDLE]), _baseline([DB_5432, WEB_443, IDLE]), flows)
    [finding] = report.findings
    assert finding.kind is FindingKind.BASELINE_RULE_UNUSED and finding.severity is Severity.LOW
    assert any("coverage ok" in d for d in finding.details)


def test_unused_needs_coverage_ok(flows: FlowEdges) -> None:
    long_window = AnalysisOptions(min_window=7 * 86400)
    report = _check(
        _inventory([DB_5432, WEB_443, IDLE]), _baseline([DB_5432, WEB_443, IDLE]), flows, options=long_window
    )
    assert report.findings == []
    assert {g.coverage for g in report.groups} == {"none"}


def test_no_flows_checks_configuration_only(flows: FlowEdges) -> None:
    report = _check(_inventory([DB_5432, ANY_443, DNS]), _baseline([DB_5432, DNS, WEB_443]), None)
    assert not report.flows_checked and report.window is None
    assert {f.kind for f in report.findings} == {FindingKind.RULE_BROADER}
    assert all(g.coverage is None for g in report.groups)


def test_vanished_baseline_group_reports_its_rules_missing_unless_out_of_scope() -> None:
    inventory = _inventory([DB_5432])
    baseline = _baseline([DB_5432], sg_gone=[WEB_443])
    report = _check(inventory, baseline, None)
    [finding] = report.findings
    assert finding.kind is FindingKind.BASELINE_RULE_MISSING and "no longer exists" in finding.message
    assert [g.group_id for g in report.groups if not g.exists] == ["sg-gone"]
    scoped = AnalysisOptions(scope=Scope(vpcs=frozenset({"vpc-other"})))
    assert _check(inventory, baseline, None, options=scoped).findings == []


# ------------------------------------------------------------------------------------------ policy


def test_default_severities_are_the_design_s() -> None:
    assert {kind: info.severity for kind, info in KINDS.items()} == {
        FindingKind.RULE_NOT_IN_BASELINE: Severity.HIGH,
        FindingKind.RULE_BROADER: Severity.HIGH,
        FindingKind.GROUP_NOT_IN_BASELINE: Severity.MEDIUM,
        FindingKind.FLOW_NOT_IN_BASELINE: Severity.MEDIUM,
        FindingKind.BASELINE_RULE_MISSING: Severity.LOW,
        FindingKind.BASELINE_RULE_UNUSED: Severity.LOW,
    }


@pytest.mark.parametrize(
    ("fail_on", "overrides", "expected"),
    [
        (Severity.MEDIUM, [], 0),  # missing is low
        (Severity.LOW, [], 1),
        (Severity.MEDIUM, ["baseline-rule-missing=medium"], 1),
        (Severity.HIGH, ["baseline-rule-missing=medium"], 0),
        (Severity.HIGH, ["baseline-rule-missing=HIGH"], 1),
    ],
)
def test_fail_on_and_severity_overrides(
    flows: FlowEdges, fail_on: Severity, overrides: list[str], expected: int
) -> None:
    policy = Policy(fail_on=fail_on, severities=parse_severity_overrides(overrides), today=TODAY)
    report = _check(_inventory([DB_5432, WEB_443]), _baseline([DB_5432, WEB_443, DNS]), flows, policy)
    assert report.exit_code == expected
    assert report.severities[FindingKind.BASELINE_RULE_MISSING] == report.findings[0].severity


@pytest.mark.parametrize("bad", ["nonsense=high", "rule-not-in-baseline=critical", "rule-not-in-baseline"])
def test_bad_severity_override_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="--severity"):
        parse_severity_overrides([bad])


def _exception(spec: R, reason: str, expires: date | None, group: str = "sg-app") -> RuleException:
    proto, low, high, kind, value = spec
    return RuleException(
        group=group,
        ip_protocol=proto,
        from_port=low,
        to_port=high,
        reason=reason,
        expires=expires,
        **{kind.value: value},
    )


def test_allow_suppresses_with_reason_until_it_expires(flows: FlowEdges) -> None:
    inventory, baseline = _inventory([DB_5432, WEB_443, SSH_OUT]), _baseline([DB_5432, WEB_443])
    allow = _exception(SSH_OUT, "vendor support tunnel, CHG-42", date(2026, 12, 31))
    report = _check(inventory, baseline, flows, Policy(allows=[allow], today=TODAY))
    [finding] = report.findings
    assert finding.suppressed is not None and finding.suppressed.reason == "vendor support tunnel, CHG-42"
    assert report.exit_code == 0 and report.active() == []
    assert "suppressed by [[allow]]" in render_text(report)

    expired = _exception(SSH_OUT, "vendor support tunnel, CHG-42", date(2026, 11, 1))
    report = _check(inventory, baseline, flows, Policy(allows=[expired], today=TODAY))
    [finding] = report.findings
    assert finding.suppressed is None and report.exit_code == 1
    assert any("expired on 2026-11-01" in d for d in finding.details)
    assert any("[[allow]] for sg-app" in w and "expired" in w for w in report.warnings)


def test_allow_of_a_rule_covers_the_flows_through_it(flows: FlowEdges) -> None:
    allow = _exception(ANY_443, "egress proxy migration", None)
    report = _check(
        _inventory([DB_5432, ANY_443]), _baseline([DB_5432]), flows, Policy(allows=[allow], today=TODAY)
    )
    assert {f.kind for f in report.findings} == {
        FindingKind.RULE_NOT_IN_BASELINE,
        FindingKind.FLOW_NOT_IN_BASELINE,
    }
    assert all(f.suppressed is not None for f in report.findings) and report.exit_code == 0


def test_pin_keeps_a_baseline_rule_from_being_unused_until_it_expires(flows: FlowEdges) -> None:
    inventory, baseline = _inventory([DB_5432, WEB_443, IDLE]), _baseline([DB_5432, WEB_443, IDLE])
    pin = _exception(IDLE, "DR test resolver, used twice a year", date(2027, 1, 1))
    assert _check(inventory, baseline, flows, Policy(pins=[pin], today=TODAY)).findings == []
    expired = pin.model_copy(update={"expires": date(2026, 1, 1)})
    report = _check(inventory, baseline, flows, Policy(pins=[expired], today=TODAY))
    [finding] = report.findings
    assert finding.kind is FindingKind.BASELINE_RULE_UNUSED
    assert any("[[pin]] expired on 2026-01-01" in d for d in finding.details)
    assert any("[[pin]] for sg-app" in w for w in report.warnings)


def test_malformed_exception_is_a_usage_error(flows: FlowEdges) -> None:
    bad = _exception(("tcp", 1, 1, DestKind.CIDR_IPV4, "not-a-cidr"), "x", None)
    with pytest.raises(UsageError, match=r"\[\[allow\]\] for sg-app"):
        _check(_inventory([DB_5432]), _baseline([DB_5432]), flows, Policy(allows=[bad], today=TODAY))


# ------------------------------------------------------------------------------------------ ids


def test_finding_id_is_the_hash_of_kind_groups_and_normalised_rule(flows: FlowEdges) -> None:
    report = _check(_inventory([DB_5432, WEB_443, SSH_OUT]), _baseline([DB_5432, WEB_443]), flows)
    [finding] = report.findings
    assert finding.id == finding_id(FindingKind.RULE_NOT_IN_BASELINE, ["sg-app"], make_key(*SSH_OUT))
    # Another spelling, another sgr- id and description: the same rule, the same finding id.
    respelled = _inventory([DB_5432, WEB_443])
    app = respelled.groups["sg-app"]
    other = SgRule.build(
        "sg-app", True, "6", 22, 22, DestKind.CIDR_IPV4, "198.51.100.7/24", "renamed", "sgr-new"
    )
    groups = {
        **respelled.groups,
        "sg-app": SecurityGroup("sg-app", "app", "vpc-1", egress=(*app.egress, other)),
    }
    again = _check(
        Inventory(groups=groups, interfaces=respelled.interfaces), _baseline([DB_5432, WEB_443]), flows
    )
    assert [f.id for f in again.findings] == [finding.id]
    assert len({finding_id(k, ["sg-app"], make_key(*SSH_OUT)) for k in FindingKind}) == len(FindingKind)


def test_baseline_matches_by_normalised_key_not_spelling(flows: FlowEdges) -> None:
    spelled: R = ("6", 5432, 5432, DestKind.SECURITY_GROUP, "sg-db")
    web_host: R = ("TCP", 443, 443, DestKind.CIDR_IPV4, "93.184.216.34/32")
    report = _check(_inventory([DB_5432, WEB_443]), _baseline([spelled, web_host]), flows)
    assert report.findings == []


# ------------------------------------------------------------------------------------------ outputs


@pytest.fixture(scope="module")
def drift_report(flows: FlowEdges) -> CheckReport:
    allow = _exception(SSH_OUT, 'a "quoted" <reason> & more', None)
    return _check(
        _inventory([WIDE_5432, ANY_443, SSH_OUT], extra_group=True),
        _baseline([DB_5432, DNS]),
        flows,
        Policy(allows=[allow], today=TODAY),
    )


def test_text_output_lists_findings_and_verdict(drift_report: CheckReport) -> None:
    text = render_text(drift_report)
    assert text.splitlines()[-1].startswith("DRIFT: ") and text.endswith("exit 1\n")
    for finding in drift_report.active():
        assert finding.id in text


def test_junit_one_testcase_per_group(drift_report: CheckReport) -> None:
    root = ET.fromstring(render_junit(drift_report))
    cases = root.findall("./testsuite/testcase")
    assert sorted(c.get("name", "").split()[0] for c in cases) == ["sg-app", "sg-db", "sg-new"]
    failed = {c.get("name", "").split()[0] for c in cases if c.find("failure") is not None}
    assert failed == {"sg-app", "sg-new"}
    assert root.get("tests") == "3" and root.get("failures") == "2"
    app = next(c for c in cases if c.get("name", "").startswith("sg-app"))
    assert 'a "quoted" <reason> & more' in (app.findtext("system-out") or "")


def test_sarif_results_fingerprints_and_suppressions(drift_report: CheckReport) -> None:
    log = json.loads(render_sarif(drift_report))
    run = log["runs"][0]
    assert log["version"] == "2.1.0"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [k.value for k in FindingKind]
    results = run["results"]
    assert len(results) == len(drift_report.findings)
    assert {r["partialFingerprints"]["sgadvisorFindingId/v1"] for r in results} == {
        f.id for f in drift_report.findings
    }
    levels = {r["ruleId"]: r["level"] for r in results}
    assert levels["rule-broader-than-baseline"] == "error" and levels["group-not-in-baseline"] == "warning"
    suppressed = [r for r in results if "suppressions" in r]
    assert len(suppressed) == 1 and suppressed[0]["suppressions"][0]["status"] == "accepted"


def test_markdown_is_bounded_and_escaped(drift_report: CheckReport) -> None:
    text = render_markdown(drift_report)
    assert text.startswith("## ❌ sgadvisor check: drift")
    assert "\\<reason\\>" in text
    many = drift_report.model_copy(update={"findings": drift_report.findings * 3000})
    assert len(many.findings) > 10_000
    bounded = render_markdown(many)
    assert len(bounded) <= 60_000 and "more findings" in bounded
    assert len(render_markdown(many, max_chars=5_000)) <= 5_000
