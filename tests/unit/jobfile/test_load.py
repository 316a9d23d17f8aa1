"""load(): files → desired collections, or every problem at once."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from sprunner.errors import JobFileError, UsageError
from sprunner.jobfile.load import discover, load
from sprunner.jobfile.model import MaxFailed, RunPolicy
from sprunner.settings import Selection, Shard

SPEC_EXAMPLE = """\
version: 1
vars:
  shop: https://shop.example.com
defaults:
  use_proxy: any
x-common: &common
  browser: true
collections:
  - name: shop-categories
    tags: [daily, shop]
    requests:
      - url: https://shop.example.com/
      - url: "{{ shop }}/c/{{ cat }}?page={{ page }}"
        foreach:
          cat: [shoes, hats]
          page: "{{ range(1, 4) }}"
        <<: *common
        custom_id: "{{ cat }}-{{ page }}"
    run:
      when: always
      schedule: "0 */6 * * *"
      timeout: 30m
      poll_interval: 5s
      max_failed: 2%
      overlap: skip
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def collection_file(name: str, body: str, *, extra: str = "") -> str:
    return f"version: 1\n{extra}collections:\n  - name: {name}\n    requests:\n" + body


def problems_of(*paths: Path, **kw: object) -> list[str]:
    with pytest.raises(JobFileError) as raised:
        load(Selection(paths=paths, **kw))  # type: ignore[arg-type]
    return [str(p) for p in raised.value.problems]


def test_spec_example(tmp_path: Path) -> None:
    path = write(tmp_path, "shop.yaml", SPEC_EXAMPLE)
    loaded = load(Selection(paths=(path,)))
    assert loaded.warnings == ()
    (collection,) = loaded.collections
    assert collection.name == "shop-categories"
    assert collection.file == str(path)
    assert collection.line == 9
    assert collection.tags == ("daily", "shop")
    urls = [r["url"] for r in collection.requests]
    assert urls == ["https://shop.example.com/"] + [
        f"https://shop.example.com/c/{cat}?page={page}"
        for cat in ("shoes", "hats")
        for page in (1, 2, 3)
    ]
    assert collection.requests[0] == {"url": "https://shop.example.com/", "use_proxy": "any"}
    assert collection.requests[1] == {
        "url": "https://shop.example.com/c/shoes?page=1",
        "browser": True,
        "custom_id": "shoes-1",
        "use_proxy": "any",
    }
    assert collection.run == RunPolicy(
        when="always",
        schedule="0 */6 * * *",
        timeout=1800.0,
        poll_interval=5.0,
        max_failed=MaxFailed(count=None, percent=2.0),
        overlap="skip",
    )
    assert collection.secrets == frozenset() and collection.display_requests is None


def test_vars_defaults_and_types(tmp_path: Path) -> None:
    text = collection_file(
        "c",
        '      - url: "{{ base }}/{{ n }}"\n        custom_id: "{{ n }}"\n'
        "        headers: {A: b}\n        x-ignored: 1\n",
        extra="vars: {base: 'https://file.example.com', n: 1}\n"
        "defaults: {headers: {X: y}, format: markdown, browser: true}\n",
    ).replace("    requests:", "    vars: {base: 'https://coll.example.com'}\n    requests:")
    (collection,) = load(Selection(paths=(write(tmp_path, "f.yaml", text),))).collections
    assert collection.requests == (
        {
            "url": "https://coll.example.com/1",
            "custom_id": "1",  # a template renders to a string
            "headers": {"A": "b"},  # shallow: the request's headers replace the defaults'
            "format": "markdown",
            "browser": True,  # a YAML boolean stays a boolean
        },
    )


def test_duplicates_are_sent_once_with_a_warning(tmp_path: Path) -> None:
    body = (
        '      - url: "https://a.example.com/{{ i }}"\n        foreach: {i: [1, 2, 1]}\n'
        "      - url: https://a.example.com/2\n"
    )
    loaded = load(Selection(paths=(write(tmp_path, "f.yaml", collection_file("c", body)),)))
    assert [r["url"] for r in loaded.collections[0].requests] == [
        "https://a.example.com/1",
        "https://a.example.com/2",
    ]
    (warning,) = loaded.warnings
    assert warning.line == 5 and "2 requests of collection 'c' are identical" in warning.message


def test_empty_collection_is_a_warning_and_kept(tmp_path: Path) -> None:
    write(tmp_path, "empty.txt", "\n  \n")
    body = (
        '      - url: "https://a.example.com/{{ x }}"\n'
        "        foreach: {x: \"{{ lines('empty.txt') }}\"}\n"
    )
    path = write(tmp_path, "f.yaml", collection_file("c", body))
    loaded = load(Selection(paths=(path,)))
    assert loaded.collections[0].requests == ()
    assert [str(w) for w in loaded.warnings] == [
        f"{path}:3:5: collections[0]: collection 'c' has no requests after expansion; "
        "it will not be run"
    ]


