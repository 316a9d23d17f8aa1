"""A run's results file as the report shows it, and the end of its publication (SPEC §7).

- `Delivered`: the report's `results: {to, lines, bytes, expired, missing}` of a run;
- `roll_forward`: a publication recorded before a kill (`results/publication.py`) is put
  in place and journaled finished, never drained again; then `sweep` removes the run's
  staging files (no `.part` outlives the apply that publishes its run);
- the settings a drain takes from a collection's `results:` block (`drain_fields`, the
  destinations checked before any call, `to` as shown with env() values masked) and where
  object-store files are staged (`spool_dir_of`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sprunner.errors import UsageError
from sprunner.jobfile.model import DEFAULT_RESULT_FIELDS, DesiredCollection, ResultsSpec
from sprunner.results.journal import Entry, Slot
from sprunner.state import StateStore
from sprunner.util.killpoints import reached

if TYPE_CHECKING:
    from sprunner.results.checkpoint import DrainCheckpoint


# The report's `results` of a run (SPEC §7), in its order: what both a published drain
# (`drain.DrainOutcome`) and a delivery (`Delivered`) show.
REPORTED = ("to", "lines", "bytes", "expired", "missing")


def reported(value: object) -> dict[str, Any]:
    return {name: getattr(value, name) for name in REPORTED}


@dataclass(frozen=True)
class Delivered:
    """What the report shows of a run's results: `{to, lines, bytes, expired, missing}`."""

    to: str
    lines: int
    bytes: int
    expired: int
    missing: int
    file: str | None = None

    def report(self) -> dict[str, Any]:
        return reported(self)


def check_destinations(collections: Iterable[DesiredCollection]) -> None:
    """Before any API call: every `results:` destination and format can be written to.

    A missing extra (s3fs, gcsfs, pyarrow) or a URL fsspec cannot use is a usage error
    (exit 2) naming the collection and, for an extra, the extra to install.
    """
    from sprunner.results.errors import MissingExtraError, ResultsError
    from sprunner.results.storage import check_destination

    for collection in collections:
        spec = collection.results
        if spec is None:
            continue
        try:
            check_destination(spec.to, spec.format)
        except MissingExtraError as e:
            raise UsageError(f"{collection.name}: results: {e}") from e
        except ResultsError as e:
            raise UsageError(f"{collection.name}: results.to: {e}") from e


def shown_to(desired: DesiredCollection, to: str) -> str:
    """`to` as the report and the logs may show it (an env() value in it is masked)."""
    return desired.mask_value(to) or desired.mask_url(to) or to


def drain_fields(spec: ResultsSpec) -> tuple[str, ...] | None:
    """The drain's `fields`: None (every body field but screenshot) for the default."""
    return None if spec.fields == DEFAULT_RESULT_FIELDS else spec.fields


def spool_dir_of(state: StateStore) -> Path | None:
    """Object-store files are staged in the state directory (stable: a resume finds them);
    a state without one (`--state-url`) stages them in a private directory of the process
    (`results.writer.private_spool`), never in a shared, predictable path."""
    directory = getattr(state, "directory", None)
    return Path(directory) / "spool" if directory is not None else None


def delivered_of(desired: DesiredCollection, entry: Entry) -> Delivered:
    """What the report shows of a published file, from its recorded publication."""
    checkpoint = entry.checkpoint
    assert checkpoint.publication is not None
    document = checkpoint.publication.document
    return Delivered(
        to=shown_to(desired, checkpoint.to),
        lines=int(document["lines"]),
        bytes=int(document["bytes"]),
        expired=int(document.get("expired", 0)),
        missing=int(document.get("missing", 0)),
        file=checkpoint.publication.data,
    )


def roll_forward(
    desired: DesiredCollection, slot: Slot, entry: Entry, spool: Path | None
) -> Delivered:
    """Finish a publication a kill interrupted (`results.publication.complete`: each step
    done again is harmless), then journal it finished; ResultsError when it cannot be
    (PublicationLostError: the file is gone, drain the run again)."""
    from dataclasses import replace as replaced

    from sprunner.results.publication import complete

    checkpoint = entry.checkpoint
    assert checkpoint.publication is not None
    published = complete(checkpoint.publication)
    delivered = delivered_of(desired, entry)
    finished = replaced(checkpoint, finished=True, lines=published.lines, bytes=published.bytes)
    slot.save(Entry(finished, delivered.__dict__))
    reached("publish.finished")
    sweep(checkpoint, spool)
    return delivered


def sweep(checkpoint: DrainCheckpoint, spool: Path | None) -> None:
    """Remove a published run's staging files: beside its file (`.part`, `.build`, retry
    stages), or in the spool for an object store (`spool`, as its drain was given it): no
    `.part` outlives the apply that publishes its run."""
    from sprunner.jobfile.model import MAX_RETRY_ATTEMPTS
    from sprunner.results.errors import ResultsError
    from sprunner.results.merge import FINAL_STAGE, staging_paths
    from sprunner.results.publication import remove, stage_files
    from sprunner.results.writer import part_path

    paths = checkpoint.paths
    try:
        staged = [paths, *(staging_paths(paths, k) for k in range(1, MAX_RETRY_ATTEMPTS + 1))]
        parts = [part_path(p, spool_dir=spool) for p in staged]
        parts.append(part_path(paths, stage=FINAL_STAGE, spool_dir=spool))
    except ResultsError:  # a destination fsspec cannot resolve any more: nothing staged
        parts = []
    builds = [p.with_name(p.name[: -len(".part")] + ".build") for p in parts]
    built = [Path(checkpoint.publication.built)] if checkpoint.publication else []
    remove([*stage_files(paths), *parts, *builds, *built])
