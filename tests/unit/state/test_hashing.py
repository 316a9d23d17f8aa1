"""Nothing in the state lets anyone recover a secret by guessing (issue 12, point 3).

The state directory holds a fingerprint per collection and a digest per request. Before
they were keyed, both were plain sha256 of the content: hashing every 4-character guess
of a header secret found it in well under a second. These tests run that very attack.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from pathlib import Path

from sprunner.state import Hasher, State, lifecycle
from sprunner.util.canonical import canonical_json
from tests.unit.state.helpers import collection

SECRET = "q7x2"
ALPHABET = "0279abqx"  # 8**4 = 4,096 guesses, the secret among them
API_KEY = "sk-live-a-long-random-api-key-0f3c9a"


def unkeyed_request_digest(request: dict[str, object]) -> str:
    """The digest as state version 1 wrote it."""
    key = str(request.get("custom_id") or request.get("url") or "")
    return (
        hashlib.sha256(key.encode()).hexdigest()[:16]
        + ":"
        + hashlib.sha256(canonical_json(request).encode()).hexdigest()[:16]
    )


def state_contents(directory: Path) -> str:
    """Every byte of the state directory as text, and every row of its database."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    rows = sqlite3.connect(directory / "state.db").iterdump()
    return "\n".join([*(p.read_bytes().decode(errors="replace") for p in files), *rows])


def apply_secret_bearing_collection(directory: Path) -> None:
    shop = collection("shop", "https://shop.example/", headers={"X-Token": SECRET})
    state = State(directory, "https://api", key=API_KEY)
    state.update("shop", id="c1", fingerprint=state.fingerprint_of(shop), created=True)
    state.save_applied("shop", [state.request_digest(r) for r in shop.requests])
    pending = lifecycle.run_pending(state, "shop", content=state.fingerprint_of(shop), at=1.0)
    lifecycle.run_started(state, "shop", "r1", pending)
    state.close()


def brute_force(contents: str, hasher: Hasher | None) -> list[str]:
    """Every guess whose fingerprint or request digest appears in the state."""
    found = []
    for letters in itertools.product(ALPHABET, repeat=len(SECRET)):
        guess = "".join(letters)
        candidate = collection("shop", "https://shop.example/", headers={"X-Token": guess})
        (request,) = candidate.requests
        if hasher is None:
            values = [candidate.fingerprint, unkeyed_request_digest(dict(request))]
        else:
            values = [hasher.fingerprint(candidate), hasher.request_digest(request)]
        if any(value in contents for value in values):
            found.append(guess)
    return found


def test_a_short_secret_cannot_be_recovered_from_the_state_directory(tmp_path: Path) -> None:
    apply_secret_bearing_collection(tmp_path)
    contents = state_contents(tmp_path)
    assert SECRET not in contents
    assert brute_force(contents, None) == []  # the unkeyed attack that used to work
    assert brute_force(contents, Hasher.from_api_key("a guessed api key")) == []
    # Control: with the API key (which is never stored) the values are reproducible,
    # which is what lets the next apply find them equal and skip the PUT.
    assert brute_force(contents, Hasher.from_api_key(API_KEY)) == [SECRET]


def test_the_hasher_never_shows_its_key() -> None:
    hasher = Hasher.from_api_key(API_KEY)
    assert API_KEY not in repr(hasher) and hasher.key.hex() not in repr(hasher)


def test_digests_are_hmac_sha256_of_label_and_parts_so_stored_states_stay_valid() -> None:
    """States written by earlier versions hold these values: computing them faster must
    not change them (an unknown fingerprint costs a PUT and a `when: changed` run)."""
    import hashlib
    import hmac

    from sprunner.state.hashing import Hasher

    hasher = Hasher.from_api_key("the key")
    key = hmac.new(b"the key", b"sprunner state v2", hashlib.sha256).digest()
    expected = hmac.new(key, b"request key\x00https://a.example/1", hashlib.sha256).hexdigest()
    request = {"url": "https://a.example/1"}
    assert hasher.request_digest(request).split(":")[0] == expected[:16]
    assert hasher.request_digest(request) == hasher.request_digest(dict(request))  # copies
