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

import errno
import json
import mmap
import os
import re
import stat
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

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
from sgadvisor.jsonload import load_json_text

STREAM_ENI_COL = "_stream_eni"
BLOCK_BYTES = 32 * 1024 * 1024  # complete lines handed to the engine at a time
_READ_BYTES = 4 * 1024 * 1024
_GZIP_SLICE = 64 * 1024
_INFLATE_BYTES = 1024 * 1024  # most inflated bytes per zlib call
MAX_LINE = 64 * 1024  # no flow record is longer: a longer line is malformed, and never held whole
_SNIFF_LINES = 20
_ENI_RE = re.compile(r"(eni-[0-9A-Za-z]+)")
# An S3 delivery file's name carries its flow log's id between underscores
# (``123456789012_vpcflowlogs_eu-west-1_fl-0e28ec3cc4b1f9a67_20261101T0000Z_b5616020.log.gz``); whole ids
# only (``fl-`` and 8 or 17 hex digits).
_FLOW_LOG_IN_NAME = re.compile(r"(?:^|_)(fl-(?:[0-9a-f]{17}|[0-9a-f]{8}))(?=_)")


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


def flow_log_of_file(path: Path | str) -> str | None:
    """The flow log id an S3 delivery file's name carries, else None (CloudWatch Logs exports, renamed
    files: which flow log wrote them is unknown)."""
    match = _FLOW_LOG_IN_NAME.search(Path(path).name)
    return match.group(1) if match else None


def discover_flow_files(paths: Sequence[Path], ledger: Ledger | None = None) -> list[FlowFile]:
    """Expand files and directories (walked recursively, sorted, hidden entries skipped).

    Only regular files are returned. Met while walking, a FIFO, socket or device is skipped and listed
    (opening a FIFO would block forever); a folder or file that cannot be read (permissions, a dangling
    or looping symlink) is recorded in ``ledger`` as unreadable. Named on the command line, a
    non-regular file or a missing path is an InputError, and an unreadable one is recorded as unreadable.
    """
    ledger = ledger if ledger is not None else Ledger()
    found: list[FlowFile] = []
    for path in paths:
        try:
            info = path.lstat()
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise InputError(
                    f"{path}: no such file or directory", hint="check the --flows path"
                ) from None
            ledger.note_unreadable(str(path), os_error_reason(exc))
            continue
        try:
            info = path.stat()  # follows a symlink named on the command line
        except OSError as exc:
            ledger.note_unreadable(str(path), os_error_reason(exc, symlink=stat.S_ISLNK(info.st_mode)))
            continue
        if stat.S_ISDIR(info.st_mode):
            found.extend(_walk(path, ledger))
        elif stat.S_ISREG(info.st_mode):
            found.append(FlowFile(path, named=True))
        else:
            raise InputError(
                f"{path}: not a regular file or directory ({file_type_name(info.st_mode)})",
                hint="--flows takes flow-log files or directories of them",
            )
    return found


