"""The six safety invariants of DESIGN §6, as properties over generated estates and flows.

Never wider and no breakage are checked point by point (every address, port and protocol that appears
anywhere, with its neighbours), with the plain ``permits`` test, not with the synthesis' own set algebra.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from sgadvisor.analysis.direction import classify_edges
from sgadvisor.analysis.flows import edges_to_flows, iter_flows
from sgadvisor.analysis.permits import Resolved, parse_addr, permits, resolve
from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.flowlogs.spans import find_holes, spans_by_interface
from sgadvisor.inventory.model import Inventory, SgRule
from sgadvisor.models import Recommendation
from sgadvisor.rules import DestKind, RuleKey
from tests.estates import WINDOW, Scenario, probe_points, scenarios


def _groups_of(inventory: Inventory, eni: str) -> tuple[str, ...]:
    """An ENI's groups: from the inventory, or for a former member those its history shows in the window."""
    if eni in inventory.interfaces:
        return inventory.interfaces[eni].group_ids
    return inventory.history[eni].groups_during(WINDOW.start, WINDOW.end)


def _current_keys(inventory: Inventory, eni: str) -> list[RuleKey]:
    return [rule.key() for gid in _groups_of(inventory, eni) if gid in inventory.groups
            for rule in inventory.groups[gid].egress]  # fmt: skip


def _proposed_keys(rec: Recommendation, inventory: Inventory, eni: str) -> list[RuleKey]:
    by_group = {g.group_id: [p.key() for p in g.proposed_egress] for g in rec.security_groups}
    return [key for gid in _groups_of(inventory, eni) if gid in by_group for key in by_group[gid]]


def _identity_addresses(inventory: Inventory, proto: int, addr: str) -> list[str]:
    """The addresses of the ENI identity that holds ``addr`` (all of them, of the family ICMP reaches),
    or just ``addr`` when no inventory ENI holds it: never wider is judged per ENI identity."""
    owner = inventory.owner_of_address.get(addr)
    if owner is None:
        return [addr]
    family = {1: 4, 58: 6}.get(proto)
    return [
        a for a in inventory.interfaces[owner].addresses if family is None or parse_addr(a).version == family
    ]


def _vanished_addresses(inventory: Inventory) -> set[str]:
    """Addresses only former ENIs held, all of whose groups are gone: never a rule."""
    held_now = set(inventory.owner_of_address)
    out = set()
    for eni, history in inventory.history.items():
        if eni in inventory.interfaces:
            continue
        groups = {g for state in history.states for g in state.group_ids or ()}
        if groups and not groups & set(inventory.groups):
            out |= {a for state in history.states for a in state.addresses or ()} - held_now
    return out


def _lives(scenario: Scenario) -> dict[str, tuple[int, int]]:
    """Every ENI's life in the window (DESIGN §5): cut to its creation and, for a former member, its
    deletion, by the history; the whole window without history."""
    inventory = scenario.inventory
    out = dict.fromkeys(inventory.interfaces, (WINDOW.start, WINDOW.end))
    for eni, history in inventory.history.items():
        start = WINDOW.start if history.created is None else max(WINDOW.start, history.created)
        end = WINDOW.end if eni in inventory.interfaces or history.deleted is None else history.deleted
        out[eni] = (start, min(end, WINDOW.end))
    return out


def _allows(
    keys: list[RuleKey],
    inventory: Inventory,
    proto: int,
    addr: str,
    low: int,
    high: int,
    then: frozenset[str] = frozenset(),
) -> bool:
    """Do the rules permit the point? ``then``: groups a former holder of ``addr`` had when it held it; a
    reference to one of them admitted that ENI then (DESIGN §6 "Identity over time")."""
    target = parse_addr(addr)
    cache = _RESOLVED.setdefault(id(inventory), {})
    for key in keys:
        if key not in cache:
            cache[key] = resolve(key, inventory)
        if permits(cache[key], proto, target, low, high):
            return True
        as_then = Resolved.of(key, (ipaddress.ip_network(addr),))
        if (
            key.kind is DestKind.SECURITY_GROUP
            and key.value in then
            and permits(as_then, proto, target, low, high)
        ):
            return True
    return False


def _held_by_formers(inventory: Inventory, addr: str) -> frozenset[str]:
    """The groups of the former ENIs that held ``addr`` (the estates' histories have one state each)."""
    return frozenset(
        g
        for eni, history in inventory.history.items()
        if eni not in inventory.interfaces
        for state in history.states
        if addr in (state.addresses or ())
        for g in state.group_ids or ()
    )


_RESOLVED: dict[int, dict[RuleKey, Resolved]] = {}


