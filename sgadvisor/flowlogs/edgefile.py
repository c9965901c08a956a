"""Flow-edge files: JSON Lines with ``"kind": "window" | "coverage" | "edge"`` (DESIGN §4.2).

``sgadvisor collect --flows-out`` and ``sgadvisor edges`` write them; ``--flows`` reads them back, so a
large flow-log dump can be reduced once and analysed offline many times with identical results.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from sgadvisor.accounting import Ledger
from sgadvisor.flowlogs.edges import COVERAGE_SCHEMA, EDGE_SCHEMA, PLACEMENT_COLUMNS, FlowEdges, Window
from sgadvisor.flowlogs.spans import SPAN_SCHEMA, spans_by_interface
from sgadvisor.jsonload import load_json_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _fits_int64(cls, value: object) -> object:
        """Every integer goes into an Int64 column: a bigger one is a malformed line, not a crash."""
        items = value if isinstance(value, list | tuple) else (value,)
        for item in items:
            if isinstance(item, list | tuple):
                cls._fits_int64(item)
            elif isinstance(item, int) and not -(2**63) <= item < 2**63:
                raise ValueError("integer out of the 64-bit range")
        return value


class WindowLine(_Strict):
    kind: Literal["window"]
    start: int
    end: int


class UnreadableLine(_Strict):
    """A part of the input that could not be read when the file was made (``edges --allow-missing``):
    data known to be missing travels with the edges, so a later analysis still judges its ENIs partial."""

    kind: Literal["unreadable"]
    path: str


class CoverageLine(_Strict):
    kind: Literal["coverage"]
    interface_id: str
    first_start: int | None
    last_end: int | None
    records: int
    nodata: int
    skipdata: int
    skipdata_seconds: int
    # When the interface's records were delivered ([start, end] pairs, flowlogs/spans.py). Files written
    # before spans existed lack it: their coverage proves nothing (read with a warning).
    spans: list[tuple[int, int]] | None = None
    # Where the interface was (COVERAGE_SCHEMA): written only when known; older files lack them (null).
    subnet_id: str | None = None
    flow_logs: str | None = None


class EdgeLine(_Strict):
    kind: Literal["edge"]
    interface_id: str
    direction: Literal["egress", "ingress"]
    action: Literal["ACCEPT", "REJECT"]
    protocol: int
    local_addr: str
    remote_addr: str
    local_port: int
    remote_port: int
    records: int
    packets: int | None
    bytes: int | None
    first_start: int | None
    last_end: int | None
    local_port_min: int
    local_port_max: int
    local_port_distinct: int
    remote_port_min: int
    remote_port_max: int
    remote_port_distinct: int
    syn_records: int | None
    synack_records: int | None
    fin_records: int | None
    zero_flag_records: int | None
    aws_service: str | None


def iter_edge_lines(flows: FlowEdges) -> Iterator[str]:
    """The file's lines in a stable order: window, unreadable inputs, coverage by interface, edges by key."""
    if flows.window is not None:
        yield _dump({"kind": "window", "start": flows.window.start, "end": flows.window.end})
    for path in flows.unreadable:
        yield _dump({"kind": "unreadable", "path": path})
    spans = spans_by_interface(flows.spans)
    for row in flows.coverage.iter_rows(named=True):
        known = {k: v for k, v in row.items() if v is not None or k not in PLACEMENT_COLUMNS}
        yield _dump({"kind": "coverage", **known, "spans": spans.get(row["interface_id"], [])})
    for row in flows.edges.iter_rows(named=True):
        yield _dump({"kind": "edge", **row})


def _dump(obj: dict[str, object]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def write_edge_lines(flows: FlowEdges, out: IO[str]) -> None:
    for line in iter_edge_lines(flows):
        out.write(line + "\n")


def read_edge_file(
    path: Path, ledger: Ledger
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, Window | None]:
    """Read a flow-edge file: edges, coverage, spans, window. Bad lines are counted as malformed with
    their line number."""
    name = str(path)
    edges: list[dict[str, object]] = []
    coverage: list[dict[str, object]] = []
    spans: list[tuple[str, int, int]] = []
    spanless: list[str] = []
    window: Window | None = None
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = load_json_text(raw, source=name, first_line=number)
                kind = obj.get("kind") if isinstance(obj, dict) else None
                if kind == "edge":
                    edges.append(EdgeLine.model_validate(obj).model_dump(exclude={"kind"}))
                elif kind == "coverage":
                    covered = CoverageLine.model_validate(obj)
                    coverage.append(covered.model_dump(exclude={"kind", "spans"}))
                    if covered.spans is None:
                        spanless.append(covered.interface_id)
                    spans += [(covered.interface_id, start, end) for start, end in covered.spans or ()]
                elif kind == "window":
                    line = WindowLine.model_validate(obj)
                    window = Window(line.start, line.end)
                elif kind == "unreadable":
                    lost = UnreadableLine.model_validate(obj)
                    ledger.note_unreadable(lost.path, f"could not be read when {name} was made")
                else:
                    ledger.add_malformed(name, number, f"unknown kind {kind!r}")
            except json.JSONDecodeError as exc:
                ledger.add_malformed(name, number, f"invalid JSON: {exc.msg}")
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                ledger.add_malformed(name, number, f"{where}: {first['msg']}")
    edge_frame = pl.DataFrame(edges, schema=EDGE_SCHEMA) if edges else pl.DataFrame(schema=EDGE_SCHEMA)
    cov_frame = (
        pl.DataFrame(coverage, schema=COVERAGE_SCHEMA) if coverage else pl.DataFrame(schema=COVERAGE_SCHEMA)
    )
    if spanless:
        # Silence is not evidence: first and last record alone do not show that everything between arrived.
        ledger.warnings.append(
            f"{name}: the coverage of {len(spanless)} interfaces has no spans (written by an older "
            "sgadvisor), so it proves nothing and their groups cannot be judged; write the file again "
            "with `sgadvisor edges` or `sgadvisor collect --flows-out`"
        )
    span_frame = pl.DataFrame(spans, schema=SPAN_SCHEMA, orient="row")
    return edge_frame, cov_frame, span_frame, window
