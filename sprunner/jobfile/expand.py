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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sprunner.errors import Problem
from sprunner.jobfile.checks import CHECKS, RENDERED_CHECKS, RENDERED_ENUMS
from sprunner.jobfile.dedup import Dedup
from sprunner.jobfile.masking import secret_pairs, tidy_display
from sprunner.jobfile.templates import (
    SECRET_MASK,
    DocPath,
    Functions,
    Renderable,
    TemplateCompiler,
    TemplateProblem,
    as_loop_values,
)
from sprunner.util.canonical import canonical_json

__all__ = ["RENDERED_ENUMS", "CollectionExpander", "Expansion"]  # the enums: for the tests

# (absolute path in the document, message) -> a located Problem.
Locate = Callable[[DocPath, str], Problem]


_OBJECTS_WITH_X_KEYS = ("use_proxy", "http_method")


@dataclass
class _Entry:
    path: DocPath  # of the request entry in the document
    origin: dict[str, DocPath]  # each key's own path (a key from `defaults` points there)
    fields: list[tuple[str, Any, Renderable | None]]
    loop_names: tuple[str, ...] = ()
    loop_values: tuple[Any, ...] = ()
    loop_tainted: tuple[bool, ...] = ()  # the loop's values were computed with env()
    foreach: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.loop_values)


@dataclass(frozen=True)
class Expansion:
    requests: tuple[dict[str, Any], ...]
    display: tuple[dict[str, Any], ...] | None
    secrets: frozenset[str]
    warnings: tuple[Problem, ...]
    masked: dict[str, str]  # secret-bearing rendered string -> its masked form


def _digest(request: dict[str, Any]) -> int:
    try:  # flat requests (the common case) hash as they are, far cheaper than JSON
        return hash(frozenset(request.items()))
    except TypeError:
        return hash(canonical_json(request))


