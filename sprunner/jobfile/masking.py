"""Which rendered values carry an env() secret, and how each is shown: taint, not search.

Searching output for the raw env() value cannot work: a value that went through
``urlencode``, ``trim``, ``upper``, ``replace``, JSON escaping or concatenation no longer
contains it, and a one-character secret would match everywhere. Instead every collection
that called env() is rendered twice (expand.py): once for real, once with env() yielding
"***" (and loop values made with env() masked too). A rendered string that differs between
the two renders was made with a secret; its display form is the masked render. The pairs
(rendered value -> masked form) travel with the collection, so any layer can show a value
the API echoes back (a failed job's URL, matched to its request by `jobfile.identify`)
without ever holding a list of raw secrets.

Invariant: the masked render never sees a secret, so no display form can contain one.
Pure functions, no I/O, standard library only (imported by the frozen model).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

SECRET_MASK = "***"
# `"***" | urlencode` is "%2A%2A%2A": show it as the mask the user knows.
_ENCODED_MASK = re.compile(r"%2A%2A%2A", re.IGNORECASE)


def tidy(shown: str) -> str:
    """A masked form as shown: URL-encoded masks read "***" again."""
    return _ENCODED_MASK.sub(SECRET_MASK, shown) if "%" in shown else shown


def _pairs(real: Any, shown: Any, out: dict[str, str]) -> None:
    if isinstance(real, str):
        if real != shown:
            out.setdefault(real, tidy(shown) if isinstance(shown, str) else SECRET_MASK)
    elif isinstance(real, dict):
        for key, value in real.items():
            other = shown.get(key, SECRET_MASK) if isinstance(shown, dict) else SECRET_MASK
            _pairs(value, other, out)
    elif isinstance(real, list):
        same_shape = isinstance(shown, list) and len(shown) == len(real)
        for i, value in enumerate(real):
            _pairs(value, shown[i] if same_shape else SECRET_MASK, out)


def secret_pairs(real: Iterable[Any], shown: Iterable[Any]) -> dict[str, str]:
    """Every string of the real requests that differs in the masked ones -> its masked form.

    A field whose masked render failed is shown as "***" whole (a mapping included): every
    string inside it is then secret-bearing.
    """
    out: dict[str, str] = {}
    for one, other in zip(real, shown, strict=True):
        _pairs(one, other, out)
    return out


def tidy_display(value: Any) -> Any:
    """A masked request with URL-encoded masks shown as "***"."""
    if isinstance(value, str):
        return tidy(value)
    if isinstance(value, dict):
        return {k: tidy_display(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tidy_display(v) for v in value]
    return value
