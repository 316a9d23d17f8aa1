"""Reading one job file: its YAML, its schema, then each collection's policy and requests.

A `FileReader` knows nothing of the other files. What it reads is a `FileRead`: the file's
own problems and, per collection, its problems, warnings and `DesiredCollection`. The checks
across files (unique names, names equal but for case) are load.py's, made while the reads
are merged in file order; so files may be read in worker processes (parallel.py) and merged
exactly as if they had been read one after the other.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sprunner.errors import Problem
from sprunner.jobfile.expand import CollectionExpander, Expansion
from sprunner.jobfile.model import DesiredCollection, RunPolicy
from sprunner.jobfile.policy import parse_policy, parse_results
from sprunner.jobfile.schema import locate, validate_document
from sprunner.jobfile.templates import SECRET_MASK, DocPath, Functions, TemplateCompiler, plain
from sprunner.jobfile.yamlload import PMap, format_path, load_yaml


@dataclass(frozen=True)
class JobFile:
    path: Path  # to open
    display: str  # as the user named it, for messages and the report
    root: Path  # the job-file tree lines() may read from (resolved)
    base: Path | None = None  # the resolved folder of the file, where lines() starts


@dataclass(frozen=True)
class Where:
    """Where a collection's name is written; a Problem is made only when one is needed
    (a Problem per collection was a noticeable share of loading 100,000 of them)."""

    file: str
    mark: tuple[int, int] | None
    collection: DocPath

    def at(self) -> str:
        return f"{self.file}:{self.mark[0]}" if self.mark else self.file

    def problem(self, message: str) -> Problem:
        line, col = self.mark if self.mark else (None, None)
        return Problem(self.file, line, col, format_path((*self.collection, "name")), message)


@dataclass
class CollectionRead:
    name: str
    where: Where
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    collection: DesiredCollection | None = None  # None when it has problems
    count: int = 0  # its requests, also when they were not kept


@dataclass
class FileRead:
    problems: list[Problem]  # of the file as a whole (YAML, schema): then no collections
    collections: list[CollectionRead]


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


class FileReader:
    """Reads files one by one; `keep_requests=False` (validate) keeps only their count."""

    def __init__(self, cap: int, *, keep_requests: bool = True) -> None:
        self.cap = cap
        self.keep_requests = keep_requests
        self.compiler = TemplateCompiler()
        self.lines_cache: dict[Path, tuple[str, ...]] = {}

    def read(self, job: JobFile) -> FileRead:
        root, problems = load_yaml(job.path, job.display)
        if root is not None and not problems:  # a bad tag or key would only cascade
            problems = validate_document(root, job.display)
        if root is None or problems:
            return FileRead(problems, [])  # expanding it would only add noise
        file_vars = plain(root.get("vars") or {})
        defaults = root.get("defaults") or {}
        return FileRead(
            [],
            [
                self.collection(job, root, ("collections", index), spec, file_vars, defaults)
                for index, spec in enumerate(root["collections"])
            ],
        )

    def collection(
        self,
        job: JobFile,
        root: PMap,
        path: DocPath,
        spec: PMap,
        file_vars: dict[str, Any],
        defaults: dict[str, Any],
    ) -> CollectionRead:
        name: str = spec["name"]
        read = CollectionRead(name, Where(job.display, spec.value_marks.get("name"), path))

        def report(at: DocPath, message: str) -> Problem:
            return problem_at(root, job.display, at, message)

        policy, read.problems = parse_policy(
            spec.get("run"), lambda key, m: report((*path, "run", key), m)
        )

        def functions(masked: bool) -> Functions:
            return Functions(
                base_dir=job.base or _real_folder(job.path),
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
        if expander.problems:
            read.problems += masked(expander.problems, secrets)
        if expansion is None:
            return read
        if expansion.warnings:
            read.warnings += masked(list(expansion.warnings), secrets)
        read.count = len(expansion.requests)
        if not expansion.requests:
            empty = f"collection {name!r} has no requests after expansion; it will not be run"
            read.warnings.append(report(path, empty))
        # validate streams: the requests are counted, then dropped (kept: False).
        read.collection = _desired(job, spec, policy, expansion, kept=self.keep_requests)
        return read


def _desired(
    job: JobFile, spec: PMap, policy: RunPolicy, expansion: Expansion, *, kept: bool
) -> DesiredCollection:
    results = spec.get("results")
    return DesiredCollection(
        name=spec["name"],
        file=job.display,
        line=spec.mark[0],
        tags=tuple(spec.get("tags") or ()),
        requests=expansion.requests if kept else (),
        run=policy,
        results=None
        if results is None
        else parse_results(results, os.path.dirname(job.path) or "."),
        secrets=expansion.secrets,
        display_requests=expansion.display if kept else None,
        masked=expansion.masked,
    )


@functools.lru_cache(maxsize=1024)
def _real_folder(path: Path) -> Path:
    """The resolved folder of a job file: once per file, not once per collection."""
    return Path(os.path.realpath(path)).parent
