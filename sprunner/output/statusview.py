"""How `sprunner status` shows what it gathered (`sprunner.report.health`): a plain table with
each collection's health, then its last runs; the success sparkline on a terminal; the
`--json` document. Pure functions of the frozen `CollectionStatus` values (and `now`),
so every output is testable without a network or a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from sprunner.report.health import CollectionStatus, RunSummary, iso
from sprunner.runs.verdict import document

SPARKS = "▁▂▃▄▅▆▇█"
NO_DATA = "·"


def sparkline(ratios: Sequence[float | None]) -> str:
    """One block per ratio (0.0 lowest, 1.0 highest, oldest first); `·` where there is none."""
    out = []
    for ratio in ratios:
        if ratio is None:
            out.append(NO_DATA)
        else:
            clamped = min(1.0, max(0.0, ratio))
            out.append(SPARKS[round(clamped * (len(SPARKS) - 1))])
    return "".join(out)


def trend(status: CollectionStatus) -> str:
    """The sparkline of a collection's last completed runs, oldest on the left."""
    return sparkline([r.success_ratio for r in reversed(status.runs) if r.status == "completed"])


def _run_cell(run: RunSummary | None) -> str:
    if run is None:
        return "no run yet"
    when = iso(run.created_at) or "time unknown"
    if run.status == "in_progress":
        return f"{when} in progress {run.success + run.failed + run.timeout}/{run.total}"
    retried = f" after {_retries(run.retries)}" if run.retries else ""
    return f"{when} {run.success}/{run.total} ok{retried}"


def health_word(status: CollectionStatus) -> str:
    """`ok`, `FAILED`, `stale` (or both), or `-` when no run was judged yet."""
    h = status.health
    if h.ok:
        return "ok" if status.verdict is not None else "-"
    failed = status.verdict is not None and not status.verdict.ok
    return ", ".join(w for w, on in (("FAILED", failed), ("stale", h.stale)) if on)


def _change_cell(status: CollectionStatus) -> str:
    if status.remote_id is None:
        return "create"
    return {True: "yes", False: "no", None: "unknown"}[status.pending_change]


def _rows(statuses: Sequence[CollectionStatus], *, with_trend: bool) -> list[list[str]]:
    header = [
        "COLLECTION",
        "ID",
        "HEALTH",
        "LAST RUN",
        "CREDITS",
        "IN FLIGHT",
        "NEXT RUN",
        "CHANGE",
    ]
    rows = [header + (["TREND"] if with_trend else [])]
    for s in statuses:
        last = s.last_run
        row = [
            s.name,
            s.remote_id or "-",
            health_word(s),
            f"error: {s.error}" if s.error else _run_cell(last),
            str(last.credits) if last else "-",
            s.in_flight.run_id if s.in_flight else "-",
            s.due.note or "-",
            _change_cell(s),
        ]
        rows.append(row + ([trend(s)] if with_trend else []))
    return rows


def render_text(
    statuses: Sequence[CollectionStatus], *, with_trend: bool = False, detail: bool = True
) -> str:
    """A plain table, then (with `detail`) each collection's last runs, one line each."""
    rows = _rows(statuses, with_trend=with_trend)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines + (_details(statuses) if detail else []))


# rich's style per health word: red for a failed last run, yellow for stale.
_HEALTH_STYLES = {"ok": "green", "FAILED": "bold red", "stale": "yellow"}


def render_table(statuses: Sequence[CollectionStatus], *, color: bool, detail: bool = True) -> str:
    """On a terminal: the same table laid out by rich, health in colour (`color`), with the
    success trend, then the details. Never narrower than its cells (like the plain one), so
    no cell is cut; rich is imported here only, as the terminal needs it."""
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    header, *rows = _rows(statuses, with_trend=True)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for title in header:
        table.add_column(title, no_wrap=True)
    for row in rows:
        health = row[2]
        style = next((v for k, v in _HEALTH_STYLES.items() if health.startswith(k)), "")
        table.add_row(*row[:2], Text(health, style=style), *row[3:])
    console = Console(
        file=io.StringIO(),
        width=10_000,  # the natural width: cells are never shrunk or cut
        color_system="standard" if color else None,
        force_terminal=color,
        highlight=False,
        emoji=False,
    )
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines + (_details(statuses) if detail else []))


def _details(statuses: Sequence[CollectionStatus]) -> list[str]:
    """Each collection's last runs, one line each, and why it is not healthy."""
    lines: list[str] = []
    for s in statuses:
        if not s.runs and s.health.ok:
            continue
        lines.extend(["", f"{s.name}: last {_plural(len(s.runs), 'run')}"])
        for r in s.runs:
            lines.append(
                f"  {iso(r.created_at) or '-':20} {r.status:11} {r.success:>6} ok "
                f"{r.failed:>5} failed {r.timeout:>5} timeout {r.credits:>7} credits  "
                f"{r.run_id}" + (f" (after {_retries(r.retries)})" if r.retries else "")
            )
        if not s.health.ok:
            lines.append(f"  not healthy: {s.health.reason}")
    return lines


def _run_json(run: RunSummary) -> dict[str, object]:
    return {
        "run_id": run.run_id,
        "status": run.status,
        "created_at": iso(run.created_at),
        "total_requests": run.total,
        "success_requests": run.success,
        "failed_requests": run.failed,
        "timeout_requests": run.timeout,
        "credits": run.credits,
        "retries": run.retries,
        "success_ratio": run.success_ratio,
    }


def to_json(statuses: Sequence[CollectionStatus], *, now: float) -> dict[str, object]:
    """The `--json` document: stable keys, times as ISO-8601 UTC strings."""
    return {
        "version": 1,
        "generated_at": iso(now),
        "collections": [
            {
                "name": s.name,
                "file": s.file,
                "remote_id": s.remote_id,
                "error": s.error,
                "pending_change": s.pending_change,
                "health": {
                    "ok": s.health.ok,
                    "reason": s.health.reason,
                    "stale": s.health.stale,
                    "verdict": None if s.verdict is None else document(s.verdict),
                },
                "next_run": {"at": iso(s.due.at), "reason": s.due.note},
                "in_flight": _run_json(s.in_flight) if s.in_flight else None,
                "runs": [_run_json(r) for r in s.runs],
            }
            for s in statuses
        ],
    }


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{count} {word}s"


def _retries(count: int) -> str:
    return f"{count} retr{'y' if count == 1 else 'ies'}"
