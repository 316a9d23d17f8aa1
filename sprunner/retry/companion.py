"""The retry companion `<name>.retry`: the collection that re-runs what failed (SPEC §8).

- Its name is the parent's name plus `.retry`; sprunner creates and manages it. The state
  marks it (`Entry.companion_of`) before its create is sent, so a kill mid-create still
  leaves it known as the parent's companion: never unmanaged, pruned with its parent.
- Creating it follows the never-twice rules of `reconcile/execute.py` (it reuses them):
  an Idempotency-Key, a look by name after an ambiguous failure, the id recorded at once.
  A companion found remotely but unknown to the state (a lost state) is adopted by name.
- Each retry PUTs exactly the still-failing requests; a PUT replaces the request list.
- Failed jobs are matched to the rendered requests by `(url, custom_id)`, an echo changed
  by the API through `jobfile.identify`; a job that matches no request (the job file
  changed since, say), or could be several, is reported, never retried.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sprunner.api.client import ApiClient
from sprunner.api.models import Job
from sprunner.jobfile.identify import RequestIndex
from sprunner.jobfile.model import DesiredCollection
from sprunner.reconcile import execute
from sprunner.reconcile.plan import RETRY_SUFFIX
from sprunner.state import StateStore as State
from sprunner.state import lifecycle
from sprunner.util.backoff import WRITE_BACKOFF, Backoff

SUFFIX = RETRY_SUFFIX

RequestKey = tuple[str, str | None]


def companion_name(parent: str) -> str:
    return parent + SUFFIX


def request_key(request: Mapping[str, Any]) -> RequestKey:
    custom_id = request.get("custom_id")
    return str(request.get("url")), None if custom_id is None else str(custom_id)


def job_key(job: Job) -> RequestKey:
    return job.url, job.custom_id


@dataclass(frozen=True)
class Matched:
    """Failed jobs sorted into what can be retried and what cannot."""

    requests: tuple[Mapping[str, Any], ...]  # the requests to re-run, in job-file order
    jobs: tuple[Job, ...]  # the failed jobs they come from
    unmatched: tuple[Job, ...]  # failed jobs that match no rendered request


def match(requests: Sequence[Mapping[str, Any]], jobs: Iterable[Job]) -> Matched:
    """The rendered requests of `jobs`, matched by `(url, custom_id)`.

    Two requests may share a key (they differ in options the job does not echo): as many
    of them are retried as jobs failed with that key, in job-file order. A job whose key
    is no request's (an API that echoes the URL changed: `jobfile.identify`) is the one
    request its echo can only be, taking that request's own key; a job that could be
    several requests is not guessed: it is unmatched.
    """
    failing: dict[RequestKey, int] = defaultdict(int)
    known = {request_key(r) for r in requests}
    index: RequestIndex | None = None
    matched: list[Job] = []
    unmatched: list[Job] = []
    for job in jobs:
        if job_key(job) not in known:
            index = index or RequestIndex(requests)
            found = index.find(job.url, job.custom_id)
            if len(found) != 1:
                unmatched.append(job)
                continue
            url, custom_id = request_key(requests[found[0]])
            job = dataclasses.replace(job, url=url, custom_id=custom_id)
        failing[job_key(job)] += 1
        matched.append(job)
    chosen: list[Mapping[str, Any]] = []
    for request in requests:
        key = request_key(request)
        if failing.get(key, 0) > 0:
            failing[key] -= 1
            chosen.append(request)
    return Matched(tuple(chosen), tuple(matched), tuple(unmatched))


def companion_of(
    parent: DesiredCollection, requests: Sequence[Mapping[str, Any]]
) -> DesiredCollection:
    """The companion as a desired collection: the parent's policy, only these requests."""
    return dataclasses.replace(
        parent, name=companion_name(parent.name), requests=tuple(requests), results=None
    )


async def put(
    client: ApiClient,
    state: State,
    companion: DesiredCollection,
    *,
    parent: str,
    apply_id: str,
    backoff: Backoff = WRITE_BACKOFF,
) -> tuple[str, bool]:
    """Create or PUT the companion with exactly its requests; (collection id, created)."""
    name = companion.name
    entry = state.get(name)
    if entry is not None and entry.id and entry.companion_of not in (None, parent):
        raise execute.DuplicateRemoteError(
            f"{name} is recorded as the retry companion of {entry.companion_of}, not {parent}",
            call="retry",
            collection=name,
        )
    if entry is not None and entry.id and entry.companion_of is None and not entry.created:
        raise execute.DuplicateRemoteError(
            f"{name} is a collection sprunner did not create: it cannot hold {parent}'s retries",
            call="retry",
            collection=name,
        )
    remote_id = entry.id if entry is not None and entry.id else None
    if remote_id is None:
        # Exact names only: the API's name filter may match loosely.
        ids = [ref.id for ref in await client.list_collections(name=name) if ref.name == name]
        if len(ids) > 1:
            raise execute.DuplicateRemoteError(
                f"{len(ids)} remote collections share this name: {', '.join(ids)}",
                call="create collection",
                collection=name,
            )
        remote_id = ids[0] if ids else None
    # The mark comes first, durable: whatever happens next, this name is the companion.
    lifecycle.companion(state, name, remote_id, parent=parent)
    if remote_id is None:
        applied = await execute.create(client, state, companion, apply_id=apply_id, backoff=backoff)
    else:
        applied = await execute.update(
            client, state, companion, remote_id, apply_id=apply_id, backoff=backoff
        )
    return applied.collection_id, applied.action == "create"
