"""No env() value in what sprunner writes to a results file (SPEC §2: never written): a
request's url and custom_id are written as their masked renders, whatever filter the value
went through, and the rows of the retries still fold into one line per request. The
scraped bodies are the site's own answer and are written as they came."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.results_helpers import data_file, read_rows
from tests.e2e.retry_helpers import runs_of, sprunner

__all__ = ["sprunner"]  # the fixture the tests take

SECRET = 's3cr"T'  # a quote: JSON escapes it, which substring masking would miss

JOB = """
version: 1
collections:
  - name: shop
    requests:
      - url: "https://shop.example.com/ok?t={{{{ env('SHOP_TOKEN') | urlencode }}}}"
      - url: "https://shop.example.com/flaky/{{{{ env('SHOP_TOKEN') | lower }}}}"
        custom_id: "id-{{{{ env('SHOP_TOKEN') }}}}"
    results: {{to: '{to}'}}
    run:
      poll_interval: 0.1s
      retry: {{attempts: 1}}
"""


# What the target site sent, written as it came: a page that echoes its own URL holds it.
SCRAPED = ("html", "markdown", "extracted_data", "screenshot")


def _no_secret_under(root: Path) -> None:
    """Nothing sprunner writes holds the secret: manifests whole, every row but the
    scraped bodies."""
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".jsonl.gz") for p in files), files
    for path in files:
        if path.name.endswith(".jsonl.gz"):
            rows = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
            data = json.dumps([{k: v for k, v in r.items() if k not in SCRAPED} for r in rows])
        else:
            data = path.read_text()
        for shown in (SECRET, SECRET.lower(), "s3cr%22T", 's3cr\\"T'):
            assert shown not in data, (path, shown)


def test_results_files_hold_no_env_value_and_retries_still_fold(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", SECRET)
    out = tmp_path / "results"
    job = write_job(tmp_path, JOB.format(to=out))
    result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    assert report["collections"][0]["run"]["results"]["lines"] == 2
    [parent] = runs_of(sprunner, "shop")
    rows = read_rows(data_file(out, "shop", parent))
    assert sorted((r["status"], r["attempts"]) for r in rows) == [
        ("completed", 1),
        ("completed", 2),  # the flaky one, settled by its retry: one line, not two
    ]
    assert all("***" in r["url"] for r in rows)
    assert [r["custom_id"] for r in rows if r["custom_id"]] == ["id-***"]
    _no_secret_under(out)

    # `sprunner results` of the same run, with the job file that declares it: masked too.
    again = tmp_path / "again"
    result = sprunner("results", "shop", str(job), "--to", str(again))
    assert result.exit_code == 0, result.output
    _no_secret_under(again)
    assert SECRET not in result.output
