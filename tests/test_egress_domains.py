"""egress-domains.tf and the DNS evidence in report.html and summary.md (issue: internet egress that
survives IP rotation).

Built from sample_data/expected/recommendation.json with a ``dns`` section and internet evidence added
by hand, so these tests read only the renderers. Real terraform (validate, fmt) runs in
tests/test_terraform.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import hcl2
import pytest

from sgadvisor.check.baseline import load_baseline
from sgadvisor.models import DnsAccounting, DnsIssue, DnsOut, DomainAllowlist, Recommendation
from sgadvisor.render import OutputFormat, RenderContext, render_all
from sgadvisor.render.html import render_html
from sgadvisor.render.markdown import MAX_CHARS, render_summary
from sgadvisor.render.terraform_domains import (
    ASSOCIATION_PRIORITY,
    DOMAINS_FILE,
    MAX_DOMAINS_PER_LIST,
    firewall_domain,
    plan_firewall,
)
from tests.conftest import REPO

EXPECTED = REPO / "sample_data" / "expected" / "recommendation.json"
VPC = "vpc-02f3eccc6d323ce24"
NAMES = ["api.partner.example.", "Updates.Vendor.example"]
TARGETS = ["d111.cloudfront.net.", "api.partner.example"]  # the second is a name already: listed once
HOSTILE_NAMES = [
    'evil"quote.example',
    "interp${var.secret}.example",
    "directive%{ if true }x%{ endif }.example",
    "new\nline.example",
    "##[error]ci.example",
    "*.wildcard.example",
    "_dmarc.example.com",
    "<script>alert(1)</script>",
]


def base_recommendation() -> Recommendation:
    """The main job's recommendation without its DNS evidence (each test adds what it needs)."""
    sample = Recommendation.model_validate_json(EXPECTED.read_text(encoding="utf-8"))
    groups = [
        group.model_copy(
            update={
                "proposed_egress": [
                    rule.model_copy(
                        update={
                            "evidence": rule.evidence.model_copy(update={"internet": None, "names": None})
                        }
                    )
                    if rule.evidence is not None
                    else rule
                    for rule in group.proposed_egress
                ]
            }
        )
        for group in sample.security_groups
    ]
    return sample.model_copy(update={"dns": None, "security_groups": groups})


def dns_section(
    allowlists: list[DomainAllowlist] | None = None,
    action: Literal["ALERT", "BLOCK"] = "ALERT",
    all_names: list[str] | None = None,
) -> DnsOut:
    if allowlists is None:
        allowlists = [DomainAllowlist(vpc_id=VPC, domains=NAMES, cname_targets=TARGETS)]
    return DnsOut(
        sources=["dns/AWSLogs/123456789012/vpcdnsquerylogs/query.log.gz"],
        accounting=DnsAccounting(
            records=12,
            used=9,
            malformed=1,
            filtered={"no answer": 2},
            issues=[DnsIssue(file="dns/query.log.gz", line=7, reason="not a JSON object")],
        ),
        action=action,
        allowlists=allowlists,
        forwarded=["30 queries came from a forwarding resolver (10.0.2.53): counted for its clients."],
        all_names=all_names,
    )


def with_internet(recommendation: Recommendation, names: list[str] | None = None) -> Recommendation:
    """Every proposed rule to a public /32 made "pinned" and to a wider public CIDR "port", with names."""
    groups = []
    for group in recommendation.security_groups:
        proposed = []
        for rule in group.proposed_egress:
            cidr = rule.cidr_ipv4 or ""
            if rule.evidence is not None and cidr and not cidr.startswith("10."):
                kind = "pinned" if cidr.endswith("/32") else "port"
                update = {"internet": kind, "names": list(names if names is not None else NAMES)}
                rule = rule.model_copy(update={"evidence": rule.evidence.model_copy(update=update)})
            proposed.append(rule)
        groups.append(group.model_copy(update={"proposed_egress": proposed}))
    return recommendation.model_copy(update={"security_groups": groups})


def dns_recommendation(**dns: Any) -> Recommendation:
    """The sample with internet evidence and a dns section (keyword arguments go to dns_section)."""
    return with_internet(base_recommendation()).model_copy(update={"dns": dns_section(**dns)})


def terraform_files(recommendation: Recommendation) -> dict[str, str]:
    return dict(render_all(recommendation, [OutputFormat.TERRAFORM], RenderContext()).files)


