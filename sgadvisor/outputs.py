"""Atomic output files: all or nothing, so a failed run never leaves half a report behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sgadvisor.errors import OutputError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_writer(path: Path, *, executable: bool = False) -> Iterator[IO[str]]:
    """Write to a temporary file beside ``path`` and rename it into place only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod((0o777 if executable else 0o666) & ~_umask())  # mkstemp makes 0600; use the usual modes
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, *, executable: bool = False) -> None:
    with atomic_writer(path, executable=executable) as handle:
        handle.write(text)


def write_files(files: Mapping[Path, str], executable: Collection[Path] = ()) -> list[Path]:
    """Write every file beside its target, then rename them all into place: all or nothing. A failure
    while writing (a directory where a file should be, a full disk) leaves no output behind and is an
    OutputError (exit 2), never a traceback."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((Path(name), path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            Path(name).chmod((0o777 if path in executable else 0o666) & ~_umask())
        for path in files:
            if path.is_dir():
                raise IsADirectoryError(21, "is a directory", str(path))
        for tmp, path in staged:
            tmp.replace(path)
    except OSError as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        where = exc.filename or "an output file"
        raise OutputError(
            f"cannot write {where}: {exc.strerror or exc}", hint="nothing was written"
        ) from None
    except BaseException:  # a bug, Ctrl-C: still no output and no temporary file left behind
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    return list(files)
