"""`sprunner render`: each collection's requests as they would be sent.

Always prints `shown_requests()`, so values that came from `env()` appear as "***".
Human output is a header per collection and one compact JSON request per line; `--json`
is one stable document: `{"collections": [{"name", "file", "tags", "requests"}]}`.
"""

from __future__ import annotations

import json

from sprunner.output.ui import Output
from sprunner.settings import Selection


def run(selection: Selection, *, output: Output, as_json: bool) -> int:
    from sprunner.commands.common import load_jobs

    loaded = load_jobs(selection, output)
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
        output.document(document)
        return 0
    for number, collection in enumerate(loaded.collections):
        if number:
            output.out("")
        count = len(collection.requests)
        tags = f" [{', '.join(collection.tags)}]" if collection.tags else ""
        output.out(
            f"# {collection.name}{tags} ({collection.file}): {count:,} "
            f"request{'' if count == 1 else 's'}"
        )
        for request in collection.shown_requests():
            output.out(json.dumps(request, separators=(", ", ": "), ensure_ascii=False))
    return 0
