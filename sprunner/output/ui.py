"""The output object: the one way a command speaks to the user. Only this module (and the
click layer that builds it) knows whether a stream is a terminal.

`cli.py` builds one `Output` per command (`make_output`) and passes it into the command
function; nothing else writes to `sys.stdout` or `sys.stderr`. Results go to stdout, logs
and problems to stderr. The output object owns the command's `Redactor`: every line passes
through it, so `env()` values and the API key never reach a terminal or a log file.

Log lines (`error`, `warn`, `info`, `note`, `debug`) all pass through `log`: plain text,
stamped with the UTC time when the command asks for it and stderr is not a terminal, or
one JSON object a line (`--log-format json`, `sprunner.output.logfmt`). While the live display is
up, lines go through it so that they are printed above it (`sprunner.output.liveview`).

Two variants behind one interface: `HumanOutput` (tables, the closing summary) and
`JsonOutput` (one stable JSON document on stdout for plan and apply).
The text of either is decided in `sprunner.output.display`; this module only routes and redacts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

from sprunner.output.liveview import PROGRESS_INTERVAL_S
from sprunner.output.logfmt import LogFormat
from sprunner.util.redact import Redactor

if TYPE_CHECKING:
    from sprunner.output.liveview import LiveView
    from sprunner.reconcile.plan import Plan
    from sprunner.reconcile.runplan import RunIntent
    from sprunner.report.outcome import ApplyOutcome, Progress


# "auto": colour on a terminal only; "always" / "never": whatever the stream is.
ColorMode = Literal["auto", "always", "never"]


def color_mode(environ: Mapping[str, str]) -> ColorMode:
    """The one decision on colour, from the environment's conventions, first match wins:

    1. `NO_COLOR` not empty: never (no-color.org). It wins over the forcing variables, as
       in CPython and bixense's CLICOLOR standard: a reader who asked for plain text gets it.
    2. `FORCE_COLOR` not empty, whatever its value: always, terminal or not (force-color.org).
    3. `CLICOLOR_FORCE` not empty and not "0": always (bixense.com/clicolors).
    4. `TERM=dumb`: never; the terminal cannot show escape sequences.
    5. `CLICOLOR=0`: never (bixense.com/clicolors).
    6. Otherwise "auto": colour only where the stream is a terminal (`Output.use_color`).
    """
    if environ.get("NO_COLOR"):
        return "never"
    if environ.get("FORCE_COLOR") or environ.get("CLICOLOR_FORCE", "0") not in ("", "0"):
        return "always"
    if environ.get("TERM") == "dumb" or environ.get("CLICOLOR") == "0":
        return "never"
    return "auto"


class Output:
    """Verbosity, colour, the redactor and the two streams of one command."""

    def __init__(
        self,
        *,
        verbosity: int = 0,
        color: ColorMode = "auto",
        redactor: Redactor | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        log_format: LogFormat = "text",
        timestamps: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.verbosity = verbosity  # -1 quiet, 0 normal, 1+ verbose
        self.color: ColorMode = color
        self.redactor = redactor if redactor is not None else Redactor()
        # None: the process's streams as they are when written to (CliRunner swaps them).
        self._stdout = stdout
        self._stderr = stderr
        self._closed: set[int] = set()  # ids of streams whose reader went away
        self._terminals: dict[int, tuple[TextIO, bool]] = {}  # id -> (stream, isatty())
        self.log_format: LogFormat = log_format
        # Long-running commands (apply) stamp every line when stderr is not a terminal.
        self.timestamps = timestamps
        self.clock = clock
        # Names a JSON log line may name as its `collection` (set by the command).
        self.collections: frozenset[str] = frozenset()
        self._bound: dict[str, Any] = {}  # fields of every JSON line (`bind`)
        self._live: LiveView | None = None

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
    def is_terminal(self, stream: TextIO) -> bool:
        # Asked for every line written: one isatty() system call per stream, not per line.
        # The stream is kept with its answer: a new stream at a freed one's id is asked anew.
        known = self._terminals.get(id(stream))
        if known is None or known[0] is not stream:
            known = (stream, bool(getattr(stream, "isatty", lambda: False)()))
            self._terminals[id(stream)] = known
        return known[1]

    def use_color(self, stream: TextIO) -> bool:
        """Colour on `stream`, as `color_mode` decided for this command."""
        return self.color == "always" or (self.color == "auto" and self.is_terminal(stream))

    def _styled(self, text: str, style: str) -> str:
        if not self.use_color(self.stderr):
            return text
        import click

        colors = {"error": "red", "warning": "yellow", "info": "cyan"}
        return click.style(text, fg=colors.get(style), bold=style == "error")

    # -- lines -----------------------------------------------------------------------------
    def bind(self, **fields: Any) -> None:
        """Fields every later JSON line carries (the `apply_id` of an apply)."""
        self._bound.update(fields)

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

    def log(self, level: str, text: str, **fields: Any) -> None:
        """One log line on stderr, in the log format; `fields` go into JSON lines as they
        are (`event`, `collection`, `run_id`, ...). Every line is redacted."""
        from sprunner.output import logfmt

        text = self.redact(text)
        if self.log_format == "json":
            every = {**self._bound, **fields}
            safe = {k: self.redact(v) if isinstance(v, str) else v for k, v in every.items()}
            line = logfmt.json_line(
                level, text, now=self.clock(), collections=self.collections, fields=safe
            )
        else:
            stamped = self.timestamps and not self.is_terminal(self.stderr)
            now = self.clock() if stamped else None
            if level in ("error", "warning") and self.use_color(self.stderr):
                text = self._styled(f"{level}: ", level) + text
                level = "info"
            line = logfmt.text_line(level, text, now=now)
        if self._live is not None:
            self._live.log(line)
        else:
            self._write(self.stderr, line + "\n")

    def error(self, text: str, **fields: Any) -> None:
        self.log("error", text, **fields)

    def warn(self, text: str, **fields: Any) -> None:
        self.log("warning", text, **fields)

    def info(self, text: str, **fields: Any) -> None:
        """Progress and decisions; silenced by -q."""
        if self.verbosity >= 0:
            self.log("info", text, **fields)

    def note(self, text: str, **fields: Any) -> None:
        """A line on stderr that -q does not silence (the emulator's address, an apply's
        id and exit code)."""
        self.log("info", text, **fields)

    def debug(self, text: str, *, level: int = 1, **fields: Any) -> None:
        """Shown with -v (`level` 1) or -vv (`level` 2: every API call)."""
        if self.verbosity >= level:
            self.log("debug", text, **fields)

    def document(self, data: Any) -> None:
        """One JSON document on stdout (render, validate, plan and apply with --json)."""
        self.out(json.dumps(data, indent=2, ensure_ascii=False))

    def confirm(self, question: str) -> bool | None:
        """A person's yes (True) or no at a terminal (stdin and stderr both one); None when
        nobody there can answer, where the command's flags are the consent."""
        import click

        if not (self.is_terminal(sys.stdin) and self.is_terminal(self.stderr)):
            return None
        try:
            return bool(click.confirm(self.redact(question), default=False, err=True))
        except click.Abort:  # end of input, or ^C at the question: no
            return False

    # -- what plan and apply show: the variants differ here ---------------------------------
    def plan(self, plan: Plan, runs: Mapping[str, RunIntent] | None = None) -> None:
        raise NotImplementedError

    def apply_result(self, outcome: ApplyOutcome) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def progress(
        self,
        snapshot: Callable[[], Sequence[Progress]],
        *,
        interval: float = PROGRESS_INTERVAL_S,
    ) -> Iterator[None]:
        """While the runs go on: the live display on a terminal (text logs), else a progress
        line every `interval` seconds. `snapshot` returns the runner's frozen values; the
        display reads them and never changes anything (`sprunner.output.liveview`)."""
        from dataclasses import asdict

        from sprunner.output.liveview import LiveView, Ticker, Totals

        if self.verbosity < 0 or not snapshot():
            yield
            return
        if self.log_format == "text" and self.is_terminal(self.stderr):
            with LiveView(self.stderr, snapshot, self.redact) as live:
                self._live = live
                try:
                    yield
                finally:
                    self._live = None
            return

        def emit(line: str, totals: Totals) -> None:
            self.log("info", line, event="progress", **asdict(totals))

        with Ticker(snapshot, emit, interval):
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
    """Tables and sentences for a person."""

    def plan(self, plan: Plan, runs: Mapping[str, RunIntent] | None = None) -> None:
        from sprunner.output.display import plan_lines

        for line in plan_lines(plan, runs, verbosity=self.verbosity):
            self.out(line)

    def apply_result(self, outcome: ApplyOutcome) -> None:
        """terraform-style closing lines on stdout; with -q only the problems."""
        from sprunner.output.display import summary_lines

        for line in summary_lines(outcome, quiet=self.verbosity < 0):
            self.out(line)


class JsonOutput(Output):
    """Plain, stable JSON on stdout for machines; logs still go to stderr."""

    def plan(self, plan: Plan, runs: Mapping[str, RunIntent] | None = None) -> None:
        from sprunner.output.display import plan_json

        self.document(plan_json(plan, runs))

    def apply_result(self, outcome: ApplyOutcome) -> None:
        from sprunner.report.document import dumps

        self.out(dumps(outcome, self.redactor).rstrip("\n"))


def make_output(
    *,
    json: bool,
    verbosity: int,
    color: ColorMode,
    log_format: LogFormat = "text",
    timestamps: bool = False,
) -> Output:
    """The output object of one command (built once, in the click layer)."""
    kind = JsonOutput if json else HumanOutput
    return kind(verbosity=verbosity, color=color, log_format=log_format, timestamps=timestamps)
