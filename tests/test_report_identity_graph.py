"""The report's flow graph in identities, and vanished destinations in report.html and summary.md.

The graph of a group is the group on the left and one box per proposed rule on the right (a referenced
group with its port, a prefix list's name, a CIDR), each curve and box linked to the rule's evidence row;
reply edges fold into one hidden box and a ``<details>`` list; initiated/unknown edges no rule carries
fold into one "other" box. Every test builds its Recommendation here, from the model alone, as the
renderers see it.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from markupsafe import escape

from sgadvisor.accounting import InputAccounting
from sgadvisor.models import (
    Change,
    CollectionOut,
    CoverageOut,
    EdgeOut,
    Evidence,
    GroupReport,
    ProposedRule,
    Recommendation,
    Tool,
    VanishedDestination,
    WindowOut,
)
from sgadvisor.render.graph_svg import MAX_RULES, layout
from sgadvisor.render.html import render_html
from sgadvisor.render.markdown import MAX_CHARS, render_summary
from sgadvisor.rules import Rule

API = "sg-0a00000000000000a"
DB = "sg-0d00000000000000d"
S3 = "pl-6da54004"
ENIS = ("eni-00000000000000001", "eni-00000000000000002", "eni-00000000000000003")
DB_ADDRESSES = ("10.0.3.10", "10.0.3.11", "10.0.3.12")
CLIENTS = tuple(f"10.9.0.{i}" for i in range(1, 38))  # 37 clients the group answers
EVIL = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"


def _edge(eni: str, remote: str, protocol: str, port: int, records: int, klass: str) -> EdgeOut:
    return EdgeOut.model_validate(
        {
            "eni": eni,
            "remote": remote,
            "protocol": protocol,
            "port": port,
            "records": records,
            "class": klass,
            "confidence": "high",
        }
    )


def _evidence(records: int, destinations: list[str], enis: list[str] | None = None) -> Evidence:
    return Evidence(
        records=records,
        bytes=records * 100,
        first_seen="2026-11-01T00:00:00Z",
        last_seen="2026-11-08T00:00:00Z",
        enis=enis or list(ENIS),
        destinations=destinations,
        confidence="high",
        why=["initiated: the remote port is a service port"],
    )


def _rules() -> list[ProposedRule]:
    return [
        ProposedRule(
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            referenced_security_group_id=DB,
            evidence=_evidence(900, list(DB_ADDRESSES)),
        ),
        ProposedRule(
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            prefix_list_id=S3,
            evidence=_evidence(300, ["3.5.68.144", "52.218.44.17"]),
        ),
        ProposedRule(  # kept without evidence: coverage is partial
            security_group_rule_id="sgr-0000000000000000f",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            description="HTTPS out",
        ),
        ProposedRule(
            ip_protocol="udp",
            from_port=53,
            to_port=53,
            cidr_ipv4="10.0.0.2/32",
            evidence=_evidence(50, ["10.0.0.2"]),
        ),
    ]


def _edges() -> list[EdgeOut]:
    edges = [_edge(eni, address, "tcp", 5432, 100, "initiated") for eni in ENIS for address in DB_ADDRESSES]
    edges += [_edge(ENIS[0], "3.5.68.144", "tcp", 443, 200, "initiated")]
    edges += [_edge(ENIS[1], "52.218.44.17", "tcp", 443, 100, "initiated")]
    edges += [_edge(eni, "10.0.0.2", "udp", 53, 10, "initiated") for eni in ENIS]
    edges += [_edge(ENIS[i % 3], client, "tcp", 0, 5 + i, "reply") for i, client in enumerate(CLIENTS)]
    # Carried by the kept 0.0.0.0/0 rule although no evidence lists it: its CIDR contains the address.
    edges += [_edge(ENIS[2], "198.51.100.9", "tcp", 443, 6, "initiated")]
    # Carried by no proposed rule: ICMP to an address no rule names, tcp 8443 to a db member, DNS to an
    # address outside the rule's /32.
    edges += [_edge(ENIS[0], "10.0.4.50", "icmp", 0, 192, "unknown")]
    edges += [_edge(ENIS[2], "10.0.3.10", "tcp", 8443, 7, "initiated")]
    edges += [_edge(ENIS[1], "10.0.0.3", "udp", 53, 4, "initiated")]
    return sorted(edges, key=lambda e: (-e.records, e.eni, e.remote))


def _changes(rules: list[ProposedRule]) -> list[Change]:
    changes = [
        Change(
            action="keep",
            security_group_rule_id="sgr-0000000000000000f",
            rule=Rule.model_validate(rules[2].model_dump(exclude={"evidence"})),
            reason="coverage is partial: kept",
        )
    ]
    for rule in (rules[0], rules[1], rules[3]):
        plain = Rule.model_validate(rule.model_dump(exclude={"evidence", "security_group_rule_id"}))
        changes.append(Change(action="add", rule=plain, reason="carries initiated traffic"))
    return changes


def _group(**update: object) -> GroupReport:
    rules = _rules()
    group = GroupReport(
        group_id=API,
        group_name="api",
        vpc_id="vpc-0123456789abcdef0",
        unattached=False,
        coverage=CoverageOut(
            status="partial", enis=3, enis_with_evidence=3, window_seconds=691199, skipdata_share=0.0
        ),
        current_egress=[Rule.model_validate(rules[2].model_dump(exclude={"evidence"}))],
        edges=_edges(),
        edges_omitted=0,
        proposed_egress=rules,
        changes=_changes(rules),
    )
    return group.model_copy(update=update)


def _vanished(
    address: str = "10.0.5.77", note: str = "its ENI was deleted on 2026-11-05"
) -> VanishedDestination:
    return VanishedDestination(
        address=address,
        last_seen="2026-11-05T10:00:00Z",
        former_eni="eni-0ffffffffffffffff",
        former_groups=["sg-0eeeeeeeeeeeeeeee"],
        records=321,
        sources=[ENIS[0], ENIS[2]],
        traffic=["tcp 6379"],
        note=note,
    )


def _recommendation(
    groups: list[GroupReport] | None = None,
    labels: dict[str, str] | None = None,
    vanished: list[VanishedDestination] | None = None,
) -> Recommendation:
    return Recommendation(
        tool=Tool(version="0.0.0-test"),
        window=WindowOut(start="2026-11-01T00:00:00Z", end="2026-11-08T23:59:59Z"),
        collection=CollectionOut(source="files"),
        security_groups=[_group()] if groups is None else groups,
        labels={API: "api", DB: "db", S3: "com.amazonaws.eu-west-1.s3", ENIS[0]: "api-1 (instance)"}
        if labels is None
        else labels,
        infrastructure_enis=[],
        unattributed=[],
        vanished_destinations=[_vanished()] if vanished is None else vanished,
        not_permitted_now=[],
        rejected_egress=[],
        input_accounting=InputAccounting(),
    )


class _Svg(HTMLParser):
    """What the browser draws: each target box's class and texts, each link's href and class, and the
    href of every <a> in the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.boxes: list[tuple[str, list[str], str | None]] = []  # (classes, texts, href)
        self.links: list[tuple[str, str | None, str]] = []  # (classes, href, tooltip)
        self.hrefs: list[str] = []
        self._href: str | None = None
        self._box: tuple[str, list[str], str | None] | None = None
        self._path: list[str] | None = None
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self._in.append(tag)
        if tag == "a":
            self._href = values.get("href")
            self.hrefs.append(self._href or "")
        elif tag == "g" and "n target" in (values.get("class") or ""):
            self._box = (values.get("class") or "", [], self._href)
        elif tag == "path":
            self._path = [values.get("class") or "", self._href or "", ""]

    def handle_endtag(self, tag: str) -> None:
        if self._in:
            self._in.pop()
        if tag == "a":
            self._href = None
        elif tag == "g" and self._box is not None:
            self.boxes.append(self._box)
            self._box = None
        elif tag == "path" and self._path is not None:
            classes, href, tooltip = self._path
            self.links.append((classes, href or None, tooltip))
            self._path = None

    def handle_data(self, data: str) -> None:
        if self._box is not None and self._in and self._in[-1] == "text":
            self._box[1].append(data)
        if self._path is not None and self._in and self._in[-1] == "title":
            self._path[2] += data


