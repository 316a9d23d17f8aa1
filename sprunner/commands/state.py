"""`sprunner state export` / `sprunner state import`: move a state between backends.

Export reads the state (directory or database) without taking the apply lock, and prints
or writes the JSON document of `sprunner/state/export.py`. Import checks the whole
document first, then merges it in under the lock (the directory's OS lock; a database
import is one transaction). Neither needs the API key: fingerprints are copied as they are.
"""

from __future__ import annotations

from pathlib import Path

from sprunner.errors import EXIT_OK, UsageError
from sprunner.output.ui import Output
from sprunner.settings import GlobalOptions
from sprunner.state import opened
from sprunner.state.export import dumps, parse_document


def export(*, options: GlobalOptions, output: Output, to: Path | None) -> int:
    with opened(
        state_dir=options.state_dir,
        state_url=options.state_url,
        api_url=options.api_url,
        key=None,
        lock=False,
        persist=False,
    ) as store:
        text = dumps(store) + "\n"
    if to is None:
        output.out(text.rstrip("\n"))
    else:
        from sprunner.util.atomic import write_atomically

        try:
            write_atomically(to, text)
        except OSError as e:
            raise UsageError(f"cannot write {to}: {e}") from e
        output.info(f"state exported to {to}")
    return EXIT_OK


def import_(*, options: GlobalOptions, output: Output, source: Path) -> int:
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {source}: {e}") from e
    apis = parse_document(text, source=str(source))
    with opened(
        state_dir=options.state_dir,
        state_url=options.state_url,
        api_url=options.api_url,
        key=None,
    ) as store:
        store.restore(apis)
    count = sum(len(part.get("entries", {})) for part in apis.values())
    output.info(f"imported {count} collections from {source}")
    return EXIT_OK
