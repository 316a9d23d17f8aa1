"""Property: the fastjsonschema "surely valid" check never accepts a file jsonschema rejects.

`validate_document` reports no problem at all once the compiled check accepts a file, so a
file it accepted wrongly would go to the API unchecked. The documents are drawn from the
job-file schema itself: each one valid, or valid but for one value just past one rule of
the schema (every rule of every node is a target: a length, a minimum, a pattern's end, an
enum, a required or unknown key, a duplicate item, another type...). They go through YAML
and sprunner's loader, as a job file does.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sprunner.jobfile.schema import _surely_valid, _validator
from sprunner.jobfile.yamlload import PMap, parse_text
from sprunner.util.schemafiles import schema_text

_SCHEMA = json.loads(schema_text("jobfile"))
_END = r"(?![\s\S])"
Path = tuple[str | int, ...]  # steps from the root: a key, "[]" (an item), "*" (another key)
_OTHER_TYPE: dict[str, Any] = {"string": 1, "integer": "1", "number": "1", "boolean": "true"}
_OTHER_TYPE |= {"null": 0, "object": ["a"], "array": {"a": 1}}


def _kinds(node: dict[str, Any]) -> list[str]:
    kinds = node.get("type", [])
    return [kinds] if isinstance(kinds, str) else list(kinds)


def _rules(node: dict[str, Any]) -> list[str]:
    """The ways a value can break the rules of `node` itself."""
    rules = ["type"] if _kinds(node) else []
    rules += [key for key in ("enum", "const", "pattern", "maxLength", "minLength") if key in node]
    rules += [key for key in ("minimum", "exclusiveMinimum", "maximum") if key in node]
    rules += [key for key in ("required", "minProperties", "propertyNames", "then") if key in node]
    rules += [key for key in ("uniqueItems", "minItems") if key in node]
    if node.get("additionalProperties") is False:
        rules.append("additionalProperties")
    if "integer" in _kinds(node):
        rules.append("fraction")
    return rules


def _walk(node: dict[str, Any], path: Path = ()) -> Iterator[tuple[Path, str]]:
    for rule in _rules(node):
        yield path, rule
    for index, branch in enumerate(node.get("anyOf", [])):
        yield from _walk(branch, (*path, f"anyOf{index}"))
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, (*path, name))
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], (*path, "*"))
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], (*path, "[]"))


_BY_RULE: dict[str, list[tuple[Path, str]]] = {}
for _target in _walk(_SCHEMA):
    _BY_RULE.setdefault(_target[1], []).append(_target)


@functools.cache
def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@functools.cache
def _text(least: int) -> st.SearchStrategy[str]:
    return st.text(min_size=least, max_size=least + 4)


@functools.cache
def _matching(pattern: str) -> st.SearchStrategy[str]:
    body = pattern.removesuffix(_END).removeprefix("^")
    return st.from_regex(re.compile(body + r"\Z"), fullmatch=True)


class _Drawer:
    """Draws one document, valid but at `target` (a path and the rule to break there)."""

    def __init__(self, draw: st.DrawFn, target: tuple[Path, str] | None) -> None:
        self.draw, self.target = draw, target

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.draw(_ints(0, len(options) - 1))]

    def coin(self) -> bool:
        return self.draw(_ints(0, 1)) == 1

    def on_way(self, path: Path) -> bool:
        """Whether the target is at `path` or under it (the value must then be there)."""
        return self.target is not None and self.target[0][: len(path)] == path

    def value(self, node: dict[str, Any], path: Path) -> Any:
        value = self.allowed(node, path)
        if self.target is not None and self.target[0] == path:
            value, self.target = self.broken(node, value, self.target[1]), None
        return value

    def allowed(self, node: dict[str, Any], path: Path) -> Any:
        if "anyOf" in node:
            index = self.draw(_ints(0, len(node["anyOf"]) - 1))
            for i in range(len(node["anyOf"])):
                index = i if self.on_way((*path, f"anyOf{i}")) else index
            return self.value(node["anyOf"][index], (*path, f"anyOf{index}"))
        if "enum" in node or "const" in node:
            return self.choice(node.get("enum", [node.get("const")]))
        kind = self.choice(_kinds(node) or ["any"])
        if kind == "string":
            return self.string(node)
        if kind in ("integer", "number"):
            low = node.get("minimum", node.get("exclusiveMinimum", -5))
            low += 1 if "exclusiveMinimum" in node else 0
            number = self.draw(_ints(low, node.get("maximum", low + 20)))
            return float(number) if kind == "number" and self.coin() else number
        if kind == "object":
            return self.mapping(node, path)
        if kind == "array":
            least = max(node.get("minItems", 0), 1 if self.on_way((*path, "[]")) else 0)
            size = self.draw(_ints(least, 2))
            items = [self.value(node.get("items", {}), (*path, "[]")) for _ in range(size)]
            if node.get("uniqueItems"):
                items = list({json.dumps(i, sort_keys=True): i for i in items}.values())
            return items
        return {"boolean": self.coin(), "null": None}.get(kind, "any value")

    def string(self, node: dict[str, Any]) -> str:
        if "pattern" in node:
            text: str = self.draw(_matching(node["pattern"]))
        else:
            text = self.draw(_text(node.get("minLength", 0)))
        most = node.get("maxLength")
        if most is not None and self.coin():
            text = "a" * most  # at the limit
        return text[:most] if most is not None else text

    def mapping(self, node: dict[str, Any], path: Path) -> dict[str, Any]:
        properties: dict[str, Any] = node.get("properties", {})
        value = {}
        for name, sub in properties.items():
            here = (*path, name)
            if name in node.get("required", []) or self.on_way(here) or self.coin():
                value[name] = self.value(sub, here)
        if isinstance(node.get("additionalProperties"), dict) or "propertyNames" in node:
            least = max(node.get("minProperties", 0), 1 if self.on_way((*path, "*")) else 0)
            for _ in range(self.draw(_ints(least, least + 2))):
                key = self.string(node.get("propertyNames", {"minLength": 1}))
                value[key] = self.value(node.get("additionalProperties") or {}, (*path, "*"))
        if "^x-" in node.get("patternProperties", {}) and self.coin():
            value["x-note"] = self.choice([None, 1, "a", [1], {"a": 1}])
        when, then = node.get("if", {}).get("properties", {}), node.get("then", {})
        if all(value.get(key) == rule.get("const") for key, rule in when.items()):
            for name in then.get("properties", {}):
                value.pop(name, None)  # http_method get: no payload
        return value

    def broken(self, node: dict[str, Any], value: Any, rule: str) -> Any:
        """`value` (which `node` allows) changed to break `rule` of `node`."""
        if rule == "type":
            return self.choice([v for k, v in _OTHER_TYPE.items() if k not in _kinds(node)])
        if rule in ("enum", "const"):
            return self.choice([f"{value} ", str(value).upper() + "x", "{{ x }}", True, 2])
        if rule == "pattern":
            return self.choice([f"{value}\n", f" {value}", f"{value}-", "", "1.5%s"])
        if rule == "maxLength":
            return "a" * (node["maxLength"] + 1)
        if rule == "minLength":
            return ""
        if rule in ("minimum", "exclusiveMinimum"):
            low = node[rule]
            return self.choice([low - 1, low - 0.5] + ([low, float(low)] if "exc" in rule else []))
        if rule == "maximum":
            return self.choice([node["maximum"] + 1, node["maximum"] + 0.5])
        if rule == "fraction":
            return node.get("minimum", 0) + 0.5
        return self.broken_container(node, value, rule)

    def broken_container(self, node: dict[str, Any], value: Any, rule: str) -> Any:
        if rule == "required":
            value.pop(self.choice(node["required"]), None)
        elif rule == "minProperties":
            value.clear()
        elif rule == "propertyNames":
            value[self.choice(["1a", "a-b", "a b", "", "é"])] = "{{ x }}"
        elif rule == "additionalProperties":
            value[self.choice(["unknown", "X-a", "1", *(f"{k}s" for k in value)])] = 1
        elif rule == "then":  # a get with what only a post may have
            value.update(method="get", payload="x")
        elif rule == "uniqueItems":
            value.extend(value[:1] if value else ["a", "a"])
        elif rule == "minItems":
            value.clear()
        return value


def _as_file(document: Any) -> PMap | None:
    """`document` written as YAML and read back by sprunner's loader, as a job file is."""
    root, _ = parse_text(yaml.dump(document, Dumper=yaml.CSafeDumper), "f.yaml")
    return root


