"""Terminal output. Only this module and `cli.py` know whether stdout is a terminal.

Logs and problems go to stderr, results to stdout. Every line passes through the active
redactor so that `env()` values and the API key never reach a terminal or a log file.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from sprunner.outcome import ApplyOutcome
    from sprunner.reconcile.plan import Plan


@dataclass
class _Config:
    verbosity: int = 0
    color: bool = True
    secrets: set[str] = field(default_factory=set)


_config = _Config()


def configure(*, verbosity: int, color: bool) -> None:
    _config.verbosity = verbosity
    _config.color = color


# Masking is by substring, a safety net behind the exact masking of `render` and `plan`
# (which show every env() value as ***). A value shorter than this would garble ordinary
# words ("ok", "us", "prod") wherever it occurs, and is too short to be a credential.
MIN_SECRET_LENGTH = 6


def add_secrets(values: Iterable[str]) -> None:
    """Register values that must never be printed (env() values, the API key)."""
    _config.secrets.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)


def redact(text: str) -> str:
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(_config.secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def use_color(stream: TextIO | None = None) -> bool:
    return _config.color and is_terminal(stream)


def _styled(text: str, style: str) -> str:
    if not use_color(sys.stderr):
        return text
    import click

    colors = {"error": "red", "warning": "yellow", "info": "cyan"}
    return click.style(text, fg=colors.get(style), bold=style == "error")


def out(text: str) -> None:
    """A result line on stdout."""
    sys.stdout.write(redact(text) + "\n")


def error(text: str) -> None:
    sys.stderr.write(_styled("error: ", "error") + redact(text) + "\n")


def warn(text: str) -> None:
    sys.stderr.write(_styled("warning: ", "warning") + redact(text) + "\n")


def info(text: str) -> None:
    """Progress and decisions; silenced by -q."""
    if _config.verbosity >= 0:
        sys.stderr.write(redact(text) + "\n")


def debug(text: str) -> None:
    if _config.verbosity >= 1:
        sys.stderr.write(redact(text) + "\n")


# -- apply: live progress ----------------------------------------------------------------------
@contextlib.contextmanager
def progress(rows: Sequence[Any]) -> Iterator[None]:
    """A live table of the runs on a terminal; nothing otherwise (log lines say it all).

    `rows` are the runner's mutable rows (name, action, run, run_state); the display reads
    them four times a second and never changes them.
    """
    if _config.verbosity < 0 or not is_terminal(sys.stderr) or not rows:
        yield
        return
    from rich.console import Console
    from rich.live import Live

    console = Console(file=sys.stderr, no_color=not _config.color)
    with Live(
        _progress_table(rows),
        console=console,
        refresh_per_second=4,
        transient=True,
        redirect_stderr=True,
        redirect_stdout=False,
        get_renderable=lambda: _progress_table(rows),
    ):
        yield


def _progress_table(rows: Sequence[Any]) -> Any:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_footer=True)
    table.add_column("collection", footer="total")
    table.add_column("action")
    table.add_column("run")
    done = total = bad = 0
    table.add_column("done", justify="right")
    table.add_column("failed", justify="right")
    for row in rows:
        run = row.run
        row_done = row_bad = row_total = 0
        if run is not None:
            row_bad = run.failed_requests + run.timeout_requests
            row_done = run.success_requests + row_bad
            row_total = run.total_requests
        done, total, bad = done + row_done, total + row_total, bad + row_bad
        table.add_row(
            redact(row.name),
            row.action or "…",
            row.run_state or "",
            f"{row_done}/{row_total}" if run is not None else "",
            str(row_bad) if run is not None else "",
        )
    table.columns[3].footer = f"{done}/{total}"
    table.columns[4].footer = str(bad)
    return table


# -- apply: the summary ------------------------------------------------------------------------
def summary(outcome: ApplyOutcome) -> None:
    """terraform-style closing lines on stdout; with -q only the problems."""
    from sprunner.report import summary as counts

    for c in outcome.collections:
        if c.ok:
            continue
        run = c.run
        reason = c.error or (run.reason if run is not None else None) or "failed"
        if run is not None and run.status == "completed" and not run.within_max_failed:
            bad = run.failed_requests + run.timeout_requests
            reason = f"{bad} of {run.total_requests} jobs failed or timed out"
        out(f"FAILED {c.name}: {reason}")
        if run is not None:
            for job in run.failed_jobs[:10]:
                out(f"  {job.status}: {job.url}: {job.error}")
            if len(run.failed_jobs) > 10:
                out(f"  … and {len(run.failed_jobs) - 10} more (see --report)")
    if _config.verbosity < 0:
        return
    s = counts(outcome)
    head = "Apply interrupted" if outcome.interrupted else "Apply complete"
    out(
        f"{head}: {s['created']} created, {s['updated']} updated, {s['unchanged']} unchanged, "
        f"{s['deleted']} deleted, {s['errors']} errors."
    )
    if s["runs"]:
        out(
            f"Runs: {s['runs']}, {s['total_requests']} requests: {s['success_requests']} ok, "
            f"{s['failed_requests']} failed, {s['timeout_requests']} timed out; "
            f"{s['credits']} credits."
        )


# -- plan ------------------------------------------------------------------------------------
_SIGNS = {"create": "+", "update": "~", "delete": "-", "error": "!", "unchanged": " ", "skip": "?"}


def plan_table(plan: Plan) -> None:
    for item in plan.items:
        if item.action == "delete" and not plan.prune:
            detail = "delete with --prune: " + item.reason
        elif item.action in ("create", "update"):
            diff = "" if item.diff is None or item.action == "create" else f" ({item.diff})"
            detail = f"{item.requests} requests{diff}, {item.credits} credits a run"
            if item.reason:
                detail += f"; {item.reason}"
        else:
            detail = item.reason
        out(f"  {_SIGNS[item.action]} {item.name:<30} {item.action:<9} {detail}".rstrip())
    for ref in plan.unmanaged:
        out(f"    {ref.name:<30} unmanaged  {ref.id} (never touched)")
    deletes = len(plan.of("delete")) if plan.prune else 0
    out(
        f"Plan: {len(plan.of('create'))} to create, {len(plan.of('update'))} to update, "
        f"{deletes} to delete, {len(plan.of('unchanged'))} unchanged, "
        f"{len(plan.of('error'))} in error. One run of each costs {plan.credits} credits."
    )
    if not plan.prune and plan.of("delete"):
        out(
            f"{len(plan.of('delete'))} created by sprunner and no longer declared: --prune deletes."
        )
    if not plan.has_changes:
        out("No changes: the remote collections match the job files.")
