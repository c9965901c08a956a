"""The whole offline analysis: flow edges + inventory → Recommendation (recommendation.json).

A pure function over typed values: no AWS, no files. Stages: classify edges (direction), select the
flows, place them on groups, synthesise least-privilege rules, judge coverage, diff against the current
rules, and collect the evidence the reviewer needs beside each decision.
"""

from __future__ import annotations

import gc
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import polars as pl

from sgadvisor import __version__
from sgadvisor.accounting import InputAccounting
from sgadvisor.analysis.attribution import Attribution
from sgadvisor.analysis.awsranges import ServiceRanges
from sgadvisor.analysis.budget import DEFAULT_BUDGET, aggregate, enforce_budget
from sgadvisor.analysis.direction import REASONS, Confidence, EphemeralRanges, classify_edges
from sgadvisor.analysis.flows import Flow, edges_to_flows, iter_flows, protocol_name
from sgadvisor.analysis.graph import FlowEdge, busiest_by_group
from sgadvisor.analysis.internet import InternetOptions, dns_section, names_needed
from sgadvisor.analysis.permits import Addr, Resolved, parse_addr, permits
from sgadvisor.analysis.synthesis import (
    Placed,
    RuleBook,
    host_key,
    key_order,
    place_flows,
    synthesize_group,
)
from sgadvisor.analysis.unlogged import unlogged_destination
from sgadvisor.config import RuleException
from sgadvisor.flowlogs.edges import FlowEdges, Window
from sgadvisor.flowlogs.spans import Hole, find_holes, spans_by_interface
from sgadvisor.inventory.history_files import window_warnings
from sgadvisor.inventory.model import FlowLogConfig, Interface, Inventory, SgRule
from sgadvisor.models import (
    Change,
    CollectionOut,
    CoverageOut,
    EdgeOut,
    Evidence,
    GroupReport,
    InfrastructureEni,
    NotPermitted,
    ProposedRule,
    Recommendation,
    Rejected,
    Tool,
    Unattributed,
    VanishedDestination,
    WindowOut,
    WouldBeBlocked,
)
from sgadvisor.rules import Rule, RuleKey
from sgadvisor.timeparse import format_duration, format_instant
from sgadvisor.trusted import trusted

EDGES_PER_GROUP = 200
# --max-gap default. AWS aggregates records over intervals of at most 10 minutes and writes NODATA for an
# interval without traffic while the log is active (VPC Flow Logs user guide, "Flow log records" and
# "Aggregation interval"), so between two records of a healthy interface lie at most about two intervals
# (one written early in its interval, the next late in the one after); the third absorbs the documented
# skew of up to 60 s in start/end. A longer silence is a hole, not evidence.
DEFAULT_MAX_GAP = 30 * 60
SKIPDATA_TOLERANCE = 0.01
# Below this much evidence, monthly (and rarer) traffic may simply not be in the window: a warning says so.
RARE_TRAFFIC_WINDOW = 30 * 86400
OUT_OF_SCOPE = "out of scope"


@dataclass(frozen=True)
class Scope:
    """Which groups are analysed (DESIGN §3): by VPC, group, ENI or group tag; empty means everything."""

    vpcs: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    enis: frozenset[str] = frozenset()
    tags: frozenset[tuple[str, str]] = frozenset()  # (key, value): every one must be on the group

    def groups_in(self, inventory: Inventory) -> list[str]:
        chosen = []
        for gid, sg in sorted(inventory.groups.items()):
            if self.vpcs and sg.vpc_id not in self.vpcs:
                continue
            if self.groups and gid not in self.groups:
                continue
            if self.enis and not (set(inventory.members.get(gid, ())) & self.enis):
                continue
            if any(sg.tags.get(key) != value for key, value in self.tags):
                continue
            chosen.append(gid)
        return chosen


@dataclass(frozen=True)
class AnalysisOptions:
    min_window: int = 7 * 86400
    min_records: int = 1
    min_confidence: Confidence = Confidence.LOW
    max_unattributed: int = 0
    ephemeral: EphemeralRanges = field(default_factory=EphemeralRanges)
    scope: Scope = field(default_factory=Scope)
    pins: tuple[RuleException, ...] = ()
    cidr_tolerance: int | None = None  # aggregate CIDRs admitting at most this many unobserved addresses
    ip_ranges: ServiceRanges | None = None  # AWS service labels for destinations (ip-ranges.json)
    rule_budget: int = DEFAULT_BUDGET
    max_gap: int = DEFAULT_MAX_GAP  # the longest stretch of an ENI's life without a record of it
    internet: InternetOptions = field(default_factory=InternetOptions)  # --internet, [[fixed]], --dns-logs


