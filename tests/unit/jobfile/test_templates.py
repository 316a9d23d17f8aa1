"""The sandboxed templates and their functions."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sprunner.jobfile.templates import (
    Functions,
    LazySeq,
    TemplateCompiler,
    TemplateProblem,
    as_loop_values,
    is_template,
    parsed_parts,
    simple_parts,
)


@pytest.fixture
def compiler() -> TemplateCompiler:
    return TemplateCompiler()


def render(compiler: TemplateCompiler, source: str, **ctx: Any) -> Any:
    const, renderable = compiler.compile_value(source, ("k",))
    return const if renderable is None else renderable.render(ctx)


@pytest.mark.parametrize(
    "value", [1, 2.5, 1e16, True, None, "text", "ünïcode", [1, "a"], {"a": 1}, 10**30]
)
@pytest.mark.parametrize("source", ["{{ v }}", "a{{ v }}b{{ v }}", "'\"{{v}}\\n{", "{{ v }}\n"])
def test_fast_path_renders_exactly_like_jinja(
    compiler: TemplateCompiler, source: str, value: Any
) -> None:
    fast = compiler.compile_string(source, ("k",))
    assert type(fast).__name__ == "_Fast"
    assert fast.render({"v": value}) == compiler.env.from_string(source).render(v=value)


# Pieces that make Jinja's lexer and parser take every turn near a `{{ name }}` tag.
_PIECES = [
    "{{", "}}", "{", "}", " ", "\n", "\t", "\r", "\x0b", "-", "+", "~", "%", "#", "{%", "{#",
    "%}", "#}", "x", "page", "_a1", "true", "None", "not", "if", "é", "1", ".", "|", "(", "/",
    "{{ page }}", "{{x}}", "{{\tpage\n}}", "{{ true }}", "{{-x}}", "{{ x -}}", "{{ x.y }}",
    "{{ x }}", "{{ é }}", "{{ _a1 }}",
]  # fmt: skip
_JINJA = TemplateCompiler().env


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
@example("{{ site }}/c0/p/{{ page }}")
@example("a{{{ x }}")
@example("{{ x }}}")
@example("{{x}}\r\n")
@example("{{ true }}")
def test_the_regex_reads_simple_templates_as_jinja_parses_them(source: str) -> None:
    """Where the regex answers, Jinja's parser gives the same parts; where Jinja fails, the
    regex never answers (so syntax errors keep Jinja's words)."""
    from jinja2 import TemplateSyntaxError

    try:
        jinja: list[str] | str | None = parsed_parts(_JINJA.parse(source))
    except TemplateSyntaxError:
        jinja = "syntax error"
    simple = simple_parts(source)
    if simple is not None:
        assert simple == jinja, source


@pytest.mark.parametrize(
    "source",
    ["{{ site }}/c0/p/{{ page }}", "c{{i}}-p{{\tpage\n}}", "{{ a }}{{ b }}", "x{y}{{ z }}}"],
)
def test_the_regex_takes_the_common_simple_templates(source: str) -> None:
    assert simple_parts(source) == parsed_parts(_JINJA.parse(source))


def test_non_templates_are_kept(compiler: TemplateCompiler) -> None:
    assert compiler.compile_value("plain {text}", ("k",)) == ("plain {text}", None)
    assert compiler.compile_value(5, ("k",)) == (5, None)
    assert not is_template("a { b }")
    assert is_template("{% if x %}y{% endif %}")


def test_numbers_stay_numbers_and_templates_give_strings(compiler: TemplateCompiler) -> None:
    _const, renderable = compiler.compile_value({"n": 1, "s": "{{ n }}", "l": [2, "{{ n }}"]}, ())
    assert renderable is not None
    assert renderable.render({"n": 7}) == {"n": 1, "s": "7", "l": [2, "7"]}


def test_full_jinja_and_filters(compiler: TemplateCompiler) -> None:
    assert render(compiler, "{{ name | upper }}-{{ n + 1 }}", name="ab", n=1) == "AB-2"
    assert render(compiler, "{% for i in range(3) %}{{ i }}{% endfor %}", range=range) == "012"


def test_trailing_newline_is_kept(compiler: TemplateCompiler) -> None:
    assert render(compiler, "{{ a | upper }}\n", a="x") == "X\n"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ missing }}", "'missing' is undefined"),
        ("{{ missing | upper }}", "'missing' is undefined"),
        (
            "{{ ''.__class__ }}",
            "SecurityError: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        ("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
    ],
)
def test_render_errors(compiler: TemplateCompiler, source: str, message: str) -> None:
    with pytest.raises(TemplateProblem) as raised:
        render(compiler, source)
    assert raised.value.message == message
    assert raised.value.path == ("k",)


