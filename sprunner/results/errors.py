"""Errors of the results stage, and the boundary where a dependency's errors become ours.

A missing optional dependency is a usage problem (exit 2, caught before anything is
sent); a destination that cannot be written fails the one collection (exit 1), and its
rows stay pending for the next apply.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Iterator
from pathlib import Path

from sprunner.errors import SprunnerError, UsageError

_OURS = str(Path(__file__).resolve().parents[1])  # the sprunner package


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


def raised_outside(error: BaseException) -> bool:
    """Whether `error` was raised by a dependency (botocore, s3fs, fsspec, pyarrow...)
    rather than by sprunner's own code: the innermost frame of its traceback says."""
    frames = traceback.extract_tb(error.__traceback__)
    where = str(Path(frames[-1].filename).resolve()) if frames else _OURS + os.sep
    return not where.startswith(_OURS + os.sep)


@contextlib.contextmanager
def io_boundary(what: str) -> Iterator[None]:
    """Where results meet a file system or an object store: an OSError, or any error a
    dependency raises (an unreachable endpoint, a refused credential, a Parquet writer's
    complaint), is a `ResultsError` naming `what`. An error of sprunner's own code
    goes through: it is a bug, and must show as one."""
    try:
        yield
    except SprunnerError:
        raise
    except OSError as e:
        raise ResultsError(f"cannot write {what}: {e}") from e
    except Exception as e:
        if not raised_outside(e):
            raise
        raise ResultsError(f"cannot write {what}: {type(e).__name__}: {e}") from e
