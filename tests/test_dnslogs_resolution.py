"""DnsLog: the names that resolved to an address for an ENI's addresses (CNAME chains followed, both
ways), forwarders kept apart, and the stability rule of DESIGN §6 (one answer set, at least 3 queries
on at least 2 UTC days)."""

from __future__ import annotations

from typing import Any

import pytest

from sgadvisor.dnslogs import MIN_DAYS, MIN_QUERIES, DnsLog, parse_record
from sgadvisor.dnslogs import store as store_module
from sgadvisor.dnslogs.store import QueryStore
from tests.test_dnslogs_reader import DAY, T0, iso
from tests.test_dnslogs_records import base

CLIENT, OTHER, FORWARDER = "10.0.1.10", "10.0.1.99", "10.0.0.53"
CDN = "203.0.113.5"


def q(
    name: str,
    *answers: tuple[str, str],
    src: str = CLIENT,
    at: int = T0,
    qtype: str = "A",
    rcode: str = "NOERROR",
    **more: Any,
) -> dict[str, Any]:
    return base(
        query_name=name + ".",
        query_type=qtype,
        rcode=rcode,
        query_timestamp=iso(at),
        srcaddr=src,
        answers=[{"Rdata": rdata, "Type": kind, "Class": "IN"} for kind, rdata in answers],
        **more,
    )


def a(address: str) -> tuple[str, str]:
    return ("AAAA" if ":" in address else "A", address)


def cname(target: str) -> tuple[str, str]:
    return ("CNAME", target + ".")


def log_of(*records: dict[str, Any]) -> DnsLog:
    store = QueryStore()
    for record in records:
        store.add(parse_record(record))
    return DnsLog(store.finish())


# ------------------------------------------------------------------------------------------ names_for


def test_cname_chain_query_name_first_targets_apart() -> None:
    log = log_of(q("api.partner.com", cname("api.partner.com.cdn.net"), a(CDN)))
    match = log.names_for([CLIENT], CDN)
    assert match.names == ("api.partner.com",)
    assert match.chain_targets == ("api.partner.com.cdn.net",)
    assert match.queries == 1 and match.forwarded == ()


def test_a_target_the_client_also_asked_for_is_a_name() -> None:
    log = log_of(
        q("api.partner.com", cname("edge.cdn.net"), a(CDN)),
        q("edge.cdn.net", a(CDN)),
    )
    match = log.names_for([CLIENT], CDN)
    assert match.names == ("api.partner.com", "edge.cdn.net") and match.chain_targets == ()


def test_longer_chains_in_chain_order() -> None:
    log = log_of(q("www.shop.example", cname("shop.example.cdn.net"), cname("e7.z.cdn.net"), a(CDN)))
    assert log.names_for([CLIENT], CDN).chain_targets == ("shop.example.cdn.net", "e7.z.cdn.net")
    assert log.chain_targets("www.shop.example") == ("shop.example.cdn.net", "e7.z.cdn.net")
    # A target never asked for: what followed it in the chains it was part of.
    assert log.chain_targets("shop.example.cdn.net") == ("e7.z.cdn.net",)
    assert log.chain_targets("e7.z.cdn.net") == ()
    assert log.chain_targets("never.seen") == ()


def test_chain_without_addresses_resolves_nothing() -> None:
    """An AAAA query of a v4-only name answers with the CNAME alone (Elastic's samples show it)."""
    log = log_of(q("repo.example", cname("s3-r-w.example"), qtype="AAAA"))
    assert log.chain_targets("repo.example") == ("s3-r-w.example",)
    assert log.names_for([CLIENT], CDN).names == ()


def test_ipv6_answers_and_canonical_lookup() -> None:
    log = log_of(q("v6.example", a("2001:db8::5"), qtype="AAAA"))
    assert log.names_for([CLIENT], "2001:DB8:0::5").names == ("v6.example",)
    assert log.names_for([CLIENT], "2001:db8::5").address == "2001:db8::5"


def test_only_the_clients_queries_count() -> None:
    log = log_of(q("mine.example", a(CDN)), q("theirs.example", a(CDN), src=OTHER))
    assert log.names_for([CLIENT], CDN).names == ("mine.example",)
    assert log.names_for([OTHER], CDN).names == ("theirs.example",)
    assert log.names_for([CLIENT, OTHER], CDN).names == ("mine.example", "theirs.example")
    assert log.names_for(["10.9.9.9", "junk"], CDN).names == ()
    assert log.names_for([CLIENT], "198.51.100.1").names == ()