def test_syntax_error(compiler: TemplateCompiler) -> None:
    with pytest.raises(TemplateProblem, match="template syntax error: unexpected '}'"):
        compiler.compile_string("{{ a }", ("k",))


def test_sandbox_is_immutable(compiler: TemplateCompiler) -> None:
    with pytest.raises(TemplateProblem, match="SecurityError"):
        render(compiler, "{{ items.append(1) }}", items=[])


def test_evaluate_gives_native_values(compiler: TemplateCompiler) -> None:
    assert compiler.evaluate("{{ [1, 'a'] }}", {}, ("x",)) == [1, "a"]
    with pytest.raises(TemplateProblem, match="'nope' is undefined"):
        compiler.evaluate("{{ nope }}", {}, ("x",))


def functions(tmp_path: Path, **kw: Any) -> dict[str, Any]:
    return Functions(base_dir=tmp_path, root=tmp_path.resolve(), **kw).as_dict()


def test_range_is_lazy_and_sized(tmp_path: Path) -> None:
    huge = functions(tmp_path)["range"](0, 10**12)
    assert len(huge) == 10**12
    assert huge[5] == 5 and huge[-1] == 10**12 - 1
    assert list(functions(tmp_path)["range"](1, 7, 2)) == [1, 3, 5]
    with pytest.raises(ValueError, match="too many to list"):
        iter(huge)


def test_range_through_a_template(compiler: TemplateCompiler, tmp_path: Path) -> None:
    ctx = functions(tmp_path)
    assert compiler.evaluate("{{ range(10**9) }}", ctx, ()).__len__() == 10**9
    assert render(compiler, "{{ range(3) | list | join(',') }}", **ctx) == "0,1,2"


def test_date_range(tmp_path: Path) -> None:
    date_range = functions(tmp_path)["date_range"]
    assert list(date_range("2024-02-27", "2024-03-01")) == [
        "2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01",
    ]  # fmt: skip
    assert list(date_range("2024-01-01", "2024-01-10", 4, "%d")) == ["01", "05", "09"]
    assert list(date_range("2024-01-03", "2024-01-01", -1)) == [
        "2024-01-03", "2024-01-02", "2024-01-01",
    ]  # fmt: skip
    assert list(date_range("2024-01-02", "2024-01-01")) == []
    assert len(date_range("1900-01-01", "9999-12-31")) > 2_900_000  # lazy, sized


def test_today_and_now(tmp_path: Path) -> None:
    today = functions(tmp_path)["today"]
    utc = dt.datetime.now(dt.timezone.utc).date()
    assert today() in {utc.isoformat(), (utc + dt.timedelta(days=1)).isoformat()}
    assert today("%Y", days=-366) <= str(utc.year - 1)
    assert functions(tmp_path)["now"]().endswith("+00:00")


def test_lines(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "skus.txt").write_text("  a \n\n b\n   \nc")
    assert functions(tmp_path)["lines"]("data/skus.txt") == ("a", "b", "c")


def test_lines_may_not_leave_the_tree(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tmp_path / "secret.txt").write_text("x\n")
    (tree / "link.txt").symlink_to(tmp_path / "secret.txt")
    lines = Functions(base_dir=tree, root=tree.resolve()).lines
    for name in ("../secret.txt", "link.txt", str(tmp_path / "secret.txt")):
        with pytest.raises(ValueError, match="may not read outside the job-file tree"):
            lines(name)


def test_lines_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"lines\('nope.txt'\): No such file"):
        functions(tmp_path)["lines"]("nope.txt")


def test_env_records_values_and_masks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPRUNNER_TEST_TOKEN", "s3cret")
    real = Functions(base_dir=tmp_path, root=tmp_path)
    assert real.env("SPRUNNER_TEST_TOKEN") == "s3cret"
    assert real.env("SPRUNNER_TEST_UNSET", "fallback") == "fallback"
    assert real.used_env and real.secrets == {"s3cret"}
    masked = Functions(base_dir=tmp_path, root=tmp_path, masked=True)
    assert masked.env("SPRUNNER_TEST_TOKEN") == "***"
    assert masked.env("SPRUNNER_TEST_UNSET", "fallback") == "***"
    with pytest.raises(ValueError, match="SPRUNNER_TEST_UNSET is not set"):
        real.env("SPRUNNER_TEST_UNSET")
    assert "SPRUNNER_TEST_UNSET" not in os.environ


def test_loop_values() -> None:
    assert as_loop_values((1, 2), ()) == [1, 2]
    seq = LazySeq(3, lambda i: i * 2, "x")
    assert as_loop_values(seq, ()) is seq
    for bad, text in [("abc", '"abc"'), ({"a": 1}, "a mapping"), (5, "5")]:
        with pytest.raises(TemplateProblem, match=f"expected a list, got {text}"):
            as_loop_values(bad, ())
