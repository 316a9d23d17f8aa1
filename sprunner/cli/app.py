"""The click layer: options → frozen settings → one call into `sprunner.commands`.

No logic lives here. Each command imports its module lazily so that `--version` and
`--help` start without loading httpx, jsonschema, jinja2 or rich.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from sprunner import __version__
from sprunner.cli.handle import Group, crashed, globals_of, handle, output_for
from sprunner.cli.options import (
    EXIT_CODES,
    common_options,
    job_options,
    metrics_option,
    ping_option,
    written_file,
)
from sprunner.cli.tools import emulator, results, state_group
from sprunner.output.logfmt import LOG_FORMATS
from sprunner.output.ui import color_mode
from sprunner.settings import (
    DEFAULT_API_URL,
    DEFAULT_PARALLEL,
    DEFAULT_STATE_DIR,
    ApplyOptions,
    GlobalOptions,
    Selection,
)
from sprunner.util.backoff import Retries


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
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
    envvar="SCRAPINGPROS_API_KEY_FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the API key from this file (env SCRAPINGPROS_API_KEY_FILE; "
    "else the key itself in env SCRAPINGPROS_API_KEY).",
)
@click.option(
    "--state-dir",
    envvar="SPRUNNER_STATE_DIR",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Where sprunner keeps ids, fingerprints and runs (env SPRUNNER_STATE_DIR).",
)
@click.option(
    "--state-url",
    envvar="SPRUNNER_STATE_URL",
    metavar="URL",
    help="postgresql://... : keep the state in a database shared by many hosts "
    "(env SPRUNNER_STATE_URL; needs the postgres extra).",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="How stderr lines look: text, or one JSON object a line for log shippers.",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr; -vv logs every API call.")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.pass_context
def cli(
    ctx: click.Context,
    api_url: str,
    api_key_file: Path | None,
    state_dir: Path,
    state_url: str | None,
    log_format: str,
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
        state_url=state_url or None,
        verbosity=-1 if quiet else verbose,
        color=color_mode(os.environ),  # NO_COLOR, FORCE_COLOR, CLICOLOR_FORCE, TERM=dumb
        retries=retries,
        log_format=log_format,
    )


@cli.command()
@job_options()
@click.pass_context
def validate(ctx: click.Context, selection: Selection, as_json: bool) -> None:
    """Parse, check the schema and render job files; no network."""
    from sprunner.commands import validate as command

    output = output_for(ctx)  # its JSON is its own document, valid files or not
    handle(ctx, output, lambda: command.run(selection, output=output, as_json=as_json))


@cli.command()
@job_options()
@click.pass_context
def render(ctx: click.Context, selection: Selection, as_json: bool) -> None:
    """Print each collection's requests exactly as they would be sent."""
    from sprunner.commands import render as command

    output = output_for(ctx)
    handle(ctx, output, lambda: command.run(selection, output=output, as_json=as_json))


@cli.command()
@job_options(
    click.option(
        "--detailed-exitcode",
        is_flag=True,
        help="Exit 10 when changes are pending, 0 when there are none.",
    ),
    click.option(
        "--local",
        is_flag=True,
        help="Plan against the in-process emulator of apply --local (kept in the state dir).",
    ),
    click.option(
        "--prune", is_flag=True, help="Show the deletions apply --prune would make, as changes."
    ),
)
@click.pass_context
def plan(
    ctx: click.Context,
    selection: Selection,
    as_json: bool,
    detailed_exitcode: bool,
    local: bool,
    prune: bool,
) -> None:
    """Read-only: what apply would create, update, delete or leave alone."""
    from sprunner.commands import plan as command

    output = output_for(ctx, as_json=as_json)
    handle(
        ctx,
        output,
        lambda: command.run(
            selection,
            options=globals_of(ctx),
            output=output,
            detailed_exitcode=detailed_exitcode,
            local=local,
            prune=prune,
        ),
    )


