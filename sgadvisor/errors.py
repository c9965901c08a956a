"""Domain errors: one clear message plus a hint, turned into exit code 2 only at the CLI boundary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sgadvisor.accounting import Issue


class SgAdvisorError(Exception):
    """An error the user can act on. ``hint`` says how to proceed."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(SgAdvisorError):
    """An input named on the command line cannot be read or has the wrong shape."""


class FlowFormatError(InputError):
    """A flow-log format (header or --log-format) is unusable."""


class TooManyMalformedError(InputError):
    """More malformed records than --max-malformed allows; carries the first locations."""

    def __init__(self, message: str, *, hint: str | None = None, issues: Sequence[Issue] = ()) -> None:
        super().__init__(message, hint=hint)
        self.issues = list(issues)


class MissingFlowDataError(InputError):
    """Parts of --flows could not be read (data known to be missing) and --allow-missing was not given."""

    def __init__(self, message: str, *, hint: str | None = None, issues: Sequence[Issue] = ()) -> None:
        super().__init__(message, hint=hint)
        self.issues = list(issues)


class UsageError(SgAdvisorError):
    """Options that contradict each other or cannot be parsed."""


class AwsError(SgAdvisorError):
    """An AWS call failed in a way retries did not fix (credentials, permissions, a missing resource)."""


class CostLimitError(SgAdvisorError):
    """A query would scan more than --max-bytes allows."""


class OutputError(SgAdvisorError):
    """An output could not be written (nothing was: outputs are all or nothing)."""
