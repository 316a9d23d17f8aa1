"""JSON Schema validation of one *unexpanded* job file, with errors that say where.

The schema (``schemas/jobfile.schema.json``, Draft-07) is also what editors use for hover
help, so it carries titles and examples; a few nodes carry an ``x-messages`` map
(keyword → message, ``{got}`` replaced by the offending value) where jsonschema's own
wording would confuse a user. Requests are checked here once, before ``foreach``
expansion: a million expanded requests are never pushed through jsonschema.

Every error becomes ``file:line:col: path.in.document: message``; ``anyOf`` noise is cut
down to the branch the value was evidently meant for, or to one summary line.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sprunner.errors import Problem
from sprunner.jobfile.quote import got
from sprunner.jobfile.yamlload import Mark, PMap, PSeq, format_path
from sprunner.util.schemafiles import request_enums, schema_text

_TRUE_END = r"(?![\s\S])"  # the end of the text in both ECMA and Python regex
_TYPE_NAMES = {
    "array": "a list",
    "object": "a mapping",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@functools.cache
def _validator() -> Any:
    # jsonschema costs ~100 ms to import: only commands that validate pay for it.
    import jsonschema

    return jsonschema.Draft7Validator(json.loads(schema_text("jobfile")))


@functools.cache
def _fast_check() -> Callable[[Any], Any] | None:
    """The schema compiled to Python by fastjsonschema: a yes/no check, 10-50 x faster than
    jsonschema's walk (validating 5,000 files takes half the CPU with it: bench/README.md,
    issue #26). Only a clean "valid" is taken from it; any doubt (invalid, or the library
    missing) goes to jsonschema, so every message stays jsonschema's, and a property test
    (test_schema_precheck.py) holds it to never accepting what jsonschema rejects, one
    schema rule at a time. It is built without defaults (it would write them into the
    document) and without formats (as `_validator`, which has no format checker)."""
    try:
        import fastjsonschema
    except ImportError:  # pragma: no cover - an optional speed-up
        return None
    schema = json.loads(schema_text("jobfile"))
    check: Callable[[Any], Any] = fastjsonschema.compile(
        schema, use_default=False, use_formats=False
    )
    return check


def _surely_valid(root: PMap) -> bool:
    check = _fast_check()
    if check is None:
        return False
    try:
        check(root)
    except Exception:  # any doubt: let jsonschema look and explain
        return False
    return True


def locate(root: Any, path: Sequence[str | int], *, key: bool = False) -> Mark | None:
    """The mark of the value at `path` (or of its key, with `key=True`)."""
    node, mark = root, getattr(root, "mark", None)
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, PMap) and isinstance(part, str) and part in node:
            mark = node.key_marks[part] if key and last else node.value_marks[part]
            node = node[part]
        elif isinstance(node, PSeq) and isinstance(part, int) and 0 <= part < len(node):
            mark, node = node.marks[part], node[part]
        else:
            break
    return mark


def _or(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


class _Explained:
    """One problem as (path, message, point-at-key)."""

    __slots__ = ("at_key", "message", "path")

    def __init__(self, path: Sequence[str | int], message: str, at_key: bool = False) -> None:
        self.path, self.message, self.at_key = list(path), message, at_key


def _explain(error: Any) -> Iterator[_Explained]:
    path = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("x-messages", {}).get(error.validator)
    instance = error.instance
    kind = error.validator
    if "propertyNames" in error.schema_path:
        yield _Explained(
            [*path, instance],
            f"{got(instance)} is not a valid name: use letters, "
            "digits and '_', not starting with a digit",
            at_key=True,
        )
    elif kind in ("anyOf", "oneOf"):
        yield from _explain_branches(error, custom)
    elif custom:
        yield _Explained(path, custom.replace("{got}", got(instance)))
    elif kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        for name in instance:
            if name in known or any(p.search(name) for p in patterns):
                continue
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield _Explained([*path, name], f"unknown key{hint}", at_key=True)
    elif kind == "required":
        for name in error.validator_value:
            if isinstance(instance, dict) and name not in instance:
                yield _Explained(path, f"missing required key {name!r}")
    elif kind == "type":
        types = error.validator_value
        types = [types] if isinstance(types, str) else types
        yield _Explained(
            path, f"expected {_or([_TYPE_NAMES[t] for t in types])}, got {got(instance)}"
        )
    else:
        yield _Explained(path, _simple_message(kind, error.validator_value, instance, error))


_BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than"}


def _simple_message(kind: str, expected: Any, instance: Any, error: Any) -> str:
    if kind == "enum":
        return f"expected {_or([str(v) for v in expected])}, got {got(instance)}"
    if kind == "const":
        return f"expected {got(expected)}, got {got(instance)}"
    if kind == "maxLength":
        return f"longer than {expected} characters ({len(instance)})"
    if kind in ("minLength", "minItems", "minProperties") and expected == 1:
        return "must not be empty"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {expected}, got {got(instance)}"
    if kind == "uniqueItems":
        return "has duplicate items"
    if kind == "pattern":  # patterns end in (?![\s\S]): "$" would accept a final newline
        return f"{got(instance)} does not match {expected.replace(_TRUE_END, '$')}"
    if kind == "not":
        return "not allowed here"
    return str(error.message)


def _explain_branches(error: Any, custom: str | None) -> Iterator[_Explained]:
    """Report inside the one branch whose type fits, else one summary line."""
    from jsonschema.exceptions import best_match

    branches: dict[int, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        index
        for index, subs in branches.items()
        if not any(s.validator == "type" and not s.relative_path for s in subs)
    ]
    if len(fitting) == 1 and any(s.relative_path for s in branches[fitting[0]]):
        for sub in branches[fitting[0]]:
            yield from _explain(sub)
        return
    if len(fitting) == 1 and error.validator_value[fitting[0]].get("type") in ("object", "array"):
        for sub in branches[fitting[0]]:
            yield from _explain(sub)
        return
    path = list(error.absolute_path)
    if custom:
        yield _Explained(path, custom.replace("{got}", got(error.instance)))
        return
    described = [b.get("description") for b in error.validator_value]
    if all(described):
        yield _Explained(path, f"expected {_or(described)}, got {got(error.instance)}")
        return
    yield from _explain(best_match(error.context))


def _is_template_for(error: Any, fields: Any) -> bool:
    """An enum error about a template string: the schema cannot judge it before rendering."""
    instance, path = error.instance, error.absolute_path
    return (
        error.validator == "enum"
        and isinstance(instance, str)
        and ("{{" in instance or "{%" in instance)
        and bool(path)
        and path[-1] in fields
    )


def validate_document(root: PMap, display: str) -> list[Problem]:
    """Every schema problem of one parsed job file, in file order."""
    problems: list[Problem] = []
    if _surely_valid(root):
        return problems
    for error in _validator().iter_errors(root):
        if _is_template_for(error, request_enums()):
            continue  # checked once rendered (expand.py)
        for item in _explain(error):
            mark = locate(root, item.path, key=item.at_key)
            line, col = mark if mark else (None, None)
            problems.append(Problem(display, line, col, format_path(item.path), item.message))
    problems.sort(key=lambda p: (p.line or 0, p.column or 0, p.path))
    # The schema may state one rule in two places (the top-level `required` and a branch
    # that repeats it): the user gets each message once.
    return list(dict.fromkeys(problems))
