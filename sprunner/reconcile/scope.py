"""Which collections `--prune` may delete: those whose declaring file lies under the paths of
this apply (SPEC §4, §10 "Prune is scoped").

The state records each collection's declaring file in one form, `where(file)`: relative
to the working directory when it lies under it (so that hosts that check the job files out
in different places, sharing one PostgreSQL state, agree), else absolute; normalised
(`./a/../b/x.yaml` is `b/x.yaml`). The paths of an apply take the same form, and a file
lies under a path when it is that path or inside it, by whole path components.

The safe rule for a collection without a recorded file (recorded by an older sprunner,
before files were recorded): it is never a prune candidate, and `plan` says nothing about
it, since any folder may declare it. An apply of the folder that declares it records its
file (`lifecycle.declared`); one removed from every file before that is deleted by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def where(path: str | Path) -> str:
    """The form a declaring file (or an apply's path) is recorded and compared in."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    chosen = absolute if relative == ".." or relative.startswith(".." + os.sep) else relative
    return Path(chosen).as_posix()


def covers(paths: Iterable[str], file: str | None) -> bool:
    """Whether `file` (recorded by `where`) lies under one of `paths` (also `where`'s)."""
    if file is None:
        return False
    for path in paths:
        if path == "." and not os.path.isabs(file):
            return True
        if file == path or file.startswith(path.rstrip("/") + "/"):
            return True
    return False
