"""The Terraform, removals and Markdown renderers, the render command and --terraform-dir: behaviour a user
relies on when applying the output (the real-terraform checks are in test_terraform.py)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from sgadvisor.models import Change, GroupReport, ProposedRule, Recommendation
from sgadvisor.render import OutputFormat, RenderContext, render_all
from sgadvisor.render.markdown import MAX_CHARS, render_summary
from sgadvisor.render.quoting import hcl_string, markdown_text
from sgadvisor.render.terraform import plan_groups, plan_revocations
from sgadvisor.rules import Rule
from tests.test_cli import run

RESOURCE = re.compile(r'^resource "aws_vpc_security_group_egress_rule" "([^"]+)" \{$', re.MULTILINE)
IMPORT = re.compile(
    r"^import \{\n  to = aws_vpc_security_group_egress_rule\.(\S+)\n  id = \"(sgr-[^\"]+)\"", re.M
)


def _files(recommendation: Recommendation, *formats: OutputFormat, **context: object) -> dict[str, str]:
    rendered = render_all(recommendation, list(formats), RenderContext(**context))  # type: ignore[arg-type]
    return dict(rendered.files)


def _group(recommendation: Recommendation, name: str) -> GroupReport:
    return next(g for g in recommendation.security_groups if g.group_name == name)


# ------------------------------------------------------------------------------------------ egress.tf


def test_one_resource_per_proposed_rule_and_an_import_per_kept_rule(
    sample_recommendation: Recommendation,
) -> None:
    text = _files(sample_recommendation, OutputFormat.TERRAFORM)["egress.tf"]
    names = RESOURCE.findall(text)
    proposed = [r for g in sample_recommendation.security_groups for r in g.proposed_egress]
    assert len(names) == len(proposed) == len(set(names))
    kept = {
        c.security_group_rule_id
        for g in sample_recommendation.security_groups
        for c in g.changes
        if c.action == "keep"
    }
    imports = {rule_id: name for name, rule_id in IMPORT.findall(text)}
    assert set(imports) == kept
    assert set(imports.values()) <= set(names)


def test_each_resource_has_one_destination_and_protocol_rules(sample_recommendation: Recommendation) -> None:
    text = _files(sample_recommendation, OutputFormat.TERRAFORM)["egress.tf"]
    for block in re.findall(r'^resource "[^"]+" "[^"]+" \{\n(.*?)^\}', text, re.M | re.S):
        keys = [line.split("=")[0].strip() for line in block.strip().splitlines()]
        destinations = {"cidr_ipv4", "cidr_ipv6", "prefix_list_id", "referenced_security_group_id"}
        assert len(destinations.intersection(keys)) == 1, block
        if 'ip_protocol                  = "-1"' in block or re.search(r'ip_protocol\s+= "-1"', block):
            assert "from_port" not in keys and "to_port" not in keys
        else:
            assert "from_port" in keys and "to_port" in keys


def test_kept_rules_keep_their_current_description(sample_recommendation: Recommendation) -> None:
    web = _group(sample_recommendation, "web")
    text = _files(sample_recommendation, OutputFormat.TERRAFORM)["egress.tf"]
    for change in web.changes:
        if change.action == "keep" and change.rule.description:
            assert f"description                  = {hcl_string(change.rule.description)}" in text or (
                hcl_string(change.rule.description) in text
            )


def test_resource_names_are_stable_readable_and_valid(sample_recommendation: Recommendation) -> None:
    first = [r.name for g in plan_groups(sample_recommendation) for r in g.resources]
    again = [r.name for g in plan_groups(sample_recommendation) for r in g.resources]
    assert first == again
    assert all(re.fullmatch(r"[a-z_][a-z0-9_-]*", name) for name in first)
    assert "web_tcp_8080_to_app" in first  # group, protocol, port, destination by name
    # Reordering the groups does not rename anything (names come from content, not positions).
    reordered = sample_recommendation.model_copy(
        update={"security_groups": list(reversed(sample_recommendation.security_groups))}
    )
    assert sorted(r.name for g in plan_groups(reordered) for r in g.resources) == sorted(first)


def test_groups_sharing_a_name_get_distinct_resource_names(sample_recommendation: Recommendation) -> None:
    web = _group(sample_recommendation, "web")
    twin = web.model_copy(update={"group_id": "sg-0twin0000000000001"})
    doubled = sample_recommendation.model_copy(
        update={"security_groups": [*sample_recommendation.security_groups, twin]}
    )
    names = [r.name for g in plan_groups(doubled) for r in g.resources]
    assert len(names) == len(set(names))


def test_icmp_and_all_traffic_rules() -> None:
    rec = _single_group_recommendation(
        [
            ProposedRule(ip_protocol="icmp", from_port=8, to_port=0, cidr_ipv4="10.0.4.0/24"),
            ProposedRule(ip_protocol="-1", cidr_ipv6="2001:db8::/64"),
        ]
    )
    text = _files(rec, OutputFormat.TERRAFORM)["egress.tf"]
    assert re.search(r'ip_protocol\s+= "icmp"\n\s+from_port\s+= 8\n\s+to_port\s+= 0', text)
    minus_one = text[text.index('ip_protocol       = "-1"') :]
    assert "from_port" not in minus_one.split("}")[0]


def test_kept_rules_without_ids_warn_instead_of_importing(sample_recommendation: Recommendation) -> None:
    stripped = []
    for group in sample_recommendation.security_groups:
        proposed = [r.model_copy(update={"security_group_rule_id": None}) for r in group.proposed_egress]
        changes = [c.model_copy(update={"security_group_rule_id": None}) for c in group.changes]
        stripped.append(group.model_copy(update={"proposed_egress": proposed, "changes": changes}))
    rec = sample_recommendation.model_copy(update={"security_groups": stripped})
    rendered = render_all(rec, [OutputFormat.TERRAFORM])
    assert "import {" not in rendered.files["egress.tf"]
    assert any("no sgr- id" in w for w in rendered.warnings)
    assert "--ip-permissions" in rendered.files["removals.sh"]


def test_hcl_strings_cannot_interpolate() -> None:
    assert hcl_string('a"b') == '"a\\"b"'
    assert hcl_string("${var.x}") == '"$${var.x}"'
    assert hcl_string("%{ if x }") == '"%%{ if x }"'
    assert hcl_string("line\nbreak") == '"line\\nbreak"'


# ---------------------------------------------------------------------------------------- removals.sh


def test_removals_revoke_exactly_the_removed_and_narrowed_rules(
    sample_recommendation: Recommendation, tmp_path: Path
) -> None:
    calls = _run_removals(sample_recommendation, tmp_path)
    revoked: dict[str, set[str]] = {}
    for argv in calls:
        assert argv[:2] == ["ec2", "revoke-security-group-egress"]
        group = argv[argv.index("--group-id") + 1]
        ids = argv[argv.index("--security-group-rule-ids") + 1 :]
        revoked.setdefault(group, set()).update(ids)
    expected = {
        g.group_id: {c.security_group_rule_id for c in g.changes if c.action in ("remove", "narrow")}
        for g in sample_recommendation.security_groups
    }
    assert revoked == {k: v for k, v in expected.items() if v}


def test_removals_quote_hostile_values(sample_recommendation: Recommendation, tmp_path: Path) -> None:
    """Ids and descriptions come from the JSON: a crafted one must stay one argument / one comment."""
    group = next(
        g for g in sample_recommendation.security_groups if any(c.action == "remove" for c in g.changes)
    )
    evil_id = "sgr-1'; touch pwned; '"
    changes = [
        c.model_copy(
            update={
                "security_group_rule_id": evil_id if c.action == "remove" else c.security_group_rule_id,
                "rule": c.rule.model_copy(update={"description": "x\ntouch pwned2 $(touch pwned3)"}),
            }
        )
        for c in group.changes
    ]
    hostile = group.model_copy(update={"group_id": "sg-1 $(touch pwned4)", "changes": changes})
    rec = sample_recommendation.model_copy(update={"security_groups": [hostile]})
    calls = _run_removals(rec, tmp_path)
    assert not list(tmp_path.glob("pwned*"))
    assert any(evil_id in argv for argv in calls)
    assert all(argv[argv.index("--group-id") + 1] == "sg-1 $(touch pwned4)" for argv in calls)


def test_nothing_to_remove_is_a_script_that_does_nothing(tmp_path: Path) -> None:
    rec = _single_group_recommendation(
        [ProposedRule(ip_protocol="tcp", from_port=443, to_port=443, cidr_ipv4="10.0.0.0/8")]
    )
    assert plan_revocations(rec) == []
    assert _run_removals(rec, tmp_path) == []


def _run_removals(recommendation: Recommendation, tmp_path: Path) -> list[list[str]]:
    """Run removals.sh with a stand-in ``aws`` on PATH that records its argv (one JSON-ish line each)."""
    script = tmp_path / "removals.sh"
    script.write_text(_files(recommendation, OutputFormat.TERRAFORM)["removals.sh"])
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.log"
    fake = bindir / "aws"
    fake.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done >> {shlex.quote(str(log))}\nprintf "\\n\\0" >> {shlex.quote(str(log))}\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["sh", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    if not log.exists():
        return []
    calls: list[list[str]] = []
    current: list[str] = []
    for item in log.read_text().split("\0")[:-1]:
        if item == "\n":
            calls.append(current)
            current = []
        else:
            current.append(item)
    return calls


# ------------------------------------------------------------------------------------------ summary.md


def test_summary_lists_totals_and_changed_groups(sample_recommendation: Recommendation) -> None:
    text = _files(sample_recommendation, OutputFormat.MARKDOWN)["summary.md"]
    totals = {
        a: sum(c.action == a for g in sample_recommendation.security_groups for c in g.changes)
        for a in ("keep", "narrow", "remove", "add")
    }
    assert (
        f"**{totals['keep']} keep, {totals['narrow']} narrow, {totals['remove']} remove, {totals['add']} add**"
        in text
    )
    for group in sample_recommendation.security_groups:
        changed = any(c.action != "keep" for c in group.changes)
        rows = [line for line in text.splitlines() if line.startswith(f"| {group.group_id} |")]
        assert any("→" in row for row in rows) == changed  # the table of changes
        assert any(f"| {group.coverage.status} |" in r and "→" not in r for r in rows) == (
            group.coverage.status != "ok"  # the groups not judged, with their reasons
        )


def test_summary_is_bounded_for_large_estates(sample_recommendation: Recommendation) -> None:
    groups = [
        g.model_copy(update={"group_id": f"sg-{i:017x}"})
        for i in range(1000)
        for g in [sample_recommendation.security_groups[i % len(sample_recommendation.security_groups)]]
    ]
    big = sample_recommendation.model_copy(update={"security_groups": groups})
    text = render_summary(big)
    assert len(text) <= MAX_CHARS
    assert "more groups with changes" in text
    assert text.count("<details>") == text.count("</details>")


def test_summary_escapes_markup() -> None:
    rec = _single_group_recommendation(
        [ProposedRule(ip_protocol="tcp", from_port=1, to_port=1, cidr_ipv4="10.0.0.1/32")],
        name='x | <script>alert(1)</script> `y` <img src="https://evil.example/p.png">',
        current=[
            Rule(ip_protocol="tcp", from_port=2, to_port=2, cidr_ipv4="10.0.0.2/32", description="<b>|</b>")
        ],
    )
    text = render_summary(rec)
    assert not re.search(r"(?<!\\)</?(script|b|img)", text)  # every tag opener escaped
    assert "\\<script\\>" in text and "\\|" in text  # Markdown text: backslash escapes
    summary = next(line for line in text.splitlines() if line.startswith("<details><summary>"))
    assert "&lt;img src=&#34;https://evil.example/p.png&#34;&gt;" in summary  # raw HTML block: entities
    assert markdown_text("a|b\nc") == "a\\|b\\\\nc"  # one line; the newline shown as \n


# ------------------------------------------------------------------------------------ --terraform-dir


def test_terraform_dir_warns_about_conflicting_egress_management(
    sample_recommendation: Recommendation, tmp_path: Path
) -> None:
    web = _group(sample_recommendation, "web")
    db = _group(sample_recommendation, "db")
    app_group = _group(sample_recommendation, "app")
    (tmp_path / "sg.tf").write_text(
        """
