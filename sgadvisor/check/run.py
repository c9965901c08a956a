"""``sgadvisor check`` end to end: read the baseline, the current state and (unless ``--no-flows``) the
flows exactly as ``recommend`` reads them, find the drift, render the outputs, write them all or none.

The baseline is read first: it is the cheapest input and the likeliest to be wrong, and a bad baseline
must stop the run (exit 2) before any AWS call or output file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sgadvisor.check.baseline import load_baseline
from sgadvisor.check.findings import Policy, check_drift
from sgadvisor.check.junit import render_junit
from sgadvisor.check.markdown import render_markdown
from sgadvisor.check.model import CheckReport
from sgadvisor.check.sarif import render_sarif
from sgadvisor.flowlogs.edges import FlowEdges
from sgadvisor.inventory.model import Inventory
from sgadvisor.outputs import write_files
from sgadvisor.pipeline import RecommendInputs, load_inputs, load_inventory


@dataclass(frozen=True)
class CheckRequest:
    inputs: RecommendInputs
    baseline: Path
    no_flows: bool = False
    policy: Policy = field(default_factory=Policy)


@dataclass(frozen=True)
class CheckOutputs:
    sarif: Path | None = None
    junit: Path | None = None
    markdown: Path | None = None


def run_check(request: CheckRequest) -> CheckReport:
    baseline = load_baseline(request.baseline)
    inventory, flows = _load_state(request.inputs, no_flows=request.no_flows)
    report = check_drift(baseline, inventory, flows, request.inputs.analysis, request.policy)
    notes = list(inventory.warnings) + (_flow_notes(flows) if flows is not None else [])
    if notes:
        report = report.model_copy(update={"warnings": sorted(set(report.warnings) | set(notes))})
    return report


def _load_state(inputs: RecommendInputs, *, no_flows: bool) -> tuple[Inventory, FlowEdges | None]:
    if not no_flows:
        loaded = load_inputs(inputs)
        return loaded.inventory, loaded.flows
    # The same checks as recommend: no groups, no ENIs or an empty scope is exit 2, never "no drift".
    return load_inventory(inputs), None


def _flow_notes(flows: FlowEdges) -> list[str]:
    notes = list(flows.warnings)
    if flows.accounting.malformed:
        notes.append(f"{flows.accounting.malformed} malformed flow-log records skipped")
    return notes


def render_outputs(report: CheckReport, outputs: CheckOutputs) -> dict[Path, str]:
    """Every requested file's text, rendered before anything is written."""
    files: dict[Path, str] = {}
    if outputs.sarif is not None:
        files[outputs.sarif] = render_sarif(report)
    if outputs.junit is not None:
        files[outputs.junit] = render_junit(report)
    if outputs.markdown is not None:
        files[outputs.markdown] = render_markdown(report)
    return files


def write_all(files: Mapping[Path, str]) -> None:
    """All or nothing (a failure while writing leaves no output behind and is an exit-2 error, never
    mistaken for drift)."""
    write_files(files)
