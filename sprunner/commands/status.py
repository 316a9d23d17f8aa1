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
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from sprunner.apply.session import Target, state_of, target
from sprunner.commands.common import load_jobs
from sprunner.errors import EXIT_FAILED, EXIT_OK
from sprunner.output.ui import Output
from sprunner.report.health import (
    DEFAULT_RUNS,
    CollectionStatus,
    Due,
    Recorded,
    due,
    pending_change,
    summarize,
)
from sprunner.runs.credits import cost_per_request
from sprunner.runs.verdict import health as health_of
from sprunner.settings import GlobalOptions, Selection

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.api.models import CollectionRef
    from sprunner.jobfile.model import DesiredCollection
    from sprunner.report.health import Fingerprint
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

    async with ApiClient(base_url=api.api_url, api_key=api.api_key) as client:
        return await gather(
            collections, recorded, client, runs=runs, now=now, fingerprint=fingerprint
        )


async def gather(
    collections: Sequence[DesiredCollection],
    recorded: Mapping[str, Recorded],
    client: ApiClient,
    *,
    runs: int = DEFAULT_RUNS,
    now: float,
    fingerprint: Fingerprint | None = None,
) -> tuple[CollectionStatus, ...]:
    """Every declared collection's status, in the given order.

    The list call failing raises (nothing can be said); a `list_runs` failing for one
    collection is that collection's `error`, and the others go on.
    """
    from sprunner.apply.session import list_remote

    by_name: dict[str, list[CollectionRef]] = {}
    for ref in await list_remote(client):
        by_name.setdefault(ref.name, []).append(ref)
    return tuple(
        await asyncio.gather(
            *(
                _one(
                    c,
                    by_name.get(c.name, []),
                    recorded.get(c.name, Recorded()),
                    client,
                    keep=runs,
                    now=now,
                    fingerprint=fingerprint,
                )
                for c in collections
            )
        )
    )


async def _one(
    desired: DesiredCollection,
    refs: list[CollectionRef],
    known: Recorded,
    client: ApiClient,
    *,
    keep: int,
    now: float,
    fingerprint: Fingerprint | None,
) -> CollectionStatus:
    from sprunner.api.errors import ApiError

    entry, latest = known.entry, known.verdict
    health = health_of(latest, max_age=desired.run.max_age, now=now)
    base = CollectionStatus(desired.name, desired.file, None, verdict=latest, health=health)
    if len(refs) > 1:
        ids = ", ".join(r.id for r in refs)
        return replace(base, error=f"present {len(refs)} times remotely (ids {ids})")
    remote_id = refs[0].id if refs else None
    pending = pending_change(desired, entry, remote_id, fingerprint)
    last_started = entry.last_run.started_at if entry and entry.last_run else None
    if remote_id is None:
        when = due(desired.run, last_run_at=None, changed=True, now=now)
        return replace(base, due=when, pending_change=pending)
    try:
        answer = await client.list_runs(remote_id, name=desired.name)
    except ApiError as error:
        return replace(base, remote_id=remote_id, pending_change=pending, error=str(error))
    per_request = cost_per_request(desired)
    summaries = tuple(summarize(r, per_request, latest) for r in answer)
    in_flight = next((r for r in summaries if r.status == "in_progress"), None)
    newest = next((r.created_at for r in summaries if r.created_at is not None), None)
    when = due(
        desired.run,
        last_run_at=last_started if last_started is not None else newest,
        changed=known.changed,
        now=now,
    )
    if in_flight is not None and desired.run.overlap == "skip" and when.at is not None:
        # apply adopts and waits for the run in flight instead of starting another.
        when = Due(when.at, f"{when.note}; waits for the run in flight (overlap: skip)")
    return replace(
        base,
        remote_id=remote_id,
        runs=summaries[:keep],
        in_flight=in_flight,
        due=when,
        pending_change=pending,
    )
