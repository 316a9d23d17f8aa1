"""`sprunner plan`: read-only. One list call, no write, no lock.

With --detailed-exitcode, exit 10 means changes are pending (like terraform's 2, which we
cannot use: 2 means invalid input here); exit 1 means a collection is in error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sprunner import ui
from sprunner.errors import EXIT_CHANGES_PENDING, EXIT_FAILED, EXIT_OK
from sprunner.jobfile.load import load
from sprunner.reconcile.plan import Plan
from sprunner.session import Target, list_remote, target
from sprunner.settings import GlobalOptions, Selection
from sprunner.state import opened

if TYPE_CHECKING:
    from sprunner.api.models import CollectionRef


def run(
    selection: Selection,
    *,
    options: GlobalOptions,
    as_json: bool = False,
    detailed_exitcode: bool = False,
    local: bool = False,
) -> int:
    loaded = load(selection)
    for warning in loaded.warnings:
        ui.warn(str(warning))
    with (
        target(options, local=local) as api,
        opened(
            state_dir=api.state_dir,
            state_url=None if api.local else options.state_url,
            api_url=api.api_url,
            key=api.api_key,
            lock=False,
            persist=False,
        ) as state,
    ):
        remote = asyncio.run(_list(api))
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
    if as_json:
        import json

        ui.out(json.dumps(to_json(plan), indent=2, ensure_ascii=False))
    else:
        ui.plan_table(plan)
    if plan.of("error"):
        return EXIT_FAILED
    if detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES_PENDING
    return EXIT_OK


async def _list(api: Target) -> list[CollectionRef]:
    from sprunner.api.client import ApiClient

    async with ApiClient(base_url=api.api_url, api_key=api.api_key) as client:
        return await list_remote(client)


def to_json(plan: Plan) -> dict[str, Any]:
    def diff(item: Any) -> dict[str, int] | None:
        d = item.diff
        return None if d is None else {"added": d.added, "removed": d.removed, "changed": d.changed}

    items = [
        {
            "name": item.name,
            "action": item.action,
            "reason": item.reason,
            "file": item.desired.file if item.desired else None,
            "remote_id": item.remote_id,
            "requests": item.requests,
            "credits": item.credits,
            "diff": diff(item),
        }
        for item in plan.items
    ]
    return {
        "changes_pending": plan.has_changes,
        "collections": items,
        "unmanaged": [{"name": ref.name, "id": ref.id} for ref in plan.unmanaged],
        "summary": {
            "create": len(plan.of("create")),
            "update": len(plan.of("update")),
            "unchanged": len(plan.of("unchanged")),
            "delete": len(plan.of("delete")),
            "error": len(plan.of("error")),
            "skip": len(plan.of("skip")),
            "credits": plan.credits,
        },
    }
