"""`sprunner validate`: parse, check the schema and render every job file; no network."""

from __future__ import annotations

from sprunner import ui
from sprunner.settings import GlobalOptions, Selection


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def run(selection: Selection, *, options: GlobalOptions) -> int:
    """Exit 0 with a one-line summary, or raise JobFileError listing every problem."""
    from sprunner.jobfile.load import load

    loaded = load(selection)
    for collection in loaded.collections:
        ui.add_secrets(collection.secrets)
    for warning in loaded.warnings:
        ui.warn(str(warning))
    requests = sum(len(c.requests) for c in loaded.collections)
    ui.out(
        f"ok: {_plural(loaded.files, 'file')}, {_plural(len(loaded.collections), 'collection')}, "
        f"{_plural(requests, 'request')}"
    )
    return 0
