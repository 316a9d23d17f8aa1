"""The output object: the one way a command speaks to the user. Only this module (and the
click layer that builds it) knows whether a stream is a terminal.

`cli.py` builds one `Output` per command (`make_output`) and passes it into the command
function; nothing else writes to `sys.stdout` or `sys.stderr`. Results go to stdout, logs
and problems to stderr. The output object owns the command's `Redactor`: every line passes
through it, so `env()` values and the API key never reach a terminal or a log file.

Two variants behind one interface: `HumanOutput` (tables, a live progress display, the
closing summary) and `JsonOutput` (one stable JSON document on stdout for plan and apply).
The text of either is decided in `sprunner.display`; this module only routes and redacts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from sprunner.redact import Redactor

if TYPE_CHECKING:
    from sprunner.outcome import ApplyOutcome, Progress
    from sprunner.reconcile.plan import Plan


class Output:
    """Verbosity, colour, the redactor and the two streams of one command."""

    def __init__(
        self,
        *,
        verbosity: int = 0,
        color: bool = True,
        redactor: Redactor | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.verbosity = verbosity  # -1 quiet, 0 normal, 1+ verbose
        self.color = color
        self.redactor = redactor if redactor is not None else Redactor()
        # None: the process's streams as they are when written to (CliRunner swaps them).
        self._stdout = stdout
        self._stderr = stderr
        self._closed: set[int] = set()  # ids of streams whose reader went away

    @property
    def stdout(self) -> TextIO:
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self._stderr or sys.stderr

    # -- secrets ---------------------------------------------------------------------------
    def add_secrets(self, values: Iterable[str]) -> None:
        """Register values that must never be printed (env() values, the API key)."""
        self.redactor.add(values)

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    # -- terminals -------------------------------------------------------------------------
    @staticmethod
    def is_terminal(stream: TextIO) -> bool:
        return bool(getattr(stream, "isatty", lambda: False)())

    def use_color(self, stream: TextIO) -> bool:
        return self.color and self.is_terminal(stream)

    def _styled(self, text: str, style: str) -> str:
        if not self.use_color(self.stderr):
            return text
        import click

        colors = {"error": "red", "warning": "yellow", "info": "cyan"}
        return click.style(text, fg=colors.get(style), bold=style == "error")

    # -- lines -----------------------------------------------------------------------------
    def _write(self, stream: TextIO, text: str) -> None:
        """Write and flush one line. A stream whose reader went away (`apply | head`,
        `2>&1 | true`) is dropped silently: a closed pipe never stops an apply, whose
        report, state and runs matter more than lines nobody reads (SPEC §3)."""
        if id(stream) in self._closed:
            return
        try:
            stream.write(text)
            stream.flush()
        except (BrokenPipeError, ValueError) as error:
            # ValueError: the stream object itself was closed.
            self._closed.add(id(stream))
            _quiet_at_exit(stream, error)
        except OSError as error:
            if error.errno != errno.EPIPE:
                raise
            self._closed.add(id(stream))
            _quiet_at_exit(stream, error)

    def out(self, text: str) -> None:
        """A result line on stdout."""
        self._write(self.stdout, self.redact(text) + "\n")

    def error(self, text: str) -> None:
        self._write(self.stderr, self._styled("error: ", "error") + self.redact(text) + "\n")

    def warn(self, text: str) -> None:
        self._write(self.stderr, self._styled("warning: ", "warning") + self.redact(text) + "\n")

    def info(self, text: str) -> None:
        """Progress and decisions; silenced by -q."""
        if self.verbosity >= 0:
            self._write(self.stderr, self.redact(text) + "\n")

    def note(self, text: str) -> None:
        """A line on stderr that -q does not silence (what the emulator listens on)."""
        self._write(self.stderr, self.redact(text) + "\n")

    def debug(self, text: str) -> None:
        if self.verbosity >= 1:
            self._write(self.stderr, self.redact(text) + "\n")

    def document(self, data: Any) -> None:
        """One JSON document on stdout (render, validate, plan and apply with --json)."""
        self.out(json.dumps(data, indent=2, ensure_ascii=False))

    # -- what plan and apply show: the variants differ here ---------------------------------
    def plan(self, plan: Plan) -> None:
        raise NotImplementedError

    def apply_result(self, outcome: ApplyOutcome) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def progress(self, snapshot: Callable[[], Sequence[Progress]]) -> Iterator[None]:
        """While the runs go on: a live table on a terminal; nothing otherwise."""
        yield


def _quiet_at_exit(stream: TextIO, error: BaseException) -> None:
    """Point the broken stream's descriptor at /dev/null, so that the interpreter's last
    flush at exit neither raises nor turns the exit code into 120."""
    del error
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


class HumanOutput(Output):
    """Tables and sentences for a person; a live progress table on a terminal."""

    def plan(self, plan: Plan) -> None:
        from sprunner.display import plan_lines

        for line in plan_lines(plan):
            self.out(line)

    def apply_result(self, outcome: ApplyOutcome) -> None:
        """terraform-style closing lines on stdout; with -q only the problems."""
        from sprunner.display import summary_lines

        for line in summary_lines(outcome, quiet=self.verbosity < 0):
            self.out(line)

    @contextlib.contextmanager
    def progress(self, snapshot: Callable[[], Sequence[Progress]]) -> Iterator[None]:
        """`snapshot` returns the runner's frozen progress values; the display polls it four
        times a second and never changes anything."""
        if self.verbosity < 0 or not self.is_terminal(self.stderr) or not snapshot():
            yield
            return
        from rich.console import Console
        from rich.live import Live

        from sprunner.display import progress_table

        console = Console(file=self.stderr, no_color=not self.color)

        def table() -> Any:
            return progress_table(snapshot(), self.redact)

        with Live(
            table(),
            console=console,
            refresh_per_second=4,
            transient=True,
            redirect_stderr=True,
            redirect_stdout=False,
            get_renderable=table,
        ):
            yield


class JsonOutput(Output):
    """Plain, stable JSON on stdout for machines; logs still go to stderr."""

    def plan(self, plan: Plan) -> None:
        from sprunner.display import plan_json

        self.document(plan_json(plan))

    def apply_result(self, outcome: ApplyOutcome) -> None:
        from sprunner.report import dumps

        self.out(dumps(outcome, self.redactor).rstrip("\n"))


def make_output(*, json: bool, verbosity: int, color: bool) -> Output:
    """The output object of one command (built once, in the click layer)."""
    kind = JsonOutput if json else HumanOutput
    return kind(verbosity=verbosity, color=color)
