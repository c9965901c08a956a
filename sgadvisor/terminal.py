"""What the command line writes: stdout and stderr that outlive their reader, warnings, and progress.

* A reader that goes away (``sgadvisor edges --out - | head``: EPIPE) only stops what it sees: the stream
  is pointed at /dev/null, as Python's documentation recommends for SIGPIPE, and the command finishes
  as it would have (its files written, ``check``'s verdict), with its own exit code. No traceback, no
  "Exception ignored" at interpreter exit.
* Every line on stderr goes through ``safe_line(safe_text(…))``: file names, JSON keys and log-group
  names come from the input and must not move the cursor or issue CI workflow commands.
* Warnings: the first :data:`SHOWN_WARNINGS`, then how many more and where they all are.
* Progress: one line on stderr rewritten in place, only when stderr is a terminal and not ``--quiet``;
  reported per file and per block by the readers, never per record.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from sgadvisor.flowlogs.ingest import ReadProgress
from sgadvisor.render.quoting import safe_line, safe_text

SHOWN_WARNINGS = 20
_REDRAW_SECONDS = 0.1
_CLEAR = "\r\x1b[K"  # back to column 0, erase to the end of the line


def silence(stream: IO[str]) -> None:
    """The reader of ``stream`` went away: point its descriptor at /dev/null, so that nothing written
    later, nor the flush at interpreter exit, fails again."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor (tests capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


@contextmanager
def reader_may_leave(err: bool = False) -> Iterator[IO[str]]:
    """Write to stdout (or stderr) inside the block; if the reader has gone, the rest is dropped."""
    stream = sys.stderr if err else sys.stdout
    _status.clear()
    try:
        yield stream
        stream.flush()
    except BrokenPipeError:
        silence(stream)


def out(text: str, *, nl: bool = True) -> None:
    """Text on stdout (a result: the table, the JSON, the query); written as it is."""
    with reader_may_leave() as stream:
        stream.write(text + ("\n" if nl else ""))


def err(text: str) -> None:
    """Lines on stderr (messages, summaries, warnings), each made safe for a terminal and a CI log."""
    with reader_may_leave(err=True) as stream:
        for line in text.split("\n"):
            stream.write(safe_line(safe_text(line)) + "\n")


def warnings(items: Sequence[str], *, quiet: bool, verbose: bool, rest: str) -> None:
    """``warning: …`` lines on stderr: all of them with ``verbose``, else the first SHOWN_WARNINGS and
    how many more there are and where (``rest``: ``in out/recommendation.json``); none with ``quiet``."""
    if quiet or not items:
        return
    shown = list(items) if verbose else list(items[:SHOWN_WARNINGS])
    for item in shown:
        err(f"warning: {item}")
    hidden = len(items) - len(shown)
    if hidden:
        err(f"warning: … and {hidden:,} more {rest} (--verbose prints them all)")


def finish() -> None:
    """At exit: clear the progress line and flush both streams, so that a closed pipe is met here, not
    as "Exception ignored" at interpreter exit."""
    _status.clear()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            silence(stream)
        except (OSError, ValueError):
            pass


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Status:
    """One line on stderr rewritten in place (a terminal only); cleared before anything else is written."""

    def __init__(self) -> None:
        self.shown = False

    def show(self, text: str) -> None:
        width = max(shutil.get_terminal_size((80, 24)).columns - 1, 20)
        self._write(_CLEAR + safe_text(text)[:width])
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.shown = False
            self._write(_CLEAR)

    def _write(self, text: str) -> None:
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except BrokenPipeError:
            silence(sys.stderr)
            self.shown = False


_status = _Status()


class Progress:
    """The progress line of a command: phase (reading, edges, analysis, rendering …), files read of the
    total, records and records per second. Shown only when ``enabled`` (stderr is a terminal and not
    ``--quiet``); redrawn at most every 0.1 s within a phase."""

    def __init__(self, *, enabled: bool, after_reading: str = "analysis") -> None:
        self.enabled = enabled
        self.after_reading = after_reading  # the phase that follows reading (the reader says "done")
        self.phase = ""
        self.last = 0.0
        self.counts = ""

    @classmethod
    def on_terminal(cls, *, quiet: bool, after_reading: str = "analysis") -> Progress:
        return cls(enabled=not quiet and stderr_is_terminal(), after_reading=after_reading)

    def reading(self, progress: ReadProgress) -> None:
        """The readers' callback (per file and per block)."""
        if not self.enabled:
            return
        phase = self.after_reading if progress.phase == "done" else progress.phase
        now = time.monotonic()
        if phase == self.phase and now - self.last < _REDRAW_SECONDS:
            return
        rate = progress.records / progress.seconds if progress.seconds > 0 else 0.0
        self.counts = f"{progress.files_done}/{progress.files_total} files, {progress.records:,} records"
        if rate:
            self.counts += f", {rate:,.0f} records/s"
        self._show(phase, now)

    def enter(self, phase: str) -> None:
        """A phase of the command's own (rendering, writing)."""
        if self.enabled:
            self._show(phase, time.monotonic())

    def _show(self, phase: str, now: float) -> None:
        self.phase, self.last = phase, now
        _status.show(f"sgadvisor: {phase}" + (f": {self.counts}" if self.counts else " …"))

    def done(self) -> None:
        _status.clear()
