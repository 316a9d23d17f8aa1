"""`results: {to: s3://...}` through a full apply, against a real S3-compatible server on
loopback (moto's server): not a mock of fsspec. The endpoint and credentials come from
fsspec's configuration, as a user would set them (`FSSPEC_S3_ENDPOINT_URL`, ...)."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.e2e.results_helpers import job_ids
from tests.e2e.test_results_apply import job_text
from tests.s3server import moto_s3

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """A fresh bucket, and fsspec configured for the loopback server (what
    `FSSPEC_S3_ENDPOINT_URL`, `FSSPEC_S3_KEY` and `FSSPEC_S3_SECRET` set)."""
    import fsspec.config
    import s3fs

    options = {
        "key": "testing",
        "secret": "testing",
        "endpoint_url": s3_endpoint,
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    monkeypatch.setitem(fsspec.config.conf, "s3", options)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    name = f"results-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return fs, name


def test_an_apply_delivers_to_s3_in_one_commit_per_file(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    fs, name = bucket
    with running_emulator(mode="simulate", run_seconds=1.0) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        result, report = sprunner.apply(write_job(tmp_path, job_text(f"s3://{name}/crawls")))
        assert result.exit_code == 0, result.output
        [run_id] = list(emulator.engine.runs)
        expected = sorted(job_ids(emulator, run_id))
    keys = sorted(fs.find(name))
    assert len(keys) == 2, keys
    data_key = next(k for k in keys if k.endswith(".jsonl.gz"))
    assert data_key.startswith(f"{name}/crawls/collection=shop/date=")
    assert data_key.endswith(f"/{run_id}.jsonl.gz")
    rows = [json.loads(line) for line in gzip.decompress(fs.cat_file(data_key)).splitlines()]
    assert sorted(r["job_id"] for r in rows) == expected
    folder = data_key.rsplit("/", 1)[0]
    manifest = json.loads(fs.cat_file(f"{folder}/_{run_id}.manifest.json"))
    assert manifest["lines"] == len(expected)
    results = report["collections"][0]["run"]["results"]
    assert results["to"] == f"s3://{name}/crawls" and results["lines"] == len(expected)
    # Staged in the state directory, and cleaned up once uploaded.
    assert list((tmp_path / "state").rglob("*.part")) == []


def test_retries_fold_into_one_object_uploaded_once(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    """With `run.retry`, the one file of the run (one line per request) is uploaded once,
    after the retries; the staged rows stay in the state directory and are cleaned up."""
    from tests.e2e.retry_helpers import FLAKY

    fs, name = bucket
    job = FLAKY.replace("    run:\n", f"    results: {{to: 's3://{name}/crawls'}}\n    run:\n")
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        result, report = sprunner.apply(write_job(tmp_path, job))
        assert result.exit_code == 0, result.output
    keys = sorted(fs.find(name))
    assert len(keys) == 2, keys  # the data file and its manifest: nothing for the retries
    data_key = next(k for k in keys if k.endswith(".jsonl.gz"))
    rows = [json.loads(line) for line in gzip.decompress(fs.cat_file(data_key)).splitlines()]
    assert sorted((r["url"].rsplit("/", 1)[1], r["status"], r["attempts"]) for r in rows) == [
        ("flaky", "completed", 2), ("flaky2", "completed", 3), ("ok", "completed", 1)
    ]  # fmt: skip
    folder, file = data_key.rsplit("/", 1)
    manifest = json.loads(fs.cat_file(f"{folder}/_{file.split('.')[0]}.manifest.json"))
    assert manifest["lines"] == report["collections"][0]["run"]["results"]["lines"] == 3
    assert len(manifest["retries"]) == 2
    assert list((tmp_path / "state").rglob("*.part")) == []


def test_with_a_state_url_uploads_are_never_staged_in_a_shared_spool(
    bucket: tuple[Any, str], tmp_path: Path, state_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `--state-url` there is no state directory to stage uploads in. Another local
    user may have made the shared `/tmp/sprunner-spool` first, writable by anyone: it is
    never used; uploads are staged in a private directory (mkdtemp, 0700) of the process."""
    import tempfile

    from sprunner.results import writer

    fs, name = bucket
    shared_tmp = tmp_path / "tmp"
    shared_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared_tmp))  # the machine's shared /tmp
    monkeypatch.setattr(writer, "_private_spool", None)
    hostile = shared_tmp / "sprunner-spool"
    hostile.mkdir()
    hostile.chmod(0o777)
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        job = write_job(tmp_path, job_text(f"s3://{name}/crawls", n=5))
        result, report = sprunner.apply(job, "--state-url", state_db)
        assert result.exit_code == 0, result.output
        [run_id] = list(emulator.engine.runs)
    assert list(hostile.iterdir()) == [], f"nothing staged in {hostile}"
    private = [p for p in shared_tmp.iterdir() if p.name.startswith("sprunner-spool-")]
    assert len(private) == 1 and private[0].stat().st_mode & 0o777 == 0o700
    assert list(private[0].iterdir()) == [], "the staged file is gone once uploaded"
    keys = [k for k in fs.find(name) if k.endswith(f"/{run_id}.jsonl.gz")]
    rows = [json.loads(line) for line in gzip.decompress(fs.cat_file(keys[0])).splitlines()]
    assert len(rows) == 11 == report["collections"][0]["run"]["results"]["lines"]
