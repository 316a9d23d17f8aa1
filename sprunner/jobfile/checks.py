"""Checks of rendered request values that the schema cannot see on the unexpanded text:
a rendered `url` must be an absolute http(s) URL with a host, a rendered `custom_id` at most
255 characters, and an enum field written as a template must render to an allowed value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sprunner.jobfile.quote import got
from sprunner.util.schemafiles import request_enums

_URL = re.compile(
    r"https?://(?:[^/?#@\s]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^/?#@\s:\[\]]+)(?::\d*)?(?:[/?#]\S*)?\Z",
    re.IGNORECASE,
)
MAX_CUSTOM_ID = 255


def url_problem(url: Any) -> str | None:
    if isinstance(url, str) and _URL.match(url):
        return None
    return f"expected an absolute http or https URL with a host, got {got(url)}"


def custom_id_problem(value: Any) -> str | None:
    if isinstance(value, str) and len(value) > MAX_CUSTOM_ID:
        return f"longer than {MAX_CUSTOM_ID} characters ({len(value)}) after rendering"
    return None


CHECKS = {"url": url_problem, "custom_id": custom_id_problem}

# Enum fields written as templates pass the schema (it sees the template's text, see
# schema.validate_document); what they render to is checked here instead.
# (Read from the schema: one source for the validator, these checks and the emulator.)
RENDERED_ENUMS = request_enums()


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in allowed:
            return None
        words = ", ".join(allowed[:-1]) + " or " + allowed[-1]
        return f"expected {words} after rendering, got {got(value)}"

    return check


RENDERED_CHECKS = {**CHECKS, **{k: _one_of(v) for k, v in RENDERED_ENUMS.items()}}
