"""The one error hierarchy, and the one place that maps errors to exit codes (SPEC §3).

Every error a user can cause or meet is a `SprunnerError`; third-party exceptions are
wrapped where they enter (`raise JobFileError(...) from e`). Each class carries its exit
code (`exit_code`); subclasses elsewhere (the API errors) take theirs from the constants
here, so the numbers are written in this module only and this module imports nothing of
sprunner. `exit_code_for` maps any exception: a `SprunnerError` to its code, an interrupt
to 130, anything else (a bug) to 70.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import ClassVar, Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INVALID: Final = 2
EXIT_API_UNUSABLE: Final = 3
EXIT_LOCKED: Final = 4
EXIT_SIGINT: Final = 130
EXIT_SIGTERM: Final = 143
# A bug in sprunner (an unexpected exception): one line on stderr names the crash log.
EXIT_CRASH: Final = 70
# `plan --detailed-exitcode`: like terraform, 2 would clash with "invalid", so we use 10.
EXIT_CHANGES_PENDING: Final = 10


class SprunnerError(Exception):
    """Base of every error sprunner reports to a user (never with a traceback)."""

    exit_code: ClassVar[int] = EXIT_FAILED


class UsageError(SprunnerError):
    """A bad option or argument."""

    exit_code: ClassVar[int] = EXIT_INVALID


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

    exit_code: ClassVar[int] = EXIT_INVALID

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class LockHeldError(SprunnerError):
    """Another apply holds the lock on the state directory."""

    exit_code: ClassVar[int] = EXIT_LOCKED


class StateError(SprunnerError):
    """The state directory cannot be read or written."""


class StateDirectoryError(StateError):
    """The state directory cannot be created or locked, so the command stops before it
    has done or sent anything. Like a bad option, it is a problem of where and how the
    command was started (a folder the user cannot write, a `--state-dir` under a file, a
    container run as a uid that does not own the mounted folder): exit 2, not 1, which
    says that an apply ran and a collection is unhealthy."""

    exit_code: ClassVar[int] = EXIT_INVALID

    @classmethod
    def cannot(cls, verb: str, directory: object, error: OSError) -> StateDirectoryError:
        reason = error.strerror or str(error)
        if error.filename is not None and str(error.filename) != str(directory):
            reason += f" ({error.filename})"  # the lock file in it, say
        hint = permission_hint("--state-dir") if isinstance(error, PermissionError) else ""
        return cls(f"cannot {verb} the state directory {directory}: {reason}{hint}")


def permission_hint(option: str) -> str:
    """What to do about a folder this uid may not write. The usual cause is a container
    whose uid does not own the mounted folder."""
    return (
        f" (uid {os.getuid()} may not write there: run as the folder's owner, "
        f'e.g. docker run --user "$(id -u):$(id -g)", or pass {option})'
    )


class ReportError(SprunnerError):
    """A report (`--report`, `--junit`) cannot be written. Exit 1 when the command went
    well otherwise (a monitor that finds no fresh report must not read exit 0 either);
    the command's own code when it failed already (`report.write_reports`)."""

    @classmethod
    def cannot(cls, what: str, path: object, error: OSError) -> ReportError:
        reason = error.strerror or str(error)
        where = error.filename
        if where is not None and _folder(where) != _folder(path):
            reason += f" ({where})"  # a folder on the way, not the file's temporary beside it
        return cls(f"cannot write {what} {path}: {reason}")


def _folder(path: object) -> str:
    return os.path.dirname(os.path.abspath(os.fspath(str(path))))


class Interrupted(SprunnerError):
    """SIGINT or SIGTERM arrived; state and a partial report were saved."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name}: the state is saved and the next apply adopts "
            "the runs still in flight"
        )

    @property
    def signal_exit_code(self) -> int:
        return exit_code_for_signal(self.signum)


def exit_code_for_signal(signum: int) -> int:
    """130 for SIGINT, 143 for SIGTERM: what a command stopped by one exits with, having
    finished what it had to (an apply's state and report, the emulator's shutdown)."""
    return EXIT_SIGTERM if signum == signal.SIGTERM else EXIT_SIGINT


def exit_code_for(error: BaseException) -> int:
    """Map an exception to its documented exit code (SPEC §3)."""
    if isinstance(error, Interrupted):
        return error.signal_exit_code
    if isinstance(error, KeyboardInterrupt):
        return EXIT_SIGINT
    if isinstance(error, SprunnerError):
        return error.exit_code
    return EXIT_CRASH
