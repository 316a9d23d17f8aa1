"""The click layer: options → frozen settings → one call into `sprunner.commands`.

No logic lives here. Each command imports its module lazily so that `--version` and
`--help` start without loading httpx, jsonschema, jinja2 or rich.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sprunner import __version__
from sprunner.backoff import Retries
from sprunner.clioptions import EXIT_CODES, job_options
from sprunner.settings import (
    DEFAULT_API_URL,
    DEFAULT_PARALLEL,
    DEFAULT_STATE_DIR,
    ApplyOptions,
    GlobalOptions,
    Selection,
)

if TYPE_CHECKING:
    from sprunner.ui import Output


def _handle(ctx: click.Context, output: Output, run: Callable[[], int]) -> None:
    """Run one command; map every error to its message and exit code (`sprunner.errors`).

    An unexpected exception is a bug: its traceback goes to a crash log (redacted), the
    user gets one line naming it, and the exit code is 70, never 1 ("a collection failed").
    """
    from sprunner.errors import EXIT_CRASH, SprunnerError, exit_code_for
    from sprunner.redact import using

    try:
        # The output's redactor is the current one for the command: the API errors mask
        # with it before they cut a long body short (see `sprunner.redact`).
        with using(output.redactor):
            code = run()
    except SprunnerError as error:
        output.error(str(error))
        code = exit_code_for(error)
    except KeyboardInterrupt as error:
        code = exit_code_for(error)
    except Exception as error:
        from sprunner.crash import write_crash_log
        from sprunner.session import KEY_VARIABLE

        # The key may never have been read (the crash came first): mask it all the same.
        output.add_secrets([os.environ.get(KEY_VARIABLE, "").strip()])
        state_dir = _globals(ctx).state_dir
        path = write_crash_log(error, state_dir=state_dir, redactor=output.redactor)
        output.error(f"sprunner crashed (a bug); the traceback is in {path}")
        code = EXIT_CRASH
    sys.exit(code)


def _output(ctx: click.Context, *, as_json: bool = False) -> Output:
    """The command's output object, built once from the global options."""
    from sprunner.ui import make_output

    options = _globals(ctx)
    return make_output(json=as_json, verbosity=options.verbosity, color=options.color)


def _globals(ctx: click.Context) -> GlobalOptions:
    options: GlobalOptions = ctx.obj
    return options


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="sprunner")
@click.option(
    "--api-url",
    envvar="SCRAPINGPROS_API_URL",
    default=DEFAULT_API_URL,
    show_default=True,
    help="Base URL of the API (env SCRAPINGPROS_API_URL).",
)
@click.option(
    "--api-key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the API key from this file (else env SCRAPINGPROS_API_KEY).",
)
@click.option(
    "--state-dir",
    envvar="SPRUNNER_STATE_DIR",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Where sprunner keeps ids, fingerprints and runs (env SPRUNNER_STATE_DIR).",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr; repeat for more.")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.pass_context
def cli(
    ctx: click.Context,
    api_url: str,
    api_key_file: Path | None,
    state_dir: Path,
    verbose: int,
    quiet: bool,
) -> None:
    """Declarative job runner for the ScrapingPros asynchronous scraping API."""
    # Tests inject faster backoffs as click's `obj` (`CliRunner.invoke(..., obj=Retries(...))`).
    retries = ctx.obj if isinstance(ctx.obj, Retries) else Retries()
    ctx.obj = GlobalOptions(
        api_url=api_url.rstrip("/"),
        api_key_file=api_key_file,
        state_dir=state_dir,
        verbosity=-1 if quiet else verbose,
        color=not os.environ.get("NO_COLOR"),  # no-color.org: only a non-empty value counts
        retries=retries,
    )


@cli.command()
@job_options()
@click.pass_context
def validate(ctx: click.Context, selection: Selection, as_json: bool) -> None:
    """Parse, check the schema and render job files; no network."""
    from sprunner.commands import validate as command

    output = _output(ctx)  # its JSON is its own document, valid files or not
    _handle(ctx, output, lambda: command.run(selection, output=output, as_json=as_json))


@cli.command()
@job_options()
@click.pass_context
def render(ctx: click.Context, selection: Selection, as_json: bool) -> None:
    """Print each collection's requests exactly as they would be sent."""
    from sprunner.commands import render as command

    output = _output(ctx)
    _handle(ctx, output, lambda: command.run(selection, output=output, as_json=as_json))


@cli.command()
@job_options(
    click.option(
        "--detailed-exitcode",
        is_flag=True,
        help="Exit 10 when changes are pending, 0 when there are none.",
    ),
    click.option("--local", is_flag=True, help="Plan against a fresh in-process emulator."),
)
@click.pass_context
def plan(
    ctx: click.Context,
    selection: Selection,
    as_json: bool,
    detailed_exitcode: bool,
    local: bool,
) -> None:
    """Read-only: what apply would create, update, delete or leave alone."""
    from sprunner.commands import plan as command

    output = _output(ctx, as_json=as_json)
    _handle(
        ctx,
        output,
        lambda: command.run(
            selection,
            options=_globals(ctx),
            output=output,
            detailed_exitcode=detailed_exitcode,
            local=local,
        ),
    )


