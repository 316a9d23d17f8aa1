"""Results written into a git checkout: `validate` says so before they get committed.

A relative `results.to` lands beside the job file (SPEC §2), and job files usually live in
a git work tree. For each local destination inside a work tree whose ignore rules do not
cover it, a warning names the line to add to the work tree's `.gitignore`. `git
check-ignore` decides, so every rule git itself reads counts (nested `.gitignore`s,
`.git/info/exclude`, the global excludes file). Without git, or outside a work tree,
nothing is said. No network, and nothing is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from sprunner.errors import Problem
from sprunner.jobfile.model import DesiredCollection

_TIMEOUT = 10.0  # seconds: a git on a hung network mount must not hang validate


def _git(git: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            [git, "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def _existing(path: Path) -> Path | None:
    """The nearest folder of `path` (itself or a parent) that exists: git runs there."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return None


def line_to_ignore(folder: Path) -> tuple[Path, str] | None:
    """(work tree, line for its .gitignore) when `folder` is in a git work tree that does
    not ignore it; None when it is ignored, not in a work tree, or git is not there."""
    git = shutil.which("git")
    start = _existing(folder)
    if git is None or start is None:
        return None
    top = _git(git, start, "rev-parse", "--show-toplevel")
    if top is None or top.returncode != 0 or not top.stdout.strip():
        return None
    root = Path(top.stdout.strip())
    try:
        relative = Path(os.path.realpath(folder)).relative_to(os.path.realpath(root))
    except ValueError:
        return None
    if relative == Path("."):
        return None  # the work tree itself: nothing sensible to ignore
    pattern = relative.as_posix() + "/"
    ignored = _git(git, root, "check-ignore", "-q", "--no-index", pattern)
    if ignored is None or ignored.returncode != 1:  # 0: ignored; 128: git could not say
        return None
    return root, "/" + pattern


def warnings(collections: Iterable[DesiredCollection]) -> list[Problem]:
    """One warning per local results folder that a `git add` would take in."""
    found: list[Problem] = []
    seen: set[str] = set()
    for collection in collections:
        spec = collection.results
        if spec is None or spec.is_url or spec.to in seen:
            continue
        seen.add(spec.to)
        missing = line_to_ignore(Path(spec.to))
        if missing is None:
            continue
        root, line = missing
        found.append(
            Problem(
                collection.file,
                collection.line,
                None,
                "results.to",
                f"collection {collection.name!r} writes its results to {spec.to}, inside the "
                f"git work tree {root} and not ignored: add the line `{line}` to "
                f"{root / '.gitignore'}",
            )
        )
    return found
