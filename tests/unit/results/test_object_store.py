"""Results to S3 through s3fs, against a real S3-compatible server on loopback (moto).

Not a mock of fsspec: the bytes go over a socket to a server that speaks the S3 protocol,
and are read back the same way.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.results.drain import Drain, DrainTarget
from sprunner.results.layout import result_paths
from sprunner.results.writer import ResultWriter
from tests.s3server import moto_s3
from tests.unit.results.fakeapi import FakeJobsApi, job

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint: str) -> tuple[Any, dict[str, Any], str]:
    """An s3fs filesystem on the loopback server, its options, and a fresh bucket."""
    import s3fs

    options: dict[str, Any] = {
        "key": "testing",
        "secret": "testing",
        "endpoint_url": s3_endpoint,
        "client_kwargs": {"region_name": "eu-west-1"},
        "skip_instance_cache": True,
    }
    fs = s3fs.S3FileSystem(**options)
    bucket = f"results-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    return fs, options, bucket


def test_a_run_drained_to_s3_appears_in_one_commit(
    s3: tuple[Any, dict[str, Any], str], tmp_path: Path
) -> None:
    fs, options, bucket = s3
    paths = result_paths(
        f"s3://{bucket}/crawls", collection="shop", run_id="run-1", started=0.0, format="jsonl.gz"
    )
    api = FakeJobsApi()
    api.add(*(job(n, f"2026-11-28T12:00:00.{n:03d}Z", size=5_000) for n in range(30)))
    target = DrainTarget("shop", "col-1", "run-1", paths)
    drain = Drain(api, target, spool_dir=tmp_path, storage_options=options, warn=lambda _: None)
    asyncio.run(drain.step(api.run(30)))
    assert fs.find(bucket) == []  # nothing partial is ever visible in the store

    outcome = asyncio.run(drain.finish(api.run(30, done=True)))

    folder = f"{bucket}/crawls/collection=shop/date=1970-01-01"
    key, manifest_key = f"{folder}/run-1.jsonl.gz", f"{folder}/_run-1.manifest.json"
    assert sorted(fs.find(bucket)) == [manifest_key, key]
    data = fs.cat_file(key)
    rows = [json.loads(line) for line in gzip.decompress(data).splitlines()]
    assert [r["job_id"] for r in rows] == [f"job-{n:05d}" for n in range(30)]
    manifest = json.loads(fs.cat_file(manifest_key))
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == outcome.file.sha256
    assert manifest["lines"] == 30 and manifest["bytes"] == len(data)
    assert list(tmp_path.iterdir()) == []  # the spool is cleaned up


def test_parquet_to_s3_resumed_from_the_spool(
    s3: tuple[Any, dict[str, Any], str], tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    fs, options, bucket = s3
    paths = result_paths(
        f"s3://{bucket}", collection="shop", run_id="run-2", started=0.0, format="parquet"
    )
    writer = ResultWriter(paths, spool_dir=tmp_path, storage_options=options)
    writer.write({"job_id": "a", "status": "completed"})
    position = writer.commit()
    writer.write({"job_id": "lost in the kill", "status": "completed"})
    writer.close()

    resumed = ResultWriter(paths, resume=position, spool_dir=tmp_path, storage_options=options)
    resumed.write({"job_id": "b", "status": "completed"})
    resumed.publish({})

    with fs.open(paths.data.removeprefix("s3://"), "rb") as handle:
        table = pq.read_table(handle)
    assert table.column("job_id").to_pylist() == ["a", "b"]
