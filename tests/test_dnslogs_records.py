"""Route 53 Resolver query-log records: field mapping on public samples, normalisation, wrong shapes.

The public samples live in ``tests/fixtures/dnslogs`` (README.md there says where each comes from): the
example record of the Route 53 Developer Guide and the raw record of OpenSearch security-analytics'
Route 53 detector test (an inbound endpoint). Their field values are asserted one by one, so a mapping
error (a name left with its dot, a missed ``srcids`` key, a wrong family) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.dnslogs import DnsQuery, RecordError, parse_record
from sgadvisor.dnslogs.records import normalize_name, parse_timestamp

FIXTURES = Path(__file__).parent / "fixtures" / "dnslogs"


def base(**changes: Any) -> dict[str, Any]:
    """A record as AWS writes it (the fields of the developer guide), with ``changes`` applied; a value
    of ``...`` removes the field."""
    record: dict[str, Any] = {
        "version": "1.100000",
        "account_id": "111122223333",
        "region": "us-east-1",
        "vpc_id": "vpc-0abc",
        "query_timestamp": "2021-02-04T17:51:55Z",
        "query_name": "api.partner.example.",
        "query_type": "A",
        "query_class": "IN",
        "rcode": "NOERROR",
        "answers": [{"Rdata": "203.0.113.5", "Type": "A", "Class": "IN"}],
        "srcaddr": "10.0.1.10",
        "srcport": "56067",
        "transport": "UDP",
        "srcids": {"instance": "i-0abc"},
    }
    for key, value in changes.items():
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    return record


# ------------------------------------------------------------------------------------ public samples


def test_developer_guide_example_maps_every_field() -> None:
    """Route 53 Developer Guide, "Resolver query log example" (awsdocs/amazon-route53-docs @ b243ff3b):
    a PTR query DNS Firewall blocked, pretty-printed with the keys in no particular order."""
    value = json.loads((FIXTURES / "aws-docs" / "resolver-query-logs-example.json").read_text())
    query = parse_record(value)
    assert query == DnsQuery(
        timestamp=1612461115,  # 2021-02-04T17:51:55Z
        query_name="15.3.4.32.in-addr.arpa",
        query_type="PTR",
        rcode="NOERROR",
        answers=(("PTR", "203.0.113.9"),),
        srcaddr="4.5.64.102",
        vpc_id="vpc-7example",
        via_resolver_endpoint=False,
        resolver_endpoint=None,
        instance="i-0d15cd0d3example",
        firewall_action="BLOCK",
    )
    assert not query.resolves  # blocked by DNS Firewall: its answer is the firewall's, not the name's
    assert not query.inbound
    assert query.chain() == () and query.addresses() == ()


def test_opensearch_inbound_endpoint_sample() -> None:
    """OpenSearch security-analytics, OCSFDetectorRestApiIT.rawRoute53Doc (@ 8332aea6): a query that came
    in through an inbound endpoint (srcids: resolver_endpoint + resolver_network_interface, no
    instance), with a DNS Firewall ALERT."""
    value = json.loads((FIXTURES / "opensearch" / "route53-inbound-endpoint.json").read_text())
    query = parse_record(value)
    assert query.timestamp == 1665694956  # 2022-10-13T21:02:36Z; OpenSearch's OCSF doc says 1665694956000 ms
    assert query.query_name == "ip-127-0-0-62.alert.firewall.canary"
    assert (query.query_type, query.rcode) == ("A", "NOERROR")
    assert query.answers == (("A", "127.0.0.62"),)
    assert query.srcaddr == "10.200.21.100"
    assert query.vpc_id == "vpc-00000000000000000"
    assert query.via_resolver_endpoint and query.resolver_endpoint == "rslvr-in-0000000000000000"
    assert query.inbound
    assert query.instance is None
    assert query.firewall_action == "ALERT"
    assert query.resolves  # ALERT lets the answer through
    assert query.addresses() == ("127.0.0.62",)


def test_outbound_endpoint_query_is_the_clients_own() -> None:
    """An outbound endpoint forwards the client's query: the Resolver logs the client's srcaddr and
    instance beside ``resolver_endpoint: rslvr-out-…`` (shape as in a public write-up of a SERVFAIL
    through an outbound endpoint, values made up)."""
    query = parse_record(
        base(srcids={"instance": "i-0abc", "resolver_endpoint": "rslvr-out-0123456789abcdef0"})
    )
    assert query.via_resolver_endpoint and not query.inbound
    assert query.srcaddr == "10.0.1.10" and query.instance == "i-0abc"


def test_guide_spelling_resolver_hyphen_endpoint_is_read() -> None:
    """The developer guide's field list (and its 2020 example) spell the key ``resolver-endpoint``."""
    query = parse_record(base(srcids={"instance": "i-0abc", "resolver-endpoint": "rslvr-in-0abc"}))
    assert query.resolver_endpoint == "rslvr-in-0abc" and query.inbound


@pytest.mark.parametrize("srcids", [{}, None, ...], ids=["empty", "null", "absent"])
def test_srcids_may_be_empty(srcids: Any) -> None:
    """Elastic's pipeline samples carry ``"srcids": {}`` on most queries."""
    query = parse_record(base(srcids=srcids))
    assert query.instance is None and not query.via_resolver_endpoint


