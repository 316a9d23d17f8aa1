"""The one entry point of the job-file stage: paths → desired collections, or every problem.

``load()`` reads all files, validates all of them, expands all collections and only then
raises one ``JobFileError`` with every problem found, so a CI run shows the whole list at
once. ``--select`` and ``--shard`` are applied last: a bad file fails the run even when
none of its collections is selected, because the files are applied together.
"""

from __future__ import annotations

import dataclasses
import gc
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sprunner.errors import JobFileError, Problem, UsageError
from sprunner.jobfile.expand import CollectionExpander
from sprunner.jobfile.model import DesiredCollection
from sprunner.jobfile.policy import parse_policy, parse_results
from sprunner.jobfile.schema import locate, validate_document
from sprunner.jobfile.templates import SECRET_MASK, DocPath, Functions, TemplateCompiler, plain
from sprunner.jobfile.yamlload import PMap, format_path, load_yaml
from sprunner.select import select, shard
from sprunner.settings import Selection

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Loaded:
    collections: tuple[DesiredCollection, ...]  # selected and in this shard, in file order
    warnings: tuple[Problem, ...]
    files: int = 0
    # Every collection name of every loaded file, selected or not: one left out by
    # --select or --shard is still declared, so it is never a --prune candidate.
    declared: frozenset[str] = frozenset()


@dataclass(frozen=True)
class JobFile:
    path: Path  # to open
    display: str  # as the user named it, for messages and the report
    root: Path  # the job-file tree lines() may read from (resolved)
    base: Path | None = None  # the resolved folder of the file, where lines() starts


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


def problem_at(root: PMap, display: str, path: DocPath, message: str) -> Problem:
    mark = locate(root, path)
    line, col = mark if mark else (None, None)
    return Problem(display, line, col, format_path(path), message)


def masked(problems: list[Problem], secrets: Iterable[str]) -> list[Problem]:
    """`problems` with every env() value replaced by "***".

    A message often quotes the value it complains about (a URL, a foreach value), and that
    value may hold an env() secret. Quotes are cut after 56 characters (`schema.got`), so a
    secret may also appear cut short just before the `..."` that marks the cut.
    """
    ordered = sorted((s for s in secrets if s), key=len, reverse=True)
    if not ordered:
        return problems

    def mask(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, SECRET_MASK)
            for end in range(len(secret) - 1, 0, -1):
                text = text.replace(f'{secret[:end]}..."', f'{SECRET_MASK}..."')
        return text

    return [replace(p, path=mask(p.path), message=mask(p.message)) for p in problems]


class _Loader:
    def __init__(self, selection: Selection) -> None:
        self.cap = selection.max_requests
        self.compiler = TemplateCompiler()
        self.lines_cache: dict[Path, tuple[str, ...]] = {}
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.names: dict[str, Problem] = {}  # name -> where it was first defined
        self.folded: dict[str, tuple[str, Problem]] = {}  # casefolded name -> first (name, where)
        self.collections: list[DesiredCollection] = []

    def file(self, job: JobFile) -> None:
        root, problems = load_yaml(job.path, job.display)
        if root is not None and not problems:  # a bad tag or key would only cascade
            problems = validate_document(root, job.display)
        self.problems += problems
        if root is None or problems:
            return  # expanding a file with schema problems would only add noise
        file_vars = plain(root.get("vars") or {})
        defaults = root.get("defaults") or {}
        for index, collection in enumerate(root["collections"]):
            self.collection(job, root, ("collections", index), collection, file_vars, defaults)

    def collection(
        self,
        job: JobFile,
        root: PMap,
        path: DocPath,
        spec: PMap,
        file_vars: dict[str, Any],
        defaults: dict[str, Any],
    ) -> None:
        name: str = spec["name"]

        def report(at: DocPath, message: str) -> Problem:
            return problem_at(root, job.display, at, message)

        self._check_name(name, report((*path, "name"), ""))
        policy, problems = parse_policy(
            spec.get("run"), lambda key, m: report((*path, "run", key), m)
        )
        self.problems += problems

        def functions(masked: bool) -> Functions:
            return Functions(
                base_dir=job.base or Path(os.path.realpath(job.path)).parent,
                root=job.root,
                masked=masked,
                cache=self.lines_cache,
            )

        expander = CollectionExpander(
            name=name,
            path=path,
            compiler=self.compiler,
            functions=functions,
            variables={**file_vars, **plain(spec.get("vars") or {})},
            report=report,
        )
        requests = [((*path, "requests", i), r) for i, r in enumerate(spec["requests"])]
        expansion = expander.expand(requests, defaults, self.cap)
        secrets = expander.functions.secrets
        self.problems += masked(expander.problems, secrets)
        if expansion is None:
            return
        self.warnings += masked(list(expansion.warnings), secrets)
        if not expansion.requests:
            empty = f"collection {name!r} has no requests after expansion; it will not be run"
            self.warnings.append(report(path, empty))
        self.collections.append(
            DesiredCollection(
                name=name,
                file=job.display,
                line=spec.mark[0],
                tags=tuple(spec.get("tags") or ()),
                requests=expansion.requests,
                run=policy,
                results=parse_results(spec.get("results"), os.path.dirname(job.path) or "."),
                secrets=expansion.secrets,
                display_requests=expansion.display,
                masked=expansion.masked,
            )
        )

    def _check_name(self, name: str, here: Problem) -> None:
        """A name is unique across all the files applied together (SPEC §2)."""
        if name in self.names:
            first = self.names[name]
            where = f"{first.file}:{first.line}" if first.line else first.file
            duplicate = f"duplicate collection name {name!r} (also at {where})"
            self.problems.append(dataclasses.replace(here, message=duplicate))
        else:
            self.names[name] = here
            self._check_case(name, here)

    def _check_case(self, name: str, here: Problem) -> None:
        """Warn on names equal but for case: easy to confuse, and a service may fold case."""
        first_name, first = self.folded.setdefault(name.casefold(), (name, here))
        if first_name != name:
            where = f"{first.file}:{first.line}" if first.line else first.file
            message = (
                f"collection name {name!r} differs from {first_name!r} ({where}) only by "
                "case: they are two collections"
            )
            self.warnings.append(replace(here, message=message))


def load(selection: Selection) -> Loaded:
    """Every selected collection, fully rendered; raises JobFileError with all problems."""
    jobs = discover(selection.paths)
    loader = _Loader(selection)
    # Expansion allocates up to millions of small acyclic dicts; the cyclic collector would
    # rescan all of them again and again (a third of the run time) for nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for job in jobs:
            loader.file(job)
    finally:
        if collecting:
            gc.enable()
    if loader.problems:
        raise JobFileError(loader.problems)
    chosen = shard(select(loader.collections, selection.select), selection.shard)
    declared = frozenset(c.name for c in loader.collections)
    return Loaded(chosen, tuple(loader.warnings), files=len(jobs), declared=declared)
