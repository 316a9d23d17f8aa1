"""Shell completion of `--select`: collection names and `tag:NAME` from the job files.

Completion runs on every TAB, so it must be fast and must never fail: it reads the YAML of
the paths given on the command line so far (else the default `jobfiles/` tree) with the
plain safe loader, without the schema or the templates, takes `collections[].name` and
`collections[].tags` where they are plain strings, and gives up quietly on anything else
(an unreadable or invalid file adds nothing). Names are templates only in theory: a name
with `{{` is left out rather than rendered.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MAX_FILES = 2000  # a huge tree is cut short rather than make TAB hang
MAX_BYTES = 5_000_000  # files above this are skipped (huge generated job files)


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    count = 0
    for path in paths:
        if path.is_file():
            candidates: Iterable[Path] = [path]
        elif path.is_dir():
            candidates = sorted(
                Path(root) / name
                for root, dirs, names in os.walk(path)
                for name in names
                if not any(part.startswith(".") for part in Path(root).relative_to(path).parts)
            )
        else:
            continue
        for candidate in candidates:
            if candidate.suffix in (".yaml", ".yml"):
                count += 1
                if count > MAX_FILES:
                    return
                yield candidate


def _collections(path: Path) -> list[Any]:
    import yaml

    try:
        if path.stat().st_size > MAX_BYTES:
            return []
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:  # completion never fails: a broken file adds nothing
        return []
    if not isinstance(document, dict) or not isinstance(document.get("collections"), list):
        return []
    return [c for c in document["collections"] if isinstance(c, dict)]


def choices(paths: Iterable[Path]) -> list[str]:
    """Every collection name and `tag:NAME` declared under `paths`, sorted, once each."""
    found: set[str] = set()
    for path in _files(paths):
        for collection in _collections(path):
            name = collection.get("name")
            if isinstance(name, str) and "{{" not in name:
                found.add(name)
            tags = collection.get("tags")
            if isinstance(tags, list):
                found.update(f"tag:{t}" for t in tags if isinstance(t, str))
    return sorted(found)


# Options whose next word is their value, not a job-file path.
_VALUED = {
    "--api-url", "--api-key-file", "--state-dir", "--state-url", "--log-format", "--select",
    "-s", "--shard", "--max-requests", "--report", "--junit", "--max-credits", "--parallel",
    "--max-rps", "--metrics", "--ping", "--runs",
}  # fmt: skip


def _typed_paths(words: str) -> list[Path]:
    """The job-file paths on the command line being completed. click's parser stops at the
    `--select` that waits for its value and leaves the arguments unparsed, so they are read
    from the words the shell hands over (`COMP_WORDS`, set by every shell click supports)."""
    import shlex

    try:
        tokens = shlex.split(words)
    except ValueError:
        tokens = words.split()
    found = []
    for previous, token in itertools.pairwise(tokens):
        if previous in _VALUED or token.startswith("-"):
            continue
        path = Path(token)
        if path.is_dir() or (path.suffix in (".yaml", ".yml") and path.is_file()):
            found.append(path)
    return found


def complete_selection(ctx: Any, _param: Any, incomplete: str) -> list[Any]:
    """click's `shell_complete` for `--select`."""
    from click.shell_completion import CompletionItem

    try:
        given = [Path(p) for p in (ctx.params or {}).get("paths") or ()]
        given = given or _typed_paths(os.environ.get("COMP_WORDS", ""))
        paths = given or [Path("jobfiles")]
        return [CompletionItem(c) for c in choices(paths) if c.startswith(incomplete)]
    except Exception:  # never a traceback in the user's shell
        return []
