"""Untrusted text never controls a terminal or a CI log (issue 16).

Names, tags, descriptions and prefix-list names come from the inventory and can hold anything: a newline
followed by ``::error::``, ``##vso[task.setvariable …]``, ANSI escapes, U+2028, bidi overrides, mentions
and links. The real CLI runs on a copy of the sample inventory full of them, and no line it prints or
writes for a terminal, a CI log or a pull-request comment may start a workflow command or carry a raw
control character; summary.md stays under its 60,000 characters whatever the values; egress.tf stays
canonical, valid and exact for Terraform.
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sgadvisor.models import Recommendation
from sgadvisor.render.markdown import MAX_CHARS, name_enis, render_summary
from sgadvisor.render.quoting import hcl_string, html_text, markdown_text, safe_line, safe_text
from tests.conftest import REPO
from tests.test_cli import run
from tests.test_terraform import TerraformTool, _providers_tf, _write_rendered, terraform  # noqa: F401

SAMPLE = REPO / "sample_data"
BASELINE = SAMPLE / "expected" / "recommendation.json"

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
HOSTILE = (
    "\n::error::pwned\r##vso[task.setvariable variable=x]1\n  ::add-mask::y\x1b[31mred\x1b]0;title\x07"
    f"\u2028::notice::x\u2029##[group]g{BIDI}\u202egnp.exe ##teamcity[buildStatus text='x']"
    "\n--- collapsed\n+++ open\x00\x7f\x85\u200b:\u200b:warning::z @org/team https://evil.example www.evil.example #1"
)
EVERY_CONTROL = "".join(map(chr, range(0x20))) + "\x7f" + "".join(map(chr, range(0x80, 0xA0)))

# What a CI runner obeys (see sgadvisor.render.quoting): at the start of a line after white space, and
# anywhere in a line.
_AT_START = re.compile(r"::|(?:---|\+\+\+|~~~)\s|\^\^\^\s+\+\+\+")
_ANYWHERE = re.compile(r"##(?:vso|teamcity)?\[", re.IGNORECASE)
_RAW = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def assert_inert(text: str, where: str, allowed: str = "") -> None:
    """No line starts or holds a CI workflow command, and no raw control or invisible character (but
    ``allowed``: the renderer's own separators)."""
    for number, line in enumerate(text.split("\n"), 1):
        assert not _AT_START.match(line.lstrip()), f"{where}:{number} starts a CI command: {line!r}"
        assert not _ANYWHERE.search(line), f"{where}:{number} holds a CI command: {line!r}"
        raw = sorted(
            {f"U+{ord(c):04X}" for c in line if unicodedata.category(c) in _RAW and c not in allowed}
        )
        assert not raw, f"{where}:{number} has raw control characters {raw}: {line!r}"


@pytest.fixture
def hostile_inventory(tmp_path: Path) -> Path:
    """The sample inventory with HOSTILE in every group name, Name tag, description and prefix-list name."""
    inventory = tmp_path / "inventory"
    shutil.copytree(SAMPLE / "inventory", inventory)
    path = inventory / "describe-security-groups.json"
    groups = json.loads(path.read_text())
    for group in groups["SecurityGroups"]:
        group["GroupName"] = f"::warning::{group['GroupName']}{HOSTILE}"
        group["Description"] = HOSTILE
        tags = [t for t in group.get("Tags", []) if t["Key"] != "Name"]
        group["Tags"] = [*tags, {"Key": "Name", "Value": f"::error::{HOSTILE}"}]
        for permission in group.get("IpPermissionsEgress", []):
            for key in ("IpRanges", "Ipv6Ranges", "UserIdGroupPairs", "PrefixListIds"):
                for entry in permission.get(key, []):
                    entry["Description"] = f"##[error]{HOSTILE}"
    path.write_text(json.dumps(groups))
    path = inventory / "describe-security-group-rules.json"
    rules = json.loads(path.read_text())
    for rule in rules["SecurityGroupRules"]:
        rule["Description"] = f"##[error]{HOSTILE}"
    path.write_text(json.dumps(rules))
    path = inventory / "describe-managed-prefix-lists.json"
    prefix_lists = json.loads(path.read_text())
    for prefix_list in prefix_lists["PrefixLists"]:
        prefix_list["PrefixListName"] = f"##vso[x]{HOSTILE}"
        for tag in prefix_list.get("Tags", []):
            if tag["Key"] == "Name":
                tag["Value"] = f"::error::{HOSTILE}"
    path.write_text(json.dumps(prefix_lists))
    return inventory


# ------------------------------------------------------------------------------- safe_text, safe_line


def test_safe_text_makes_every_control_character_visible_on_one_line() -> None:
    text = safe_text(f"a{EVERY_CONTROL}\u2028\u2029{BIDI}\u200b\ufeff\U000e0041b")
    assert_inert(text, "safe_text")
    assert "\n" not in text and text.startswith("a\\x00") and text.endswith("\\U000e0041b")
    for escape in (
        "\\n",
        "\\r",
        "\\t",
        "\\x1b",
        "\\x7f",
        "\\x85",
        "\\u2028",
        "\\u2029",
        "\\u202e",
        "\\u2066",
    ):
        assert escape in text
    assert safe_text(text) == text  # idempotent: two layers applying it do not mangle a value
    assert safe_text("web-1 Ünïcode 日本 🙂 (a\\b)") == "web-1 Ünïcode 日本 🙂 (a\\b)"  # visible text stays


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("::error::pwned", "\\::error::pwned"),
        ("   ::add-mask::x", "   \\::add-mask::x"),
        ("\u3000\u00a0::set-output name=x::1", "\u3000\u00a0\\::set-output name=x::1"),
        (":\u200b:error::x", ":\\u200b:error::x"),  # runners' culture-aware matching skips U+200B
        ("sg-1 name ##vso[task.setvariable variable=x]1", "sg-1 name #\\#vso[task.setvariable variable=x]1"),
        ("x ##[error]y ###[group]", "x #\\#[error]y ##\\#[group]"),
        ("##teamcity[buildStatus text='x']", "#\\#teamcity[buildStatus text='x']"),
        ("#\u200b#vso[task.complete result=Failed]", "#\\u200b#vso[task.complete result=Failed]"),
        ("--- collapsed", "\\--- collapsed"),
        ("+++ open", "\\+++ open"),
        ("~~~ quiet", "\\~~~ quiet"),
        ("^^^ +++", "\\^^^ +++"),
        ("a\n::error::b", "a\\n::error::b"),
    ],
)
def test_safe_line_breaks_every_ci_command_visibly(line: str, expected: str) -> None:
    assert safe_line(line) == expected
    assert_inert(expected, "safe_line")
    assert safe_line(expected) == expected


