"""`sprunner status [PATH...]`: read-only. Per declared collection, what the API says.

No write and no lock: the state is read (never created), and the API is only listed, so
status is safe to run while an apply holds the lock. On a terminal the table is laid out
by rich, health in colour, with a sparkline of the success ratio of the last runs; not
on a terminal it is plain text; `--json` is for scripts. Each
collection's health is its latest verdict (`sprunner.runs.verdict`), as apply judges it.

Exit codes: 0, or 1 when the API could not tell about a collection (or it is present more
than once remotely); 3 when the API cannot be used at all (the list call fails).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sprunner.apply.session import Target, state_of, target
from sprunner.commands.common import load_jobs
from sprunner.errors import EXIT_FAILED, EXIT_OK
from sprunner.output.ui import Output
from sprunner.report.health import DEFAULT_RUNS
from sprunner.settings import GlobalOptions, Selection

if TYPE_CHECKING:
    from sprunner.jobfile.model import DesiredCollection
    from sprunner.report.health import CollectionStatus, Fingerprint, Recorded
    from sprunner.state import StateStore


def run(
    selection: Selection,
    *,
    options: GlobalOptions,
    output: Output,
    as_json: bool = False,
    runs: int = DEFAULT_RUNS,
) -> int:
    from sprunner.output import statusview

    loaded = load_jobs(selection, output)
    now = time.time()
    with (
        target(options, output, local=False) as api,
        state_of(options, api, lock=False, persist=False) as state,
    ):
        recorded = _recorded(state, loaded.collections)
        statuses = asyncio.run(
            _gather(api, loaded.collections, recorded, runs, now, state.fingerprint_of)
        )
    if as_json:
        output.document(statusview.to_json(statuses, now=now))
    elif output.is_terminal(output.stdout):
        color = output.use_color(output.stdout)
        output.out(statusview.render_table(statuses, color=color, detail=runs > 0))
    else:
        output.out(statusview.render_text(statuses, detail=runs > 0))
    return EXIT_FAILED if any(s.error for s in statuses) else EXIT_OK


def _recorded(state: StateStore, collections: tuple[DesiredCollection, ...]) -> dict[str, Recorded]:
    """What the state knows of each collection: its entry, its latest verdict, and whether
    its content changed since its last started run (apply's `when: changed` rule)."""
    from sprunner.report.health import Recorded
    from sprunner.runs import verdict
    from sprunner.state.lifecycle import change_pending

    return {
        c.name: Recorded(state.get(c.name), verdict.read(state, c.name), change_pending(state, c))
        for c in collections
    }


async def _gather(
    api: Target,
    collections: tuple[DesiredCollection, ...],
    recorded: Mapping[str, Recorded],
    runs: int,
    now: float,
    fingerprint: Fingerprint,
) -> tuple[CollectionStatus, ...]:
    from sprunner.api.client import ApiClient
    from sprunner.report.health import gather

    async with ApiClient(base_url=api.api_url, api_key=api.api_key) as client:
        return await gather(
            collections, recorded, client, runs=runs, now=now, fingerprint=fingerprint
        )
