"""The result file: formats, the final name only when complete, the manifest, resume."""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from sprunner.results.errors import MissingExtraError, ResumeImpossibleError
from sprunner.results.layout import FORMATS, Format, result_paths
from sprunner.results.writer import ResultWriter, WriterPosition
from tests.unit.results.helpers import read_rows


def _paths(to: Path | str, format: Format = "jsonl.gz") -> Any:
    return result_paths(str(to), collection="shop", run_id="run-1", started=0.0, format=format)


def _row(n: int) -> dict[str, Any]:
    return {"job_id": f"j{n}", "status": "completed", "status_code": 200, "html": "é" * n}


@pytest.mark.parametrize("format", FORMATS)
def test_rows_round_trip_and_appear_only_when_published(tmp_path: Path, format: Format) -> None:
    paths = _paths(tmp_path, format)
    writer = ResultWriter(paths)
    for n in range(50):
        writer.write(_row(n))
    writer.commit()
    final, manifest = Path(paths.data), Path(paths.manifest)
    assert not final.exists() and not manifest.exists()

    published = writer.publish({"run_id": "run-1"})

    assert read_rows(final, format) == [_row(n) for n in range(50)]
    assert not writer.part.exists()
    data = json.loads(manifest.read_text())
    assert data["lines"] == published.lines == 50
    assert data["bytes"] == published.bytes == final.stat().st_size
    assert data["sha256"] == hashlib.sha256(final.read_bytes()).hexdigest()
    assert data["file"] == final.name and data["run_id"] == "run-1"


def test_the_layout_is_hive_style(tmp_path: Path) -> None:
    paths = result_paths(
        f"{tmp_path}/", collection="shop", run_id="r/../x", started=86400.0 * 365, format="jsonl"
    )
    assert paths.data == f"{tmp_path}/collection=shop/date=1971-01-01/r%2F..%2Fx.jsonl"
    # Bookkeeping starts with `_`, which Hive readers skip; a data file never does.
    assert paths.manifest.endswith("/date=1971-01-01/_r%2F..%2Fx.manifest.json")
    assert paths.part().endswith("/date=1971-01-01/_r%2F..%2Fx.jsonl.part")
    hidden = result_paths(str(tmp_path), collection="_c", run_id="_r", started=0, format="jsonl")
    assert hidden.data.endswith("/collection=_c/date=1970-01-01/%5Fr.jsonl")


def test_gzip_blocks_are_whole_members(tmp_path: Path) -> None:
    """Each flush is a complete gzip member, so any commit point is a valid cut."""
    paths = _paths(tmp_path)
    writer = ResultWriter(paths, flush_bytes=200)
    positions = []
    for n in range(30):
        writer.write(_row(n))
        if n % 7 == 6:
            positions.append(writer.commit())
    writer.close()
    data = writer.part.read_bytes()
    for position in positions:
        lines = gzip.decompress(data[: position.bytes]).splitlines()
        assert len(lines) == position.lines


@pytest.mark.parametrize("format", FORMATS)
def test_resume_cuts_back_to_the_last_commit(tmp_path: Path, format: Format) -> None:
    paths = _paths(tmp_path, format)
    writer = ResultWriter(paths, flush_bytes=100)
    for n in range(10):
        writer.write(_row(n))
    committed = writer.commit()
    for n in range(10, 15):  # written, flushed, never committed: a kill comes first
        writer.write(_row(n))
    writer.close()
    with open(writer.part, "ab") as torn:
        torn.write(b"\x1f\x8b half a member")

    resumed = ResultWriter(paths, resume=committed)
    assert list(resumed.committed_rows()) == [_row(n) for n in range(10)]
    for n in range(10, 20):
        resumed.write(_row(n))
    published = resumed.publish({})

    assert read_rows(Path(paths.data), format) == [_row(n) for n in range(20)]
    assert published.lines == 20


