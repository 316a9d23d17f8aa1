"""Which rendered request an echoed job is (`jobfile.identify`): exactly one, several
(ambiguous, never guessed) or none, whatever the API did to the URL it echoes."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from sprunner.emulator.echo import TRANSFORMS, Echo
from sprunner.jobfile.identify import RequestIndex
from sprunner.report.fingerprints import RequestFingerprints

REQUESTS = [
    {"url": "https://shop.example.com/p?a=1&b=2"},
    {"url": "https://shop.example.com/p?a=1&b=3", "custom_id": "three"},
    {"url": "https://shop.example.com/p?a=1"},
    {"url": "https://shop.example.com/q", "headers": {"X": "1"}},
    {"url": "https://shop.example.com/q", "headers": {"X": "2"}},
    {"url": "https://shop.example.com/r?t=a%20b%2Fc"},
]


def find(url: str, custom_id: str | None = None) -> tuple[int, ...]:
    return RequestIndex(REQUESTS).find(url, custom_id)


def test_the_url_as_rendered() -> None:
    assert find("https://shop.example.com/p?a=1&b=2") == (0,)
    assert find("https://shop.example.com/p?a=1&b=3", "three") == (1,)


def test_what_an_api_changes_in_an_echo() -> None:
    assert find("https://shop.example.com/p?b=2&a=1") == (0,)  # reordered
    assert find("https://shop.example.com/p?a=1&b=2#top") == (0,)  # a fragment
    assert find("HTTPS://SHOP.EXAMPLE.COM:443/p?a=1&b=2") == (0,)  # scheme, host, port
    assert find("HTTPS://SHOP.EXAMPLE.COM/P?A=1&B=2") == (0,)  # all upper-case
    assert find("https://shop.example.com/r?t=a+b/c") == (5,)  # + for space, / unescaped
    assert find("https://shop.example.com/r?t=a%20b%2fc") == (5,)  # lower-case hex


def test_added_parameters_find_the_request_they_were_added_to() -> None:
    assert find("https://shop.example.com/p?a=1&b=3&echo=1", "three") == (1,)
    # `?a=1&b=2&x=9` is request 0 with x added, or request 2 with b and x added.
    assert find("https://shop.example.com/p?a=1&b=2&x=9") == (0, 2)


def test_custom_id_must_agree_and_none_said_agrees_with_all() -> None:
    assert find("https://shop.example.com/p?a=1&b=3", "other") == ()
    assert find("https://shop.example.com/p?a=1&b=3") == (1,)
    assert find("https://shop.example.com/p?a=1&b=2", "three") == ()


def test_several_requests_behind_one_echo_are_ambiguous() -> None:
    assert find("https://shop.example.com/q") == (3, 4)  # they differ in headers only
    assert find("https://other.example.com/p?a=1") == ()


def test_the_masked_render_is_found_too() -> None:
    real = [{"url": "https://a.example.com/?t=s3cret-1", "custom_id": "id-s3cret-1"}]
    shown = [{"url": "https://a.example.com/?t=%2A%2A%2A", "custom_id": "id-***"}]
    index = RequestIndex(real, shown)
    assert index.find("https://a.example.com/?t=***", "id-***") == (0,)
    assert index.find("https://a.example.com/?t=s3cret-1#x", "id-s3cret-1") == (0,)


paths = st.sampled_from(["/a", "/b/c"])
values = st.text(alphabet=st.sampled_from(list("aZ9 &=é%+#?/")), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    requests=st.lists(
        st.tuples(paths, st.dictionaries(st.sampled_from("kpq"), values, max_size=3)),
        min_size=1,
        max_size=8,
    ),
    transforms=st.lists(
        st.sampled_from([t for t in TRANSFORMS if t not in ("decode", "encode")]),
        max_size=3,
        unique=True,
    ),
    pick=st.integers(min_value=0),
)
def test_an_echo_finds_its_own_request_among_the_candidates(
    requests: list[tuple[str, dict[str, str]]], transforms: list[str], pick: int
) -> None:
    """Whatever the echo does (of the changes an API makes without decoding), the request
    it came from is among what `find` gives: it is never mistaken for another alone."""
    rendered = [
        {
            "url": f"https://shop.example.com{path}?"
            + "&".join(f"{k}={quote(v)}" for k, v in q.items())
        }
        for path, q in requests
    ]
    chosen = pick % len(rendered)
    echoed = Echo(transforms=tuple(transforms)).url(rendered[chosen]["url"])
    found = RequestIndex(rendered).find(echoed, None)
    same = [i for i, r in enumerate(rendered) if r == rendered[chosen]]
    assert set(same) & set(found), (rendered, echoed, found)


def test_fingerprints_are_keyed_and_stable() -> None:
    one, other = RequestFingerprints.from_api_key("k1"), RequestFingerprints.from_api_key("k2")
    request = {"url": "https://a.example.com/?t=s3cret", "custom_id": "x"}
    assert one.of(request) == RequestFingerprints.from_api_key("k1").of(
        dict(reversed(request.items()))
    )
    assert one.of(request) != other.of(request) and one.owns(one.of(request))
    assert not other.owns(one.of(request)) and "s3cret" not in one.of(request)
    assert "k1" not in repr(one)