def build_recommendation(flows: FlowEdges, inventory: Inventory, options: AnalysisOptions) -> Recommendation:
    with _cycle_collection_paused():
        return _build(flows, inventory, options)


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """The analysis holds a few objects per flow for its whole run and makes millions of short-lived ones,
    none in reference cycles (reference counting frees them). CPython's cycle collector would walk every
    live object again each time enough new ones accumulate: a quarter of the run at 200,000 edges, for
    nothing to collect. It is paused for the run (cycles made meanwhile elsewhere are collected after)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(flows: FlowEdges, inventory: Inventory, options: AnalysisOptions) -> Recommendation:
    window = flows.window or Window(0, 0)
    in_scope = options.scope.groups_in(inventory)
    scope_enis = {eni for gid in in_scope for eni in inventory.members.get(gid, ())}
    warnings = list(inventory.warnings) + list(flows.warnings)
    warnings += window_warnings(inventory.history, window.start, window.end)
    if in_scope and max(window.seconds, 0) < options.min_window:
        warnings.append(
            f"the window ({_days(max(window.seconds, 0))}) is shorter than --min-window "
            f"{_days(options.min_window)}: no group can be judged ok, none gets a removal or narrow"
        )

    edges = flows.edges
    known = set(inventory.interfaces)
    infra = {eni for eni, itf in inventory.interfaces.items() if itf.is_infrastructure}
    accounting = _scope_accounting(flows.accounting, edges, known, infra, scope_enis)
    attribution = Attribution(inventory, window.start, window.end)
    analysed, chosen, below = select_flows(flows, inventory, options, attribution)
    if options.internet.dns is not None:
        options = replace(
            options, internet=replace(options.internet, forwarders=_dns_forwarders(edges, inventory))
        )

    book = RuleBook(inventory, attribution)
    # An ENI the inventory lacks but the history knows (with its groups in the window) is a former member
    # of those groups (DESIGN §6 "Identity over time"): its flows are attributed to the groups it had
    # then, and it is judged in their coverage. The others stay unattributed.
    unattributed, strangers = _unattributed(edges, known | set(attribution.formers))
    vpcs = _vpcs_of_unknown(edges, known, inventory)
    subnets = _subnets_of_unknown(flows.coverage, known | set(attribution.formers), inventory)
    bearing = _groups_bearing_unattributed(
        strangers, book, in_scope, options.max_unattributed, vpcs, inventory, subnets
    )
    if bearing:
        warnings.append(_history_hint(strangers, len(bearing), bool(inventory.history)))
    delivery = _Delivery.of(flows)
    coverage = {gid: _coverage(gid, inventory, flows, window, options, bearing, delivery) for gid in in_scope}
    ok_groups = {gid for gid in in_scope if coverage[gid].status == "ok"}

    pins, pin_warnings = _pins_by_group(options.pins, inventory, window)
    warnings += pin_warnings

    # A destination whose ENIs and their groups are all gone is never a rule (DESIGN §6 "Destinations").
    gone_now = [attribution.vanished(f) for f in chosen]
    vanished = [f for f, gone in zip(chosen, gone_now, strict=True) if gone]
    chosen = [f for f, gone in zip(chosen, gone_now, strict=True) if not gone]
    busiest = busiest_by_group(analysed, inventory, in_scope, EDGES_PER_GROUP)
    carried, stuck, not_permitted = place_flows(chosen, book, ok_groups)
    usage = _Usage.build(carried, analysed)
    del analysed  # everything the reports need of the classified edges is taken: its memory can go
    reports: list[GroupReport] = []
    over_budget: list[str] = []
    forwarded: set[str] = set()
    for gid in in_scope:
        plan = _plan_group(
            gid, carried.get(gid, []), stuck, book, coverage[gid], pins.get(gid, {}), options.internet
        )
        vanished += plan.vanished
        forwarded.update(name for placed in plan.proposed for name in placed.forwarded)
        if coverage[gid].status == "ok":
            if options.cidr_tolerance is not None:
                plan.proposed = aggregate(plan.proposed, gid, book, options.cidr_tolerance)
            plan.proposed, over = enforce_budget(plan.proposed, gid, book, options.rule_budget)
            if over:
                over_budget.append(over)
        edges_of = busiest.pop(gid)
        reports.append(_group_report(gid, plan, usage, inventory, coverage[gid], book, edges_of))
        book.forget_group(gid)
    warnings += over_budget
    gone = _vanished_destinations(vanished, attribution)
    if gone:
        shown = ", ".join(f"{v.address} (last seen {v.last_seen})" for v in gone[:3])
        more = f" and {len(gone) - 3} more" if len(gone) > 3 else ""
        warnings.append(
            f"{len(gone)} destinations whose ENI and groups are gone were reached: {shown}{more}; never "
            "turned into rules (vanished_destinations in recommendation.json)"
        )

    blocked = _would_be_blocked(below, reports, book, inventory)
    short = _short_window_warning(window)
    if short:
        warnings.append(short)
    return Recommendation(
        tool=Tool(version=__version__),
        window=WindowOut(start=format_instant(window.start), end=format_instant(window.end)),
        collection=CollectionOut(
            source=flows.source if flows.source in ("files", "insights", "athena", "edges") else "files",
            records_scanned=flows.accounting.records,
        ),
        security_groups=reports,
        labels=_labels(inventory, reports),
        infrastructure_enis=_infrastructure(edges, inventory, infra),
        unattributed=unattributed,
        vanished_destinations=gone,
        not_permitted_now=_not_permitted(not_permitted),
        rejected_egress=_rejected(edges, known),
        would_be_blocked=blocked,
        warnings=sorted(set(warnings)),
        input_accounting=accounting,
        dns=dns_section(
            options.internet, reports, forwarded, _names_needed(carried, ok_groups, attribution, options)
        ),
    )


# ------------------------------------------------------------------------------------------- planning


def select_flows(
    flows: FlowEdges, inventory: Inventory, options: AnalysisOptions, attribution: Attribution | None = None
) -> tuple[pl.DataFrame, list[Flow], list[tuple[Flow, str]]]:
    """*The flows* of DESIGN §6, the one definition ``recommend`` and ``check`` share: the classified
    egress edges of in-scope, non-infrastructure ENIs — current members, and former ones the ENI
    history attributes to an in-scope group — their non-reply flows at or above the thresholds
    (chosen), and those below with the reason (listed as would be blocked)."""
    if attribution is None:
        window = flows.window or Window(0, 0)
        attribution = Attribution(inventory, window.start, window.end)
    in_scope = options.scope.groups_in(inventory)
    scope_enis = attribution.members_in_window(in_scope)
    infra = {eni for eni, itf in inventory.interfaces.items() if itf.is_infrastructure}
    infra |= attribution.former_infrastructure
    attributable = sorted({*inventory.interfaces, *attribution.formers})
    edges_known = flows.edges.filter(pl.col("interface_id").is_in(attributable))
    classified = classify_edges(edges_known, options.ephemeral)
    analysed = classified.filter(pl.col("interface_id").is_in(sorted(scope_enis - infra)))
    all_flows = list(iter_flows(edges_to_flows(analysed.filter(pl.col("class") != "reply"))))
    if options.ip_ranges is not None:
        labels = options.ip_ranges
        all_flows = [f if f.service else replace(f, service=labels.label(f.remote)) for f in all_flows]
    chosen: list[Flow] = []
    below: list[tuple[Flow, str]] = []
    for flow in all_flows:
        if flow.confidence.rank < options.min_confidence.rank:
            below.append(
                (flow, f"confidence {flow.confidence} below --min-confidence {options.min_confidence}")
            )
        elif flow.records < options.min_records:
            below.append((flow, f"{flow.records} records below --min-records {options.min_records}"))
        else:
            chosen.append(flow)
    return analysed, chosen, below


@dataclass
class _Plan:
    proposed: list[Placed]
    flows: list[Flow]
    kept_reasons: dict[RuleKey, str]
    vanished: list[Flow] = field(default_factory=list)  # flows to destinations that are gone


def _plan_group(
    gid: str,
    flows: list[Flow],
    stuck: Sequence[tuple[Flow, list[SgRule]]],
    book: RuleBook,
    coverage: CoverageOut,
    pins: dict[RuleKey, RuleException],
    internet: InternetOptions,
) -> _Plan:
    current = book.group(gid)
    if coverage.status != "ok":
        why = f"coverage {coverage.status}: " + "; ".join(coverage.reasons or ["no evidence"])
        proposed = [Placed(key=rule.key(), kept_rule=rule, reason=why) for rule, _ in current]
        permitted = _permitted_by_key(gid, flows, book)
        for placed in proposed:
            placed.flows = list(permitted.get(placed.key, ()))
        return _Plan(_sorted(proposed), flows, {p.key: why for p in proposed})
    vanished: list[Flow] = []
    proposed = synthesize_group(gid, flows, book, vanished, internet)
    kept_reasons: dict[RuleKey, str] = {}
    by_key = {p.key: p for p in proposed}
    current_by_key = {rule.key(): rule for rule, _ in current}
    for flow, rules in stuck:
        for rule in rules:
            if rule.group_id == gid and rule.key() in current_by_key:
                entry = by_key.setdefault(rule.key(), Placed(key=rule.key(), kept_rule=rule))
                entry.flows.append(flow)
                kept_reasons[rule.key()] = (
                    "kept: no narrower rule covers the observed port range "
                    f"{flow.port_low}-{flow.port_high} to {flow.remote} without widening another member"
                )
    for key, pin in pins.items():
        if key in current_by_key:
            by_key.setdefault(key, Placed(key=key, kept_rule=current_by_key[key]))
            kept_reasons[key] = f"pinned: {pin.reason}" + (f" (until {pin.expires})" if pin.expires else "")
    for key, placed in by_key.items():
        if key in current_by_key:
            placed.kept_rule = current_by_key[key]
    return _Plan(_sorted(list(by_key.values())), flows, kept_reasons, vanished)


def _permits_key(book: RuleBook, key: RuleKey, flow: Flow) -> bool:
    return book.permits_key(key, flow)


def _permitted_by_key(gid: str, flows: Sequence[Flow], book: RuleBook) -> dict[RuleKey, list[Flow]]:
    """The group's flows under each of its current rules (by key) that permits them, in flow order: one
    pass over the flows, with the answers the placement kept, instead of one per rule."""
    out: dict[RuleKey, list[Flow]] = defaultdict(list)
    for flow in flows:
        for key in dict.fromkeys(rule.key() for rule in book.permitting(gid, flow)):
            out[key].append(flow)
    return out


def _sorted(placed: list[Placed]) -> list[Placed]:
    return sorted(placed, key=lambda p: key_order(p.key))


# ------------------------------------------------------------------------------------------- report


def _group_report(
    gid: str,
    plan: _Plan,
    usage: _Usage,
    inventory: Inventory,
    coverage: CoverageOut,
    book: RuleBook,
    busiest: Sequence[FlowEdge],
) -> GroupReport:
    sg = inventory.groups[gid]
    members = inventory.members.get(gid, ())
    current = list(sg.egress)
    current_rules = [_rule_of(rule) for rule in current]
    proposed_out = [_proposed_rule(p) for p in plan.proposed]
    proposed_keys = {p.key: i for i, p in enumerate(plan.proposed)}
    changes: list[Change] = []
    narrowed_into: dict[int, list[str]] = defaultdict(list)
    carrier: dict[Flow, list[int]] = defaultdict(list)  # flow → the proposed rules that carry it
    for index, placed in enumerate(plan.proposed):
        for flow in placed.flows:
            carrier[flow].append(index)
    permitted = _permitted_by_key(gid, plan.flows, book)
    for index, rule in enumerate(current):
        key = rule.key()
        ref = rule.rule_id or f"current_egress[{index}]"
        out = current_rules[index]
        if key in proposed_keys:
            placed = plan.proposed[proposed_keys[key]]
            reason = plan.kept_reasons.get(key) or _usage(placed.flows)
            changes.append(
                Change(action="keep", security_group_rule_id=rule.rule_id, rule=out, reason=reason)
            )
            continue
        used = permitted.get(key, [])
        if used:
            current_keys_now = {r.key() for r in current}
            targets = sorted(
                {i for f in used for i in carrier.get(f, ()) if plan.proposed[i].key not in current_keys_now}
            )
            if not targets:
                # Everything it permitted that is needed is covered by rules that stay: a removal.
                changes.append(
                    Change(
                        action="remove",
                        security_group_rule_id=rule.rule_id,
                        rule=out,
                        reason=f"all of its needed traffic ({_usage(used)}) is covered by kept rules",
                    )
                )
                continue
            for target in targets:
                narrowed_into[target].append(ref)
            changes.append(
                Change(
                    action="narrow",
                    security_group_rule_id=rule.rule_id,
                    rule=out,
                    reason=f"only part of what it permits was used: {_usage(used)}",
                    replaced_by=targets,
                )
            )
            continue
        changes.append(
            Change(
                action="remove",
                security_group_rule_id=rule.rule_id,
                rule=out,
                reason=_removal_reason(key, gid, usage, book, members, inventory),
            )
        )
    current_keys = {rule.key() for rule in current}
    for index, placed in enumerate(plan.proposed):
        if placed.key in current_keys:
            continue
        replaces = sorted(set(narrowed_into.get(index, [])))
        changes.append(
            trusted(
                Change,  # one per proposed rule, from values checked above (Rule.from_key)
                action="add",
                rule=Rule.from_key(placed.key, description=proposed_out[index].description),
                reason=f"carries {_usage(placed.flows)}" if placed.flows or not placed.note else placed.note,
                replaces=replaces or None,
            )
        )
    # The busiest edges only: count what was left out from the full table.
    omitted = sum(usage.flow_counts.get(eni, 0) for eni in members) - len(busiest)
    edges = [
        trusted(
            EdgeOut,  # the edge table's values, already in the model's types
            eni=f.eni,
            remote=f.remote,
            protocol=protocol_name(f.protocol),
            port=f.port,
            records=f.records,
            klass=f.klass,
            confidence=f.confidence,
        )
        for f in busiest
    ]
    return GroupReport(
        group_id=gid,
        group_name=sg.group_name,
        vpc_id=sg.vpc_id,
        name_tag=sg.name_tag,
        unattached=not members,
        coverage=coverage,
        current_egress=current_rules,
        edges=edges,
        edges_omitted=omitted,
        proposed_egress=proposed_out,
        changes=changes,
    )


def _rule_of(rule: SgRule) -> Rule:
    return Rule.from_key(rule.key(), description=rule.description, rule_id=rule.rule_id)


def _proposed_rule(placed: Placed) -> ProposedRule:
    key = placed.key
    evidence = _evidence(placed.flows) if placed.flows else None
    if evidence is None and placed.internet is not None:
        # A stable name's address not seen in the window: pinned with the name, where it goes next.
        evidence = Evidence(records=0, bytes=0, enis=[], destinations=[placed.key.value.split("/")[0]],
                            confidence="low", why=[])  # fmt: skip
    if evidence is not None and placed.note:
        evidence.why.insert(0, placed.note)
    if evidence is not None and placed.internet is not None:
        if placed.names and placed.unnamed:
            shown = sorted(placed.unnamed, key=_address_order)
            evidence.why.append(
                f"{len(shown)} of its destinations had no name in the query logs: {', '.join(shown[:10])}"
                + (f" and {len(shown) - 10} more" if len(shown) > 10 else "")
            )
        internet = "pinned" if placed.internet == "pinned" else "port"
        evidence = evidence.model_copy(update={"internet": internet, "names": sorted(placed.names) or None})
    if placed.kept_rule is not None:
        description = placed.kept_rule.description
        rule_id = placed.kept_rule.rule_id
    else:
        description = _describe(placed, evidence)
        rule_id = None
    return ProposedRule.from_key(key, description=description, rule_id=rule_id, evidence=evidence)


def _describe(placed: Placed, evidence: Evidence | None) -> str:
    """A Terraform-safe description: the evidence summary (EC2 allows a limited character set)."""
    parts = ["sgadvisor"]
    if placed.label:
        parts.append(placed.label)
    if evidence is not None:
        first = (evidence.first_seen or "")[:10]
        last = (evidence.last_seen or "")[:10]
        parts.append(f"{evidence.records} records {first}..{last}")
    text = " ".join(parts)
    if text.isascii():  # the usual case: one pass of the engine instead of a test per character
        return _NOT_IN_DESCRIPTION.sub("", text)[:255]
    return "".join(ch for ch in text if ch.isalnum() or ch in " ._-:/()#,@[]+=&;{}!$*")[:255]


# What EC2 refuses in a description, for ASCII text (where str.isalnum is exactly [0-9A-Za-z]).
_NOT_IN_DESCRIPTION = re.compile(r"[^0-9A-Za-z ._\-:/()#,@\[\]+=&;{}!$*]")


def _evidence(flows: Sequence[Flow]) -> Evidence:
    if len(flows) == 1:  # most rules at scale carry one flow: the same evidence, without the folding
        return _one_flow_evidence(flows[0])
    records = volume = 0
    first: int | None = None
    last: int | None = None
    best = Confidence.LOW  # the strongest confidence, the first flow's of that rank
    best_rank = 0
    for flow in flows:
        records += flow.records
        volume += flow.bytes
        if flow.first is not None and (first is None or flow.first < first):
            first = flow.first
        if flow.last is not None and (last is None or flow.last > last):
            last = flow.last
        if flow.confidence.rank > best_rank:
            best, best_rank = flow.confidence, flow.confidence.rank
    why: list[str] = []
    for flow in sorted(flows, key=lambda f: -f.confidence.rank) if len(flows) > 1 else flows:
        for code in flow.reasons:
            sentence = REASONS.get(code, code)
            if sentence not in why:
                why.append(sentence)
    return trusted(
        Evidence,  # built here in the model's types: validation would only copy them
        records=records,
        bytes=volume,
        first_seen=_instant(first) if first is not None else None,
        last_seen=_instant(last) if last is not None else None,
        enis=sorted({f.eni for f in flows}),
        destinations=sorted({f.remote for f in flows}),
        confidence=best.value,
        why=why,
    )


def _one_flow_evidence(flow: Flow) -> Evidence:
    why: list[str] = []
    for code in flow.reasons:
        sentence = REASONS.get(code, code)
        if sentence not in why:
            why.append(sentence)
    return trusted(
        Evidence,
        records=flow.records,
        bytes=flow.bytes,
        first_seen=_instant(flow.first) if flow.first is not None else None,
        last_seen=_instant(flow.last) if flow.last is not None else None,
        enis=[flow.eni],
        destinations=[flow.remote],
        confidence=flow.confidence.value,
        why=why,
    )


@lru_cache(maxsize=4096)
def _instant(epoch: int) -> str:
    """``format_instant``, one string per instant: rules share their first and last times."""
    return format_instant(epoch)


def _usage(flows: Sequence[Flow]) -> str:
    if not flows:
        return "no initiated traffic in the window"
    records = sum(f.records for f in flows)
    destinations = len({f.remote for f in flows})
    return f"{records} records of initiated traffic to {destinations} destination(s)"


@dataclass(frozen=True)
class _Usage:
    """Per ENI, built once: the flows groups carry, and the reply edges (why a rule went unused)."""

    carried: dict[str, dict[str, list[Flow]]]  # ENI → carrying group → its flows that group carries
    replies: pl.DataFrame  # reply edges, by ENI: read for the few ENIs a removal reason asks about
    reply_rows: dict[str, tuple[int, int]]  # ENI → (first row, rows) of its replies
    flow_counts: dict[str, int]  # accepted egress edges per ENI (the report's edge list)
    read: dict[str, list[tuple[int, Addr, int]]] = field(default_factory=dict)  # replies_of, kept

    @classmethod
    def build(cls, carried: dict[str, list[Flow]], analysed: pl.DataFrame) -> _Usage:
        by_eni: dict[str, dict[str, list[Flow]]] = defaultdict(dict)
        for gid, flows in carried.items():
            for flow in flows:
                by_eni[flow.eni].setdefault(gid, []).append(flow)
        replies = (
            analysed.filter(pl.col("class") == "reply")
            .select("interface_id", "protocol", "remote_addr", "remote_port")
            .sort("interface_id", maintain_order=True)
        )
        rows: dict[str, tuple[int, int]] = {}
        start = 0
        for eni, count in replies.group_by("interface_id", maintain_order=True).len().iter_rows():
            rows[eni] = (start, count)
            start += count
        counts = dict(analysed.group_by("interface_id").len().iter_rows())
        return cls(dict(by_eni), replies, rows, {str(k): int(v) for k, v in counts.items()})

    def replies_of(self, eni: str) -> list[tuple[int, Addr, int]]:
        """The ENI's reply edges: (protocol, remote address, remote port)."""
        if eni not in self.read:
            span = self.reply_rows.get(eni)
            rows = self.replies.slice(*span).iter_rows() if span is not None else ()
            self.read[eni] = [(proto, parse_addr(remote), port) for _, proto, remote, port in rows]
        return self.read[eni]


