"""The one error hierarchy, and the one place that maps errors to exit codes (SPEC §3).

Every error a user can cause or meet is a `SprunnerError`; third-party exceptions are
wrapped where they enter (`raise JobFileError(...) from e`). `exit_code_for` is the only
function that knows the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INVALID: Final = 2
EXIT_API_UNUSABLE: Final = 3
EXIT_LOCKED: Final = 4
EXIT_SIGINT: Final = 130
EXIT_SIGTERM: Final = 143
# `plan --detailed-exitcode`: like terraform, 2 would clash with "invalid", so we use 10.
EXIT_CHANGES_PENDING: Final = 10


class SprunnerError(Exception):
    """Base of every error sprunner reports to a user (never with a traceback)."""


class UsageError(SprunnerError):
    """A bad option or argument."""


@dataclass(frozen=True)
class Problem:
    """One problem in a job file, located as precisely as we know."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class JobFileError(SprunnerError):
    """One or more invalid job files; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class LockHeldError(SprunnerError):
    """Another apply holds the lock on the state directory."""


class StateError(SprunnerError):
    """The state directory cannot be read or written."""


class Interrupted(SprunnerError):
    """SIGINT or SIGTERM arrived; state and a partial report were saved."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name}: the state is saved and the next apply adopts "
            "the runs still in flight"
        )


def exit_code_for(error: BaseException) -> int:
    """Map an error to its documented exit code (SPEC §3)."""
    import signal

    # Imported here so that `sprunner --version` does not pay for the API package.
    from sprunner.api.errors import ApiUnusableError

    if isinstance(error, Interrupted):
        return EXIT_SIGTERM if error.signum == signal.SIGTERM else EXIT_SIGINT
    if isinstance(error, KeyboardInterrupt):
        return EXIT_SIGINT
    if isinstance(error, LockHeldError):
        return EXIT_LOCKED
    if isinstance(error, ApiUnusableError):
        return EXIT_API_UNUSABLE
    if isinstance(error, (JobFileError, UsageError)):
        return EXIT_INVALID
    return EXIT_FAILED
