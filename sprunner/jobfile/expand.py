"""Expanding one collection's request entries into the requests that will be sent.

Order of work, chosen so that big or bad inputs fail early and cheaply:

1. compile every entry (defaults merged in, the request winning) and evaluate its
   `foreach` lists — syntax errors and bad loops of *all* entries are reported together;
2. multiply the loop sizes and compare with the cap before building anything;
3. render, checking only what the schema could not see on the unexpanded text (a
   rendered `url` must be absolute http(s), a rendered `custom_id` at most 255 characters),
   and drop exact duplicates (first one kept);
4. only if `env()` was called, render again with every env() value shown as "***" for
   `render` and `plan`, dropping the same duplicates.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sprunner.errors import Problem
from sprunner.jobfile.model import canonical_json
from sprunner.jobfile.quote import got
from sprunner.jobfile.templates import (
    SECRET_MASK,
    Functions,
    Path_,
    Renderable,
    TemplateCompiler,
    TemplateProblem,
    as_loop_values,
)
from sprunner.schemafiles import request_enums

_URL = re.compile(
    r"https?://(?:[^/?#@\s]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^/?#@\s:\[\]]+)(?::\d*)?(?:[/?#]\S*)?\Z",
    re.IGNORECASE,
)
MAX_CUSTOM_ID = 255

# (absolute path in the document, message) -> a located Problem.
Report = Callable[[Path_, str], Problem]


def url_problem(url: Any) -> str | None:
    if isinstance(url, str) and _URL.match(url):
        return None
    return f"expected an absolute http or https URL with a host, got {got(url)}"


def custom_id_problem(value: Any) -> str | None:
    if isinstance(value, str) and len(value) > MAX_CUSTOM_ID:
        return f"longer than {MAX_CUSTOM_ID} characters ({len(value)}) after rendering"
    return None


_CHECKS = {"url": url_problem, "custom_id": custom_id_problem}

# Enum fields written as templates pass the schema (it sees the template's text, see
# schema.validate_document); what they render to is checked here instead.
# (Read from the schema: one source for the validator, these checks and the emulator.)
RENDERED_ENUMS = request_enums()


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in allowed:
            return None
        words = ", ".join(allowed[:-1]) + " or " + allowed[-1]
        return f"expected {words} after rendering, got {got(value)}"

    return check


_RENDERED_CHECKS = {**_CHECKS, **{k: _one_of(v) for k, v in RENDERED_ENUMS.items()}}
_OBJECTS_WITH_X_KEYS = ("use_proxy", "http_method")


@dataclass
class _Entry:
    path: Path_  # of the request entry in the document
    origin: dict[str, Path_]  # each key's own path (a key from `defaults` points there)
    fields: list[tuple[str, Any, Renderable | None]]
    loop_names: tuple[str, ...] = ()
    loop_values: tuple[Any, ...] = ()

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.loop_values)


@dataclass(frozen=True)
class Expansion:
    requests: tuple[dict[str, Any], ...]
    display: tuple[dict[str, Any], ...] | None
    secrets: frozenset[str]
    warnings: tuple[Problem, ...]


def _dedupe_key(request: dict[str, Any]) -> Any:
    try:  # flat requests (the common case) hash as they are, far cheaper than JSON
        return frozenset(request.items())
    except TypeError:
        return canonical_json(request)


class CollectionExpander:
    """Expands one collection; collects problems instead of stopping at the first."""

    def __init__(
        self,
        *,
        name: str,
        path: Path_,
        compiler: TemplateCompiler,
        functions: Callable[[bool], Functions],
        variables: dict[str, Any],
        report: Report,
    ) -> None:
        self.name, self.path, self.compiler, self.report = name, path, compiler, report
        self.functions = functions(False)
        self.make_functions = functions
        self.variables = variables
        self.base = {**compiler.jinja_globals, **self.functions.as_dict(), **variables}
        self.problems: list[Problem] = []

    def _problem(self, entry: _Entry, error: TemplateProblem) -> None:
        head, *rest = error.path
        origin = entry.origin.get(str(head), (*entry.path, head))
        self.problems.append(self.report((*origin, *rest), error.message))

    def prepare(self, path: Path_, request: dict[str, Any], defaults: dict[str, Any]) -> None:
        origin = {key: (*path, key) for key in request}
        merged = dict(request)
        for key, value in defaults.items():
            if key not in merged:
                merged[key] = value
                origin[key] = ("defaults", key)
        entry = _Entry(path, origin, [])
        for key, value in merged.items():
            if key == "foreach" or key.startswith("x-"):
                continue
            if key in _OBJECTS_WITH_X_KEYS and isinstance(value, dict):
                # x-* keys are notes for humans; `headers` may carry real x-... names.
                value = {k: v for k, v in value.items() if not k.startswith("x-")}
            try:
                const, renderable = self.compiler.compile_value(value, (key,))
            except TemplateProblem as e:
                self._problem(entry, e)
                continue
            check = _CHECKS.get(key)
            message = check(const) if check and renderable is None else None
            if message:
                self.problems.append(self.report(origin[key], message))
            entry.fields.append((key, const, renderable))
        try:
            self._loops(entry, merged.get("foreach") or {})
        except TemplateProblem as e:
            self._problem(entry, e)
        self.entries.append(entry)

    def _loops(self, entry: _Entry, foreach: dict[str, Any]) -> None:
        names, values = [], []
        for name, value in foreach.items():
            where: Path_ = ("foreach", name)
            if isinstance(value, str):
                items = as_loop_values(self.compiler.evaluate(value, self.base, where), where)
            else:
                items = []
                for i, item in enumerate(value):
                    const, renderable = self.compiler.compile_value(item, (*where, i))
                    items.append(const if renderable is None else renderable.render(self.base))
            names.append(name)
            values.append(items)
        entry.loop_names, entry.loop_values = tuple(names), tuple(values)

    entries: list[_Entry]

    def expand(
        self, requests: list[tuple[Path_, dict[str, Any]]], defaults: dict[str, Any], cap: int
    ) -> Expansion | None:
        self.entries = []
        for path, request in requests:
            self.prepare(path, request, defaults)
        if self.problems:
            return None
        total = sum(entry.size for entry in self.entries)
        if total > cap:
            message = (
                f"collection {self.name!r} expands to {total:,} requests, "
                f"over the cap of {cap:,} (--max-requests)"
            )
            self.problems.append(self.report((*self.path, "requests"), message))
            return None
        loops_used_env = self.functions.used_env
        kept, dropped, first_dup = [], set(), None
        seen: set[Any] = set()
        for index, (entry, request) in enumerate(self._render(self.base, check=True)):
            key = _dedupe_key(request)
            if key in seen:
                dropped.add(index)
                first_dup = first_dup or entry.path
                continue
            seen.add(key)
            kept.append(request)
        if self.problems:
            return None
        warnings = []
        if dropped:
            count = len(dropped)
            message = (
                f"{count:,} request{'s' if count > 1 else ''} of collection {self.name!r} "
                f"{'are' if count > 1 else 'is'} identical to earlier ones after expansion "
                "and sent once"
            )
            warnings.append(self.report(first_dup or self.path, message))
        display = None
        secrets = frozenset(s for s in self.functions.secrets if s)
        if self.functions.used_env:
            display = self._display(dropped, secrets if loops_used_env else frozenset())
        return Expansion(tuple(kept), display, secrets, tuple(warnings))

    def _render(
        self, base: dict[str, Any], *, check: bool
    ) -> Iterator[tuple[_Entry, dict[str, Any]]]:
        """Requests in order; with `check`, an entry stops at its first problem."""
        for entry in self.entries:
            names, fields = entry.loop_names, entry.fields
            checks = [
                (k, _RENDERED_CHECKS[k])
                for k, _, r in fields
                if r is not None and k in _RENDERED_CHECKS
            ]
            for combo in itertools.product(*entry.loop_values):
                ctx = base
                if names:
                    ctx = base.copy()
                    ctx.update(zip(names, combo, strict=False))
                try:
                    request = {k: c if r is None else r.render(ctx) for k, c, r in fields}
                except TemplateProblem as e:
                    if check:
                        self._problem(entry, e)
                        break
                    # Display pass: a value computed from a secret is shown masked whole.
                    request = {k: c if r is None else SECRET_MASK for k, c, r in fields}
                message = None
                for key, problem_of in checks if check else ():
                    message = problem_of(request[key])
                    if message:
                        self.problems.append(self.report(entry.origin[key], message))
                        break
                if message:
                    break
                yield entry, request

    def _display(
        self, dropped: set[int], loop_secrets: frozenset[str]
    ) -> tuple[dict[str, Any], ...]:
        masked = self.make_functions(True)
        base = {**self.compiler.jinja_globals, **masked.as_dict(), **self.variables}
        shown = []
        for index, (_entry, request) in enumerate(self._render(base, check=False)):
            if index not in dropped:
                shown.append(_mask(request, loop_secrets) if loop_secrets else request)
        return tuple(shown)


def _mask(value: Any, secrets: frozenset[str]) -> Any:
    """Replace secret text that reached a request through a `foreach` loop value."""
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):
            value = value.replace(secret, SECRET_MASK)
        return value
    if isinstance(value, dict):
        return {k: _mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, secrets) for v in value]
    return value
