"""The simulated page size a request asks for with its URL's `size=` query parameter."""

from __future__ import annotations

import pytest

from sprunner.emulator.bodies import DEFAULT_SIMULATED_SIZE, MAX_SIMULATED_SIZE, size_from_url


@pytest.mark.parametrize(
    ("url", "size"),
    [
        ("https://a.example/p?size=5000", 5000),
        ("https://a.example/p?x=1&size=12", 12),
        ("https://a.example/p?%73ize=7", 7),  # the name percent-encoded: parse_qs decodes it
        ("https://a.example/p?size=abc&size=9", 9),
        (f"https://a.example/p?size={MAX_SIMULATED_SIZE * 2}", MAX_SIMULATED_SIZE),
        ("https://a.example/p?size=-3", DEFAULT_SIMULATED_SIZE),
        ("https://a.example/size/p", DEFAULT_SIMULATED_SIZE),
        ("https://a.example/p?q=%20", DEFAULT_SIMULATED_SIZE),
        ("https://a.example/c1/p/3", DEFAULT_SIMULATED_SIZE),
    ],
)
def test_the_size_comes_from_the_query_or_is_the_default(url: str, size: int) -> None:
    assert size_from_url(url) == size