class CollectionExpander:
    """Expands one collection; collects problems instead of stopping at the first."""

    def __init__(
        self,
        *,
        name: str,
        path: DocPath,
        compiler: TemplateCompiler,
        functions: Callable[[bool], Functions],
        variables: dict[str, Any],
        report: Locate,
    ) -> None:
        self.name, self.path, self.compiler, self.report = name, path, compiler, report
        self.functions = functions(False)
        self.make_functions = functions
        self.variables = variables
        self.base = {**compiler.jinja_globals, **self.functions.as_dict(), **variables}
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def _problem(self, entry: _Entry, error: TemplateProblem) -> None:
        head, *rest = error.path
        origin = entry.origin.get(str(head), (*entry.path, head))
        self.problems.append(self.report((*origin, *rest), error.message))

    def prepare(self, path: DocPath, request: dict[str, Any], defaults: dict[str, Any]) -> None:
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
            check = CHECKS.get(key)
            message = check(const) if check and renderable is None else None
            if message:
                self.problems.append(self.report(origin[key], message))
            entry.fields.append((key, const, renderable))
        entry.foreach = merged.get("foreach") or {}
        try:
            self._loops(entry, entry.foreach)
        except TemplateProblem as e:
            self._problem(entry, e)
        self.entries.append(entry)

    def _loops(self, entry: _Entry, foreach: dict[str, Any]) -> None:
        names, values, tainted = [], [], []
        for name, value in foreach.items():
            before = self.functions.env_calls
            names.append(name)
            try:
                values.append(self._loop_values(self.base, name, value))
            except TemplateProblem as e:
                if self.functions.env_calls == before:
                    raise
                raise self._shown_loop_error(name, value, e) from None
            tainted.append(self.functions.env_calls != before)
            self._note((*entry.path, "foreach", name), tainted=tainted[-1])
        entry.loop_names, entry.loop_values = tuple(names), tuple(values)
        entry.loop_tainted = tuple(tainted)

    def _note(self, at: DocPath, *, tainted: bool = True) -> None:
        """Turn what the functions noted (a reversed date_range) into warnings at `at`.

        Dates made with env() are not quoted (`tainted`; assumed while rendering requests).
        """
        for note in sorted(self.functions.notes):
            if tainted and self.functions.used_env:
                note = re.sub(r"date_range\([^)]*\)", "date_range(...)", note)
            self.warnings.append(self.report(at, f"{note}, in collection {self.name!r}"))
        self.functions.notes.clear()

    def _shown_loop_error(self, name: str, value: Any, error: TemplateProblem) -> TemplateProblem:
        """A loop that failed with env(): its error as the masked evaluation words it."""
        try:
            self._loop_values(self._masked_base(), name, value)
        except TemplateProblem as masked_error:
            return masked_error
        return TemplateProblem(
            error.path, "fails with the value of env() (not shown: the error may quote it)"
        )

    def _loop_values(self, base: dict[str, Any], name: str, value: Any) -> Sequence[Any]:
        where: DocPath = ("foreach", name)
        if isinstance(value, str):
            return as_loop_values(self.compiler.evaluate(value, base, where), where)
        items = []
        for i, item in enumerate(value):
            const, renderable = self.compiler.compile_value(item, (*where, i))
            items.append(const if renderable is None else renderable.render(base))
        return items

    entries: list[_Entry]

    def expand(
        self, requests: list[tuple[DocPath, dict[str, Any]]], defaults: dict[str, Any], cap: int
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
        kept: list[dict[str, Any]] = []
        dropped: set[int] = set()
        first_dup = None
        dedup = Dedup(kept, _digest)
        index = 0
        for entry, rendered in self._render(self.base, check=True):
            for request in rendered:
                if not dedup.add(request):
                    dropped.add(index)
                    first_dup = first_dup or entry.path
                index += 1
        del dedup
        if self.problems:
            return None
        self._note(self.path)  # noted while rendering the requests themselves
        warnings = self.warnings
        if dropped:
            count = len(dropped)
            message = (
                f"{count:,} request{'s' if count > 1 else ''} of collection {self.name!r} "
                f"{'are' if count > 1 else 'is'} identical to earlier ones after expansion "
                "and sent once"
            )
            warnings.append(self.report(first_dup or self.path, message))
        secrets = frozenset(s for s in self.functions.secrets if s)
        if not self.functions.used_env:
            return Expansion(tuple(kept), None, secrets, tuple(warnings), {})
        display = self._display(dropped)
        return Expansion(
            tuple(kept), display, secrets, tuple(warnings), secret_pairs(kept, display)
        )

    def _render(
        self,
        base: dict[str, Any],
        *,
        check: bool,
        loops: Callable[[_Entry], tuple[Sequence[Any], ...]] | None = None,
    ) -> Iterator[tuple[_Entry, Iterator[dict[str, Any]]]]:
        """Each entry with its requests in order (to be read before the next entry);
        with `check`, an entry stops at its first problem."""
        for entry in self.entries:
            if loops is not None:
                yield entry, self._requests(entry, base, loops(entry), None)
                continue
            checks = None
            if check:
                checks = [
                    (k, RENDERED_CHECKS[k])
                    for k, _, r in entry.fields
                    if r is not None and k in RENDERED_CHECKS
                ]
            yield entry, self._requests(entry, base, entry.loop_values, checks)

    def _requests(
        self,
        entry: _Entry,
        base: dict[str, Any],
        loop_values: Sequence[Sequence[Any]],
        checks: list[tuple[str, Callable[[Any], str | None]]] | None,
    ) -> Iterator[dict[str, Any]]:
        """One request per combination, in order; `checks` None: the display pass."""
        names, fields = entry.loop_names, entry.fields
        tainted_loop = any(entry.loop_tainted)
        # One context for the entry, its loop names bound again for each request: templates
        # only read it (the sandbox is immutable; a `set` stays in Jinja's own context).
        ctx = base.copy() if names else base
        for combo in itertools.product(*loop_values):
            ctx.update(zip(names, combo, strict=True))
            calls = self.functions.env_calls
            try:
                request = {k: c if r is None else r.render(ctx) for k, c, r in fields}
            except TemplateProblem as e:
                if checks is not None:
                    tainted = tainted_loop or self.functions.env_calls != calls
                    self._problem(entry, self._shown_error(entry, combo, e) if tainted else e)
                    return
                # Display pass: a value computed from a secret is shown masked whole.
                request = {k: c if r is None else SECRET_MASK for k, c, r in fields}
            for key, problem_of in checks or ():
                message = problem_of(request[key])
                if message:
                    tainted = tainted_loop or self.functions.env_calls != calls
                    self._reject(entry, key, message, tainted=tainted)
                    return
            yield request

    def _reject(self, entry: _Entry, key: str, message: str, *, tainted: bool) -> None:
        """Record that the rendered `key` fails its check."""
        if tainted:  # the value came from env(): say what is wrong, never what it is
            message = message.split(", got ")[0] + ", got a value made with env()"
        self.problems.append(self.report(entry.origin[key], message))

    def _masked_base(self) -> dict[str, Any]:
        masked = self.make_functions(True)
        return {**self.compiler.jinja_globals, **masked.as_dict(), **self.variables}

    def _masked_loops(self, entry: _Entry, base: dict[str, Any]) -> tuple[Sequence[Any], ...]:
        """The loop values as the display sees them: env()-made ones computed with "***".

        The display must have the same number of requests in the same order, so a loop
        whose masked values differ in number (or fail) shows "***" for each of its items.
        """
        shown: list[Sequence[Any]] = []
        for name, real, tainted in zip(
            entry.loop_names, entry.loop_values, entry.loop_tainted, strict=True
        ):
            if not tainted:
                shown.append(real)
                continue
            try:
                values = self._loop_values(base, name, entry.foreach[name])
            except (TemplateProblem, ValueError):
                values = ()
            shown.append(values if len(values) == len(real) else [SECRET_MASK] * len(real))
        return tuple(shown)

    def _shown_error(
        self, entry: _Entry, combo: tuple[Any, ...], error: TemplateProblem
    ) -> TemplateProblem:
        """The error of a render that used env(), as the masked render words it.

        Jinja's messages may quote the values they choke on; the same template rendered
        with env() as "***" fails the same way in nearly every case, quoting only "***".
        """
        base = self._masked_base()
        ctx = base.copy()
        # The item at the same position of each masked loop stands for the real one.
        for name, real, values, item in zip(
            entry.loop_names, entry.loop_values, self._masked_loops(entry, base), combo, strict=True
        ):
            ctx[name] = values[_index_of(real, item)]
        for key, _const, renderable in entry.fields:
            if renderable is not None and key == error.path[0]:
                try:
                    renderable.render(ctx)
                except TemplateProblem as masked_error:
                    return masked_error
        return TemplateProblem(
            error.path, "fails with the value of env() (not shown: the error may quote it)"
        )

    def _display(self, dropped: set[int]) -> tuple[dict[str, Any], ...]:
        base = self._masked_base()
        shown = []

        def loops(entry: _Entry) -> tuple[Sequence[Any], ...]:
            return self._masked_loops(entry, base)

        index = 0
        for _entry, requests in self._render(base, check=False, loops=loops):
            for request in requests:
                if index not in dropped:
                    shown.append(tidy_display(request))
                index += 1
        return tuple(shown)


def _index_of(values: Sequence[Any], item: Any) -> int:
    for index, value in enumerate(values):
        if value is item or value == item:
            return index
    return 0
