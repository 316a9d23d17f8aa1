"""Keyed one-way hashes for everything the state stores about request content.

An unsalted sha256 of a request is a brute-force oracle: a short secret in a header or a
URL is recovered by hashing guesses. So every fingerprint and request digest the state
keeps is an HMAC-SHA256 under a key derived from the API key, and the key is never
written anywhere: without the API key, the stored values cannot be reproduced, so they
tell nothing about the content.

Derivation: `state_key = HMAC-SHA256(api_key, "sprunner state v2")`. A short public
`key_id` (an HMAC of a constant under that key) prefixes each collection fingerprint, so a
fingerprint made under another key (or unkeyed, by state version 1) is recognised and
treated as unknown, never compared.

This is the one keyed function: `reconcile/plan.py` compares and `reconcile/execute.py`
records through a `Hasher`, which the state hands out as `state.hasher`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sprunner.jobfile.model import DesiredCollection

DERIVATION_LABEL = b"sprunner state v2"
KEY_ID_LENGTH = 12  # hex characters
REQUEST_DIGEST_LENGTH = 16  # hex characters, each half of `key:content`


@dataclass(frozen=True)
class Hasher:
    """HMAC-SHA256 under a key derived from the API key. Never shows its key."""

    key: bytes = field(repr=False)
    # Request digests of a collection, made once by `plan` and taken by the apply's record
    # of what it applied: (name, content fingerprint) -> digests. Taken entries are dropped.
    _digests: dict[tuple[str, str], tuple[str, ...]] = field(
        default_factory=dict, repr=False, compare=False, hash=False
    )

    @classmethod
    def from_api_key(cls, api_key: str) -> Hasher:
        key = hmac.new(api_key.encode("utf-8"), DERIVATION_LABEL, hashlib.sha256).digest()
        return cls(key)

    @cached_property
    def _keyed(self) -> hmac.HMAC:
        # Copied for each digest: the key's set-up is done once, not twice per request.
        return hmac.new(self.key, digestmod=hashlib.sha256)

    def _mac(self, label: str, *parts: str) -> str:
        mac = self._keyed.copy()
        mac.update(label.encode())
        for part in parts:
            mac.update(b"\x00")
            mac.update(part.encode("utf-8"))
        return mac.hexdigest()

    @cached_property
    def key_id(self) -> str:
        return self._mac("key id")[:KEY_ID_LENGTH]

    def owns(self, fingerprint: str) -> bool:
        """Whether `fingerprint` was made under this key."""
        return fingerprint.startswith(self.key_id + ":")

    def fingerprint(self, collection: DesiredCollection) -> str:
        """The keyed fingerprint of a collection's content (name and requests, in order).

        Keyed over the collection's own content digest, which is cached and never stored,
        so a 50,000-request collection is serialised once per apply, not twice.
        """
        return f"{self.key_id}:{self._mac('collection', collection.name, collection.fingerprint)}"

    def request_digests(
        self, collection: DesiredCollection, *, keep: bool = True
    ) -> tuple[str, ...]:
        """`request_digest` of each of the collection's requests, computed once per apply:
        kept for the next caller, or (`keep=False`, the last use) handed over and forgotten."""
        slot = (collection.name, collection.fingerprint)
        digests = self._digests.get(slot) if keep else self._digests.pop(slot, None)
        if digests is None:
            texts = collection.canonical_requests()
            digests = tuple(
                self._request_digest(r, text)
                for r, text in zip(collection.requests, texts, strict=True)
            )
            if keep:
                self._digests[slot] = digests
        return digests

    def request_digest(self, request: Mapping[str, Any]) -> str:
        """`key:content`, both keyed; the key follows a request across edits (custom_id,
        else url), for the added / removed / changed counts of `plan`."""
        from sprunner.util.canonical import canonical_json

        return self._request_digest(request, canonical_json(request))

    def _request_digest(self, request: Mapping[str, Any], text: str) -> str:
        key = str(request.get("custom_id") or request.get("url") or "")
        key_digest = self._mac("request key", key)[:REQUEST_DIGEST_LENGTH]
        content_digest = self._mac("request", text)[:REQUEST_DIGEST_LENGTH]
        return f"{key_digest}:{content_digest}"
