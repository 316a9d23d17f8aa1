"""What an unattended apply (or `sprunner retry`) tells the world around it (SPEC §9): its
id and exit code in the log, the `--ping` calls and the `--metrics` file.

`operated` wraps the whole command, job-file loading included, so that every exit code
reaches the monitor: a ping is sent and the metrics file written on 0, 1, 2, 3, 130 and
143 alike, and on a crash (70). Never on 4: the lock is taken first (`exclusive`), and a
command stopped there leaves the ping, the metrics, the report and the JUnit file to the
apply that holds the lock (it owns them), having loaded, sent and written nothing.

Decisions:
- every log line of the command carries `apply_id` in JSON logs (`Output.bind`), and the
  pings carry it as `rid`, so overlapping applies can be told apart everywhere;
- a metrics file that cannot be written is a warning, never a change of the exit code: the
  apply's work is done (or not) whatever happens to the file, and a cron wrapper that alerts
  on the exit code would otherwise report a scraping failure that did not happen. The stale
  file is what the monitor sees: `sprunner_last_apply_timestamp_seconds` stops moving, and
  an alert on its age catches it;
- the ping is sent first at the start (in the background: `Pinger.start` returns at once)
  and last at the end, after the metrics file, with the summary as its body, waited for at
  most `Pinger`'s bound;
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
from pathlib import Path
from typing import TYPE_CHECKING

from sprunner.errors import EXIT_LOCKED, EXIT_OK, LockHeldError, SprunnerError, exit_code_for

if TYPE_CHECKING:
    from sprunner.api.calls import CallRecord
    from sprunner.output.ui import Output
    from sprunner.report.outcome import ApplyOutcome
    from sprunner.report.ping import Pinger


@dataclass(frozen=True)
class _Call:
    call: str
    status: int | None


@dataclass(frozen=True)
class Operations:
    """How a command is operated: `--metrics FILE`, `--ping URL`, and what it is called."""

    metrics: Path | None = None
    ping: str | None = None
    command: str = "apply"


@dataclass
class Operation:
    """One apply as its surroundings see it. The apply fills `outcome` and `exit_code`."""

    output: Output
    apply_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: float = field(default_factory=time.time)
    outcome: ApplyOutcome | None = None
    exit_code: int = EXIT_OK
    calls: Counter[_Call] = field(default_factory=Counter)
    # Why the lock could not be taken (a state directory that cannot hold it), when no
    # other apply holds it: the command's own failure, reported as such (`locked`).
    lock_error: Exception | None = None

    def locked(self) -> None:
        """Raise what kept the lock from being taken, inside the command's own error
        handling (its report and JUnit say it: exit 2 for a state directory that cannot be
        created). A lock another apply holds never gets here: exit 4, nothing written."""
        if self.lock_error is not None:
            raise self.lock_error

    def on_call(self, record: CallRecord) -> None:
        """The API client's hook: count the call, and log it with -vv."""
        self.calls[_Call(record.call, record.status)] += 1
        log_call(self.output, record)


def log_call(output: Output, record: CallRecord) -> None:
    """One API call as a `-vv` line (any command's client may pass it as `on_call`)."""
    from sprunner.output.logfmt import call_text

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
def operated(
    output: Output,
    operations: Operations,
    *,
    api_url: str,
    exclusive: contextlib.AbstractContextManager[object],
) -> Iterator[Operation]:
    """Take the lock (`exclusive`: LockHeldError, exit 4, and nothing else happens), then
    log the command's id and ping its start; at the end (any exit) write the metrics, log
    the exit code and ping it. The body sets `exit_code` before it returns normally."""
    op = Operation(output)
    output.bind(apply_id=op.apply_id)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive)
        except LockHeldError:
            raise  # another apply's: nothing pinged, logged as started, or written
        except Exception as error:
            op.lock_error = error  # the command raises it (`Operation.locked`)
        pinger = _pinger(output, operations, op.apply_id)
        what = operations.command
        output.note(f"{what} {op.apply_id} started", event="apply_started", command=what)
        if pinger is not None:
            pinger.start()
        try:
            yield op
            op.locked()  # a command that did not ask still fails with it
        except BaseException as error:
            op.exit_code = exit_code_for(error)
            if isinstance(error, SprunnerError):
                # Said here, so that the exit code line is the apply's last (`clihandle.handle`
                # does not say it again).
                output.error(str(error))
                error.reported = True  # type: ignore[attr-defined]
            raise
        finally:
            _finish(op, operations, api_url, pinger)


def _finish(op: Operation, operations: Operations, api_url: str, pinger: Pinger | None) -> None:
    if op.exit_code == EXIT_LOCKED:  # a whole-state lock met late: the files are not ours
        return
    _metrics(op, operations, api_url)
    outcome = op.outcome
    fields = {} if outcome is None else _totals(outcome)
    op.output.note(
        f"{operations.command} {op.apply_id} finished: exit code {op.exit_code}",
        event="apply_finished",
        exit_code=op.exit_code,
        duration_s=round(time.time() - op.started_at, 3),
        **fields,
    )
    if pinger is not None:
        pinger.finish(op.exit_code, body=_body(op, operations))


def _totals(outcome: ApplyOutcome) -> dict[str, int | bool]:
    from sprunner.report.document import summary

    return {"ok": outcome.ok, **summary(outcome)}


def _body(op: Operation, operations: Operations) -> str:
    """The final ping's body: a few lines of summary, masked (no secret leaves)."""
    from sprunner.output.display import ping_lines

    lines = [f"sprunner {operations.command} {op.apply_id}: exit code {op.exit_code}"]
    if op.outcome is not None:
        lines.extend(ping_lines(op.outcome))
    return op.output.redact("\n".join(lines)) + "\n"


def _pinger(output: Output, operations: Operations, apply_id: str) -> Pinger | None:
    if operations.ping is None:
        return None
    from sprunner.report.ping import Pinger

    return Pinger(operations.ping, warn=output.warn, rid=apply_id)


def _metrics(op: Operation, operations: Operations, api_url: str) -> None:
    if operations.metrics is None:
        return
    from sprunner.report.metrics import MetricsError, from_outcome, write_metrics
    from sprunner.report.outcome import ApplyOutcome

    outcome = op.outcome or ApplyOutcome(api_url, op.started_at, time.time())
    records = [call for call, n in op.calls.items() for _ in range(n)]
    try:
        retries_only = operations.command == "retry"
        metrics = from_outcome(
            outcome, exit_code=op.exit_code, calls=records, retries_only=retries_only
        )
        write_metrics(operations.metrics, metrics)
    except MetricsError as error:
        op.output.warn(f"{error} (the exit code is not changed)")
    except Exception as error:  # a metrics bug must not turn a good apply into a crash
        op.output.warn(f"cannot write metrics to {operations.metrics}: {error}")