def _removal_reason(
    key: RuleKey, gid: str, usage: _Usage, book: RuleBook, members: Sequence[str], inventory: Inventory
) -> str:
    elsewhere = sorted(
        {
            other
            for eni in members
            for other, flows in usage.carried.get(eni, {}).items()
            if other != gid and any(_permits_key(book, key, flow) for flow in flows)
        }
    )
    if elsewhere:
        return f"the traffic it permits is carried by {', '.join(elsewhere)} (fewer members)"
    resolved = book.resolved(key)
    for eni in members:
        for proto, remote, port in usage.replies_of(eni):
            if permits(resolved, proto, remote, port, port):
                return "only replies used it (security groups are stateful: replies need no egress rule)"
    # Traffic SGs do not filter and flow logs do not record (Amazon DNS, metadata, Time Sync, DHCP, …):
    # still removed, since the rule does nothing, but the reason says why it looks unused (unlogged.py).
    vpc_id = inventory.groups[gid].vpc_id
    vpc = inventory.vpcs.get(vpc_id) if vpc_id else None
    # The inventory's ENI addresses (a mapping: asked for membership only, not copied per rule).
    unlogged = unlogged_destination(key, [vpc] if vpc else [], inventory.owner_of_address.keys())
    if unlogged is not None:
        return unlogged
    return "no initiated traffic used it in the window, and coverage is ok"


