"""What an unattended apply tells the world around it (SPEC §9): its id and exit code in the
log, the `--ping` calls and the `--metrics` file.

`operated` wraps the whole apply command, job-file loading included, so that every exit
code reaches the monitor: a ping is sent and the metrics file written on 0, 1, 2, 3, 4, 130
and 143 alike, and on a crash (70).

Decisions:
- a metrics file that cannot be written is a warning, never a change of the exit code: the
  apply's work is done (or not) whatever happens to the file, and a cron wrapper that alerts
  on the exit code would otherwise report a scraping failure that did not happen. The stale
  file is what the monitor sees: `sprunner_last_apply_timestamp_seconds` stops moving, and
  an alert on its age catches it;
- the ping is sent first at the start (in the background: `Pinger.start` returns at once)
  and last at the end, after the metrics file, waited for at most `Pinger`'s bound;
- API calls are counted by (call, status code) from the client's `on_call` records, never
  kept one by one: a long apply makes tens of thousands.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sprunner.errors import EXIT_OK, SprunnerError, exit_code_for

if TYPE_CHECKING:
    from sprunner.api.calls import CallRecord
    from sprunner.outcome import ApplyOutcome
    from sprunner.ping import Pinger
    from sprunner.settings import ApplyOptions
    from sprunner.ui import Output


@dataclass(frozen=True)
class _Call:
    call: str
    status: int | None


@dataclass
class Operation:
    """One apply as its surroundings see it. The apply fills `outcome` and `exit_code`."""

    output: Output
    apply_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: float = field(default_factory=time.time)
    outcome: ApplyOutcome | None = None
    exit_code: int = EXIT_OK
    calls: Counter[_Call] = field(default_factory=Counter)

    def on_call(self, record: CallRecord) -> None:
        """The API client's hook: count the call, and log it with -vv."""
        self.calls[_Call(record.call, record.status)] += 1
        log_call(self.output, record)


def log_call(output: Output, record: CallRecord) -> None:
    """One API call as a `-vv` line (any command's client may pass it as `on_call`)."""
    from sprunner.logfmt import call_text

    output.debug(
        call_text(record.method, record.route, record.status, record.duration, record.error),
        level=2,
        event="api_call",
        method=record.method,
        route=record.route,
        status=record.status,
        duration_ms=round(record.duration * 1000, 1),
    )


@contextlib.contextmanager
def operated(output: Output, options: ApplyOptions, *, api_url: str) -> Iterator[Operation]:
    """Log the apply's id, ping its start; at the end (any exit) write the metrics, log the
    exit code and ping it. The body sets `exit_code` before it returns normally."""
    pinger = _pinger(output, options)
    op = Operation(output)
    output.note(f"apply {op.apply_id} started", event="apply_started", apply_id=op.apply_id)
    if pinger is not None:
        pinger.start()
    try:
        yield op
    except BaseException as error:
        op.exit_code = exit_code_for(error)
        if isinstance(error, SprunnerError):
            # Said here, so that the exit code line is the apply's last (`clihandle.handle`
            # does not say it again).
            output.error(str(error))
            error.reported = True  # type: ignore[attr-defined]
        raise
    finally:
        _metrics(op, options, api_url)
        output.note(
            f"apply {op.apply_id} finished: exit code {op.exit_code}",
            event="apply_finished",
            apply_id=op.apply_id,
            exit_code=op.exit_code,
        )
        if pinger is not None:
            pinger.finish(op.exit_code)


def _pinger(output: Output, options: ApplyOptions) -> Pinger | None:
    if options.ping is None:
        return None
    from sprunner.ping import Pinger

    return Pinger(options.ping, warn=output.warn)


def _metrics(op: Operation, options: ApplyOptions, api_url: str) -> None:
    if options.metrics is None:
        return
    from sprunner.metrics import MetricsError, from_outcome, write_metrics
    from sprunner.outcome import ApplyOutcome

    outcome = op.outcome or ApplyOutcome(api_url, op.started_at, time.time())
    records = [call for call, n in op.calls.items() for _ in range(n)]
    try:
        write_metrics(options.metrics, from_outcome(outcome, exit_code=op.exit_code, calls=records))
    except MetricsError as error:
        op.output.warn(f"{error} (the exit code is not changed)")
    except Exception as error:  # a metrics bug must not turn a good apply into a crash
        op.output.warn(f"cannot write metrics to {options.metrics}: {error}")
