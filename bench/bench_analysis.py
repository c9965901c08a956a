"""Scale of the analysis (flow edges + inventory → recommendation) on generated estates.

Sizes up to 5,000 ENIs, 1,000 security groups and 1,000,000 distinct edges by default (``--edges`` for
others: 200 edges per ENI and 5 ENIs per group, e.g. ``--edges 5000000``). Each estate is generated once
in its own process and kept in ``bench/data/`` (gitignored), then measured in a fresh process that only
loads it, so the peak RSS is the analysis's (plus the loaded estate), not the generator's. Prints a
Markdown table and the exponent of time ~ edges^k fitted over the sizes (target k < 1.1).
``--churn 20`` measures a churning variant of the same estates (20% of the ENIs replaced at mid-window,
with their ENI history: every flow attributed at its time). ``bench/compare_analysis.py`` checks that a
change leaves every output byte as it was.
Run: ``python bench/bench_analysis.py`` (a few minutes on 2 cores; ``--repeat 3`` for medians).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from sgadvisor.accounting import InputAccounting
from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.flowlogs.edges import COVERAGE_SCHEMA, EDGE_SCHEMA, FlowEdges, Window
from sgadvisor.flowlogs.spans import SPAN_SCHEMA
from sgadvisor.inventory.history import EniHistories, EniHistory, EniState
from sgadvisor.inventory.model import FlowLogConfig, Interface, Inventory, PrefixList, SecurityGroup, SgRule
from sgadvisor.rules import DestKind

T0 = 1_793_491_200
WINDOW = Window(T0, T0 + 8 * 86400)
SIZES = [(500, 100, 100_000), (1_500, 300, 300_000), (5_000, 1_000, 1_000_000)]
SERVICE_PORTS = [22, 53, 80, 443, 3306, 5432, 6379, 8080, 8443, 9100, 50051]
DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Estate:
    inventory: Inventory
    flows: FlowEdges


def _address(index: int) -> str:
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


def generate(n_enis: int, n_groups: int, n_edges: int, seed: int = 7) -> Estate:
    """A VPC-sized estate: groups with a mix of wide and specific rules, ENIs in one or two groups,
    initiated egress (with SYN), replies (SYN-ACK, bucketed remote port) and ingress evidence."""
    rng = random.Random(seed)
    gids = [f"sg-{i:08x}" for i in range(n_groups)]
    groups: dict[str, SecurityGroup] = {}
    for g, gid in enumerate(gids):
        rules = []
        for r in range(rng.randint(3, 8)):
            choice = rng.random()
            port = rng.choice(SERVICE_PORTS)
            spec: tuple[str, int | None, int | None, DestKind, str]
            if choice < 0.15:
                spec = ("-1", None, None, DestKind.CIDR_IPV4, "0.0.0.0/0")
            elif choice < 0.45:
                spec = ("tcp", port, port, DestKind.CIDR_IPV4, "0.0.0.0/0")
            elif choice < 0.75:
                spec = ("tcp", port, port, DestKind.SECURITY_GROUP, rng.choice(gids))
            elif choice < 0.85:
                spec = ("tcp", 443, 443, DestKind.PREFIX_LIST, "pl-s3")
            else:
                spec = ("tcp", 0, 65535, DestKind.CIDR_IPV4, "10.0.0.0/8")
            proto, low, high, dest, value = spec
            rule_id = f"sgr-{g:06x}{r:02x}"
            rules.append(SgRule.build(gid, True, proto, low, high, dest, value, rule_id=rule_id))
        groups[gid] = SecurityGroup(gid, f"group-{g}", "vpc-1", egress=tuple(rules))
    interfaces = {}
    for e in range(n_enis):
        member_of = tuple(sorted(set(rng.sample(gids, rng.choice([1, 1, 1, 2])))))
        interfaces[f"eni-{e:08x}"] = Interface(
            f"eni-{e:08x}", (_address(e + 10),), member_of, subnet_id="subnet-1", vpc_id="vpc-1"
        )
    enis = sorted(interfaces)
    externals = [f"198.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(max(n_edges // 50, 100))]
    s3 = ("52.0.0.0/16", "3.5.0.0/16")
    rows: list[tuple[object, ...]] = []
    seen: set[tuple[object, ...]] = set()
    while len(rows) < n_edges:
        eni = rng.choice(enis)
        local = interfaces[eni].addresses[0]
        kind = rng.random()
        port = rng.choice(SERVICE_PORTS)
        if kind < 0.45:
            remote = _address(rng.randrange(n_enis) + 10)
        elif kind < 0.55:
            remote = f"52.0.{rng.randrange(256)}.{rng.randrange(256)}"
        else:
            remote = rng.choice(externals)
        initiated = rng.random() < 0.6
        direction = "egress" if rng.random() < 0.8 else "ingress"
        local_port, remote_port = (0, port) if initiated else (port, 0)
        key = (eni, direction, local, remote, local_port, remote_port)
        if key in seen:
            continue
        seen.add(key)
        records = rng.randint(1, 500)
        syn = records if initiated == (direction == "egress") else 0
        bucketed_local = local_port == 0
        bucketed_remote = remote_port == 0
        rows.append(
            (
                eni, direction, "ACCEPT", 6, local, remote, local_port, remote_port, records, records * 3,
                records * 900, T0 + 60, T0 + 7 * 86400,
                40000 if bucketed_local else local_port, 40100 if bucketed_local else local_port,
                50 if bucketed_local else 1,
                40000 if bucketed_remote else remote_port, 40100 if bucketed_remote else remote_port,
                50 if bucketed_remote else 1,
                syn, records - syn, 0, 0, None,
            )
        )  # fmt: skip
    edges = pl.DataFrame(rows, schema=EDGE_SCHEMA, orient="row")
    coverage = pl.DataFrame(
        [(eni, WINDOW.start, WINDOW.end - 1, 1000, 0, 0, 0, None, None) for eni in enis],
        schema=COVERAGE_SCHEMA,
        orient="row",
    )
    # Delivered all along (as AWS writes NODATA for idle intervals): every ENI has evidence, so every
    # group is judged "ok" and synthesised, the work this benchmark is about.
    spans = pl.DataFrame(
        [(eni, WINDOW.start, WINDOW.end - 1) for eni in enis], schema=SPAN_SCHEMA, orient="row"
    )
    used = int(edges["records"].sum())
    inventory = Inventory(
        groups=groups,
        interfaces=interfaces,
        prefix_lists={"pl-s3": PrefixList("pl-s3", "com.amazonaws.eu-west-1.s3", "IPv4", "AWS", None, s3)},
        flow_logs=(FlowLogConfig("fl-1", "vpc-1", "ALL", None, "s3", None, None, T0 - 86400),),
        has_rule_ids=True,
    )
    return Estate(
        inventory,
        FlowEdges(edges, coverage, WINDOW, InputAccounting(records=used, used=used), "edges", spans=spans),
    )


HALF = T0 + 4 * 86400  # where a churning estate replaces its ENIs


def churned(estate: Estate, percent: int, seed: int = 11) -> Estate:
    """The estate with ``percent`` of its ENIs replaced at mid-window, as Auto Scaling and ECS do: each
    such ENI had a former one (same groups, another address) that lived until then and is gone now, with
    the ENI history (Config) saying so. The former ENI sends the first half of the flows the current one
    sent, and a third of the flows to the current one's address went to the former one's address before.
    Every flow-log record keeps its time inside its ENI's life, so coverage stays "ok": the analysis
    attributes every flow at its time (owners, groups then), the work this variant measures."""
    rng = random.Random(seed)
    inventory, flows = estate.inventory, estate.flows
    replaced = sorted(rng.sample(sorted(inventory.interfaces), len(inventory.interfaces) * percent // 100))
    former = {eni: f"eni-f{eni[4:]}" for eni in replaced}
    old_address = {eni: f"10.{200 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}" for i, eni in enumerate(replaced)}
    histories: dict[str, EniHistory] = {}
    for eni in replaced:
        itf = inventory.interfaces[eni]
        gone = former[eni]
        before = EniState(T0 - 86400, itf.group_ids, (old_address[eni],), "vpc-1", "subnet-1")
        histories[gone] = EniHistory(gone, T0 - 86400, HALF, (before,))
        histories[eni] = EniHistory(
            eni, HALF, None, (EniState(HALF, itf.group_ids, itf.addresses, "vpc-1", "subnet-1"),)
        )
    current_address = {inventory.interfaces[eni].addresses[0]: eni for eni in replaced}
    edges = flows.edges
    coin = pl.Series("_coin", [rng.random() for _ in range(edges.height)])
    source = pl.col("interface_id").is_in(replaced) & (coin < 0.5)
    target = (
        pl.col("remote_addr").is_in(list(current_address))
        & (coin >= 0.66)
        & ~pl.col("interface_id").is_in(replaced)
    )
    early = source | target
    edges = edges.with_columns(
        pl.when(source).then(pl.col("interface_id").replace(former)).otherwise(pl.col("interface_id"))
        .alias("interface_id"),
        pl.when(source).then(pl.col("interface_id").replace(old_address)).otherwise(pl.col("local_addr"))
        .alias("local_addr"),
        pl.when(target).then(pl.col("remote_addr").replace(current_address).replace(old_address))
        .otherwise(pl.col("remote_addr")).alias("remote_addr"),
        pl.when(early).then(pl.lit(T0 + 60))
        .when(pl.col("interface_id").is_in(replaced)).then(pl.lit(HALF + 60))
        .otherwise(pl.col("first_start")).alias("first_start"),
        pl.when(early).then(pl.lit(HALF - 60)).otherwise(pl.col("last_end")).alias("last_end"),
    )  # fmt: skip
    spans = pl.concat(
        [
            flows.spans.filter(~pl.col("interface_id").is_in(replaced)),
            pl.DataFrame([(former[e], WINDOW.start, HALF - 1) for e in replaced], SPAN_SCHEMA, orient="row"),
            pl.DataFrame([(e, HALF, WINDOW.end - 1) for e in replaced], SPAN_SCHEMA, orient="row"),
        ]
    )  # fmt: skip
    coverage = pl.concat(
        [
            flows.coverage,
            pl.DataFrame([(former[e], WINDOW.start, HALF - 1, 1000, 0, 0, 0, None, None) for e in replaced],
                         schema=COVERAGE_SCHEMA, orient="row"),
        ]
    )  # fmt: skip
    used = int(edges["records"].sum())
    return Estate(
        replace(inventory, history=EniHistories(histories)),
        replace(flows, edges=edges, coverage=coverage, spans=spans,
                accounting=InputAccounting(records=used, used=used)),
    )  # fmt: skip


def estate_path(n_enis: int, n_groups: int, n_edges: int, churn: int = 0) -> Path:
    variant = f"-churn{churn}" if churn else ""
    return DATA / f"analysis-{n_enis}-{n_groups}-{n_edges}{variant}-seed7.pickle"


def prepare(n_enis: int, n_groups: int, n_edges: int, churn: int = 0) -> None:
    """Generate the estate once and keep it (the generator's own memory stays out of the measurement)."""
    path = estate_path(n_enis, n_groups, n_edges, churn)
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        partial = path.with_suffix(".partial")
        estate = generate(n_enis, n_groups, n_edges)
        if churn:
            estate = churned(estate, churn)
        # Plain library objects only (not this script's Estate): readable from any module.
        partial.write_bytes(pickle.dumps((estate.inventory, estate.flows), protocol=5))
        partial.rename(path)


def load(n_enis: int, n_groups: int, n_edges: int, churn: int = 0) -> Estate:
    with estate_path(n_enis, n_groups, n_edges, churn).open("rb") as file:
        inventory, flows = pickle.load(file)
    return Estate(inventory, flows)


def measure(n_enis: int, n_groups: int, n_edges: int, churn: int = 0) -> dict[str, float]:
    estate = load(n_enis, n_groups, n_edges, churn)
    loaded_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    rec = build_recommendation(estate.flows, estate.inventory, AnalysisOptions())
    seconds = time.perf_counter() - start
    changes = sum(len(g.changes) for g in rec.security_groups)
    judged = sum(g.coverage.status == "ok" for g in rec.security_groups)
    return {
        "enis": n_enis,
        "groups": n_groups,
        "edges": n_edges,
        "churn": churn,
        "seconds": seconds,
        "edges_per_s": n_edges / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loaded_rss_mib": loaded_rss,
        "changes": changes,
        "ok_groups": judged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", nargs=4, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs=4, type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--churn", type=int, default=0, help="replace this percent of the ENIs at mid-window (ENI history)"
    )
    parser.add_argument("--sizes", type=int, default=len(SIZES), help="how many of the default sizes to run")
    parser.add_argument(
        "--edges", type=int, nargs="+", help="sizes by edges (ENIs = edges/200, groups = ENIs/5)"
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure each size N times (fresh processes): the median time"
    )
    args = parser.parse_args()
    if args.prepare:
        prepare(*args.prepare)
        return
    if args.one:
        print(json.dumps(measure(*args.one)))
        return
    chosen = [(n // 200, n // 1000, n) for n in args.edges] if args.edges else SIZES[: args.sizes]
    sizes = [(*size, args.churn) for size in chosen]
    results = []
    for size in sizes:
        subprocess.run([sys.executable, __file__, "--prepare", *map(str, size)], check=True)
        runs = []
        for _ in range(args.repeat):
            argv = [sys.executable, __file__, "--one", *map(str, size)]
            out = subprocess.run(argv, check=True, capture_output=True, text=True)
            runs.append(json.loads(out.stdout))
            print(json.dumps(runs[-1]), file=sys.stderr)
        # The median run by time; its spread is reported beside it (this machine is shared).
        runs.sort(key=lambda r: r["seconds"])
        median = dict(runs[len(runs) // 2])
        median["seconds_min"], median["seconds_max"] = runs[0]["seconds"], runs[-1]["seconds"]
        median["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
        results.append(median)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print("| ENIs | groups | edges | analysis s (min-max) | edges/s | peak RSS MiB | RSS loaded MiB "
          "| changes | ok |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        spread = f" ({r['seconds_min']:.1f}-{r['seconds_max']:.1f})" if args.repeat > 1 else ""
        print(f"| {r['enis']:,} | {r['groups']:,} | {r['edges']:,} | {r['seconds']:.1f}{spread} | "
              f"{r['edges_per_s']:,.0f} | {r['peak_rss_mib']:,.0f} | {r['loaded_rss_mib']:,.0f} | "
              f"{r['changes']:,} | {r['ok_groups']:,} |")  # fmt: skip
    if len(results) >= 2:
        xs = [math.log(r["edges"]) for r in results]
        ys = [math.log(r["seconds"]) for r in results]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mean_x) ** 2 for x in xs
        )
        print(f"\nfitted exponent: time ~ edges^{slope:.2f} (target < 1.1)")


if __name__ == "__main__":
    main()
