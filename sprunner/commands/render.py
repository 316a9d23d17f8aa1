"""`sprunner render`: each collection's requests as they would be sent.

Always prints `shown_requests()`, so values that came from `env()` appear as "***".
Human output is a header per collection and one compact JSON request per line; `--json`
is one stable document: `{"collections": [{"name", "file", "tags", "requests"}]}`.
"""

from __future__ import annotations

import json

from sprunner import ui
from sprunner.settings import GlobalOptions, Selection


def run(selection: Selection, *, options: GlobalOptions, as_json: bool) -> int:
    from sprunner.jobfile.load import load

    loaded = load(selection)
    for collection in loaded.collections:
        ui.add_secrets(collection.secrets)
    for warning in loaded.warnings:
        ui.warn(str(warning))
    if as_json:
        document = {
            "collections": [
                {
                    "name": c.name,
                    "file": c.file,
                    "tags": list(c.tags),
                    "requests": list(c.shown_requests()),
                }
                for c in loaded.collections
            ]
        }
        ui.out(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    for number, collection in enumerate(loaded.collections):
        if number:
            ui.out("")
        count = len(collection.requests)
        tags = f" [{', '.join(collection.tags)}]" if collection.tags else ""
        ui.out(
            f"# {collection.name}{tags} ({collection.file}): {count:,} "
            f"request{'' if count == 1 else 's'}"
        )
        for request in collection.shown_requests():
            ui.out(json.dumps(request, separators=(", ", ": "), ensure_ascii=False))
    return 0