resource "aws_security_group" "web" {
  name   = "web"
  vpc_id = "vpc-1"
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "app" {
  name = "app"
}

resource "aws_security_group_rule" "app_out" {
  type              = "egress"
  security_group_id = aws_security_group.app.id
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/0"]
}
"""
    )
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "db.tf").write_text(
        f'resource "aws_vpc_security_group_egress_rule" "db" {{\n  security_group_id = "{db.group_id}"\n'
        '  ip_protocol = "-1"\n  cidr_ipv4 = "0.0.0.0/0"\n}\n'
    )
    (tmp_path / "broken.tf").write_text('resource "x" {{{\n')
    rendered = render_all(
        sample_recommendation, [OutputFormat.TERRAFORM], RenderContext(terraform_dir=tmp_path)
    )
    warnings = "\n".join(rendered.warnings)
    assert f"{web.group_id} (web) is also managed by inline egress in sg.tf" in warnings
    assert f"{app_group.group_id} (app) is also managed by aws_security_group_rule in sg.tf" in warnings
    assert (
        f"{db.group_id} (db) already has egress rules managed by aws_vpc_security_group_egress_rule.db"
        in warnings
    )
    assert "broken.tf: not checked" in warnings
    assert "WARNING:" in rendered.files["egress.tf"]
    others = [g for g in sample_recommendation.security_groups if g.group_name not in ("web", "app", "db")]
    assert not any(g.group_id in warnings for g in others)


# ------------------------------------------------------------------------------------ render command


def test_render_rebuilds_the_outputs_from_the_json_alone(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    first, second = tmp_path / "first", tmp_path / "second"
    sample = ["--flows", str(repo / "sample_data/flows"), "--inventory", str(repo / "sample_data/inventory")]
    assert run(["recommend", *sample, "--out", str(first), "--quiet"]) == 0
    assert run(["render", str(first / "recommendation.json"), "--out", str(second), "--quiet"]) == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == ["egress.tf", "recommendation.json", "removals.sh", "report.html", "summary.md"]
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert os.access(second / "removals.sh", os.X_OK)


def test_render_chooses_formats(sample_recommendation: Recommendation, tmp_path: Path) -> None:
    source = tmp_path / "rec.json"
    source.write_text(sample_recommendation.to_json())
    assert run(["render", str(source), "--out", str(tmp_path / "o"), "--format", "markdown", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["summary.md"]


def test_render_writes_egress_domains_only_with_dns_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sgadvisor render --format terraform` writes egress-domains.tf beside egress.tf when the
    recommendation has DNS allowlists, and exactly today's two files without them."""
    from sgadvisor.models import DomainAllowlist
    from tests.test_egress_domains import HOSTILE_NAMES, VPC, base_recommendation, dns_recommendation

    plain, with_dns = tmp_path / "plain.json", tmp_path / "dns.json"
    plain.write_text(base_recommendation().to_json())
    allowlists = [
        DomainAllowlist(vpc_id=VPC, domains=["api.partner.example", *HOSTILE_NAMES], cname_targets=[])
    ]
    with_dns.write_text(dns_recommendation(allowlists=allowlists).to_json())
    for source, out in ((plain, tmp_path / "a"), (with_dns, tmp_path / "b")):
        assert run(["render", str(source), "--out", str(out), "--format", "terraform"]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["egress.tf", "removals.sh"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "egress-domains.tf",
        "egress.tf",
        "removals.sh",
    ]
    assert (tmp_path / "a" / "egress.tf").read_bytes() == (tmp_path / "b" / "egress.tf").read_bytes()
    err = capsys.readouterr().err
    assert "warning: egress-domains.tf: 8 DNS name(s) left out" in err and "##[" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "Invalid JSON"),
        ('{"schema_version": 1}', "tool: Field required"),
        ("[]", "(top level)"),
    ],
)
def test_render_rejects_a_wrong_file_and_writes_nothing(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "rec.json"
    source.write_text(content)
    out = tmp_path / "out"
    assert run(["render", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {source} is not a sgadvisor recommendation.json") and message in err
    assert not out.exists()


def test_render_of_a_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["render", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- helpers


def _single_group_recommendation(
    proposed: list[ProposedRule], *, name: str = "solo", current: list[Rule] | None = None
) -> Recommendation:
    from sgadvisor.accounting import InputAccounting
    from sgadvisor.models import CollectionOut, CoverageOut, Tool, WindowOut

    current = current if current is not None else [r.model_copy() for r in proposed]
    changes = [
        Change(action="keep", rule=Rule(**r.model_dump(exclude={"evidence"})), reason="used")
        for r in proposed
    ]
    changes += [
        Change(action="remove", rule=r, reason="unused")
        for r in current
        if r.key() not in {p.key() for p in proposed}
    ]
    group = GroupReport(
        group_id="sg-0123456789abcdef0",
        group_name=name,
        vpc_id="vpc-1",
        unattached=False,
        coverage=CoverageOut(
            status="ok", enis=1, enis_with_evidence=1, window_seconds=691200, skipdata_share=0.0
        ),
        current_egress=[Rule(**r.model_dump(exclude={"evidence"})) for r in current],
        edges=[],
        edges_omitted=0,
        proposed_egress=proposed,
        changes=changes,
    )
    return Recommendation(
        tool=Tool(version="test"),
        window=WindowOut(start="2026-11-01T00:00:00Z", end="2026-11-09T00:00:00Z"),
        collection=CollectionOut(source="files"),
        security_groups=[group],
        labels={"sg-0123456789abcdef0": name},
        infrastructure_enis=[],
        unattributed=[],
        not_permitted_now=[],
        rejected_egress=[],
        input_accounting=InputAccounting(records=0, used=0, nodata=0, skipdata=0, malformed=0),
    )


def test_outputs_are_all_or_nothing(
    sample_recommendation: Recommendation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "rec.json"
    source.write_text(sample_recommendation.to_json())
    out = tmp_path / "out"
    (out / "summary.md").mkdir(parents=True)  # one output cannot be written
    assert run(["render", str(source), "--out", str(out)]) == 2
    assert "summary.md" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["summary.md"]  # nothing else appeared, no temp files
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    assert run(["render", str(source), "--out", str(blocked)]) == 2
    assert blocked.read_text() == "x"