# ------------------------------------------------------------------------------------------- coverage


def _coverage(
    gid: str,
    inventory: Inventory,
    flows: FlowEdges,
    window: Window,
    options: AnalysisOptions,
    bearing: dict[str, int],
    delivery: _Delivery,
) -> CoverageOut:
    """Coverage from delivered data only (DESIGN §5): an ENI has evidence when its own records (any
    status) span its life in the window with no stretch longer than --max-gap without one, its SKIPDATA
    share is within tolerance, and no unread part of the input could hold its records."""
    current = inventory.members.get(gid, ())
    seconds = max(window.seconds, 0)
    if not current:
        return CoverageOut(status="none", enis=0, enis_with_evidence=0, window_seconds=seconds,
                           skipdata_share=0.0, reasons=["unattached"])  # fmt: skip
    # Current members, then former ones known from history, each with its life in the window.
    members = _coverage_members(gid, current, inventory, window)
    lived = _union_seconds([life for _, life in members])
    reasons: list[str] = []
    with_evidence = with_records = 0
    worst_skip = 0.0
    if not members:
        reasons.append("no member ENI lived in the window (by the ENI history)")
    for eni, (life_start, life_end) in members:
        life = life_end - life_start
        row = delivery.rows.get(eni)
        spans = delivery.spans.get(eni, [])
        skip = (row["skipdata_seconds"] / life) if row is not None and life else 0.0
        worst_skip = max(worst_skip, skip)
        if not spans:
            if row is not None and row["records"] and row["first_start"] is None:
                # Records arrived, but the format has no start/end: when they were delivered is unknown.
                reasons.append(
                    f"{eni}: its records carry no start/end times, so their delivery cannot be shown"
                )
            else:
                reasons.append(
                    f"{eni}: no flow-log record of it in the window{delivery.logs_of(eni, inventory)}"
                )
            continue
        reject_only = delivery.reject_only_logs(eni, inventory)
        if reject_only:
            # Its records (REJECT, NODATA) arrive, but accepted traffic is never logged: silence about it.
            reasons.append(f"{eni}: only REJECT traffic is logged for it (flow log {reject_only})")
            continue
        if lived < options.min_window:
            # The members' lives together (the window, without history) are too short to judge.
            together = "" if life == lived else " (its group's members' lives together)"
            reasons.append(
                f"{eni}: evidence spans {_days(lived)} < --min-window {_days(options.min_window)}{together}"
            )
            continue
        # Records, but not enough to prove its whole life in the window: partial evidence.
        with_records += 1
        holes = find_holes(spans, life_start, life_end, options.max_gap)
        unread = delivery.unread_for(eni, inventory)
        unread_note = f"part of the input could not be read and may hold its records ({unread})"
        if holes:
            hole = _describe_holes(eni, holes, options.max_gap, delivery.logs_of(eni, inventory))
            reasons.append(f"{hole}; {unread_note}" if unread else hole)
        elif skip > SKIPDATA_TOLERANCE:
            reasons.append(f"{eni}: SKIPDATA {skip:.1%} of {'the window' if life == seconds else 'its life'}")
        elif unread:
            reasons.append(f"{eni}: {unread_note}")
        else:
            with_evidence += 1
    if gid in bearing:
        reasons.append(f"traffic of an unknown ENI may need these rules ({bearing[gid]} records)")
    if with_records == 0:
        status = "none"
    elif with_evidence == len(members) and gid not in bearing:
        status = "ok"
    else:
        status = "partial"
    return CoverageOut(
        status=status,
        enis=len(members),
        enis_with_evidence=with_evidence,
        window_seconds=seconds,
        skipdata_share=round(worst_skip, 6),
        reasons=reasons,
    )


