"""The results of `sprunner retry`'s companion runs (SPEC §7 meets §8).

`sprunner retry REPORT.json` (`CommandResults`): SPEC §8 says nothing of its results; the
file published for the earlier run is not rewritten (it may have been read, copied or
loaded since). Each companion run's rows go to the collection's results destination as a
run of their own: `collection=<name>/date=<day>/<retry run id>.<format>` and its manifest,
one row per re-run request with its `attempts` and its own `run_id` and `run_started_at`,
so the README's latest-outcome query takes it over the earlier run's row. Its drain is
journaled under the companion's entry, so an adopted run's file is finished, never doubled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sprunner.api.client import ApiClient
from sprunner.api.models import Run
from sprunner.jobfile.model import DesiredCollection
from sprunner.results.delivery import Delivery
from sprunner.results.journal import COMPANION
from sprunner.retry.results import Hook
from sprunner.state import StateStore


class CommandResults:
    """`sprunner retry`: each companion run's rows as a run of their own (module docstring)."""

    def __init__(
        self,
        client: ApiClient,
        state: StateStore,
        desired: DesiredCollection,
        attempts_of: Mapping[tuple[str, str | None], int],
        *,
        warn: Callable[[str], None],
    ) -> None:
        self._client, self._state, self._desired = client, state, desired
        self._attempts_of, self._warn = attempts_of, warn

    async def begin(self, attempt: int, run: Run, started_at: float) -> Hook | None:
        if self._desired.results is None:
            return None
        delivery = Delivery(
            self._client,
            self._state,
            self._desired,
            run,
            started_at=started_at,
            warn=self._warn,
            journal=self._desired.name + COMPANION,
            attempts_of=self._attempts_of,
        )
        await delivery.open()
        return _Published(delivery)


class _Published:
    def __init__(self, delivery: Delivery) -> None:
        self._delivery = delivery

    @property
    def error(self) -> str | None:
        return self._delivery.error

    async def on_poll(self, run: Run) -> None:
        await self._delivery.on_poll(run)

    async def done(self, run: Run) -> Mapping[str, Any] | None:
        delivered = await self._delivery.finish(run)
        return None if delivered is None else delivered.report()

    def close(self) -> None:
        self._delivery.close()