def _svg_of(page: str, group_id: str) -> _Svg:
    start = page.index(f'<details class="group" id="{escape(group_id)}"')
    match = re.compile(r'<svg class="graph".*?</svg>', re.S).search(page, start)
    assert match is not None, "no flow graph"
    parsed = _Svg()
    parsed.feed(match.group(0))
    return parsed


def _ids(page: str) -> set[str]:
    return {html.unescape(value) for value in re.findall(r'\sid="([^"]*)"', page)}


# --- identities ----------------------------------------------------------------------------------------


def test_a_referenced_group_rule_is_one_identity_node_not_one_per_eni_or_address() -> None:
    page = render_html(_recommendation())
    svg = _svg_of(page, API)
    texts = [" ".join(texts) for _, texts, _ in svg.boxes]
    assert sum("db (sg-0d00000000000000d)" in t for t in texts) == 1
    assert "db (sg-0d00000000000000d) tcp 5432" in texts
    assert not any(address in t for t in texts for address in DB_ADDRESSES)
    assert not any(eni in t for t in texts for eni in ENIS)
    assert "com.amazonaws.eu-west-1.s3 tcp 443" in texts  # a prefix list by its name
    assert "internet tcp 443" in texts and "10.0.0.2/32 udp 53" in texts
    rule_boxes = [b for b in svg.boxes if " rule" in b[0] or " kept" in b[0]]
    assert len(rule_boxes) == len(_rules())  # one box per proposed rule: identity + port
    # The left side is the group itself, not its ENIs.
    assert page.count('<g class="n source"', page.index(f'id="{API}"')) >= 1
    source = re.search(r'<g class="n source".*?</g>', page[page.index(f'id="{API}"') :], re.S)
    assert source is not None and ">api<" in source.group(0) and "3 ENIs" in source.group(0)
    assert "eni-" not in source.group(0)


