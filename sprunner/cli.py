"""The click layer: options → frozen settings → one call into `sprunner.commands`.

No logic lives here. Each command imports its module lazily so that `--version` and
`--help` start without loading httpx, jsonschema, jinja2 or rich.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sprunner import __version__
from sprunner.settings import (
    DEFAULT_API_URL,
    DEFAULT_JOBFILES,
    DEFAULT_PARALLEL,
    DEFAULT_STATE_DIR,
    ApplyOptions,
    GlobalOptions,
    Selection,
    Shard,
)


def _handle(run: Callable[[], int]) -> None:
    """Run one command; map every SprunnerError to its message and exit code."""
    from sprunner.errors import SprunnerError, exit_code_for

    try:
        code = run()
    except SprunnerError as error:
        from sprunner import ui

        ui.error(str(error))
        code = exit_code_for(error)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _parse_shard(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Shard | None:
    if value is None:
        return None
    try:
        index_text, count_text = value.split("/")
        shard = Shard(int(index_text), int(count_text))
    except ValueError:
        raise click.BadParameter(f"expected I/N such as 1/3, got {value!r}") from None
    if not 1 <= shard.index <= shard.count:
        raise click.BadParameter(f"I must be between 1 and N, got {value!r}")
    return shard


def _globals(ctx: click.Context) -> GlobalOptions:
    options: GlobalOptions = ctx.obj
    return options


def _selection(paths: tuple[Path, ...], select: tuple[str, ...], **kw: Any) -> Selection:
    return Selection(paths=paths or (DEFAULT_JOBFILES,), select=select, **kw)


_paths = click.argument(
    "paths", nargs=-1, type=click.Path(path_type=Path, exists=True, dir_okay=True)
)
_select = click.option(
    "--select",
    "-s",
    multiple=True,
    metavar="SEL",
    help="Collection name, shell glob or tag:NAME; may repeat.",
)
_shard = click.option(
    "--shard",
    callback=_parse_shard,
    metavar="I/N",
    help="Take only part I of N of the selected collections (stable hash of the name).",
)
_max_requests = click.option(
    "--max-requests",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Cap on the requests of one collection after expansion.",
)
_json = click.option("--json", "as_json", is_flag=True, help="Plain, stable JSON on stdout.")


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: int | bool) -> None:
    """-v / -q given after the command name (`sprunner apply -q`), as well as before it."""
    if not value:
        return
    options: GlobalOptions = ctx.obj
    quiet = param.name == "quiet"
    verbosity = -1 if quiet else max(options.verbosity, 0) + int(value)
    ctx.obj = dataclasses.replace(options, verbosity=verbosity)
    from sprunner import ui

    ui.configure(verbosity=verbosity, color=options.color)


def _verbosity(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_set_verbosity,
        help="More detail on stderr; repeat for more.",
    )(command)
    return click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_verbosity,
        help="Print only problems.",
    )(command)


_EXIT_CODES = """\b
Exit codes:
  0    everything applied; every run met its max_failed
  1    a collection failed (jobs over max_failed, timeout, API error)
  2    invalid job files or usage; nothing was sent
  3    the API could not be used (unreachable, bad key, quota spent)
  4    another apply holds the lock on the state directory
  10   plan --detailed-exitcode: changes are pending
  130  interrupted (SIGINT), 143 terminated (SIGTERM); state saved
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EXIT_CODES)
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
@click.option(
    "--state-url",
    envvar="SPRUNNER_STATE_URL",
    metavar="URL",
    help="postgresql://... : keep the state in a database shared by many hosts "
    "(env SPRUNNER_STATE_URL; needs the postgres extra).",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr; repeat for more.")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.pass_context
def cli(
    ctx: click.Context,
    api_url: str,
    api_key_file: Path | None,
    state_dir: Path,
    state_url: str | None,
    verbose: int,
    quiet: bool,
) -> None:
    """Declarative job runner for the ScrapingPros asynchronous scraping API."""
    ctx.obj = GlobalOptions(
        api_url=api_url.rstrip("/"),
        api_key_file=api_key_file,
        state_dir=state_dir,
        state_url=state_url or None,
        verbosity=-1 if quiet else verbose,
        color=not os.environ.get("NO_COLOR"),  # no-color.org: only a non-empty value counts
    )
    from sprunner import ui

    ui.configure(verbosity=ctx.obj.verbosity, color=ctx.obj.color)


@cli.command()
@_paths
@_select
@_shard
@_max_requests
@_json
@_verbosity
@click.pass_context
def validate(
    ctx: click.Context,
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    shard: Shard | None,
    max_requests: int,
    as_json: bool,
) -> None:
    """Parse, check the schema and render job files; no network."""
    from sprunner.commands import validate as command

    selection = _selection(paths, select, shard=shard, max_requests=max_requests)
    _handle(lambda: command.run(selection, options=_globals(ctx), as_json=as_json))


@cli.command()
@_paths
@_select
@_shard
@_max_requests
@_json
@_verbosity
@click.pass_context
def render(
    ctx: click.Context,
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    shard: Shard | None,
    max_requests: int,
    as_json: bool,
) -> None:
    """Print each collection's requests exactly as they would be sent."""
    from sprunner.commands import render as command

    selection = _selection(paths, select, shard=shard, max_requests=max_requests)
    _handle(lambda: command.run(selection, options=_globals(ctx), as_json=as_json))


@cli.command()
@_paths
@_select
@_shard
@_max_requests
@_json
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 10 when changes are pending, 0 when there are none.",
)
@click.option("--local", is_flag=True, help="Plan against a fresh in-process emulator.")
@_verbosity
@click.pass_context
def plan(
    ctx: click.Context,
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    shard: Shard | None,
    max_requests: int,
    as_json: bool,
    detailed_exitcode: bool,
    local: bool,
) -> None:
    """Read-only: what apply would create, update, delete or leave alone."""
    from sprunner.commands import plan as command

    selection = _selection(paths, select, shard=shard, max_requests=max_requests)
    _handle(
        lambda: command.run(
            selection,
            options=_globals(ctx),
            as_json=as_json,
            detailed_exitcode=detailed_exitcode,
            local=local,
        )
    )


