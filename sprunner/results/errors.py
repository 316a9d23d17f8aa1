"""Errors of the results stage.

A missing optional dependency is a usage problem (exit 2, caught before anything is
sent); a destination that cannot be written fails the one collection (exit 1).
"""

from __future__ import annotations

from sprunner.errors import SprunnerError, UsageError


class ResultsError(SprunnerError):
    """Results could not be written to their destination."""


class MissingExtraError(UsageError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, what: str, extra: str) -> None:
        self.extra = extra
        super().__init__(f"{what} needs the {extra!r} extra: pip install 'sprunner[{extra}]'")


class ResumeImpossibleError(ResultsError):
    """The partial file of an interrupted drain is gone or shorter than recorded.

    The caller starts the file again from the first job: re-reading costs calls, never
    a duplicate or a missing line.
    """
