"""Internet destinations that survive address rotation (issue 18; DESIGN §6 "Internet destinations").

Properties over generated estates whose workloads reach SaaS names — some rotating their addresses
from day to day, some stable — with the Route 53 Resolver query logs AWS would deliver, read by the real
reader (sgadvisor.dnslogs):
* without DNS evidence no internet /32 is proposed and no internet rule is all-protocol;
* with DNS evidence a rotating name's future addresses (of its pool, not yet seen) stay permitted, no
  pinned rule names a name that rotated, and every internet rule whose destinations the logs name
  carries those names.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgadvisor.analysis.internet import InternetOptions, InternetPolicy, is_internet
from sgadvisor.analysis.permits import parse_addr, permits, resolve
from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.dnslogs.reader import read_dns_logs
from sgadvisor.flowlogs.ingest import read_flows
from sgadvisor.inventory.model import FlowLogConfig, Interface, Inventory, SecurityGroup, SgRule, Vpc
from sgadvisor.models import Recommendation
from sgadvisor.rules import DestKind
from tests.conftest import DEFAULT_HEADER, default_line, nodata_lines, write_lines

T0 = 1_793_491_200  # 2026-11-01T00:00:00Z
DAY = 86400
DAYS = 8
GROUP = "sg-0app"
ENIS = {"eni-0a1": "10.0.1.10", "eni-0a2": "10.0.1.11", "eni-0a3": "10.0.1.12"}


@dataclass(frozen=True)
class Name:
    name: str
    pool: tuple[str, ...]  # every address the name may resolve to
    rotating: bool  # a different subset of the pool every day


@dataclass(frozen=True)
class Estate:
    names: tuple[Name, ...]
    rule: str  # the group's current internet rule: "all" or "tcp443"
    enis: tuple[str, ...]


@st.composite
def estates(draw: st.DrawFn) -> Estate:
    names = []
    for index in range(draw(st.integers(1, 4))):
        rotating = draw(st.booleans())
        size = draw(st.integers(4, 8)) if rotating else draw(st.integers(1, 3))
        pool = tuple(f"198.51.{100 + index}.{i + 1}" for i in range(size))
        names.append(Name(f"svc{index}.example.com", pool, rotating))
    enis = tuple(sorted(draw(st.sets(st.sampled_from(sorted(ENIS)), min_size=1, max_size=3))))
    return Estate(tuple(names), draw(st.sampled_from(["all", "tcp443"])), enis)


def _answers(name: Name, day: int) -> tuple[str, ...]:
    """A rotating name answers two addresses of its pool, a different pair each day; a stable one its
    whole pool, always."""
    if not name.rotating:
        return name.pool
    first = (2 * day) % len(name.pool)
    return (name.pool[first], name.pool[(first + 1) % len(name.pool)])


def _write(tmp: Path, estate: Estate) -> tuple[Path, Path]:
    """Flow logs and query logs as AWS delivers them: every ENI resolves each name twice a day (cache
    misses) and connects on 443 to the first address it was given."""
    flow_lines: list[str] = []
    dns_lines: list[str] = []
    for eni in estate.enis:
        busy: list[int] = []
        for day in range(DAYS):
            for name in estate.names:
                for hour in (3, 15):
                    t = T0 + day * DAY + hour * 3600 + 60 * estate.names.index(name)
                    answers = _answers(name, day)
                    dns_lines.append(json.dumps({
                        "version": "1.100000", "account_id": "123456789012", "region": "eu-west-1",
                        "vpc_id": "vpc-1", "query_timestamp": _iso(t), "query_name": name.name + ".",
                        "query_type": "A", "query_class": "IN", "rcode": "NOERROR",
                        "answers": [{"Rdata": a, "Type": "A", "Class": "IN"} for a in answers],
                        "srcaddr": ENIS[eni], "srcport": "41000", "transport": "UDP",
                        "srcids": {"instance": "i-0123456789abcdef0"},
                    }))  # fmt: skip
                    flow_lines.append(
                        default_line(ENIS[eni], answers[0], 40000 + hour, 443, eni=eni, start=t + 5)
                    )
                    busy.append(t + 5)
        flow_lines += nodata_lines(eni, T0, T0 + DAYS * DAY, busy=busy)
    flows = write_lines(tmp / "flows" / "f.log", flow_lines, header=DEFAULT_HEADER)
    dns = tmp / "dns" / "q.log"
    dns.parent.mkdir(parents=True, exist_ok=True)
    dns.write_text("".join(line + "\n" for line in dns_lines))
    return flows, dns.parent


def _iso(t: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _inventory(estate: Estate) -> Inventory:
    if estate.rule == "all":
        rules = (
            SgRule.build(GROUP, True, "-1", None, None, DestKind.CIDR_IPV4, "0.0.0.0/0", None, "sgr-all"),
        )
    else:
        rules = (
            SgRule.build(GROUP, True, "tcp", 443, 443, DestKind.CIDR_IPV4, "0.0.0.0/0", None, "sgr-443"),
        )
    return Inventory(
        groups={GROUP: SecurityGroup(GROUP, "app", "vpc-1", egress=rules)},
        interfaces={
            e: Interface(e, (ENIS[e],), (GROUP,), subnet_id="subnet-1", vpc_id="vpc-1") for e in estate.enis
        },
        flow_logs=(FlowLogConfig("fl-01", "vpc-1", "ALL", None, "s3", None, None, T0 - 90 * DAY),),
        has_rule_ids=True,
        vpcs={"vpc-1": Vpc("vpc-1", ("10.0.0.0/16",))},
    )


def _run(tmp: Path, estate: Estate, policy: InternetPolicy, with_dns: bool) -> Recommendation:
    flows_path, dns_path = _write(tmp, estate)
    inventory = _inventory(estate)
    flows = read_flows([flows_path], addresses=inventory.addresses)
    assert flows.window is not None
    dns = read_dns_logs([dns_path], flows.window.start, flows.window.end) if with_dns else None
    options = AnalysisOptions(internet=InternetOptions(policy=policy, dns=dns))
    return build_recommendation(flows, inventory, options)


def _permitted(rec: Recommendation, inventory: Inventory, address: str) -> bool:
    (group,) = rec.security_groups
    keys = [rule.key() for rule in group.proposed_egress]
    return any(permits(resolve(k, inventory), 6, parse_addr(address), 443, 443) for k in keys)


PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(estates())
def test_without_dns_no_internet_slash32_and_no_all_protocol_internet_rule(
    tmp_path_factory: pytest.TempPathFactory, estate: Estate
) -> None:
    rec = _run(tmp_path_factory.mktemp("e"), estate, InternetPolicy.port, with_dns=False)
    (group,) = rec.security_groups
    assert group.coverage.status == "ok", group.coverage.reasons
    for rule in group.proposed_egress:
        cidr = rule.cidr_ipv4 or rule.cidr_ipv6
        if cidr is None or not is_internet(str(ipaddress.ip_network(cidr).network_address)):
            continue
        assert ipaddress.ip_network(cidr).prefixlen == 0, rule  # port-scoped, never an address
        assert rule.ip_protocol != "-1", rule
        assert rule.evidence is not None and rule.evidence.internet == "port"
    # Every address any name may resolve to tomorrow is still reachable on 443.
    inventory = _inventory(estate)
    assert all(_permitted(rec, inventory, a) for name in estate.names for a in name.pool)


@PROPERTY
@given(estates())
def test_with_dns_rotating_names_stay_reachable_and_only_stable_names_are_pinned(
    tmp_path_factory: pytest.TempPathFactory, estate: Estate
) -> None:
    rec = _run(tmp_path_factory.mktemp("e"), estate, InternetPolicy.auto, with_dns=True)
    inventory = _inventory(estate)
    (group,) = rec.security_groups
    assert group.coverage.status == "ok", group.coverage.reasons
    rotating = {n.name for n in estate.names if n.rotating}
    for name in estate.names:
        if name.rotating:
            # Its future addresses (of the pool, not yet seen in any flow) are still permitted.
            assert all(_permitted(rec, inventory, a) for a in name.pool), name
    for rule in group.proposed_egress:
        evidence = rule.evidence
        if evidence is None or evidence.internet is None:
            continue
        assert not (evidence.internet == "pinned" and set(evidence.names or ()) & rotating), rule
        # Every internet rule whose destinations the logs name carries those names.
        seen = {n.name for n in estate.names if set(evidence.destinations) & set(n.pool)}
        assert seen <= set(evidence.names or ()), (rule, seen)
    # A stable name's whole set is pinned with its name, and nothing else of it is needed.
    for name in estate.names:
        if not name.rotating:
            pinned = {r.cidr_ipv4 for r in group.proposed_egress if r.evidence and r.evidence.internet == "pinned"
                      and name.name in (r.evidence.names or ())}  # fmt: skip
            assert pinned == {f"{a}/32" for a in name.pool}, name
    assert rec.dns is not None and rec.dns.allowlists
    (allowlist,) = rec.dns.allowlists
    assert set(allowlist.domains) == {n.name for n in estate.names}


def test_address_policy_pins_today_s_addresses_labelled(tmp_path: Path) -> None:
    estate = Estate((Name("svc0.example.com", ("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"), True),),
                    "all", ("eni-0a1",))  # fmt: skip
    rec = _run(tmp_path, estate, InternetPolicy.address, with_dns=False)
    (group,) = rec.security_groups
    internet = [r for r in group.proposed_egress if r.evidence and r.evidence.internet]
    assert {r.cidr_ipv4 for r in internet} == {"198.51.100.1/32", "198.51.100.3/32"}
    assert all(r.evidence and r.evidence.internet == "pinned" for r in internet)
    assert all(r.evidence and r.evidence.why[0] == "pinned: --internet address" for r in internet)


def test_a_fixed_partner_address_is_pinned_under_any_policy(tmp_path: Path) -> None:
    """A [[fixed]] table says the partner does not rotate: its address gets a /32 even with `port`."""
    from sgadvisor.config import load_config

    config = tmp_path / "sgadvisor.toml"
    config.write_text('[[fixed]]\naddress = "198.51.100.0/30"\nreason = "partner SFTP, contract IP"\n')
    fixed = tuple(load_config(config, ("recommend", "check")).fixed)
    names = (
        Name("svc0.example.com", ("198.51.100.1",), False),
        Name("svc1.example.com", ("198.51.101.1",), False),
    )
    estate = Estate(names, "all", ("eni-0a1",))
    flows_path, _ = _write(tmp_path, estate)
    inventory = _inventory(estate)
    flows = read_flows([flows_path], addresses=inventory.addresses)
    options = AnalysisOptions(internet=InternetOptions(policy=InternetPolicy.port, fixed=fixed))
    (group,) = build_recommendation(flows, inventory, options).security_groups
    rules = {(r.cidr_ipv4, r.evidence.internet if r.evidence else None) for r in group.proposed_egress}
    assert rules == {("198.51.100.1/32", "pinned"), ("0.0.0.0/0", "port")}


def test_a_fixed_table_that_is_no_address_is_a_clear_error(tmp_path: Path) -> None:
    from sgadvisor.config import load_config
    from sgadvisor.errors import InputError

    config = tmp_path / "sgadvisor.toml"
    config.write_text('[[fixed]]\naddress = "partner.example.com"\nreason = "x"\n')
    with pytest.raises(InputError, match=r"\[\[fixed\]\] #1: address: .*not an IP address or CIDR"):
        load_config(config, ("recommend", "check"))
