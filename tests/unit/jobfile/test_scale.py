"""Job files at scale (issue #17 point 4): large foreach entries, many files, and files read
in worker processes, compared on everything a user sees: requests, counts, warnings,
problems with their file, line, column, path and message.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from sprunner.errors import JobFileError
from sprunner.jobfile import parallel
from sprunner.jobfile.load import Loaded, load
from sprunner.settings import Selection

LOOP = '{i: "{{ range(300) }}"}'  # 300 requests


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def entry_file(url: str, *, extra: str = "", foreach: str = LOOP, **fields: str) -> str:
    lines = [f'      - url: "{url}"', f"        foreach: {foreach}"]
    lines += [f'        {key}: "{value}"' for key, value in fields.items()]
    return (
        f"version: 1\nvars:\n  site: https://a.example.com\n{extra}"
        "collections:\n  - name: c\n    requests:\n" + "\n".join(lines) + "\n"
    )


def outcome(path: Path, **kw: Any) -> tuple[Any, ...]:
    """What a user sees of a load: problems, or requests and warnings."""
    try:
        loaded = load(Selection(paths=(path,)), **kw)
    except JobFileError as error:
        return ("problems", [str(p) for p in error.problems])
    return ("ok", *_seen(loaded))


def _seen(loaded: Loaded) -> tuple[Any, ...]:
    return (
        [(c.name, c.file, c.line, c.requests, loaded.requests_in(c)) for c in loaded.collections],
        [str(w) for w in loaded.warnings],
    )


def test_a_large_entry_renders_every_request_in_order(tmp_path: Path) -> None:
    text = entry_file(
        "{{ site }}/p/{{ i }}?q={{ i }}{{ site }}", custom_id="id-{{ i }}", format="{{ f }}"
    )
    text = text.replace("vars:\n", "vars:\n  f: markdown\n").replace(
        "collections:", "defaults:\n  use_proxy: {proxy: any}\ncollections:"
    )
    seen = outcome(write(tmp_path, "f.yaml", text))
    requests = seen[1][0][3]
    assert len(requests) == 300
    assert requests[7] == {
        "url": "https://a.example.com/p/7?q=7https://a.example.com",
        "custom_id": "id-7",
        "format": "markdown",
        "use_proxy": {"proxy": "any"},
    }
    assert list(requests[7]) == ["url", "custom_id", "format", "use_proxy"]
    assert [r["custom_id"] for r in requests] == [f"id-{n}" for n in range(300)]
    assert requests[0]["use_proxy"] is requests[1]["use_proxy"]  # template-free: shared


SCHEMES = '{p: ["https://", "ftp://"], i: "{{ range(150) }}"}'  # bad from request 150 on


@pytest.mark.parametrize(
    ("url", "foreach", "fields", "expected"),
    [
        # A rendered value fails its check late in the entry: one problem, at the entry.
        ("{{ p }}a.example.com/{{ i }}", SCHEMES, {}, "expected an absolute http"),
        ("{{ site }}/{{ i }}", LOOP, {"custom_id": "{{ i }}" + "x" * 253}, "longer than 255"),
        ("{{ site }}/{{ i }}", LOOP, {"format": "{{ i }}"}, "expected html or markdown"),
        ("{{ site }}/{{ nope }}/{{ i }}", LOOP, {}, "'nope' is undefined"),
        # A foreach item the sandbox left undefined fails when made text.
        ("{{ site }}/{{ i }}/{{ j }}", '{i: "{{ range(300) }}", j: "{{ [1, nope] }}"}', {}, "nope"),
    ],
)
def test_the_first_problem_of_a_large_entry_is_reported_once(
    tmp_path: Path, url: str, foreach: str, fields: dict[str, str], expected: str
) -> None:
    text = entry_file(url, foreach=foreach, **fields)
    seen = outcome(write(tmp_path, "f.yaml", text))
    assert seen[0] == "problems"
    (problem,) = seen[1]
    assert problem.startswith(f"{tmp_path / 'f.yaml'}:") and expected in problem


def test_a_bad_url_late_in_a_large_entry_keeps_its_line(tmp_path: Path) -> None:
    # Requests 0..149 pass, the 150th fails its check: reported with the file's line and
    # column of the entry's url.
    text = entry_file("{{ p }}a.example.com/{{ i }}", foreach=SCHEMES)
    text = text.replace("      - url:", "      - url: https://a.example.com/first\n      - url:")
    assert outcome(write(tmp_path, "f.yaml", text))[1] == [
        f"{tmp_path / 'f.yaml'}:8:14: collections[0].requests[1].url: "
        'expected an absolute http or https URL with a host, got "ftp://a.example.com/0"'
    ]


def test_duplicates_in_large_entries_are_found_and_sent_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sprunner.jobfile import expand

    text = entry_file("{{ site }}/{{ i % 100 }}") + (
        f'      - url: "https://a.example.com/{{{{ i }}}}"\n        foreach: {LOOP}\n'
    )
    path = write(tmp_path, "f.yaml", text)
    seen = outcome(path)
    (collection,), (warning,) = seen[1], seen[2]
    assert [r["url"] for r in collection[3]] == [
        f"https://a.example.com/{n}" for n in [*range(100), *range(100, 300)]
    ]
    assert "300 requests of collection 'c' are identical to earlier ones" in warning
    assert ":7:9: collections[0].requests[0]: " in warning  # the first entry with one
    # Every digest equal: the comparison with the kept request still tells them apart.
    monkeypatch.setattr(expand, "_digest", lambda request: 0)
    assert outcome(path) == seen


def test_the_run_policy_cache_locates_each_collections_problem(tmp_path: Path) -> None:
    block = "    requests:\n      - url: https://a.example.com/\n    run:\n      timeout: 0s\n"
    text = "version: 1\ncollections:\n" + "".join(f"  - name: c{n}\n{block}" for n in range(3))
    problems = outcome(write(tmp_path, "f.yaml", text))[1]
    assert [p.split(": ")[0] for p in problems] == [
        f"{tmp_path / 'f.yaml'}:{line}:16" for line in (7, 12, 17)
    ]
    assert all("expected a duration above zero" in p for p in problems)


def many_files(folder: Path) -> Path:
    """Files with every kind of cross-file and per-file outcome, in a known order."""
    for n in range(12):
        name = "dup" if n in (3, 9) else ("Case" if n == 10 else f"c{n}")
        url = "{{ site }}/{{ i }}" if n != 6 else "{{ site }}/{{ i % 2 }}"
        text = entry_file(url).replace("name: c", f"name: {name}")
        if n == 5:
            text = text.replace("requests:", "requests:\n      - url: ftp://bad")
        if n == 7:
            text = text.replace("version: 1", "version: 1\nunknown: 1")
        write(folder, f"f{n:02d}.yaml", text)
    write(folder, "f12.yaml", entry_file("{{ site }}/x").replace("name: c", "name: case"))
    return folder


def test_workers_merge_in_file_order_as_one_process_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = many_files(tmp_path)
    pools = spy_on_workers(monkeypatch)
    selection = Selection(paths=(folder,))
    results = []
    for workers in (1, 2, 3):
        with pytest.raises(JobFileError) as raised:
            load(selection, keep_requests=False, workers=workers)
        results.append([str(p) for p in raised.value.problems])
    assert pools == [2, 3]  # files 2 to 13 were read by workers
    assert results[0] == results[1] == results[2]
    assert [p[len(str(folder)) + 1 :].split(": ")[:2] for p in results[0]] == [
        ["f05.yaml:7:14", "collections[0].requests[0].url"],
        ["f07.yaml:2:1", "unknown"],
        ["f09.yaml:5:11", "collections[0].name"],
    ]
    assert "duplicate collection name 'dup' (also at " in results[0][2]


def spy_on_workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Workers from the second file on; the list of their pools' sizes. (Forking is
    allowed although other tests of this process may have left idle threads behind.)"""
    monkeypatch.setattr(parallel, "SERIAL_SECONDS", 0.0)
    monkeypatch.setattr(parallel, "_can_fork", lambda: True)
    pools: list[int] = []
    real = parallel._in_workers

    def spied(jobs: Any, cap: int, workers: int) -> Any:
        pools.append(workers)
        return real(jobs, cap, workers)

    monkeypatch.setattr(parallel, "_in_workers", spied)
    return pools


