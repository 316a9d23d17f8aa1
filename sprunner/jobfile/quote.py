"""How an offending value is quoted in a job-file message (`got "pdf"`, `got a list`).

A leaf module shared by the schema checks, the template functions and the rendered-value
checks, so that none of them imports another for it.
"""

from __future__ import annotations

import json
from typing import Any


def got(value: Any) -> str:
    """How an offending value is quoted in a message."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    return "a list" if isinstance(value, list) else "a mapping"
