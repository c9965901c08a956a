"""Instants (ISO 8601 or epoch seconds) and durations (``7d``, ``36h``, ``15m``) from the command line."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sgadvisor.errors import UsageError

_DURATION_RE = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_instant(text: str, *, option: str) -> int:
    """Epoch seconds from ``1730419200`` or ``2026-11-01``/``2026-11-01T00:00:00Z`` (naive means UTC)."""
    value = text.strip()
    if re.fullmatch(r"\d+", value):
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is neither ISO 8601 nor epoch seconds",
            hint=f"e.g. {option} 2026-11-01T00:00:00Z or {option} 1793491200",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def parse_duration(text: str, *, option: str) -> int:
    """Seconds from ``7d``, ``36h``, ``90m``, ``1d12h`` or a bare number of seconds."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+", value):
        return int(value)
    parts = _DURATION_RE.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        raise UsageError(f"{option} {text!r} is not a duration", hint=f"e.g. {option} 7d, 36h or 90m")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def format_duration(seconds: int) -> str:
    """``2d3h``, ``45m``, ``30s``: the largest units first, as --max-gap and --min-window are written."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_instant(epoch: int) -> str:
    """ISO 8601 UTC with ``Z``, the one time format of every output."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20,
               "gib": 2**30, "tib": 2**40}  # fmt: skip


def parse_size(text: str, *, option: str) -> int:
    """Bytes from ``50GB``, ``1.5TiB``, ``200mb`` or a bare number."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise UsageError(f"{option} {text!r}: use a size such as 50GB, 500MiB or a number of bytes")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])