def resources(text: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{type: {name: body}}`` of a .tf file, as python-hcl2 (what `sgadvisor check` uses) reads it."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for block in hcl2.loads(text).get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                out.setdefault(rtype.strip('"'), {})[name.strip('"')] = body
    return out


def _unquote(value: Any) -> Any:
    return value.strip('"') if isinstance(value, str) else value


# ------------------------------------------------------------------------------- file or no file


def test_without_dns_evidence_nothing_is_written_and_nothing_changes() -> None:
    plain = base_recommendation()
    files = terraform_files(plain)
    assert set(files) == {"egress.tf", "removals.sh"}
    assert plan_firewall(plain) is None
    empty = plain.model_copy(update={"dns": dns_section(allowlists=[])})
    assert terraform_files(empty) == files, "DNS evidence without allowlists writes no egress-domains.tf"
    with_dns = terraform_files(dns_recommendation())
    assert DOMAINS_FILE in with_dns
    assert {k: v for k, v in with_dns.items() if k != DOMAINS_FILE} == files, "egress.tf does not change"
    page, summary = render_html(plain), render_summary(plain)
    for text in (page, summary):
        assert "egress-domains" not in text and "DNS evidence" not in text
        assert 'class="pin' not in text and "— pinned" not in text and "port-scoped" not in text


def test_the_file_holds_one_allowlist_rule_group_per_vpc() -> None:
    text = terraform_files(dns_recommendation())[DOMAINS_FILE]
    found = resources(text)
    lists = found["aws_route53_resolver_firewall_domain_list"]
    assert [_unquote(d) for d in lists["everything_else"]["domains"]] == ["*"]
    allowed = [_unquote(d) for d in lists["vpc_02f3eccc6d323ce24_allowed"]["domains"]]
    # lower case, no trailing dot (the provider strips it when it reads the list back: no perpetual diff),
    # names first, then the CNAME-chain targets that are not names already
    assert allowed == ["api.partner.example", "updates.vendor.example", "d111.cloudfront.net"]
    assert set(found["aws_route53_resolver_firewall_rule_group"]) == {"vpc_02f3eccc6d323ce24"}
    rules = found["aws_route53_resolver_firewall_rule"]
    allow, rest = rules["vpc_02f3eccc6d323ce24_allow"], rules["vpc_02f3eccc6d323ce24_everything_else"]
    assert _unquote(allow["action"]) == "ALLOW"
    assert _unquote(allow["firewall_domain_redirection_action"]) == "TRUST_REDIRECTION_DOMAIN"
    assert "vpc_02f3eccc6d323ce24_allowed" in allow["firewall_domain_list_id"]
    assert _unquote(rest["action"]) == "ALERT" and "block_response" not in rest
    assert "everything_else" in rest["firewall_domain_list_id"]
    assert allow["priority"] < rest["priority"], "the allowlist is checked before '*'"
    association = found["aws_route53_resolver_firewall_rule_group_association"]["vpc_02f3eccc6d323ce24"]
    assert _unquote(association["vpc_id"]) == VPC
    assert 101 <= association["priority"] == ASSOCIATION_PRIORITY <= 9900
    # self-contained and compatible: no terraform/provider blocks (egress.tf has none either)
    assert not re.search(r"^(terraform|provider)\b", text, re.MULTILINE)
    # the header says what it enforces and what it does not, deterministically
    assert "whatever addresses" in text and "straight to an IP address" in text
    assert "DNS over" in text and "cache outside Route 53 Resolver" in text
    assert text == terraform_files(dns_recommendation())[DOMAINS_FILE]


def test_block_only_when_asked() -> None:
    text = terraform_files(dns_recommendation(action="BLOCK"))[DOMAINS_FILE]
    rest = resources(text)["aws_route53_resolver_firewall_rule"]["vpc_02f3eccc6d323ce24_everything_else"]
    assert _unquote(rest["action"]) == "BLOCK" and _unquote(rest["block_response"]) == "NODATA"
    assert "--dns-firewall-action block" in text


def test_cname_targets_are_listed() -> None:
    allowlists = [DomainAllowlist(vpc_id=VPC, domains=["shop.example"], cname_targets=["e1.cdn.example."])]
    text = terraform_files(dns_recommendation(allowlists=allowlists))[DOMAINS_FILE]
    lists = resources(text)["aws_route53_resolver_firewall_domain_list"]
    assert [_unquote(d) for d in lists["vpc_02f3eccc6d323ce24_allowed"]["domains"]] == [
        "shop.example",
        "e1.cdn.example",
    ]
    assert "# CNAME-chain targets of those names" in text


def test_hostile_names_are_left_out_and_only_ever_in_one_comment_line() -> None:
    allowlists = [DomainAllowlist(vpc_id=VPC, domains=[*NAMES, *HOSTILE_NAMES], cname_targets=[])]
    rendered = render_all(
        dns_recommendation(allowlists=allowlists), [OutputFormat.TERRAFORM], RenderContext()
    )
    text = rendered.files[DOMAINS_FILE]
    allowed = resources(text)["aws_route53_resolver_firewall_domain_list"]["vpc_02f3eccc6d323ce24_allowed"]
    assert [_unquote(d) for d in allowed["domains"]] == ["api.partner.example", "updates.vendor.example"]
    for line in text.splitlines():
        if any(marker in line for marker in ("evil", "interp", "directive", "line.example", "ci.example")):
            assert line.startswith("#   "), line  # a comment line of its own, never a string
    assert "##[" not in text, "no CI command text in the file"
    assert "new\\nline.example" in text  # the newline made visible, the comment stays one line
    assert any("8 DNS name(s) left out" in w for w in rendered.warnings)
    # python-hcl2 (sgadvisor check) reads it, and the folder still gives the same egress baseline
    assert resources(text)


def test_domain_syntax_is_what_dns_firewall_accepts() -> None:
    assert firewall_domain("Api.Example.COM.") == ("api.example.com", "")
    assert firewall_domain("xn--bcher-kva.example")[0] == "xn--bcher-kva.example"
    for refused in (
        "*.example.com",
        "*",
        "a_b.example",
        "bücher.example",
        "a..b",
        ".",
        "",
        "a" * 64 + ".example",
        ("a" * 60 + ".") * 5,
    ):
        domain, reason = firewall_domain(refused)
        assert domain is None and reason, refused


def test_long_allowlists_are_split_into_lists_of_at_most_1000() -> None:
    names = [f"host{i:04d}.example" for i in range(2345)]
    allowlists = [DomainAllowlist(vpc_id=VPC, domains=names, cname_targets=["edge.cdn.example"])]
    text = terraform_files(dns_recommendation(allowlists=allowlists))[DOMAINS_FILE]
    found = resources(text)
    lists = {k: v for k, v in found["aws_route53_resolver_firewall_domain_list"].items() if "allowed" in k}
    assert [len(v["domains"]) for v in lists.values()] == [MAX_DOMAINS_PER_LIST, MAX_DOMAINS_PER_LIST, 346]
    listed = [_unquote(d) for v in lists.values() for d in v["domains"]]
    assert listed == [*sorted(names), "edge.cdn.example"]
    rules = found["aws_route53_resolver_firewall_rule"]
    assert sorted((r["priority"], _unquote(r["action"])) for r in rules.values()) == [
        (100, "ALLOW"),
        (200, "ALLOW"),
        (300, "ALLOW"),
        (400, "ALERT"),
    ]
    assert len({_unquote(v["name"]) for v in lists.values()}) == 3


def test_allowlists_of_one_vpc_merge_and_a_vpc_without_an_acceptable_name_gets_no_rule_group() -> None:
    allowlists = [
        DomainAllowlist(vpc_id=VPC, domains=["a.example"], cname_targets=[]),
        DomainAllowlist(vpc_id=VPC, domains=["b.example"], cname_targets=[]),
        DomainAllowlist(vpc_id="vpc-0000000000000000b", domains=["_srv._tcp.example"], cname_targets=[]),
    ]
    rendered = render_all(
        dns_recommendation(allowlists=allowlists), [OutputFormat.TERRAFORM], RenderContext()
    )
    found = resources(rendered.files[DOMAINS_FILE])
    assert set(found["aws_route53_resolver_firewall_rule_group_association"]) == {"vpc_02f3eccc6d323ce24"}
    allowed = found["aws_route53_resolver_firewall_domain_list"]["vpc_02f3eccc6d323ce24_allowed"]
    assert [_unquote(d) for d in allowed["domains"]] == ["a.example", "b.example"]
    assert "# ---- vpc-0000000000000000b: no rule group" in rendered.files[DOMAINS_FILE]
    assert any("no rule group for vpc-0000000000000000b" in w for w in rendered.warnings)


def test_check_reads_a_folder_with_both_files(tmp_path: Path) -> None:
    """`sgadvisor check --baseline DIR` parses every .tf file: egress-domains.tf must not disturb it."""
    for name, text in terraform_files(dns_recommendation()).items():
        (tmp_path / name).write_text(text)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "egress.tf").write_text((tmp_path / "egress.tf").read_text())
    assert load_baseline(tmp_path).groups == load_baseline(alone).groups