def test_every_problem_of_every_file_at_once(tmp_path: Path) -> None:
    one = write(tmp_path, "a.yaml", collection_file("same", "      - url: /relative\n"))
    two = write(
        tmp_path,
        "b.yaml",
        collection_file("same", '      - url: "{{ nope }}"\n') + "    run: {timeout: 0s}\n",
    )
    three = write(tmp_path, "c.yaml", "version: 1\ncollections: 5\n")
    assert problems_of(tmp_path) == [
        f"{one}:5:14: collections[0].requests[0].url: expected an absolute http or https URL "
        'with a host, got "/relative"',
        f"{two}:3:11: collections[0].name: duplicate collection name 'same' (also at {one}:3)",
        f"{two}:6:20: collections[0].run.timeout: expected a duration above zero such as 90s "
        "or 1h30m",
        f"{two}:5:14: collections[0].requests[0].url: 'nope' is undefined",
        f"{three}:2:14: collections: expected a list, got 5",
    ]


def test_cap_is_checked_before_expanding(tmp_path: Path) -> None:
    body = (
        '      - url: "https://a.example.com/{{ i }}/{{ j }}"\n'
        '        foreach: {i: "{{ range(10**6) }}", j: "{{ range(10**6) }}"}\n'
    )
    path = write(tmp_path, "f.yaml", collection_file("big", body))
    start = time.perf_counter()
    assert problems_of(path) == [
        f"{path}:5:7: collections[0].requests: collection 'big' expands to "
        "1,000,000,000,000 requests, over the cap of 50,000 (--max-requests)"
    ]
    assert time.perf_counter() - start < 2


def test_cap_is_settable_and_counts_all_entries(tmp_path: Path) -> None:
    body = '      - url: "https://a.example.com/{{ i }}"\n        foreach: {i: "{{ range(3) }}"}\n'
    path = write(tmp_path, "f.yaml", collection_file("c", body + body.replace(".com/", ".com/b")))
    assert len(load(Selection(paths=(path,), max_requests=6)).collections[0].requests) == 6
    assert "expands to 6 requests, over the cap of 5" in problems_of(path, max_requests=5)[0]


def test_env_values_are_secret_and_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPRUNNER_T_TOKEN", "hunter2")
    monkeypatch.setenv("SPRUNNER_T_IDS", "7,8")
    body = (
        '      - url: "https://a.example.com/{{ id }}"\n'
        "        headers: {Authorization: \"Bearer {{ env('SPRUNNER_T_TOKEN') }}\"}\n"
        "        foreach: {id: \"{{ env('SPRUNNER_T_IDS').split(',') }}\"}\n"
    )
    path = write(tmp_path, "f.yaml", collection_file("c", body))
    (collection,) = load(Selection(paths=(path,))).collections
    assert collection.secrets == {"hunter2", "7,8"}
    assert [r["headers"]["Authorization"] for r in collection.requests] == ["Bearer hunter2"] * 2
    # Loop values made with env() are secret-bearing too (taint, not a search for "7,8").
    assert collection.shown_requests() == (
        {"url": "https://a.example.com/***", "headers": {"Authorization": "Bearer ***"}},
        {"url": "https://a.example.com/***", "headers": {"Authorization": "Bearer ***"}},
    )
    assert collection.masked == {
        "https://a.example.com/7": "https://a.example.com/***",
        "https://a.example.com/8": "https://a.example.com/***",
        "Bearer hunter2": "Bearer ***",
    }


def test_a_value_computed_from_a_secret_is_masked_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPRUNNER_T_PORT", "8080")
    body = "      - url: \"https://a.example.com:{{ env('SPRUNNER_T_PORT') | int + 1 }}/\"\n"
    (collection,) = load(
        Selection(paths=(write(tmp_path, "f.yaml", collection_file("c", body)),))
    ).collections
    assert collection.requests[0]["url"] == "https://a.example.com:8081/"
    shown = collection.shown_requests()[0]["url"]
    assert "8080" not in shown and "8081" not in shown


def test_discover_sorted_recursive_hidden_skipped(tmp_path: Path) -> None:
    for name in ("b.yaml", "a/z.yml", "a/y.yaml", ".hidden/x.yaml", "a/.skip.yaml", "c.txt"):
        write(tmp_path, name, "x")
    found = [j.display for j in discover([tmp_path])]
    assert found == [str(tmp_path / n) for n in ("a/y.yaml", "a/z.yml", "b.yaml")]
    with pytest.raises(UsageError, match="no such file or directory"):
        discover([tmp_path / "missing"])


def test_discover_needs_some_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no job files"):
        discover([tmp_path / "empty"])


def test_lines_tree_is_the_given_directory(tmp_path: Path) -> None:
    write(tmp_path, "data.txt", "a\n")
    body = (
        '      - url: "https://a.example.com/{{ x }}"\n'
        "        foreach: {x: \"{{ lines('../data.txt') }}\"}\n"
    )
    path = write(tmp_path, "sub/f.yaml", collection_file("c", body))
    assert len(load(Selection(paths=(tmp_path,))).collections[0].requests) == 1
    assert "may not read outside the job-file tree" in problems_of(path)[0]