def test_safe_line_changes_only_what_a_runner_would_read() -> None:
    ordinary = [
        "group  name  current",
        "-----  ----  -------",
        "       - rule sgr-1",
        "a::b",
        "## heading",
        "#1",
    ]
    assert [safe_line(line) for line in ordinary] == ordinary
    assert safe_line("\t::error::x") == "\\t::error::x"  # a tab is not white space that hides it


# ---------------------------------------------------------------------------------------- the CLI


def test_recommend_with_a_hostile_inventory_prints_and_writes_nothing_a_runner_obeys(
    hostile_inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    flows = str(SAMPLE / "flows")
    assert run(["recommend", "--flows", flows, "--inventory", str(hostile_inventory), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert_inert(captured.out, "stdout")
    assert "::error::pwned" in captured.out and "\\x1b[31mred" in captured.out  # shown, escaped
    assert_inert(captured.err, "stderr")
    for name in ("summary.md", "egress.tf", "removals.sh", "recommendation.json"):
        assert_inert((out / name).read_text(encoding="utf-8"), name)
    # report.html's edge tables are tab-separated data attributes (the values in them are escaped).
    assert_inert((out / "report.html").read_text(encoding="utf-8"), "report.html", allowed="\t")
    # recommendation.json writes hidden characters and the CI '#' as JSON escapes: the values are intact.
    document = json.loads((out / "recommendation.json").read_text(encoding="utf-8"))
    assert any(HOSTILE in group["group_name"] for group in document["security_groups"])

    assert run(["recommend", "--flows", flows, "--inventory", str(hostile_inventory), "--out", "-"]) == 0
    captured = capsys.readouterr()
    assert_inert(captured.err, "stderr (summary table with --out -)")
    assert_inert(captured.out, "recommendation.json on stdout")


def test_check_with_a_hostile_inventory_prints_and_writes_nothing_a_runner_obeys(
    hostile_inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sarif, junit, markdown = tmp_path / "c.sarif", tmp_path / "junit.xml", tmp_path / "summary.md"
    argv = ["check", "--baseline", str(BASELINE), "--inventory", str(hostile_inventory)]
    argv += ["--flows", str(SAMPLE / "flows"), "--sarif", str(sarif), "--junit", str(junit)]
    assert run([*argv, "--markdown", str(markdown)]) == 1
    captured = capsys.readouterr()
    assert "::error::pwned" in captured.out  # the labels are shown, escaped
    assert_inert(captured.out, "check stdout")
    assert_inert(captured.err, "check stderr")
    assert_inert(markdown.read_text(encoding="utf-8"), "check summary.md")
    assert_inert(junit.read_text(encoding="utf-8"), "junit.xml (as a job would print it)")
    assert_inert(sarif.read_text(encoding="utf-8"), "check.sarif (as a job would print it)")

    tree = ET.parse(junit).getroot()  # the texts CI report widgets show
    for element in tree.iter():
        for text in [element.text or "", *element.attrib.values()]:
            assert_inert(text, f"junit <{element.tag}>")
    log = json.loads(sarif.read_text(encoding="utf-8"))  # the texts code scanning shows
    results = log["runs"][0]["results"]
    assert results and any("::error::pwned" in r["message"]["text"] for r in results)
    for result in results:
        assert_inert(result["message"]["text"], f"SARIF result {result['properties']['findingId']}")


# ------------------------------------------------------------------------------------------- summary.md


def test_summary_md_turns_no_mention_link_or_issue_reference_into_a_live_one(
    hostile_inventory: Path, tmp_path: Path
) -> None:
    """GitHub finds mentions, bare URLs and issue references in the rendered text outside <code>, <pre>
    and <a>: parse the Markdown as GitHub does (CommonMark + tables) and look at the text left."""
    markdown_it = pytest.importorskip("markdown_it")
    out = tmp_path / "out"
    flows = str(SAMPLE / "flows")
    assert run(["recommend", "--flows", flows, "--inventory", str(hostile_inventory), "--out", str(out)]) == 0
    text = (out / "summary.md").read_text(encoding="utf-8")
    linky = re.compile(r"@|://|www\.|#\d", re.IGNORECASE)
    live: list[str] = []
    for token in markdown_it.MarkdownIt("commonmark").enable("table").parse(text):
        if token.type == "html_block":
            live += linky.findall(re.sub(r"<code>.*?</code>", "", token.content))
        for child in token.children or []:
            if child.type in ("text", "html_inline"):
                live += linky.findall(child.content)
    assert not live, f"live mentions or links in summary.md: {live}"
    assert "`@org/team`" in text and "<code>" in text  # still there, as code


def test_summary_md_lists_the_groups_it_could_not_judge_with_their_reasons(
    sample_recommendation: Recommendation,
) -> None:
    text = render_summary(sample_recommendation)
    unjudged = [g for g in sample_recommendation.security_groups if g.coverage.status != "ok"]
    assert unjudged and "### Not judged" in text
    for group in unjudged:
        row = next(line for line in text.splitlines() if line.startswith(f"| {group.group_id} |"))
        assert f"| {group.coverage.status} |" in row
        labels = sample_recommendation.labels  # each ENI id in a reason is followed by its label
        assert all(markdown_text(name_enis(reason, labels)) in row for reason in group.coverage.reasons)


def _table_cells(line: str) -> int:
    """Cells of a GFM table row as GitHub splits it: a backslash escapes the next character, pipes."""
    return re.sub(r"\\.", "", line).count("|") - 1


def test_summary_md_stays_under_its_limit_whatever_the_values(sample_recommendation: Recommendation) -> None:
    """Huge names made of characters that escape to ten times their length, pipes, backticks and
    backslashes, on 1,000 groups of which half could not be judged, each with many reasons."""
    nasty = "\U000e0041|`\\|" * 1500 + HOSTILE
    groups = []
    for i in range(1000):
        group = sample_recommendation.security_groups[i % len(sample_recommendation.security_groups)]
        update: dict[str, object] = {"group_id": f"sg-{i:017x}", "group_name": nasty, "name_tag": nasty}
        if i % 2:
            coverage = group.coverage.model_copy(update={"status": "partial", "reasons": [nasty] * 40})
            update["coverage"] = coverage
        groups.append(group.model_copy(update=update))
    big = sample_recommendation.model_copy(
        update={"security_groups": groups, "labels": {}, "warnings": [nasty] * 30}
    )
    text = render_summary(big)
    assert len(text) <= MAX_CHARS
    assert_inert(text, "summary.md")
    assert "more groups with changes in recommendation.json" in text
    assert "more groups not judged in recommendation.json" in text
    assert text.count("<details>") == text.count("</details>")
    widths = [_table_cells(line) for line in text.splitlines() if line.startswith("| ")]
    assert widths and all(w in (8, 4) for w in widths)  # every row of both tables whole, none split


def test_markdown_quoting_keeps_one_cell_and_html_escaping_in_raw_html() -> None:
    value = f"a|b\\|c @x `d` <b>{HOSTILE}"
    assert _table_cells(f"| {markdown_text(value)} |") == 1
    assert_inert(markdown_text(value), "markdown_text")
    html = html_text(value)
    assert html.startswith("<code>") and "&lt;b&gt;" in html and "##vso&#91;" in html
    assert_inert(html, "html_text")


# --------------------------------------------------------------------------------------------- egress.tf

EVERYTHING = f'{EVERY_CONTROL}\u2028\u2029{BIDI}\ufeff q"uote back\\slash ${{var.x}} %{{ if true }}x%{{ endif }} $${{y}} ##vso[x]'
_HCL_ESCAPE = re.compile(r'\\(?:[nrt"\\]|u[0-9a-f]{4}|U[0-9a-f]{8})')


def test_hcl_strings_use_only_terraform_escapes_and_no_raw_control_character() -> None:
    literal = hcl_string(EVERYTHING)
    assert "\\" not in _HCL_ESCAPE.sub("", literal)  # JSON's \b and \f are not HCL
    assert "${" not in literal.replace("$${", "") and "%{" not in literal.replace("%%{", "")
    assert_inert(literal, "HCL literal")


def test_egress_tf_with_every_control_character_is_canonical_valid_and_exact(
    terraform: TerraformTool,  # noqa: F811
    sample_recommendation: Recommendation,
    tmp_path: Path,
) -> None:
    groups = []
    for group in sample_recommendation.security_groups:
        proposed = [r.model_copy(update={"description": EVERYTHING}) for r in group.proposed_egress]
        groups.append(group.model_copy(update={"proposed_egress": proposed}))
    config = tmp_path / "config"
    _write_rendered(sample_recommendation.model_copy(update={"security_groups": groups}), config)
    terraform.run(config, "fmt", "-check", "-diff", "-no-color")
    assert_inert((config / "egress.tf").read_text(encoding="utf-8"), "egress.tf")
    (config / "providers.tf").write_text(_providers_tf())
    terraform.init(config)
    terraform.run(config, "validate", "-no-color")

    # Terraform reads back exactly the value: an output of the same literal, applied without providers.
    values = {"everything": EVERYTHING, "astral": "\U000e0041\U0001f642", "dollar": "$${x} $$ %%{ }"}
    echo = tmp_path / "echo"
    echo.mkdir()
    body = "".join(f'output "{k}" {{\n  value = {hcl_string(v)}\n}}\n' for k, v in values.items())
    (echo / "main.tf").write_text(body, encoding="utf-8")
    terraform.run(echo, "fmt", "-check", "-no-color")
    terraform.run(echo, "apply", "-auto-approve", "-input=false", "-no-color")
    outputs = json.loads(terraform.run(echo, "output", "-json").stdout)
    assert {k: v["value"] for k, v in outputs.items()} == values
