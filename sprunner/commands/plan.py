"""`sprunner plan`: read-only. One list call, no write, no lock.

With --detailed-exitcode, exit 10 means changes are pending (like terraform's 2, which we
cannot use: 2 means invalid input here); exit 1 means a collection is in error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sprunner.commands.common import load_jobs
from sprunner.errors import EXIT_CHANGES_PENDING, EXIT_FAILED, EXIT_OK
from sprunner.session import Target, list_remote, target
from sprunner.settings import GlobalOptions, Selection
from sprunner.state import opened
from sprunner.ui import Output

if TYPE_CHECKING:
    from sprunner.api.models import CollectionRef


def run(
    selection: Selection,
    *,
    options: GlobalOptions,
    output: Output,
    detailed_exitcode: bool = False,
    local: bool = False,
) -> int:
    loaded = load_jobs(selection, output)
    with (
        target(options, output, local=local) as api,
        opened(
            state_dir=api.state_dir,
            state_url=None if api.local else options.state_url,
            api_url=api.api_url,
            key=api.api_key,
            lock=False,
            persist=False,
        ) as state,
    ):
        remote = asyncio.run(_list(api, options))
        from sprunner.reconcile.plan import build_plan

        entries = state.entries()
        applied = {c.name: d for c in loaded.collections if (d := state.load_applied(c.name))}
        plan = build_plan(
            loaded.collections,
            remote,
            entries,
            hasher=state.hasher,
            declared=loaded.declared,
            applied=applied,
        )
    output.plan(plan)
    if plan.of("error"):
        return EXIT_FAILED
    if detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES_PENDING
    return EXIT_OK


async def _list(api: Target, options: GlobalOptions) -> list[CollectionRef]:
    from sprunner.api.client import ApiClient

    async with ApiClient(
        base_url=api.api_url, api_key=api.api_key, backoff=options.retries.api
    ) as client:
        return await list_remote(client)