def test_select_and_shard_after_validating(tmp_path: Path) -> None:
    for i in range(6):
        write(
            tmp_path,
            f"f{i}.yaml",
            collection_file(f"c{i}", "      - url: https://a.example.com/\n"),
        )
    selected = load(Selection(paths=(tmp_path,), select=("c1", "c[23]")))
    assert len(selected.collections) == 3
    assert selected.declared == {f"c{i}" for i in range(6)}
    assert selected.files == 6
    shards = [load(Selection(paths=(tmp_path,), shard=Shard(i, 2))).collections for i in (1, 2)]
    assert sorted(c.name for s in shards for c in s) == [f"c{i}" for i in range(6)]
    write(tmp_path, "bad.yaml", "version: 1\n")
    assert problems_of(tmp_path, select=("c1",)) == [
        f"{tmp_path / 'bad.yaml'}:1:1: missing required key 'collections'"
    ]


def test_x_keys_are_never_sent(tmp_path: Path) -> None:
    body = (
        "      - url: https://a.example.com/\n        x-note: hi\n"
        "        use_proxy: {proxy: p, x-why: cheap}\n        http_method: {method: get, x-n: 1}\n"
        "        headers: {x-api-version: '2'}\n"
    )
    path = write(tmp_path, "f.yaml", collection_file("c", body, extra="x-top: 1\n"))
    (collection,) = load(Selection(paths=(path,))).collections
    assert collection.requests == (
        {
            "url": "https://a.example.com/",
            "use_proxy": {"proxy": "p"},
            "http_method": {"method": "get"},
            "headers": {"x-api-version": "2"},
        },
    )


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("0 0 31 2 *", "the cron expression '0 0 31 2 *' never fires (no such date)"),
        ("0 0 30 2 *", "never fires"),
        ("* * * * * *", "expected a cron expression of 5 fields"),
        ("@daily", "expected a cron expression of 5 fields"),
        ("0 0 1 1", "expected a cron expression of 5 fields"),
    ],
)
def test_a_schedule_that_never_fires_or_is_not_5_fields_is_refused(
    tmp_path: Path, schedule: str, message: str
) -> None:
    body = "      - url: https://a.example.com/\n"
    text = collection_file("c", body) + f'    run:\n      schedule: "{schedule}"\n'
    (problem,) = problems_of(write(tmp_path, "f.yaml", text))
    assert problem.startswith(f"{tmp_path / 'f.yaml'}:7:17: collections[0].run.schedule: ")
    assert message in problem


def test_a_leap_day_schedule_is_accepted(tmp_path: Path) -> None:
    text = collection_file("c", "      - url: https://a.example.com/\n")
    path = write(tmp_path, "f.yaml", text + '    run:\n      schedule: "0 0 29 2 *"\n')
    assert load(Selection(paths=(path,))).collections[0].run.schedule == "0 0 29 2 *"


@pytest.mark.parametrize("days", ["'yesterday'", "1.5", "true", "none"])
def test_today_with_days_that_are_not_a_number_is_a_clear_error(tmp_path: Path, days: str) -> None:
    body = f"      - url: \"https://a.example.com/{{{{ today('%Y-%m-%d', {days}) }}}}\"\n"
    (problem,) = problems_of(write(tmp_path, "f.yaml", collection_file("c", body)))
    assert "today(): days must be a whole number of days such as -1 (yesterday)" in problem
    assert "TypeError" not in problem


def test_a_reversed_date_range_warns(tmp_path: Path) -> None:
    body = (
        '      - url: "https://a.example.com/{{ d }}"\n'
        "        foreach: {d: \"{{ date_range('2024-01-31', '2024-01-01') }}\"}\n"
        "      - url: https://a.example.com/\n"
    )
    loaded = load(Selection(paths=(write(tmp_path, "f.yaml", collection_file("c", body)),)))
    (warning,) = loaded.warnings
    assert str(warning) == (
        f"{tmp_path / 'f.yaml'}:6:22: collections[0].requests[0].foreach.d: "
        "date_range(2024-01-31, 2024-01-01) gives no date: the end is before the start "
        "(step +1 days), in collection 'c'"
    )


def test_dedup_by_digest_survives_hash_collisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sprunner.jobfile import expand

    monkeypatch.setattr(expand, "_digest", lambda request: 0)  # every request collides
    body = (
        '      - url: "https://a.example.com/{{ i % 3 }}"\n'
        '        foreach: {i: "{{ range(9) }}"}\n'
        "      - url: https://a.example.com/9\n"
    )
    loaded = load(Selection(paths=(write(tmp_path, "f.yaml", collection_file("c", body)),)))
    urls = [r["url"] for r in loaded.collections[0].requests]
    assert urls == [f"https://a.example.com/{n}" for n in (0, 1, 2, 9)]
    assert "6 requests of collection 'c' are identical" in str(loaded.warnings[0])
