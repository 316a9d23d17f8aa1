"""What every stage of one apply (or `sprunner retry`) is handed: one frozen value.

The command builds it once, after the lock, the client and the state are open; the runner,
the run start (`runs/launch.py`) and the retries (`retry/loop.py`, `retry/rerun.py`) read
from it instead of taking the same parameters by hand. It holds handles, not facts: the
state it names is the only memory (SPEC §10), so nothing here changes during an apply but
the credit brake the runner sets once the first runs are known (`with_brake`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sprunner.runs.ledger import CreditBrake
from sprunner.util.backoff import WRITE_BACKOFF, Backoff

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.output.ui import Output
    from sprunner.state import StateStore as State


@dataclass(frozen=True)
class ApplyContext:
    client: ApiClient
    state: State
    apply_id: str
    output: Output
    # Retries take their credits from here (`--max-credits`); unlimited unless set.
    brake: CreditBrake = field(default_factory=lambda: CreditBrake(None))
    clock: Callable[[], float] = time.time
    backoff: Backoff = WRITE_BACKOFF  # repeats of a create, a PUT or a run start

    def with_brake(self, brake: CreditBrake) -> ApplyContext:
        return replace(self, brake=brake)
