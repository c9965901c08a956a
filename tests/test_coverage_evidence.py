"""Silence is not evidence (issue 15, point 1): coverage comes only from records that were delivered.

An ENI with no record in the window has no evidence however old its flow log is; a stretch of the window
without any record of an ENI (NODATA included) longer than --max-gap makes its groups partial, with the
hole named; files that were lost in transit leave exactly such holes.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import pytest

from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.flowlogs.edgefile import write_edge_lines
from sgadvisor.flowlogs.ingest import read_flows
from sgadvisor.flowlogs.spans import SPAN_RESOLUTION, find_holes, merge_spans
from sgadvisor.inventory.model import Inventory
from sgadvisor.inventory.snapshot import load_snapshot
from sgadvisor.models import Recommendation
from tests.conftest import DEFAULT_HEADER, REPO, default_line, nodata_lines, write_lines
from tests.test_cli import run

SAMPLE_FLOWS = REPO / "sample_data" / "flows"
SAMPLE_INVENTORY = REPO / "sample_data" / "inventory"
DNS_ENI = "eni-0985a675bb67c65cb"  # dns-1, the self-managed resolver
DNS_GROUP = "sg-0a028484a6ecc064e"
T0 = 1_793_491_200


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return load_snapshot([SAMPLE_INVENTORY])


def _recommend(flows: Path, inventory: Inventory) -> Recommendation:
    read = read_flows([flows], addresses=inventory.addresses)
    return build_recommendation(read, inventory, AnalysisOptions())


def _copy_without(tmp: Path, drop_eni: str | None = None, drop_days: tuple[str, ...] = ()) -> Path:
    """sample_data/flows with one ENI's lines or some day folders removed (lost in delivery)."""
    out = tmp / "flows"
    shutil.copytree(SAMPLE_FLOWS, out)
    for day in drop_days:
        shutil.rmtree(out / "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2026/11" / day)
    if drop_eni:
        for path in out.rglob("*.log.gz"):
            lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
            path.write_bytes(gzip.compress("".join(li for li in lines if drop_eni not in li).encode()))
    return out


def _removals(rec: Recommendation, gid: str) -> list[str]:
    group = next(g for g in rec.security_groups if g.group_id == gid)
    return [c.action for c in group.changes if c.action in ("remove", "narrow")]


def test_an_eni_without_a_single_record_has_no_evidence_whatever_its_flow_log(
    tmp_path: Path, inventory: Inventory
) -> None:
    full = _recommend(SAMPLE_FLOWS, inventory)
    assert next(g for g in full.security_groups if g.group_id == DNS_GROUP).coverage.status == "ok"
    # The VPC's flow log was created long before the window and the other ENIs under it still deliver.
    assert any(fl.created is not None and fl.created < T0 for fl in inventory.flow_logs)
    rec = _recommend(_copy_without(tmp_path, drop_eni=DNS_ENI), inventory)
    group = next(g for g in rec.security_groups if g.group_id == DNS_GROUP)
    assert group.coverage.status == "none"
    assert group.coverage.reasons == [
        f"{DNS_ENI}: no flow-log record of it in the window (flow log fl-0e28ec3cc4b1f9a67)"
    ]
    assert _removals(rec, DNS_GROUP) == []  # its udp 53 rules stay


def test_lost_days_leave_holes_that_make_every_group_partial(tmp_path: Path, inventory: Inventory) -> None:
    rec = _recommend(_copy_without(tmp_path, drop_days=("02", "03", "04", "05", "06", "07")), inventory)
    judged = [g for g in rec.security_groups if g.coverage.enis]
    for group in judged:
        if group.coverage.status == "none":  # the bastion has no flow log at all
            continue
        assert group.coverage.status == "partial", group.group_id
        hole = next(r for r in group.coverage.reasons if "no record of it from 2026-11-0" in r)
        assert "> --max-gap 30m" in hole and "(flow log fl-" in hole
        assert _removals(rec, group.group_id) == []
    # Members alive through the lost days show a hole to the window's end (its first hour is on 11-08);
    # an ECS task deleted meanwhile shows one to its deletion only.
    reasons = [r for g in judged for r in g.coverage.reasons]
    assert any("no record of it from 2026-11-01T" in r and "to 2026-11-08T00:0" in r for r in reasons)


