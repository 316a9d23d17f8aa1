"""The emulator's check of request URLs: a fast regex where it can, `urlsplit` elsewhere."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sprunner.emulator.model import EngineError
from sprunner.emulator.validation import _PLAIN_URL, _absolute, check_body

_PIECES = ["http", "https", "HTTP", "://", ":", "/", "?", "#", "@", "[", "]", "a", "example"]
_PIECES += [".", "-", "80", " ", "\t", "\n", "%", "é", "x.y", ":99999"]


@settings(max_examples=600, deadline=None)
@given(
    st.tuples(
        st.sampled_from(["http://", "https://", "HTTP://", "http:/", ""]),
        st.text(alphabet="a.-0:@[] %\n", max_size=8),
        st.lists(st.sampled_from(_PIECES), max_size=6).map("".join),
    ).map("".join)
)
@example("https://a.example/c1/p/3")
@example("http://a:80")
@example("http://a:80\n")
def test_the_regex_accepts_only_what_urlsplit_accepts(url: str) -> None:
    if _PLAIN_URL.match(url):
        assert _absolute(url), url


def test_a_malformed_url_is_a_422_naming_the_request() -> None:
    good = {"url": "https://a.example/1"}
    for url in ("http://[x/", "ftp://a.example/", "https:///p", "a.example/p"):
        with pytest.raises(EngineError) as caught:
            check_body({"name": "c", "requests": [good, {"url": url}]})
        assert caught.value.status == 422 and "requests[1].url" in str(caught.value), url
    assert check_body({"name": "c", "requests": [good, good]}) == ("c", [good], 1)