@st.composite
def _documents(draw: st.DrawFn, rule: str | None) -> PMap | None:
    target = None if rule is None else draw(st.sampled_from(_BY_RULE[rule]))
    return _as_file(_Drawer(draw, target).value(_SCHEMA, ()))


# Each rule gets its share of the documents wherever it is written (96 nodes have a type,
# 2 an if/then); None: valid documents.
@pytest.mark.parametrize("rule", [None, *sorted(_BY_RULE)])
def test_the_compiled_check_accepts_only_what_jsonschema_accepts(rule: str | None) -> None:
    seen: Counter[tuple[bool, bool]] = Counter()  # (the check's yes, jsonschema's yes)

    @settings(max_examples=40 if rule is None else 12, deadline=None)
    @given(_documents(rule).filter(lambda root: root is not None))
    def check(root: PMap) -> None:
        surely, valid = _surely_valid(root), not any(_validator().iter_errors(root))
        seen[surely, valid] += 1
        assert valid or not surely, root

    check()
    # The property means something only if the check says yes to valid documents and the
    # documents drawn to break a rule do break it.
    if rule is None:
        assert seen[True, True] == sum(seen.values()), seen
    else:
        assert seen[False, False] >= sum(seen.values()) // 2, seen


def test_every_rule_of_the_schema_is_a_target() -> None:
    assert sum(map(len, _BY_RULE.values())) > 150
    assert {"maxLength", "pattern", "required", "additionalProperties", "then"} <= set(_BY_RULE)
    assert {"exclusiveMinimum", "uniqueItems", "propertyNames", "minProperties"} <= set(_BY_RULE)