def test_failed_and_blocked_queries_add_no_address() -> None:
    log = log_of(
        q("gone.example", rcode="NXDOMAIN"),
        q("broken.example", a(CDN), rcode="SERVFAIL"),
        q("blocked.example", a(CDN), firewall_rule_action="BLOCK"),
        q("alerted.example", a(CDN), firewall_rule_action="ALERT"),
    )
    assert log.names_for([CLIENT], CDN).names == ("alerted.example",)
    assert log.names() == ["alerted.example", "blocked.example", "broken.example", "gone.example"]


# ------------------------------------------------------------------------------------------ forwarders


def test_inbound_endpoint_queries_are_forwarded_never_the_clients() -> None:
    inbound = {"resolver_endpoint": "rslvr-in-0abc", "resolver_network_interface": "rni-0abc"}
    log = log_of(
        q("onprem-app.example", a(CDN), srcids=inbound),  # srcaddr equals the client's address
        q("shared.example", a(CDN), srcids=inbound, src="192.168.7.7"),
        q("shared.example", a(CDN)),
    )
    match = log.names_for([CLIENT], CDN)
    assert match.names == ("shared.example",)
    assert match.forwarded == ("onprem-app.example",)  # shared.example is the client's own already
    assert match.forwarded_via == ("rslvr-in-0abc",)


def test_outbound_endpoint_queries_stay_the_clients() -> None:
    outbound = {"instance": "i-0abc", "resolver_endpoint": "rslvr-out-0abc"}
    match = log_of(q("corp.example", a(CDN), srcids=outbound)).names_for([CLIENT], CDN)
    assert match.names == ("corp.example",) and match.forwarded == ()


def test_queries_from_a_forwarder_in_the_vpc_are_kept_apart() -> None:
    log = log_of(q("via-ad-dns.example", a(CDN), src=FORWARDER), q("own.example", a(CDN)))
    plain = log.names_for([CLIENT], CDN)
    assert plain.names == ("own.example",) and plain.forwarded == ()
    told = log.names_for([CLIENT], CDN, forwarders=[FORWARDER])
    assert told.names == ("own.example",)
    assert told.forwarded == ("via-ad-dns.example",) and told.forwarded_via == (FORWARDER,)
    # The forwarder's own ENI asking: its queries are its own.
    assert log.names_for([FORWARDER], CDN, forwarders=[FORWARDER]).names == ("via-ad-dns.example",)


def test_vpc_scopes_address_matching() -> None:
    log = log_of(
        q("in-a.example", a(CDN), vpc_id="vpc-a"),
        q("in-b.example", a(CDN), vpc_id="vpc-b"),
        q("fwd-b.example", a(CDN), vpc_id="vpc-b", src=FORWARDER),
    )
    assert log.names_for([CLIENT], CDN, vpc_id="vpc-a").names == ("in-a.example",)
    assert log.names_for([CLIENT], CDN).names == ("in-a.example", "in-b.example")
    assert log.names_for([CLIENT], CDN, vpc_id="vpc-zzz").names == ()
    assert log.names_for([CLIENT], CDN, forwarders=[FORWARDER], vpc_id="vpc-a").forwarded == ()
    assert log.names_for([CLIENT], CDN, forwarders=[FORWARDER], vpc_id="vpc-b").forwarded == (
        "fwd-b.example",
    )


# ------------------------------------------------------------------------------------------ stability


def test_the_thresholds_are_those_of_the_design() -> None:
    assert (MIN_QUERIES, MIN_DAYS) == (3, 2)


def test_three_queries_on_two_days_one_answer_set_is_stable() -> None:
    log = log_of(
        q("api.saas.example", a("198.51.100.1"), a("198.51.100.2"), at=T0),
        q("api.saas.example", a("198.51.100.2"), a("198.51.100.1"), at=T0 + 3600),  # order differs
        q(
            "api.saas.example",
            a("198.51.100.1"),
            a("198.51.100.2"),
            a("198.51.100.1"),
            at=T0 + DAY,
            src=OTHER,
        ),
    )
    result = log.stability("API.Saas.Example.", 4)
    assert result.stable
    assert result.addresses == frozenset({"198.51.100.1", "198.51.100.2"})
    assert (result.queries, result.days, result.answer_sets) == (3, 2, 1)
    assert result.name == "api.saas.example" and result.family == 4


def test_rotating_name_is_not_stable() -> None:
    log = log_of(
        q("cdn.example", a("198.51.100.1"), at=T0),
        q("cdn.example", a("198.51.100.1"), at=T0 + 60),
        q("cdn.example", a("198.51.100.9"), at=T0 + DAY),
        q("cdn.example", a("198.51.100.1"), at=T0 + 2 * DAY),
    )
    result = log.stability("cdn.example", 4)
    assert not result.stable
    assert result.answer_sets == 2 and result.queries == 4 and result.days == 3
    assert result.addresses == frozenset({"198.51.100.1", "198.51.100.9"})