def test_resume_needs_the_partial_file(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    writer = ResultWriter(paths)
    writer.write(_row(1))
    position = writer.commit()
    writer.discard()
    with pytest.raises(ResumeImpossibleError, match="gone"):
        ResultWriter(paths, resume=position)
    Path(writer.part).write_bytes(b"x")
    with pytest.raises(ResumeImpossibleError, match="1 bytes"):
        ResultWriter(paths, resume=position)


def test_a_fresh_writer_replaces_a_stale_part(tmp_path: Path) -> None:
    paths = _paths(tmp_path, "jsonl")
    Path(paths.data + ".part").parent.mkdir(parents=True)
    Path(paths.data + ".part").write_text('{"job_id": "stale"}\n')
    writer = ResultWriter(paths)
    writer.write(_row(1))
    writer.publish({})
    assert read_rows(Path(paths.data), "jsonl") == [_row(1)]


def test_memory_store_gets_one_upload_at_the_end(tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    paths = _paths("memory://bucket/results")
    writer = ResultWriter(paths, spool_dir=tmp_path / "spool")
    writer.write(_row(1))
    writer.commit()
    assert writer.part.parent == tmp_path / "spool"
    assert not fs.exists(paths.data) and not fs.exists(paths.manifest)

    writer.publish({"run_id": "run-1"})

    data = fs.cat_file(paths.data)
    assert [json.loads(line) for line in gzip.decompress(data).splitlines()] == [_row(1)]
    assert json.loads(fs.cat_file(paths.manifest))["sha256"] == hashlib.sha256(data).hexdigest()
    assert not writer.part.exists()


@pytest.mark.parametrize(
    ("module", "to", "format", "extra"),
    [
        ("s3fs", "s3://bucket/x", "jsonl.gz", "s3"),
        ("gcsfs", "gs://bucket/x", "jsonl.gz", "gcs"),
        ("pyarrow", "results", "parquet", "parquet"),
    ],
)
def test_a_missing_extra_is_named(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    module: str,
    to: str,
    format: Format,
    extra: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingExtraError, match=rf"pip install 'sprunner\[{extra}\]'"):
        ResultWriter(_paths(to, format))


def test_parquet_files_have_the_declared_schema_whatever_their_values(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from sprunner.results.rowschema import arrow_schema

    values = tmp_path / "values"
    writer = ResultWriter(_paths(values, "parquet"))
    writer.write(
        {"job_id": "a", "status_code": 200, "extracted_data": '{"k":[1]}', "attempts": 1}
        | {"completed_at": "2026-11-28T12:00:00.5+02:00", "execution_time_ms": 1}
    )
    writer.publish({})
    nulls = tmp_path / "nulls"
    writer = ResultWriter(_paths(nulls, "parquet"))
    writer.write({"job_id": "b", "status": "timeout", "status_code": None, "attempts": 1})
    writer.publish({})
    schemas = [pq.read_schema(next(d.rglob("*.parquet"))) for d in (values, nulls)]
    assert schemas[0] == schemas[1] == arrow_schema()
    (row,) = pq.read_table(next(values.rglob("*.parquet"))).to_pylist()
    assert row["extracted_data"] == '{"k":[1]}' and row["execution_time_ms"] == 1.0
    assert row["completed_at"].isoformat() == "2026-11-28T10:00:00.500000+00:00"


def test_an_empty_run_still_gets_a_valid_file(tmp_path: Path) -> None:
    for format in FORMATS:
        paths = _paths(tmp_path / format, format)
        published = ResultWriter(paths).publish({})
        assert published.lines == 0
        assert read_rows(Path(paths.data), format) == []


def test_position_is_what_was_committed(tmp_path: Path) -> None:
    writer = ResultWriter(_paths(tmp_path))
    writer.write(_row(1))
    assert writer.position == WriterPosition(0, 0)
    position = writer.commit()
    assert position.lines == 1 and position.bytes == writer.part.stat().st_size
    writer.close()


def test_a_file_url_is_a_local_directory(tmp_path: Path) -> None:
    paths = _paths(f"file://{tmp_path}", "jsonl")
    writer = ResultWriter(paths)
    assert writer.part.parent.parent.parent == tmp_path  # the .part sits beside the final file
    writer.write(_row(1))
    writer.publish({})
    (final,) = tmp_path.glob("collection=shop/date=1970-01-01/run-1.jsonl")
    assert read_rows(final, "jsonl") == [_row(1)]


def test_an_unwritable_destination_is_a_clear_error(tmp_path: Path) -> None:
    from sprunner.results.errors import ResultsError

    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ResultsError, match="cannot write results to"):
        ResultWriter(_paths(tmp_path / "file"))