def _life(eni: str, inventory: Inventory, window: Window) -> tuple[int, int] | None:
    """An ENI's life in the window (DESIGN §5): the window cut to its creation and, for an ENI the
    inventory lacks, its deletion, where the history knows them (an ENI in the end-of-window inventory
    is alive at the end whatever the history says). None when it did not live in the window."""
    history = inventory.history.get(eni)
    if history is None:
        return window.start, window.end
    start = window.start if history.created is None else max(window.start, history.created)
    end = window.end
    if history.deleted is not None and eni not in inventory.interfaces:
        end = min(end, history.deleted)
    return (start, end) if start < end else None


def _coverage_members(
    gid: str, current: Sequence[str], inventory: Inventory, window: Window
) -> list[tuple[str, tuple[int, int]]]:
    """The group's members for coverage with their lives: its current members, then every other ENI the
    history shows holding the group at some moment of the window (a replaced instance, an ECS task)."""
    out = [(eni, life) for eni in current if (life := _life(eni, inventory, window)) is not None]
    for eni in sorted(inventory.history):
        if eni in current or gid not in inventory.history[eni].groups_during(window.start, window.end):
            continue
        life = _life(eni, inventory, window)
        if life is not None:
            out.append((eni, life))
    return out


def _union_seconds(spans: Sequence[tuple[int, int]]) -> int:
    total, reach = 0, None
    for start, end in sorted(spans):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def _short_window_warning(window: Window) -> str | None:
    """Evidence shorter than RARE_TRAFFIC_WINDOW cannot show monthly (or rarer) traffic: say so in the
    recommendation's warnings (DESIGN §5 keeps its fields; renderers and the terminal show warnings)."""
    seconds = max(window.seconds, 0)
    if seconds >= RARE_TRAFFIC_WINDOW:
        return None
    return (
        f"the evidence window is {seconds / 86400:.1f} days (< {RARE_TRAFFIC_WINDOW // 86400} days): monthly "
        "and rarer "
        "traffic (a month-end batch, a partner's monthly upload, a DR test) may be missing from it, so a "
        "rule only such traffic needs can be proposed for removal; review the removals, keep the rules "
        "such traffic needs with [[pin]] tables in the config file (README), or analyse a longer window"
    )


