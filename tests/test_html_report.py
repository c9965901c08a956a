"""report.html: the self-contained review page (DESIGN §1, §5; issue 4 points 3-4).

Two layers. Unit tests read the rendered text: every section and change is there, ids carry their Name
tags, the page references nothing outside itself, the CSP hashes match the inline script and style,
output is byte-stable, and the flow graph folds what does not fit. Browser tests (slow) open the file in
the system chromium through playwright: no console errors and no network requests, filtering, sorting,
a screenshot, and hostile names that must stay text (no dialog, no injected element) even with the CSP
taken out, so the escaping itself is what is proven.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from markupsafe import escape

from sgadvisor.accounting import Issue
from sgadvisor.models import (
    DnsAccounting,
    DnsIssue,
    DnsOut,
    DomainAllowlist,
    EdgeOut,
    Evidence,
    GroupReport,
    ProposedRule,
    Recommendation,
    VanishedDestination,
)
from sgadvisor.render import OutputFormat, RenderContext, renderer_for
from sgadvisor.render.graph_svg import MAX_RULES, layout, port_text
from sgadvisor.render.html import human_bytes, render_html, rule_what
from sgadvisor.rules import Rule
from tests.conftest import IN_CI, REPO

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SAMPLE = REPO / "sample_data"
# .ci/run exports where Debian's chromium is (SGADVISOR_CHROMIUM); elsewhere the one on PATH.
CHROMIUM = Path(os.environ.get("SGADVISOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAYLOADS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</textarea><svg onload=alert(1)>",
    "javascript:alert(1)",
    "'><b id=injected>x</b>",
    "</style><script>alert(2)</script>",
)
HOSTILE = " ".join(PAYLOADS)


@pytest.fixture(scope="module")
def sample(sample_recommendation: Recommendation) -> Recommendation:
    return sample_recommendation  # the main job's, DNS evidence included (tests/conftest.py)


@pytest.fixture(scope="module")
def page_text(sample: Recommendation) -> str:
    return render_html(sample)


def _group(rec: Recommendation, name: str) -> GroupReport:
    return next(g for g in rec.security_groups if g.group_name == name)


def _edge(eni: str, remote: str, port: int, records: int, klass: str = "initiated") -> EdgeOut:
    return EdgeOut.model_validate(
        {
            "eni": eni,
            "remote": remote,
            "protocol": "tcp",
            "port": port,
            "records": records,
            "class": klass,
            "confidence": "high",
        }
    )


def hostile(sample: Recommendation) -> Recommendation:
    """The sample with markup in every user-controlled string the report shows: group names, Name tags,
    descriptions, labels of groups/ENIs/prefix lists, coverage reasons, notes, warnings, issue files,
    an edge's remote, one group whose very id is hostile, and the DNS evidence (names beside the rules,
    query-log sources and issues, forwarding sentences, allowlists, every name queried)."""
    web = _group(sample, "web")
    eni = web.edges[0].eni
    first = web.current_egress[0].model_copy(update={"description": HOSTILE})
    changes = [
        c.model_copy(update={"reason": HOSTILE, "rule": first if c.rule.key() == first.key() else c.rule})
        for c in web.changes
    ]
    named = {"internet": "pinned", "names": [HOSTILE, *PAYLOADS]}
    proposed = [
        r.model_copy(update={"evidence": r.evidence.model_copy(update=named)}) if r.evidence else r
        for r in web.proposed_egress
    ]
    evil_web = web.model_copy(
        update={
            "group_name": HOSTILE,
            "name_tag": HOSTILE,
            "current_egress": [first, *web.current_egress[1:]],
            "proposed_egress": proposed,
            "changes": changes,
            "coverage": web.coverage.model_copy(update={"reasons": [HOSTILE, f"{eni}: {HOSTILE}"]}),
            "edges": [web.edges[0].model_copy(update={"remote": HOSTILE}), *web.edges[1:]],
        }
    )
    evil_id = 'sg-"><script>alert(3)</script>'
    extra = _group(sample, "db").model_copy(update={"group_id": evil_id, "group_name": HOSTILE})
    groups = [evil_web if g.group_id == web.group_id else g for g in sample.security_groups] + [extra]
    labels = {key: f"{value} {HOSTILE}" for key, value in sample.labels.items()}
    labels[evil_id] = HOSTILE
    accounting = sample.input_accounting.model_copy(
        update={"issues": [Issue(file=f"flows/{HOSTILE}.log", line=3, reason=HOSTILE)], "issues_omitted": 2}
    )
    rejected = [r.model_copy(update={"note": HOSTILE, "dst": HOSTILE}) for r in sample.rejected_egress]
    infra = [i.model_copy(update={"note": HOSTILE, "type": HOSTILE}) for i in sample.infrastructure_enis]
    vanished = [
        VanishedDestination(
            address=HOSTILE,
            last_seen=None,
            former_eni=HOSTILE,
            former_groups=[HOSTILE],
            records=3,
            sources=[eni],
            traffic=[HOSTILE],
            note=HOSTILE,
        )
    ]
    dns = DnsOut(
        sources=[f"dns/{HOSTILE}.log"],
        accounting=DnsAccounting(
            records=3,
            used=1,
            malformed=1,
            filtered={HOSTILE: 1},
            issues=[DnsIssue(file=f"dns/{HOSTILE}.log", line=2, reason=HOSTILE)],
        ),
        allowlists=[
            DomainAllowlist(vpc_id=HOSTILE, domains=[HOSTILE, "ok.example"], cname_targets=[HOSTILE])
        ],
        forwarded=[HOSTILE],
        all_names=[HOSTILE],
    )
    return sample.model_copy(
        update={
            "security_groups": groups,
            "labels": labels,
            "warnings": [HOSTILE],
            "input_accounting": accounting,
            "rejected_egress": rejected,
            "infrastructure_enis": infra,
            "vanished_destinations": vanished,
            "dns": dns,
        }
    )


# --- the rendered text -------------------------------------------------------------------------------


def test_renderer_interface_gives_one_file(sample: Recommendation) -> None:
    rendered = renderer_for(OutputFormat.HTML)(sample, RenderContext())
    assert set(rendered.files) == {"report.html"}
    assert rendered.files["report.html"].startswith("<!DOCTYPE html>")


def test_every_section_and_group_is_present(sample: Recommendation, page_text: str) -> None:
    for section in ("overview", "groups", "rejected", "blocked", "not-permitted", "unattributed", "vanished"):
        assert f'<section id="{section}">' in page_text
    assert '<section id="infrastructure">' in page_text and '<section id="accounting">' in page_text
    for group in sample.security_groups:
        assert f'<details class="group" id="{group.group_id}"' in page_text
        assert f'<a href="#{group.group_id}">' in page_text  # the overview row links to it
    assert page_text.count('<details class="group"') == len(sample.security_groups)
    assert (
        "unattached" in page_text and "no flow-log record of it in the window" in page_text
    )  # coverage reasons
    nat = sample.infrastructure_enis[0]
    assert nat.eni in page_text and nat.type in page_text
    rejected = sample.rejected_egress[0]
    assert re.search(rf"<code>{rejected.eni}</code> <span class=\"lbl\">web-1 \(instance\)</span>", page_text)
    assert f"{sample.input_accounting.records:,}" in page_text


def test_each_change_is_one_marked_row(sample: Recommendation, page_text: str) -> None:
    """keep/remove/narrow: one diff row each; adds: a row of their own or a line in the row of the
    narrowed rule they replace."""
    for action in ("keep", "remove", "narrow"):
        expected = sum(c.action == action for g in sample.security_groups for c in g.changes)
        assert page_text.count(f'<tr class="row a-{action}">') == expected, action
    adds = sum(c.action == "add" for g in sample.security_groups for c in g.changes)
    own_rows = page_text.count('<tr class="row a-add">')
    replacing = sum(c.action == "add" and bool(c.replaces) for g in sample.security_groups for c in g.changes)
    assert own_rows + replacing == adds


def test_a_narrowed_rule_shows_the_rules_that_replace_it(sample: Recommendation, page_text: str) -> None:
    web = _group(sample, "web")
    narrow = next(c for c in web.changes if c.action == "narrow")
    row = _row_of(page_text, narrow.security_group_rule_id or "")
    for index in narrow.replaced_by or []:
        anchor = f"{web.group_id}-p{index + 1}"
        assert f'href="#{anchor}">#{index + 1}</a>' in row
        assert f'<tr class="row" id="{anchor}">' in page_text  # its evidence row
        assert (web.proposed_egress[index].cidr_ipv4 or web.proposed_egress[index].cidr_ipv6 or "") in row


def _row_of(text: str, needle: str) -> str:
    start = text.index(needle)
    return text[text.rindex("<tr", 0, start) : text.index("</tr>", start)]


def test_evidence_is_shown_for_each_proposed_rule(sample: Recommendation, page_text: str) -> None:
    web = _group(sample, "web")
    for i, rule in enumerate(web.proposed_egress):
        assert rule.evidence is not None
        row = _row_of(page_text, f'id="{web.group_id}-p{i + 1}"')
        assert f"{rule.evidence.records:,}" in row
        assert human_bytes(rule.evidence.bytes) in row and f'data-sort="{rule.evidence.bytes}"' in row
        assert (rule.evidence.first_seen or "").replace("T", " ") in row
        assert all(eni in row for eni in rule.evidence.enis)
        assert all(str(escape(why)) in row for why in rule.evidence.why)
        assert f'<span class="conf {rule.evidence.confidence}">' in row


def test_destinations_are_resolved_to_names(sample: Recommendation, page_text: str) -> None:
    batch = _group(sample, "batch")
    s3 = next(r for r in batch.proposed_egress if r.prefix_list_id)
    assert (
        f'<code>{s3.prefix_list_id}</code> <span class="lbl">com.amazonaws.eu-west-1.s3</span>' in page_text
    )
    app = _group(sample, "app").group_id
    assert f'<code>{app}</code> <span class="lbl">app</span>' in page_text


def test_the_page_loads_nothing_and_only_its_own_hashed_script_and_style(page_text: str) -> None:
    assert not re.search(r"\b(?:src|action|srcset|formaction)\s*=", page_text)
    assert set(re.findall(r'href="([^"#][^"]*)"', page_text)) == {"data:,"}  # the empty favicon
    assert "http://" not in page_text.replace("http://www.w3.org", "") and "https://" not in page_text
    tags = _Tags()
    tags.feed(page_text)
    assert tags.handlers == []  # no inline event handlers
    assert not re.search(r"<[^>]+\sstyle\s*=", page_text)  # no style attributes (the CSP refuses them)
    scripts = re.findall(r"<script>(.*?)</script>", page_text, re.S)
    styles = re.findall(r"<style>(.*?)</style>", page_text, re.S)
    assert len(scripts) == 1 and len(styles) == 1 and page_text.count("<script") == 1
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page_text)
    assert csp is not None
    policy = html.unescape(csp.group(1))
    assert "default-src 'none'" in policy
    assert f"script-src '{_sha256(scripts[0])}'" in policy
    assert f"style-src '{_sha256(styles[0])}'" in policy


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_output_is_byte_stable(sample: Recommendation, page_text: str) -> None:
    assert render_html(sample) == page_text
    assert render_html(Recommendation.model_validate_json(sample.to_json())) == page_text


def test_output_does_not_depend_on_hash_seeds(tmp_path: Path, sample: Recommendation, page_text: str) -> None:
    """Sets and dicts must never leak their order into the page: render in processes with other seeds."""
    source = tmp_path / "recommendation.json"
    source.write_text(sample.to_json())
    code = (
        "import sys, hashlib; from sgadvisor.models import Recommendation; "
        "from sgadvisor.render.html import render_html; "
        "r = Recommendation.model_validate_json(open(sys.argv[1]).read()); "
        "print(hashlib.sha256(render_html(r).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code, str(source)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert digests == {hashlib.sha256(page_text.encode()).hexdigest()}


def test_markup_in_names_is_escaped_everywhere(sample: Recommendation) -> None:
    text = render_html(hostile(sample))
    for payload in PAYLOADS:
        assert str(escape(payload)) in text, payload
    tags = _Tags()
    tags.feed(text)
    assert tags.counts["script"] == 1 and tags.counts["style"] == 1
    assert not {"img", "textarea"} & set(tags.counts)
    assert tags.handlers == [] and "injected" not in tags.ids


class _Tags(HTMLParser):
    """What an HTML parser sees: element names, ids, and any on* attribute (an event handler)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.ids: set[str] = set()
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] += 1
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}")
            if name == "id" and value:
                self.ids.add(value)


