"""Carrying out one planned change, with the never-twice rules of SPEC §4.

- A create sends an Idempotency-Key derived from the API URL, the name, the content and a
  generation number kept in the state: its retries replay instead of creating again, and
  two hosts (or two state directories) creating the same collection at once send the same
  key, so a deployment that honours it creates it once. The generation changes only when
  a create replayed a collection that no longer exists (it was deleted remotely since):
  then the create is sent again under the next generation. When the state knows no earlier
  id for the name (a fresh or lost state), only the API can tell a replay: one GET, which
  the runner skips when a run start follows at once (its 404 tells the same, for free) and
  makes with `confirm` otherwise. An answer with another id than the name's last one is
  checked the same way: a key may replay any older generation's collection, deleted
  since (content edited and edited back). On deployments that ignore the key, the real
  guard is the next point.
- After an ambiguous failure of a create (5xx, dropped connection, timeout), the remote
  list is read again by name before anything is repeated: a collection that appeared is
  adopted, not created a second time.
- Each new id goes to the state as soon as the API answers, with the declaring file. Before
  a PUT, the state's fingerprint is cleared: if we die mid-PUT, the next apply PUTs again
  rather than trusting a remote side it cannot see (the transitions: state/lifecycle.py).
- A 404 on a collection known from the state means it was deleted remotely: create again
  (here for a PUT; `runner.py` does the same when starting its run answers 404).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, NotFoundError
from sprunner.jobfile.model import DesiredCollection
from sprunner.reconcile.plan import PlannedCollection
from sprunner.reconcile.scope import where
from sprunner.state import StateStore as State
from sprunner.state import lifecycle
from sprunner.util.backoff import WRITE_BACKOFF, Backoff, send_then_look

# Creates answered with a replay of a deleted collection, at most, before giving up on keys
# (each one moves the generation on).
MAX_GENERATIONS = 5


class DuplicateRemoteError(ApiError):
    """More than one remote collection has the name (found after an ambiguous create)."""


@dataclass(frozen=True)
class Applied:
    collection_id: str
    action: Literal["create", "update", "unchanged"]
    notes: tuple[str, ...] = ()  # what the API said about the body (duplicates, blocked...)
    # A create not yet checked for a replay of a deleted collection (see `confirm`).
    unchecked: bool = False


GENERATION = "create-generation"  # the state blob that holds a collection's generation


def idempotency_key(api_url: str, desired: DesiredCollection, generation: int) -> str:
    """The same on every host for the same API, name, content and generation. The unkeyed
    content fingerprint is fine here: the key goes to the API, which has the content."""
    text = f"{api_url}\n{desired.name}\n{desired.fingerprint}\n{generation}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _generation(state: State, name: str) -> int:
    value = state.get_blob(name, GENERATION)
    return value if isinstance(value, int) else 0


def _notes(answer: Any) -> tuple[str, ...]:
    notes = []
    if getattr(answer, "duplicates_skipped", 0):
        notes.append(f"the API skipped {answer.duplicates_skipped} duplicate requests")
    if getattr(answer, "blocked_urls", ()):
        notes.append(f"the API blocked {len(answer.blocked_urls)} URLs")
    if getattr(answer, "invalid_items", ()):
        notes.append(f"the API refused {len(answer.invalid_items)} invalid requests")
    return tuple(notes)


def _record_applied(
    state: State, desired: DesiredCollection, collection_id: str, *, created: bool
) -> None:
    content = state.fingerprint_of(desired)  # keyed: see sprunner/state/hashing.py
    name, file = desired.name, where(desired.file)
    lifecycle.applied(state, name, collection_id, content=content, created=created, file=file)
    state.record_applied(desired)


async def _find_by_name(client: ApiClient, name: str) -> list[str]:
    # The name filter may match loosely on some deployments; compare exactly.
    return [ref.id for ref in await client.list_collections(name=name) if ref.name == name]


async def carry_out(
    client: ApiClient,
    state: State,
    item: PlannedCollection,
    *,
    apply_id: str,
    backoff: Backoff = WRITE_BACKOFF,
    check: bool = True,
) -> Applied:
    """The plan's create, update or nothing (unchanged: its declaring file recorded, for
    --prune's scope) for one desired collection."""
    desired = item.desired
    assert desired is not None
    if item.action == "create":
        return await create(client, state, desired, apply_id=apply_id, backoff=backoff, check=check)
    assert item.remote_id is not None
    if item.action == "update":
        return await update(
            client, state, desired, item.remote_id, apply_id=apply_id, backoff=backoff
        )
    lifecycle.declared(state, desired.name, file=where(desired.file))
    return Applied(item.remote_id, "unchanged")


