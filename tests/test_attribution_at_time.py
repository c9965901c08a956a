"""Attribution at the time of a flow, and identity destinations that survive replacement (issue 17,
points 2 and 3; DESIGN §6 "Destinations" and "Identity over time").

A flow belongs to the groups its ENI had when it happened; its destination is the ENI that held the
address then, with that ENI's groups then. A destination ENI, current or former, becomes a reference to
its group when the reference is never wider per ENI identity; a destination whose ENI and groups are gone
is never a rule but a `vanished_destinations` entry; an in-VPC /32 only when no group qualifies, labelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.flowlogs.ingest import read_flows
from sgadvisor.inventory.history import EniHistories, EniHistory, EniState
from sgadvisor.inventory.model import FlowLogConfig, Interface, Inventory, SecurityGroup, SgRule, Vpc
from sgadvisor.models import GroupReport, ProposedRule, Recommendation
from sgadvisor.rules import DestKind
from tests.conftest import DEFAULT_HEADER, default_line, nodata_lines, write_lines

T0 = 1_793_491_200  # 2026-11-01T00:00:00Z
DAY = 86400
END = T0 + 8 * DAY
MID = T0 + 4 * DAY
APP, DB, OTHER, GONE = "sg-0app", "sg-0db", "sg-0other", "sg-0gone"
WEB = "eni-0web"
DB_OLD, DB_NEW, DB_TWO = "eni-0dbold", "eni-0dbnew", "eni-0dbtwo"
LEGACY, BATCH = "eni-0legacy", "eni-0batch"
ADDRESS = {
    BATCH: "10.0.1.40",
    WEB: "10.0.1.10",
    DB_OLD: "10.0.2.15",
    DB_NEW: "10.0.2.30",
    DB_TWO: "10.0.2.31",
    LEGACY: "10.0.3.9",
}
V6 = {DB_NEW: "2001:db8::30", DB_TWO: "2001:db8::31"}


def _rule(gid: str, rid: str, proto: str, port: int | None, cidr: str) -> SgRule:
    return SgRule.build(gid, True, proto, port, port, DestKind.CIDR_IPV4, cidr, None, rid)


def _itf(eni: str, groups: tuple[str, ...], dual: bool = False) -> Interface:
    addresses = (ADDRESS[eni], V6[eni]) if dual else (ADDRESS[eni],)
    return Interface(eni, addresses, groups, subnet_id="subnet-1", vpc_id="vpc-1")


def _history(
    eni: str, created: int | None, deleted: int | None, *states: tuple[int, tuple[str, ...]]
) -> EniHistory:
    return EniHistory(
        eni,
        created,
        deleted,
        tuple(
            EniState(t, group_ids=g, addresses=(ADDRESS[eni],), vpc_id="vpc-1", subnet_id="subnet-1")
            for t, g in states
        ),
    )


def _inventory(
    interfaces: Sequence[Interface],
    histories: Sequence[EniHistory] = (),
    app_rules: Sequence[SgRule] = (),
) -> Inventory:
    app_rules = tuple(app_rules) or (_rule(APP, "sgr-all", "-1", None, "0.0.0.0/0"),)
    groups = {
        APP: SecurityGroup(APP, "app", "vpc-1", egress=app_rules),
        DB: SecurityGroup(DB, "db", "vpc-1", egress=()),
        OTHER: SecurityGroup(
            OTHER, "other", "vpc-1", egress=(_rule(OTHER, "sgr-o", "-1", None, "0.0.0.0/0"),)
        ),
    }
    return Inventory(
        groups=groups,
        interfaces={i.eni_id: i for i in interfaces},
        flow_logs=(FlowLogConfig("fl-01", "vpc-1", "ALL", None, "s3", None, None, T0 - 90 * DAY),),
        has_rule_ids=True,
        vpcs={"vpc-1": Vpc("vpc-1", ("10.0.0.0/16",))},
        history=EniHistories({h.eni_id: h for h in histories}),
    )


def _logged(eni: str, start: int, end: int, talks: Sequence[tuple[str, int, int]] = ()) -> list[str]:
    """An ENI logged over [start, end): ``talks`` are (destination, port, time) it initiated; NODATA
    fills every other 10-minute interval, as AWS writes it under an active flow log."""
    lines = [default_line(ADDRESS[eni], dst, 41000 + i, port, eni=eni, start=t)
             for i, (dst, port, t) in enumerate(talks)]  # fmt: skip
    return lines + nodata_lines(eni, start, end, busy=[t for _, _, t in talks])


def _recommend(tmp_path: Path, inventory: Inventory, lines: list[str]) -> Recommendation:
    path = write_lines(tmp_path / "flows.log", lines, header=DEFAULT_HEADER)
    addresses = {eni: (a,) for eni, a in ADDRESS.items()}
    flows = read_flows([path], addresses=addresses)
    return build_recommendation(flows, inventory, AnalysisOptions())


def _group(rec: Recommendation, gid: str = APP) -> GroupReport:
    return next(g for g in rec.security_groups if g.group_id == gid)


def _targets(group: GroupReport) -> list[tuple[str, int | None, str | None]]:
    def dest(p: ProposedRule) -> str | None:
        return p.referenced_security_group_id or p.cidr_ipv4 or p.cidr_ipv6 or p.prefix_list_id

    return sorted((p.ip_protocol, p.from_port, dest(p)) for p in group.proposed_egress)


def _every_six_hours(dst: str, start: int, end: int) -> list[tuple[str, int, int]]:
    return [(dst, 5432, t) for t in range(start + 3600, end, 6 * 3600)]


def test_a_replaced_destination_becomes_one_reference_and_no_rule_to_its_old_address(tmp_path: Path) -> None:
    """The database instance is replaced mid-window (new address): the app's flows to the old and to the
    new address both reach a db-group ENI at the time, so one reference to the db group carries them."""
    inventory = _inventory(
        [_itf(WEB, (APP,)), _itf(DB_NEW, (DB,))],
        [_history(DB_OLD, None, MID, (T0 - DAY, (DB,))), _history(DB_NEW, MID, None, (MID, (DB,)))],
    )
    talks = _every_six_hours(ADDRESS[DB_OLD], T0, MID) + _every_six_hours(ADDRESS[DB_NEW], MID, END)
    lines = _logged(WEB, T0, END, talks) + _logged(DB_OLD, T0, MID) + _logged(DB_NEW, MID, END)
    rec = _recommend(tmp_path, inventory, lines)
    app = _group(rec)
    assert app.coverage.status == "ok", app.coverage.reasons
    assert _targets(app) == [("tcp", 5432, DB)]
    (rule,) = app.proposed_egress
    assert rule.evidence is not None
    assert rule.evidence.destinations == [ADDRESS[DB_OLD], ADDRESS[DB_NEW]]
    assert rule.evidence.why[0] == "admits 1 current member, 1 observed (and 1 former member observed)"
    assert rec.vanished_destinations == []


def test_a_destination_whose_eni_and_group_are_gone_is_reported_never_a_rule(tmp_path: Path) -> None:
    """A legacy host (its group deleted since) received a few flows early in the window."""
    inventory = _inventory(
        [_itf(WEB, (APP,)), _itf(DB_NEW, (DB,))],
        [_history(LEGACY, None, T0 + DAY, (T0 - DAY, (GONE,)))],
    )
    talks = [(ADDRESS[LEGACY], 8080, T0 + 3600), (ADDRESS[LEGACY], 8080, T0 + 7200)]
    talks += _every_six_hours(ADDRESS[DB_NEW], T0, END)
    lines = _logged(WEB, T0, END, talks) + _logged(DB_NEW, T0, END) + _logged(LEGACY, T0, T0 + DAY)
    rec = _recommend(tmp_path, inventory, lines)
    assert _targets(_group(rec)) == [("tcp", 5432, DB)]
    (gone,) = rec.vanished_destinations
    assert (gone.address, gone.former_eni, gone.former_groups) == (ADDRESS[LEGACY], LEGACY, [GONE])
    assert (gone.records, gone.sources, gone.traffic) == (2, [WEB], ["tcp 8080"])
    assert gone.last_seen is not None and gone.last_seen.startswith("2026-11-01T02:")


def test_a_reused_address_is_named_by_the_identity_that_survives(tmp_path: Path) -> None:
    """The legacy host held 10.0.3.9 until day 1 (its group is gone); a db ENI holds it from day 2. The
    flows to it are one aggregate over both holders: the db group, the identity that still exists,
    carries them as a reference, and the address itself never becomes a rule."""
    reused = ADDRESS[LEGACY]
    later = EniHistory(
        DB_TWO,
        T0 + 2 * DAY,
        None,
        (EniState(T0 + 2 * DAY, group_ids=(DB,), addresses=(reused,), vpc_id="vpc-1"),),
    )
    inventory = _inventory(
        [_itf(WEB, (APP,)), Interface(DB_TWO, (reused,), (DB,), vpc_id="vpc-1")],
        [_history(LEGACY, None, T0 + DAY, (T0 - DAY, (GONE,))), later],
    )
    talks = [(reused, 5432, T0 + 3600), *_every_six_hours(reused, T0 + 2 * DAY, END)]
    lines = _logged(WEB, T0, END, talks) + _logged(LEGACY, T0, T0 + DAY)
    rec = _recommend(tmp_path, inventory, lines + nodata_lines(DB_TWO, T0 + 2 * DAY, END))
    assert _targets(_group(rec)) == [("tcp", 5432, DB)]
    assert rec.vanished_destinations == []


def test_a_dual_stack_peer_group_is_one_reference_judged_per_identity(tmp_path: Path) -> None:
    """The app may reach the db subnet's IPv4 addresses on 5432; the db members are dual-stack. A
    reference also admits their IPv6 addresses, and is still never wider per ENI identity."""
    rules = [_rule(APP, "sgr-db", "tcp", 5432, "10.0.2.0/24"), _rule(APP, "sgr-all", "-1", None, "0.0.0.0/0")]
    inventory = _inventory([_itf(WEB, (APP,)), _itf(DB_NEW, (DB,), dual=True), _itf(DB_TWO, (DB,), dual=True)],
                           app_rules=[rules[0]])  # fmt: skip
    talks = _every_six_hours(ADDRESS[DB_NEW], T0, END) + _every_six_hours(ADDRESS[DB_TWO], T0 + 1800, END)
    lines = _logged(WEB, T0, END, talks) + _logged(DB_NEW, T0, END) + _logged(DB_TWO, T0, END)
    app = _group(_recommend(tmp_path, inventory, lines))
    assert app.coverage.status == "ok", app.coverage.reasons
    assert _targets(app) == [("tcp", 5432, DB)]
    (rule,) = app.proposed_egress
    assert rule.evidence is not None
    assert rule.evidence.why[0] == "admits 2 current members, 2 observed; also their IPv6 addresses"
    assert next(c for c in app.changes if c.security_group_rule_id == "sgr-db").action == "narrow"


def test_an_address_rule_only_when_no_group_qualifies_and_labelled_so(tmp_path: Path) -> None:
    """The app may reach one db member only: a reference to the db group would admit the other too."""
    inventory = _inventory(
        [_itf(WEB, (APP,)), _itf(DB_NEW, (DB,)), _itf(DB_TWO, (DB,))],
        app_rules=[
            _rule(APP, "sgr-one", "tcp", 5432, "10.0.2.30/32"),
            _rule(APP, "sgr-web", "tcp", 443, "0.0.0.0/0"),
        ],
    )
    lines = _logged(WEB, T0, END, _every_six_hours(ADDRESS[DB_NEW], T0, END))
    lines += _logged(DB_NEW, T0, END) + _logged(DB_TWO, T0, END)
    app = _group(_recommend(tmp_path, inventory, lines))
    assert _targets(app) == [("tcp", 5432, "10.0.2.30/32")]
    (rule,) = app.proposed_egress
    assert rule.evidence is not None and rule.evidence.why[0].startswith("address rule: no group of the ENI")


def test_a_flow_belongs_to_the_groups_its_eni_had_when_it_happened(tmp_path: Path) -> None:
    """The web ENI moved from the other group to the app group on day 4. What it sent before belongs to
    the other group; the app group gets only what it sent after."""
    inventory = _inventory(
        [_itf(WEB, (APP,)), _itf(DB_NEW, (DB,)), _itf(BATCH, (OTHER,))],
        [_history(WEB, None, None, (T0 - DAY, (OTHER,)), (MID, (APP,)))],
    )
    talks = [("198.51.100.7", 443, T0 + 3600 * k) for k in (1, 7, 13)]
    talks += _every_six_hours(ADDRESS[DB_NEW], MID, END)
    lines = _logged(WEB, T0, END, talks) + _logged(DB_NEW, T0, END) + _logged(BATCH, T0, END)
    rec = _recommend(tmp_path, inventory, lines)
    assert _targets(_group(rec)) == [("tcp", 5432, DB)]
    other = _group(rec, OTHER)
    assert other.coverage.status == "ok", other.coverage.reasons
    assert _targets(other) == [("tcp", 443, "0.0.0.0/0")]  # port-scoped: --internet port
    assert other.proposed_egress[0].evidence is not None
    assert other.proposed_egress[0].evidence.enis == [WEB]
