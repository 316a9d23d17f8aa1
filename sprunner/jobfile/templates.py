"""The sandboxed Jinja environment, its functions, and request templates.

Every string in a request entry that contains ``{{``, ``{%`` or ``{#`` is a template;
other strings (and whole sub-trees without templates) are kept as they are and shared
between the expanded requests, which is what makes a million requests affordable.

Templates made only of text and ``{{ name }}`` take a fast path (a join, no Jinja call);
it renders exactly what Jinja would (``str()`` of each value) and fails the same way on
an undefined name. Everything else runs in ``ImmutableSandboxedEnvironment`` with
``StrictUndefined``.

``range`` and ``date_range`` return sized lazy sequences, so ``foreach`` can multiply their
lengths against the request cap before a single request is built.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sprunner.jobfile.functions import ITER_LIMIT, FunctionError, Functions, LazySeq
from sprunner.jobfile.masking import SECRET_MASK
from sprunner.jobfile.quote import got
from sprunner.jobfile.yamlload import PMap

# Re-exported: load.py and expand.py take them from here.
__all__ = ["ITER_LIMIT", "SECRET_MASK", "FunctionError", "Functions", "LazySeq"]

_TEMPLATE_MARKERS = ("{{", "{%", "{#")
_EXPRESSION = re.compile(r"\s*\{\{(.*)\}\}\s*\Z", re.DOTALL)
# `{{ name }}` with plain blanks: the one tag `simple_parts` reads without Jinja's parser.
_SIMPLE_TAG = re.compile(r"\{\{[ \t\n]*([A-Za-z_][A-Za-z0-9_]*)[ \t\n]*\}\}")
# Words Jinja's parser reads as constants or operators where a name would be.
_NOT_NAMES = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if"}
    | {"else"}
)

# Where a value sits in a YAML document: keys and list indexes from the top.
DocPath = tuple[str | int, ...]


class TemplateProblem(Exception):
    """A template or a function call failed; `path` is relative to the request entry."""

    def __init__(self, path: DocPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def is_template(text: str) -> bool:
    # One scan for "{" first: most strings (hosts, ids, enum values) have none.
    return "{" in text and any(marker in text for marker in _TEMPLATE_MARKERS)


def simple_parts(source: str) -> list[str] | None:
    """The parts (text at even indexes, names at odd) of a template made of text and
    `{{ name }}` tags only, read without Jinja's parser, which costs about 0.3 ms a string:
    most of the loading of a thousand small collections, each with its own URL template.

    None when in doubt, and Jinja decides: any other tag or marker, a brace just before a
    tag, a carriage return (Jinja's lexer rewrites line ends), a name Jinja reads as a
    constant or an operator. What it accepts, Jinja parses to the same parts (tested).
    """
    parts = _SIMPLE_TAG.split(source)
    last = len(parts) - 1
    if not last:
        return None  # no tag: not a template, or one with other markers
    for i in range(0, len(parts), 2):
        text = parts[i]
        if "\r" in text:
            return None
        if "{" in text and (
            "{{" in text or "{%" in text or "{#" in text or (i < last and text[-1] == "{")
        ):
            return None
    if any(name in _NOT_NAMES for name in parts[1::2]):
        return None
    return parts


def parsed_parts(tree: Any) -> list[str] | None:
    """`simple_parts` of a template Jinja has parsed (`tree`), for what the regex leaves."""
    from jinja2 import nodes

    body = tree.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts: list[str] = [""]
    for node in body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts[-1] += node.data
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            parts += [node.name, ""]
        else:
            return None
    return parts


class Renderable(Protocol):
    def render(self, ctx: dict[str, Any]) -> Any: ...


def _join_function(parts: list[str]) -> Callable[[dict[str, Any]], str]:
    """Compile `parts` (literal text at even indexes, names at odd) to one f-string.

    This is what makes a million requests affordable: about 0.4 µs a string instead of
    about 4 µs through Jinja. The code is made once per shape (the names, and which texts
    are empty), the texts bound as closure variables: a thousand collections whose URLs
    differ only in their text compile once. The source is safe to build: names are
    identifiers and go in through `repr()`, texts never go in; `!s` is what Jinja's output
    does (`str()`).
    """
    shape = tuple(part if i % 2 else bool(part) for i, part in enumerate(parts))
    texts = [part for i, part in enumerate(parts) if i % 2 == 0 and part]
    return _join_maker(shape)(*texts)


@functools.lru_cache(maxsize=256)
def _join_maker(shape: tuple[str | bool, ...]) -> Callable[..., Callable[[dict[str, Any]], str]]:
    texts: list[str] = []
    pieces: list[str] = []
    for i, part in enumerate(shape):
        if i % 2 == 0:
            if part:
                texts.append(f"_t{len(texts)}")
                pieces.append(f"{{{texts[-1]}}}")
        else:
            pieces.append(f"{{ctx[{part!r}]!s}}")
    source = f'lambda {", ".join(texts)}: lambda ctx: f"{"".join(pieces)}"'
    maker: Callable[..., Callable[[dict[str, Any]], str]] = eval(source, {"__builtins__": {}})
    return maker


class FastSource:
    """A template of text and `{{ name }}` only: the f-string compiled from its parts
    (literal text at even indexes, names at odd ones)."""

    __slots__ = ("function",)

    def __init__(self, parts: list[str]) -> None:
        self.function = _join_function(parts)


class _Fast:
    """Text and `{{ name }}` only, rendered by a compiled f-string."""

    __slots__ = ("function", "path")

    def __init__(self, source: FastSource, path: DocPath) -> None:
        self.function, self.path = source.function, path

    def render(self, ctx: dict[str, Any]) -> str:
        try:
            return self.function(ctx)
        except KeyError as e:
            raise TemplateProblem(self.path, f"{e.args[0]!r} is undefined") from None
        except Exception as e:  # str() of a value the sandbox left undefined (a foreach item)
            raise TemplateProblem(self.path, _describe(e)) from None


class _Jinja:
    __slots__ = ("path", "template")

    def __init__(self, template: Any, path: DocPath) -> None:
        self.template, self.path = template, path

    def render(self, ctx: dict[str, Any]) -> str:
        template = self.template
        try:
            # shared=True: the context is used as it is, without a copy per request.
            context = template.new_context(ctx, shared=True)
            return str(template.environment.concat(template.root_render_func(context)))
        except Exception as e:  # any error in a user template is an input problem
            raise TemplateProblem(self.path, _describe(e)) from None


def _describe(error: Exception) -> str:
    if isinstance(error, FunctionError):
        return str(error)
    return f"{type(error).__name__}: {error}" if not str(error).startswith("'") else str(error)


class _Tree:
    """A list or mapping with templates somewhere inside."""

    __slots__ = ("items", "kind")

    def __init__(self, kind: type, items: list[tuple[Any, Any, Renderable | None]]) -> None:
        self.kind, self.items = kind, items

    def render(self, ctx: dict[str, Any]) -> Any:
        values = [(k, v if r is None else r.render(ctx)) for k, v, r in self.items]
        return dict(values) if self.kind is dict else [v for _, v in values]


def plain(value: Any) -> Any:
    """A PMap/PSeq tree as plain dicts and lists (what leaves the job-file stage)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class TemplateCompiler:
    """Compiles strings once per distinct source; one instance per `load()`."""

    def __init__(self) -> None:
        from jinja2 import StrictUndefined

        from sprunner.jobfile.sandbox import JobFileSandbox

        self.env = JobFileSandbox(
            undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
        )
        globals_ = dict(self.env.globals)
        globals_.pop("range", None)  # ours is sized and lazy
        self.jinja_globals = globals_
        self._cache: dict[str, Any] = {}
        self._expressions: dict[str, Any] = {}

    def compile_string(self, source: str, path: DocPath) -> Renderable:
        """Raises TemplateProblem for a syntax error."""
        compiled = self._cache.get(source)
        if compiled is None:
            compiled = self._cache[source] = self._compile(source, path)
        return _Fast(compiled, path) if isinstance(compiled, FastSource) else _Jinja(compiled, path)

    def _compile(self, source: str, path: DocPath) -> Any:
        from jinja2 import TemplateSyntaxError

        simple = simple_parts(source)
        if simple is not None:
            return FastSource(simple)
        try:
            tree = self.env.parse(source)
            parts = parsed_parts(tree)
            # The tree is compiled as it is: parsing the source again cost as much.
            return FastSource(parts) if parts is not None else self.env.from_string(tree)
        except TemplateSyntaxError as e:
            raise TemplateProblem(path, f"template syntax error: {e.message}") from None
        except (RecursionError, MemoryError) as e:  # absurdly nested expressions
            raise TemplateProblem(path, f"template too complex: {type(e).__name__}") from None

    def compile_value(self, value: Any, path: DocPath) -> tuple[Any, Renderable | None]:
        """(constant, None) for a template-free value, else (None, renderable)."""
        if isinstance(value, str):
            return (None, self.compile_string(value, path)) if is_template(value) else (value, None)
        if isinstance(value, (dict, list)):
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            items = [(k, *self.compile_value(v, (*path, k))) for k, v in pairs]
            if all(r is None for _, _, r in items):
                return plain(value), None
            return None, _Tree(dict if isinstance(value, dict) else list, items)
        return value, None

    def evaluate(self, source: str, ctx: Mapping[str, Any], path: DocPath) -> Any:
        """Evaluate a `"{{ expr }}"` string to a native value (used by `foreach`)."""
        from jinja2 import TemplateSyntaxError, Undefined

        match = _EXPRESSION.match(source)
        if match is None:
            raise TemplateProblem(path, 'expected a list or a "{{ expression }}" string')
        expression = self._expressions.get(source)
        try:
            if expression is None:
                expression = self.env.compile_expression(match[1], undefined_to_none=False)
                self._expressions[source] = expression
            result = expression(**ctx)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
        except TemplateSyntaxError as e:
            raise TemplateProblem(path, f"template syntax error: {e.message}") from None
        except Exception as e:  # any error in a user expression is an input problem
            raise TemplateProblem(path, _describe(e)) from None
        return result


def as_loop_values(value: Any, path: DocPath) -> Sequence[Any]:
    """A foreach value as a sized sequence; strings and mappings are refused."""
    if isinstance(value, (LazySeq, range)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, bytes, dict, PMap)) or not hasattr(value, "__iter__"):
        raise TemplateProblem(path, f"expected a list, got {got(value)}")
    return list(value)
