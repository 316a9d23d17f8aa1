"""The Jinja sandbox of job files: Jinja's own guards, plus bounds on what one value may cost.

`ImmutableSandboxedEnvironment` stops attribute escapes (`''.__class__`, `x.__globals__`)
and mutation, but not sizes: `'a' * 10**10`, `'%999999999s' % x`, `'x' | center(10**10)`,
`'x'.zfill(10**10)`, `'{:>999999999}'.format(x)` or a chain of `replace` would each try to
allocate gigabytes before anything could fail. Here each such operation checks the size of
its result first and refuses, with a message, a result over MAX_SIZE characters or items.
`lipsum` (unbounded text, slow) is not offered: no job file needs it.

Imported only when templates are compiled: jinja2 is a heavy import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sized
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SIZE = 10_000_000  # characters of a string, items of a list
MAX_POWER_BITS = 100_000  # of an integer built with **
# A field width or precision of 8 digits or more in a % or {} format is at least MAX_SIZE.
_HUGE_WIDTH = re.compile(r"\d{8}")
_NESTED_WIDTH = re.compile(r"\{[^{}]*:[^{}]*\{")


def _too_big(what: str, size: int) -> SecurityError:
    return SecurityError(f"{what} would make {size:,} characters or items (limit {MAX_SIZE:,})")


def _check_repeat(sequence: Any, times: Any) -> None:
    if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
        size = len(sequence) * times
        if size > MAX_SIZE:
            raise _too_big("*", size)


def _check_int_args(what: str, args: tuple[Any, ...]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and arg > MAX_SIZE:
            raise _too_big(what, arg)


def _check_format(what: str, template: str, args: Any) -> None:
    if _HUGE_WIDTH.search(template):
        raise SecurityError(f"{what}: a field width or precision over {MAX_SIZE:,}")
    if "*" in template:  # widths taken from the arguments
        _check_int_args(what, args if isinstance(args, tuple) else (args,))


def _check_replace(text: Any, old: Any, new: Any, count: Any = None) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        found = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        size = len(text) + found * (len(new) - len(old))
        if size > MAX_SIZE:
            raise _too_big("replace", size)


def _bounded_filter(name: str, check: Callable[..., None], real: Callable[..., Any]) -> Any:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return real(*args, **kwargs)

    bounded.__name__ = name
    # Keep Jinja's pass_context / pass_eval_context markers.
    bounded.jinja_pass_arg = getattr(real, "jinja_pass_arg", None)  # type: ignore[attr-defined]
    return bounded


def _check_join(*args: Any, **kwargs: Any) -> None:
    args = args[1:]  # the eval context
    value = args[0] if args else kwargs.get("value")
    separator = args[1] if len(args) > 1 else kwargs.get("d", "")
    if isinstance(separator, str) and isinstance(value, Sized):
        size = len(separator) * len(value)
        if size > MAX_SIZE:
            raise _too_big("join", size)


def _check_center(*args: Any, **kwargs: Any) -> None:
    _check_int_args("center", (*args[1:], *kwargs.values()))


def _check_indent(text: Any = "", width: Any = 4, *args: Any, **kwargs: Any) -> None:
    width = kwargs.get("width", width)
    if isinstance(text, str):
        each = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        size = len(text) + (text.count("\n") + 1) * each
        if size > MAX_SIZE:
            raise _too_big("indent", size)


def _check_wordwrap(*args: Any, **kwargs: Any) -> None:
    args = args[1:]  # the environment
    text = args[0] if args else ""
    width = args[1] if len(args) > 1 else kwargs.get("width", 79)
    wrap = args[3] if len(args) > 3 else kwargs.get("wrapstring") or "\n"
    if isinstance(text, str) and isinstance(width, int) and isinstance(wrap, str):
        size = len(text) + len(wrap) * (len(text) // max(width, 1) + 1)
        if size > MAX_SIZE:
            raise _too_big("wordwrap", size)


class JobFileSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        filters = self.filters
        filters["replace"] = _bounded_filter(
            "replace", lambda *a, **k: _check_replace(*a[1:], **k), filters["replace"]
        )
        filters["join"] = _bounded_filter("join", _check_join, filters["join"])
        filters["wordwrap"] = _bounded_filter("wordwrap", _check_wordwrap, filters["wordwrap"])
        filters["format"] = _bounded_filter(
            "format", lambda v, *a, **k: _check_format("format", str(v), a), filters["format"]
        )
        filters["center"] = _bounded_filter("center", _check_center, filters["center"])
        filters["indent"] = _bounded_filter("indent", _check_indent, filters["indent"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                bits = right * left.bit_length()
                if bits > MAX_POWER_BITS:
                    raise SecurityError(f"** would make a {bits:,}-bit number")
        elif operator == "%" and isinstance(left, str):
            _check_format("%", left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # str methods that grow a string by an argument: center, ljust, zfill, expandtabs...
        if isinstance(getattr(__obj, "__self__", None), str):
            name = getattr(__obj, "__name__", "")
            if name == "replace":
                _check_replace(__obj.__self__, *args, **kwargs)
            elif name == "join":
                _check_join(None, args[0] if args else (), __obj.__self__)
            else:
                _check_int_args(f"str.{name}", (*args, *kwargs.values()))
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`'{:>999999999}'.format(x)` and friends: check the widths before formatting."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = str(value.__self__)

        def bounded(*args: Any, **kwargs: Any) -> str:
            _check_format("str.format", template, ())
            if _NESTED_WIDTH.search(template):  # '{:{w}}': widths taken from the arguments
                _check_int_args("str.format", (*args, *kwargs.values()))
            return wrapped(*args, **kwargs)

        return bounded
