"""Destinations: a local directory, or any fsspec URL (s3://, gs://, memory://, file://).

fsspec is imported here only, lazily; a protocol whose implementation is an optional
dependency fails with `MissingExtraError` naming the extra to install, never with an
ImportError traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sprunner.results.errors import MissingExtraError, ResultsError

# Which extra (pyproject's optional-dependencies) and package implement which protocol.
EXTRAS = {
    "s3": ("s3", "s3fs"),
    "s3a": ("s3", "s3fs"),
    "gs": ("gcs", "gcsfs"),
    "gcs": ("gcs", "gcsfs"),
    "abfs": ("azure", "adlfs"),
    "az": ("azure", "adlfs"),
}


@dataclass(frozen=True)
class Destination:
    """A resolved `to`: the fsspec filesystem and the path inside it.

    `local` is true for plain directories and file:// URLs: those get a `.part` file
    renamed in place; every other filesystem gets one upload of a local spool.
    """

    fs: Any
    path: str
    local: bool


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def resolve(url: str, storage_options: Mapping[str, Any] | None = None) -> Destination:
    """The filesystem and path of `url`; MissingExtraError if its extra is not installed."""
    protocol = protocol_of(url)
    if protocol in EXTRAS:
        extra, package = EXTRAS[protocol]
        try:
            importlib.import_module(package)
        except ImportError as e:
            raise MissingExtraError(f"results to {protocol}://", extra) from e
    try:
        import fsspec
        from fsspec.implementations.local import LocalFileSystem
    except ImportError as e:  # fsspec is a core dependency; a broken install still reads well
        raise MissingExtraError("writing results", "fsspec") from e
    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as e:
        raise ResultsError(f"results to {protocol}:// need a package fsspec names: {e}") from e
    except ValueError as e:
        raise ResultsError(f"cannot write results to {url!r}: {e}") from e
    return Destination(fs=fs, path=path, local=isinstance(fs, LocalFileSystem))


def check_destination(url: str, format: str) -> None:
    """Fail early (before any API call) when `url` or `format` needs a missing extra."""
    resolve(url)
    if format == "parquet":
        require_pyarrow()


def require_pyarrow() -> None:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("the parquet format", "parquet") from e
