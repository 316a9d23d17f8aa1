"""The JSON log events have fixed names (SPEC §9): every name the code logs is in
`logfmt.EVENTS` (which the README's table shows, tests/e2e/test_readme.py), and the list
names none that the code never logs."""

from __future__ import annotations

import ast
from pathlib import Path

from sprunner.output.logfmt import EVENTS
from sprunner.reconcile.actions import DONE

PACKAGE = Path(__file__).resolve().parents[2] / "sprunner"


def _logged() -> set[str]:
    """`event=` keyword arguments and `"event": ...` items with a literal value."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "event":
                value = node.value
            elif isinstance(node, ast.Dict):
                keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
                if "event" not in keys:
                    continue
                value = node.values[keys.index("event")]
            else:
                continue
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                names.add(value.value)
    return names


def test_every_event_the_code_logs_is_listed_and_every_listed_one_is_logged() -> None:
    listed = {name for name, _, _ in EVENTS}
    # The runner names reconcile events from the action's past tense (`collection_{done}`).
    reconciled = {f"collection_{DONE[a]}" for a in ("create", "update")}
    logged = _logged() | reconciled | {"log"}
    assert logged - listed == set(), "log events missing from logfmt.EVENTS (and the README)"
    assert listed - logged == set(), "events listed that no code logs"