def _apply(rec: Recommendation, inventory: Inventory) -> Inventory:
    """The estate after applying the recommendation: each group's egress is its proposed rules."""
    groups = dict(inventory.groups)
    for report in rec.security_groups:
        rules: list[SgRule] = []
        for rule in report.proposed_egress:
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
                    rule.security_group_rule_id or f"sgr-new{len(rules)}",
                )
            )
        groups[report.group_id] = replace(groups[report.group_id], egress=tuple(rules))
    return replace(inventory, groups=groups)


def _flows(scenario: Scenario) -> list[tuple[str, int, str, int, int]]:
    classified = classify_edges(scenario.flows.edges)
    chosen = edges_to_flows(classified.filter(pl.col("class") != "reply"))
    return [(f.eni, f.proto, f.remote, f.port_low, f.port_high) for f in iter_flows(chosen)]


# Defaults, and the widening knobs: CIDR aggregation under a tolerance and a tiny rule budget.
OPTION_SETS = [AnalysisOptions(), AnalysisOptions(cidr_tolerance=8, rule_budget=2)]


@settings(max_examples=120)
@given(scenarios(), st.sampled_from(OPTION_SETS))
def test_never_wider_and_no_breakage(scenario: Scenario, options: AnalysisOptions) -> None:
    inventory = scenario.inventory
    _RESOLVED.clear()
    rec = build_recommendation(scenario.flows, inventory, options)
    points = probe_points(inventory, scenario.flows)
    for eni in inventory.interfaces:
        current = _current_keys(inventory, eni)
        proposed = _proposed_keys(rec, inventory, eni)
        for proto, addr, port in points:
            if _allows(proposed, inventory, proto, addr, port, port):
                # One identity: the current rules admit at least one of the holder's addresses.
                assert any(
                    _allows(current, inventory, proto, a, port, port)
                    for a in _identity_addresses(inventory, proto, addr)
                ), f"wider: {eni} may now reach {proto}/{addr}:{port}"
    vanished = _vanished_addresses(inventory)
    for eni, proto, remote, low, high in _flows(scenario):
        if remote in vanished:
            continue  # a destination that is gone with its groups: reported, never a rule
        current = _current_keys(inventory, eni)
        proposed = _proposed_keys(rec, inventory, eni)
        then = _held_by_formers(inventory, remote)
        for port in range(low, high + 1):
            if _allows(current, inventory, proto, remote, port, port, then):
                assert _allows(proposed, inventory, proto, remote, port, port, then), (
                    f"breaks: {eni} {proto}/{remote}:{port}"
                )


@settings(max_examples=80)
@given(scenarios())
def test_justified_and_diff_structure(scenario: Scenario) -> None:
    inventory = scenario.inventory
    rec = build_recommendation(scenario.flows, inventory, AnalysisOptions())
    for report in rec.security_groups:
        current_keys = [r.key() for r in report.current_egress]
        proposed_keys = [p.key() for p in report.proposed_egress]
        if report.coverage.status != "ok":
            assert proposed_keys == sorted(current_keys, key=lambda k: proposed_keys.index(k)), (
                report.group_id
            )
            assert all(c.action == "keep" for c in report.changes)
            continue
        for rule in report.proposed_egress:
            assert rule.evidence is not None and rule.evidence.records > 0, (report.group_id, rule)
        # Every current rule once as keep/remove/narrow; every new rule once as add.
        verdicts = [c for c in report.changes if c.action != "add"]
        assert [c.rule.key() for c in verdicts] == current_keys
        adds = [c for c in report.changes if c.action == "add"]
        assert sorted(map(str, (c.rule.key() for c in adds))) == sorted(
            str(k) for k in proposed_keys if k not in current_keys
        )
        kept = {c.rule.key() for c in verdicts if c.action == "keep"}
        assert kept == {k for k in proposed_keys if k in current_keys}
        for change in verdicts:
            if change.action == "narrow":
                assert change.replaced_by
                for index in change.replaced_by:
                    target = proposed_keys[index]
                    add = next(c for c in adds if c.rule.key() == target)
                    assert add.replaces and (change.security_group_rule_id in add.replaces)


@settings(max_examples=80)
@given(scenarios(), st.sampled_from(OPTION_SETS))
def test_fixed_point(scenario: Scenario, options: AnalysisOptions) -> None:
    first = build_recommendation(scenario.flows, scenario.inventory, options)
    applied = _apply(first, scenario.inventory)
    second = build_recommendation(scenario.flows, applied, options)
    for before, after in zip(first.security_groups, second.security_groups, strict=True):
        assert [p.key() for p in after.proposed_egress] == [p.key() for p in before.proposed_egress], (
            before.group_id
        )
        assert {c.action for c in after.changes} <= {"keep"}, (before.group_id, after.changes)


