"""How an AWS run ends when it must: a whole-run deadline (``--timeout``) and SIGTERM.

One :class:`Deadline` per run bounds everything that talks to AWS. It is enforced in two places only:

* every botocore client made by :func:`sgadvisor.aws.clients.make_client` is watched (:meth:`Deadline.watch`):
  no request is sent after the deadline, botocore's own retry loop (throttling, 5xx, connection errors)
  retries near the deadline only when the backoff drawn ends before it, and stops at once otherwise
  instead of sleeping through it; connect/read timeouts are capped by the deadline;
* the Insights runner checks it between polls and never sleeps past it (a query stuck in ``Running``, a
  concurrency slot that never frees, polls throttled for ever).

Either way :class:`TimeoutExceeded` (exit 2) says what was being waited for and for how long, after the
runner has stopped every query in flight (StopQuery, exempt from the deadline). The clock starts with the
run's first AWS client. :func:`aws_run`, from the main thread only, turns SIGTERM (what a CI timeout
sends) into the same clean stop as Ctrl-C: queries in flight are stopped, nothing is written, exit 2 with
one line (:class:`RunStopped`).
"""

from __future__ import annotations

import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sgadvisor.errors import AwsError

# botocore's standard retry mode sleeps rand(0,1) * min(2 ** (attempt - 1), 20) seconds after a throttling
# error (less after other errors): the longest the next retry may wait.
_MAX_BACKOFF = 20.0
_CLEANUP_OPERATIONS = frozenset({"StopQuery", "StopQueryExecution"})  # sent after the deadline, once each


class TimeoutExceeded(AwsError):
    """The whole-run ``--timeout`` passed (exit 2); the queries in flight have been stopped."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            hint="raise --timeout, or narrow the run (--since, --vpc/--group/--eni, --log-group); "
            "throttling that never ends usually means other jobs share the account's Insights quota",
        )
        self.stopped_queries: list[str] = []

    def add_stopped(self, labels: Sequence[str]) -> None:
        if labels:
            self.stopped_queries += labels
            self.message += f"; stopped {_queries(len(self.stopped_queries))} in flight (StopQuery)"


class Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler. A BaseException, like KeyboardInterrupt, so no
    ``except Exception`` on the way (botocore, urllib3, the runner's own) can swallow it."""

    def __init__(self) -> None:
        super().__init__("SIGTERM")
        self.stopped_queries: list[str] = []

    def add_stopped(self, labels: Sequence[str]) -> None:
        self.stopped_queries += labels


class RunStopped(AwsError):
    """What :class:`Terminated` becomes once the run has cleaned up: one line, exit 2."""


def note_stopped(error: BaseException, labels: Sequence[str]) -> None:
    """Tell a stopping error which queries were stopped on its way out (for its message)."""
    if isinstance(error, TimeoutExceeded | Terminated):
        error.add_stopped(labels)


