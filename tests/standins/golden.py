"""The expected outputs of the main job on sample_data/, kept in sample_data/expected/.

``python -m tests.standins.golden`` (from the repository root) regenerates them after an intended
change to the analysis or a renderer; tests/test_golden.py fails when they drift, so every change to what
users see shows up in review as a diff of these files.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from sgadvisor.analysis.internet import InternetOptions, InternetPolicy
from sgadvisor.analysis.recommend import AnalysisOptions
from sgadvisor.flowlogs.ingest import IngestOptions
from sgadvisor.pipeline import RecommendInputs, recommend
from sgadvisor.render import OutputFormat, render_all

SAMPLE = Path("sample_data")
EXPECTED = SAMPLE / "expected"


def expected_outputs(repo: Path) -> dict[str, str]:
    """Every output file of ``recommend`` on the sample, by name (paths relative to the repository, so
    that file names in the outputs do not depend on where the checkout lives)."""
    previous = Path.cwd()
    os.chdir(repo)
    try:
        # The README's main job: flows, inventory (with its ENI history) and the Resolver query logs.
        recommendation = recommend(
            RecommendInputs(
                flows=(SAMPLE / "flows",),
                inventory=(SAMPLE / "inventory",),
                ingest=IngestOptions(),
                analysis=AnalysisOptions(internet=InternetOptions(policy=InternetPolicy.auto)),
                dns_logs=(SAMPLE / "dns",),
            )
        )
    finally:
        os.chdir(previous)
    return dict(render_all(recommendation, list(OutputFormat)).files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.standins.golden", description="Rewrite sample_data/expected/."
    )
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="repository root (default: here)")
    args = parser.parse_args(argv)
    target = args.repo / EXPECTED
    target.mkdir(parents=True, exist_ok=True)
    outputs = expected_outputs(args.repo)
    for stale in target.iterdir():
        if stale.name not in outputs:
            stale.unlink()
    for name, text in sorted(outputs.items()):
        (target / name).write_text(text, encoding="utf-8")
        print(target / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