def test_link_width_follows_evidence_records_and_unevidenced_rules_are_dashed() -> None:
    graph = layout(_group(), {DB: "db"})
    assert graph is not None
    by_href = {link.href: link for link in graph.links if link.href}
    db, s3, kept, dns = (by_href[f"#{API}-p{i}"] for i in (1, 2, 3, 4))
    assert float(db.width) > float(s3.width) > float(dns.width) > 1
    assert (db.records, s3.records, dns.records) == (900, 300, 50)
    assert kept.kind == "kept" and kept.width == "1" and kept.records == 0
    assert "kept without traffic" in kept.tooltip
    assert graph.kept_without_traffic == 1


def test_each_drawn_link_points_at_an_existing_row_anchor_of_its_rule() -> None:
    page = render_html(_recommendation())
    svg = _svg_of(page, API)
    ids = _ids(page)
    assert svg.hrefs, "no link in the graph"
    for href in svg.hrefs:
        assert href.startswith("#") and html.unescape(href[1:]) in ids, href
    rule_links = {href: (classes, tooltip) for classes, href, tooltip in svg.links if href}
    assert set(rule_links) == {f"#{API}-p{i}" for i in range(1, 5)}
    for i, rule in enumerate(_rules(), 1):
        row = re.search(rf'<tr class="row" id="{API}-p{i}">.*?</tr>', page, re.S)
        assert row is not None  # the evidence row the link jumps to
        assert rule.destination[1] in row.group(0)
        assert f"rule #{i}" in rule_links[f"#{API}-p{i}"][1]
    assert "db (sg-0d00000000000000d) tcp 5432" in rule_links[f"#{API}-p1"][1]
    # The boxes link to the same rows.
    assert {href for _, _, href in svg.boxes if href} == set(rule_links)


# --- replies and other traffic ---------------------------------------------------------------------------


