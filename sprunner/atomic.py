"""Writing a file atomically: readers see the old file or the new one, never half of one.

A leaf module shared by the state directory, the JSON report, the JUnit file and the crash
log.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str | bytes, *, sync: bool = True) -> None:
    """Replace `path` with `text` so that readers see the old or the new file, never half.

    Without `sync` the rename is still atomic for readers, but a power cut may leave the
    old file or an empty one: only for files that are a convenience, never for state.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes 0600 files; reports are meant to be read by CI and colleagues.
        os.fchmod(fd, 0o644)
        data = text.encode("utf-8") if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