def test_hostile_dns_names_are_escaped_beside_rules_and_in_the_dns_section(sample: Recommendation) -> None:
    text = render_html(hostile(sample))
    section = text[text.index('<section id="dns">') : text.index('<section id="accounting">')]
    for payload in PAYLOADS:
        assert str(escape(payload)) in section, payload
    assert text.count('<span class="pin pinned">pinned</span>') >= 1
    assert f"<li><code>{escape(PAYLOADS[0])}</code></li>" in text  # a name beside a rule


def test_an_empty_estate_renders(sample: Recommendation) -> None:
    empty = sample.model_copy(
        update={
            "security_groups": [],
            "rejected_egress": [],
            "infrastructure_enis": [],
            "not_permitted_now": [],
        }
    )
    text = render_html(empty)
    assert "0 of 0 groups" in text and text.count("None.") >= 4


def test_readable_rule_and_size_texts() -> None:
    assert rule_what(Rule(ip_protocol="-1", cidr_ipv4="0.0.0.0/0")) == "all traffic"
    assert rule_what(Rule(ip_protocol="tcp", from_port=0, to_port=65535, cidr_ipv4="10.0.0.0/8")) == (
        "tcp all ports"
    )
    assert rule_what(Rule(ip_protocol="udp", from_port=1024, to_port=2048, cidr_ipv4="10.0.0.0/8")) == (
        "udp 1024\u20132048"
    )
    assert (
        rule_what(Rule(ip_protocol="icmp", from_port=8, to_port=-1, cidr_ipv4="10.0.0.0/8")) == "icmp type 8"
    )
    assert rule_what(Rule(ip_protocol="icmp", from_port=-1, to_port=-1, cidr_ipv4="10.0.0.0/8")) == (
        "icmp all types"
    )
    assert human_bytes(512) == "512 B" and human_bytes(954394) == "932.0 KiB"
    assert human_bytes(3 * 2**40) == "3.0 TiB"
    assert port_text("tcp", 0) == "tcp/ephemeral" and port_text("icmp", 0) == "icmp"


