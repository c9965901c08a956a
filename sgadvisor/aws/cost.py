"""``--max-bytes`` held on the bytes a run actually scans, not only on the estimate made before it starts.

A query service bills the bytes it scans (Logs Insights: ``statistics.bytesScanned``; Athena:
``Statistics.DataScannedInBytes``). The planning estimate can be far off — Insights' storedBytes is
compressed, and a result that comes back full is split and scanned again — so the limit is checked again
before every query the run submits, splits and retries included:

    budget = ScanBudget(max_bytes)
    budget.plan(estimate)                    # before anything runs: refused above the limit
    token = budget.reserve(estimate, label)  # before each query: refused if it could pass the limit
    ...                                      # the query runs
    budget.settle(token, bytes_scanned)      # its statistics, once it ended (release() if none came)

``reserve`` counts what completed queries scanned, plus the estimates of the queries still running (their
bytes are not known yet, and they scan all the same), plus the new query's estimate. Refused, it raises
:class:`CostLimitError` (exit 2), naming the bytes scanned so far, the estimate and the limit; the caller
stops the queries in flight. Without a limit it only keeps the account.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sgadvisor.errors import CostLimitError

_HINT = "shorten the window (--since or --start/--end), narrow the scope, or raise --max-bytes"


@dataclass
class ScanBudget:
    """The bytes a run may scan (``limit``; None: no limit) and what it scanned so far."""

    limit: int | None = None
    option: str = "--max-bytes"  # how the limit is named in messages
    scanned: int = 0  # bytes the ended queries reported
    _reserved: dict[int, int] = field(default_factory=dict, repr=False)
    _next: int = field(default=0, repr=False)

    @property
    def reserved(self) -> int:
        """Bytes the queries still running are expected to scan (their estimates)."""
        return sum(self._reserved.values())

    def plan(self, estimate: int, what: str = "the queries") -> None:
        """Refuse a run whose planning estimate is above the limit, before anything runs."""
        if self.limit is not None and estimate > self.limit:
            raise CostLimitError(
                f"{what} would scan about {estimate:,} bytes, above {self.option} {self.limit:,}", hint=_HINT
            )

    def reserve(self, estimate: int, label: str) -> int:
        """Admit one query expected to scan ``estimate`` bytes, or refuse it (CostLimitError) when the bytes
        scanned so far, those reserved by queries in flight and this estimate would pass the limit. Returns
        the token :meth:`settle`/:meth:`release` take."""
        estimate = max(int(estimate), 0)
        if self.limit is not None and self.scanned + self.reserved + estimate > self.limit:
            running = f" (and about {self.reserved:,} more by queries still running)" * bool(self._reserved)
            raise CostLimitError(
                f"{label}: {self.scanned:,} bytes scanned so far{running}; this query would scan about "
                f"{estimate:,} more, above {self.option} {self.limit:,}",
                hint=_HINT,
            )
        self._next += 1
        self._reserved[self._next] = estimate
        return self._next

    def settle(self, token: int, scanned: float | int | None) -> None:
        """The query of ``token`` ended having scanned ``scanned`` bytes (its statistics; None: unknown,
        then its estimate stands for it)."""
        estimate = self._reserved.pop(token, 0)
        self.scanned += int(scanned) if scanned is not None else estimate

    def release(self, token: int) -> None:
        """The query of ``token`` never ran (its start was refused or deferred): nothing to count."""
        self._reserved.pop(token, None)

    @property
    def exceeded(self) -> bool:
        """Whether the bytes scanned passed the limit (the estimates were low)."""
        return self.limit is not None and self.scanned > self.limit
