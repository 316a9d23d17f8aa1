"""Checks of a collection body `{name, requests}`: the request fields of SPEC §1, and JSON
that is too deep to be a request body.

Every problem is an `EngineError(422, ...)` naming where it is (`requests[3].url: ...`).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from sprunner.emulator.model import EngineError
from sprunner.util.canonical import canonical_json
from sprunner.util.schemafiles import request_enums

REQUEST_FIELDS = frozenset(
    {
        *("url", "format", "browser", "browser_type", "use_proxy", "screenshot", "actions"),
        *("language", "http_method", "headers", "cookies", "window_size", "extract"),
        *("network_capture", "retry_on_block", "block_resources", "block_requests", "custom_id"),
    }
)
_ENUMS = request_enums()  # read from the job-file schema: the enums are written once
_BOOLS = ("browser", "screenshot", "retry_on_block")
# No request of SPEC §1 nests deeper than a handful of levels; a body far deeper is hostile,
# and must be a 422, not a RecursionError (a 500 with a traceback) somewhere later.
MAX_JSON_DEPTH = 64


def parse_json(raw: bytes) -> Any:
    try:
        value = json.loads(raw)
    except RecursionError:
        raise EngineError(
            422, f"body is nested too deep (at most {MAX_JSON_DEPTH} levels)"
        ) from None
    except ValueError:
        raise EngineError(422, "body is not valid JSON") from None
    if _depth_over(value, MAX_JSON_DEPTH):
        raise EngineError(422, f"body is nested too deep (at most {MAX_JSON_DEPTH} levels)")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether `value` nests deeper than `limit`; iterative, so depth cannot hurt it."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


# An http(s) URL with a plain host name: what `urlsplit` would accept, told without it (a
# third of the emulator's CPU for a create of 50 requests). Anything else goes to `urlsplit`.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:[/?#]|\Z)")


def _absolute(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # "http://[x/": an unclosed IPv6 bracket is a 422, not a 500
        return False


def _check_request(index: int, request: Any) -> dict[str, Any]:
    where = f"requests[{index}]"
    if not isinstance(request, dict):
        raise EngineError(422, f"{where}: expected an object")
    unknown = sorted(set(request) - REQUEST_FIELDS)
    if unknown:
        raise EngineError(422, f"{where}: unknown field(s): {', '.join(unknown)}")
    url = request.get("url")
    if not (isinstance(url, str) and (_PLAIN_URL.match(url) or _absolute(url))):
        raise EngineError(422, f"{where}.url: an absolute http(s) URL is required")
    for key, allowed in _ENUMS.items():
        if key in request and request[key] not in allowed:
            raise EngineError(422, f"{where}.{key}: must be one of {', '.join(allowed)}")
    for key in _BOOLS:
        if key in request and not isinstance(request[key], bool):
            raise EngineError(422, f"{where}.{key}: must be a boolean")
    custom_id = request.get("custom_id")
    if custom_id is not None and (not isinstance(custom_id, str) or len(custom_id) > 255):
        raise EngineError(422, f"{where}.custom_id: a string of at most 255 characters")
    return request


def check_body(body: Any) -> tuple[str, list[dict[str, Any]], int]:
    """Validate `{name, requests}`; return the name, the distinct requests, duplicates dropped."""
    if not isinstance(body, dict):
        raise EngineError(422, "body must be a JSON object")
    unknown = sorted(set(body) - {"name", "requests"})
    if unknown:
        raise EngineError(422, f"unknown field(s): {', '.join(unknown)}")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EngineError(422, "name: a non-empty string is required")
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise EngineError(422, "requests: a list is required")
    distinct: dict[str, dict[str, Any]] = {}
    for index, request in enumerate(requests):
        checked = _check_request(index, request)
        distinct.setdefault(canonical_json(checked), checked)
    return name, list(distinct.values()), len(requests) - len(distinct)
