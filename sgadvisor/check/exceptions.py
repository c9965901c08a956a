"""The config file's ``[[allow]]`` and ``[[pin]]`` tables as the check uses them.

``[[allow]]`` approves drift: a finding of its group whose rule is the allowed rule (or, for a flow, that
the allowed rule permits) is kept in the report as suppressed, with the reason, and does not fail the
build. ``[[pin]]`` keeps a baseline rule that rare traffic needs from being reported unused. Both expire:
from the day after ``expires`` an exception is reported and no longer applies, so approvals cannot
silently outlive their reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sgadvisor.config import RuleException
from sgadvisor.errors import UsageError
from sgadvisor.rules import RuleKey, describe_rule


@dataclass(frozen=True)
class Exceptions:
    allows: list[tuple[RuleException, RuleKey]] = field(default_factory=list)
    expired_allows: list[tuple[RuleException, RuleKey]] = field(default_factory=list)
    pins: dict[tuple[str, RuleKey], RuleException] = field(default_factory=dict)
    expired_pins: dict[tuple[str, RuleKey], RuleException] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def sort_exceptions(
    allows: Sequence[RuleException], pins: Sequence[RuleException], today: date
) -> Exceptions:
    """Split the tables into active and expired ones; a rule that is not one is a usage error."""
    out = Exceptions()
    for table, entries in (("allow", allows), ("pin", pins)):
        for entry in entries:
            try:
                key = entry.key()
            except ValueError as exc:
                raise UsageError(
                    f"config [[{table}]] for {entry.group}: {exc}",
                    hint="ip_protocol is tcp, udp, icmp, icmpv6, -1 or a number; CIDRs like 10.0.0.0/24",
                ) from None
            expired = entry.expires is not None and entry.expires < today
            if expired:
                out.warnings.append(
                    f"[[{table}]] for {entry.group} ({describe_rule(entry)}) expired on {entry.expires}: "
                    f"it no longer {'suppresses findings' if table == 'allow' else 'keeps the rule'}"
                    f" (reason was: {entry.reason})"
                )
            if table == "allow":
                (out.expired_allows if expired else out.allows).append((entry, key))
            else:
                (out.expired_pins if expired else out.pins)[(entry.group, key)] = entry
    return out
