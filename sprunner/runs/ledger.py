"""The credit brake as a ledger in file order, so collections need not wait for each other.

The brake (`--max-credits`) refuses, in file order, the runs that would take the summed
cost past the limit (`decision.apply_budget`). Applied after every collection was
reconciled, it made the fastest collection wait for the slowest. The ledger gives the same
verdicts while each collection goes on as soon as it can:

- Up front, from the plan: a collection whose cost, added to the cost of every earlier
  collection that *might* run, fits the limit is sure to run whatever the others decide
  (no limit: every collection). Its verdict is ready at once.
- Otherwise collection i waits for the *decisions* of collections 0..i-1 (whether each
  wants a run, known after its own reconcile and decide), never for their starts or runs.
  Verdicts are computed by one cursor that walks the file in order as decisions arrive,
  so they equal `apply_budget` over the runs wanted, whatever the order of the answers.

Invariant: every slot is resolved exactly once (`resolve`), also when a collection failed
(as not wanting a run), or every later collection would wait forever.

Retries (SPEC §8) are braked after every first run: `committed()` waits for the last
verdict and gives what the first runs allowed take, so a retry is checked against every
first run this apply will still start, whichever collection's answers came first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sprunner.runs.decision import RunDecision, apply_budget

RUN = RunDecision("run")


class CreditLedger:
    """Verdicts of the credit brake, one slot per collection in file order.

    `costs[i]` is collection i's run cost, or None when the plan says it never starts a run
    (deleted, in error, `--no-run`). Create it inside the running event loop."""

    def __init__(self, costs: Sequence[int | None], max_credits: int | None) -> None:
        self._costs = list(costs)
        self._max = max_credits
        loop = asyncio.get_running_loop()
        self._verdicts: list[asyncio.Future[RunDecision]] = [
            loop.create_future() for _ in self._costs
        ]
        self._wants: list[bool | None] = [None] * len(self._costs)
        self._cursor = 0  # every slot before it has its verdict in file order
        self._spent = 0  # credits of the runs allowed before the cursor
        self._all_decided: asyncio.Future[int] = loop.create_future()
        self._decide_up_front()
        self._advance()  # an empty ledger is decided at once

    def _decide_up_front(self) -> None:
        might = 0  # the cost of every earlier collection that might run
        for index, cost in enumerate(self._costs):
            if cost is None:
                continue
            if self._max is None or might + cost <= self._max:
                self._verdicts[index].set_result(RUN)
            might += cost

    def resolve(self, index: int, wants_run: bool) -> None:
        """Collection `index` has decided whether it wants to start a run (False also
        when it failed or adopted a run: an adopted run is not charged). Once only."""
        if self._wants[index] is not None:
            raise RuntimeError(f"slot {index} of the credit ledger resolved twice")
        self._wants[index] = wants_run
        self._advance()

    def _advance(self) -> None:
        while self._cursor < len(self._costs):
            wants = self._wants[self._cursor]
            if wants is None:
                return
            cost = self._costs[self._cursor]
            verdict = RUN
            if wants and cost is not None:
                # What `apply_budget` says of this run after the runs allowed before it.
                budget = apply_budget([("before", self._spent), ("this", cost)], self._max)
                verdict = budget["this"]
                if verdict.decision == "run":
                    self._spent += cost
            future = self._verdicts[self._cursor]
            if not future.done():
                future.set_result(verdict)
            self._cursor += 1
        if not self._all_decided.done():
            self._all_decided.set_result(self._spent)

    async def verdict(self, index: int) -> RunDecision:
        """Whether collection `index`, which wants a run, may start it. Waits only for the
        decisions of the collections before it (and its own `resolve`)."""
        return await asyncio.shield(self._verdicts[index])

    async def committed(self) -> int:
        """The credits of every first run the brake allows, once every collection decided
        (waits for the last decision; never for a start or a run)."""
        return await asyncio.shield(self._all_decided)

    def ready(self, index: int) -> bool:
        """True when the verdict of `index` is known without waiting."""
        return self._verdicts[index].done()


class CreditBrake:
    """`--max-credits` across an apply's retry runs: what is committed so far, and the cap.

    Committed = what the first runs of the apply take (`first_runs`: the credit ledger's
    decisions, awaited so that a first run the ledger will still start is counted, not
    only those started so far) + the retries taken so far. First runs come first: a retry
    never takes credits a later first run was allowed. The check and the take are one step
    after that wait (no await in between), so concurrent retries of several collections
    never pass the cap together; among themselves retries are served in the order they ask.
    """

    def __init__(
        self,
        max_credits: int | None,
        committed: int = 0,
        *,
        first_runs: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.max_credits = max_credits
        self.committed = committed  # retries (and, without `first_runs`, the rest) so far
        self._first_runs = first_runs

    async def take(self, cost: int) -> str | None:
        """None when `cost` fits (and is taken), else why the retry is refused."""
        if self.max_credits is None:
            self.committed += cost
            return None
        first = 0 if self._first_runs is None else await self._first_runs()
        if first + self.committed + cost > self.max_credits:
            left = max(self.max_credits - first - self.committed, 0)
            spent = f"first runs {first}, retries {self.committed}" if first else ""
            return (
                f"refused: a retry costs {cost} credits and only {left} of --max-credits "
                f"{self.max_credits} are left" + (f" ({spent})" if spent else "")
            )
        self.committed += cost
        return None