def test_workers_give_the_same_counts_and_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = many_files(tmp_path)
    for n in (3, 5, 7):
        (folder / f"f{n:02d}.yaml").unlink()
    pools = spy_on_workers(monkeypatch)
    selection = Selection(paths=(folder,))
    one = load(selection, keep_requests=False, workers=1)
    two = load(selection, keep_requests=False, workers=2)
    assert pools == [2]
    assert _seen(one) == _seen(two)
    assert one.counts == two.counts
    assert one.counts is not None and one.counts["c6"] == 2
    assert [c.name for c in one.collections] == [c.name for c in two.collections]
    warnings = _seen(two)[1]
    assert any("'case' differs from 'Case'" in w for w in warnings)
    assert any("298 requests of collection 'c6' are identical" in w for w in warnings)


def test_no_fork_while_another_thread_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    folder = many_files(tmp_path)
    for n in (3, 5, 7):
        (folder / f"f{n:02d}.yaml").unlink()
    monkeypatch.setattr(parallel, "SERIAL_SECONDS", 0.0)
    forked: list[int] = []
    real = parallel._in_workers
    monkeypatch.setattr(
        parallel, "_in_workers", lambda jobs, cap, w: forked.append(w) or real(jobs, cap, w)
    )
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        loaded = load(Selection(paths=(folder,)), keep_requests=False, workers=2)
    finally:
        release.set()
        other.join()
    assert forked == []  # read here, one file after the other
    assert _seen(loaded) == _seen(load(Selection(paths=(folder,)), keep_requests=False, workers=1))
