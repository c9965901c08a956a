"""Coverage judged over lives, with history (issue 17, points 2 and 4; DESIGN §5 and §6).

An ENI's life in the window is the window cut to its creation and deletion where the ENI history knows
them; holes are looked for within the life only. A group's members for coverage are its current members
and the former members the history shows holding it: a replaced instance or an ECS task with records over
its whole life is evidence for its life and never makes the group `none` or `partial` for the rest of the
window. An ENI without history stays unattributed, and its traffic bears only on groups of its VPC. A former
member's flows are attributed to the groups it had then (tests/test_attribution_at_time.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.flowlogs.ingest import read_flows
from sgadvisor.inventory.history import EniHistories, EniHistory, EniState
from sgadvisor.inventory.model import FlowLogConfig, Interface, Inventory, SecurityGroup, SgRule, Vpc
from sgadvisor.models import GroupReport, Recommendation
from sgadvisor.rules import DestKind
from tests.conftest import DEFAULT_HEADER, default_line, nodata_lines, write_lines

T0 = 1_793_491_200  # 2026-11-01T00:00:00Z
DAY = 86400
END = T0 + 8 * DAY
SG = "sg-0app"
DB = "10.0.2.15"
APP = "eni-0app1"
TASK = "eni-0task"
OLD = "eni-0old"
NEW = "eni-0new"
STRANGER = "eni-0stranger"
ADDRESS = {APP: "10.0.1.10", TASK: "10.0.1.50", OLD: "10.0.1.20", NEW: "10.0.1.21"}


def _rules() -> tuple[SgRule, ...]:
    return (
        SgRule.build(SG, True, "-1", None, None, DestKind.CIDR_IPV4, "0.0.0.0/0", None, "sgr-all"),
        SgRule.build(SG, True, "tcp", 5432, 5432, DestKind.CIDR_IPV4, "10.0.2.0/24", None, "sgr-db"),
    )


def _state(eni: str, start: int) -> EniState:
    return EniState(start, group_ids=(SG,), addresses=(ADDRESS[eni],), vpc_id="vpc-1", subnet_id="subnet-1")


def _history(eni: str, created: int | None, deleted: int | None) -> EniHistory:
    return EniHistory(eni, created, deleted, (_state(eni, T0 - 30 * DAY if created is None else created),))


def _inventory(current: list[str], histories: Sequence[EniHistory] = ()) -> Inventory:
    interfaces = {
        eni: Interface(eni, (ADDRESS[eni],), (SG,), subnet_id="subnet-1", vpc_id="vpc-1") for eni in current
    }
    return Inventory(
        groups={SG: SecurityGroup(SG, "app", "vpc-1", egress=_rules())},
        interfaces=interfaces,
        flow_logs=(FlowLogConfig("fl-01", "vpc-1", "ALL", None, "s3", None, None, T0 - 90 * DAY),),
        has_rule_ids=True,
        vpcs={"vpc-1": Vpc("vpc-1", ("10.0.0.0/16",)), "vpc-2": Vpc("vpc-2", ("10.1.0.0/16",))},
        history=EniHistories({h.eni_id: h for h in histories}),
    )


def _delivered(eni: str, start: int, end: int, *, silent: tuple[int, int] | None = None,
               extra: Sequence[str] = ()) -> list[str]:  # fmt: skip
    """An ENI logged over [start, end) as AWS writes it: a query to the database every six hours, NODATA
    in every other 10-minute interval; ``silent`` drops every record starting in that stretch."""
    busy = list(range(start, end, 6 * 3600))
    lines = [default_line(ADDRESS.get(eni, "10.0.1.99"), DB, 40000 + i % 1000, 5432, eni=eni, start=t)
             for i, t in enumerate(busy)]  # fmt: skip
    lines += nodata_lines(eni, start, end, busy=busy)
    lines += extra
    if silent:
        lines = [li for li in lines if not silent[0] <= int(li.split()[10]) < silent[1]]
    return lines


def _recommend(tmp_path: Path, inventory: Inventory, lines: list[str]) -> Recommendation:
    path = write_lines(tmp_path / "flows.log", lines, header=DEFAULT_HEADER)
    addresses = {**{eni: (a,) for eni, a in ADDRESS.items()}, **inventory.addresses}
    flows = read_flows([path], addresses=addresses)
    assert flows.window is not None and (flows.window.start, flows.window.end) == (T0, END)
    return build_recommendation(flows, inventory, AnalysisOptions())


def _group(rec: Recommendation) -> GroupReport:
    return next(g for g in rec.security_groups if g.group_id == SG)


def _tightened(group: GroupReport) -> bool:
    """The all-traffic rule goes; what is proposed is tcp 5432 to the database only."""
    wide = next(c for c in group.changes if c.security_group_rule_id == "sgr-all")
    proposed = {(p.ip_protocol, p.from_port, p.cidr_ipv4) for p in group.proposed_egress}
    return wide.action in ("remove", "narrow") and proposed <= {
        ("tcp", 5432, f"{DB}/32"),
        ("tcp", 5432, "10.0.2.0/24"),
    }


def test_an_ecs_task_with_records_over_its_life_is_evidence_and_leaves_the_group_ok(tmp_path: Path) -> None:
    """Created and deleted inside the window, logged (NODATA included) over its life: before, its traffic
    was unattributed and made the group partial; now it is a former member with evidence."""
    task = _history(TASK, T0 + 2 * DAY, T0 + 3 * DAY)
    inventory = _inventory([APP], [task])
    lines = _delivered(APP, T0, END) + _delivered(TASK, T0 + 2 * DAY, T0 + 3 * DAY)
    group = _group(rec := _recommend(tmp_path, inventory, lines))
    assert group.coverage.status == "ok", group.coverage.reasons
    assert (group.coverage.enis, group.coverage.enis_with_evidence) == (2, 2)
    assert group.coverage.reasons == []
    assert _tightened(group)
    # Its flows are attributed to the group it had then: it is not unattributed, and it is evidence.
    assert rec.unattributed == []
    (rule,) = [p for p in group.proposed_egress if p.evidence is not None]
    assert rule.evidence is not None and TASK in rule.evidence.enis


def test_a_replaced_instance_old_and_new_eni_each_logged_over_its_life_is_ok(tmp_path: Path) -> None:
    """The old ENI is deleted mid-window and the new one created then: neither is holed for the time it
    did not exist."""
    swap = T0 + 4 * DAY
    inventory = _inventory([NEW], [_history(OLD, None, swap), _history(NEW, swap, None)])
    lines = _delivered(OLD, T0, swap) + _delivered(NEW, swap, END)
    group = _group(_recommend(tmp_path, inventory, lines))
    assert group.coverage.status == "ok", group.coverage.reasons
    assert (group.coverage.enis, group.coverage.enis_with_evidence) == (2, 2)
    assert _tightened(group)


def test_a_former_member_with_a_hole_in_its_life_makes_the_group_partial_naming_it(tmp_path: Path) -> None:
    task = _history(TASK, T0 + 2 * DAY, T0 + 3 * DAY)
    inventory = _inventory([APP], [task])
    silent = (T0 + 2 * DAY + 8 * 3600, T0 + 2 * DAY + 11 * 3600)
    lines = _delivered(APP, T0, END) + _delivered(TASK, T0 + 2 * DAY, T0 + 3 * DAY, silent=silent)
    group = _group(_recommend(tmp_path, inventory, lines))
    assert group.coverage.status == "partial"
    assert (group.coverage.enis, group.coverage.enis_with_evidence) == (2, 1)
    (hole,) = group.coverage.reasons
    assert hole.startswith(f"{TASK}: no record of it from 2026-11-03T08:") and "(flow log fl-01)" in hole
    assert {c.action for c in group.changes} == {"keep"}


def test_a_former_member_without_records_is_no_evidence_but_not_none(tmp_path: Path) -> None:
    inventory = _inventory([APP], [_history(TASK, T0 + 2 * DAY, T0 + 3 * DAY)])
    group = _group(_recommend(tmp_path, inventory, _delivered(APP, T0, END)))
    assert group.coverage.status == "partial"
    assert group.coverage.reasons == [f"{TASK}: no flow-log record of it in the window (flow log fl-01)"]


def test_traffic_only_a_former_member_needed_gets_its_rule(tmp_path: Path) -> None:
    """No breakage for former members: the task went to the internet on 443, which only the wide rule
    permits; its flow is attributed to the group it had then, so the group keeps a rule for it."""
    inventory = _inventory([APP], [_history(TASK, T0 + 2 * DAY, T0 + 3 * DAY)])
    out = default_line(ADDRESS[TASK], "198.51.100.7", 41000, 443, eni=TASK, start=T0 + 2 * DAY + 600)
    lines = _delivered(APP, T0, END) + _delivered(TASK, T0 + 2 * DAY, T0 + 3 * DAY, extra=[out])
    group = _group(_recommend(tmp_path, inventory, lines))
    assert group.coverage.status == "ok", group.coverage.reasons
    internet = [p for p in group.proposed_egress if p.from_port == 443]
    assert [(p.evidence.enis if p.evidence else None) for p in internet] == [[TASK]]
    assert next(c for c in group.changes if c.security_group_rule_id == "sgr-all").action == "narrow"


def test_an_unknown_eni_of_another_vpc_does_not_bear_on_this_vpcs_groups(tmp_path: Path) -> None:
    def stranger(address: str) -> list[str]:
        """Queries to five databases: its own address is the one common to its records."""
        return [default_line(address, f"10.0.2.{15 + i}", 40000 + i, 5432, eni=STRANGER, start=T0 + i * 3600)
                for i in range(5)]  # fmt: skip

    inventory = _inventory([APP])
    elsewhere = _recommend(tmp_path, inventory, _delivered(APP, T0, END) + stranger("10.1.0.7"))
    assert _group(elsewhere).coverage.status == "ok", _group(elsewhere).coverage.reasons
    assert [u.interface_id for u in elsewhere.unattributed] == [STRANGER]
    # The same ENI with an address of this VPC may have been in the group: partial, as before.
    here = _recommend(tmp_path, inventory, _delivered(APP, T0, END) + stranger("10.0.1.77"))
    assert _group(here).coverage.status == "partial"
    assert any("unknown ENI" in r for r in _group(here).coverage.reasons)


def test_history_that_does_not_reach_back_over_the_window_is_a_warning(tmp_path: Path) -> None:
    late = EniHistory(APP, None, None, (_state(APP, T0 + DAY),))
    rec = _recommend(tmp_path, _inventory([APP], [late]), _delivered(APP, T0, END))
    assert any(
        w.startswith(f"{APP}: its groups are unknown from 2026-11-01T00:00:00Z")
        and "does not reach back over the window's start" in w
        for w in rec.warnings
    )


SUBNET_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status subnet-id"
)


def test_an_unknown_eni_of_another_subnet_does_not_bear_on_groups_without_members_there(
    tmp_path: Path,
) -> None:
    """The `subnet-id` field says where the unknown ENI was: its traffic bears only on groups with a
    member (current or former) in that subnet (DESIGN §6 "Identity over time")."""

    def run(subnet: str) -> GroupReport:
        lines = [f"{line} subnet-1" for line in _delivered(APP, T0, END)]
        lines += [
            f"3 123456789012 {STRANGER} 10.0.1.77 10.0.2.{15 + i} {40000 + i} 5432 6 10 840 "
            f"{T0 + i * 3600} {T0 + i * 3600 + 60} ACCEPT OK {subnet}"
            for i in range(5)
        ]
        path = write_lines(tmp_path / subnet / "flows.log", [_v3(li) for li in lines], header=SUBNET_HEADER)
        inventory = _inventory([APP])
        flows = read_flows([path], addresses=inventory.addresses)
        return _group(build_recommendation(flows, inventory, AnalysisOptions()))

    elsewhere = run("subnet-2")
    assert elsewhere.coverage.status == "ok", elsewhere.coverage.reasons
    here = run("subnet-1")
    assert here.coverage.status == "partial"
    assert any("unknown ENI" in r for r in here.coverage.reasons)


def _v3(line: str) -> str:
    """A default-format line (version 2) as a version-3 record with the same fields."""
    return "3" + line[1:] if line.startswith("2 ") else line
