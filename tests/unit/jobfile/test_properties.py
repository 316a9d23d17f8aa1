"""Property: expansion yields exactly the foreach product, in order, first key outermost."""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprunner.jobfile.load import load
from sprunner.settings import Selection

names = st.lists(
    st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=4, unique=True
)
values = st.one_of(st.integers(-1000, 1000), st.from_regex(r"[A-Za-z0-9-]{1,8}", fullmatch=True))


@st.composite
def loops(draw: st.DrawFn) -> list[tuple[str, list[object]]]:
    keys = draw(names)
    # Unique values per loop so that no two combinations render the same URL.
    return [(k, draw(st.lists(values, min_size=0, max_size=4, unique_by=str))) for k in keys]


@settings(max_examples=60, deadline=None)
@given(loops=loops(), as_expression=st.booleans())
def test_expansion_is_the_product_in_order(
    loops: list[tuple[str, list[object]]], as_expression: bool
) -> None:
    foreach = {k: ("{{ " + json.dumps(v) + " }}" if as_expression else v) for k, v in loops}
    url = "https://a.example.com/" + "/".join(f"{{{{ {k} }}}}" for k, _ in loops)
    document = {
        "version": 1,
        "collections": [{"name": "c", "requests": [{"url": url, "foreach": foreach}]}],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "f.yaml")
        path.write_text(json.dumps(document))  # JSON is YAML
        (collection,) = load(Selection(paths=(path,))).collections
    expected = [
        "https://a.example.com/" + "/".join(str(v) for v in combo)
        for combo in itertools.product(*(v for _, v in loops))
    ]
    assert len(collection.requests) == math.prod(len(v) for _, v in loops)
    assert [r["url"] for r in collection.requests] == expected


# Every kind of value a request may hold, and the edges of the encoder: floats written with
# an exponent, infinities and NaN, integers beyond 64 bits, control characters, characters
# outside the BMP and lone surrogates (kept as they are with ensure_ascii=False).
_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=8)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**70)
    | st.floats()
    | st.sampled_from([1e16, 1e-05, -0.0, 1e308, 5e-324])
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_TEXT, _JSON, max_size=6) | _JSON)
def test_canonical_json_is_json_dumps_sorted_and_compact(value: object) -> None:
    """Fingerprints, digests and idempotency keys already stored depend on these bytes."""
    from sprunner.util.canonical import canonical_json

    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected


def test_canonical_json_keeps_the_stored_form() -> None:
    from sprunner.util.canonical import canonical_json

    request = {
        "url": "https://a.example/é",
        "b": [1e-05, 2**70, None, True],
        "a": {"z": 1, "y": ""},
    }
    assert canonical_json(request) == (
        '{"a":{"y":"","z":1},"b":[1e-05,1180591620717411303424,null,true],'
        '"url":"https://a.example/é"}'
    )


def test_canonical_json_refuses_a_cycle_as_json_does() -> None:
    from sprunner.util.canonical import canonical_json

    cyclic: dict[str, object] = {"url": "https://a.example"}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="Circular reference"):
        canonical_json(cyclic)