def test_replies_are_not_nodes_but_one_folded_box_hidden_by_default_and_a_details_list() -> None:
    page = render_html(_recommendation())
    svg = _svg_of(page, API)
    texts = [" ".join(texts) for _, texts, _ in svg.boxes]
    assert not any(client in t for t in texts for client in CLIENTS)
    replies = [b for b in svg.boxes if " reply" in b[0]]
    assert len(replies) == 1 and "replies to 37 clients" in " ".join(replies[0][1])
    assert replies[0][2] is None  # not a rule: no link
    assert len(svg.boxes) <= len(_rules()) + 2  # rules, "other", "replies"
    # Hidden by default (no script needed): only a ticked checkbox shows it.
    assert "svg.graph .reply { display: none; }" in page
    assert "input.show-replies:checked ~ .graphbox svg.graph .reply { display: inline; }" in page
    assert re.search(r'<input type="checkbox" class="show-replies" id="[^"]+"(?! checked)>', page)
    records = sum(e.records for e in _edges() if e.klass == "reply")
    summary = re.search(r'<details class="replies"><summary>(.*?)</summary>', page)
    assert summary is not None
    assert "Replies to 37 clients" in summary.group(1) and f"{records:,} records" in summary.group(1)
    listed = re.search(r'<details class="replies">.*?</details>', page, re.S)
    assert listed is not None and listed.group(0).count('<tr class="row">') == 10  # busiest, capped
    busiest = max((e for e in _edges() if e.klass == "reply"), key=lambda e: e.records)
    first = re.search(r'<tr class="row">.*?</tr>', listed.group(0))
    assert first is not None and f"<code>{busiest.remote}</code>" in first.group(0)
    assert "<code>10.9.0.1</code>" not in listed.group(0)  # the quietest client is left to the edge table
    assert "+27 more reply edges" in listed.group(0)


def test_a_group_with_only_replies_draws_no_graph_but_lists_them() -> None:
    only_replies = _group(
        proposed_egress=[], changes=[], current_egress=[], edges=[e for e in _edges() if e.klass == "reply"]
    )
    assert layout(only_replies, {}) is None
    page = render_html(_recommendation(groups=[only_replies]))
    body = page[page.index(f'id="{API}"') :]
    assert '<svg class="graph"' not in body
    assert "only replies to its clients" in body and '<details class="replies">' in body


def test_edges_no_rule_carries_fold_into_one_other_node() -> None:
    graph = layout(_group(), {})
    assert graph is not None
    other = [n for n in graph.nodes if n.kind == "other"]
    assert len(other) == 1 and graph.other_edges == 3 and graph.other_records == 192 + 7 + 4
    assert other[0].text == "other traffic: 3 edges" and not other[0].href
    # Carried edges do not leak into "other": take the db rule away and its edges fold there; take the
    # kept 0.0.0.0/0 rule away and the edge only its CIDR carried does.
    without_db = _group(proposed_egress=_rules()[1:])
    folded = layout(without_db, {})
    assert folded is not None and folded.other_edges == 3 + len(ENIS) * len(DB_ADDRESSES)
    without_kept = _group(proposed_egress=[r for r in _rules() if r.cidr_ipv4 != "0.0.0.0/0"])
    folded = layout(without_kept, {})
    assert folded is not None and folded.other_edges == 4 and folded.other_records == 192 + 7 + 4 + 6


def test_the_graph_is_bounded_and_folds_the_quietest_rules() -> None:
    rules = [
        ProposedRule(
            ip_protocol="tcp",
            from_port=1000 + i,
            to_port=1000 + i,
            referenced_security_group_id=DB,
            evidence=_evidence(1 + (i * 37) % 101, list(DB_ADDRESSES)),
        )
        for i in range(60)
    ]
    group = _group(proposed_egress=rules, changes=[])
    graph = layout(group, {DB: "db"})
    assert graph is not None
    targets = [n for n in graph.nodes if n.side == "target"]
    rule_nodes = [n for n in targets if n.kind in ("rule", "kept", "more")]
    assert len(rule_nodes) == MAX_RULES and len(targets) <= 40
    assert rule_nodes[-1].kind == "more" and rule_nodes[-1].text == f"+{60 - MAX_RULES + 1} more rules"
    ranked = sorted((r.evidence.records for r in rules if r.evidence), reverse=True)
    assert [n.records for n in rule_nodes[:-1]] == ranked[: MAX_RULES - 1]
    assert graph.hidden_records == sum(ranked[MAX_RULES - 1 :]) == rule_nodes[-1].records
    page = render_html(_recommendation(groups=[group]))
    assert f"{60 - MAX_RULES + 1} quieter rules folded" in page
    assert f'href="#{API}-evidence"' in page and f'id="{API}-evidence"' in page


def test_the_graph_is_deterministic() -> None:
    group = _group()
    assert layout(group, {}) == layout(group.model_copy(update={"edges": list(reversed(group.edges))}), {})
    rec = _recommendation()
    assert render_html(rec) == render_html(Recommendation.model_validate_json(rec.to_json()))