@settings(max_examples=80)
@given(scenarios())
def test_churn_no_rule_to_a_vanished_address_and_each_reported(scenario: Scenario) -> None:
    """On churning estates (replaced instances, tasks, a decommissioned tier): no proposed rule names an
    address whose ENI and groups are gone, and each such destination that initiated traffic reached is
    in `vanished_destinations`."""
    inventory = scenario.inventory
    rec = build_recommendation(scenario.flows, inventory, AnalysisOptions())
    vanished = _vanished_addresses(inventory)
    for report in rec.security_groups:
        current = {r.key() for r in report.current_egress}
        for rule in report.proposed_egress:
            if rule.key() in current:
                continue  # a kept current rule is not a proposal to reach it
            cidr = rule.cidr_ipv4 or rule.cidr_ipv6
            assert cidr is None or cidr.split("/")[0] not in vanished or not cidr.endswith(("/32", "/128")), (
                report.group_id,
                rule,
            )
    reported = {v.address for v in rec.vanished_destinations}
    assert reported <= vanished
    formers_in_scope = {eni for eni in inventory.history if eni not in inventory.interfaces}
    for eni, _, remote, _, _ in _flows(scenario):
        known = eni in inventory.interfaces or (
            eni in formers_in_scope and set(_groups_of(inventory, eni)) & set(inventory.groups)
        )
        if remote in vanished and known and _initiated_to(rec, eni, remote):
            assert remote in reported, (eni, remote)


def _initiated_to(rec: Recommendation, eni: str, remote: str) -> bool:
    """Did the analysis take a flow of ``eni`` to ``remote`` as initiated traffic (in a rule's evidence,
    not permitted now, or vanished)? Replies and flows of infrastructure never get here."""
    for report in rec.security_groups:
        for rule in report.proposed_egress:
            if rule.evidence and eni in rule.evidence.enis and remote in rule.evidence.destinations:
                return True
    return any(v.address == remote and eni in v.sources for v in rec.vanished_destinations)


@settings(max_examples=40)
@given(scenarios())
def test_deterministic_and_accounting(scenario: Scenario) -> None:
    one = build_recommendation(scenario.flows, scenario.inventory, AnalysisOptions()).to_json()
    shuffled = replace(scenario.flows, edges=scenario.flows.edges.reverse())
    two = build_recommendation(shuffled, scenario.inventory, AnalysisOptions()).to_json()
    assert one == two
    rec = Recommendation.model_validate_json(one)
    assert rec.input_accounting.balanced


@settings(max_examples=80)
@given(scenarios())
def test_silence_is_not_evidence(scenario: Scenario) -> None:
    """A group with a member (current or former) whose records leave a stretch of its life in the window
    longer than --max-gap is not `ok`, names the hole, and loses no rule; a group whose members all
    deliver throughout their lives, together over at least --min-window, is judged."""
    options = AnalysisOptions()
    inventory = scenario.inventory
    rec = build_recommendation(scenario.flows, inventory, options)
    spans = spans_by_interface(scenario.flows.spans)
    lives = _lives(scenario)
    for report in rec.security_groups:
        members = inventory.members.get(report.group_id, ())
        formers = [eni for eni in sorted(inventory.history) if eni not in inventory.interfaces
                   and report.group_id in _groups_of(inventory, eni)]  # fmt: skip
        if not members:
            assert report.coverage.status == "none" and report.coverage.reasons == ["unattached"]
            continue
        judged = [*members, *formers]
        assert report.coverage.enis == len(judged), report.group_id
        lived, reach = 0, WINDOW.start  # the union of their lives (each inside the window)
        for lo, hi in sorted(lives[eni] for eni in judged):
            lived += max(0, hi - max(lo, reach))
            reach = max(reach, hi)
        if lived < options.min_window:
            assert report.coverage.status == "none", (report.group_id, report.coverage.reasons)
            continue
        holed = [eni for eni in judged if find_holes(spans.get(eni, []), *lives[eni], options.max_gap)]
        if holed:
            # A member with no record at all is no evidence; the group is none when no member has one.
            with_records = any(spans.get(eni) for eni in judged)
            assert report.coverage.status == ("partial" if with_records else "none"), report.group_id
            said = (f"{eni}: no record of it from" if spans.get(eni) else f"{eni}: no flow-log record of it"
                    for eni in holed)  # fmt: skip
            assert all(any(r.startswith(prefix) for r in report.coverage.reasons) for prefix in said)
            assert all(c.action in ("keep", "add") for c in report.changes)
            assert {c.action for c in report.changes} <= {"keep"}
        else:
            # Former members' flows are attributed to the groups they had: nothing else keeps it whole.
            assert report.coverage.status == "ok", (report.group_id, report.coverage.reasons)
