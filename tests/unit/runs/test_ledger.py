"""The credit brake as a ledger: the verdicts of `apply_budget`, whatever the order in which
collections decide, and no wait where the plan alone settles the verdict."""

from __future__ import annotations

import asyncio
import random

import pytest

from sprunner.runs.decision import apply_budget
from sprunner.runs.ledger import CreditLedger


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_without_a_limit_every_verdict_is_ready_before_any_decision() -> None:
    async def go() -> list[bool]:
        ledger = CreditLedger([5, None, 7], None)
        return [ledger.ready(i) for i in range(3)]

    assert _run(go()) == [True, False, True]


def test_runs_that_fit_even_if_every_earlier_one_ran_do_not_wait() -> None:
    async def go() -> list[bool]:
        ledger = CreditLedger([3, None, 4, 5, 1], 8)
        return [ledger.ready(i) for i in range(5)]

    # 3, 3+4 fit for sure; 3+4+5 may not; 3+4+5+1 may not: those wait for decisions.
    assert _run(go()) == [True, False, True, False, False]


def test_a_later_collection_waits_for_earlier_decisions_not_for_their_runs() -> None:
    async def go() -> tuple[bool, str, str]:
        ledger = CreditLedger([5, 5], 6)
        second = asyncio.ensure_future(ledger.verdict(1))
        ledger.resolve(1, True)
        await asyncio.sleep(0)
        waited = not second.done()  # the first has not decided yet
        ledger.resolve(0, True)
        first = await ledger.verdict(0)
        return waited, first.decision, (await second).decision

    assert _run(go()) == (True, "run", "skip")


def test_a_failed_or_unwilling_collection_frees_its_credits_for_the_next() -> None:
    async def go() -> str:
        ledger = CreditLedger([5, 5], 6)
        ledger.resolve(0, False)  # failed, adopted, or `when` said no
        ledger.resolve(1, True)
        return (await ledger.verdict(1)).decision

    assert _run(go()) == "run"


@pytest.mark.parametrize("seed", range(20))
def test_verdicts_equal_apply_budget_in_any_order_of_decisions(seed: int) -> None:
    rng = random.Random(seed)
    count = 30
    costs = [None if rng.random() < 0.1 else rng.randint(0, 10) for _ in range(count)]
    wants = [cost is not None and rng.random() < 0.7 for cost in costs]
    limit = rng.choice([None, 0, 20, 60, 150])

    async def go() -> dict[str, str]:
        ledger = CreditLedger(costs, limit)
        order = list(range(count))
        rng.shuffle(order)
        asked = {i: asyncio.ensure_future(ledger.verdict(i)) for i in range(count) if wants[i]}
        for index in order:
            ledger.resolve(index, wants[index])
            await asyncio.sleep(0)
        return {f"c{i}": (await task).reason or "run" for i, task in asked.items()}

    expected = apply_budget([(f"c{i}", costs[i] or 0) for i in range(count) if wants[i]], limit)
    assert _run(go()) == {name: v.reason or "run" for name, v in expected.items()}


def test_a_slot_resolves_once() -> None:
    async def go() -> None:
        ledger = CreditLedger([1], None)
        ledger.resolve(0, True)
        ledger.resolve(0, False)

    with pytest.raises(RuntimeError):
        _run(go())


@pytest.mark.parametrize("seed", range(5))
def test_committed_is_what_the_allowed_first_runs_cost_in_any_order(seed: int) -> None:
    """What retries are braked against: known once every slot resolved, whatever the order
    of the decisions; a refused run and one not wanted cost nothing."""
    costs: list[int | None] = [3, None, 4, 5, 1]
    wants = [True, False, True, True, False]

    async def go() -> tuple[bool, int]:
        ledger = CreditLedger(costs, 8)
        committed = asyncio.ensure_future(ledger.committed())
        order = list(range(len(costs)))
        random.Random(seed).shuffle(order)
        for index in order[:-1]:
            ledger.resolve(index, wants[index])
            await asyncio.sleep(0)
        early = committed.done()
        ledger.resolve(order[-1], wants[order[-1]])
        return early, await committed

    # 3 + 4 run; 5 would pass 8: refused; 1 is not wanted.
    assert _run(go()) == (False, 7)


def test_an_empty_ledger_has_committed_nothing() -> None:
    async def go() -> int:
        return await CreditLedger([], 10).committed()

    assert _run(go()) == 0
