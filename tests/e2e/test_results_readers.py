"""A results tree reads as one table in every tool analysts use (issue 25, SPEC §7).

Several runs of several collections (retries, a run where every job timed out, a run where
every job failed), in Parquet and in gzip JSON lines, on a local disk and on an S3 server
(moto's, on loopback), are read with the default settings of DuckDB, pyarrow.dataset,
pandas and Polars: each gives the same row count, the same columns and the same types (the
declared schema), and the README's latest-outcome query the right answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.server import running_emulator
from sprunner.results.rowschema import NAMES, arrow_schema
from tests.e2e import readers
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.e2e.readers import DECLARED, PARTITIONS, Reading, Tree
from tests.s3server import moto_s3

pytest.importorskip("duckdb")
pytest.importorskip("polars")
pytest.importorskip("pandas")

# `flaky3` fails its first three attempts: the first run and both its retries, then
# succeeds in the second run. The README's old query (the most attempts wins) answered
# the first run's failure for it; the latest outcome is the second run's success.
JOB = """
version: 1
defaults: {{}}
collections:
  - name: shop
    requests:
      - url: https://shop.test/ok
      - url: https://shop.test/a/flaky3
        custom_id: a
      - url: https://shop.test/b/flaky
      - url: https://shop.test/fail
        custom_id: f
      - url: https://shop.test/blocked
    run: {{poll_interval: 0.1s, max_failed: 100%, retry: {{attempts: 2}}}}
    results: {{to: "{to}", format: {fmt}}}
  - name: late
    requests:
      - url: "https://late.test/{{{{ i }}}}/timeout"
        foreach: {{i: "{{{{ range(3) }}}}"}}
    run: {{poll_interval: 0.1s, max_failed: 100%}}
    results: {{to: "{to}", format: {fmt}}}
  - name: broken
    requests:
      - url: "https://broken.test/{{{{ i }}}}/fail"
        foreach: {{i: "{{{{ range(2) }}}}"}}
    run: {{poll_interval: 0.1s, max_failed: 100%}}
    results: {{to: "{to}", format: {fmt}}}
