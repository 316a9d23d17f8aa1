"""Positioned, safe YAML loading."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sprunner.jobfile import yamlload
from sprunner.jobfile.yamlload import PMap, PSeq, load_yaml, parse_text


def parse(text: str) -> PMap:
    root, problems = parse_text(text, "f.yaml")
    assert problems == []
    assert root is not None
    return root


def messages(text: str) -> list[str]:
    _root, problems = parse_text(text, "f.yaml")
    return [str(p) for p in problems]


def test_values_and_marks() -> None:
    root = parse("a: 1\nb:\n  - x\n  - 2.5\nc: {d: true, e: null}\n")
    assert root == {"a": 1, "b": ["x", 2.5], "c": {"d": True, "e": None}}
    assert isinstance(root["b"], PSeq)
    assert root.key_marks["b"] == (2, 1)
    assert root["b"].marks == [(3, 5), (4, 5)]
    assert root["c"].value_marks["d"] == (5, 8)


def test_scalars_resolve_like_yaml_but_dates_stay_text() -> None:
    root = parse("i: 0x1f\nf: 1.5e+3\nb: yes\nd: 2024-01-31\ns: !!str 5\nq: '7'\nn: ~\n")
    assert root == {
        "i": 31,
        "f": 1500.0,
        "b": True,
        "d": "2024-01-31",
        "s": "5",
        "q": "7",
        "n": None,
    }


def test_keys_are_text() -> None:
    assert parse("1: a\ntrue: b\n") == {"1": "a", "true": "b"}


def test_merge_keys_explicit_wins_and_earlier_merge_wins() -> None:
    root = parse("x-a: &a {p: 1, q: 1}\nx-b: &b {q: 2, r: 2}\nm:\n  <<: [*a, *b]\n  r: 3\n  s: 4\n")
    assert root["m"] == {"p": 1, "q": 1, "r": 3, "s": 4}
    assert list(root["m"]) == ["p", "q", "r", "s"]
    # Merged values point at where they were written.
    assert root["m"].value_marks["p"] == (1, 13)


def test_merge_takes_the_place_of_the_merge_key() -> None:
    root = parse("x: &x {b: 2}\nm:\n  a: 1\n  <<: *x\n  c: 3\n")
    assert list(root["m"]) == ["a", "b", "c"]


def test_quoted_merge_key_is_a_plain_key() -> None:
    assert parse("'<<': 1\n") == {"<<": 1}


def test_aliases_are_shared_not_copied() -> None:
    root = parse("a: &a [1, 2]\nb: *a\n")
    assert root["a"] is root["b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\na: 2\n", "f.yaml:2:1: a: duplicate key 'a' (first at line 1)"),
        ("a: 1\n---\nb: 1\n", "f.yaml:2:1: only one YAML document per file is allowed"),
        ("", "f.yaml: the file is empty"),
        ("# only a comment\n", "f.yaml: the file is empty"),
        ("---\n", "f.yaml: the file is empty"),
        ("[1]\n", "f.yaml:1:1: expected a mapping at the top level, got a list"),
        ("null\n", "f.yaml:1:1: expected a mapping at the top level, got null"),
        ("a: !!python/name:os.system x\n", "f.yaml:1:4: unsupported tag !!python/name:os.system"),
        ("a: !!binary aGk=\n", "f.yaml:1:4: unsupported tag !!binary"),
        ("a: !!set {x}\n", "f.yaml:1:4: unsupported tag !!set"),
        ("a: !custom x\n", "f.yaml:1:4: unsupported tag !custom"),
        ("a: !!int x\n", "f.yaml:1:4: 'x' is not a valid !!int"),
        ("a: *b\n", "f.yaml:1:4: unknown alias *b"),
        ("a: &a {b: *a}\n", "f.yaml:1:11: alias *a refers to itself"),
        ("? [a]\n: 1\n", "f.yaml:1:3: mapping keys must be plain strings"),
        ("a: 1\n<<: [1]\n", "f.yaml:2:5: '<<' needs a mapping or a list of mappings, got a number"),
        ("a: [1\n", "f.yaml:2:1: invalid YAML: did not find expected ',' or ']'"),
    ],
)
def test_refused(text: str, expected: str) -> None:
    assert messages(text)[0] == expected


def test_alias_bomb_fails_fast() -> None:
    lines = ["a: &a [" + ", ".join(["lol"] * 10) + "]"]
    for prev, name in zip("abcdefghi", "bcdefghij", strict=False):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    start = time.perf_counter()
    problems = messages("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 1.0
    assert "too many values once aliases are expanded" in problems[0]


def test_deep_nesting_fails_without_recursion_error() -> None:
    depth = 200_000
    (problem,) = messages("a: " + "[" * depth + "]" * depth + "\n")
    # The column depends on the PyYAML version: from 6.0.4 its scanner stops first, at 1,000.
    assert problem.startswith("f.yaml:1:") and problem.endswith("nesting deeper than 100 levels")


def test_nesting_up_to_the_cap_is_fine() -> None:
    depth = yamlload.MAX_DEPTH - 1
    assert parse("a: " + "[" * depth + "]" * depth + "\n")


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    assert [str(p) for p in load_yaml(path, "f.yaml")[1]] == [
        "f.yaml:2:7: not valid UTF-8 (byte 0xe9)"
    ]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: caf\xc3\xa9\n")
    assert load_yaml(path, "f.yaml") == ({"a": "café"}, [])


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlload, "MAX_FILE_BYTES", 10)
    path = tmp_path / "f.yaml"
    path.write_text("a: 12345678901234567890\n")
    root, problems = load_yaml(path, "f.yaml")
    assert root is None
    assert str(problems[0]) == "f.yaml: the file is too large (24 bytes; at most 10)"


def test_unreadable(tmp_path: Path) -> None:
    root, problems = load_yaml(tmp_path / "missing.yaml", "missing.yaml")
    assert root is None
    assert str(problems[0]).startswith("missing.yaml: cannot read: ")
