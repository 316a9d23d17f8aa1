"""The last run's result of each collection an apply did not run (SPEC §9: a report that a
monitor reads shows what a skipped collection last did).

Decision: read from the API, one list-runs call per skipped collection that exists remotely,
after the runs are waited for, concurrently under the client's bound. The state knows only
the newest run's id and time, not its counts, and a run started by another host or by hand
is not in it. A call that fails leaves `last_run` empty (logged with -v): it is a report
detail, never a reason to fail the apply. Collections skipped by `--no-run` are not
decided, so `--no-run` costs no call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sprunner.api.errors import ApiError, ApiUnusableError
from sprunner.outcome import CollectionOutcome, LastRun

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.ui import Output


def _skipped(c: CollectionOutcome) -> bool:
    return c.run is not None and c.run.status == "skipped" and c.collection_id is not None


async def _one(client: ApiClient, c: CollectionOutcome, output: Output) -> LastRun | None:
    assert c.collection_id is not None
    try:
        runs = await client.list_runs(c.collection_id, name=c.name)
    except ApiUnusableError:
        raise
    except ApiError as error:
        output.debug(f"{c.name}: last run not known: {error}")
        return None
    if not runs:
        return None
    r = runs[0]
    return LastRun(
        r.run_id,
        r.status,
        r.created_at,
        r.total_requests,
        r.success_requests,
        r.failed_requests,
        r.timeout_requests,
    )


async def with_last_runs(
    client: ApiClient, collections: Sequence[CollectionOutcome], output: Output
) -> tuple[CollectionOutcome, ...]:
    """`collections` with `last_run` filled in for the skipped ones."""
    skipped = [c for c in collections if _skipped(c)]
    found = await asyncio.gather(*(_one(client, c, output) for c in skipped))
    by_name = {c.name: last for c, last in zip(skipped, found, strict=True)}
    return tuple(
        dataclasses.replace(c, last_run=by_name[c.name]) if c.name in by_name else c
        for c in collections
    )
