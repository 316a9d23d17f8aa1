"""The one entry point of the job-file stage: paths → desired collections, or every problem.

``load()`` reads all files, validates all of them, expands all collections and only then
raises one ``JobFileError`` with every problem found, so a CI run shows the whole list at
once. ``--select`` and ``--shard`` are applied last: a bad file fails the run even when
none of its collections is selected, because the files are applied together.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sprunner.errors import JobFileError, Problem, UsageError
from sprunner.jobfile.model import DesiredCollection
from sprunner.jobfile.parallel import read_files
from sprunner.jobfile.reader import FileRead, FileReader, JobFile, Where
from sprunner.jobfile.selection import select, shard
from sprunner.settings import Selection

__all__ = ["JobFile", "Loaded", "discover", "load"]

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Loaded:
    collections: tuple[DesiredCollection, ...]  # selected and in this shard, in file order
    warnings: tuple[Problem, ...]
    files: int = 0
    # Every collection name of every loaded file, selected or not: one left out by
    # --select or --shard is still declared, so it is never a --prune candidate.
    declared: frozenset[str] = frozenset()
    # With `load(..., keep_requests=False)` (validate): each collection's request count,
    # by name, since its requests were dropped once checked.
    counts: Mapping[str, int] | None = None

    def requests_in(self, collection: DesiredCollection) -> int:
        if self.counts is None:
            return len(collection.requests)
        return self.counts[collection.name]


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """A folder, or a symlink to one; a symlink loop is not (it is refused when read)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _walk(top: Path, tree: Path, problems: list[Problem]) -> list[Path]:
    """Job files under `top`, sorted as paths; symlinked folders followed inside `tree`.

    A symlinked folder that leads outside the tree is an error, never skipped: its files
    would otherwise vanish from the apply (and `--prune` would delete their collections).
    A folder reached twice (a loop, or two links to one folder) is walked once.
    """
    found: list[Path] = []
    walked = {os.path.realpath(top)}

    def walk(folder: Path) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            problems.append(Problem(str(folder), None, None, "", f"cannot list: {e.strerror}"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if _is_dir(entry):
                real = os.path.realpath(entry.path)
                if entry.is_symlink() and not Path(real).is_relative_to(tree):
                    message = (
                        f"a symlinked folder that leads outside the job-file tree {tree} "
                        f"(to {real}): move it inside, or name it as a path of its own"
                    )
                    problems.append(Problem(entry.path, None, None, "", message))
                elif real not in walked:
                    walked.add(real)
                    walk(Path(entry.path))
            elif entry.name.endswith(_SUFFIXES):
                found.append(Path(entry.path))  # FIFOs, devices, loops: refused when read

    walk(top)
    return found


def discover(paths: Sequence[Path]) -> list[JobFile]:
    """Job files under `paths`: files as given, directories recursively, sorted.

    Hidden folders and files are skipped (.git, .sprunner, editor backups). Raises
    JobFileError when a symlinked folder leads outside its tree.
    """
    found: list[JobFile] = []
    seen: set[str] = set()
    problems: list[Problem] = []
    for given in paths:
        if given.is_dir():
            tree = Path(os.path.realpath(given))
            candidates = [(f, tree) for f in _walk(given, tree, problems)]
        elif os.path.lexists(given):  # not a regular file? load_yaml says what it is
            candidates = [(given, Path(os.path.realpath(given)).parent)]
        else:
            raise UsageError(f"no such file or directory: {given}")
        for path, tree in candidates:
            real = os.path.realpath(path)  # never raises, even on a symlink loop
            if real not in seen:
                seen.add(real)
                found.append(JobFile(path, str(path), tree, Path(real).parent))
    if problems:
        raise JobFileError(problems)
    if not found:
        raise UsageError(f"no job files (*.yaml, *.yml) in {', '.join(map(str, paths))}")
    return found


class _Merger:
    """File reads merged in file order, with the checks that span files."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.names: dict[str, Where] = {}  # name -> where it was first defined
        self.folded: dict[str, tuple[str, Where]] = {}  # casefolded name -> first (name, where)
        self.collections: list[DesiredCollection] = []
        self.counts: dict[str, int] = {}  # requests by collection

    def add(self, read: FileRead) -> None:
        self.problems += read.problems
        for collection in read.collections:
            self._check_name(collection.name, collection.where)
            self.problems += collection.problems
            self.warnings += collection.warnings
            if collection.collection is not None:
                self.collections.append(collection.collection)
                self.counts[collection.name] = collection.count

    def _check_name(self, name: str, here: Where) -> None:
        """A name is unique across all the files applied together (SPEC §2)."""
        first = self.names.get(name)
        if first is not None:
            duplicate = f"duplicate collection name {name!r} (also at {first.at()})"
            self.problems.append(here.problem(duplicate))
        else:
            self.names[name] = here
            self._check_case(name, here)

    def _check_case(self, name: str, here: Where) -> None:
        """Warn on names equal but for case: easy to confuse, and a service may fold case."""
        first_name, first = self.folded.setdefault(name.casefold(), (name, here))
        if first_name != name:
            message = (
                f"collection name {name!r} differs from {first_name!r} ({first.at()}) only by "
                "case: they are two collections"
            )
            self.warnings.append(here.problem(message))


def load(selection: Selection, *, keep_requests: bool = True, workers: int | None = None) -> Loaded:
    """Every selected collection, fully rendered; raises JobFileError with all problems.

    `keep_requests=False` (validate) streams: each file's collections are checked in full,
    then their requests are dropped and only counted, so memory stays that of the largest
    collection rather than of every request (5,000,000 requests: about 1.8 GB otherwise);
    a long one goes on in `workers` processes (default: one per core; parallel.py).
    """
    jobs = discover(selection.paths)
    merged = _Merger()
    # Expansion allocates up to millions of small acyclic dicts; the cyclic collector would
    # rescan all of them again and again (a third of the run time) for nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        if keep_requests:  # the requests come back: read here (pickling them costs more)
            reader = FileReader(selection.max_requests)
            for job in jobs:
                merged.add(reader.read(job))
        else:
            for read in read_files(jobs, selection.max_requests, workers=workers):
                merged.add(read)
    finally:
        if collecting:
            gc.enable()
    if merged.problems:
        raise JobFileError(merged.problems)
    chosen = shard(select(merged.collections, selection.select), selection.shard)
    declared = frozenset(c.name for c in merged.collections)
    return Loaded(
        chosen,
        tuple(merged.warnings),
        files=len(jobs),
        declared=declared,
        counts=None if keep_requests else merged.counts,
    )
