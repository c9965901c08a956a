"""Read flow-log files of every shape AWS delivers into typed record blocks, streaming.

Shapes (recognised by content, not by file name):
- S3 text (``*.log.gz`` or plain) whose first line is the header of field names;
- header-less text in ``--log-format`` order (default: the AWS default format);
- S3 Parquet (column names with underscores);
- JSON printed by ``aws logs filter-log-events`` (events carry ``logStreamName``), ``get-log-events``
  (no stream name), a CloudWatch Logs subscription envelope (``logEvents``), or JSON Lines of
  ``{"message": …}`` objects;
- flow-edge JSON Lines written by ``sgadvisor collect --flows-out`` / ``sgadvisor edges`` (see edgefile).

A truncated or corrupt gzip member keeps every complete line before the damage. Files met while walking a
directory that are not flow logs are skipped and listed; a file named on the command line that is not a
flow log is an InputError.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from sgadvisor.accounting import Ledger
from sgadvisor.errors import InputError
from sgadvisor.flowlogs.fields import (
    DEFAULT_FORMAT,
    is_known_field,
    looks_like_field_name,
    normalize_field_name,
)
from sgadvisor.flowlogs.parse import LINE_COL, parse_text_block, type_columns

STREAM_ENI_COL = "_stream_eni"
BLOCK_BYTES = 32 * 1024 * 1024  # complete lines handed to the engine at a time
_READ_BYTES = 4 * 1024 * 1024
_GZIP_SLICE = 64 * 1024
_SNIFF_LINES = 20
_ENI_RE = re.compile(r"(eni-[0-9A-Za-z]+)")


class SourceKind(StrEnum):
    TEXT = "text"
    PARQUET = "parquet"
    CLOUDWATCH_JSON = "cloudwatch-json"
    EDGES = "edges"


@dataclass(frozen=True, slots=True)
class RecordBlock:
    """Typed records from one file: columns named by AWS field names, plus ``_line``."""

    file: str
    kind: SourceKind
    fields: tuple[str, ...]
    frame: pl.DataFrame


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read files that do not describe themselves."""

    log_format: tuple[str, ...] | None = None  # for header-less text and CloudWatch messages
    log_stream: str | None = None  # for get-log-events JSON whose records lack interface-id


class NotAFlowLog(Exception):
    """Raised by sniffing: the file is not a flow log (the message says why)."""


@dataclass(frozen=True, slots=True)
class FlowFile:
    path: Path
    named: bool  # named on the command line (errors are fatal) vs. met while walking a directory


def discover_flow_files(paths: Sequence[Path]) -> list[FlowFile]:
    """Expand files and directories (walked recursively, sorted, hidden entries skipped)."""
    found: list[FlowFile] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        found.append(FlowFile(Path(root) / name, named=False))
        elif path.is_file():
            found.append(FlowFile(path, named=True))
        elif path.exists():
            raise InputError(f"{path}: not a regular file or directory")
        else:
            raise InputError(f"{path}: no such file or directory", hint="check the --flows path")
    return found


# ---------------------------------------------------------------------------------------------- bytes


