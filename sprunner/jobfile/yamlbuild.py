"""The event walker behind yamlload.py: the parser's events -> plain data with marks.

The hot loop of reading job files (issue #17: about half the time of validating 5,000
files), so it dispatches on each event's exact class, resolves untagged plain scalars
with its own table of the loader's implicit resolvers (what `Resolver.resolve` says,
without its per-call cost) and keeps no merge bookkeeping for mappings without `<<`.
tests/unit/jobfile/test_yamlwalker.py holds it to PyYAML's composer: same values, same
marks. The rules it enforces are described in yamlload.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

from sprunner.errors import Problem

Mark = tuple[int, int]  # 1-based line and column

MAX_DEPTH = 100
MAX_NODES = 1_000_000

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MERGE, _TIMESTAMP, _MAP, _SEQ = (_YAML + t for t in ("merge", "timestamp", "map", "seq"))

try:  # libyaml parses about ten times faster; the pure-Python parser is the fallback.
    Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    Loader = yaml.SafeLoader


class PMap(dict[str, Any]):
    """A mapping that knows its own mark and the marks of its keys and values."""

    __slots__ = ("key_marks", "mark", "value_marks")

    def __init__(self, mark: Mark) -> None:
        # No super().__init__(): dict.__new__ made it empty (one call less per mapping).
        self.mark = mark
        self.key_marks: dict[str, Mark] = {}
        self.value_marks: dict[str, Mark] = {}


class PSeq(list[Any]):
    """A list that knows its own mark and the marks of its items."""

    __slots__ = ("mark", "marks")

    def __init__(self, mark: Mark) -> None:
        self.mark = mark  # no super().__init__(), as PMap
        self.marks: list[Mark] = []


def _mark(event: Any) -> Mark:
    start = event.start_mark
    return (start.line + 1, start.column + 1)


class Abort(Exception):
    """The file cannot be read further; the problem is already recorded."""


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a string" if isinstance(value, str) else "a number"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def format_path(path: Iterable[str | int]) -> str:
    """`collections[0].requests[1].foreach.page`; odd keys are quoted: `headers["a b"]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


class _Frame:
    """A mapping or sequence being built; `key` holds a mapping's pending key."""

    __slots__ = ("anchor", "entries", "is_map", "key", "merges", "size", "value")

    def __init__(self, value: PMap | PSeq, anchor: str | None, is_map: bool) -> None:
        # Any, not PMap | PSeq: the hot loop tells them apart by `is_map`, not isinstance.
        self.value: Any = value
        self.anchor = anchor
        self.is_map = is_map
        self.size = 1
        self.key: tuple[str, Mark, bool] | None = None  # text, mark, is-merge
        self.entries: list[tuple[str, Mark, Any, Mark, bool]] = []
        self.merges = False  # a `<<` key among the entries


def _implicit_table() -> dict[str, tuple[tuple[str, re.Pattern[str]], ...]]:
    """The loader's implicit resolvers by first character, wildcard ones appended (as
    `Resolver.resolve` tries them)."""
    table = Loader.yaml_implicit_resolvers
    wildcard = list(table.get(None, []))
    return {first: tuple(found + wildcard) for first, found in table.items() if first is not None}


_IMPLICIT = _implicit_table()
_WILDCARD: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    Loader.yaml_implicit_resolvers.get(None, [])
)


def plain_tag(text: str) -> str:
    """The tag of an untagged plain scalar: what `Resolver.resolve` says, without its
    per-call overhead (most values start with a letter no resolver claims)."""
    for tag, regexp in _IMPLICIT.get(text[:1], _WILDCARD):
        if regexp.match(text):
            return tag
    return _STR


_SCALAR, _ALIAS, _DOCUMENT = yaml.ScalarEvent, yaml.AliasEvent, yaml.DocumentStartEvent
_MAP_START, _SEQ_START = yaml.MappingStartEvent, yaml.SequenceStartEvent
_MAP_END, _SEQ_END, _STREAM_END = yaml.MappingEndEvent, yaml.SequenceEndEvent, yaml.StreamEndEvent


class Builder:
    def __init__(self, display: str) -> None:
        self.display = display
        self.problems: list[Problem] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # name -> (value, expanded size)
        self.open_anchors: set[str] = set()
        self.nodes = 0
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.documents = 0
        self.empty_root = False

    def problem(self, mark: Mark | None, message: str, path: str = "") -> None:
        line, col = mark if mark else (None, None)
        self.problems.append(Problem(self.display, line, col, path, message))

    def path(self, *last: str | int) -> str:
        """Where in the document the innermost open mapping or list is being built."""
        parts: list[str | int] = []
        for frame in self.stack:
            if not frame.is_map:
                parts.append(len(frame.value))
            elif frame.key is not None:
                parts.append(frame.key[0])
        return format_path([*parts, *last])

    def abort(self, mark: Mark | None, message: str) -> Abort:
        self.problem(mark, message)
        return Abort()

    def count(self, size: int, mark: Mark) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise self.abort(
                mark, f"too many values once aliases are expanded (over {MAX_NODES:,})"
            )

    def run(self, loader: Any) -> None:
        # The hot loop of every job file (issue #17): dispatch on the event's exact class
        # (libyaml makes no subclasses), scalars first, as they are most of the events.
        get_event, stack = loader.get_event, self.stack
        while True:
            event = get_event()
            kind = type(event)
            if kind is _SCALAR:
                top = stack[-1] if stack else None
                if top is not None and top.is_map and top.key is None:
                    self.key(loader, event, top)
                else:
                    self.scalar(loader, event, top)
            elif kind is _MAP_END or kind is _SEQ_END:
                self.end()
            elif kind is _MAP_START or kind is _SEQ_START:
                self.start(event, kind is _MAP_START)
            elif kind is _ALIAS:
                self.alias(event.anchor or "", _mark(event))
            elif kind is _DOCUMENT:
                self.documents += 1
                if self.documents > 1:
                    raise self.abort(_mark(event), "only one YAML document per file is allowed")
            elif event is None or kind is _STREAM_END:
                return

    def start(self, event: Any, is_map: bool) -> None:
        mark = _mark(event)
        stack = self.stack
        if stack and stack[-1].is_map and stack[-1].key is None:
            raise self.abort(mark, "mapping keys must be plain strings")  # a complex key
        if event.tag is not None and event.tag not in ("!", _MAP if is_map else _SEQ):
            self.problem(mark, f"unsupported tag {_short_tag(event.tag)}")
        if len(stack) >= MAX_DEPTH:
            raise self.abort(mark, f"nesting deeper than {MAX_DEPTH} levels")
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.count(0, mark)
        stack.append(_Frame(PMap(mark) if is_map else PSeq(mark), event.anchor, is_map))

    def end(self) -> None:
        frame = self.stack.pop()
        if frame.is_map:
            self.finish_map(frame)
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (frame.value, frame.size)
        self.add(frame.value, frame.value.mark, frame.size)

    def key(self, loader: Any, event: Any, top: _Frame) -> None:
        start = event.start_mark  # inlined _mark: once per key and per scalar
        mark = (start.line + 1, start.column + 1)
        tag = event.tag
        if tag is None:  # untagged: only a plain `<<` resolves to a merge
            merge = event.implicit[0] and event.value == "<<"
        else:
            if tag == "!":
                tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            elif tag not in (_STR, _MERGE):
                self.problem(mark, f"unsupported tag {_short_tag(tag)} on a key")
            merge = tag == _MERGE
        top.key = (event.value, mark, merge)
        top.merges = top.merges or merge

    def scalar(self, loader: Any, event: Any, top: _Frame | None) -> None:
        start = event.start_mark  # inlined _mark: once per key and per scalar
        mark = (start.line + 1, start.column + 1)
        tag, text = event.tag, event.value
        if tag is None:  # quoted scalars are strings; plain ones resolve
            tag = plain_tag(text) if event.implicit[0] else _STR
        elif tag == "!":
            tag = loader.resolve(yaml.ScalarNode, text, event.implicit)
        if top is None and text == "" and event.implicit[0]:
            self.empty_root = True
        # Timestamps stay the text the user wrote: JSON has no dates, templates take strings.
        if tag in (_STR, _TIMESTAMP, _MERGE):
            value: Any = text
        else:
            value = self.construct(loader, tag, text, mark)
        if event.anchor:
            self.anchors[event.anchor] = (value, 1)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.count(0, mark)
        if top is None:
            self.root = value
        elif top.is_map:
            assert top.key is not None
            key, key_mark, merge = top.key
            top.entries.append((key, key_mark, value, mark, merge))
            top.key = None
            top.size += 1
        else:
            top.size += 1
            top.value.append(value)
            top.value.marks.append(mark)

    def construct(self, loader: Any, tag: str, text: str, mark: Mark) -> Any:
        if tag == _NULL:
            return None
        builders = {
            _BOOL: loader.construct_yaml_bool,
            _INT: loader.construct_yaml_int,
            _FLOAT: loader.construct_yaml_float,
        }
        if tag not in builders:
            self.problem(mark, f"unsupported tag {_short_tag(tag)}")
            return None
        try:
            return builders[tag](yaml.ScalarNode(tag, text))
        except (ValueError, yaml.YAMLError):
            self.problem(mark, f"{text!r} is not a valid {_short_tag(tag)}")
            return None

    def alias(self, name: str, mark: Mark) -> None:
        if name in self.open_anchors:
            raise self.abort(mark, f"alias *{name} refers to itself")
        if name not in self.anchors:
            raise self.abort(mark, f"unknown alias *{name}")
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_map and top.key is None:
            raise self.abort(mark, "mapping keys must be plain strings, not aliases")
        value, size = self.anchors[name]
        self.count(size, mark)
        self.add(value, mark, size)

    def add(self, value: Any, mark: Mark, size: int) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        top.size += size
        if not top.is_map:
            top.value.append(value)
            top.value.marks.append(mark)
            return
        assert top.key is not None
        text, key_mark, merge = top.key
        top.entries.append((text, key_mark, value, mark, merge))
        top.key = None

    def duplicate(self, text: str, mark: Mark, first: Mark) -> None:
        message = f"duplicate key {text!r} (first at line {first[0]})"
        self.problem(mark, message, self.path(text))

    def finish_map(self, frame: _Frame) -> None:
        """The mapping's entries in order: the first of two explicit keys wins, and an
        explicit key wins over a merged one (`<<`) wherever it stands, so a merged key is
        never in the way of an explicit one."""
        result = frame.value
        assert isinstance(result, PMap)
        explicit = set()
        if frame.merges:  # rare: most files never merge
            explicit = {text for text, _, _, _, merge in frame.entries if not merge}
        key_marks, value_marks = result.key_marks, result.value_marks
        for text, key_mark, value, mark, merge in frame.entries:
            if merge:
                self.merge_into(result, explicit, value, mark)
            elif text in result:
                self.duplicate(text, key_mark, key_marks[text])
            else:
                result[text] = value
                key_marks[text] = key_mark
                value_marks[text] = mark

    def merge_into(self, result: PMap, explicit: set[str], value: Any, mark: Mark) -> None:
        """A `<<` entry: the keys of its mapping(s) that are not there yet, nor explicit."""
        for source in value if isinstance(value, PSeq) else [value]:
            if not isinstance(source, PMap):
                message = f"'<<' needs a mapping or a list of mappings, got {type_name(source)}"
                self.problem(mark, message)
                continue
            for key, item in source.items():
                if key not in explicit and key not in result:
                    result[key] = item
                    result.key_marks[key] = source.key_marks[key]
                    result.value_marks[key] = source.value_marks[key]
