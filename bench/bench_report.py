"""Scale of report.html on a 1,000-security-group estate: file size, render time, and load and search
times in headless chromium (the Debian package, through playwright).

The recommendation is synthetic (the report reads only the model, so no analysis is needed): groups with
1-20 current rules of every destination kind, keep/narrow/remove/add changes with evidence, up to 200
edges each (a fifth of the groups at the cap, with ``edges_omitted``), Name tags for every id, and full
top-level sections. Prints a Markdown table; ``--write`` also writes bench/REPORT.md.

Run: ``python bench/bench_report.py [--groups 1000] [--repeat 3] [--write]`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sgadvisor.accounting import InputAccounting, Issue
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
    WindowOut,
    WouldBeBlocked,
)
from sgadvisor.render.html import render_html
from sgadvisor.rules import Rule

# .ci/run exports where Debian's chromium is (SGADVISOR_CHROMIUM); elsewhere the one on PATH.
CHROMIUM = os.environ.get("SGADVISOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WINDOW_SECONDS = 14 * 86400
PORTS = [22, 53, 80, 443, 3306, 5432, 6379, 8080, 8443, 9092, 9100, 50051]
PREFIX_LISTS = {
    "pl-6da54004": "com.amazonaws.eu-west-1.s3",
    "pl-6fa54006": "com.amazonaws.eu-west-1.dynamodb",
}
REPORT_MD = Path(__file__).resolve().parent / "REPORT.md"


def _hex(prefix: str, index: int) -> str:
    return f"{prefix}-{index:017x}"


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return f"10.{rng.randint(0, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _rule(rng: random.Random, n_groups: int, rule_id: str | None, description: str | None) -> Rule:
    port = rng.choice(PORTS)
    choice = rng.random()
    common = {"security_group_rule_id": rule_id, "description": description}
    if choice < 0.1:
        return Rule(ip_protocol="-1", cidr_ipv4="0.0.0.0/0", **common)
    if choice < 0.35:
        return Rule(ip_protocol="tcp", from_port=port, to_port=port, cidr_ipv4="0.0.0.0/0", **common)
    if choice < 0.65:
        ref = _hex("sg", rng.randrange(n_groups))
        return Rule(
            ip_protocol="tcp", from_port=port, to_port=port, referenced_security_group_id=ref, **common
        )
    if choice < 0.75:
        prefix = rng.choice(sorted(PREFIX_LISTS))
        return Rule(ip_protocol="tcp", from_port=443, to_port=443, prefix_list_id=prefix, **common)
    proto = rng.choice(["tcp", "udp"])
    return Rule(ip_protocol=proto, from_port=port, to_port=port, cidr_ipv4=f"{_ip(rng)}/32", **common)


def _evidence(rng: random.Random, enis: list[str], rule: Rule) -> Evidence:
    kind, value = rule.destination
    destinations = [value.split("/")[0]] if kind.value.startswith("cidr") else [_ip(rng) for _ in range(3)]
    return Evidence(
        records=rng.randint(1, 50_000),
        bytes=rng.randint(1_000, 5_000_000_000),
        first_seen="2026-11-01T00:10:00Z",
        last_seen="2026-11-14T23:50:00Z",
        enis=sorted(rng.sample(enis, min(len(enis), rng.randint(1, 4)))),
        destinations=destinations,
        confidence=rng.choice(["high", "medium", "low"]),
        why=["tcp-flags: SYN from the ENI", "local port ephemeral, remote port not"][: rng.randint(1, 2)],
    )


def _changes(
    rng: random.Random, current: list[Rule], enis: list[str], n_groups: int, removable: bool
) -> tuple[list[ProposedRule], list[Change]]:
    """keep/remove/narrow for each current rule, adds for the narrowed and a few new ones."""
    proposed: list[ProposedRule] = []
    changes: list[Change] = []
    adds: list[Change] = []
    for rule in current:
        action = rng.choice(["keep", "keep", "remove", "narrow"]) if removable else "keep"
        rid = rule.security_group_rule_id
        if action == "keep":
            proposed.append(ProposedRule(**rule.model_dump(), evidence=_evidence(rng, enis, rule)))
            changes.append(
                Change(action="keep", security_group_rule_id=rid, rule=rule, reason="traffic used it")
            )
        elif action == "remove":
            reason = "no initiated traffic used it in the window, and coverage is ok"
            changes.append(Change(action="remove", security_group_rule_id=rid, rule=rule, reason=reason))
        else:
            indices = []
            for _ in range(rng.randint(1, 3)):
                add = _rule(rng, n_groups, None, "sgadvisor: evidence summary")
                indices.append(len(proposed))
                proposed.append(ProposedRule(**add.model_dump(), evidence=_evidence(rng, enis, add)))
                reason = "carries initiated traffic"
                adds.append(Change(action="add", rule=add, reason=reason, replaces=[rid or ""]))
            reason = "only part of what it permits was used"
            changes.append(
                Change(
                    action="narrow", security_group_rule_id=rid, rule=rule, reason=reason, replaced_by=indices
                )
            )
    return proposed, changes + adds


def _skewed(rng: random.Random, high: int) -> int:
    """1..high, log-uniform: most groups are small, a few are large (as in real estates)."""
    return min(high, int(math.exp(rng.uniform(0, math.log(high + 1)))))


def _edges(rng: random.Random, enis: list[str], pool: list[str], worst: bool) -> tuple[list[EdgeOut], int]:
    """Edges to a VPC-wide pool of peers (groups share destinations: DNS, databases, internet hosts), or in
    the worst case 200 edges to distinct peers."""
    if not enis:
        return [], 0
    capped = worst or rng.random() < 0.1
    count = 200 if capped else _skewed(rng, 199)
    edges = [
        EdgeOut.model_validate(
            {
                "eni": rng.choice(enis),
                "remote": _ip(rng) if worst else rng.choice(pool),
                "protocol": rng.choice(["tcp", "tcp", "tcp", "udp", "icmp"]),
                "port": rng.choice([*PORTS, 0]),
                "records": rng.randint(1, 5_000),
                "class": rng.choice(["initiated", "initiated", "reply", "unknown"]),
                "confidence": rng.choice(["high", "medium", "low"]),
            }
        )
        for _ in range(count)
    ]
    edges.sort(key=lambda e: -e.records)
    return edges, rng.randint(1, 5_000) if capped else 0


def _coverage(rng: random.Random, n_enis: int) -> CoverageOut:
    if n_enis == 0:
        return CoverageOut(
            status="none",
            enis=0,
            enis_with_evidence=0,
            window_seconds=WINDOW_SECONDS,
            skipdata_share=0.0,
            reasons=["unattached"],
        )
    roll = rng.random()
    status = "ok" if roll < 0.8 else "partial" if roll < 0.92 else "none"
    with_evidence = n_enis if status == "ok" else (rng.randint(1, n_enis) - 1 if status == "partial" else 0)
    reasons = [] if status == "ok" else [f"{n_enis - with_evidence} ENIs have fewer than 7 days of records"]
    share = round(rng.random() * 0.01, 6)
    return CoverageOut(
        status=status,
        enis=n_enis,
        enis_with_evidence=with_evidence,
        window_seconds=WINDOW_SECONDS,
        skipdata_share=share,
        reasons=reasons,
    )


def _group(
    rng: random.Random, index: int, n_groups: int, labels: dict[str, str], next_eni: list[int], worst: bool
) -> GroupReport:
    gid = _hex("sg", index)
    n_enis = 12 if worst else 0 if rng.random() < 0.03 else _skewed(rng, 12)
    enis = [_hex("eni", next_eni[0] + i) for i in range(n_enis)]
    next_eni[0] += n_enis
    for i, eni in enumerate(enis):
        labels[eni] = f"svc-{index}-node-{i}"
    coverage = _coverage(rng, n_enis)
    current = [
        _rule(rng, n_groups, _hex("sgr", index * 64 + r), f"rule {r} of service {index}")
        for r in range(20 if worst else _skewed(rng, 20))
    ]
    proposed, changes = _changes(rng, current, enis or ["eni-0"], n_groups, coverage.status == "ok")
    pool_rng = random.Random(index % 8)  # the peers of this group's VPC
    pool = [_ip(pool_rng) for _ in range(300)]
    edges, omitted = _edges(rng, enis, pool, worst)
    labels[gid] = f"svc-{index} (service {index} egress)"
    return GroupReport(
        group_id=gid,
        group_name=f"svc-{index}",
        vpc_id=f"vpc-{index % 8:017x}",
        name_tag=f"service {index} egress",
        unattached=n_enis == 0,
        coverage=coverage,
        current_egress=current,
        edges=edges,
        edges_omitted=omitted,
        proposed_egress=proposed,
        changes=changes,
    )


def synthetic(n_groups: int = 1000, seed: int = 11, *, worst: bool = False) -> Recommendation:
    """A deterministic estate-sized recommendation (for the benchmark only: it does not satisfy every
    invariant of a real analysis, the report does not need it to). ``worst``: every group has 12 ENIs,
    20 rules and 200 edges to distinct peers, the most the report shows of a group."""
    rng = random.Random(seed)
    labels: dict[str, str] = dict(PREFIX_LISTS)
    next_eni = [1]
    groups = [_group(rng, i, n_groups, labels, next_eni, worst) for i in range(n_groups)]
    some_eni = _hex("eni", 1)
    return Recommendation(
        tool=Tool(version="bench"),
        window=WindowOut(start="2026-11-01T00:00:00Z", end="2026-11-15T00:00:00Z"),
        collection=CollectionOut(source="files", records_scanned=50_000_000),
        security_groups=groups,
        labels=dict(sorted(labels.items())),
        infrastructure_enis=[
            InfrastructureEni(eni=_hex("eni", 900_000 + i), type="nat_gateway", records=1000, note="NAT")
            for i in range(20)
        ],
        unattributed=[
            Unattributed(
                interface_id=_hex("eni", 800_000 + i), records=50, destinations=[_ip(rng)], note="gone"
            )
            for i in range(50)
        ],
        not_permitted_now=[
            NotPermitted(
                eni=some_eni,
                rule=Rule(ip_protocol="icmp", from_port=-1, to_port=-1, cidr_ipv4=f"{_ip(rng)}/32"),
                records=9,
                note="not permitted now",
            )
            for _ in range(100)
        ],
        rejected_egress=[
            Rejected(eni=some_eni, ip_protocol="tcp", dst=_ip(rng), port=22, records=3, note="REJECT")
            for _ in range(300)
        ],
        would_be_blocked=[
            WouldBeBlocked.model_validate(
                {
                    "eni": some_eni,
                    "remote": _ip(rng),
                    "protocol": "tcp",
                    "port": 8080,
                    "records": 1,
                    "class": "unknown",
                    "confidence": "low",
                    "reason": "below --min-records",
                }
            )
            for _ in range(50)
        ],
        warnings=[f"synthetic warning {i}" for i in range(5)],
        input_accounting=InputAccounting(
            records=50_000_000,
            used=49_000_000,
            nodata=900_000,
            skipdata=99_000,
            malformed=1_000,
            issues=[Issue(file=f"flows/{i:03}.log.gz", line=i + 1, reason="field count") for i in range(100)],
            issues_omitted=900,
        ),
    )


@dataclass(frozen=True)
class BrowserTimes:
    """Milliseconds, as the page's own Navigation Timing and wall clock around playwright calls see them."""

    dom_content_loaded: float
    load_event: float
    first_search: float
    second_search: float
    open_biggest_group: float
    js_heap_mb: float