# --- vanished destinations -------------------------------------------------------------------------------


def test_vanished_destinations_show_in_the_report_and_the_summary() -> None:
    rec = _recommendation()
    page = render_html(rec)
    section = re.search(r'<section id="vanished">.*?</section>', page, re.S)
    assert section is not None and '<a href="#vanished">Vanished destinations (1)</a>' in page
    for text in (
        "10.0.5.77",
        "eni-0ffffffffffffffff",
        "sg-0eeeeeeeeeeeeeeee",
        "321",
        "tcp 6379",
        "2026-11-05 10:00:00Z",
    ):
        assert text in section.group(0), text
    assert f'<code>{ENIS[0]}</code> <span class="lbl">api-1 (instance)</span>' in section.group(0)
    summary = render_summary(rec)
    assert "### Vanished destinations" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| 10.0.5.77 |"))
    assert "eni-0ffffffffffffffff" in row and "tcp 6379" in row and "| 321 |" in row
    assert f"{ENIS[0]} \\[api-1 (instance)\\]" in row
    assert "1 destinations whose ENI and groups are gone" in summary

    none = _recommendation(vanished=[])
    assert "### Vanished destinations" not in render_summary(none)
    empty = re.search(r'<section id="vanished">.*?</section>', render_html(none), re.S)
    assert empty is not None and "None." in empty.group(0)


def test_the_summary_stays_bounded_with_many_hostile_vanished_destinations() -> None:
    nasty = "\U000e0041|`\\|" * 400 + "\n::error::x ##vso[task.setvariable variable=x]1 @org/team"
    vanished = [
        _vanished(address=f"10.5.{i // 250}.{i % 250}", note=nasty).model_copy(
            update={"former_groups": [nasty] * 30, "sources": [nasty] * 30, "traffic": [nasty] * 30}
        )
        for i in range(300)
    ]
    text = render_summary(_recommendation(vanished=vanished))
    assert len(text) <= MAX_CHARS
    assert "more vanished destinations in recommendation.json" in text
    assert "::error::" not in "\n".join(line.lstrip()[:9] for line in text.splitlines())
    assert "##vso[" not in text
    rows = [line for line in text.splitlines() if line.startswith("| 10.5.")]
    assert rows and all(re.sub(r"\\.", "", row).count("|") - 1 == 8 for row in rows)  # whole rows


# --- hostile labels --------------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.images = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.images += tag == "img"
        self.handlers += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]


def test_hostile_labels_are_escaped_in_the_graph_the_sections_and_the_summary() -> None:
    evil_id = 'sg-"><script>alert(3)</script>'
    labels = {API: EVIL, DB: EVIL, S3: EVIL, ENIS[0]: EVIL, evil_id: EVIL}
    group = _group(group_name=EVIL, name_tag=EVIL)
    evil_group = _group(group_id=evil_id, group_name=EVIL)
    vanished = [
        _vanished(address=EVIL, note=EVIL).model_copy(update={"former_groups": [EVIL], "traffic": [EVIL]})
    ]
    rec = _recommendation(groups=[group, evil_group], labels=labels, vanished=vanished)
    page = render_html(rec)
    tags = _Tags()
    tags.feed(page)
    assert tags.scripts == 1 and tags.images == 0 and tags.handlers == []
    escaped = str(escape(EVIL))
    svg = re.search(r'<svg class="graph".*?</svg>', page, re.S)
    assert svg is not None and escaped[:30] in svg.group(0)  # in a box's (clipped) text
    assert "<script>alert" not in svg.group(0) and "<img" not in svg.group(0)
    # The hostile group id is an attribute value: its links still point at its own escaped row ids.
    svg_evil = _svg_of(page, evil_id)
    ids = _ids(page)
    assert svg_evil.hrefs and all(html.unescape(h[1:]) in ids for h in svg_evil.hrefs)
    section = re.search(r'<section id="vanished">.*?</section>', page, re.S)
    assert section is not None and escaped in section.group(0) and "<script>alert" not in section.group(0)

    summary = render_summary(rec)
    assert not re.search(r"(?<!\\)<(?:/?script|img)", summary)  # every < of a value escaped: \< or &lt;
    assert "\\<script\\>alert(1)\\</script\\>" in summary  # shown, as text