class _Damage(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _gzip_pieces(handle: BinaryIO) -> Iterator[bytes]:
    """Decompress a (multi-member) gzip stream piece by piece; raise _Damage where it breaks.

    zlib is fed in small slices from a saved state, so on corruption the slice is replayed byte by byte
    and every byte decodable before the damage is still delivered (the column engine's own gzip reader
    fails the whole file instead).
    """
    decomp = zlib.decompressobj(wbits=31)
    offset = 0  # compressed bytes consumed so far
    in_member = False
    while chunk := handle.read(_READ_BYTES):
        view = memoryview(chunk)
        while view:
            if not in_member:
                decomp = zlib.decompressobj(wbits=31)
                in_member = True
            piece = view[:_GZIP_SLICE]
            saved = decomp.copy()
            try:
                out = decomp.decompress(piece)
            except zlib.error as exc:
                yield from _replay_until_damage(saved, piece)
                raise _Damage(f"corrupt gzip data near byte offset {offset}: {exc}") from None
            if out:
                yield out
            if decomp.eof:
                used = len(piece) - len(decomp.unused_data)
                offset += used
                view = view[used:]
                in_member = False
                rest = bytes(view[:2]) if view else b""
                if rest and rest != b"\x1f\x8b":
                    if bytes(view).strip(b"\x00"):
                        raise _Damage(f"data after the last gzip member at byte offset {offset}")
                    return  # zero padding after the last member is harmless
            else:
                offset += len(piece)
                view = view[len(piece) :]
    if in_member and not decomp.eof:
        raise _Damage(f"gzip stream truncated at byte offset {offset}")


def _replay_until_damage(saved: Any, piece: memoryview) -> Iterator[bytes]:
    """Feed a slice one byte at a time from the state before it, yielding what decodes before the error."""
    for index in range(len(piece)):
        try:
            out = saved.decompress(piece[index : index + 1])
        except zlib.error:
            return
        if out:
            yield out


def _plain_pieces(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(_READ_BYTES):
        yield chunk


@dataclass
class _Lines:
    """Blocks of complete lines from a byte stream, plus what happened at the end of the stream."""

    damage: str | None = None
    tail: bytes = b""  # an incomplete final line left by damage


def _line_blocks(pieces: Iterator[bytes], state: _Lines, block_bytes: int) -> Iterator[bytes]:
    buffer = bytearray()
    try:
        for piece in pieces:
            buffer += piece
            if len(buffer) >= block_bytes:
                cut = buffer.rfind(b"\n")
                if cut >= 0:
                    yield bytes(buffer[: cut + 1])
                    del buffer[: cut + 1]
    except _Damage as damage:
        state.damage = damage.reason
        cut = buffer.rfind(b"\n")
        if cut >= 0:
            yield bytes(buffer[: cut + 1])
            del buffer[: cut + 1]
        state.tail = bytes(buffer)
        return
    if buffer:
        yield bytes(buffer)  # the last line may lack its newline


# ---------------------------------------------------------------------------------------------- read


def read_flow_file(
    flow_file: FlowFile,
    options: ReadOptions,
    ledger: Ledger,
    *,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[RecordBlock]:
    """Yield typed record blocks from one file; edge files yield nothing here (see edgefile).

    Files that are not flow logs are skipped and listed in ``ledger`` when met in a directory, and raise
    InputError when named on the command line.
    """
    path = flow_file.path
    name = str(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
            handle.seek(0)
            if magic == b"PAR1":
                yield from _read_parquet(path, ledger)
                return
            gz = magic[:2] == b"\x1f\x8b"
            state = _Lines()
            pieces = _gzip_pieces(handle) if gz else _plain_pieces(handle)
            blocks = _line_blocks(pieces, state, block_bytes)
            yield from _read_text_or_json(name, blocks, state, options, ledger)
    except NotAFlowLog as exc:
        if flow_file.named:
            raise InputError(f"{name}: not a flow log: {exc}", hint=_NOT_FLOW_HINT) from None
        ledger.skip_file(name, f"skipped, not a flow log: {exc}")
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None


_NOT_FLOW_HINT = (
    "--flows takes flow-log files (S3 text with a header line, .log.gz, Parquet, CloudWatch Logs JSON) "
    "or directories of them; for header-less text pass --log-format"
)


def _read_text_or_json(
    name: str,
    blocks: Iterator[bytes],
    state: _Lines,
    options: ReadOptions,
    ledger: Ledger,
) -> Iterator[RecordBlock]:
    first = next(blocks, b"")
    if not first.strip() and not state.damage:
        ledger.note_file(name, "empty file: no records")
        return
    stripped = first.lstrip()
    if stripped[:1] in (b"{", b"["):
        # JSON documents are small (CLI output): read the rest and parse them whole.
        whole = first + b"".join(blocks)
        yield from _read_json(name, whole, state, options, ledger)
        return
    fields, header_lines = _text_layout(first, options)
    line_no = 1
    block: bytes | None = first
    while block is not None:
        if header_lines:
            newline = block.find(b"\n")
            block = b"" if newline < 0 else block[newline + 1 :]
            line_no += header_lines
            header_lines = 0
        frame = parse_text_block(block, fields, file=name, first_line=line_no, ledger=ledger)
        if frame.height:
            yield RecordBlock(name, SourceKind.TEXT, fields, frame)
        line_no += block.count(b"\n")
        block = next(blocks, None)
    if state.damage is not None:
        _note_damage(name, line_no, state, ledger)


def _note_damage(name: str, line_no: int, state: _Lines, ledger: Ledger) -> None:
    """Count the damage once (the incomplete line, or the unreadable rest) with where it happened."""
    what = "incomplete line dropped" if state.tail.strip() else "rest of file unreadable"
    ledger.records += 1
    ledger.malformed += 1
    ledger.note_file(name, f"{state.damage}; {what}", line_no)


def _text_layout(first_block: bytes, options: ReadOptions) -> tuple[tuple[str, ...], int]:
    """Decide the field order of a text file: its header line, or the configured format."""
    lines = [ln for ln in first_block.split(b"\n", _SNIFF_LINES + 1)[:_SNIFF_LINES] if ln.strip()]
    if not lines:
        raise NotAFlowLog("no lines")
    try:
        head = lines[0].decode("utf-8").split()
    except UnicodeDecodeError:
        head = []  # no header: a damaged first record, or no flow log at all (the field counts decide)
    if head and all(looks_like_field_name(tok) for tok in head):
        names = tuple(normalize_field_name(tok) for tok in head)
        if any(is_known_field(n) for n in names) and len(set(names)) == len(names):
            if first_block.lstrip()[:1] in (b"\n", b"\r"):
                raise NotAFlowLog("blank lines before the header")
            return names, 1
        raise NotAFlowLog(f"first line {_preview(lines[0])} is neither a flow-log header nor a record")
    fields = options.log_format or DEFAULT_FORMAT
    counts = {len(ln.split()) for ln in lines}
    if len(fields) not in counts:
        found = ", ".join(str(c) for c in sorted(counts))
        which = "--log-format" if options.log_format else "the AWS default format"
        raise NotAFlowLog(
            f"no header line, and the first lines have {found} fields where {which} has {len(fields)}"
        )
    return fields, 0


def _preview(line: bytes) -> str:
    text = line[:60].decode("utf-8", "replace")
    return repr(text + ("…" if len(line) > 60 else ""))


def sniff_text_layout(flow_file: FlowFile, options: ReadOptions) -> tuple[bool, tuple[str, ...], int] | None:
    """For a text flow log (plain or gzip): (gzipped, field order, header lines). None for every other
    shape, and for anything doubtful: the careful reader then decides and reports."""
    try:
        with flow_file.path.open("rb") as handle:
            head = handle.read(65536)
    except OSError:
        return None
    gzipped = head[:2] == b"\x1f\x8b"
    if gzipped:
        try:
            head = zlib.decompressobj(wbits=31).decompress(head)
        except zlib.error:
            return None
    if head[:4] == b"PAR1" or head.lstrip()[:1] in (b"{", b"[") or not head.strip():
        return None
    cut = head.rfind(b"\n")
    try:
        fields, header_lines = _text_layout(head[: cut + 1] if cut > 0 else head, options)
    except NotAFlowLog:
        return None
    return gzipped, fields, header_lines


# ---------------------------------------------------------------------------------------------- JSON


def _read_json(
    name: str, data: bytes, state: _Lines, options: ReadOptions, ledger: Ledger
) -> Iterator[RecordBlock]:
    if state.damage is not None:
        raise NotAFlowLog(f"damaged JSON ({state.damage})")
    try:
        document: Any = json.loads(data)
        lines_mode = False
    except json.JSONDecodeError:
        lines_mode = True
        document = None
    if not lines_mode:
        doc_events, default_stream = _events_of_document(document)
        yield from _events_to_blocks(name, doc_events, default_stream, options, ledger)
        return
    # JSON Lines: flow-edge files, or {"message": …} objects one per line.
    text_lines = data.split(b"\n")
    first_obj = _first_json_object(text_lines)
    if first_obj is not None and "kind" in first_obj:
        return  # a flow-edge file: read by edgefile, not here
    if first_obj is None or "message" not in first_obj:
        raise NotAFlowLog("JSON lines without a 'message' field")
    events: list[tuple[int, Any]] = []
    for number, raw in enumerate(text_lines, start=1):
        if not raw.strip():
            continue
        try:
            events.append((number, json.loads(raw)))
        except json.JSONDecodeError as exc:
            ledger.add_malformed(name, number, f"invalid JSON: {exc.msg}")
    yield from _events_to_blocks(name, events, None, options, ledger)


def is_edge_file(path: Path) -> bool:
    """True when the file is a flow-edge JSON Lines file (first object has ``kind``)."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(head)
        except zlib.error:
            return False
    first = _first_json_object(head.split(b"\n")[:5])
    return first is not None and first.get("kind") in {"window", "coverage", "edge"}


def _first_json_object(lines: Sequence[bytes]) -> dict[str, Any] | None:
    for raw in lines:
        if raw.strip():
            try:
                value = json.loads(raw)
            except ValueError:  # not JSON, or not even UTF-8
                return None
            return value if isinstance(value, dict) else None
    return None


def _events_of_document(document: Any) -> tuple[list[tuple[int, Any]], str | None]:
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        # aws logs filter-log-events / get-log-events
        return list(enumerate(document["events"], start=1)), None
    if isinstance(document, dict) and isinstance(document.get("logEvents"), list):
        # CloudWatch Logs subscription envelope: one stream for all events
        stream = document.get("logStream")
        return list(enumerate(document["logEvents"], start=1)), stream if isinstance(stream, str) else None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return [(1, document)], None  # JSON Lines with a single {"message": …}
    if (
        isinstance(document, list)
        and document
        and all(isinstance(e, dict) for e in document)
        and "message" in document[0]
    ):
        return list(enumerate(document, start=1)), None
    raise NotAFlowLog("JSON without 'events' or 'logEvents' (expected aws logs filter-log-events output)")


def _events_to_blocks(
    name: str,
    events: Sequence[tuple[int, Any]],
    default_stream: str | None,
    options: ReadOptions,
    ledger: Ledger,
) -> Iterator[RecordBlock]:
    fields = options.log_format or DEFAULT_FORMAT
    numbers: list[int] = []
    messages: list[str] = []
    streams: list[str | None] = []
    for number, event in events:
        message = event.get("message") if isinstance(event, dict) else None
        if not isinstance(message, str):
            ledger.add_malformed(name, number, "event without a text 'message'")
            continue
        if "\n" in message or "\r" in message:
            ledger.add_malformed(name, number, "message spans several lines")
            continue
        stream = event.get("logStreamName", default_stream)
        numbers.append(number)
        messages.append(message)
        streams.append(stream if isinstance(stream, str) else None)
    if not messages:
        ledger.note_file(name, "no events")
        return
    widths = {len(m.split()) for m in messages[:_SNIFF_LINES]}
    if len(fields) not in widths:
        found = ", ".join(str(w) for w in sorted(widths))
        which = "--log-format" if options.log_format else "the AWS default format"
        raise NotAFlowLog(f"messages have {found} fields where {which} has {len(fields)}")
    fallback = _eni_of_stream(options.log_stream) if options.log_stream else None
    if "interface-id" not in fields and fallback is None and any(s is None for s in streams):
        raise InputError(
            f"{name}: events carry no log stream name and the format has no interface-id",
            hint="pass --log-stream NAME (the log stream these events came from, e.g. eni-0abc…-all)",
        )
    block = ("\n".join(messages) + "\n").encode("utf-8")
    frame = parse_text_block(block, fields, file=name, first_line=1, ledger=_Renumber(ledger, numbers))
    index = pl.DataFrame(
        {
            LINE_COL: pl.Series(range(1, len(numbers) + 1), dtype=pl.Int64),
            "_event": pl.Series(numbers, dtype=pl.Int64),
            STREAM_ENI_COL: pl.Series([_eni_of_stream(s) or fallback for s in streams], dtype=pl.String),
        }
    )
    frame = (
        frame.join(index, on=LINE_COL, how="left")
        .drop(LINE_COL)
        .rename({"_event": LINE_COL})
        .select(LINE_COL, *fields, STREAM_ENI_COL)
    )
    if frame.height:
        yield RecordBlock(name, SourceKind.CLOUDWATCH_JSON, fields, frame)


class _Renumber(Ledger):
    """A ledger view that reports JSON event numbers instead of positions in the joined block."""

    def __init__(self, target: Ledger, numbers: Sequence[int]) -> None:
        super().__init__()
        self._target = target
        self._numbers = numbers

    def add_malformed(self, file: str, line: int | None, reason: str) -> None:
        event = self._numbers[line - 1] if line is not None and 0 < line <= len(self._numbers) else line
        self._target.add_malformed(file, event, f"event {event}: {reason}")


def _eni_of_stream(stream: str | None) -> str | None:
    """CloudWatch flow-log streams are named ``<interface-id>-all`` (or -accept/-reject)."""
    if not stream:
        return None
    match = _ENI_RE.match(stream)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------------- Parquet

_PARQUET_ROWS = 1_000_000


def _read_parquet(path: Path, ledger: Ledger) -> Iterator[RecordBlock]:
    name = str(path)
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise NotAFlowLog(f"unreadable Parquet ({exc})") from None
    renames = {col: normalize_field_name(col) for col in frame.columns}
    frame = frame.rename(renames)
    fields = tuple(frame.columns)
    if not any(is_known_field(f) for f in fields):
        raise NotAFlowLog("Parquet file without flow-log columns")
    frame = frame.with_row_index(LINE_COL, offset=1).with_columns(pl.col(LINE_COL).cast(pl.Int64))
    for offset in range(0, max(frame.height, 1), _PARQUET_ROWS):
        part = frame.slice(offset, _PARQUET_ROWS)
        typed = type_columns(part, fields, file=name, ledger=ledger)
        if typed.height:
            yield RecordBlock(name, SourceKind.PARQUET, fields, typed)
