"""Outside input at the results' edges is an error with its exit code, never a crash
(SPEC §10 "No crash from outside input").

- A scraped page holding a lone UTF-16 surrogate (`"\\ud800"` in the JSON the API sends)
  is written, escaped, in every format; no apply crashes on it (it used to exit 70, and
  every later apply adopted the run and crashed again).
- An S3 endpoint that cannot be reached when the file is uploaded fails the collection
  (exit 1, its rows pending), never exit 70; the next apply, with the store back, uploads.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.bodies import RESULT_INLINE_CAP
from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.e2e.hostile import CID, PREFIX, RID, Answer, Call, Hostile, Rule
from tests.e2e.results_helpers import data_file, leftovers, read_rows, run_ids

BIG = RESULT_INLINE_CAP + 1000  # fetched alone, through the result call the rule answers

JOB = """
version: 1
collections:
  - name: shop
    requests:
      - url: "https://shop.test/odd?size={big}"
      - url: https://shop.test/plain
    run: {{poll_interval: 0.1s}}
    results: {{to: "{to}", format: {fmt}}}
"""


def odd_page(call: Call) -> Answer:
    """A result whose page holds lone surrogates, escaped in JSON as the wire has them."""
    text = '{"url": "https://shop.test/odd", "html": "<p>a\\ud800b</p>", "statusCode": 200, '
    text += '"extracted_data": {"k\\udfff": ["\\ud83d"]}, "markdown": "ok \\ud83d\\ude00"}'
    return Answer(200, text.encode())


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    hostile = Hostile(
        [Rule("GET", f"{PREFIX}/{CID}/runs/{RID}/jobs/(?P<jid>[^/]+)/result", odd_page)]
    )
    with running_emulator(mode="simulate", run_seconds=0.2, wrap=hostile.wrap) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


@pytest.mark.parametrize("fmt", ["jsonl.gz", "jsonl", "parquet"])
def test_a_page_with_lone_surrogates_is_written_escaped(
    sprunner: Sprunner, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "results"
    job = write_job(tmp_path, JOB.format(big=BIG, to=out, fmt=fmt))
    result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    [run_id] = run_ids(sprunner.emulator)
    rows = {r["url"]: r for r in read_rows(data_file(out, "shop", run_id, fmt))}
    odd = rows[f"https://shop.test/odd?size={BIG}"]
    assert odd["html"] == "<p>a\\ud800b</p>"  # the text \ud800: valid Unicode everywhere
    assert json.loads(odd["extracted_data"]) == {"k\\udfff": ["\\ud83d"]}
    assert odd["markdown"] == "ok \U0001f600"  # a pair is one character, kept as it is
    assert report["collections"][0]["run"]["results"]["lines"] == 2
    # The next apply neither crashes nor finds anything pending.
    result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    assert "results_pending" not in report["collections"][0]
    assert leftovers(tmp_path) == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_store_at_upload_is_an_error_and_the_rows_stay_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("s3fs")
    import fsspec.config

    from tests.s3server import moto_s3

    def use(endpoint: str) -> None:
        options: dict[str, Any] = {"key": "testing", "secret": "testing"}
        options |= {"endpoint_url": endpoint, "client_kwargs": {"region_name": "eu-west-1"}}
        options["config_kwargs"] = {"retries": {"max_attempts": 1}, "connect_timeout": 2}
        monkeypatch.setitem(fsspec.config.conf, "s3", options)

    job = JOB.format(big=100, to="s3://crawls/shop", fmt="jsonl.gz")
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        path = write_job(tmp_path, job)
        use(f"http://127.0.0.1:{_closed_port()}")
        result, report = sprunner.apply(path)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and "crash" not in result.output
        shop = report["collections"][0]
        assert "results of run" in shop["error"] and shop["results_pending"]
        [run_id] = run_ids(emulator)

        with moto_s3() as endpoint:
            use(endpoint)
            import s3fs

            fs = s3fs.S3FileSystem(
                key="testing", secret="testing", endpoint_url=endpoint, skip_instance_cache=True
            )
            fs.mkdir("crawls")
            result, report = sprunner.apply(path)
            assert result.exit_code == 0, result.output
            assert [e["run_id"] for e in report["collections"][0]["results_caught_up"]] == [run_id]
            names = {k.rsplit("/", 1)[1] for k in fs.find("crawls")}
            assert {f"_{run_id}.manifest.json", f"{run_id}.jsonl.gz"} <= names
    assert not list((tmp_path / "state").rglob("*.part"))
