"""`sprunner plan`: read-only. No write, no lock.

API calls: one list of the collections, and, to say whether a run would start, one list of
the runs of each collection that exists remotely, may run by its policy, and whose answer
matters: with `overlap: skip` (the default) a run in progress remotely means no new run;
with a `schedule` and no last run time in the state, the newest run's time decides whether
it is due. Collections that cannot run now by their policy alone (`when: never`,
`when: changed` and unchanged, not due by the state's last run time) cost no call.

`--prune` plans the deletions as apply --prune would make them (without it they are listed
as "delete with --prune"): only collections whose recorded declaring file lies under the
paths planned (`reconcile/scope.py`), so a plan of one folder says nothing about what the
other folders declare. With --detailed-exitcode, exit 10 means changes are pending
(like terraform's 2, which we cannot use: 2 means invalid input here); exit 1 means a
collection is in error. Runs do not count as changes.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from sprunner.apply.session import Target, list_remote, state_of, target
from sprunner.commands.common import load_jobs
from sprunner.errors import EXIT_CHANGES_PENDING, EXIT_FAILED, EXIT_OK
from sprunner.output.ui import Output
from sprunner.reconcile.scope import where
from sprunner.settings import GlobalOptions, Selection

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.jobfile.load import Loaded
    from sprunner.reconcile.plan import Plan, PlannedCollection
    from sprunner.reconcile.runplan import RemoteRuns, RunIntent
    from sprunner.state import StateStore


def run(
    selection: Selection,
    *,
    options: GlobalOptions,
    output: Output,
    detailed_exitcode: bool = False,
    local: bool = False,
    prune: bool = False,
) -> int:
    loaded = load_jobs(selection, output)
    with (
        target(options, output, local=local) as api,
        state_of(options, api, lock=False, persist=False) as state,
    ):
        scope = tuple(where(path) for path in selection.paths)
        plan, runs = asyncio.run(_plan(api, options, loaded, state, output, prune, scope))
    output.plan(plan, runs)
    if plan.of("error"):
        return EXIT_FAILED
    if detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES_PENDING
    return EXIT_OK


async def _plan(
    api: Target,
    options: GlobalOptions,
    loaded: Loaded,
    state: StateStore,
    output: Output,
    prune: bool,
    scope: tuple[str, ...],
) -> tuple[Plan, dict[str, RunIntent]]:
    from sprunner.api.client import ApiClient
    from sprunner.reconcile.plan import build_plan
    from sprunner.report.operate import log_call

    async with ApiClient(
        base_url=api.api_url,
        api_key=api.api_key,
        backoff=options.retries.api,
        on_call=lambda record: log_call(output, record),
    ) as client:
        remote = await list_remote(client)
        applied = {c.name: d for c in loaded.collections if (d := state.load_applied(c.name))}
        plan = build_plan(
            loaded.collections,
            remote,
            state.entries(),
            hasher=state.hasher,
            declared=loaded.declared,
            applied=applied,
            prune=prune,
            scope=scope,
        )
        return plan, await _intents(client, plan, state)


async def _intents(client: ApiClient, plan: Plan, state: StateStore) -> dict[str, RunIntent]:
    """Whether apply would start each collection's run now (`sprunner.reconcile.runplan`)."""
    from sprunner.reconcile.runplan import intend, needs_remote
    from sprunner.state.lifecycle import change_pending

    now = time.time()
    items = [item for item in plan.items if item.desired is not None]
    changed = {i.name: change_pending(state, i.desired) for i in items if i.desired}
    wanted = [i for i in items if needs_remote(i, state.get(i.name), changed[i.name], now)]
    looked = await asyncio.gather(*(_remote_runs(client, item) for item in wanted))
    remote = {item.name: runs for item, runs in zip(wanted, looked, strict=True)}
    return {
        i.name: intend(
            i, state.get(i.name), changed=changed[i.name], remote=remote.get(i.name), now=now
        )
        for i in items
    }


async def _remote_runs(client: ApiClient, item: PlannedCollection) -> RemoteRuns:
    from sprunner.reconcile.runplan import RemoteRuns

    assert item.remote_id is not None
    runs = await client.list_runs(item.remote_id, name=item.name)
    newest = next((r.created_at for r in runs if r.created_at is not None), None)
    running = next((r.run_id for r in runs if r.status == "in_progress"), None)
    return RemoteRuns(newest, running)