# --- the flow graph ----------------------------------------------------------------------------------


def _crowded(group: GroupReport) -> GroupReport:
    """60 proposed rules: far beyond what one picture can show."""
    target = group.group_id
    rules = [
        ProposedRule(
            ip_protocol="tcp",
            from_port=2000 + i,
            to_port=2000 + i,
            referenced_security_group_id=target,
            evidence=Evidence(
                records=1 + (i * 13) % 97,
                bytes=100,
                enis=["eni-00000000000000001"],
                destinations=["10.1.0.1"],
                confidence="high",
                why=[],
            ),
        )
        for i in range(60)
    ]
    return group.model_copy(update={"proposed_egress": rules, "changes": [], "edges_omitted": 5})


def test_the_graph_folds_what_does_not_fit_and_keeps_every_record(sample: Recommendation) -> None:
    crowded = _crowded(_group(sample, "web"))
    graph = layout(crowded, sample.labels)
    assert graph is not None
    rules = [n for n in graph.nodes if n.kind in ("rule", "kept", "more")]
    assert len(rules) == MAX_RULES
    assert rules[-1].kind == "more" and rules[-1].text == f"+{60 - MAX_RULES + 1} more rules"
    drawn = sum(link.records for link in graph.links if link.kind in ("rule", "more"))
    assert drawn == sum(r.evidence.records for r in crowded.proposed_egress if r.evidence)
    assert graph.hidden_rules == 60 - MAX_RULES + 1 and graph.edges_omitted == 5
    tops = [n.top for n in graph.nodes if n.side == "target"]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)  # no two boxes on top of each other
    assert len(tops) <= 40


