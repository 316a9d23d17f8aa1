"""The one vocabulary of what apply does to a collection, shared by the plan, the runner,
the outcome, the display and the report.

An action is named once, as a verb (`create`, `update`, `unchanged`, `delete`, `error`,
`skip`): the plan says what apply will do, and the outcome records which of those it did.
The report and the closing summary say it in the past tense (`created`, `updated`, ...;
SPEC §5), and the plan table shows a sign beside it: both are derived here, never spelt
out elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

# skip: nothing to do (a collection that expands to no request) or, in an outcome, another
# apply on a shared state handles it (`sprunner.runs.locks`).
Action = Literal["create", "update", "unchanged", "delete", "error", "skip"]

DONE: Final[Mapping[Action, str]] = {
    "create": "created",
    "update": "updated",
    "unchanged": "unchanged",
    "delete": "deleted",
    "error": "error",
    "skip": "skipped",
}
SIGNS: Final[Mapping[Action, str]] = {
    "create": "+",
    "update": "~",
    "delete": "-",
    "error": "!",
    "unchanged": " ",
    "skip": "?",
}