# -------------------------------------------------------------------------- report and summary


def test_report_shows_names_pinned_and_port_scoped_beside_internet_rules() -> None:
    recommendation = dns_recommendation()
    page = render_html(recommendation)
    assert 'class="pin pinned">pinned</span>' in page
    internet = [
        r
        for g in recommendation.security_groups
        for r in g.proposed_egress
        if r.evidence and r.evidence.internet
    ]
    assert internet, "the sample has internet rules"
    assert "<code>api.partner.example.</code>" in page
    section = page[page.index('<section id="dns">') : page.index('<section id="accounting">')]
    assert "dns/AWSLogs/123456789012/vpcdnsquerylogs/query.log.gz" in section
    assert '<code>dns/query.log.gz</code></td><td class="num">7</td><td>not a JSON object</td>' in section
    assert "whatever addresses they rotate to" in section
    assert "connections straight to an IP address" in section and "DNS over HTTPS" in section
    assert "cache outside Route 53 Resolver" in section
    assert "forwarding resolver" in section
    assert "<code>d111.cloudfront.net</code>" in section
    assert "--show-all-names" not in section.split("</p>", 1)[1], "no all-names list unless asked"
    assert '<a href="#dns">DNS evidence</a>' in page


def test_report_shows_every_name_only_with_show_all_names() -> None:
    secret = "internal-payroll.corp.example"
    assert secret not in render_html(dns_recommendation())
    page = render_html(dns_recommendation(all_names=[secret, "api.partner.example"]))
    assert f"<code>{secret}</code>" in page and "Every name queried (2)" in page