def _hourly_flows(tmp_path: Path, idle_minutes: int) -> Path:
    """eni-app talks every hour for a day; NODATA in between except for one silence of ``idle_minutes``."""
    lines = []
    for hour in range(24):
        start = T0 + hour * 3600
        lines.append(default_line("10.0.1.10", "10.0.2.15", 40000 + hour, 5432, eni="eni-app", start=start))
        lines += nodata_lines("eni-app", start + 60, start + 3600)
    silence = range(T0 + 12 * 3600, T0 + 12 * 3600 + idle_minutes * 60)
    lines = [li for li in lines if not (li.endswith("NODATA") and int(li.split()[10]) in silence)]
    return write_lines(tmp_path / "f.log", lines, header=DEFAULT_HEADER)


def test_max_gap_decides_how_long_a_silence_may_be(tmp_path: Path) -> None:
    flows = read_flows([_hourly_flows(tmp_path, idle_minutes=50)])
    spans = flows.spans.filter(flows.spans["interface_id"] == "eni-app").rows()
    pairs = [(start, end) for _, start, end in spans]
    assert flows.window is not None
    # 50 idle minutes (five NODATA records missing): a hole of about an hour between two records.
    holes = find_holes(pairs, flows.window.start, flows.window.end, 30 * 60)
    assert len(holes) == 1 and 45 * 60 <= holes[0].seconds <= 61 * 60
    assert find_holes(pairs, flows.window.start, flows.window.end, 2 * 3600) == []
    # Without the silence the NODATA records leave no stretch longer than one interval.
    healthy = read_flows([_hourly_flows(tmp_path, idle_minutes=0)])
    assert healthy.spans.filter(healthy.spans["interface_id"] == "eni-app").height == 1


