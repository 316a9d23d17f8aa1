"""Large foreach entries rendered by one generated function (issue #17 point 4).

An entry whose templates are all text and `{{ name }}` (templates.py's fast path) and whose
names are all loop variables or defined variables is compiled into one Python generator:
the loop values are bound to locals and each request dict is built by f-strings in one
expression, instead of a context dict copied per request and one call per field. 5,000,000
templated requests spend most of their time there.

It yields exactly what the general path (expand.py) renders: the same dicts with the same
keys in the same order, `str()` of each value as Jinja's output does, template-free values
shared. The general path stays the reference for everything else: the generated function
stops at the first request it cannot render (a value whose `str()` fails) or whose rendered
value fails its check (checks.STRING_PASSES), and returns how many it yielded; the general
path takes over at that same request and reports the problem as always.

The generated source is built only from the entry's keys through `repr()`, generated local
names (`_l0`, `_b0`, `_c0`, `_t0`...: never a name from the job file) and a fixed skeleton,
and runs without builtins. The templates' text is passed in (`_t0`...), never written into
the source, so entries alike but for their text (a thousand collections, each with its own
URLs) share one compiled function: only entries of fewer than `MIN_SIZE` requests, where
the general path is as fast, do not take it.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Generator, Sequence
from typing import Any

from sprunner.jobfile.checks import STRING_PASSES
from sprunner.jobfile.templates import Renderable, fast_parts

MIN_SIZE = 16

Field = tuple[str, Any, Renderable | None]  # key, constant, template (None: the constant)
_Maker = Callable[..., Generator[dict[str, Any], None, int]]


def fast_requests(
    fields: Sequence[Field],
    loop_names: Sequence[str],
    loop_values: Sequence[Sequence[Any]],
    base: dict[str, Any],
) -> Generator[dict[str, Any], None, int] | None:
    """The entry's requests in order, or None when the entry does not qualify. The
    generator returns how many it yielded: fewer than all when it met a problem."""
    if math.prod(len(values) for values in loop_values) < MIN_SIZE:
        return None
    local = {name: f"_l{index}" for index, name in enumerate(loop_names)}
    bound: list[Any] = []  # values of the defined variables used, as `_b0`, `_b1`...
    consts: list[Any] = []
    texts: list[str] = []  # the templates' literal text, as `_t0`, `_t1`...
    items, checks = [], []
    for key, const, renderable in fields:
        if renderable is None:
            items.append(f"{key!r}: _c{len(consts)}")
            consts.append(const)
            continue
        parts = fast_parts(renderable)
        if parts is None:
            return None
        pieces = []
        for index, part in enumerate(parts):
            if index % 2 == 0:
                if part:
                    pieces.append(f"{{_t{len(texts)}}}")
                    texts.append(part)
                continue
            if part not in local:
                if part not in base:
                    return None  # undefined: the general path says so
                local[part] = f"_b{len(bound)}"
                bound.append(base[part])
            pieces.append(f"{{{local[part]}!s}}")
        items.append(f'{key!r}: f"{"".join(pieces)}"')
        if key in STRING_PASSES:
            checks.append(key)
    source = _source(len(loop_names), len(consts), len(bound), len(texts), items, checks)
    passes = tuple(STRING_PASSES[key] for key in checks)
    maker = _compiled(source)
    values = (tuple(consts), tuple(bound), tuple(texts))
    return maker(itertools.product, loop_values, *values, passes, Exception)


def _source(
    loops: int, consts: int, bound: int, texts: int, items: list[str], checks: list[str]
) -> str:
    def unpack(prefix: str, count: int, name: str) -> list[str]:
        return [f"    {''.join(f'{prefix}{i}, ' for i in range(count))}= {name}"] if count else []

    target = "".join(f"_l{i}, " for i in range(loops)) or "_"
    passed = " and ".join(f"_k{i}(_r[{key!r}])" for i, key in enumerate(checks)) or "True"
    lines = [
        "def _make(_product, _loops, _c, _b, _t, _k, _Error):",
        *unpack("_c", consts, "_c"),
        *unpack("_b", bound, "_b"),
        *unpack("_t", texts, "_t"),
        *unpack("_k", len(checks), "_k"),
        "    _n = 0",
        "    try:",
        f"        for {target} in _product(*_loops):",
        "            _r = {" + ", ".join(items) + "}",
        f"            if not ({passed}):",
        "                return _n",
        "            yield _r",
        "            _n += 1",
        "    except _Error:",
        "        pass",
        "    return _n",
    ]
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> _Maker:
    namespace: dict[str, Any] = {"__builtins__": {}}
    exec(compile(source, "<sprunner foreach entry>", "exec"), namespace)
    maker: _Maker = namespace["_make"]
    return maker
