"""Writing a file atomically: readers see the old file or the new one, never half of one.

A leaf module shared by the state, the JSON report, the JUnit file, the metrics file, the
results files and the crash log.

Invariant: a durable replace is data fsync, rename, then an fsync of the directory that
holds the name. Without the last step a power cut may bring back the old name (a stale
report, a manifest that never appeared) although the rename had returned.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


def fsync_directory(directory: Path | str) -> None:
    """Make the names in `directory` (renames, creations, unlinks) survive a power cut.

    File systems that cannot fsync a directory (some network and FUSE mounts) say EINVAL:
    nothing more can be done there, so that is not an error."""
    descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # not supported there
            raise
    finally:
        os.close(descriptor)


def replace_durably(source: Path | str, target: Path | str) -> None:
    """`os.replace(source, target)`, then the target's directory fsynced (the caller has
    fsynced the file's data)."""
    os.replace(source, target)
    fsync_directory(Path(target).parent)


def write_atomically(path: Path, text: str | bytes, *, sync: bool = True) -> None:
    """Replace `path` with `text` so that readers see the old or the new file, never half.

    With `sync` (the default) the new file survives a power cut once this returns: its data
    and the directory entry are fsynced. Without it the rename is still atomic for readers,
    but a power cut may leave the old file or an empty one: only for files that are a
    convenience (a crash log), never for state, reports or metrics.
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
        if sync:
            replace_durably(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
