"""The options the job-file commands share, and the exit-code table of `--help`.

Click-layer only: option objects and callbacks that turn option values into the frozen
settings of `sprunner.settings`. No logic beyond parsing.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sprunner.cli.complete import complete_selection
from sprunner.jobfile.model import DEFAULT_MAX_REQUESTS
from sprunner.settings import DEFAULT_JOBFILES, GlobalOptions, Selection, Shard

Decorator = Callable[[Callable[..., None]], Callable[..., None]]


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


_paths = click.argument(
    "paths", nargs=-1, type=click.Path(path_type=Path, exists=True, dir_okay=True)
)
_select = click.option(
    "--select",
    "-s",
    multiple=True,
    metavar="SEL",
    shell_complete=complete_selection,
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
    default=DEFAULT_MAX_REQUESTS,
    show_default=True,
    help="Cap on the requests of one collection after expansion.",
)
_json = click.option("--json", "as_json", is_flag=True, help="Plain, stable JSON on stdout.")


def _regular_target(_ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A file sprunner writes (`--report`, `--junit`, `--metrics`) is a regular file or
    nothing yet: a FIFO, a device or a socket would hang or eat the write while the apply
    holds the lock, so it is refused before anything happens (exit 2)."""
    import stat

    if value is None:
        return None
    try:
        mode = value.stat().st_mode
    except FileNotFoundError:
        return value
    except OSError as e:
        raise click.BadParameter(f"cannot use {value}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise click.BadParameter(f"{value} is not a regular file (sprunner replaces it)")
    return value


def _ping_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from sprunner.errors import UsageError
    from sprunner.report.ping import check_url

    if value is None:
        return None
    try:
        return check_url(value)
    except UsageError as e:
        raise click.BadParameter(str(e)) from None


def written_file(*names: str, help: str) -> Decorator:
    """An option naming a file sprunner writes (replaced atomically; a regular file)."""
    return click.option(
        *names,
        type=click.Path(path_type=Path, dir_okay=False),
        callback=_regular_target,
        help=help,
    )


metrics_option = written_file(
    "--metrics", help="Write Prometheus text here for node_exporter's textfile collector."
)
ping_option = click.option(
    "--ping",
    metavar="URL",
    callback=_ping_url,
    help="healthchecks.io-style pings: URL/start, then URL (exit 0) or URL/<exit code>, "
    "with rid=<apply id> and the summary as the last one's body.",
)


def job_options(*extra: Decorator) -> Decorator:
    """The options every job-file command shares (paths, --select, --shard, --max-requests,
    --json, then `extra`, then -v/-q), with the first four folded into one `selection`."""

    def bundle(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def with_selection(
            *args: Any,
            paths: tuple[Path, ...],
            select: tuple[str, ...],
            shard: Shard | None,
            max_requests: int,
            **kw: Any,
        ) -> None:
            selection = Selection(
                paths=paths or (DEFAULT_JOBFILES,),
                select=select,
                shard=shard,
                max_requests=max_requests,
            )
            command(*args, selection=selection, **kw)

        decorated: Callable[..., None] = _verbosity(with_selection)
        shared: tuple[Decorator, ...] = (_paths, _select, _shard, _max_requests, _json)
        for option in reversed((*shared, *extra)):
            decorated = option(decorated)
        return decorated

    return bundle


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: int | bool) -> None:
    """-v / -q given after the command name (`sprunner apply -q`), as well as before it."""
    if not value:
        return
    options: GlobalOptions = ctx.obj
    quiet = param.name == "quiet"
    verbosity = -1 if quiet else max(options.verbosity, 0) + int(value)
    ctx.obj = dataclasses.replace(options, verbosity=verbosity)


def _set_global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """A global option given after the command name (`sprunner apply --state-dir X`): it
    wins over the same option before the name, as the last word on a command line does."""
    if value is None or param.name is None:
        return
    if param.name == "api_url":
        value = str(value).rstrip("/")
    ctx.obj = dataclasses.replace(ctx.obj, **{param.name: value})


def global_options(command: Callable[..., None]) -> Callable[..., None]:
    """The group's options, accepted after the command name too (SPEC §3). No defaults and
    no environment variables here: the group's already applied them."""
    from sprunner.output.logfmt import LOG_FORMATS

    after: tuple[Decorator, ...] = (
        click.option("--api-url", metavar="URL", help="Base URL of the API."),
        click.option(
            "--api-key-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Read the API key from this file.",
        ),
        click.option(
            "--state-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Where sprunner keeps its state.",
        ),
        click.option("--state-url", metavar="URL", help="postgresql://... : a shared state."),
        click.option("--log-format", type=click.Choice(LOG_FORMATS), help="text, or JSON lines."),
    )
    for option in reversed(after):
        command = option(command)
    for param in getattr(command, "__click_params__", [])[-len(after) :]:
        param.expose_value = False
        param.callback = _set_global
    return command


def common_options(command: Callable[..., None]) -> Callable[..., None]:
    """-v / -q and the global options, accepted after the command name too."""
    return _verbosity(command)


def _verbosity(command: Callable[..., None]) -> Callable[..., None]:
    command = global_options(command)
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


EXIT_CODES = """\b
Exit codes:
  0    everything applied; every selected collection is healthy
  1    a collection is not healthy: its latest run failed (this apply's or,
       when skipped, the one before), an API error, or stale (run.max_age)
  2    invalid job files, usage, a key file or state directory that
       cannot be used; nothing was sent
  3    the API could not be used (unreachable, bad key, quota spent)
  4    another apply holds the lock; nothing was read, sent, pinged or written
  10   plan --detailed-exitcode: changes are pending (Terraform: 2)
  130  interrupted (SIGINT), 143 terminated (SIGTERM); state saved
  70   a bug in sprunner: stderr names a crash log in the state directory
"""
