"""Hostile job files: nothing in a job file can run code, read outside its tree, or exhaust
the machine. Each case goes through the CLI (`sprunner validate`) and must give exit 2, a
located message, no traceback, and (for the bombs) stay under a time and memory bound.

- templates are sandboxed: attribute escapes (`''.__class__.__mro__`, `range.__globals__`,
  `cycler` / `joiner` / `namespace` internals, `attr()` and `format()` tricks) are refused;
- `lines()` reads only inside the job-file tree: not `../`, not an absolute path, not
  through a symlink that points out;
- YAML tags cannot construct objects (`!!python/object/apply:os.system` runs nothing);
- sizes are capped: alias bombs ("billion laughs"), deep nesting, huge files, foreach
  products past the request cap, and template values that would take gigabytes
  (`'a' * 10**10`, `'x'.zfill(10**10)`, `'%999999999s' % x`, `replace` chains...) fail fast.

The single-file corpus in `tests/badfiles/` checks exact messages; this module is the
security view of the same ground, with the bounds measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner, Result

from sprunner.cli.app import cli

TIME_BOUND = 5.0  # seconds for any one hostile file
MEMORY_BOUND = 64 * 1024 * 1024  # bytes of Python allocations at the peak


def validate(path: Path) -> Result:
    result = CliRunner().invoke(cli, ["validate", str(path)], catch_exceptions=False)
    assert "Traceback" not in result.output, result.output
    return result


def bounded_validate(path: Path) -> Result:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = validate(path)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < TIME_BOUND, f"{elapsed:.1f} s"
    assert peak < MEMORY_BOUND, f"{peak / 2**20:.0f} MiB at the peak"
    return result


def one_request(tmp_path: Path, request: str, name: str = "jobs.yaml") -> Path:
    path = tmp_path / name
    body = textwrap.indent(textwrap.dedent(request).strip(), " " * 8)
    path.write_text(f"version: 1\ncollections:\n  - name: c\n    requests:\n      - {body[8:]}\n")
    return path


# -- the sandbox ---------------------------------------------------------------------------
ESCAPES = [
    "''.__class__.__mro__",
    "''.__class__.__mro__[1].__subclasses__()",
    "range.__globals__",
    "env.__globals__",
    "lines.__self__",
    "cycler.__init__.__globals__.os",
    "joiner.__init__.__globals__",
    "namespace.__init__.__globals__",
    "cycler(1, 2).next.__func__.__globals__",
    "(''|attr('__class__')).__base__",
    "'{0.__class__}'.format('')",
    "'%s'|format(''.__class__)",
    "self._TemplateReference__context",
    "dict.__subclasses__()",
    "[].__class__.__base__",
    "().__class__.__bases__",
]


@pytest.mark.parametrize("expression", ESCAPES)
def test_the_sandbox_blocks_attribute_escapes(tmp_path: Path, expression: str) -> None:
    for where in ("url", "foreach"):
        if where == "url":
            request = f'url: "https://x.example/{{{{ {expression} }}}}"'
        else:
            request = (
                f'url: "https://x.example/{{{{ x }}}}"\nforeach: {{x: "{{{{ [{expression}] }}}}"}}'
            )
        result = validate(one_request(tmp_path, request))
        assert result.exit_code == 2, result.output
        assert "jobs.yaml:" in result.output
        assert "SecurityError" in result.output or "is undefined" in result.output


def test_lipsum_is_not_offered(tmp_path: Path) -> None:
    result = validate(one_request(tmp_path, 'url: "https://x.example/{{ lipsum(10**7) }}"'))
    assert result.exit_code == 2 and "'lipsum' is undefined" in result.output


def test_templates_cannot_mutate(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "version: 1\nvars: {x: [1]}\ncollections:\n  - name: c\n    requests:\n"
        '      - url: "https://x.example/{{ x.append(1) or x }}"\n'
    )
    result = validate(path)
    assert result.exit_code == 2 and "SecurityError" in result.output


# -- lines() stays in the tree -------------------------------------------------------------
def test_lines_cannot_leave_the_job_file_tree(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("https://secret.example/\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link.txt").symlink_to(secret)
    (tree / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    for target in (
        "../secret.txt",
        str(secret),
        "link.txt",
        "linkdir/secret.txt",
        "sub/../../secret.txt",
        "/etc/passwd",
        "/proc/self/environ",
    ):
        request = f'url: "{{{{ u }}}}"\nforeach: {{u: "{{{{ lines(\'{target}\') }}}}"}}'
        result = validate(one_request(tree, request))
        assert result.exit_code == 2, (target, result.output)
        assert "may not read outside the job-file tree" in result.output, result.output
        assert "secret.example" not in result.output


def test_lines_inside_the_tree_works(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "urls.txt").write_text("https://a.example/\n")
    request = 'url: "{{ u }}"\nforeach: {u: "{{ lines(\'data/urls.txt\') }}"}'
    assert validate(one_request(tmp_path, request)).exit_code == 0


# -- YAML cannot construct objects ---------------------------------------------------------
@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/apply:subprocess.check_call [[touch, '{marker}']]",
        "!!python/object/new:pathlib.Path ['{marker}']",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/object:argparse.Namespace {{a: 1}}",
    ],
)
def test_yaml_tags_cannot_run_code(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "version: 1\ncollections:\n  - name: c\n    requests:\n"
        f"      - url: https://x.example/\n        x-note: {tag.format(marker=marker)}\n"
    )
    result = validate(path)
    assert result.exit_code == 2 and "unsupported tag !!python/" in result.output, result.output
    assert not marker.exists()


# -- resource caps -------------------------------------------------------------------------
def test_alias_bomb_fails_fast_and_small(tmp_path: Path) -> None:
    lines = ["x-a: &a [" + ", ".join(["lol"] * 10) + "]"]
    for prev, name in zip("abcdefghijk", "bcdefghijkl", strict=False):
        lines.append(f"x-{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nversion: 1\ncollections: []\n")
    result = bounded_validate(path)
    assert result.exit_code == 2 and "too many values once aliases are expanded" in result.output


def test_deep_nesting_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    depth = 100_000
    path.write_text("version: 1\nx-deep: " + "[" * depth + "]" * depth + "\ncollections: []\n")
    result = bounded_validate(path)
    assert result.exit_code == 2 and "nesting deeper than" in result.output


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("version: 1\ncollections: []\n" + "# padding\n" * 2_000_000)
    result = bounded_validate(path)
    assert result.exit_code == 2, result.output


def test_a_foreach_product_past_the_cap_fails_without_building_it(tmp_path: Path) -> None:
    request = """
        url: "https://x.example/{{ a }}/{{ b }}"
        foreach:
          a: "{{ range(10**9) }}"
          b: "{{ range(10**9) }}"
    """
    result = bounded_validate(one_request(tmp_path, request))
    assert result.exit_code == 2 and "over the cap" in result.output, result.output


BOMBS = [
    "'a' * 10**10",
    "[1] * 10**10",
    "10 ** (10 ** 10)",
    "'%999999999s' % 'x'",
    "'%*s' % (10**9, 'x')",
    "'x'|format() ~ '%*s'|format(10**9, 'x')",
    "'x' | center(10**10)",
    "'x'.zfill(10**10)",
    "'x'.ljust(10**10)",
    "'x'.center(10**10)",
    "'{:>999999999}'.format('x')",
    "'{:{w}}'.format('x', w=10**9)",
    "'ab' | replace('a', 'a' * 10**5) | replace('a', 'a' * 10**5)",
    "'a,b'.replace(',', 'c' * 10**7)",
    "range(10**5) | join('a' * 10**5)",
    "('a' * 10**6) | wordwrap(1, true, 'b' * 100)",
    "('a\n' * 10**6) | indent(100)",
]


@pytest.mark.parametrize("expression", BOMBS)
def test_template_values_that_would_take_gigabytes_fail_fast(
    tmp_path: Path, expression: str
) -> None:
    request = f'url: "https://x.example/{{{{ {expression} }}}}"'.replace("\n", "\\n")
    result = bounded_validate(one_request(tmp_path, request))
    assert result.exit_code == 2, result.output
    assert "jobs.yaml:5:" in result.output


def test_modest_values_are_still_fine(tmp_path: Path) -> None:
    expression = "'a' * 10 ~ 2 ** 64 ~ '%05d' % 7 ~ '{:0>5}'.format('x') ~ 'x' | center(9) | trim"
    result = validate(one_request(tmp_path, f'url: "https://x.example/{{{{ {expression} }}}}"'))
    assert result.exit_code == 0, result.output


# -- the job-file tree: symlinked folders, FIFOs, devices, loops (issue #12 points 4-6) ----
def job_file(folder: Path, name: str, collection: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        f"version: 1\ncollections:\n  - name: {collection}\n    requests:\n"
        "      - url: https://x.example/\n"
    )
    return path


def validate_json(*paths: Path) -> dict[str, object]:
    """`validate --json` in a subprocess with a deadline: a hang fails, never blocks."""
    command = [sys.executable, "-m", "sprunner", "validate", "--json", *map(str, paths)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**os.environ}, check=False
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    document: dict[str, object] = json.loads(done.stdout) if done.stdout.strip() else {}
    document["exit_code"] = done.returncode
    document["stderr"] = done.stderr
    return document


def test_symlinked_folders_inside_the_tree_are_followed_once(tmp_path: Path) -> None:
    tree = tmp_path / "jobs"
    job_file(tree / ".shared", "a.yaml", "from-link")  # hidden: reached only by the link
    job_file(tree, "b.yaml", "plain")
    (tree / "linked").symlink_to(tree / ".shared", target_is_directory=True)
    (tree / "loop").symlink_to(tree, target_is_directory=True)  # a loop back to the top
    (tree / ".shared" / "again").symlink_to(tree / ".shared", target_is_directory=True)
    started = time.perf_counter()
    result = validate_json(tree)
    assert time.perf_counter() - started < 30
    assert result["exit_code"] == 0, result
    names = sorted(c["name"] for c in result["collections"])  # type: ignore[attr-defined]
    assert names == ["from-link", "plain"]  # each file once, the linked one not skipped


def test_a_symlinked_folder_leaving_the_tree_is_refused(tmp_path: Path) -> None:
    tree = tmp_path / "jobs"
    job_file(tree, "b.yaml", "plain")
    job_file(tmp_path / "elsewhere", "a.yaml", "outside")
    (tree / "out").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    result = validate_json(tree)
    assert result["exit_code"] == 2, result
    (error,) = result["errors"]  # type: ignore[misc]
    assert error["file"] == str(tree / "out")
    assert "leads outside the job-file tree" in error["message"]


def test_special_files_named_yaml_are_refused_without_hanging(tmp_path: Path) -> None:
    tree = tmp_path / "jobs"
    job_file(tree, "good.yaml", "good")
    os.mkfifo(tree / "fifo.yaml")
    (tree / "loop.yaml").symlink_to(tree / "loop.yaml")
    (tree / "zero.yaml").symlink_to("/dev/zero")
    (tree / "gone.yaml").symlink_to(tree / "missing.yaml")
    started = time.perf_counter()
    result = validate_json(tree)
    assert time.perf_counter() - started < 30
    assert result["exit_code"] == 2, result
    messages = {Path(e["file"]).name: e["message"] for e in result["errors"]}  # type: ignore[attr-defined]
    assert messages == {
        "fifo.yaml": "not a regular file: it is a FIFO (named pipe)",
        "gone.yaml": "cannot read: No such file or directory",
        "loop.yaml": "cannot read: a symlink loop",
        "zero.yaml": "not a regular file: it is a character device",
    }


def test_lines_of_a_fifo_or_a_folder_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "urls.txt")
    (tmp_path / "dir.txt").mkdir()  # (a device resolves outside the tree: refused earlier)
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    cases = (("urls.txt", "FIFO"), ("dir.txt", "a directory"), ("loop.txt", "a symlink loop"))
    for name, reason in cases:
        request = f'url: "{{{{ u }}}}"\nforeach: {{u: "{{{{ lines(\'{name}\') }}}}"}}'
        path = one_request(tmp_path, request)
        result = validate_json(path)
        assert result["exit_code"] == 2, result
        (error,) = result["errors"]  # type: ignore[misc]
        assert error["line"] == 6 and reason in error["message"], error


@pytest.mark.parametrize("name", ["shop\\n", "shop\\n\\n", "\\nshop", "shop\\r"])
def test_a_name_with_a_newline_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(
        f'version: 1\ncollections:\n  - name: "{name}"\n    tags: ["daily\\n"]\n'
        "    requests:\n      - url: https://x.example/\n"
    )
    result = validate(path)
    assert result.exit_code == 2, result.output
    assert "jobs.yaml:3:11: collections[0].name: expected letters" in result.output
    assert "collections[0].tags[0]" in result.output


def test_names_differing_only_by_case_warn(tmp_path: Path) -> None:
    job_file(tmp_path, "a.yaml", "Shop")
    job_file(tmp_path, "b.yaml", "shop")
    result = validate_json(tmp_path)
    assert result["exit_code"] == 0
    (warning,) = result["warnings"]  # type: ignore[misc]
    assert warning["file"] == str(tmp_path / "b.yaml") and warning["line"] == 3
    assert "'shop' differs from 'Shop'" in warning["message"]
    assert str(tmp_path / "a.yaml") in warning["message"]


# -- env() values through filters, loops and escapes (issue #12 points 1-2) ----------------
def test_render_and_validate_never_show_a_short_secret_through_filters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = 'Zq"\\7'  # 5 characters (under the old 6-character floor), a quote, a backslash
    monkeypatch.setenv("SPRUNNER_HOSTILE_TOKEN", secret)
    path = tmp_path / "jobs.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            collections:
              - name: c
                requests:
                  - url: "https://x.example/?t={{ env('SPRUNNER_HOSTILE_TOKEN') | urlencode }}"
                    headers:
                      A: "{{ env('SPRUNNER_HOSTILE_TOKEN') | upper | trim }}"
                      B: "{{ env('SPRUNNER_HOSTILE_TOKEN') | replace('q', 'Q') }}-suffix"
                      C: "{{ env('SPRUNNER_HOSTILE_TOKEN') | tojson }}"
                  - url: "https://x.example/{{ t | urlencode }}"
                    foreach: {t: "{{ [env('SPRUNNER_HOSTILE_TOKEN') | lower] }}"}
            """
        )
    )
    result = CliRunner().invoke(cli, ["render", "--json", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    forms = {secret, secret.upper(), secret.lower(), secret.replace("q", "Q")}
    forms |= {quote(f, safe="") for f in forms} | {json.dumps(f)[1:-1] for f in forms}
    forms |= {quote_plus(f) for f in forms}
    leaked = sorted(f for f in forms if f in result.output)
    assert not leaked, (leaked, result.output)
    assert "https://x.example/?t=***" in result.output
    assert "https://x.example/***" in result.output


def test_a_bad_url_made_with_env_is_reported_without_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPRUNNER_HOSTILE_HOST", "intranet-db")
    path = one_request(tmp_path, "url: \"{{ env('SPRUNNER_HOSTILE_HOST') | upper }}/x\"")
    result = validate(path)
    assert result.exit_code == 2
    assert "jobs.yaml:5:" in result.output and "made with env()" in result.output
    assert "INTRANET-DB" not in result.output and "intranet-db" not in result.output