def test_spans_merge_across_files_and_blocks(tmp_path: Path) -> None:
    """Half the day in one file, half in another: together they leave no hole; read in small blocks too."""
    lines = [default_line(eni="eni-a", start=T0), *nodata_lines("eni-a", T0 + 60, T0 + 86400)]
    write_lines(tmp_path / "d" / "a.log", lines[: len(lines) // 2], header=DEFAULT_HEADER)
    write_lines(tmp_path / "d" / "b.log", lines[len(lines) // 2 :], header=DEFAULT_HEADER)
    for fast in (True, False):
        flows = read_flows([tmp_path / "d"], fast=fast, block_bytes=512)
        assert flows.spans.rows() == [("eni-a", T0, T0 + 86460)]
    left = merge_spans([flows.spans.head(0)])
    assert left.height == 0 and SPAN_RESOLUTION == 600


def test_spans_survive_the_edge_file_and_an_old_edge_file_proves_nothing(tmp_path: Path) -> None:
    flows_path = _hourly_flows(tmp_path, idle_minutes=50)
    edges = tmp_path / "edges.jsonl"
    assert run(["edges", "--flows", str(flows_path), "--out", str(edges)]) == 0
    again = read_flows([edges])
    assert again.spans.equals(read_flows([flows_path]).spans)
    # An edge file written before spans existed: its coverage lines lack them.
    stripped = tmp_path / "stripped.jsonl"
    with stripped.open("w") as out:
        write_edge_lines(again, out)
    text = "\n".join(
        li.split(',"spans":')[0] + "}" if '"kind":"coverage"' in li else li
        for li in stripped.read_text().splitlines()
    )
    stripped.write_text(text + "\n")
    spanless = read_flows([stripped])
    assert spanless.spans.height == 0
    assert any("has no spans" in w and "proves nothing" in w for w in spanless.warnings)


def test_max_gap_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = _hourly_flows(tmp_path, idle_minutes=50)
    base = ["recommend", "--flows", str(flows), "--inventory", str(SAMPLE_INVENTORY), "--format", "json"]
    assert run([*base, "--max-gap", "30s", "--out", str(tmp_path / "o")]) == 2
    assert "--max-gap" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert run([*base, "--max-gap", "2h", "--out", str(tmp_path / "o")]) == 0


def test_an_unreadable_part_of_the_input_is_exit_2_or_partial_with_allow_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(SAMPLE_FLOWS, flows)
    # A file of one flow log (the app subnet's ENIs' log) replaced by a dangling link: known to be missing.
    lost = next((flows / "AWSLogs").rglob("*fl-0e28ec3cc4b1f9a67_20261104*.log.gz"))
    lost.unlink()
    lost.symlink_to(tmp_path / "nowhere.log.gz")
    out = tmp_path / "out"
    argv = ["recommend", "--flows", str(flows), "--inventory", str(SAMPLE_INVENTORY), "--out", str(out)]
    assert run(argv) == 2
    assert lost.name in capsys.readouterr().err and not out.exists()
    assert run([*argv, "--allow-missing", "--format", "json"]) == 0
    rec = Recommendation.model_validate_json((out / "recommendation.json").read_text())
    for group in rec.security_groups:
        reasons = " ".join(group.coverage.reasons)
        if DNS_ENI in {e for e in reasons.split() if e.startswith("eni-")} or group.group_id == DNS_GROUP:
            assert group.coverage.status == "partial"
            assert "could not be read" in reasons and lost.name in reasons
            assert _removals(rec, group.group_id) == []
    # Groups whose ENIs are under other flow logs are still judged.
    assert any(g.coverage.status == "ok" for g in rec.security_groups)


def test_the_terminal_says_why_a_group_was_not_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = _copy_without(tmp_path, drop_days=("04",))
    argv = [
        "recommend",
        "--flows",
        str(flows),
        "--inventory",
        str(SAMPLE_INVENTORY),
        "--out",
        str(tmp_path / "o"),
    ]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"not judged \(\d+ groups: no rule is removed or narrowed without evidence\):", out)
    dns = next(line for line in out.splitlines() if line.startswith(f"  {DNS_GROUP} partial: "))
    assert f"{DNS_ENI}: no record of it from 2026-11-03T" in dns and "(flow log fl-0e28ec3cc4b1f9a67)" in dns


# ---------------------------------------------------------------------------- review findings


def _dns_day_flows(tmp_path: Path, lines: list[str]) -> Path:
    return write_lines(tmp_path / "flows" / "a.log", lines, header=DEFAULT_HEADER)


def test_an_eni_covered_only_by_a_reject_only_flow_log_has_no_evidence(tmp_path: Path) -> None:
    """Its REJECT and NODATA records arrive without a hole, but accepted traffic is never logged."""
    inventory = tmp_path / "inv"
    shutil.copytree(SAMPLE_INVENTORY, inventory)
    logs = inventory / "describe-flow-logs.json"
    logs.write_text(logs.read_text().replace('"TrafficType": "ALL"', '"TrafficType": "REJECT"'))
    lines = [default_line("10.0.2.53", "10.0.9.9", 40000, 22, eni=DNS_ENI, start=T0, action="REJECT")]
    lines += nodata_lines(DNS_ENI, T0 + 60, T0 + 8 * 86400)
    flows = _dns_day_flows(tmp_path, lines)
    out = tmp_path / "o"
    assert run(["recommend", "--flows", str(flows), "--inventory", str(inventory), "--out", str(out),
                "--format", "json"]) == 0  # fmt: skip
    rec = Recommendation.model_validate_json((out / "recommendation.json").read_text())
    group = next(g for g in rec.security_groups if g.group_id == DNS_GROUP)
    assert group.coverage.status == "none"
    assert any("only REJECT traffic is logged for it" in r for r in group.coverage.reasons)
    assert _removals(rec, DNS_GROUP) == []


def test_a_record_with_a_far_off_end_does_not_cover_the_window(tmp_path: Path) -> None:
    lines = [default_line(eni="eni-a", start=T0)]
    lines.append(default_line(eni="eni-a", start=T0 + 60).replace(f" {T0 + 120} ", f" {T0 + 8 * 86400} "))
    lines += nodata_lines("eni-a", T0 + 7 * 86400, T0 + 8 * 86400)
    flows = read_flows([_dns_day_flows(tmp_path, lines)])
    spans = [(start, end) for _, start, end in flows.spans.rows()]
    holes = find_holes(spans, T0, T0 + 8 * 86400, 30 * 60)
    assert len(holes) == 1 and holes[0].start <= T0 + 60 + 660 and holes[0].end == T0 + 7 * 86400


def test_a_folder_that_only_looks_like_an_id_does_not_hide_an_unreadable_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "eni-data"
    shutil.copytree(SAMPLE_FLOWS, flows)
    (flows / "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2026/11/09").symlink_to(tmp_path / "nowhere")
    out = tmp_path / "o"
    argv = ["recommend", "--flows", str(flows), "--inventory", str(SAMPLE_INVENTORY), "--out", str(out)]
    assert run([*argv, "--allow-missing", "--format", "json"]) == 0
    rec = Recommendation.model_validate_json((out / "recommendation.json").read_text())
    judged = [g for g in rec.security_groups if g.coverage.enis and g.coverage.status != "none"]
    assert judged and all(g.coverage.status == "partial" for g in judged)
    assert all(_removals(rec, g.group_id) == [] for g in judged)


def test_an_edge_file_made_with_allow_missing_carries_what_was_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(SAMPLE_FLOWS, flows)
    (flows / "lost.log.gz").symlink_to(tmp_path / "nowhere.log.gz")
    edges = tmp_path / "edges.jsonl"
    assert run(["edges", "--flows", str(flows), "--out", str(edges)]) == 2
    assert run(["edges", "--flows", str(flows), "--out", str(edges), "--allow-missing"]) == 0
    assert '"kind":"unreadable"' in edges.read_text()
    argv = [
        "recommend",
        "--flows",
        str(edges),
        "--inventory",
        str(SAMPLE_INVENTORY),
        "--out",
        str(tmp_path / "o"),
    ]
    capsys.readouterr()
    assert run(argv) == 2  # still known to be missing
    assert "lost.log.gz" in capsys.readouterr().err
    assert run([*argv, "--allow-missing", "--format", "json"]) == 0
    rec = Recommendation.model_validate_json((tmp_path / "o" / "recommendation.json").read_text())
    assert all(g.coverage.status != "ok" for g in rec.security_groups)


def test_records_without_times_are_said_to_prove_no_delivery(tmp_path: Path) -> None:
    """A custom format without start/end: the ENI has records, but when they arrived is unknown."""
    fields = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes action log-status"
    lines = [f"2 123456789012 {DNS_ENI} 10.0.2.53 10.0.9.9 40000 53 17 1 80 ACCEPT OK"]
    flows = write_lines(tmp_path / "flows" / "a.log", lines, header=fields)
    inventory = load_snapshot([SAMPLE_INVENTORY])
    rec = build_recommendation(
        read_flows([flows], addresses=inventory.addresses), inventory, AnalysisOptions()
    )
    group = next(g for g in rec.security_groups if g.group_id == DNS_GROUP)
    assert group.coverage.status == "none"
    assert group.coverage.reasons == [
        f"{DNS_ENI}: its records carry no start/end times, so their delivery cannot be shown"
    ]


def test_traffic_of_an_eni_missing_from_the_inventory_says_what_would_attribute_it(tmp_path: Path) -> None:
    """A replaced instance: its old ENI's records remain, the inventory knows only today's ENIs."""
    flows = _copy_without(tmp_path)
    for path in flows.rglob("*.log.gz"):
        text = gzip.decompress(path.read_bytes()).decode()
        path.write_bytes(gzip.compress(text.replace(DNS_ENI, "eni-0aaaaaaaaaaaaaaaa").encode()))
    rec = _recommend(flows, load_snapshot([SAMPLE_INVENTORY]))
    hint = next(w for w in rec.warnings if "ENIs not in the inventory" in w)
    assert "(eni-0aaaaaaaaaaaaaaaa)" in hint and "collect --history missing" in hint
    assert "the ENI history given does not cover them" in hint  # the sample has history, not of this ENI
