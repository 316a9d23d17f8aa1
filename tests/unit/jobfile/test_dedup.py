"""Dedup: identical requests are kept once, distinct ones always kept (SPEC §2)."""

from __future__ import annotations

from typing import Any

from sprunner.jobfile.dedup import Dedup
from sprunner.jobfile.expand import _digest


def kept_of(requests: list[dict[str, Any]], digest: Any = _digest) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    dedup = Dedup(kept, digest)
    verdicts = [dedup.add(r) for r in requests]
    assert sum(verdicts) == len(kept)  # True exactly for the requests kept
    return kept


def test_same_url_other_fields_differ_are_all_kept() -> None:
    requests = [{"url": "https://a.example/", "headers": {"n": str(n)}} for n in range(50)]
    assert kept_of(requests + requests) == requests


def test_equal_content_in_another_key_order_is_a_duplicate() -> None:
    first = {"url": "https://a.example/", "custom_id": "x", "use_proxy": {"proxy": "any"}}
    again = {"use_proxy": {"proxy": "any"}, "custom_id": "x", "url": "https://a.example/"}
    assert kept_of([first, again]) == [first]


def test_every_digest_equal_still_keeps_distinct_requests() -> None:
    requests = [{"url": f"https://a.example/{n % 3}", "custom_id": str(n % 2)} for n in range(12)]
    expected = [dict(r) for r in requests[:6]]
    assert kept_of(requests, digest=lambda request: 0) == expected


def test_a_request_without_a_url_is_compared_too() -> None:
    requests: list[dict[str, Any]] = [{"custom_id": "a"}, {"custom_id": "b"}, {"custom_id": "a"}]
    assert kept_of(requests) == requests[:2]
