"""Credits, defined once for everything that shows them (SPEC §1, §8, §9).

Two facts, two words, never mixed:

- the **cost** of a run (`DesiredCollection.credits`): what it would take if every request
  succeeded, 1 credit a plain request and 5 a browser one. `plan` shows it ("costing at
  most N credits") and `--max-credits` brakes on it, since both speak before the run.
- the **credits charged** by a run: the cost of its requests that succeeded, after its
  retries (failed and timed-out jobs are refunded, SPEC §1): its cost less the cost of the
  requests still failing (`charged_for`). The summary, the report, the metrics and
  `status` show this one, and only for runs seen to their end (a run still in progress is
  charged by the apply that sees it end: counted once, never by an interrupted apply and
  again by the one that adopts it).

While a run goes on, which jobs succeeded is not known yet: the live progress line shows
its successful requests at the collection's average cost (`charged`), an estimate that
is exact for a collection whose requests all cost the same. A failed job is matched to
its request by `(url, custom_id)`, else by its URL; one that matches none is refunded at
the average cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sprunner.jobfile.model import DesiredCollection, request_credits


def cost_per_request(desired: DesiredCollection) -> float:
    """The average cost of one of the collection's requests (its cost is cached)."""
    return desired.credits / len(desired.requests) if desired.requests else 0.0


def per_request(requests: Sequence[Mapping[str, Any]]) -> float:
    """The average cost of one of `requests` (0 for none)."""
    if not requests:
        return 0.0
    return sum(request_credits(r) for r in requests) / len(requests)


def charged(success_requests: int, cost_per_request: float) -> int:
    """`success_requests` successful jobs at `cost_per_request` each (an estimate for a
    collection of mixed costs; exact otherwise)."""
    return round(success_requests * cost_per_request)


def charged_for(
    requests: Sequence[Mapping[str, Any]], failed: Iterable[tuple[str, str | None]]
) -> int:
    """What a run of `requests` is charged once it is over: their cost less that of the
    requests that failed or timed out (`(url, custom_id)` of each, after the retries)."""
    failed = list(failed)
    total = sum(request_credits(r) for r in requests)
    if not failed or not requests:
        return total
    costs: dict[tuple[str, str | None], int] = {}
    by_url: dict[str, int] = {}
    for request in requests:
        cost = request_credits(request)
        url, custom_id = str(request.get("url")), request.get("custom_id")
        costs.setdefault((url, custom_id if isinstance(custom_id, str) else None), cost)
        by_url.setdefault(url, cost)
    average = total / len(requests)
    refunded = sum(costs.get(key, by_url.get(key[0], average)) for key in failed)
    return max(0, round(total - refunded))
