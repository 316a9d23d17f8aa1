"""SIGINT and SIGTERM during an apply: remembered from the first moment to the last.

The handlers are plain `signal.signal` handlers, installed for the whole apply once its
job files are loaded (locking, the event loop, compacting the state, writing the report,
the metrics and the final ping), so there is no window where a signal finds Python's
defaults: a KeyboardInterrupt in the middle of writing the report, a 130 beside a report
that says 0, or a SIGTERM that ends the process with -15 instead of 143.

- While the event loop runs, the first signal cancels the main task through
  `call_soon_threadsafe` (the loop does the cancelling, never the handler itself); the apply
  then saves the state and writes a partial report.
- Outside it, the signal is only remembered: the step in progress is short (compacting),
  it finishes, and the report and the exit code say 130 / 143.
- Once the outcome is final (the report is being written, the metrics, the final ping), a
  signal is remembered and changes nothing: the exit code is the one the report gives.

The handler does nothing but record and schedule: writing to stderr from a signal handler
could re-enter a write already in progress.

At the end the previous handlers come back, except in the `sprunner` process itself
(`ends_the_process`, called by the program's entry point): the process only exits after
the command, so the signals are ignored from then on. Python's defaults there would turn a
signal during the exit into a KeyboardInterrupt (130) or a death by the signal (-2, -15)
beside a report that says 0; a Python handler would not help, as the interpreter resets
them to the defaults while it finalizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_process_ends = False  # set once by the program's entry point: see `ends_the_process`


def ends_the_process() -> None:
    """Say that the process exits after this command: the handlers of an interruption are
    then left ignoring the signals when it ends, instead of giving them back to Python."""
    global _process_ends
    _process_ends = True


class Interruption:
    def __init__(self) -> None:
        self.signum: int | None = None
        # Set by the event loop while it runs: what the first signal must do there.
        self.on_first: Callable[[], object] | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interruption]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals are only delivered to the main thread's handlers
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_IGN if _process_ends else handler)

    @contextlib.contextmanager
    def cancelling(
        self, task: asyncio.Task[Any], before: Callable[[], object] = lambda: None
    ) -> Iterator[None]:
        """Inside a running event loop: the first signal cancels `task` through the loop
        (after `before`), and one that came earlier cancels it at once."""
        loop = asyncio.get_running_loop()

        def cancel() -> None:
            before()
            task.cancel()

        self.on_first = lambda: loop.call_soon_threadsafe(cancel)
        if self.signum is not None:  # it came while locking or starting up
            cancel()
        try:
            yield
        finally:
            self.on_first = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        if self.on_first is not None:
            # A loop that just closed refuses the callback; the signal stays remembered.
            with contextlib.suppress(RuntimeError):
                self.on_first()
