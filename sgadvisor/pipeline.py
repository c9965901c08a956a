"""The main job end to end: read inputs, analyse, write outputs. Called by the CLI, usable as a library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.errors import InputError, UsageError
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from sgadvisor.inventory.model import Inventory
from sgadvisor.inventory.snapshot import load_snapshot
from sgadvisor.models import Recommendation
from sgadvisor.outputs import write_text_atomic
from sgadvisor.render import OutputFormat, RenderContext, render_all

__all__ = [
    "OutputFormat",
    "RecommendInputs",
    "load_inputs",
    "load_recommendation",
    "recommend",
    "write_outputs",
]


@dataclass(frozen=True)
class RecommendInputs:
    flows: tuple[Path, ...]
    inventory: tuple[Path, ...]
    ingest: IngestOptions
    analysis: AnalysisOptions


def load_inputs(inputs: RecommendInputs) -> tuple[FlowEdges, Inventory]:
    """Inventory first: its ENI addresses decide the direction of records without flow-direction."""
    if not inputs.flows or not inputs.inventory:
        missing = "--flows" if not inputs.flows else "--inventory"
        raise UsageError(
            f"{missing} is required: reading from AWS (CloudWatch Logs Insights, the EC2 API) is not "
            "available in this version",
            hint="e.g. sgadvisor recommend --flows sample_data/flows --inventory sample_data/inventory "
            "--out out",
        )
    inventory = load_snapshot(list(inputs.inventory))
    flows = read_flows(list(inputs.flows), inputs.ingest, addresses=inventory.addresses)
    return flows, inventory


def recommend(inputs: RecommendInputs) -> Recommendation:
    flows, inventory = load_inputs(inputs)
    return build_recommendation(flows, inventory, inputs.analysis)


def write_outputs(
    recommendation: Recommendation,
    out_dir: Path,
    formats: Sequence[OutputFormat],
    context: RenderContext | None = None,
) -> tuple[list[Path], tuple[str, ...]]:
    """Render every requested format, then write the files; each appears whole or not at all, and none
    is written when any renderer fails. Returns the paths written and the renderers' warnings."""
    rendered = render_all(recommendation, formats, context)
    written = []
    for name, text in rendered.files.items():
        path = out_dir / name
        write_text_atomic(path, text, executable=name in rendered.executable)
        written.append(path)
    return written, rendered.warnings


def load_recommendation(path: Path) -> Recommendation:
    """A recommendation.json read back for ``render``/``check``; a wrong shape names the key at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    try:
        return Recommendation.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise InputError(
            f"{path} is not a sgadvisor recommendation.json: {problems}{more}",
            hint="pass the recommendation.json written by `sgadvisor recommend --out DIR`",
        ) from exc