def _days(seconds: int) -> str:
    return f"{seconds / 86400:.1f}d"


def _describe_holes(eni: str, holes: Sequence[Hole], max_gap: int, logs: str) -> str:
    """The first holes by time, each from and to, and how many more (the reader needs where to look)."""
    shown = ", ".join(f"{format_instant(h.start)} to {format_instant(h.end)}" for h in holes[:3])
    more = f" and {len(holes) - 3} more" if len(holes) > 3 else ""
    longest = max(h.seconds for h in holes)
    return (
        f"{eni}: no record of it from {shown}{more} (longest {format_duration(longest)} > --max-gap "
        f"{format_duration(max_gap)}){logs}"
    )


@dataclass(frozen=True)
class _Delivery:
    """What the input shows of each ENI's delivery: its coverage row, its spans, the unread inputs."""

    rows: dict[str, dict[str, Any]]
    spans: dict[str, list[tuple[int, int]]]
    unreadable: tuple[str, ...]

    @classmethod
    def of(cls, flows: FlowEdges) -> _Delivery:
        rows = {row["interface_id"]: row for row in flows.coverage.iter_rows(named=True)}
        return cls(rows, spans_by_interface(flows.spans), flows.unreadable)

    def logs_of(self, eni: str, inventory: Inventory) -> str:
        """' (flow log fl-…)' for the flow logs on the ENI, its subnet or its VPC, else a note."""
        ids = sorted({fl.flow_log_id for fl in _flow_logs_of(eni, inventory)})
        if ids:
            return f" (flow log {', '.join(ids)})"
        return " (no flow log in the inventory covers it)" if inventory.flow_logs else ""

    def reject_only_logs(self, eni: str, inventory: Inventory) -> str:
        """The flow logs on the ENI, its subnet or its VPC when every one of them captures REJECT traffic
        only (then accepted traffic is never logged, whatever arrives); else ''."""
        logs = _flow_logs_of(eni, inventory)
        if logs and all(fl.traffic_type == "REJECT" for fl in logs):
            return ", ".join(sorted(fl.flow_log_id for fl in logs))
        return ""

    def unread_for(self, eni: str, inventory: Inventory) -> str:
        """The first unreadable input that could hold this ENI's records: one that names the ENI, or a
        flow log that covers it, or that names no ENI or flow log the inventory knows (then it could hold
        anything). Only whole ids count: a folder called "eni-data" names nothing."""
        if not self.unreadable:
            return ""
        logs = {fl.flow_log_id for fl in _flow_logs_of(eni, inventory)}
        known_logs = {fl.flow_log_id for fl in inventory.flow_logs}
        for path in self.unreadable:
            # ENIs the inventory (or its history) knows, and this one: asked per name, not as a set of
            # every ENI built again for each of them.
            named_enis = {
                named
                for named in _ENI_IN_PATH.findall(path)
                if named == eni or named in inventory.interfaces or named in inventory.history
            }
            named_logs = set(_FLOW_LOG_IN_PATH.findall(path)) & known_logs
            if eni in named_enis or logs & named_logs or not (named_enis or named_logs):
                return path
        return ""


def _flow_logs_of(eni: str, inventory: Inventory) -> list[FlowLogConfig]:
    """The flow logs on the ENI, its subnet or its VPC (``_placement``)."""
    on = inventory.flow_logs_on
    return [log for target in _placement(eni, inventory) if target for log in on.get(target, ())]


def _placement(eni: str, inventory: Inventory) -> set[str | None]:
    """The ENI, its subnet and its VPC (from the inventory, else every one its history names): the
    resources a flow log covering it may be attached to."""
    itf = inventory.interfaces.get(eni)
    if itf is not None:
        return {eni, itf.subnet_id, itf.vpc_id}
    states = inventory.history[eni].states if eni in inventory.history else ()
    return {eni} | {s.subnet_id for s in states} | {s.vpc_id for s in states}


# Whole AWS ids only (8 or 17 hex digits), not any text that starts like one.
_ENI_IN_PATH = re.compile(r"(?<![0-9A-Za-z])eni-(?:[0-9a-f]{17}|[0-9a-f]{8})(?![0-9A-Za-z])")
_FLOW_LOG_IN_PATH = re.compile(r"(?<![0-9A-Za-z])fl-(?:[0-9a-f]{17}|[0-9a-f]{8})(?![0-9A-Za-z])")


# ------------------------------------------------------------------------------------------- sections


def _scope_accounting(
    accounting: InputAccounting, edges: pl.DataFrame, known: set[str], infra: set[str], scope_enis: set[str]
) -> InputAccounting:
    """Records of ENIs in the inventory but outside the scope are filtered with reason 'out of scope'."""
    out = edges.filter(pl.col("interface_id").is_in(sorted(known - scope_enis - infra)))
    count = int(out["records"].sum() or 0)
    if not count:
        return accounting
    filtered = dict(accounting.filtered)
    filtered[OUT_OF_SCOPE] = filtered.get(OUT_OF_SCOPE, 0) + count
    return accounting.model_copy(
        update={"used": accounting.used - count, "filtered": dict(sorted(filtered.items()))}
    )


def _unattributed(edges: pl.DataFrame, known: set[str]) -> tuple[list[Unattributed], list[Flow]]:
    unknown = edges.filter(~pl.col("interface_id").is_in(sorted(known)))
    if unknown.height == 0:
        return [], []
    classified = classify_edges(unknown)
    flows = list(iter_flows(edges_to_flows(classified.filter(pl.col("class") != "reply"))))
    by_eni: dict[str, list[Flow]] = defaultdict(list)
    for flow in flows:
        by_eni[flow.eni].append(flow)
    out = []
    for (eni,), group in unknown.sort("interface_id").group_by("interface_id", maintain_order=True):
        initiated = by_eni.get(str(eni), [])
        destinations = sorted({f"{f.remote}:{f.port_low}" for f in initiated})
        out.append(
            Unattributed(
                interface_id=str(eni),
                records=int(group["records"].sum()),
                destinations=destinations[:20],
                note="ENI not in inventory",
            )
        )
    return out, flows


def _history_hint(strangers: Sequence[Flow], groups: int, has_history: bool) -> str:
    """How much initiated traffic of ENIs missing from the inventory (and its history) keeps groups from
    being judged, and what would attribute it (a replaced instance, a finished task, a Lambda ENI)."""
    enis = sorted({f.eni for f in strangers})
    named = ", ".join(enis[:5]) + (f" and {len(enis) - 5} more" if len(enis) > 5 else "")
    source = "the ENI history given does not cover them" if has_history else "no ENI history was given"
    return (
        f"{sum(f.records for f in strangers)} initiated records of {len(enis)} ENIs not in the inventory "
        f"({named}) may need the rules of {groups} groups, which stay partial; {source}: AWS Config items or "
        "CloudTrail events of those ENIs (`sgadvisor collect --history missing`, or `aws configservice "
        "get-resource-config-history` / `aws cloudtrail lookup-events` output in the inventory folder) "
        "would attribute them"
    )


