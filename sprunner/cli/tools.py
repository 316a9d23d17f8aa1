"""The click commands that are not about job files: `emulator`, `state export|import`, `results`.

Kept apart from `cli.py` so that each file stays small; `cli.py` registers them. Like every
command, each only parses options and calls one function of `sprunner.commands`.
"""

from __future__ import annotations

from pathlib import Path

import click

from sprunner.cli.handle import globals_of, handle, output_for


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8080, show_default=True)
@click.option(
    "--api-key",
    envvar="SPRUNNER_EMULATOR_API_KEY",
    help="The bearer key the emulator accepts (on loopback, default: emulator-key; "
    "required off loopback).",
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
@click.option(
    "--latency",
    metavar="SPEC",
    help="How long answers take: 'fixed:0.15', 'heavy:0.15:1.0' (log-normal, median and "
    "p99), 'busy:0.003:0.044:64' (3 ms with one call in flight, rising to 44 ms at 64).",
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
@click.pass_context
def emulator(
    ctx: click.Context,
    host: str,
    port: int,
    api_key: str | None,
    mode: str,
    faults: tuple[str, ...],
    latency: str | None,
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

    output = output_for(ctx)
    handle(
        ctx,
        output,
        lambda: command.run(
            output=output,
            host=host,
            port=port,
            api_key=api_key,
            mode=mode,
            faults=faults,
            latency=latency,
            seed=seed,
            run_seconds=run_seconds,
            fetch_timeout=fetch_timeout,
            fetch_concurrency=fetch_concurrency,
            result_retention=result_retention,
            allow_private=allow_private,
        ),
    )


# --- state: export / import, owned by sprunner/commands/state.py ----------------------------
@click.group(name="state")
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

    output = output_for(ctx)
    handle(ctx, output, lambda: command.export(options=globals_of(ctx), output=output, to=to))


@state_group.command(name="import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.pass_context
def state_import(ctx: click.Context, source: Path) -> None:
    """Merge an exported state into this one (imported collections win)."""
    from sprunner.commands import state as command

    output = output_for(ctx)
    handle(
        ctx, output, lambda: command.import_(options=globals_of(ctx), output=output, source=source)
    )


# --- results: a past run's data, owned by sprunner/commands/results.py ------------------------
@click.command(name="results")
@click.argument("name")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--run", "run_id", metavar="RUN_ID", help="This run, not the newest completed one.")
@click.option("--to", metavar="DEST", help="A directory or fsspec URL (default: results.to).")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["jsonl.gz", "jsonl", "parquet"]),
    help="The file format (default: the results: block's, else jsonl.gz).",
)
@click.option("--json", "as_json", is_flag=True, help="Plain, stable JSON on stdout.")
@click.pass_context
def results(
    ctx: click.Context,
    name: str,
    paths: tuple[Path, ...],
    run_id: str | None,
    to: str | None,
    format_: str | None,
    as_json: bool,
) -> None:
    """Download the results of a past run of collection NAME (the newest by default).

    \b
    The destination is --to, else the results: block NAME declares in the job files
    (PATH..., default jobfiles/). Nothing is applied. Exit 1 when some results expired.
    """
    from sprunner.commands import results as command
    from sprunner.settings import Selection

    output = output_for(ctx, as_json=as_json)
    selection = Selection(paths=paths) if paths else None
    options = command.ResultsOptions(name, run_id=run_id, to=to, format=format_, as_json=as_json)
    handle(
        ctx,
        output,
        lambda: command.run(
            selection, options=globals_of(ctx), output=output, results_options=options
        ),
    )
