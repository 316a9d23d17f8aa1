"""The JSON Schemas shipped in the package, and what other modules read from them.

A leaf module: the job-file schema is the one source of the request enums (`format`,
`browser_type`, `window_size`), which the validator, the rendered-value checks and the
emulator all need; reading them here keeps them written once.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

# The request fields whose allowed values are an enum in the schema.
ENUM_FIELDS = ("format", "browser_type", "window_size")


def schema_text(which: str = "jobfile") -> str:
    """The text of a packaged schema (`jobfile` or `report`)."""
    return resources.files("sprunner").joinpath(f"schemas/{which}.schema.json").read_text("utf-8")


@functools.cache
def request_enums() -> dict[str, tuple[str, ...]]:
    """Each enum field of a request and its allowed values, in the schema's order."""
    schema: dict[str, Any] = json.loads(schema_text("jobfile"))
    request = schema["properties"]["collections"]["items"]["properties"]["requests"]["items"]
    return {name: tuple(request["properties"][name]["enum"]) for name in ENUM_FIELDS}
