"""Read flow-log files and flow-edge files into one FlowEdges: the offline flow source."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sgadvisor.accounting import InputAccounting, Ledger
from sgadvisor.errors import MissingFlowDataError, TooManyMalformedError
from sgadvisor.flowlogs.edgefile import read_edge_file
from sgadvisor.flowlogs.edges import (
    COMPACT_ROWS,
    DEFAULT_BUCKET,
    INCOMPLETE,
    NO_INTERFACE,
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
    flow_log_of_file,
    is_edge_file,
    read_flow_file,
    sniff_text_layout,
)
from sgadvisor.flowlogs.parse import note_millis

DEFAULT_MAX_MALFORMED = 0.01
# Filter reasons that mean the format assumed for the records does not fit them (a custom format read as
# the default one, a field order that is not the file's): no delivered record of a network interface lacks
# its interface id, and an OK record always has addresses, protocol and action. They count toward
# --max-malformed with the malformed ones. "direction unknown" does not: it is an inference left open by
# well-formed records (no flow-direction, no inventory addresses, ambiguous data), nor are the window,
# the scope or transit-gateway records, which are the user's choices or a legitimate kind of record.
UNFIT_REASONS: tuple[str, ...] = (NO_INTERFACE, INCOMPLETE)


@dataclass(frozen=True, slots=True)
class ReadProgress:
    """Where reading stands, for a progress display: reported per file and per block, never per record.
    ``phase`` is ``reading`` (files), ``edges`` (the final aggregation) or ``done``."""

    phase: str
    files_done: int
    files_total: int
    records: int
    seconds: float


ProgressCallback = Callable[[ReadProgress], None]


@dataclass(frozen=True, slots=True)
class IngestOptions:
    log_format: tuple[str, ...] | None = None
    log_stream: str | None = None
    bucket: PortRange = DEFAULT_BUCKET
    window: Window | None = None
    max_malformed: float = DEFAULT_MAX_MALFORMED
    allow_missing: bool = False  # unreadable parts of the input are listed, not fatal (ENIs go partial)
    # Told per file and per block how reading goes (the CLI's progress line on a terminal).
    progress: ProgressCallback | None = field(default=None, compare=False, repr=False)


class _Progress:
    """Calls a progress callback (if any) with the counts so far."""

    def __init__(self, callback: ProgressCallback | None, total: int, ledger: Ledger) -> None:
        self.callback = callback
        self.total = total
        self.ledger = ledger
        self.began = time.monotonic()
        self.done = 0

    def __call__(self, phase: str = "reading") -> None:
        if self.callback is not None:
            seconds = time.monotonic() - self.began
            self.callback(ReadProgress(phase, self.done, self.total, self.ledger.records, seconds))


def read_flows(
    paths: Sequence[Path],
    options: IngestOptions | None = None,
    addresses: Mapping[str, Collection[str]] | None = None,
    *,
    block_bytes: int = BLOCK_BYTES,
    compact_rows: int = COMPACT_ROWS,
    fast: bool = True,
    progress: ProgressCallback | None = None,
) -> FlowEdges:
    """Read every flow file under ``paths`` into edges, coverage and accounting.

    Raises InputError for a missing or non-regular input named on the command line,
    MissingFlowDataError when part of the input cannot be read (unless ``allow_missing``: then it stays
    listed), and TooManyMalformedError when malformed records (with those the assumed format does not fit,
    :data:`UNFIT_REASONS`) exceed ``max_malformed`` of all records read (nothing is written in either case).
    ``progress`` (else ``options.progress``) is called per file and per block, never per record.
    """
    options = options or IngestOptions()
    ledger = Ledger()
    aggregator = EdgeAggregator(
        ledger=ledger, bucket=options.bucket, window=options.window, compact_rows=compact_rows
    )
    read_options = ReadOptions(log_format=options.log_format, log_stream=options.log_stream)
    edge_windows: list[Window] = []
    record_files = 0
    files = discover_flow_files(paths, ledger)
    report = _Progress(progress or options.progress, len(files), ledger)
    report()
    for flow_file in files:
        if is_edge_file(flow_file.path):
            edges, coverage, spans, window = read_edge_file(flow_file.path, ledger)
            aggregator.add_edges(edges, coverage, spans)
            if window is not None:
                edge_windows.append(window)
        else:
            record_files += 1
            if not (fast and _read_fast(flow_file, read_options, aggregator)):
                flow_logs = flow_log_of_file(flow_file.path)
                for block in read_flow_file(flow_file, read_options, ledger, block_bytes=block_bytes):
                    aggregator.add_records(block, flow_logs)
                    report()
        report.done += 1
        report()
    report("edges")
    aggregator.source = "files" if record_files or not edge_windows else "edges"
    flows = aggregator.finish(addresses)
    if options.window is None and edge_windows:
        windows = [*edge_windows, *([flows.window] if flows.window else [])]
        flows = replace(flows, window=Window(min(w.start for w in windows), max(w.end for w in windows)))
    _check_missing(ledger, options)
    check_malformed(flows.accounting, options.max_malformed)
    report("done")
    return flows


def unfit_records(accounting: InputAccounting) -> int:
    """Records set aside because the assumed format does not fit them (:data:`UNFIT_REASONS`)."""
    return sum(accounting.filtered.get(reason, 0) for reason in UNFIT_REASONS)


def check_malformed(accounting: InputAccounting, max_malformed: float) -> None:
    """TooManyMalformedError when malformed records, together with those the assumed format does not fit,
    are more than ``max_malformed`` of all records read. Every flow source applies it (files, Insights,
    the offline query)."""
    unfit = unfit_records(accounting)
    bad = accounting.malformed + unfit
    if not accounting.records or bad / accounting.records <= max_malformed:
        return
    fraction = bad / accounting.records
    if not unfit:
        what = f"{accounting.malformed} of {accounting.records} records are malformed"
    else:
        parts = [f"{accounting.malformed} malformed"] if accounting.malformed else []
        parts += [
            f"{accounting.filtered[reason]} {reason}"
            for reason in UNFIT_REASONS
            if accounting.filtered.get(reason)
        ]
        what = (
            f"{bad} of {accounting.records} records are malformed or do not fit the assumed format "
            f"({', '.join(parts)})"
        )
    raise TooManyMalformedError(
        f"{what} ({fraction:.1%}, above --max-malformed {max_malformed:g})",
        hint="check --log-format (or the log group's format in DescribeFlowLogs) and the places listed "
        "above, or raise --max-malformed to accept it",
        issues=accounting.issues,
    )


def _read_fast(flow_file: FlowFile, options: ReadOptions, aggregator: EdgeAggregator) -> bool:
    """Clean text files go through one streaming pass of the engine; False sends the file to the
    careful path (which locates every bad line), with nothing counted twice."""
    layout = sniff_text_layout(flow_file, options)
    if layout is None:
        return False
    # the engine inflates gzip itself (sniffed: no bomb)
    if not scan_clean_text(
        flow_file.path,
        layout.fields,
        layout.header_lines,
        aggregator,
        millis=layout.millis,
        flow_logs=flow_log_of_file(flow_file.path),
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
    (the offline query executor, parser conformance tests). Flow-edge files carry no records: skipped.
    ``options.progress`` is told per file and per block (records count as the consumer adds them)."""
    options = options or IngestOptions()
    read_options = ReadOptions(log_format=options.log_format, log_stream=options.log_stream)
    files = discover_flow_files(paths, ledger)
    report = _Progress(options.progress, len(files), ledger)
    report()
    for flow_file in files:
        if is_edge_file(flow_file.path):
            ledger.skip_file(str(flow_file.path), "skipped, a flow-edge file holds no records")
        else:
            for block in read_flow_file(flow_file, read_options, ledger):
                yield block
                report()
        report.done += 1
        report()
    _check_missing(ledger, options)
    report("done")