def test_port_scoped_rules_say_any_address_on_these_ports() -> None:
    recommendation = dns_recommendation()
    groups = []
    for group in recommendation.security_groups:
        proposed = [
            r.model_copy(update={"evidence": r.evidence.model_copy(update={"internet": "port"})})
            if r.evidence and r.evidence.internet
            else r
            for r in group.proposed_egress
        ]
        groups.append(group.model_copy(update={"proposed_egress": proposed}))
    port = recommendation.model_copy(update={"security_groups": groups})
    page, summary = render_html(port), render_summary(port)
    assert 'class="pin port">port-scoped</span> any address on these ports' in page
    assert "pinned</span>" not in page
    assert "— port-scoped — names: api.partner.example., Updates.Vendor.example" in summary


def test_hostile_names_stay_text_in_report_and_summary() -> None:
    recommendation = with_internet(base_recommendation(), names=HOSTILE_NAMES).model_copy(
        update={"dns": dns_section([DomainAllowlist(vpc_id=VPC, domains=HOSTILE_NAMES, cname_targets=[])])}
    )
    page = render_html(recommendation)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "##[error]" not in page and "new\nline" not in page
    summary = render_summary(recommendation)
    assert "<script>" not in summary and "##[error]" not in summary and "new\nline" not in summary
    assert len(summary) <= MAX_CHARS


def test_summary_shows_names_pinned_and_one_line_on_the_domains_file() -> None:
    summary = render_summary(dns_recommendation())
    assert "— pinned — names: api.partner.example., Updates.Vendor.example:" in summary
    line = next(line for line in summary.splitlines() if line.startswith("egress-domains.tf"))
    assert "allows 2 DNS names in 1 VPC" in line and "ALERT" in line
    assert "1 malformed DNS query-log lines skipped" in summary
    assert "BLOCK (NODATA)" in render_summary(dns_recommendation(action="BLOCK"))


def test_summary_caps_names_per_rule() -> None:
    names = [f"n{i}.example" for i in range(9)]
    summary = render_summary(with_internet(base_recommendation(), names=names))
    assert "n4.example, … and 4 more" in summary and "n5.example" not in summary


@pytest.mark.parametrize("action", ["ALERT", "BLOCK"])
def test_report_says_what_happens_to_other_names(action: Literal["ALERT", "BLOCK"]) -> None:
    page = render_html(dns_recommendation(action=action))
    assert ("<b>blocks</b>" in page) == (action == "BLOCK")
    assert ("<b>alerts</b>" in page) == (action == "ALERT")
