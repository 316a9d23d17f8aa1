"""Starting a collection's run, creating the collection again first when it is gone.

A run start answered 404 means that the collection was deleted remotely since it was
reconciled, or that the create just made replayed one deleted before (a deterministic
Idempotency-Key on a fresh or lost state: see sprunner/reconcile/execute.py, which leaves
that check to this start). Either way the job file still wants it: create it again (the
404'd id counts as gone, so a replay moves the create to a new generation) and start the
new one's run.
"""

from __future__ import annotations

from dataclasses import dataclass

from sprunner.api.errors import NotFoundError
from sprunner.apply.context import ApplyContext
from sprunner.jobfile.model import DesiredCollection
from sprunner.reconcile import execute
from sprunner.runs import start
from sprunner.state import lifecycle


@dataclass(frozen=True)
class Launched:
    started: start.Started
    recreated: str | None = None  # the new collection id when it was created again


async def launch(
    ctx: ApplyContext, desired: DesiredCollection, *, collection_id: str, fresh: bool
) -> Launched:
    client, state, backoff, name = ctx.client, ctx.state, ctx.backoff, desired.name
    # Recorded with the pending start: the run is ours, with this content (`when: changed`).
    content = state.fingerprint_of(desired)
    try:
        started = await start.start(
            client,
            state,
            name=name,
            collection_id=collection_id,
            fresh=fresh,
            backoff=backoff,
            content=content,
        )
        return Launched(started)
    except NotFoundError:
        lifecycle.forgotten(state, name)
    applied = await execute.create(
        client, state, desired, apply_id=ctx.apply_id, backoff=backoff, gone=collection_id
    )
    started = await start.start(
        client,
        state,
        name=name,
        collection_id=applied.collection_id,
        fresh=True,
        backoff=backoff,
        content=content,
    )
    return Launched(started, applied.collection_id)
