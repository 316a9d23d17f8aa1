"""Safe YAML loading that remembers where every value came from.

We never let PyYAML construct objects: we read the parser's event stream (libyaml when
available) and build plain dicts, lists and scalars ourselves, so that

- every value has a 1-based ``(line, column)`` mark for error messages;
- nothing but plain data can come out (any ``!!python/...`` or unknown tag is a problem);
- duplicate keys, several documents, an empty file or a non-mapping top level are refused;
- aliases are shared, never copied, and their *expanded* size is counted against a cap,
  so a "billion laughs" file fails after a few events instead of eating the memory;
- nesting is tracked on an explicit stack, so a deep file fails with a message instead of
  a ``RecursionError``.

Merge keys (``<<: *anchor``) work as in YAML 1.1: explicit keys win, and among several
merged mappings the earlier one wins. Merged keys take the place of the ``<<`` key.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from sprunner.errors import Problem
from sprunner.jobfile.yamlbuild import (
    MAX_DEPTH,
    MAX_NODES,
    Abort,
    Builder,
    Loader,
    Mark,
    PMap,
    PSeq,
    format_path,
    plain_tag,
    type_name,
)

__all__ = ["MAX_DEPTH", "MAX_NODES", "Mark", "PMap", "PSeq", "format_path", "plain_tag"]

MAX_FILE_BYTES = 10 * 1024 * 1024


def _decode(data: bytes, display: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        problem = Problem(display, line, col, "", f"not valid UTF-8 (byte 0x{data[e.start]:02x})")
        raise _FileProblems([problem]) from e


class _FileProblems(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems


def parse_text(text: str, display: str) -> tuple[PMap | None, list[Problem]]:
    """Build the document in `text`; the mapping is None when the file is unusable."""
    builder = Builder(display)
    loader = Loader(text)
    try:
        builder.run(loader)
    except Abort:
        return None, builder.problems
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = (mark.line + 1, mark.column + 1) if mark is not None else None
        reason = getattr(e, "problem", None) or getattr(e, "reason", None) or str(e)
        if "nesting depth" in str(reason):
            # PyYAML >= 6.0.4 caps depth itself, before our own check: one message for both.
            builder.problem(where, f"nesting deeper than {MAX_DEPTH} levels")
        else:
            builder.problem(where, f"invalid YAML: {reason}")
        return None, builder.problems
    finally:
        loader.dispose()
    if builder.documents == 0 or builder.empty_root:
        return None, [*builder.problems, Problem(display, None, None, "", "the file is empty")]
    if not isinstance(builder.root, PMap):
        problem = Problem(
            display,
            1,
            1,
            "",
            f"expected a mapping at the top level, got {type_name(builder.root)}",
        )
        return None, [*builder.problems, problem]
    return builder.root, builder.problems


def load_yaml(path: Path, display: str) -> tuple[PMap | None, list[Problem]]:
    """Read and build one job file; every problem is returned, none is raised."""
    from sprunner.jobfile.files import Refused, read_regular

    try:
        text = _decode(read_regular(path, MAX_FILE_BYTES), display)
    except _FileProblems as e:
        return None, e.problems
    except Refused as e:
        message = f"cannot read: {e.reason}" if e.unreadable else e.reason
        return None, [Problem(display, None, None, "", message)]
    return parse_text(text, display)