async def create(
    client: ApiClient,
    state: State,
    desired: DesiredCollection,
    *,
    apply_id: str,
    backoff: Backoff = WRITE_BACKOFF,
    gone: str | None = None,
    check: bool = True,
) -> Applied:
    """Create `desired`. `gone`: the id this name had, now deleted remotely (by default the
    state's, since the plan creates only what the remote list lacks); a create answered
    with it was replayed, and is sent again under a new generation.

    `check=False`: when no earlier id is known, leave the replay check to the caller (an
    `unchecked` answer), who starts a run at once (a 404 then means a replay) or calls
    `confirm`."""
    name = desired.name
    entry = state.get(name)
    if gone is None and entry is not None and entry.id:
        gone = entry.id
    applied = await _create_once(client, state, desired, backoff=backoff)
    if not check and applied.collection_id != gone:
        applied = replace(applied, unchecked=True)
    else:
        applied = await _until_fresh(client, state, desired, applied, gone, backoff)
    _record_applied(state, desired, applied.collection_id, created=True)
    return applied


async def confirm(
    client: ApiClient,
    state: State,
    desired: DesiredCollection,
    collection_id: str,
    *,
    backoff: Backoff = WRITE_BACKOFF,
) -> str:
    """Make the replay check that `create(check=False)` left out (no run start followed):
    the id of the collection, created again if the answer was a replay."""
    checked = await _until_fresh(
        client, state, desired, Applied(collection_id, "create"), None, backoff
    )
    if checked.collection_id != collection_id:
        _record_applied(state, desired, checked.collection_id, created=True)
    return checked.collection_id


async def _until_fresh(
    client: ApiClient,
    state: State,
    desired: DesiredCollection,
    applied: Applied,
    gone: str | None,
    backoff: Backoff,
) -> Applied:
    """`applied`, or a create sent again under a new generation while it was a replay."""
    name = desired.name
    for _ in range(MAX_GENERATIONS):
        if not await _replayed(client, name, applied.collection_id, gone):
            return replace(applied, unchecked=False)
        state.put_blob(name, GENERATION, _generation(state, name) + 1)
        applied = await _create_once(client, state, desired, backoff=backoff)
        gone = None  # a replay now could only be of an older generation: look it up
    raise DuplicateRemoteError(
        f"{MAX_GENERATIONS} creates in a row replayed collections deleted since: "
        "the API keeps answering with a deleted collection; not created",
        call="create collection",
        collection=name,
    )


async def _replayed(client: ApiClient, name: str, collection_id: str, gone: str | None) -> bool:
    """Whether a create's answer replayed a collection deleted since (its key was used).

    The name's last id (`gone`) is a replay for sure. Any other id may be one too: a
    deterministic key replays whichever generation first used it (a lost state, or content
    edited and edited back since), so ask for the collection (one GET) and trust the
    answer only if it exists.
    """
    if gone is not None and collection_id == gone:
        return True
    try:
        await client.get_collection(collection_id, name=name)
    except NotFoundError:
        return True
    return False


async def _create_once(
    client: ApiClient, state: State, desired: DesiredCollection, *, backoff: Backoff
) -> Applied:
    name = desired.name
    key = idempotency_key(state.api_url, desired, _generation(state, name))
    requests: Sequence[Mapping[str, Any]] = desired.requests
    # Durable before the POST: if we die before the answer, the next apply knows that the
    # collection it finds under this name is one sprunner created.
    lifecycle.creating(state, name, file=where(desired.file))

    async def send() -> Applied:
        answer = await client.create_collection(name, requests, idempotency_key=key)
        return Applied(answer.id, "create", _notes(answer))

    async def look() -> Applied | None:
        ids = await _find_by_name(client, name)
        if len(ids) > 1:
            raise DuplicateRemoteError(
                f"{len(ids)} remote collections share this name: {', '.join(ids)}",
                call="create collection",
                collection=name,
            ) from None
        # Our create took effect before the failure: adopt it, with our content.
        return Applied(ids[0], "create") if ids else None

    applied, _adopted = await send_then_look(send, look, backoff)
    return applied


async def update(
    client: ApiClient,
    state: State,
    desired: DesiredCollection,
    remote_id: str,
    *,
    apply_id: str,
    backoff: Backoff = WRITE_BACKOFF,
) -> Applied:
    name = desired.name
    entry = state.get(name)
    created = entry is not None and entry.created_by_sprunner(remote_id)
    lifecycle.updating(state, name, remote_id, created=created)
    try:
        answer = await client.update_collection(remote_id, name, desired.requests)
    except NotFoundError:
        # Deleted remotely since we listed: the job file still wants it.
        lifecycle.forgotten(state, name)
        return await create(
            client, state, desired, apply_id=apply_id, backoff=backoff, gone=remote_id
        )
    _record_applied(state, desired, remote_id, created=created)
    return Applied(remote_id, "update", _notes(answer))


async def delete(client: ApiClient, state: State, name: str, remote_id: str) -> None:
    with contextlib.suppress(NotFoundError):  # already gone: the goal is reached
        await client.delete_collection(remote_id, name=name)
    lifecycle.forgotten(state, name)
