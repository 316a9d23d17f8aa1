"""The JSON document of `sprunner state export` and `sprunner state import`.

It moves a state between a directory and a database (either way), whole: every API URL,
entry, applied digest list and per-collection value. It holds no secret and needs no key:
fingerprints and digests are copied as they are (keyed, `hashing.py`), so an apply with the
same API key after an import finds them equal and sends no PUT.

    {"format": "sprunner-state", "version": 1,
     "apis": {api_url: {"entries": {name: entry},
                        "applied": {name: {"key_id": str, "digests": [str]}},
                        "blobs": {name: {kind: value}}}}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sprunner.errors import UsageError
from sprunner.state.model import entry_from_json
from sprunner.state.store import StateStore

FORMAT = "sprunner-state"
EXPORT_VERSION = 1


def export_document(store: StateStore) -> dict[str, Any]:
    return {"format": FORMAT, "version": EXPORT_VERSION, "apis": store.dump()}


def dumps(store: StateStore) -> str:
    return json.dumps(export_document(store), indent=1, sort_keys=True, ensure_ascii=False)


def parse_document(text: str, *, source: str) -> Mapping[str, Any]:
    """The `apis` of an export document, checked whole before anything is imported."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{source}: not JSON: {e}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsageError(f"{source}: not a sprunner state export (no format {FORMAT!r})")
    if document.get("version") != EXPORT_VERSION:
        raise UsageError(
            f"{source}: export version {document.get('version')!r} is not {EXPORT_VERSION}"
        )
    apis = document.get("apis")
    if not isinstance(apis, dict):
        raise UsageError(f"{source}: apis: expected an object")
    for api_url, part in apis.items():
        _check_part(part, where=f"{source}: apis[{api_url!r}]")
    return apis


def _check_part(part: Any, *, where: str) -> None:
    if not isinstance(part, dict):
        raise UsageError(f"{where}: expected an object")
    for section in ("entries", "applied", "blobs"):
        if not isinstance(part.get(section, {}), dict):
            raise UsageError(f"{where}.{section}: expected an object")
    for name, value in part.get("entries", {}).items():
        try:
            entry_from_json(value)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UsageError(f"{where}.entries[{name!r}]: invalid entry ({e!r})") from None
    for name, applied in part.get("applied", {}).items():
        ok = isinstance(applied, dict) and isinstance(applied.get("key_id"), str)
        if not ok or not all(isinstance(d, str) for d in applied.get("digests", None) or [1]):
            raise UsageError(f"{where}.applied[{name!r}]: expected key_id and digests")
    for name, kinds in part.get("blobs", {}).items():
        if not isinstance(kinds, dict):
            raise UsageError(f"{where}.blobs[{name!r}]: expected an object")
