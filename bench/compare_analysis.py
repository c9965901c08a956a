"""Byte-for-byte comparison of the analysis against an earlier commit, on generated estates.

A change made for speed must not change a single output byte (issue 19). This script checks it the way
it was checked: the same inputs, analysed by this working tree and by ``--base`` (checked out into a
temporary git worktree), each in its own process with its own ``sgadvisor`` first on the path, and the
``recommendation.json`` texts compared.

The inputs, generated once and pickled so both sides read the very same objects:

- ``--examples`` estates of the invariant suite's generator (``tests/estates.py``: several groups and
  ENIs, SG references, prefix lists, former members with history, gone groups), each analysed with the
  default options and with a CIDR tolerance and rule budget;
- a third as many internet estates of ``tests/test_internet_destinations.py`` (rotating and stable DNS
  names), each under every ``--internet`` policy, with and without DNS logs;
- the benchmark estates of ``bench_analysis.py`` named by ``--bench`` (edges; 100000 by default).

Run: ``python bench/compare_analysis.py --base <commit>`` (≈3 minutes on 2 cores with the defaults).
Exit status 1 when any output differs (the first differing files are listed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def generate(path: Path, examples: int) -> None:
    """Draw the estates (deterministically: derandomized hypothesis) and pickle them."""
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.estates import scenarios
    from tests.test_internet_destinations import estates

    drawn: dict[str, list[object]] = {"scenarios": [], "internet": []}

    def quiet(examples: int) -> settings:
        return settings(
            max_examples=examples, derandomize=True, database=None, phases=[Phase.generate],
            suppress_health_check=list(HealthCheck), deadline=None,
        )  # fmt: skip

    @quiet(examples)
    @given(scenarios())
    def draw_scenario(scenario: object) -> None:
        drawn["scenarios"].append((scenario.inventory, scenario.flows))  # type: ignore[attr-defined]

    @quiet(max(examples // 3, 1))
    @given(estates())
    def draw_internet(estate: object) -> None:
        drawn["internet"].append(estate)

    draw_scenario()
    draw_internet()
    path.write_bytes(pickle.dumps(drawn, protocol=5))


def analyse(inputs: Path, bench: list[int], out: Path) -> None:
    """Analyse every input with the ``sgadvisor`` first on the path; one digest per output."""
    from sgadvisor.analysis.internet import InternetPolicy
    from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
    from tests.test_internet_destinations import _run

    drawn = pickle.loads(inputs.read_bytes())
    digests: dict[str, str] = {}

    def keep(name: str, text: str) -> None:
        digests[name] = hashlib.sha256(text.encode()).hexdigest()

    options = [AnalysisOptions(), AnalysisOptions(cidr_tolerance=8, rule_budget=2)]
    for i, (inventory, flows) in enumerate(drawn["scenarios"]):
        for j, option in enumerate(options):
            keep(f"estate-{i:04d}-options-{j}", build_recommendation(flows, inventory, option).to_json())
    for i, estate in enumerate(drawn["internet"]):
        for policy in InternetPolicy:
            for dns in (False, True):
                with tempfile.TemporaryDirectory() as scratch:
                    root = Path(scratch)
                    text = _run(root, estate, policy, dns).to_json().replace(str(root), "<tmp>")
                keep(f"internet-{i:03d}-{policy.value}-dns-{int(dns)}", text)
    sys.path.insert(0, str(REPO / "bench"))
    from bench_analysis import estate_path, load, prepare

    for edges in bench:
        size = (edges // 200, edges // 1000, edges)
        if not estate_path(*size).exists():
            prepare(*size)
        estate = load(*size)
        keep(
            f"bench-{edges}",
            build_recommendation(estate.flows, estate.inventory, AnalysisOptions()).to_json(),
        )
    out.write_text(json.dumps(digests, indent=1))


def _side(tree: Path, step: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, str(Path(__file__).resolve()), *step], check=True, env=env, cwd=tree)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", help="the commit to compare with (e.g. the one before the change)")
    parser.add_argument("--examples", type=int, default=300, help="estates drawn from tests/estates.py")
    parser.add_argument(
        "--bench", type=int, nargs="*", default=[100_000], help="bench_analysis sizes (edges)"
    )
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--analyse", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.generate, args.examples)
        return
    if args.analyse:
        analyse(args.analyse[0], args.bench, args.analyse[1])
        return
    if not args.base:
        parser.error("--base is required")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        base_tree = work / "base"
        git = ["git", "-C", str(REPO), "worktree"]
        subprocess.run([*git, "add", "-q", "--detach", str(base_tree), args.base], check=True)
        try:
            inputs = work / "inputs.pickle"
            _side(REPO, ["--generate", str(inputs), "--examples", str(args.examples)])
            sizes = [str(n) for n in args.bench]
            for name, tree in (("base", base_tree), ("head", REPO)):
                _side(tree, ["--analyse", str(inputs), str(work / f"{name}.json"), "--bench", *sizes])
        finally:
            subprocess.run([*git, "remove", "--force", str(base_tree)], check=True)
        base = json.loads((work / "base.json").read_text())
        head = json.loads((work / "head.json").read_text())
    differ = sorted(name for name in base if head.get(name) != base[name])
    print(
        f"{len(base)} outputs compared with {args.base}: "
        f"{len(base) - len(differ)} identical, {len(differ)} differ"
    )
    for name in differ[:20]:
        print(f"  differs: {name}")
    sys.exit(1 if differ or set(base) != set(head) else 0)


if __name__ == "__main__":
    main()
