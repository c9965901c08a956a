"""Scale of the analysis (flow edges + inventory → recommendation) on generated estates.

Three sizes up to 5,000 ENIs, 1,000 security groups and 1,000,000 distinct edges; each size runs in a
fresh process (peak RSS per size). Prints a Markdown table and the exponent of time ~ edges^k fitted over
the sizes (target k < 1.2). Run: ``python bench/bench_analysis.py`` (about a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

import polars as pl

from sgadvisor.accounting import InputAccounting
from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.flowlogs.edges import COVERAGE_SCHEMA, EDGE_SCHEMA, FlowEdges, Window
from sgadvisor.inventory.model import FlowLogConfig, Interface, Inventory, PrefixList, SecurityGroup, SgRule
from sgadvisor.rules import DestKind

T0 = 1_793_491_200
WINDOW = Window(T0, T0 + 8 * 86400)
SIZES = [(500, 100, 100_000), (1_500, 300, 300_000), (5_000, 1_000, 1_000_000)]
SERVICE_PORTS = [22, 53, 80, 443, 3306, 5432, 6379, 8080, 8443, 9100, 50051]


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
    used = int(edges["records"].sum())
    inventory = Inventory(
        groups=groups,
        interfaces=interfaces,
        prefix_lists={"pl-s3": PrefixList("pl-s3", "com.amazonaws.eu-west-1.s3", "IPv4", "AWS", None, s3)},
        flow_logs=(FlowLogConfig("fl-1", "vpc-1", "ALL", None, "s3", None, None, T0 - 86400),),
        has_rule_ids=True,
    )
    return Estate(
        inventory, FlowEdges(edges, coverage, WINDOW, InputAccounting(records=used, used=used), "edges")
    )


def measure(n_enis: int, n_groups: int, n_edges: int) -> dict[str, float]:
    estate = generate(n_enis, n_groups, n_edges)
    start = time.perf_counter()
    rec = build_recommendation(estate.flows, estate.inventory, AnalysisOptions())
    seconds = time.perf_counter() - start
    changes = sum(len(g.changes) for g in rec.security_groups)
    return {
        "enis": n_enis,
        "groups": n_groups,
        "edges": n_edges,
        "seconds": seconds,
        "edges_per_s": n_edges / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "changes": changes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, default=len(SIZES), help="how many of the sizes to run")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one)))
        return
    results = []
    for size in SIZES[: args.sizes]:
        out = subprocess.run(
            [sys.executable, __file__, "--one", *map(str, size)], check=True, capture_output=True, text=True
        )
        results.append(json.loads(out.stdout))
    print("| ENIs | groups | edges | analysis s | edges/s | peak RSS MiB | changes |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['enis']:,} | {r['groups']:,} | {r['edges']:,} | {r['seconds']:.1f} | "
              f"{r['edges_per_s']:,.0f} | {r['peak_rss_mib']:,.0f} | {r['changes']:,} |")  # fmt: skip
    if len(results) >= 2:
        xs = [math.log(r["edges"]) for r in results]
        ys = [math.log(r["seconds"]) for r in results]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mean_x) ** 2 for x in xs
        )
        print(f"\nfitted exponent: time ~ edges^{slope:.2f} (target < 1.2)")


if __name__ == "__main__":
    main()
