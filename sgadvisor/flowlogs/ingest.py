"""Read flow-log files and flow-edge files into one FlowEdges: the offline flow source."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sgadvisor.accounting import Ledger
from sgadvisor.errors import MissingFlowDataError, TooManyMalformedError
from sgadvisor.flowlogs.edgefile import read_edge_file
from sgadvisor.flowlogs.edges import (
    COMPACT_ROWS,
    DEFAULT_BUCKET,
    EdgeAggregator,
    FlowEdges,
    PortRange,
    Window,
)
from sgadvisor.flowlogs.fastpath import scan_clean_text
from sgadvisor.flowlogs.files import (
    BLOCK_BYTES,
    FlowFile,
    ReadOptions,
    RecordBlock,
    discover_flow_files,
    is_edge_file,
    read_flow_file,
    sniff_text_layout,
)
from sgadvisor.flowlogs.parse import note_millis

DEFAULT_MAX_MALFORMED = 0.01


@dataclass(frozen=True, slots=True)
class IngestOptions:
    log_format: tuple[str, ...] | None = None
    log_stream: str | None = None
    bucket: PortRange = DEFAULT_BUCKET
    window: Window | None = None
    max_malformed: float = DEFAULT_MAX_MALFORMED
    allow_missing: bool = False  # unreadable parts of the input are listed, not fatal (ENIs go partial)


def read_flows(
    paths: Sequence[Path],
    options: IngestOptions | None = None,
    addresses: Mapping[str, Collection[str]] | None = None,
    *,
    block_bytes: int = BLOCK_BYTES,
    compact_rows: int = COMPACT_ROWS,
    fast: bool = True,
) -> FlowEdges:
    """Read every flow file under ``paths`` into edges, coverage and accounting.

    Raises InputError for a missing or non-regular input named on the command line,
    MissingFlowDataError when part of the input cannot be read (unless ``allow_missing``: then it stays
    listed), and TooManyMalformedError when malformed records exceed ``max_malformed`` of all records read
    (nothing is written in either case).
    """
    options = options or IngestOptions()
    ledger = Ledger()
    aggregator = EdgeAggregator(
        ledger=ledger, bucket=options.bucket, window=options.window, compact_rows=compact_rows
    )
    read_options = ReadOptions(log_format=options.log_format, log_stream=options.log_stream)
    edge_windows: list[Window] = []
    record_files = 0
    for flow_file in discover_flow_files(paths, ledger):
        if is_edge_file(flow_file.path):
            edges, coverage, spans, window = read_edge_file(flow_file.path, ledger)
            aggregator.add_edges(edges, coverage, spans)
            if window is not None:
                edge_windows.append(window)
            continue
        record_files += 1
        if fast and _read_fast(flow_file, read_options, aggregator):
            continue
        for block in read_flow_file(flow_file, read_options, ledger, block_bytes=block_bytes):
            aggregator.add_records(block)
    aggregator.source = "files" if record_files or not edge_windows else "edges"
    flows = aggregator.finish(addresses)
    if options.window is None and edge_windows:
        windows = [*edge_windows, *([flows.window] if flows.window else [])]
        flows = replace(flows, window=Window(min(w.start for w in windows), max(w.end for w in windows)))
    _check_missing(ledger, options)
    accounting = flows.accounting
    if accounting.records and accounting.malformed_fraction > options.max_malformed:
        raise TooManyMalformedError(
            f"{accounting.malformed} of {accounting.records} records are malformed "
            f"({accounting.malformed_fraction:.1%}, above --max-malformed {options.max_malformed:g})",
            hint="check --log-format and the places listed above, or raise --max-malformed to accept it",
            issues=accounting.issues,
        )
    return flows


def _read_fast(flow_file: FlowFile, options: ReadOptions, aggregator: EdgeAggregator) -> bool:
    """Clean text files go through one streaming pass of the engine; False sends the file to the
    careful path (which locates every bad line), with nothing counted twice."""
    layout = sniff_text_layout(flow_file, options)
    if layout is None:
        return False
    # the engine inflates gzip itself (sniffed: no bomb)
    if not scan_clean_text(
        flow_file.path, layout.fields, layout.header_lines, aggregator, millis=layout.millis
    ):
        return False
    if layout.millis:
        note_millis(aggregator.ledger, str(flow_file.path))
    return True


def _check_missing(ledger: Ledger, options: IngestOptions) -> None:
    """Unreadable parts of the input are data known to be missing: fatal unless ``allow_missing``."""
    if not ledger.unreadable or options.allow_missing:
        return
    count = len(ledger.unreadable)
    shown = "; ".join(f"{i.file}: {i.reason}" for i in ledger.unreadable[:_MISSING_SHOWN])
    more = f"; and {count - _MISSING_SHOWN} more" if count > _MISSING_SHOWN else ""
    raise MissingFlowDataError(
        f"{count} input path{'s' if count != 1 else ''} could not be read: {shown}{more}",
        hint="data is known to be missing: fix the paths, or pass --allow-missing to analyse the rest "
        "(the ENIs those files could hold become partial)",
        issues=ledger.unreadable,
    )


_MISSING_SHOWN = 3


def read_records(
    paths: Sequence[Path], ledger: Ledger, options: IngestOptions | None = None
) -> Iterator[RecordBlock]:
    """Typed flow-log records, block by block, for consumers that need records rather than edges
    (the offline query executor, parser conformance tests). Flow-edge files carry no records: skipped."""
    options = options or IngestOptions()
    read_options = ReadOptions(log_format=options.log_format, log_stream=options.log_stream)
    for flow_file in discover_flow_files(paths, ledger):
        if is_edge_file(flow_file.path):
            ledger.skip_file(str(flow_file.path), "skipped, a flow-edge file holds no records")
            continue
        yield from read_flow_file(flow_file, read_options, ledger)
    _check_missing(ledger, options)
