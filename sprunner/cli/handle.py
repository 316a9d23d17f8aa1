"""How every click command runs its core function: the output object, the error handler.

Click-layer only. `handle` maps every error to its message and exit code
(`sprunner.errors`); an unexpected exception is a bug, written to a crash log. `Group`
makes click's own usage errors (an unknown option, a bad value) follow `--log-format`: a
log shipper reading JSON lines gets one for them too (exit code 2, as click's).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sprunner.settings import GlobalOptions

if TYPE_CHECKING:
    from sprunner.output.logfmt import LogFormat
    from sprunner.output.ui import Output


class Group(click.Group):
    """The `sprunner` group: click's, with usage errors in the log format asked for. A
    Ctrl-C that comes before a command's own handler (while the command's modules import,
    say) exits 130 as SPEC §3 says, where click would print "Aborted!" and exit 1, which
    means "a collection failed"."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from sprunner.errors import EXIT_SIGINT

            sys.exit(EXIT_SIGINT)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as error:
            if _log_format(argv) == "json":
                _json_usage_error(error)
            else:
                error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _log_format(argv: Sequence[str]) -> str:
    """The `--log-format` the command line asks for (the last one wins), read from the
    words themselves: click's parsing is what failed."""
    found = "text"
    for index, word in enumerate(argv):
        if word == "--":
            break
        if word == "--log-format" and index + 1 < len(argv):
            found = argv[index + 1]
        elif word.startswith("--log-format="):
            found = word.partition("=")[2]
    return found


def _json_usage_error(error: click.ClickException) -> None:
    import time

    from sprunner.output.logfmt import json_line

    fields: dict[str, Any] = {"event": "usage_error", "exit_code": error.exit_code}
    context = getattr(error, "ctx", None)
    if context is not None:
        fields["command"] = context.command_path
    click.echo(json_line("error", error.format_message(), now=time.time(), fields=fields), err=True)


def handle(ctx: click.Context, output: Output, run: Callable[[], int]) -> None:
    """Run one command; map every error to its message and exit code (`sprunner.errors`).

    An unexpected exception is a bug: its traceback goes to a crash log (redacted), the
    user gets one line naming it, and the exit code is 70, never 1 ("a collection failed").
    """
    from sprunner.errors import SprunnerError, exit_code_for
    from sprunner.util.redact import url_passwords, using

    # A `--state-url` password is a secret like the key: masked wherever it shows up, not
    # only where the URL is printed whole (`redact.url_without_password`).
    output.add_secrets(url_passwords(getattr(ctx.obj, "state_url", None)))
    try:
        # The output's redactor is the current one for the command: the API errors mask
        # with it before they cut a long body short (see `sprunner.util.redact`).
        with using(output.redactor):
            code = run()
    except SprunnerError as error:
        if not getattr(error, "reported", False):  # apply reports it before its exit code
            output.error(str(error))
        code = exit_code_for(error)
    except KeyboardInterrupt as error:
        code = exit_code_for(error)
    except Exception as error:
        code = crashed(error, state_dir=globals_of(ctx).state_dir, output=output)
    sys.exit(code)


def crashed(error: Exception, *, state_dir: Path, output: Output | None) -> int:
    """A bug: the traceback to a crash log (redacted), one line naming it, exit 70."""
    from sprunner.apply.session import KEY_VARIABLE
    from sprunner.cli.crash import write_crash_log
    from sprunner.errors import EXIT_CRASH
    from sprunner.output.ui import make_output

    if output is None:
        output = make_output(json=False, verbosity=0, color="never")
    # The key may never have been read (the crash came first): mask it all the same.
    output.add_secrets([os.environ.get(KEY_VARIABLE, "").strip()])
    path = write_crash_log(error, state_dir=state_dir, redactor=output.redactor)
    output.error(f"sprunner crashed (a bug); the traceback is in {path}")
    return EXIT_CRASH


def output_for(ctx: click.Context, *, as_json: bool = False, timestamps: bool = False) -> Output:
    """The command's output object, built once from the global options. `timestamps`: stamp
    every log line with the UTC time when stderr is not a terminal (long-running commands)."""
    from sprunner.output.ui import make_output

    options = globals_of(ctx)
    log_format: LogFormat = "json" if options.log_format == "json" else "text"
    return make_output(
        json=as_json,
        verbosity=options.verbosity,
        color=options.color,
        log_format=log_format,
        timestamps=timestamps,
    )


def globals_of(ctx: click.Context) -> GlobalOptions:
    options: GlobalOptions = ctx.obj
    return options
