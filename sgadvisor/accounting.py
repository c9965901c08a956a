"""Input accounting: every record read is used, coverage evidence, malformed, or filtered with a reason.

The equation ``records = used + nodata + skipdata + malformed + Σ filtered`` is an invariant the output
carries (DESIGN §5), so a reader can never lose a record silently: whatever it does not use, it counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

MAX_ISSUES = 100


class Issue(BaseModel):
    """One place in the input that was skipped or damaged: file, 1-based line (when known), why."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int | None = None
    reason: str


class InputAccounting(BaseModel):
    """The ``input_accounting`` object of recommendation.json."""

    model_config = ConfigDict(frozen=True)

    records: int = 0
    used: int = 0
    nodata: int = 0
    skipdata: int = 0
    malformed: int = 0
    filtered: dict[str, int] = {}
    issues: list[Issue] = []
    issues_omitted: int = 0

    @property
    def balanced(self) -> bool:
        return self.records == (
            self.used + self.nodata + self.skipdata + self.malformed + sum(self.filtered.values())
        )

    @property
    def malformed_fraction(self) -> float:
        return self.malformed / self.records if self.records else 0.0


@dataclass
class Ledger:
    """The mutable tally readers write into while streaming; frozen into InputAccounting at the end."""

    records: int = 0
    used: int = 0
    nodata: int = 0
    skipdata: int = 0
    malformed: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    issues: list[Issue] = field(default_factory=list)
    issues_omitted: int = 0
    file_issues: list[Issue] = field(default_factory=list)
    skipped_files: list[Issue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # not about a record: e.g. an ambiguous inference
    unreadable: list[Issue] = field(default_factory=list)  # parts of the input that could not be read

    def note(self, file: str, line: int | None, reason: str) -> None:
        """Remember where a record went wrong; the first MAX_ISSUES are kept, the rest counted."""
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(Issue(file=file, line=line, reason=reason))
        else:
            self.issues_omitted += 1

    def note_file(self, file: str, reason: str, line: int | None = None) -> None:
        """A fact about a whole file (skipped, empty, damaged): always listed, ahead of line issues."""
        self.file_issues.append(Issue(file=file, line=line, reason=reason))

    def add_malformed(self, file: str, line: int | None, reason: str) -> None:
        self.records += 1
        self.malformed += 1
        self.note(file, line, reason)

    def add_used(self, count: int) -> None:
        self.records += count
        self.used += count

    def add_coverage(self, nodata: int, skipdata: int) -> None:
        self.records += nodata + skipdata
        self.nodata += nodata
        self.skipdata += skipdata

    def add_filtered(self, reason: str, count: int) -> None:
        if count:
            self.records += count
            self.filtered[reason] += count

    def reclassify_used(self, reason: str, count: int) -> None:
        """Records counted as used that turned out unusable late (e.g. direction undecidable)."""
        self.used -= count
        self.filtered[reason] += count

    def skip_file(self, file: str, reason: str) -> None:
        """A file met while walking a directory that is not a flow log: listed, not fatal."""
        self.skipped_files.append(Issue(file=file, line=None, reason=reason))
        self.note_file(file, reason)

    def note_unreadable(self, file: str, reason: str) -> None:
        """A file or folder of the input that could not be read (permissions, a dangling or looping
        symlink, an I/O error): data known to be missing. Listed like a skipped file."""
        self.unreadable.append(Issue(file=file, line=None, reason=reason))
        self.skip_file(file, f"skipped, unreadable: {reason}")

    def merge(self, other: Ledger) -> None:
        self.records += other.records
        self.used += other.used
        self.nodata += other.nodata
        self.skipdata += other.skipdata
        self.malformed += other.malformed
        self.filtered.update(other.filtered)
        for issue in other.issues:
            self.note(issue.file, issue.line, issue.reason)
        self.issues_omitted += other.issues_omitted
        self.file_issues.extend(other.file_issues)
        self.skipped_files.extend(other.skipped_files)
        self.unreadable.extend(other.unreadable)
        self.warnings.extend(other.warnings)

    def freeze(self) -> InputAccounting:
        room = max(MAX_ISSUES - len(self.file_issues), 0)
        issues = [*self.file_issues, *self.issues[:room]]
        omitted = self.issues_omitted + len(self.issues) - len(self.issues[:room])
        return InputAccounting(
            records=self.records,
            used=self.used,
            nodata=self.nodata,
            skipdata=self.skipdata,
            malformed=self.malformed,
            filtered=dict(sorted(self.filtered.items())),
            issues=issues,
            issues_omitted=omitted,
        )
