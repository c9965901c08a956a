"""The accounting of query-log records: ``records = used + malformed + Σ filtered``, with where each bad
record was (the first MAX_ISSUES places kept, the rest counted), as for flow-log records (DESIGN §5).

Facts about a whole file (skipped, unreadable, empty, damaged) are listed ahead of line issues and never
crowded out by them; line 0 means the file as a whole (DnsIssue has no "no line")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sgadvisor.accounting import MAX_ISSUES
from sgadvisor.models import DnsAccounting, DnsIssue

OUTSIDE_WINDOW = "outside the window"
WHOLE_FILE = 0


@dataclass
class DnsTally:
    records: int = 0
    used: int = 0
    malformed: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    issues: list[DnsIssue] = field(default_factory=list)
    issues_omitted: int = 0
    file_issues: list[DnsIssue] = field(default_factory=list)

    def add_used(self) -> None:
        self.records += 1
        self.used += 1

    def add_filtered(self, reason: str, count: int = 1) -> None:
        self.records += count
        self.filtered[reason] += count

    def add_malformed(self, file: str, line: int, reason: str) -> None:
        self.records += 1
        self.malformed += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(DnsIssue(file=file, line=line, reason=reason))
        else:
            self.issues_omitted += 1

    def add_damage(self, file: str, line: int, reason: str) -> None:
        """A damaged file counts one malformed record (the cut line, or the unreadable rest), listed
        with the file facts at the line where the readable part ends."""
        self.records += 1
        self.malformed += 1
        self.note_file(file, reason, line)

    def note_file(self, file: str, reason: str, line: int = WHOLE_FILE) -> None:
        """A fact about a whole file, or about where its readable part ends: always listed."""
        self.file_issues.append(DnsIssue(file=file, line=line, reason=reason))

    def freeze(self) -> DnsAccounting:
        room = max(MAX_ISSUES - len(self.file_issues), 0)
        kept = self.issues[:room]
        return DnsAccounting(
            records=self.records,
            used=self.used,
            malformed=self.malformed,
            filtered=dict(sorted(self.filtered.items())),
            issues=[*self.file_issues, *kept],
            issues_omitted=self.issues_omitted + len(self.issues) - len(kept),
        )