def _walk(top: Path, ledger: Ledger) -> Iterator[FlowFile]:
    def unreadable(exc: OSError) -> None:
        ledger.note_unreadable(str(exc.filename or top), os_error_reason(exc))

    for root, dirs, files in os.walk(top, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            try:
                info = path.stat()  # a symlink is followed: its target must be a regular file
            except OSError as exc:
                ledger.note_unreadable(str(path), os_error_reason(exc, symlink=path.is_symlink()))
                continue
            if stat.S_ISREG(info.st_mode):
                yield FlowFile(path, named=False)
            else:
                ledger.skip_file(str(path), f"skipped, not a regular file ({file_type_name(info.st_mode)})")


def os_error_reason(exc: OSError, *, symlink: bool = False) -> str:
    text = exc.strerror or str(exc)
    if symlink and exc.errno == errno.ENOENT:
        return f"dangling symlink ({text})"
    if exc.errno == errno.ELOOP:
        return f"symlink loop ({text})"
    return text


def file_type_name(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path) -> BinaryIO:
    """Open a file for reading only if it is a regular file: a FIFO swapped in after discovery must not
    block the run (opened non-blocking, checked with fstat, closed). Raises OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({file_type_name(mode)})", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# ---------------------------------------------------------------------------------------------- bytes


class GzipDamage(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def gzip_pieces(handle: BinaryIO) -> Iterator[bytes]:
    """Decompress a (multi-member) gzip stream piece by piece; raise GzipDamage where it breaks.

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
            delivered = 0  # bytes of this slice's output already yielded
            try:
                # Output is bounded per call (a slice of a gzip bomb inflates a thousandfold).
                out = decomp.decompress(piece, _INFLATE_BYTES)
                while True:
                    if out:
                        delivered += len(out)
                        yield out
                    if decomp.eof or (not decomp.unconsumed_tail and len(out) < _INFLATE_BYTES):
                        break
                    out = decomp.decompress(decomp.unconsumed_tail, _INFLATE_BYTES)
            except zlib.error as exc:
                yield from _replay_until_damage(saved, piece, delivered)
                raise GzipDamage(f"corrupt gzip data near byte offset {offset}: {exc}") from None
            if decomp.eof:
                used = len(piece) - len(decomp.unused_data)
                offset += used
                view = view[used:]
                in_member = False
                rest = bytes(view[:2]) if view else b""
                if rest and rest != b"\x1f\x8b":
                    if bytes(view).strip(b"\x00"):
                        raise GzipDamage(f"data after the last gzip member at byte offset {offset}")
                    return  # zero padding after the last member is harmless
            else:
                offset += len(piece)
                view = view[len(piece) :]
    if in_member and not decomp.eof:
        raise GzipDamage(f"gzip stream truncated at byte offset {offset}")


def _replay_until_damage(saved: Any, piece: memoryview, delivered: int) -> Iterator[bytes]:
    """Feed a slice one byte at a time from the state before it, yielding what decodes before the error
    (less the first ``delivered`` bytes, already yielded)."""
    for index in range(len(piece)):
        try:
            out = saved.decompress(piece[index : index + 1])
        except zlib.error:
            return
        if delivered and out:
            skipped = min(delivered, len(out))
            out, delivered = out[skipped:], delivered - skipped
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
    long_lines: list[tuple[int, int]] = field(default_factory=list)  # (line number, bytes) over MAX_LINE


def _line_blocks(pieces: Iterator[bytes], state: _Lines, block_bytes: int) -> Iterator[bytes]:
    """Blocks of complete lines. In text (not JSON: decided by the first non-blank byte) a line longer
    than MAX_LINE is never held whole: its bytes are dropped up to its newline as they stream, an empty
    line stands in for it (so later line numbers hold) and ``state.long_lines`` says where it was."""
    buffer = bytearray()
    yielded_lines = 0  # newlines in the blocks yielded so far
    line_start = 0  # where the last (incomplete) line of ``buffer`` starts
    limited: bool | None = None  # unknown until the first non-blank byte
    dropping: list[int] | None = None  # [line number, bytes] of the long line being dropped
    try:
        for piece in pieces:
            if dropping is not None:
                newline = piece.find(b"\n")
                if newline < 0:
                    dropping[1] += len(piece)
                    continue
                dropping[1] += newline
                state.long_lines.append((dropping[0], dropping[1]))
                dropping = None
                piece = piece[newline + 1 :]
            if limited is None and (first := _FIRST_NON_BLANK.search(piece)) is not None:
                limited = first.group() not in (b"{", b"[")
            before = len(buffer)
            buffer += piece
            newline = buffer.rfind(b"\n", before)
            if newline >= 0:
                if limited:
                    _blank_long_lines(buffer, line_start, newline + 1, yielded_lines, state)
                    newline = buffer.rfind(b"\n")
                line_start = newline + 1
            if limited and len(buffer) - line_start > MAX_LINE:
                number = yielded_lines + buffer.count(b"\n", 0, line_start) + 1
                dropping = [number, len(buffer) - line_start]
                del buffer[line_start:]
                buffer += b"\n"
                line_start = len(buffer)
            if len(buffer) >= block_bytes:
                cut = buffer.rfind(b"\n")
                if cut >= 0:
                    block = bytes(buffer[: cut + 1])
                    del buffer[: cut + 1]
                    line_start -= cut + 1
                    yielded_lines += block.count(b"\n")
                    yield block
    except GzipDamage as damage:
        state.damage = damage.reason
        if dropping is not None:
            state.long_lines.append((dropping[0], dropping[1]))
        cut = buffer.rfind(b"\n")
        if cut >= 0:
            yield bytes(buffer[: cut + 1])
            del buffer[: cut + 1]
        state.tail = bytes(buffer)
        return
    if dropping is not None:
        state.long_lines.append((dropping[0], dropping[1]))  # the stream ended inside it
    if buffer:
        yield bytes(buffer)  # the last line may lack its newline


_FIRST_NON_BLANK = re.compile(rb"[^ \t\r\n]")


def _blank_long_lines(buffer: bytearray, begin: int, end: int, yielded_lines: int, state: _Lines) -> None:
    """Empty the complete lines of ``buffer[begin:end]`` (``end`` just after a newline) that are longer
    than MAX_LINE, recording where they were. One search per MAX_LINE bytes: a line that covers a whole
    window is found (every line over twice MAX_LINE; a shorter one is malformed by its field count)."""
    spans: list[tuple[int, int]] = []
    window = begin
    while window + MAX_LINE <= end:
        if buffer.find(b"\n", window, window + MAX_LINE) >= 0:
            window += MAX_LINE
            continue
        start = buffer.rfind(b"\n", 0, window) + 1
        stop = buffer.find(b"\n", window + MAX_LINE - 1)
        if stop - start > MAX_LINE:
            spans.append((start, stop))
        window = stop + 1
    found = [(yielded_lines + buffer.count(b"\n", 0, a) + 1, b - a) for a, b in spans]
    for start, stop in reversed(spans):
        del buffer[start:stop]
    state.long_lines.extend(found)


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
    InputError when named on the command line. A file that cannot be read is recorded as unreadable.
    """
    path = flow_file.path
    name = str(path)
    try:
        with open_regular(path) as handle:
            magic = handle.read(4)
            handle.seek(0)
            if magic == b"PAR1":
                yield from _read_parquet(path, ledger)
                return
            gz = magic[:2] == b"\x1f\x8b"
            state = _Lines()
            pieces = gzip_pieces(handle) if gz else _plain_pieces(handle)
            blocks = _line_blocks(pieces, state, block_bytes)
            yield from _read_text_or_json(name, blocks, state, options, ledger)
    except NotAFlowLog as exc:
        if flow_file.named:
            raise InputError(f"{name}: not a flow log: {exc}", hint=_NOT_FLOW_HINT) from None
        ledger.skip_file(name, f"skipped, not a flow log: {exc}")
    except OSError as exc:
        ledger.note_unreadable(name, os_error_reason(exc))


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
        if state.long_lines:  # nothing but lines no flow record can be (e.g. a gzip bomb)
            number, length = state.long_lines[0]
            raise NotAFlowLog(f"line {number} is {length} bytes long, and no flow-log text")
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
    for number, length in state.long_lines:
        ledger.add_malformed(
            name, number, f"line of {length} bytes, longer than any flow record ({MAX_LINE})"
        )
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
    which = "--log-format" if options.log_format else "the AWS default format"
    if len(fields) not in counts:
        found = ", ".join(str(c) for c in sorted(counts))
        raise NotAFlowLog(
            f"no header line, and the first lines have {found} fields where {which} has {len(fields)}"
        )
    if not _any_valid_record([ln for ln in lines if len(ln.split()) == len(fields)], fields):
        raise NotAFlowLog(f"no header line, and none of the first lines is a record in {which}")
    return fields, 0


_ACCOUNT_RE = re.compile(r"^(?:[0-9]+|unknown|-)$")
_RESOURCE_ID_RE = re.compile(r"^(?:[a-z]+-\S+|-)$")


def _any_valid_record(lines: Sequence[bytes], fields: Sequence[str]) -> bool:
    """Whether one of these lines (with the format's field count) is a valid record: every value typed
    as the parser types it (integers, addresses, action/log-status values), the account id digits
    (or ``unknown``), the interface id an AWS id. Field counts alone would take any text with as many
    words on a line (notes, a README) for a header-less flow log whose every line is malformed."""
    if not lines:
        return False
    frame = parse_text_block(b"\n".join(lines) + b"\n", fields, file="", first_line=1, ledger=Ledger())
    for column, pattern in (("account-id", _ACCOUNT_RE), ("interface-id", _RESOURCE_ID_RE)):
        if column in frame.columns and frame.height:
            frame = frame.filter(pl.col(column).is_null() | pl.col(column).str.contains(pattern.pattern))
    return frame.height > 0


def _preview(line: bytes) -> str:
    text = line[:60].decode("utf-8", "replace")
    return repr(text + ("…" if len(line) > 60 else ""))


class TextLayout(NamedTuple):
    gzipped: bool
    fields: tuple[str, ...]
    header_lines: int
    millis: bool  # the sniffed records write start/end in milliseconds


_SNIFF_MAX_RATIO = 100  # flow-log text inflates 3-25x; far more is a bomb, or too odd for the engine


def _gzip_size_plausible(handle: BinaryIO) -> bool:
    """Whether the gzip trailer's ISIZE (the last member's inflated size, mod 2^32; RFC 1952) is a size
    flow-log text can have for this file: at least the compressed size (for files over 64 KiB) and at
    most _SNIFF_MAX_RATIO times it. A bomb behind an ordinary head fails here (2 GiB from 2.5 MB), and
    so does a file whose last member is small beside the rest. Not proof: past about 4 MB compressed
    ISIZE may have wrapped."""
    size = handle.seek(0, os.SEEK_END)
    if size < 18:
        return False
    handle.seek(size - 4)
    isize = int.from_bytes(handle.read(4), "little")
    handle.seek(0)
    # Below 64 KiB the gzip framing may outweigh the text, and even a bomb inflates to at most ~66 MB.
    return (size <= isize or size < 65536) and isize <= _SNIFF_MAX_RATIO * size


def sniff_text_layout(flow_file: FlowFile, options: ReadOptions) -> TextLayout | None:
    """For a text flow log (plain or gzip) the one-pass engine may take: its layout. None for every other
    shape, and for anything doubtful: the careful reader then decides and reports.

    The engine inflates a gzip file whole in memory and holds a line whole, so it never gets a gzip
    whose head inflates more than ``_SNIFF_MAX_RATIO`` times (a gzip bomb), nor a plain file with a line
    longer than twice MAX_LINE (checked on the mapped file, one search per MAX_LINE bytes); the careful
    path streams both in bounded memory."""
    try:
        with open_regular(flow_file.path) as handle:
            head = handle.read(65536)
            gzipped = head[:2] == b"\x1f\x8b"
            if not gzipped and not _lines_bounded(handle):
                return None
            if gzipped and not _gzip_size_plausible(handle):
                return None
    except (OSError, ValueError):
        return None
    if gzipped:
        decomp = zlib.decompressobj(wbits=31)
        try:
            inflated = decomp.decompress(head, _SNIFF_MAX_RATIO * len(head))
        except zlib.error:
            return None
        if decomp.unconsumed_tail:
            return None  # inflates more than _SNIFF_MAX_RATIO times
        head = inflated
    if head[:4] == b"PAR1" or head.lstrip()[:1] in (b"{", b"[") or not head.strip():
        return None
    cut = head.rfind(b"\n")
    sniffed = head[: cut + 1] if cut > 0 else head
    try:
        fields, header_lines = _text_layout(sniffed, options)
    except NotAFlowLog:
        return None
    return TextLayout(gzipped, fields, header_lines, _writes_millis(sniffed, fields, header_lines))


def _lines_bounded(handle: BinaryIO) -> bool:
    """Every MAX_LINE-aligned window of the file holds a newline, so no line exceeds twice MAX_LINE."""
    size = os.fstat(handle.fileno()).st_size
    if size <= 2 * MAX_LINE:
        return True
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return all(
            data.find(b"\n", start, start + MAX_LINE) >= 0 for start in range(0, size - MAX_LINE, MAX_LINE)
        )


def _writes_millis(head: bytes, fields: Sequence[str], header_lines: int) -> bool:
    """Whether a sniffed record writes start or end as a 13-digit (millisecond) epoch value."""
    columns = [i for i, name in enumerate(fields) if name in ("start", "end")]
    if not columns:
        return False
    for line in head.split(b"\n", _SNIFF_LINES + header_lines)[header_lines : _SNIFF_LINES + header_lines]:
        values = line.split()
        if len(values) == len(fields) and any(len(values[i]) >= 13 and values[i].isdigit() for i in columns):
            return True
    return False


# ---------------------------------------------------------------------------------------------- JSON


def _read_json(
    name: str, data: bytes, state: _Lines, options: ReadOptions, ledger: Ledger
) -> Iterator[RecordBlock]:
    if state.damage is not None:
        raise NotAFlowLog(f"damaged JSON ({state.damage})")
    try:
        document: Any = load_json_text(data, source=name)  # hostile JSON: InputError naming the line
        lines_mode = False
    except (json.JSONDecodeError, UnicodeDecodeError):
        lines_mode = True
        document = None
    if not lines_mode:
        doc_events, default_stream = _events_of_document(document)
        yield from _events_to_blocks(name, doc_events, default_stream, options, ledger)
        return
    # JSON Lines: flow-edge files, or {"message": …} objects one per line.
    text_lines = data.split(b"\n")
    first_obj = _first_json_object(text_lines, source=name)
    if first_obj is not None and "kind" in first_obj:
        return  # a flow-edge file: read by edgefile, not here
    if first_obj is None or "message" not in first_obj:
        raise NotAFlowLog("JSON lines without a 'message' field")
    events: list[tuple[int, Any]] = []
    for number, raw in enumerate(text_lines, start=1):
        if not raw.strip():
            continue
        try:
            events.append((number, load_json_text(raw, source=name, first_line=number)))
        except json.JSONDecodeError as exc:
            ledger.add_malformed(name, number, f"invalid JSON: {exc.msg}")
        except UnicodeDecodeError:
            ledger.add_malformed(name, number, "invalid JSON: not UTF-8 text")
    yield from _events_to_blocks(name, events, None, options, ledger)


def is_edge_file(path: Path) -> bool:
    """True when the file is a flow-edge JSON Lines file (first object has ``kind``). False when it
    cannot be read: the flow-log reader then records why."""
    try:
        with open_regular(path) as handle:
            head = handle.read(65536)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 1024 * 1024)
        except zlib.error:
            return False
    first = _first_json_object(head.split(b"\n")[:5])
    return first is not None and first.get("kind") in {"window", "coverage", "edge"}


def _first_json_object(lines: Sequence[bytes], *, source: str | None = None) -> dict[str, Any] | None:
    """The first line's object. Hostile JSON (too deep, ...) is an InputError naming ``source``; when
    only sniffing (no ``source``) it is None: the reader then meets it and reports it."""
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            try:
                value = load_json_text(raw, source=source or "", first_line=number)
            except ValueError:  # not JSON, or not even UTF-8
                return None
            except InputError:
                if source is None:
                    return None
                raise
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
        self.warnings = target.warnings  # e.g. start/end read as milliseconds

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