def test_the_graph_page_text_summarises_the_fold(sample: Recommendation) -> None:
    crowded = _crowded(_group(sample, "web"))
    text = render_html(sample.model_copy(update={"security_groups": [crowded]}))
    svg = re.search(r'<svg class="graph".*?</svg>', text, re.S)
    assert svg is not None
    assert svg.group(0).count('<g class="n target rule"') == MAX_RULES - 1
    assert svg.group(0).count('<g class="n source"') == 1
    assert f"+{60 - MAX_RULES + 1} more rules" in svg.group(0)
    assert "folded into" in text and "5 quieter edges are not in the report" in text


def test_the_graph_does_not_depend_on_edge_order(sample: Recommendation) -> None:
    web = _group(sample, "web")
    reversed_edges = web.model_copy(update={"edges": list(reversed(web.edges))})
    assert layout(web, sample.labels) == layout(reversed_edges, sample.labels)


def test_replies_never_become_nodes(sample: Recommendation) -> None:
    """web answers dozens of clients: they fold into one box, and no client address is drawn."""
    web = _group(sample, "web")
    graph = layout(web, sample.labels)
    assert graph is not None and graph.replies is not None
    clients = {e.remote for e in web.edges if e.klass == "reply"}
    assert graph.replies.clients == len(clients) > 10
    texts = {n.text for n in graph.nodes}
    assert not clients & texts
    assert [n.kind for n in graph.nodes].count("reply") == 1
    assert len(graph.nodes) == 1 + len(web.proposed_egress) + (graph.other_edges > 0) + 1