def _groups_bearing_unattributed(
    flows: Sequence[Flow],
    book: RuleBook,
    groups: Sequence[str],
    threshold: int,
    vpcs: dict[str, frozenset[str] | None],
    inventory: Inventory,
    subnets: Mapping[str, str],
) -> dict[str, int]:
    """Groups the unattributed initiated traffic could need: the groups its ENI could have been in (one
    of the VPCs ``vpcs`` places it in, any VPC when unknown; with a member in its subnet where ``subnets``
    knows it) whose current rules permit some of it."""
    if sum(f.records for f in flows) <= threshold:
        return {}
    bearing: dict[str, int] = defaultdict(int)
    for gid in groups:
        vpc_id = inventory.groups[gid].vpc_id
        member_subnets: set[str | None] | None = None  # the group's, found once it is asked
        for flow in flows:
            could = vpcs.get(flow.eni)
            if could is not None and vpc_id is not None and vpc_id not in could:
                continue
            subnet = subnets.get(flow.eni)
            if subnet is not None:
                if member_subnets is None:
                    member_subnets = _member_subnets(gid, book)
                if subnet not in member_subnets:
                    continue  # it was in a subnet none of the group's members (current or former) was in
            if book.permitting(gid, flow):
                bearing[gid] += flow.records
    return dict(bearing)


def _member_subnets(gid: str, book: RuleBook) -> set[str | None]:
    """The subnets of a group's members, current ones and former ones by their history."""
    inventory = book.inventory
    members = book.attribution.members_in_window([gid])
    out: set[str | None] = set()
    for eni in members:
        itf = inventory.interfaces.get(eni)
        if itf is not None:
            out.add(itf.subnet_id)
        history = inventory.history.get(eni)
        if history is not None:
            out.update(state.subnet_id for state in history.states)
    return out


def _subnets_of_unknown(coverage: pl.DataFrame, known: set[str], inventory: Inventory) -> dict[str, str]:
    """Unknown ENI → the subnet its records say it was in: the flow-log ``subnet-id`` field, else the one
    subnet of the subnet-level flow logs that delivered them (DESIGN §6 "Identity over time")."""
    if "subnet_id" not in coverage.columns:
        return {}
    subnet_logs = {
        f.flow_log_id: f.resource_id for f in inventory.flow_logs if f.resource_id.startswith("subnet-")
    }
    out: dict[str, str] = {}
    rows = coverage.filter(~pl.col("interface_id").is_in(sorted(known))).select(
        "interface_id", "subnet_id", "flow_logs"
    )
    for eni, subnet, logs in rows.iter_rows():
        if subnet:
            out[eni] = subnet
            continue
        delivered = [log for log in (logs or "").split(",") if log]
        places = {subnet_logs.get(log) for log in delivered}
        if delivered and len(places) == 1:
            place = next(iter(places))
            if place is not None:
                out[eni] = place
    return out


def _vpcs_of_unknown(
    edges: pl.DataFrame, known: set[str], inventory: Inventory
) -> dict[str, frozenset[str] | None]:
    """Unknown ENI → the VPCs it could be in: those whose CIDRs (describe-vpcs) hold one of its own
    addresses, plus every VPC whose CIDRs are not known; None (any VPC) without describe-vpcs or without
    an address of its own. The subnet narrows further where the records say it (``_subnets_of_unknown``)."""
    if not inventory.vpcs:
        return {}
    group_vpcs = {sg.vpc_id for sg in inventory.groups.values() if sg.vpc_id is not None}
    blind = frozenset(vpc for vpc in group_vpcs if vpc not in inventory.vpcs or not inventory.vpcs[vpc].cidrs)
    nets = [(vpc.vpc_id, ipaddress.ip_network(cidr)) for vpc in inventory.vpcs.values() for cidr in vpc.cidrs]
    rows = (
        edges.filter(~pl.col("interface_id").is_in(sorted(known)))
        .select("interface_id", "local_addr")
        .unique()
        .sort("interface_id", "local_addr", nulls_last=True)
    )
    addresses: dict[str, set[str]] = defaultdict(set)
    for eni, local in rows.iter_rows():
        own = addresses.setdefault(eni, set())
        if local:
            own.add(local)
    out: dict[str, frozenset[str] | None] = {}
    for eni, own in addresses.items():
        parsed = [ip for ip in (_ip(a) for a in own) if ip is not None]
        if not parsed:
            out[eni] = None
            continue
        out[eni] = blind | {
            vpc for vpc, net in nets for ip in parsed if ip.version == net.version and ip in net
        }
    return out


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _names_needed(
    carried: Mapping[str, Sequence[Flow]],
    ok_groups: set[str],
    attribution: Attribution,
    options: AnalysisOptions,
) -> dict[str, set[str]]:
    """The DNS names of every destination an ``ok`` group's initiated flows reached, per VPC."""
    if options.internet.dns is None:
        return {}
    seen: set[tuple[str, str]] = set()
    wanted: list[tuple[tuple[str, ...], str, str | None]] = []
    for gid in sorted(ok_groups):
        for flow in carried.get(gid, ()):
            if (flow.eni, flow.remote) not in seen:
                seen.add((flow.eni, flow.remote))
                wanted.append((attribution.addresses_of(flow.eni), flow.remote, attribution.vpc_of(flow.eni)))
    return names_needed(wanted, options.internet)


def _dns_forwarders(edges: pl.DataFrame, inventory: Inventory) -> tuple[str, ...]:
    """The addresses of ENIs that answer DNS for others: accepted inbound udp/tcp 53 from another address.
    The query logs show such a forwarder as the source of what it asks on others' behalf."""
    serving = (
        edges.filter(
            (pl.col("direction") == "ingress")
            & (pl.col("action") == "ACCEPT")
            & (pl.col("local_port") == 53)
            & pl.col("protocol").is_in([6, 17])
            & (pl.col("remote_addr") != pl.col("local_addr"))
        )
        .get_column("interface_id")
        .unique()
        .to_list()
    )
    return tuple(
        sorted(
            {a for eni in serving if eni in inventory.interfaces for a in inventory.interfaces[eni].addresses}
        )
    )