@cli.command()
@job_options(
    click.option("--report", type=click.Path(path_type=Path, dir_okay=False), help="JSON report."),
    click.option(
        "--junit", type=click.Path(path_type=Path, dir_okay=False), help="JUnit XML report."
    ),
    click.option("--no-run", is_flag=True, help="Reconcile only; start no run."),
    click.option(
        "--prune", is_flag=True, help="Delete collections sprunner created and no file has."
    ),
    click.option(
        "--local", is_flag=True, help="Apply against an in-process emulator; no key needed."
    ),
    click.option(
        "--max-credits",
        type=click.IntRange(min=0),
        help="Refuse to start runs whose summed cost would pass N credits.",
    ),
    click.option(
        "--parallel",
        type=click.IntRange(min=1, max=256),
        default=DEFAULT_PARALLEL,
        show_default=True,
        help="Concurrent API calls at most.",
    ),
    click.option(
        "--max-rps",
        type=click.FloatRange(min=0.1),
        help="A fixed ceiling on API requests per second (the limiter also adapts to 429s).",
    ),
)
@click.pass_context
def apply(
    ctx: click.Context,
    selection: Selection,
    as_json: bool,
    report: Path | None,
    junit: Path | None,
    no_run: bool,
    prune: bool,
    local: bool,
    max_credits: int | None,
    parallel: int,
    max_rps: float | None,
) -> None:
    """Make the remote collections match the job files, run them, wait, and report."""
    from sprunner.commands import apply as command

    apply_options = ApplyOptions(
        report=report,
        junit=junit,
        run=not no_run,
        prune=prune,
        local=local,
        max_credits=max_credits,
        parallel=parallel,
        max_rps=max_rps,
        json=as_json,
    )
    output = _output(ctx, as_json=as_json)
    options = _globals(ctx)
    _handle(
        ctx,
        output,
        lambda: command.run(selection, options=options, output=output, apply_options=apply_options),
    )


@cli.command()
@click.option("--report", "which", flag_value="report", help="Print the report schema instead.")
@click.option("--jobfile", "which", flag_value="jobfile", default=True, hidden=True)
@click.option("--markdown", is_flag=True, help="The job-file reference as Markdown tables.")
@click.pass_context
def schema(ctx: click.Context, which: str, markdown: bool) -> None:
    """Print the job-file JSON Schema (or the report schema with --report)."""
    from sprunner.commands import schema as command

    output = _output(ctx)
    _handle(ctx, output, lambda: command.run(output=output, which=which, markdown=markdown))


# --- emulator: options owned by sprunner/commands/emulator.py -------------------------------
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8080, show_default=True)
@click.option(
    "--api-key",
    envvar="SPRUNNER_EMULATOR_API_KEY",
    default="emulator-key",
    show_default=True,
    help="The bearer key the emulator accepts.",
)
@click.option(
    "--mode",
    type=click.Choice(["fetch", "simulate"]),
    default="fetch",
    show_default=True,
    help="fetch: really fetch each URL; simulate: deterministic outcomes, no network.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="SPEC",
    help="Inject a fault: KIND[:VALUE][@ROUTE], e.g. 'error-before:0.1', 'error-after:0.1', "
    "'drop-after:0.1@create', 'rate-429:0.1', 'quota@run', 'slow:0.5', 'rate-limit:25', "
    "'no-idempotency'. "
    "May repeat.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for faults.")
@click.option(
    "--run-seconds",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="simulate: how long a run takes (its jobs finish evenly over it).",
)
@click.option(
    "--fetch-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="fetch: seconds before a job times out.",
)
@click.option(
    "--fetch-concurrency",
    type=click.IntRange(min=1, max=1000),
    default=16,
    show_default=True,
    help="fetch: URLs fetched at once, across all runs.",
)
@click.pass_context
def emulator(
    ctx: click.Context,
    host: str,
    port: int,
    api_key: str,
    mode: str,
    faults: tuple[str, ...],
    seed: int,
    run_seconds: float,
    fetch_timeout: float,
    fetch_concurrency: int,
) -> None:
    """Serve a local stand-in of the ScrapingPros API, for demos and tests."""
    from sprunner.commands import emulator as command

    output = _output(ctx)
    _handle(
        ctx,
        output,
        lambda: command.run(
            output=output,
            host=host,
            port=port,
            api_key=api_key,
            mode=mode,
            faults=faults,
            seed=seed,
            run_seconds=run_seconds,
            fetch_timeout=fetch_timeout,
            fetch_concurrency=fetch_concurrency,
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The `sprunner` command: run it with `argv` (default: the process's) and return the
    exit code, as pre-commit's `main` does; the console script passes it to `sys.exit`."""
    try:
        cli.main(args=None if argv is None else list(argv), prog_name="sprunner")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
