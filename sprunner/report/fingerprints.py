"""Keyed fingerprints of rendered requests: how a report names the request of a failed job.

A report shows a failed job's URL as sprunner shows it (an env() value as `***`), so two
requests that differ only by a secret look alike there, and an API may echo a URL changed:
neither can say which request failed. Each failed job of a report therefore carries
`request`, the fingerprint of the rendered request it is (`jobfile.identify` finds it):

    <key id>:<HMAC-SHA256(report key, canonical JSON of the request)[:32 hex]>
    report key = HMAC-SHA256(API key, "sprunner report v1")
    key id     = HMAC-SHA256(report key, "key id")[:12 hex]

as the state's hashes (`state/hashing.py`), under a label of its own. Without the API key
no secret can be recovered from it, nor guessed by hashing candidates; under the same key
the same request has the same fingerprint at every apply. `sprunner retry REPORT`
fingerprints the requests of the job files again and matches exactly; a fingerprint made
under another key is told by its key id, never compared.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sprunner.util.canonical import canonical_json

LABEL = b"sprunner report v1"
KEY_ID_LENGTH = 12
DIGEST_LENGTH = 32


@dataclass(frozen=True)
class RequestFingerprints:
    """The fingerprint of a rendered request under one API key. Never shows its key."""

    key: bytes = field(repr=False)

    @classmethod
    def from_api_key(cls, api_key: str) -> RequestFingerprints:
        return cls(hmac.new(api_key.encode("utf-8"), LABEL, hashlib.sha256).digest())

    @cached_property
    def key_id(self) -> str:
        return hmac.new(self.key, b"key id", hashlib.sha256).hexdigest()[:KEY_ID_LENGTH]

    def of(self, request: Mapping[str, Any]) -> str:
        mac = hmac.new(self.key, canonical_json(request).encode("utf-8"), hashlib.sha256)
        return f"{self.key_id}:{mac.hexdigest()[:DIGEST_LENGTH]}"

    def owns(self, fingerprint: str) -> bool:
        """Whether `fingerprint` was made under this key."""
        return fingerprint.startswith(self.key_id + ":")
