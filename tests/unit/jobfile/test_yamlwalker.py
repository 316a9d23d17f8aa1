"""The event walker (yamlbuild.py) against PyYAML's own composer: same values, same marks.

The walker was rewritten for speed (issue #17: exact-class dispatch, its own table of
implicit resolvers); these properties hold it to what PyYAML itself makes of any document:
every value as PyYAML resolves it (timestamps kept as text), and every key's and value's
line and column as the composed node's.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sprunner.jobfile import yamlbuild
from sprunner.jobfile.yamlload import PMap, PSeq, parse_text, plain_tag

_T = "tag:yaml.org,2002:"
TRICKY = [
    "yes", "No", "on", "OFF", "y", "~", "null", "Null", "", "true", "False", "0x1f", "0o17",
    "017", "1_000", "-1", "+1", "1e3", "1.5e+3", ".inf", "-.Inf", ".nan", "1:30", "190:20:30",
    "2024-01-31", "2024-01-31 10:00:00", "=", "<<", "-", ".", "0", "0.", "+.5", "1__0", "0b101",
    "a: b", "#x", "x #y", "'q'", '"d"', "!tag", "&a", "*a", "[1]", "{a: 1}", "- x", "? k",
]  # fmt: skip

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.one_of(
    st.sampled_from(TRICKY),
    text,
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(TRICKY), text), inner, max_size=4),
    ),
    max_leaves=25,
)


def expected(node: yaml.Node) -> Any:
    """The value PyYAML composes, with timestamps as the text written (as ours)."""
    if isinstance(node, yaml.MappingNode):
        return {key.value: expected(value) for key, value in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [expected(item) for item in node.value]
    if node.tag in (_T + "str", _T + "timestamp"):
        return node.value
    return yaml.SafeLoader("").construct_object(node)


def mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def same_marks(ours: Any, node: yaml.Node) -> None:
    if isinstance(node, yaml.MappingNode):
        assert isinstance(ours, PMap)
        for key, value in node.value:
            assert ours.key_marks[key.value] == mark(key)
            assert ours.value_marks[key.value] == mark(value)
            same_marks(ours[key.value], value)
    elif isinstance(node, yaml.SequenceNode):
        assert isinstance(ours, PSeq)
        assert ours.marks == [mark(item) for item in node.value]
        for item, child in zip(ours, node.value, strict=True):
            same_marks(item, child)


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(text, documents, min_size=1, max_size=5), flow=st.booleans())
def test_values_and_marks_are_pyyamls(document: dict[str, Any], flow: bool) -> None:
    source = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    root, problems = parse_text(source, "f.yaml")
    assert problems == []
    node = yaml.compose(source, Loader=yaml.SafeLoader)
    assert node is not None
    assert root == expected(node)
    same_marks(root, node)


@given(value=st.one_of(st.sampled_from(TRICKY), text))
def test_plain_tag_is_the_resolvers(value: str) -> None:
    loader = yaml.SafeLoader("")
    assert plain_tag(value) == loader.resolve(yaml.ScalarNode, value, (True, False))


def test_tagged_and_quoted_scalars_keep_their_meaning() -> None:
    root, problems = parse_text("a: ! 12\nb: '12'\nc: !!str 12\nd: 12\n! e: 1\n", "f.yaml")
    assert problems == []
    assert root == {"a": 12, "b": "12", "c": "12", "d": 12, "e": 1}


def test_merges_and_duplicates_in_one_mapping() -> None:
    source = "x: &x {a: 1, b: 2}\nm:\n  b: 3\n  <<: *x\n  b: 4\n  c: 5\n"
    root, problems = parse_text(source, "f.yaml")
    assert root is not None and root["m"] == {"b": 3, "a": 1, "c": 5}
    assert [str(p) for p in problems] == ["f.yaml:5:3: m.b: duplicate key 'b' (first at line 3)"]


def test_the_node_cap_counts_scalars(monkeypatch: Any) -> None:
    monkeypatch.setattr(yamlbuild, "MAX_NODES", 5)
    _root, problems = parse_text("a: [1, 2, 3, 4, 5, 6]\n", "f.yaml")
    assert "too many values once aliases are expanded (over 5)" in str(problems[0])