class Deadline:
    """The time an AWS run may take: ``seconds`` (None or 0: no limit) from the first AWS client made
    (:meth:`watch`), so that local work before it (a baseline to parse) does not count; one per run.

    ``option`` is how the user wrote it (``3s``, ``30m``), for messages. :meth:`stop_now` ends it at once
    (SIGTERM), so that cleanup calls are not retried either."""

    def __init__(
        self, seconds: float | None = None, *, option: str = "", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds or None
        self.option = option or (f"{seconds:g}s" if seconds else "")
        self.clock = clock
        self.random = random.random
        self.started: float | None = None
        self.stopped = False

    def __repr__(self) -> str:
        return f"Deadline({self.seconds!r}, option={self.option!r})"

    @property
    def limited(self) -> bool:
        return self.seconds is not None

    def start(self) -> None:
        """Start the clock, unless it runs already."""
        if self.started is None:
            self.started = self.clock()

    def stop_now(self) -> None:
        self.stopped = True

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def remaining(self) -> float:
        if self.stopped:
            return 0.0
        return math.inf if self.seconds is None else self.seconds - self.elapsed()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def cap(self, seconds: float) -> float:
        """``seconds`` or less: a timeout or a sleep that must not outlast the deadline."""
        return seconds if self.seconds is None else max(1.0, min(seconds, self.seconds))

    def check(self, waiting_for: Callable[[], str]) -> None:
        """Raise :class:`TimeoutExceeded` once the deadline has passed, saying what was being waited for."""
        if self.limited and not self.stopped and self.expired():
            raise self.exceeded(f" reached after {self.elapsed():.1f} s while {waiting_for()}")

    def exceeded(self, what: str) -> TimeoutExceeded:
        return TimeoutExceeded(f"--timeout {self.option}{what}")

    # ---------------------------------------------------------------------------------- botocore

    def watch(self, client: Any, max_attempts: int) -> None:
        """Bound every request of a botocore client by this deadline (see the module docstring)."""
        from botocore.retries.standard import RetryEventAdapter, StandardRetryConditions

        self.start()
        conditions = StandardRetryConditions(max_attempts=max_attempts)
        adapter = RetryEventAdapter()
        service = client.meta.service_model.service_id.hyphenize()

        # The last retried failure per operation: a deadline met while botocore waits to retry says why.
        failures: dict[str, str] = {}

        def before_send(event_name: str = "", **kwargs: Any) -> None:
            operation = event_name.rsplit(".", 1)[-1]
            if self.limited and operation not in _CLEANUP_OPERATIONS and self.expired() and not self.stopped:
                again = f" again (it had failed: {failures[operation]})" if operation in failures else ""
                raise self.exceeded(
                    f" reached after {self.elapsed():.1f} s before {operation} was sent{again}"
                )

        def needs_retry(**kwargs: Any) -> float | bool | None:
            operation = kwargs["operation"].name
            attempts = int(kwargs["attempts"])
            if not conditions.is_retryable(adapter.create_retry_context(**kwargs)):
                failures.pop(operation, None)
                return None  # success, or an error botocore will not retry: not ours to judge
            failures[operation] = f"{_failure(kwargs)}, {attempts} time{'s' if attempts > 1 else ''}"
            if self.stopped or (operation in _CLEANUP_OPERATIONS and self.expired()):
                return False  # stopping: one attempt per cleanup call, no backoff
            remaining = self.remaining()
            longest = min(2.0 ** (attempts - 1), _MAX_BACKOFF)
            if remaining > longest:
                return None  # botocore's own backoff ends before the deadline, whatever it draws
            # Near the deadline: draw the backoff here, as botocore would, and retry only if the retry
            # comes before the deadline; otherwise stop now rather than sleep through it.
            delay = self.random() * longest
            if delay < remaining:
                return delay
            raise self.exceeded(
                f": stopped after {self.elapsed():.1f} s: {operation} failed {attempts} "
                f"time{'s' if attempts > 1 else ''} ({_failure(kwargs)}) and its next retry would come "
                f"after the deadline ({max(remaining, 0):.1f} s left)"
            )

        # Registered first on the service's own node, before botocore's retry handler, so that the answer
        # above (a delay, or False: no retry) is the first botocore reads.
        client.meta.events.register_first(
            f"needs-retry.{service}", needs_retry, unique_id=f"sgadvisor-deadline-retry-{service}"
        )
        client.meta.events.register_first(
            "before-send", before_send, unique_id=f"sgadvisor-deadline-send-{service}"
        )


def _failure(kwargs: dict[str, Any]) -> str:
    error = kwargs.get("caught_exception")
    if error is not None:
        return type(error).__name__
    response = kwargs.get("response")
    if response is not None:
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code")
        return str(code or f"HTTP {getattr(http, 'status_code', '?')}")
    return "no response"


def _queries(count: int) -> str:
    return f"{count} Logs Insights quer{'y' if count == 1 else 'ies'}"


@contextmanager
def aws_run(deadline: Deadline, *, active: bool = True) -> Iterator[None]:
    """The AWS part of a command: in the main thread, SIGTERM is handled like Ctrl-C (the runner stops the
    queries in flight) and ends in :class:`RunStopped`; the previous handler is restored afterwards.
    ``active`` False (an offline run): nothing is installed."""
    if not active:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread: the deadline still holds
        return
    began = time.monotonic()
    received = False

    def on_sigterm(signum: int, frame: Any) -> None:
        nonlocal received
        if received:
            return  # already stopping: let the StopQuery calls finish
        received = True
        deadline.stop_now()
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except Terminated as stop:
        count = len(stop.stopped_queries)
        cancelled = (
            f"stopped {_queries(count)} in flight (StopQuery)"
            if count
            else "no Logs Insights query was running"
        )
        raise RunStopped(
            f"stopped by SIGTERM after {time.monotonic() - began:.1f} s; {cancelled}; nothing was written"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
