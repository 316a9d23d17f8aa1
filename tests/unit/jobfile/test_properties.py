"""Property: expansion yields exactly the foreach product, in order, first key outermost."""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from pathlib import Path

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
