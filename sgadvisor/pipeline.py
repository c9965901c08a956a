"""The main job end to end: read inputs, analyse, write outputs. Called by the CLI, usable as a library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
from sgadvisor.errors import UsageError
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from sgadvisor.inventory.model import Inventory
from sgadvisor.inventory.snapshot import load_snapshot
from sgadvisor.models import Recommendation
from sgadvisor.outputs import write_text_atomic


class OutputFormat(StrEnum):
    JSON = "json"
    TERRAFORM = "terraform"
    HTML = "html"
    MARKDOWN = "markdown"


AVAILABLE_FORMATS = (OutputFormat.JSON,)
FILE_NAMES = {OutputFormat.JSON: "recommendation.json"}


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


def check_formats(formats: Sequence[OutputFormat]) -> None:
    unavailable = [f.value for f in formats if f not in AVAILABLE_FORMATS]
    if unavailable:
        raise UsageError(
            f"--format {', '.join(unavailable)}: not available in this version",
            hint=f"available: {', '.join(f.value for f in AVAILABLE_FORMATS)}",
        )


def write_outputs(
    recommendation: Recommendation, out_dir: Path, formats: Sequence[OutputFormat]
) -> list[Path]:
    """Write every requested format into ``out_dir``; each file appears whole or not at all."""
    written = []
    for fmt in formats:
        path = out_dir / FILE_NAMES[fmt]
        write_text_atomic(path, recommendation.to_json())
        written.append(path)
    return written
