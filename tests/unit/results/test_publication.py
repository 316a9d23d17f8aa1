"""Publishing a file: recorded first, each step safe to do again, renames made durable."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sprunner.results.layout import ResultPaths, result_paths
from sprunner.results.publication import (
    Publication,
    PublicationLostError,
    complete,
    prepare,
    stage_files,
)
from sprunner.results.writer import ResultWriter


def _paths(tmp_path: Path, run_id: str = "run-1") -> ResultPaths:
    return result_paths(str(tmp_path), collection="shop", run_id=run_id, started=0, format="jsonl")


def _built(paths: ResultPaths) -> tuple[ResultWriter, Path]:
    writer = ResultWriter(paths)
    writer.write({"job_id": "a", "status": "completed"})
    return writer, writer.build()


def test_each_step_of_a_publication_can_be_done_again(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    _, built = _built(paths)
    publication = prepare(built, paths, {"run_id": "run-1"}, lines=1)
    # The state keeps it as JSON between the steps.
    publication = Publication.from_json(json.loads(json.dumps(publication.to_json())))
    assert publication is not None

    first = complete(publication)
    assert not built.exists() and Path(paths.data).exists()
    Path(paths.manifest).unlink()  # a kill before the manifest was written
    again = complete(publication)  # the data is in place: recognised by size and sha256

    assert first == again
    manifest = json.loads(Path(paths.manifest).read_text())
    assert (manifest["lines"], manifest["sha256"]) == (1, first.sha256)


def test_a_publication_whose_file_is_gone_is_lost(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    _, built = _built(paths)
    publication = prepare(built, paths, {}, lines=1)
    built.unlink()
    with pytest.raises(PublicationLostError):
        complete(publication)
    Path(paths.data).parent.mkdir(parents=True, exist_ok=True)
    Path(paths.data).write_text("something else\n")
    with pytest.raises(PublicationLostError):
        complete(publication)


def test_a_run_published_before_the_underscore_names_keeps_its_manifest(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    legacy = Path(paths.legacy_manifest)
    legacy.parent.mkdir(parents=True)
    legacy.write_text("{}")
    _, built = _built(paths)
    published = complete(prepare(built, paths, {}, lines=1))
    assert published.manifest == paths.legacy_manifest
    assert json.loads(legacy.read_text())["lines"] == 1 and not Path(paths.manifest).exists()


def test_renames_are_followed_by_a_directory_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _paths(tmp_path)
    _, built = _built(paths)
    publication = prepare(built, paths, {}, lines=1)
    events: list[tuple[str, Any]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source: Any, target: Any) -> None:
        real_replace(source, target)
        events.append(("replace", str(target)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    complete(publication)

    folder = str(Path(paths.data).parent)
    renames = [i for i, (kind, _) in enumerate(events) if kind == "replace"]
    assert [events[i][1] for i in renames] == [paths.data, paths.manifest]
    for index in renames:
        assert ("fsync", folder) in events[index + 1 :], "the rename is made durable"


def test_stage_files_are_the_runs_own(tmp_path: Path) -> None:
    paths = _paths(tmp_path, "ab")
    folder = Path(paths.directory)
    folder.mkdir(parents=True)
    names = ["_ab.jsonl.part", "_ab.retry1.jsonl.gz.part", "_ab.jsonl.final.part"]
    names += [
        "_ab.parquet.build",
        "ab.jsonl.part",
        "ab.jsonl",
        "_ab.manifest.json",
        "_abc.jsonl.part",
    ]
    for name in names:
        (folder / name).write_text("")
    found = sorted(p.name for p in stage_files(paths))
    assert found == sorted(names[:5])
