"""The one canonical JSON of sprunner: keys sorted, no blanks, text kept as UTF-8.

The bytes of `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`:
fingerprints, request digests and idempotency keys already stored depend on them. A leaf
module: the job files, the state and the emulator (its duplicate check) use it.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Sequence
from typing import Any

# Made once: `json.dumps` with options builds a new encoder at every call, and this runs
# for every request of every collection.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _c_encoder() -> Callable[[Any, int], Sequence[str]] | None:
    """`_CANONICAL`'s C encoder, made once: `encode` makes one per call, which was most of
    its cost for a request (2.7 µs of 3.7), and this runs three times for every request of
    every collection (duplicates, fingerprint, digests). Without cycle markers: a cycle is
    a RecursionError here, which `canonical_json` hands to `encode` to say it as always."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encoder: Callable[[Any, int], Sequence[str]] = make(
            None,
            _CANONICAL.default,
            json.encoder.encode_basestring,
            None,
            ":",
            ",",
            True,
            False,
            True,
        )
    except TypeError:  # another Python's signature: the general road
        return None
    return encoder


_C_ENCODE = _c_encoder()


def canonical_json(value: Any) -> str:
    """`value` as canonical JSON (see the module's docstring)."""
    if _C_ENCODE is not None and type(value) is dict:
        try:
            return "".join(_C_ENCODE(value, 0))
        except RecursionError:
            pass
    return _CANONICAL.encode(value)