# Timed inside the page (performance.now), so playwright's own actionability checks are not counted.
_SEARCH = """async (text) => {
  const q = document.getElementById('q'), shown = document.getElementById('shown');
  const t0 = performance.now();
  const done = new Promise(r => new MutationObserver((m, o) => { o.disconnect(); r(); })
    .observe(shown, {childList: true, characterData: true, subtree: true}));
  q.value = text; q.dispatchEvent(new Event('input'));
  await done;
  return performance.now() - t0;
}"""
_OPEN = """async (i) => {
  const group = document.querySelectorAll('details.group')[i];
  const t0 = performance.now();
  group.open = true;
  group.scrollIntoView();
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t0;
}"""


def measure_browser(path: Path) -> BrowserTimes:
    """Load the page from file://, search twice (the first builds the text cache), open the group with
    the most edges, all in headless chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(path.as_uri(), wait_until="load", timeout=120_000)
        nav = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.domContentLoadedEventEnd, n.loadEventEnd]; }"
        )
        first = page.evaluate(_SEARCH, _hex("sg", 7))
        second = page.evaluate(_SEARCH, "node-3")
        page.evaluate(_SEARCH, "")
        biggest = page.evaluate(
            "() => { const g = [...document.querySelectorAll('details.group')];"
            " const n = g.map(e => (e.querySelector('details.edges') || {getAttribute: () => ''})"
            ".getAttribute('data-edges').length); return n.indexOf(Math.max(...n)); }"
        )
        opened = page.evaluate(_OPEN, biggest)
        heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : 0") / 2**20
        browser.close()
    return BrowserTimes(nav[0], nav[1], first, second, opened, heap)


@dataclass(frozen=True)
class Result:
    """One estate's numbers, formatted for the table."""

    rows: dict[str, str]