def test_a_name_seen_twice_is_not_stable() -> None:
    log = log_of(q("rare.example", a(CDN), at=T0), q("rare.example", a(CDN), at=T0 + DAY))
    result = log.stability("rare.example", 4)
    assert not result.stable and (result.queries, result.days, result.answer_sets) == (2, 2, 1)


def test_three_queries_on_one_day_is_not_stable() -> None:
    log = log_of(*(q("busy.example", a(CDN), at=T0 + 60 * i) for i in range(5)))
    result = log.stability("busy.example", 4)
    assert not result.stable and (result.queries, result.days) == (5, 1)


def test_same_addresses_through_another_cname_is_one_answer_set() -> None:
    """A chain that changes but lands on the same addresses is "the same set of addresses" after
    CNAMEs: the name does not rotate."""
    log = log_of(
        q("app.example", cname("a.cdn.net"), a(CDN), at=T0),
        q("app.example", cname("b.cdn.net"), a(CDN), at=T0 + DAY),
        q("app.example", a(CDN), at=T0 + DAY + 60),
    )
    assert log.stability("app.example", 4).stable
    assert log.chain_targets("app.example") == ("a.cdn.net", "b.cdn.net")


def test_an_empty_answer_is_a_different_set() -> None:
    log = log_of(
        q("flaky.example", a(CDN), at=T0),
        q("flaky.example", at=T0 + DAY),  # NOERROR, no A record that time
        q("flaky.example", a(CDN), at=T0 + DAY + 60),
    )
    result = log.stability("flaky.example", 4)
    assert not result.stable and result.answer_sets == 2


def test_families_are_judged_apart() -> None:
    log = log_of(
        *(q("dual.example", a(CDN), at=T0 + i * DAY) for i in range(3)),
        q("dual.example", a("2001:db8::1"), qtype="AAAA", at=T0),
        q("dual.example", a("2001:db8::2"), qtype="AAAA", at=T0 + DAY),
    )
    four, six = log.stability("dual.example", 4), log.stability("dual.example", 6)
    assert four.stable and four.addresses == frozenset({CDN}) and four.queries == 3
    assert not six.stable and six.answer_sets == 2 and six.queries == 2
    with pytest.raises(ValueError, match="4 or 6"):
        log.stability("dual.example", 5)


def test_failed_queries_are_no_evidence_of_stability() -> None:
    log = log_of(
        q("x.example", a(CDN), at=T0),
        q("x.example", a(CDN), at=T0 + DAY),
        q("x.example", rcode="SERVFAIL", at=T0 + DAY + 1),
    )
    result = log.stability("x.example", 4)
    assert not result.stable and result.queries == 2


def test_unknown_name() -> None:
    result = log_of().stability("nothing.example", 4)
    assert not result.stable and result.addresses == frozenset() and result.queries == 0


# ------------------------------------------------------------------------------------------ store


def _sample() -> list[dict[str, Any]]:
    """200 queries of 20 keys: 10 names (with 2 chain targets, 5 addresses, 2 clients) on 2 days."""
    return [
        q(
            f"n{i % 10}.example",
            cname(f"t{i % 2}.cdn.net"),
            a(f"198.51.100.{i % 5}"),
            at=T0 + (i // 100) * DAY + i,
            src=f"10.0.1.{i % 2}",
        )
        for i in range(200)
    ]


def _answers(log: DnsLog) -> list[Any]:
    return [
        *(log.names_for(["10.0.1.0"], f"198.51.100.{i}") for i in range(5)),
        *(log.stability(f"n{i}.example", 4) for i in range(10)),
        *(log.chain_targets(f"n{i}.example") for i in range(10)),
    ]


def test_folding_in_small_batches_answers_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store folds rows every FLUSH_ROWS; a million rows are not needed to check the fold."""
    whole = _answers(log_of(*_sample()))
    monkeypatch.setattr(store_module, "FLUSH_ROWS", 3)
    monkeypatch.setattr(store_module, "_MAX_PARTS", 2)
    folded = log_of(*_sample())
    assert _answers(folded) == whole
    assert folded.tables.by_name.height == 20  # one row per key and day
    assert whole[0].queries == 20 and whole[5].stable  # n0.example from 10.0.1.0: i = 0, 10, …, 190


def test_empty_log() -> None:
    log = DnsLog.empty()
    assert log.names() == [] and log.names_for([CLIENT], CDN).names == ()
    assert log.sources == [] and log.accounting.records == 0
