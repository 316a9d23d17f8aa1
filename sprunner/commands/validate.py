"""`sprunner validate`: parse, check the schema and render every job file; no network."""

from __future__ import annotations

from typing import Any

from sprunner.errors import EXIT_INVALID, JobFileError, Problem
from sprunner.output.ui import Output
from sprunner.settings import Selection


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "path": problem.path,
        "message": problem.message,
    }


def run(selection: Selection, *, output: Output, as_json: bool = False) -> int:
    """Exit 0 with a one-line summary, or raise JobFileError listing every problem.

    With `as_json` the result, problems included, is one JSON document on stdout (for
    editors and CI annotations) and invalid files give exit 2 without raising.
    """
    from sprunner.commands.common import load_jobs

    try:
        # Streamed: validate needs the requests' count, not the requests (load.py).
        loaded = load_jobs(selection, output, warn=not as_json, keep_requests=False)
    except JobFileError as error:
        if not as_json:
            raise
        document = {"ok": False, "errors": [_problem(p) for p in error.problems], "warnings": []}
        output.document(document)
        return EXIT_INVALID
    requests = sum(loaded.requests_in(c) for c in loaded.collections)
    from sprunner.results.gitignore import warnings as results_warnings

    ignored = results_warnings(loaded.collections)  # results folders git would take in
    for warning in () if as_json else ignored:
        output.warn(str(warning))
    if as_json:
        document = {
            "ok": True,
            "files": loaded.files,
            "collections": [
                {"name": c.name, "file": c.file, "requests": loaded.requests_in(c)}
                for c in loaded.collections
            ],
            "requests": requests,
            "errors": [],
            "warnings": [_problem(w) for w in (*loaded.warnings, *ignored)],
        }
        output.document(document)
        return 0
    if output.verbosity < 0:
        return 0  # -q: silence is success, as with any linter
    output.out(
        f"ok: {_plural(loaded.files, 'file')}, {_plural(len(loaded.collections), 'collection')}, "
        f"{_plural(requests, 'request')}"
    )
    return 0