def measure(n_groups: int, repeat: int, *, worst: bool) -> Result:
    """Render ``repeat`` times (median), then load and search in chromium ``repeat`` times (median)."""
    recommendation = synthetic(n_groups, worst=worst)
    json_size = len(recommendation.to_json().encode())
    timings = []
    text = ""
    for _ in range(repeat):
        start = time.perf_counter()
        text = render_html(recommendation)
        timings.append(time.perf_counter() - start)
    data = text.encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        path.write_bytes(data)
        runs = [measure_browser(path) for _ in range(repeat)]

    def med(field: str) -> float:
        return float(statistics.median(getattr(run, field) for run in runs))

    gzipped = len(gzip.compress(data, 6))
    groups = recommendation.security_groups
    edges = sum(len(g.edges) for g in groups)
    rules = sum(len(g.current_egress) for g in groups)
    return Result(
        {
            "security groups": f"{n_groups:,}",
            "current rules / edges in the recommendation": f"{rules:,} / {edges:,}",
            "recommendation.json": f"{json_size / 2**20:.1f} MiB",
            "report.html": f"{len(data) / 2**20:.1f} MiB ({gzipped / 2**20:.1f} MiB gzipped)",
            "render in Python": f"{statistics.median(timings):.2f} s",
            "DOMContentLoaded": f"{med('dom_content_loaded'):,.0f} ms",
            "load event": f"{med('load_event'):,.0f} ms",
            "first search, to the counter update (incl. 120 ms debounce)": f"{med('first_search'):,.0f} ms",
            "second search": f"{med('second_search'):,.0f} ms",
            "open the group with the most edges (to the next frame)": f"{med('open_biggest_group'):,.0f} ms",
            "JS heap after load and the searches": f"{med('js_heap_mb'):,.0f} MiB",
        }
    )


def table(typical: Result, worst: Result) -> str:
    lines = ["| measure | typical estate | worst case |", "|---|---:|---:|"]
    lines += [f"| {key} | {value} | {worst.rows[key]} |" for key, value in typical.rows.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"also write the table into {REPORT_MD.name}")
    args = parser.parse_args()
    result = table(
        measure(args.groups, args.repeat, worst=False), measure(args.groups, args.repeat, worst=True)
    )
    print(result)
    if args.write:
        _write_report(result, args)


def _write_report(result: str, args: argparse.Namespace) -> None:
    """Replace the results between the markers of REPORT.md (the prose around them is kept)."""
    text = REPORT_MD.read_text() if REPORT_MD.exists() else ""
    start, end = "<!-- results -->", "<!-- /results -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + start + "\n" + result + end + rest.split(end, 1)[1]
    else:
        text += f"\n{start}\n{result}{end}\n"
    REPORT_MD.write_text(text)
    print(f"wrote {REPORT_MD} ({args.groups} groups, median of {args.repeat})", file=sys.stderr)


if __name__ == "__main__":
    main()
