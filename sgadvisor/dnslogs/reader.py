"""Read Route 53 Resolver query logs (``--dns-logs PATH``, repeatable) into a DnsLog for a window.

Paths are files or folders, walked recursively (sorted; hidden entries skipped), as the flow logs are.
In a folder the candidates are ``.log``, ``.log.gz``, ``.json``, ``.json.gz`` and any gzip file (by its
magic bytes: CloudWatch Logs exports are ``000000.gz``); every other file met there, a FIFO, a socket,
an unreadable folder or file, and a candidate whose content is no query log, is skipped and listed in
the accounting (line 0: the whole file), never opened blocking. Named on the command line, a missing
path or a file that is no query log is an InputError: the user asked for it.

Within a file every record is accounted: used, malformed (file, line, reason) or filtered ("outside the
window": ``[start, end)`` on ``query_timestamp``). A truncated or corrupt gzip keeps every complete line
before the damage and reports the damage at its line.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from sgadvisor.dnslogs.lines import GZIP_MAGIC, StreamEnd, numbered_lines
from sgadvisor.dnslogs.records import RecordError, parse_record
from sgadvisor.dnslogs.resolution import DnsLog
from sgadvisor.dnslogs.shapes import NotAQueryLog, Raw, recognise
from sgadvisor.dnslogs.store import QueryStore
from sgadvisor.dnslogs.tally import OUTSIDE_WINDOW, DnsTally
from sgadvisor.errors import InputError
from sgadvisor.flowlogs.files import file_type_name, open_regular, os_error_reason

SUFFIXES = (".log", ".log.gz", ".json", ".json.gz")
_HINT = (
    "--dns-logs takes Route 53 Resolver query logs: the .log.gz files delivered to S3 "
    "(AWSLogs/<account>/vpcdnsquerylogs/...), aws logs filter-log-events JSON, or a CloudWatch Logs "
    "export; or folders of them"
)


def read_dns_logs(paths: Sequence[Path], start: int | None, end: int | None) -> DnsLog:
    """Every query of the window in ``paths``, with the accounting of every record read."""
    builder = DnsLogBuilder(start, end)
    builder.add_files(paths)
    return builder.finish()


class DnsLogBuilder:
    """One DnsLog of the window ``[start, end)`` from several sources, with one accounting: files
    (:meth:`add_files`, as :func:`read_dns_logs` reads them) and records already read elsewhere
    (:meth:`add_record`: e.g. the ``@message`` of Logs Insights rows, ``sgadvisor.aws.dns``), which go
    through the same ``parse_record``, window and tables as a file's."""

    def __init__(self, start: int | None, end: int | None) -> None:
        self.start, self.end = start, end
        self.tally = DnsTally()
        self.store = QueryStore()
        self.sources: list[str] = []
        self.shapes: dict[str, str] = {}

    def add_files(self, paths: Sequence[Path]) -> None:
        for path, named in _discover(paths, self.tally):
            shape = _read_file(path, named, self.start, self.end, self.tally, self.store)
            if shape is not None:
                self.add_source(str(path), shape)

    def add_source(self, name: str, shape: str) -> None:
        """Name a source that was read (a file, a log group) and the shape it was read as."""
        if name not in self.shapes:
            self.sources.append(name)
        self.shapes[name] = shape

    def add_record(self, source: str, value: object, *, line: int = 0, where: str = "") -> None:
        """One parsed JSON value met in ``source``: used, malformed (located by ``line`` and ``where``,
        e.g. ``event of 2026-11-01 03:00:00.000 in stream s: ``) or outside the window, as a file's record."""
        _account(source, Raw(line, None, value), self.start, self.end, self.tally, self.store, where)

    def add_malformed(self, source: str, reason: str, *, line: int = 0) -> None:
        """A record that is not even JSON (``reason`` says so and where it was)."""
        self.tally.add_malformed(source, line, reason)

    def add_filtered(self, reason: str, count: int) -> None:
        """``count`` records left out for ``reason`` before they were read (e.g. by a query's filter)."""
        if count > 0:
            self.tally.add_filtered(reason, count)

    def finish(self) -> DnsLog:
        return DnsLog(
            self.store.finish(), sources=self.sources, shapes=self.shapes, accounting=self.tally.freeze()
        )


# ---------------------------------------------------------------------------------------------- paths