@cli.command()
@job_options(
    written_file("--report", help="JSON report."),
    written_file("--junit", help="JUnit XML report."),
    click.option("--no-run", is_flag=True, help="Reconcile only; start no run."),
    click.option(
        "--run-now",
        is_flag=True,
        help="Start runs for the selected collections whatever run.when and run.schedule say.",
    ),
    click.option(
        "--prune",
        is_flag=True,
        help="Delete collections sprunner created from files under PATH that no file has.",
    ),
    click.option("--yes", "-y", is_flag=True, help="With --prune: delete without asking."),
    click.option(
        "--local",
        is_flag=True,
        help="Apply against an in-process emulator that keeps its collections in the state "
        "directory; no key needed.",
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
    metrics_option,
    ping_option,
    # Tests shorten it; people have no reason to.
    click.option("--progress-every", type=click.FloatRange(min=0.01), default=30.0, hidden=True),
)
@click.pass_context
def apply(
    ctx: click.Context,
    selection: Selection,
    as_json: bool,
    report: Path | None,
    junit: Path | None,
    no_run: bool,
    run_now: bool,
    prune: bool,
    yes: bool,
    local: bool,
    max_credits: int | None,
    parallel: int,
    max_rps: float | None,
    metrics: Path | None,
    ping: str | None,
    progress_every: float,
) -> None:
    """Make the remote collections match the job files, run them, wait, and report."""
    from sprunner.commands import apply as command

    if no_run and run_now:
        raise click.UsageError("--run-now and --no-run exclude each other")
    apply_options = ApplyOptions(
        report=report,
        junit=junit,
        run=not no_run,
        run_now=run_now,
        prune=prune,
        yes=yes,
        local=local,
        max_credits=max_credits,
        parallel=parallel,
        max_rps=max_rps,
        json=as_json,
        metrics=metrics,
        ping=ping,
        progress_interval=progress_every,
    )
    output = output_for(ctx, as_json=as_json, timestamps=True)
    options = globals_of(ctx)
    handle(
        ctx,
        output,
        lambda: command.run(selection, options=options, output=output, apply_options=apply_options),
    )


@cli.command()
@click.argument("report_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--select", "-s", multiple=True, metavar="SEL", help="Collections to retry.")
@click.option("--dry-run", is_flag=True, help="List what would run and its credits; send nothing.")
@written_file("--report", help="New JSON report.")
@written_file("--junit", help="JUnit XML report.")
@click.option("--max-credits", type=click.IntRange(min=0), help="Refuse retries past N credits.")
@metrics_option
@ping_option
@common_options
@click.pass_context
def retry(
    ctx: click.Context,
    report_file: Path,
    select: tuple[str, ...],
    dry_run: bool,
    report: Path | None,
    junit: Path | None,
    max_credits: int | None,
    metrics: Path | None,
    ping: str | None,
) -> None:
    """Re-run the failed jobs an earlier report lists, in each collection's <name>.retry."""
    from sprunner.commands import retry as command

    retry_options = command.RetryOptions(
        report=report,
        junit=junit,
        dry_run=dry_run,
        max_credits=max_credits,
        metrics=metrics,
        ping=ping,
    )
    # Operated like apply (SPEC §9): stamped lines when not on a terminal.
    output = output_for(ctx, as_json=False, timestamps=True)
    options = globals_of(ctx)
    handle(
        ctx,
        output,
        lambda: command.run(
            report_file,
            selection=Selection(select=select),
            options=options,
            output=output,
            retry_options=retry_options,
        ),
    )


@cli.command()
@click.option("--report", "which", flag_value="report", help="Print the report schema instead.")
@click.option("--jobfile", "which", flag_value="jobfile", default=True, hidden=True)
@click.option("--markdown", is_flag=True, help="The job-file reference as Markdown tables.")
@click.pass_context
def schema(ctx: click.Context, which: str, markdown: bool) -> None:
    """Print the job-file JSON Schema (or the report schema with --report)."""
    from sprunner.commands import schema as command

    output = output_for(ctx)
    handle(ctx, output, lambda: command.run(output=output, which=which, markdown=markdown))


@cli.command()
@job_options(
    click.option(
        "--runs",
        type=click.IntRange(min=0, max=100),
        default=10,
        show_default=True,
        help="How many of each collection's last runs to show.",
    ),
)
@click.pass_context
def status(ctx: click.Context, selection: Selection, as_json: bool, runs: int) -> None:
    """Read-only: each collection's last runs, run in flight, next run and pending change."""
    from sprunner.commands import status as command

    output = output_for(ctx, as_json=as_json)
    handle(
        ctx,
        output,
        lambda: command.run(
            selection, options=globals_of(ctx), output=output, as_json=as_json, runs=runs
        ),
    )


cli.add_command(emulator)
cli.add_command(state_group)
cli.add_command(results)


def main(argv: Sequence[str] | None = None) -> int:
    """The `sprunner` command: run it with `argv` (default: the process's) and return the
    exit code, as pre-commit's `main` does; the console script passes it to `sys.exit`."""
    if argv is None:  # the program itself: it exits after the command
        from sprunner.apply.interruption import ends_the_process

        ends_the_process()
    try:
        cli.main(args=None if argv is None else list(argv), prog_name="sprunner")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except Exception as error:  # a bug outside a command's handler (an import, say)
        return crashed(error, state_dir=DEFAULT_STATE_DIR, output=None)
    return 0
