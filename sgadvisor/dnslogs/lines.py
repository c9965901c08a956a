"""Numbered lines of a query-log file, plain or gzip, streamed in bounded memory.

Query logs delivered to S3 are gzip files of many thousand lines; a transfer cut short leaves a truncated
member, and a flipped byte a corrupt one. The gzip reader of the flow logs (``gzip_pieces``) delivers
every byte that decodes before the damage, so every complete line before it is kept and the damage is
reported once, at the line where it happened. A line longer than ``MAX_LINE`` is never held whole: its
bytes are dropped as they stream and it is reported by number (no record is that long; a gzip bomb of
one endless line is).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from sgadvisor.flowlogs.files import GzipDamage, gzip_pieces

GZIP_MAGIC = b"\x1f\x8b"
MAX_LINE = 64 * 1024 * 1024  # a one-line `filter-log-events | jq -c` page is at most ~10 MB
_READ_BYTES = 4 * 1024 * 1024


@dataclass
class StreamEnd:
    """What happened to the byte stream, known once the lines are consumed."""

    damage: str | None = None  # why the rest of the file could not be read
    damage_line: int = 0  # the number the first line not read would have had
    incomplete: bool = False  # the damage cut a line short (it was dropped)
    long_lines: list[tuple[int, int]] = field(default_factory=list)  # (line number, bytes) over MAX_LINE


def numbered_lines(
    handle: BinaryIO, end: StreamEnd, *, max_line: int = MAX_LINE
) -> Iterator[tuple[int, bytes]]:
    """``(number, line)`` for each line (1-based, newline and a trailing CR removed), gzip or not
    (decided by the magic bytes, not the file name: CloudWatch Logs exports are ``000000.gz`` and a
    downloaded ``.log.gz`` may already be inflated). A final line without a newline is yielded too."""
    gz = handle.read(2) == GZIP_MAGIC
    handle.seek(0)
    pieces = gzip_pieces(handle) if gz else _plain_pieces(handle)
    pending = bytearray()
    dropping: int | None = None  # bytes of an over-long line dropped so far
    number = 0
    try:
        for piece in pieces:
            parts = piece.split(b"\n")
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                if dropping is not None:
                    dropping += len(part)
                    if not last:
                        number += 1
                        end.long_lines.append((number, dropping))
                        dropping = None
                    continue
                if last:
                    pending += part
                    if len(pending) > max_line:
                        dropping = len(pending)
                        pending.clear()
                    continue
                number += 1
                if pending:
                    pending += part
                    line = bytes(pending)
                    pending.clear()
                else:
                    line = part
                if len(line) > max_line:
                    end.long_lines.append((number, len(line)))
                    continue
                yield number, line.removesuffix(b"\r")
    except GzipDamage as damage:
        end.damage = damage.reason
        end.damage_line = number + 1
        end.incomplete = dropping is not None or bool(pending.strip())
        return
    if dropping is not None:
        end.long_lines.append((number + 1, dropping))
    elif pending:
        yield number + 1, bytes(pending).removesuffix(b"\r")


def _plain_pieces(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(_READ_BYTES):
        yield chunk