@cli.command()
@_paths
@_select
@_shard
@_max_requests
@_json
@click.option("--report", type=click.Path(path_type=Path, dir_okay=False), help="JSON report.")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), help="JUnit XML report.")
@click.option("--no-run", is_flag=True, help="Reconcile only; start no run.")
@click.option("--prune", is_flag=True, help="Delete collections sprunner created and no file has.")
@click.option("--local", is_flag=True, help="Apply against an in-process emulator; no key needed.")
@click.option(
    "--max-credits",
    type=click.IntRange(min=0),
    help="Refuse to start runs whose summed cost would pass N credits.",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1, max=256),
    default=DEFAULT_PARALLEL,
    show_default=True,
    help="Concurrent API calls at most.",
)
@click.option(
    "--max-rps",
    type=click.FloatRange(min=0.1),
    help="A fixed ceiling on API requests per second (the limiter also adapts to 429s).",
)
@_verbosity
@click.pass_context
def apply(
    ctx: click.Context,
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    shard: Shard | None,
    max_requests: int,
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

    selection = _selection(paths, select, shard=shard, max_requests=max_requests)
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
    _handle(lambda: command.run(selection, options=_globals(ctx), apply_options=apply_options))


@cli.command()
@click.option("--report", "which", flag_value="report", help="Print the report schema instead.")
@click.option("--jobfile", "which", flag_value="jobfile", default=True, hidden=True)
@click.option("--markdown", is_flag=True, help="The job-file reference as Markdown tables.")
def schema(which: str, markdown: bool) -> None:
    """Print the job-file JSON Schema (or the report schema with --report)."""
    from sprunner.commands import schema as command

    _handle(lambda: command.run(which=which, markdown=markdown))


# --- emulator: options owned by sprunner/commands/emulator.py -------------------------------
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8080, show_default=True)
@click.option(
    "--api-key",
    envvar="SPRUNNER_EMULATOR_API_KEY",
    default=None,
    help="The bearer key the emulator accepts (default on loopback: emulator-key). "
    "Required off loopback.",
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
@click.option(
    "--result-retention",
    type=click.FloatRange(min=0),
    default=86400.0,
    show_default=True,
    help="Seconds a job's result is kept after the job finishes (then: result_expired).",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="fetch: also fetch loopback, private, link-local and metadata addresses.",
)
def emulator(
    host: str,
    port: int,
    api_key: str | None,
    mode: str,
    faults: tuple[str, ...],
    seed: int,
    run_seconds: float,
    fetch_timeout: float,
    fetch_concurrency: int,
    result_retention: float,
    allow_private: bool,
) -> None:
    """Serve a local stand-in of the ScrapingPros API, for demos and tests.

    \b
    simulate mode: outcomes follow words in each URL
      flaky / flakyN   first N attempts (default 1) fail, later ones succeed;
                       attempts count per (url, custom_id) across all runs
      timeout          times out        fail     fails (HTTP 500)
      blocked          fails (HTTP 403, block_reason captcha)
      result-lost      succeeds, but its result answers result_lost
      size=N (query)   the result body is N bytes of JSON (inline cap: 262144)
    Jobs finish in pairs with the same completed_at millisecond.
    fetch mode refuses loopback/private/link-local/metadata targets unless --allow-private.
    """
    from sprunner.commands import emulator as command

    _handle(
        lambda: command.run(
            host=host,
            port=port,
            api_key=api_key,
            mode=mode,
            faults=faults,
            seed=seed,
            run_seconds=run_seconds,
            fetch_timeout=fetch_timeout,
            fetch_concurrency=fetch_concurrency,
            result_retention=result_retention,
            allow_private=allow_private,
        )
    )


@cli.command()
@_paths
@_select
@_shard
@_max_requests
@_json
@click.option(
    "--runs",
    type=click.IntRange(min=0, max=100),
    default=10,
    show_default=True,
    help="How many of each collection's last runs to show.",
)
@_verbosity
@click.pass_context
def status(
    ctx: click.Context,
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    shard: Shard | None,
    max_requests: int,
    as_json: bool,
    runs: int,
) -> None:
    """Read-only: each collection's last runs, run in flight, next run and pending change."""
    from sprunner.commands import status as command

    selection = _selection(paths, select, shard=shard, max_requests=max_requests)
    _handle(lambda: command.run(selection, options=_globals(ctx), as_json=as_json, runs=runs))


# --- state: export / import, owned by sprunner/commands/state.py ----------------------------
@cli.group(name="state")
def state_group() -> None:
    """Move the state between a directory and a database (JSON, no secret)."""


@state_group.command(name="export")
@click.option(
    "--to", type=click.Path(path_type=Path, dir_okay=False), help="Write here, not stdout."
)
@click.pass_context
def state_export(ctx: click.Context, to: Path | None) -> None:
    """Print the state (every API URL) as JSON."""
    from sprunner.commands import state as command

    _handle(lambda: command.export(options=_globals(ctx), to=to))


@state_group.command(name="import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.pass_context
def state_import(ctx: click.Context, source: Path) -> None:
    """Merge an exported state into this one (imported collections win)."""
    from sprunner.commands import state as command

    _handle(lambda: command.import_(options=_globals(ctx), source=source))


def main() -> None:
    cli(prog_name="sprunner")