"""

ROWS = (5 + 3 + 2) * 2  # each collection's requests, in each of two applies
LATEST = {
    ("shop", "https://shop.test/ok", None): ("completed", 1),
    ("shop", "https://shop.test/a/flaky3", "a"): ("completed", 1),
    ("shop", "https://shop.test/b/flaky", None): ("completed", 1),
    ("shop", "https://shop.test/fail", "f"): ("failed", 3),
    ("shop", "https://shop.test/blocked", None): ("failed", 3),
    **{("late", f"https://late.test/{i}/timeout", None): ("timeout", 1) for i in range(3)},
    **{("broken", f"https://broken.test/{i}/fail", None): ("failed", 1) for i in range(2)},
}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs")
    with moto_s3() as url:
        yield url


def _bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, str]]:
    """A fresh bucket, and fsspec configured for it as a user would (FSSPEC_S3_*)."""
    import fsspec.config
    import s3fs

    region = "eu-west-1"
    options = {"key": "testing", "secret": "testing", "endpoint_url": endpoint}
    monkeypatch.setitem(
        fsspec.config.conf, "s3", {**options, "client_kwargs": {"region_name": region}}
    )
    fs = s3fs.S3FileSystem(
        skip_instance_cache=True, client_kwargs={"region_name": region}, **options
    )
    name = f"readers-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return fs, {
        "bucket": name,
        "endpoint": endpoint,
        "key": "testing",
        "secret": "testing",
        "region": region,
    }


def _write_tree(tmp_path: Path, to: str, fmt: str) -> list[str]:
    """Two applies of every collection; the second run id of each collection."""
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        job = write_job(tmp_path, JOB.format(to=to, fmt=fmt))
        for _ in range(2):
            result, report = sprunner.apply(job)
            assert result.exit_code == 0, result.output
            assert all("results" in c["run"] for c in report["collections"]), report
        engine = emulator.engine
        by_collection: dict[str, list[str]] = {}
        for run_id, run in engine.runs.items():
            name = engine.collections[run.collection_id].name
            by_collection.setdefault(name, []).append(run_id)
    return [runs[1] for name, runs in by_collection.items() if not name.endswith(".retry")]


def _check(reading: Reading, *, partitions: bool = True, latest: bool = True) -> None:
    assert reading.rows == ROWS
    expected = NAMES + PARTITIONS if partitions else NAMES
    assert reading.columns == expected, reading.columns
    assert {c: reading.types[c] for c in NAMES} == DECLARED


def _check_latest(reading: Reading, second_runs: list[str]) -> None:
    answer = {key: value[:2] for key, value in reading.latest.items()}
    assert answer == LATEST
    assert {value[2] for value in reading.latest.values()} == set(second_runs)


@pytest.mark.parametrize("place", ["local", "s3"])
def test_a_parquet_tree_reads_as_one_table_in_every_tool(
    tmp_path: Path, place: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, s3 = None, None
    if place == "local":
        tree = Tree("parquet", str(tmp_path / "results"))
    else:
        fs, s3 = _bucket(request.getfixturevalue("s3_endpoint"), monkeypatch)
        tree = Tree("parquet", f"{s3['bucket']}/crawls", s3)
    second = _write_tree(tmp_path, f"s3://{tree.root}" if s3 else tree.root, "parquet")

    readings = {
        "duckdb": readers.duckdb(tree, fs),
        "pyarrow": readers.pyarrow_dataset(tree),
        "polars": readers.polars(tree),
        "pandas": readers.pandas(tree),
    }
    for name, reading in readings.items():
        if name == "pandas":  # NumPy dtypes: an integer column with nulls is float64
            for column in ("status_code", "retries_attempted"):
                assert reading.types[column] in ("int", "float"), reading.types[column]
                reading.types[column] = "int"
        _check(reading)
        _check_latest(reading, second)


@pytest.mark.parametrize("place", ["local", "s3"])
def test_a_json_lines_tree_reads_as_one_table(
    tmp_path: Path, place: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, s3 = None, None
    if place == "local":
        tree = Tree("jsonl.gz", str(tmp_path / "results"))
    else:
        fs, s3 = _bucket(request.getfixturevalue("s3_endpoint"), monkeypatch)
        tree = Tree("jsonl.gz", f"{s3['bucket']}/crawls", s3)
    second = _write_tree(tmp_path, f"s3://{tree.root}" if s3 else tree.root, "jsonl.gz")

    # pyarrow and Polars infer each JSON file alone: with the published schema they read
    # the one table (Polars' scan_ndjson has no hive partitioning).
    arrow = readers.pyarrow_dataset(tree, schema=arrow_schema())
    _check(arrow)
    _check_latest(arrow, second)
    # DuckDB, default settings: the declared type of every column with a value in the
    # tree; a column null everywhere (screenshot, not chosen) is DuckDB's NULL type.
    duck = readers.duckdb(tree, fs)
    assert duck.rows == ROWS and duck.columns == NAMES + PARTITIONS
    for column, kind in DECLARED.items():
        expected = kind if column in arrow.filled else "null"
        assert duck.types[column] == expected, (column, duck.types[column])
    assert "screenshot" not in arrow.filled and {"html", "status_code"} <= arrow.filled
    _check_latest(duck, second)
    _check(readers.polars(tree, schema=readers.polars_schema(arrow_schema())), partitions=False)


BIG = 40 << 20  # over what DuckDB's default maximum_object_size (16 MB) lets it read


def test_a_large_row_is_read_with_the_documented_duckdb_setting(tmp_path: Path) -> None:
    import duckdb

    out = tmp_path / "results"
    job = f"""
version: 1
collections:
  - name: big
    requests:
      - url: "https://big.test/page?size={BIG}"
      - url: https://big.test/small
    run: {{poll_interval: 0.2s}}
    results: {{to: "{out}"}}
"""
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        result, _ = sprunner.apply(write_job(tmp_path, job))
        assert result.exit_code == 0, result.output
    source = f"read_json_auto('{out}/**/*.jsonl.gz', hive_partitioning = true"
    with pytest.raises(duckdb.InvalidInputException, match="maximum_object_size"):
        duckdb.sql(f"SELECT count(*) FROM {source})").fetchall()
    readme = readers.README.read_text()
    setting = "maximum_object_size =\n  1073741824"
    assert setting in readme, "the README documents the setting large rows need"
    sql = readers.latest_outcome_sql().replace(
        "read_parquet('results/**/*.parquet', hive_partitioning = true)",
        f"{source}, maximum_object_size = 1073741824)",
    )
    rows = duckdb.sql(f"SELECT url, length(html) FROM ({sql.rstrip().rstrip(';')})").fetchall()
    sizes = dict(rows)
    assert sizes["https://big.test/small"] < 10_000
    assert sizes[f"https://big.test/page?size={BIG}"] > BIG // 2