# ------------------------------------------------------------------------------------ normalisation


def test_names_lowercase_without_trailing_dot_idna_kept() -> None:
    query = parse_record(
        base(
            query_name="API.Partner.Example.",
            answers=[
                {"Rdata": "Api.Partner.Example.CDN.net.", "Type": "cname", "Class": "IN"},
                {"Rdata": "xn--bcher-kva.example.", "Type": "CNAME", "Class": "IN"},
                {"Rdata": "203.0.113.5", "Type": "A", "Class": "IN"},
            ],
        )
    )
    assert query.query_name == "api.partner.example"
    assert query.chain() == ("api.partner.example.cdn.net", "xn--bcher-kva.example")
    assert query.answers[0][0] == "CNAME"


def test_query_name_without_trailing_dot_is_the_same_name() -> None:
    """Elastic's sample ends with an ip6.arpa query_name written without the dot."""
    assert parse_record(base(query_name="a.example")).query_name == "a.example"
    assert normalize_name(".") == "."


def test_addresses_are_canonical() -> None:
    query = parse_record(
        base(
            query_type="AAAA",
            srcaddr="2001:DB8:0:0::0A",
            answers=[
                {"Rdata": "2001:0DB8:0000::1", "Type": "AAAA", "Class": "IN"},
                {"Rdata": " 2001:db8::2 ", "Type": "AAAA", "Class": "IN"},
            ],
        )
    )
    assert query.srcaddr == "2001:db8::a"
    assert query.addresses() == ("2001:db8::1", "2001:db8::2")


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2021-02-04T17:51:55Z", 1612461115),
        ("2017-03-16T19:20:25.177Z", 1489692025),  # the guide's format example: milliseconds dropped
        ("2021-02-04T18:51:55+01:00", 1612461115),
    ],
)
def test_timestamps(text: str, epoch: int) -> None:
    assert parse_timestamp(text) == epoch


def test_time_without_zone_is_refused_not_guessed() -> None:
    """Panther's normalised samples write "2022-06-25 00:27:53": not what AWS writes."""
    with pytest.raises(RecordError, match="no time zone"):
        parse_timestamp("2022-06-25 00:27:53")


@pytest.mark.parametrize("rcode", ["NXDOMAIN", "SERVFAIL", "REFUSED"])
def test_only_noerror_resolves(rcode: str) -> None:
    assert not parse_record(base(rcode=rcode, answers=[])).resolves
    assert parse_record(base(rcode="noerror")).resolves


# ------------------------------------------------------------------------------------ wrong shapes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"query_name": ...}, "query_name is missing"),
        ({"query_name": 7}, "query_name is a number, not text"),
        ({"query_name": ""}, "query_name is empty"),
        ({"query_name": "a b.example."}, "query_name holds spaces or control characters"),
        ({"query_name": "x" * 2000}, "longer than any DNS name"),
        ({"query_timestamp": ...}, "query_timestamp is missing"),
        ({"query_timestamp": "yesterday"}, "not an ISO 8601 time"),
        ({"srcaddr": "not-an-ip"}, "srcaddr 'not-an-ip' is not an IP address"),
        ({"vpc_id": None}, "vpc_id is null, not text"),
        ({"rcode": ["NOERROR"]}, "rcode is a list, not text"),
        ({"answers": ...}, "answers is missing"),
        ({"answers": {"Rdata": "1.2.3.4", "Type": "A"}}, "answers is an object, not a list"),
        ({"answers": ["1.2.3.4"]}, r"answers\[0\] is text, not an object"),
        ({"answers": [{"Type": "A"}]}, r"answers\[0\].Rdata is missing"),
        ({"answers": [{"Rdata": "192.0.2e.44", "Type": "A"}]}, r"answers\[0\].Rdata '192.0.2e.44'"),
        ({"answers": [{"Rdata": "2001:db8::1", "Type": "A"}]}, r"answers\[0\]: A record with address"),
        ({"srcids": "i-0abc"}, "srcids is text, not an object"),
        ({"srcids": {"instance": 5}}, "srcids.instance is a number, not text"),
        ({"query_type": "A A"}, "is not a DNS type or code"),
    ],
)
def test_wrong_shapes_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_record(base(**changes))


@pytest.mark.parametrize("value", [[], "text", 5, None])
def test_a_record_is_an_object(value: Any) -> None:
    with pytest.raises(RecordError, match="a record is a JSON object"):
        parse_record(value)


def test_messages_never_quote_a_name() -> None:
    """Query names are sensitive; a malformed record's reason ends up in recommendation.json."""
    for name in ("secret project.example.", "secret\tproject.example."):
        with pytest.raises(RecordError) as caught:
            parse_record(base(query_name=name))
        assert "secret" not in str(caught.value)
    with pytest.raises(RecordError) as caught:
        parse_record(base(answers=[{"Rdata": "secret project.example.", "Type": "CNAME", "Class": "IN"}]))
    assert "secret" not in str(caught.value)
