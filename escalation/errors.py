"""The error hierarchy: everything the library raises on purpose derives from
:class:`EscalationError`, and each subclass also derives from the builtin a
caller would naturally catch (``ValueError``, ``RuntimeError``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BackendUnavailableError",
    "EscalationError",
    "EvaluationError",
    "ExperimentError",
    "JournalError",
    "MaskingError",
    "MissingExtraError",
    "PolicyError",
    "PolicyIssue",
    "RecordError",
    "RecordIssue",
    "UsageError",
]


class EscalationError(Exception):
    """Root of every error raised by ``escalation``."""


@dataclass(frozen=True, order=True)
class PolicyIssue:
    """One problem found in a policy or rule-pack file, with its location.

    Ordered by (path, line, column, code) so that collected issues print
    sorted, as ``path:line:col: code: message``.
    """

    path: str
    line: int
    column: int
    code: str
    message: str = field(compare=False)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.code}: {self.message}"


class PolicyError(EscalationError, ValueError):
    """A policy (or an included rule pack) is invalid.

    Carries every issue found, sorted by location; ``file``, ``line`` and
    ``column`` are those of the first one.
    """

    def __init__(self, issues: list[PolicyIssue]) -> None:
        if not issues:
            raise ValueError("PolicyError needs at least one issue")
        self.issues: tuple[PolicyIssue, ...] = tuple(sorted(set(issues)))
        first = self.issues[0]
        self.file = first.path
        self.line = first.line
        self.column = first.column
        self.code = first.code
        super().__init__("\n".join(str(issue) for issue in self.issues))


@dataclass(frozen=True)
class RecordIssue:
    """One problem in an account record: the field path and what is wrong."""

    field: str
    message: str
    code: str = "invalid-record"

    def __str__(self) -> str:
        where = self.field or "(record)"
        return f"{where}: {self.message}"


class RecordError(EscalationError, ValueError):
    """An account record failed validation.

    ``issues`` names every bad field; ``account_id`` is set when the record
    carried a readable id; ``source``/``row`` locate it in a portfolio file.
    """

    def __init__(
        self,
        issues: list[RecordIssue],
        *,
        account_id: str | None = None,
        source: str | None = None,
        row: int | None = None,
    ) -> None:
        if not issues:
            raise ValueError("RecordError needs at least one issue")
        self.issues = tuple(issues)
        self.account_id = account_id
        self.source = source
        self.row = row
        where = ""
        if source is not None:
            where = f"{source}:{row}: " if row is not None else f"{source}: "
        who = f"account `{account_id}`: " if account_id else ""
        super().__init__(where + who + "; ".join(str(i) for i in self.issues))


class EvaluationError(EscalationError, RuntimeError):
    """A valid record could not be evaluated (for example a division by zero in
    a condition). Never turned into a more severe action: the caller gets this
    error, and a batch gets an error row."""


class BackendUnavailableError(EscalationError, RuntimeError):
    """The requested evaluator backend cannot run here (for example ``rete``
    on Python >= 3.13, where durable-rules does not import)."""


class UsageError(EscalationError, ValueError):
    """The library was called wrongly (for example a naive ``now``)."""


class MissingExtraError(BackendUnavailableError, ImportError):
    """A feature needs an optional extra that is not installed; the message
    names it (``pip install 'escalation[portfolio]'``)."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class JournalError(EscalationError, RuntimeError):
    """The journal cannot be opened, read or written (a decision that cannot
    be journaled is not returned: fail closed)."""


class MaskingError(EscalationError, ValueError):
    """A masking configuration is invalid, or a masked path holds a value
    that cannot be masked (only text can)."""


class ExperimentError(PolicyError):
    """A champion/challenger experiment file is invalid (every issue, located
    as ``path:line:col: code: message``), or its two policies cannot serve one
    portfolio together."""