def _discover(paths: Sequence[Path], tally: DnsTally) -> Iterator[tuple[Path, bool]]:
    """``(file, named on the command line)`` for each file to read."""
    for path in paths:
        try:
            info = path.stat()  # a symlink named on the command line is followed
        except OSError as exc:
            if exc.errno == errno.ENOENT and not path.is_symlink():
                raise InputError(
                    f"{path}: no such file or directory", hint="check the --dns-logs path"
                ) from None
            tally.note_file(
                str(path), f"skipped, unreadable: {os_error_reason(exc, symlink=path.is_symlink())}"
            )
            continue
        if stat.S_ISDIR(info.st_mode):
            yield from _walk(path, tally)
        elif stat.S_ISREG(info.st_mode):
            yield path, True
        else:
            raise InputError(
                f"{path}: not a regular file or directory ({file_type_name(info.st_mode)})", hint=_HINT
            )


def _walk(top: Path, tally: DnsTally) -> Iterator[tuple[Path, bool]]:
    def unreadable(exc: OSError) -> None:
        tally.note_file(str(exc.filename or top), f"skipped, unreadable: {exc.strerror or exc}")

    for root, dirs, files in os.walk(top, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            try:
                info = path.stat()
            except OSError as exc:
                tally.note_file(
                    str(path), f"skipped, unreadable: {os_error_reason(exc, symlink=path.is_symlink())}"
                )
                continue
            if not stat.S_ISREG(info.st_mode):
                tally.note_file(str(path), f"skipped, not a regular file ({file_type_name(info.st_mode)})")
            elif name.endswith(SUFFIXES) or _gzip(path):
                yield path, False
            else:
                tally.note_file(str(path), "skipped, not a .log, .json or gzip file")


def _gzip(path: Path) -> bool:
    try:
        with open_regular(path) as handle:
            return handle.read(2) == GZIP_MAGIC
    except OSError:
        return False  # then skipped as not a candidate; an unreadable candidate is reported when read


# ---------------------------------------------------------------------------------------------- files


def _read_file(
    path: Path, named: bool, start: int | None, end: int | None, tally: DnsTally, store: QueryStore
) -> str | None:
    """Read one file into ``store``; the shape it was read as, or None when it was skipped."""
    name = str(path)
    stream = StreamEnd()
    try:
        with open_regular(path) as handle:
            found = recognise(name, numbered_lines(handle, stream))
            if found is None:
                _note_end(name, stream, tally, empty=True)
                return None
            shape, raws = found
            for raw in raws:
                _account(name, raw, start, end, tally, store)
    except NotAQueryLog as exc:
        why = f"{exc} ({stream.damage})" if stream.damage else str(exc)  # damage cut the document short
        if named:
            raise InputError(f"{name}: not a Route 53 Resolver query log: {why}", hint=_HINT) from None
        tally.note_file(name, f"skipped, not a Route 53 Resolver query log: {why}")
        return None
    except OSError as exc:
        tally.note_file(name, f"skipped, unreadable: {os_error_reason(exc, symlink=path.is_symlink())}")
        return None
    _note_end(name, stream, tally, empty=False)
    return str(shape)


def _account(
    name: str,
    raw: Raw,
    start: int | None,
    end: int | None,
    tally: DnsTally,
    store: QueryStore,
    where: str = "",
) -> None:
    where = f"event {raw.event}: " if raw.event is not None else where
    if raw.error is not None:
        tally.add_malformed(name, raw.line, where + raw.error)
        return
    try:
        query = parse_record(raw.value)
    except RecordError as exc:
        tally.add_malformed(name, raw.line, f"{where}{exc}")
        return
    if (start is not None and query.timestamp < start) or (end is not None and query.timestamp >= end):
        tally.add_filtered(OUTSIDE_WINDOW)
        return
    tally.add_used()
    store.add(query)


def _note_end(name: str, stream: StreamEnd, tally: DnsTally, *, empty: bool) -> None:
    """Over-long lines are malformed records; damage is one malformed record (the cut line, or the
    unreadable rest) located where the readable part ends."""
    for number, length in stream.long_lines:
        tally.add_malformed(name, number, f"line of {length} bytes, longer than any query-log record")
    if stream.damage is not None:
        what = "incomplete line dropped" if stream.incomplete else "rest of file unreadable"
        tally.add_damage(name, stream.damage_line, f"{stream.damage}; {what}")
    elif empty and not stream.long_lines:
        tally.note_file(name, "empty file: no records")