def _vanished_destinations(flows: Sequence[Flow], attribution: Attribution) -> list[VanishedDestination]:
    """Flows to destinations that are gone, per address, with when they were last seen."""
    by_address: dict[str, list[Flow]] = defaultdict(list)
    for flow in flows:
        by_address[flow.remote].append(flow)
    groups = attribution.inventory.groups
    out = []
    for address, group in by_address.items():
        owners = [o for f in group for o in attribution.owners(f)]
        last_owner = max(owners, key=lambda o: (o.last_held, o.eni))
        former_groups = sorted({g for o in owners for g in o.groups})
        gone = [g for g in former_groups if g not in groups]
        lasts = [f.last for f in group if f.last is not None]
        note = (
            "its ENI and every group it had are gone: never turned into a rule"
            if len(gone) == len(former_groups)
            else "its ENI is gone and no group it had can be referenced without widening: never "
            "turned into a rule"
        )
        out.append(
            VanishedDestination(
                address=address,
                last_seen=format_instant(max(lasts)) if lasts else None,
                former_eni=last_owner.eni,
                former_groups=former_groups,
                records=sum(f.records for f in group),
                sources=sorted({f.eni for f in group}),
                traffic=sorted({_traffic(f) for f in group}),
                note=note,
            )
        )
    return sorted(out, key=lambda v: _address_order(v.address))


def _traffic(flow: Flow) -> str:
    proto = protocol_name(flow.proto)
    if flow.proto not in (6, 17):
        return proto
    ports = str(flow.port_low) if flow.port_low == flow.port_high else f"{flow.port_low}-{flow.port_high}"
    return f"{proto} {ports}"


def _address_order(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def _infrastructure(edges: pl.DataFrame, inventory: Inventory, infra: set[str]) -> list[InfrastructureEni]:
    totals = dict(
        edges.filter(pl.col("interface_id").is_in(sorted(infra)))
        .group_by("interface_id")
        .agg(pl.col("records").sum())
        .iter_rows()
    )
    return [
        InfrastructureEni(
            eni=eni,
            type=inventory.interfaces[eni].interface_type,
            records=int(totals.get(eni, 0)),
            note="forwards other hosts' traffic and carries no security groups: never turned into rules",
        )
        for eni in sorted(infra)
    ]


def _not_permitted(flows: Sequence[Flow]) -> list[NotPermitted]:
    out = []
    for flow in flows:
        key = host_key(flow)
        note = "accepted in the window, not permitted by the current rules"
        if flow.klass == "unknown":
            note += " (likely replies, which state tracking lets out, or rules changed during the window)"
        rule = Rule.from_key(key)
        entry = trusted(NotPermitted, eni=flow.eni, rule=rule, records=flow.records, note=note)
        out.append(((flow.eni, key_order(key)), entry))  # the rule's key is ``key`` (normalised already)
    return [entry for _, entry in sorted(out, key=lambda pair: pair[0])]


def _rejected(edges: pl.DataFrame, known: set[str]) -> list[Rejected]:
    rejected = (
        edges.filter((pl.col("action") == "REJECT") & (pl.col("direction") == "egress"))
        .group_by("interface_id", "protocol", "remote_addr", "remote_port")
        .agg(pl.col("records").sum())
        .sort("interface_id", "protocol", "remote_addr", "remote_port")
    )
    return [
        Rejected(
            eni=row["interface_id"],
            ip_protocol=protocol_name(row["protocol"]),
            dst=row["remote_addr"],
            port=row["remote_port"],
            records=row["records"],
            note="REJECT may come from a security group or a network ACL",
        )
        for row in rejected.iter_rows(named=True)
    ]


def _would_be_blocked(
    below: Sequence[tuple[Flow, str]], reports: Sequence[GroupReport], book: RuleBook, inventory: Inventory
) -> list[WouldBeBlocked]:
    """Flows left out by a threshold that the proposal would no longer permit."""
    by_group = {r.group_id: r for r in reports}
    proposed_by_group: dict[str, list[Resolved]] = {}  # resolved for the groups asked only

    def proposed(gid: str) -> list[Resolved]:
        if gid not in proposed_by_group:
            report = by_group.get(gid)
            rules = report.proposed_egress if report is not None else []
            proposed_by_group[gid] = [book.resolved(p.key()) for p in rules]
        return proposed_by_group[gid]

    out = []
    for flow, reason in below:
        rules = [res for gid in book.attribution.source_groups(flow) for res in proposed(gid)]
        if any(book.permits_flow(r, flow) for r in rules):
            continue
        out.append(
            WouldBeBlocked(
                eni=flow.eni,
                remote=flow.remote,
                protocol=protocol_name(flow.proto),
                port=flow.port_low,
                records=flow.records,
                klass=flow.klass,
                confidence=flow.confidence.value,
                reason=reason,
            )
        )
    return out


def _pins_by_group(
    pins: Sequence[RuleException], inventory: Inventory, window: Window
) -> tuple[dict[str, dict[RuleKey, RuleException]], list[str]]:
    """Pins apply to a current rule of their group; an expired pin (at the window's end) is reported."""
    today = datetime.fromtimestamp(window.end, tz=UTC).date() if window.end else date.today()
    out: dict[str, dict[RuleKey, RuleException]] = defaultdict(dict)
    warnings = []
    for pin in pins:
        try:
            key = pin.key()
        except ValueError as exc:
            warnings.append(f"pin for {pin.group}: {exc}")
            continue
        if pin.expires is not None and pin.expires < today:
            warnings.append(f"pin for {pin.group} ({key.ip_protocol} {key.value}) expired on {pin.expires}")
            continue
        sg = inventory.groups.get(pin.group)
        if sg is None or all(rule.key() != key for rule in sg.egress):
            warnings.append(f"pin for {pin.group} ({key.ip_protocol} {key.value}) matches no current rule")
            continue
        out[pin.group][key] = pin
    return dict(out), warnings


def _labels(inventory: Inventory, reports: Sequence[GroupReport]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for gid, sg in inventory.groups.items():
        labels[gid] = (
            f"{sg.group_name} ({sg.name_tag})"
            if sg.name_tag and sg.name_tag != sg.group_name
            else sg.group_name
        )
    for eni, itf in inventory.interfaces.items():
        labels[eni] = eni_label(itf)
    for pid, plist in inventory.prefix_lists.items():
        labels[pid] = plist.name
    return dict(sorted(labels.items()))


def eni_label(itf: Interface) -> str:
    """``web-1 (instance)``, ``ELB app/web/50dc6c495c0c9188 (alb)``: the Name tag, else the description,
    else the instance id, followed by the workload kind in parentheses (only the kind when there is no
    name), so every output that names an ENI says what runs behind it."""
    name = itf.name_tag or itf.description.strip() or itf.instance_id or ""
    kind = itf.kind.value
    return f"{name} ({kind})" if name and name != kind else kind