def test_no_edges_no_graph(sample: Recommendation, page_text: str) -> None:
    empty = _group(sample, "bastion").model_copy(update={"proposed_egress": [], "changes": []})
    assert layout(empty, {}) is None
    assert "No egress traffic recorded for this group" in page_text  # bastion and launch-wizard-1


# --- in a real browser -------------------------------------------------------------------------------


def _require_browser() -> None:
    """Skip where the browser or playwright is absent, but fail under CI=true (CI always has both)."""
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed (pip install playwright; never download a browser)"
    if reason is None and not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian package chromium)"
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason}: CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page with everything it says or asks for recorded: console, errors, requests, dialogs."""

    def __init__(self, browser: Browser) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.console: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        self.page.on("request", self._request)
        self.page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    def _request(self, request: Any) -> None:
        if not request.url.startswith(("file:", "data:")):
            self.requests.append(request.url)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path: Path) -> Page:
        self.page.goto(path.as_uri(), wait_until="load")
        return self.page

    def open_everything(self) -> None:
        """Open every group and every edge table, so all markup and all script paths have run."""
        self.page.click("#expand")
        for box in self.page.locator("details.edges").all():
            box.locator("> summary").click()
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('details.edges')].every(e => e.hasAttribute('data-built'))"
        )


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.page.close()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory, page_text: str) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(page_text, encoding="utf-8")
    return path


def _shown_groups(page: Page) -> list[str]:
    ids: list[str] = page.eval_on_selector_all("details.group:not([hidden])", "els => els.map(e => e.id)")
    return ids


@pytest.mark.slow
def test_page_loads_offline_cleanly_and_screenshots(
    watched: Watched, report_file: Path, tmp_path: Path
) -> None:
    page = watched.open(report_file)
    assert page.title().startswith("sgadvisor egress review")
    watched.open_everything()
    rows = page.locator("details.edges tbody tr")
    assert rows.count() == sum(int(n) for n in page.locator("details.edges").evaluate_all(_EDGE_COUNTS))
    web = page.locator("details.group", has_text="web-1").first
    web.scroll_into_view_if_needed()
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert watched.console == [] and watched.requests == [] and watched.dialogs == []


_EDGE_COUNTS = "els => els.map(e => e.getAttribute('data-edges').split('\\n').length)"


@pytest.mark.slow
def test_search_hides_groups_and_rows(watched: Watched, report_file: Path, sample: Recommendation) -> None:
    page = watched.open(report_file)
    total = len(sample.security_groups)
    page.fill("#q", "launch-wizard")
    page.wait_for_function("() => document.getElementById('shown').textContent.startsWith('1 of')")
    wizard = _group(sample, "launch-wizard-1").group_id
    assert _shown_groups(page) == [wizard]
    assert page.locator("#overview tbody tr:not([hidden])").count() == 1
    assert page.locator("#infrastructure tbody tr:not([hidden])").count() == 0

    rejected = sample.rejected_egress[0]
    page.fill("#q", rejected.dst)  # an address: groups that talk to it, and only the rows that name it
    page.wait_for_function("() => !document.getElementById('shown').textContent.startsWith('1 of')")
    assert page.locator("#rejected tbody tr:not([hidden])").count() == 1
    web = _group(sample, "web").group_id
    assert web in _shown_groups(page) and wizard not in _shown_groups(page)
    page.locator(f'[id="{web}"] > summary').click()
    page.locator(f'[id="{web}"] details.edges > summary').click()
    page.wait_for_selector(f'[id="{web}"] details.edges[data-built]', state="attached")
    edge_rows = page.locator(f'[id="{web}"] details.edges tbody tr')
    visible = page.locator(f'[id="{web}"] details.edges tbody tr:not([hidden])')
    assert 0 < visible.count() < edge_rows.count()
    assert all(rejected.dst in text for text in visible.all_inner_texts())

    page.fill("#q", "")
    page.wait_for_function(f"() => document.getElementById('shown').textContent.startsWith('{total} of')")
    assert visible.count() == edge_rows.count()
    page.select_option("#f-coverage", "none")
    assert len(_shown_groups(page)) == sum(g.coverage.status == "none" for g in sample.security_groups)
    page.select_option("#f-coverage", "")
    page.select_option("#f-action", "remove")
    removing = [g.group_id for g in sample.security_groups if any(c.action == "remove" for c in g.changes)]
    assert _shown_groups(page) == removing
    assert watched.console == []


@pytest.mark.slow
def test_clicking_headers_sorts(watched: Watched, report_file: Path) -> None:
    page = watched.open(report_file)
    header = page.locator("#overview th", has_text="Current")

    def column() -> list[int]:
        return [int(t) for t in page.locator("#overview tbody td:nth-child(4)").all_inner_texts()]

    header.click()
    assert column() == sorted(column()) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert column() == sorted(column(), reverse=True) and header.get_attribute("aria-sort") == "descending"
    names = page.locator("#overview th", has_text="Group")
    names.click()
    ids = page.locator("#overview tbody td:first-child a").all_inner_texts()
    assert ids == sorted(ids)
    assert watched.console == []


@pytest.mark.slow
def test_a_link_opens_the_group(watched: Watched, report_file: Path, sample: Recommendation) -> None:
    page = watched.open(report_file)
    web = _group(sample, "web").group_id
    page.click(f'#overview a[href="#{web}"]')
    page.wait_for_function(f"() => document.getElementById('{web}').open")
    page.click(f'[id="{web}"] a.pn >> nth=0')  # a replacement's number jumps to its evidence row
    assert page.locator(f'[id="{web}-p1"]').is_visible()


@pytest.mark.slow
@pytest.mark.parametrize("with_csp", [True, False], ids=["with-csp", "escaping-alone"])
def test_hostile_names_stay_text(
    watched: Watched, tmp_path: Path, sample: Recommendation, with_csp: bool
) -> None:
    """No dialog, no injected element, the markup readable as text. Without the CSP too: the escaping
    alone must hold (the CSP is the second line, not the first)."""
    text = render_html(hostile(sample))
    if not with_csp:
        text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
        assert "Content-Security-Policy" not in text
    path = tmp_path / "report.html"
    path.write_text(text, encoding="utf-8")
    page = watched.open(path)
    watched.open_everything()
    page.wait_for_timeout(200)  # let any handler that could fire do so
    assert watched.dialogs == []
    injected = page.evaluate(
        """() => ({
            scripts: document.scripts.length,
            images: document.images.length,
            injected: document.getElementById('injected') !== null,
            textareas: document.querySelectorAll('textarea').length,
            handlers: [...document.querySelectorAll('*')].flatMap(
                e => [...e.attributes].filter(a => a.name.startsWith('on')).map(a => a.name)),
            svgOnload: document.querySelectorAll('svg[onload]').length,
        })"""
    )
    assert injected == {
        "scripts": 1,
        "images": 0,
        "injected": False,
        "textareas": 0,
        "handlers": [],
        "svgOnload": 0,
    }
    body = page.locator("body").inner_text()
    for payload in PAYLOADS:
        assert payload in body, payload
    evil_id = 'sg-"><script>alert(3)</script>'
    assert page.evaluate("id => document.getElementById(id) !== null", evil_id)
    assert watched.requests == [] and watched.console == []
