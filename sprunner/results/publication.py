"""Publishing a complete results file: idempotent at every step, whatever kills it.

A publication is recorded in the state *before* anything is renamed or uploaded
(`Publication`, journaled by the caller through `record`), then `complete` puts the data
file under its final name and writes the manifest. Each step can be done again:

- the built file still staged (`.part`, `.build`, or the spool copy of an object) is put
  in place again (a rename, or one upload: one commit either way);
- a built file already in place (renamed before a kill) is recognised by its recorded
  size and sha256, and only the manifest is written (again);
- neither: the publication is lost (`PublicationLostError`) and the caller drains the run
  again, which never publishes anything wrong.

So the next apply after a kill at any point rolls the publication forward from the state's
record: the published file is exactly the one recorded, with its manifest, and the report
agrees with both. Local renames are durable (`atomic.replace_durably`: data fsync, rename,
directory fsync); an object store commits in one put.

The manifest keeps the name an existing tree gave it (`<run_id>.manifest.json`, written
before the `_` names): one manifest per run, never two.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sprunner.results.errors import ResultsError, io_boundary
from sprunner.results.layout import HIDDEN, ResultPaths
from sprunner.results.storage import Destination, resolve
from sprunner.util.killpoints import reached

_HASH_CHUNK = 1 << 20


class PublicationLostError(ResultsError):
    """A recorded publication's file is neither staged nor in place: drain it again."""


@dataclass(frozen=True)
class PublishedFile:
    """A complete result file and its manifest, both in place."""

    data: str
    manifest: str
    lines: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Publication:
    """What the state records before the renames: where the built file is, where it goes,
    and the manifest (`document`: lines, bytes and sha256 included)."""

    built: str
    data: str
    manifest: str
    document: Mapping[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> PublishedFile:
        doc = self.document
        return PublishedFile(
            self.data, self.manifest, int(doc["lines"]), int(doc["bytes"]), str(doc["sha256"])
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "document": dict(self.document)}

    @classmethod
    def from_json(cls, data: Any) -> Publication | None:
        """A journaled publication; None for anything else."""
        if not isinstance(data, Mapping) or not isinstance(data.get("document"), Mapping):
            return None
        try:
            publication = cls(
                str(data["built"]), str(data["data"]), str(data["manifest"]), data["document"]
            )
            publication.file  # noqa: B018 - the document must hold lines, bytes, sha256
        except (KeyError, TypeError, ValueError):
            return None
        return publication


def size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def prepare(
    built: Path,
    paths: ResultPaths,
    manifest: Mapping[str, Any],
    *,
    lines: int,
    storage_options: Mapping[str, Any] | None = None,
) -> Publication:
    """The publication of `built` (complete, fsynced) as the data file of `paths`."""
    with io_boundary(f"results to {paths.data}"):
        size, digest = size_and_sha256(built)
        legacy = resolve(paths.legacy_manifest, storage_options)
        manifest_path = paths.legacy_manifest if legacy.fs.exists(legacy.path) else paths.manifest
    document = {
        **manifest,
        "file": paths.name,
        "format": paths.format,
        "lines": lines,
        "bytes": size,
        "sha256": digest,
    }
    return Publication(str(built), paths.data, manifest_path, document)


def complete(
    publication: Publication, storage_options: Mapping[str, Any] | None = None
) -> PublishedFile:
    """Put the data file in place and write its manifest; safe to call again (module doc)."""
    reached("publish.recorded")
    with io_boundary(f"results to {publication.data}"):
        dest = resolve(publication.data, storage_options)
        built = Path(publication.built)
        if built.exists():
            _place(dest, built)
        elif not _in_place(dest, publication):
            raise PublicationLostError(
                f"the results file {publication.data} is neither staged nor in place"
            )
        reached("publish.data")
        _write_manifest(publication, storage_options)
        reached("publish.manifest")
    return publication.file


def _place(dest: Destination, built: Path) -> None:
    if dest.local:
        from sprunner.util.atomic import replace_durably

        Path(dest.path).parent.mkdir(parents=True, exist_ok=True)
        replace_durably(built, dest.path)
        return
    dest.fs.makedirs(dest.path.rsplit("/", 1)[0], exist_ok=True)
    dest.fs.put_file(str(built), dest.path)


def _in_place(dest: Destination, publication: Publication) -> bool:
    """The data file is the recorded one: its size (and, locally, its sha256)."""
    expected = publication.file
    if dest.local:
        path = Path(dest.path)
        return path.exists() and size_and_sha256(path) == (expected.bytes, expected.sha256)
    try:
        return int(dest.fs.info(dest.path)["size"]) == expected.bytes
    except FileNotFoundError:
        return False


def _write_manifest(publication: Publication, storage_options: Mapping[str, Any] | None) -> None:
    text = json.dumps(dict(publication.document), indent=2, sort_keys=True) + "\n"
    target = resolve(publication.manifest, storage_options)
    if target.local:
        from sprunner.util.atomic import write_atomically

        write_atomically(Path(target.path), text)
    else:
        target.fs.pipe_file(target.path, text.encode())


def stage_files(paths: ResultPaths) -> list[Path]:
    """The local staging files of a run's file beside it (`.part`, `.build`, the retry
    stages), under today's `_` names and the names written before them."""
    dest = resolve(paths.data)
    if not dest.local:
        return []
    folder, name = Path(dest.path).parent, paths.name
    stem = name[: -len(paths.format) - 1]
    prefixes = (f"{HIDDEN}{stem}.", f"{stem}.")
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    return [
        p for p in entries if p.name.startswith(prefixes) and p.name.endswith((".part", ".build"))
    ]


@dataclass(frozen=True)
class Strays:
    """One run's staging files that no entry of the state knows."""

    run: str  # as its file names spell it
    files: tuple[Path, ...]
    published: bool  # its data file is in place: only the removal of its stages was missed


def stray_stages(to: str, collection: str, known: Iterable[str]) -> list[Strays]:
    """The local staging files under `to` of `collection`'s runs not in `known` (run
    ids), by the run their name starts with: stages no entry of the state can finish any
    more (the state was deleted after a drain failed), or left by a kill between a
    publication and the removal of its stages."""
    from sprunner.results.layout import safe_segment

    dest = resolve(to)
    if not dest.local:
        return []  # an object store's stages are in the state directory's spool
    base = Path(dest.path) / f"collection={safe_segment(collection)}"
    ours = {safe_segment(run_id, file=True) for run_id in known}
    found: dict[tuple[Path, str], list[Path]] = {}
    try:
        files = [p for p in base.glob("date=*/*") if p.name.endswith((".part", ".build"))]
    except OSError:
        return []
    for path in files:
        name = path.name[len(HIDDEN) :] if path.name.startswith(HIDDEN) else path.name
        run = name.split(".", 1)[0]
        if run not in ours:
            found.setdefault((path.parent, run), []).append(path)
    return [
        Strays(run, tuple(sorted(paths)), _published(folder, run))
        for (folder, run), paths in sorted(found.items())
    ]


def _published(folder: Path, run: str) -> bool:
    """Whether the data file of `run` is in `folder` (a name that is not a stage's)."""
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            staged = path.name.endswith((".part", ".build"))
            if path.name.startswith(f"{run}.") and not staged:
                return True
    return False


def remove(files: Iterable[Path]) -> None:
    """Remove staging files (a file already gone is fine; one that cannot be removed is
    left for the next publication of the run to try again)."""
    for path in files:
        with contextlib.suppress(OSError):
            path.unlink()
