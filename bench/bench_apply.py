"""Benchmarks 1, 2 and 4 of issue #6: a first apply, the same under a rate limit, a no-op.

1. 200 collections × 50 requests, runs lasting 3 s, no rate limit: wall time of a first
   apply (target ≤ 2 × run time + 4 s) and API calls per collection (target ≤ 6; the
   floor is 3: create, run, one poll).
2. The same under a 25 request/s token bucket: share of calls answered 429 (≤ 5 %) and
   wall time against calls ÷ 25 (≤ 1.3 ×).
4. An unchanged second apply with `--no-run`: API calls (target 1) and wall time.

    python -m bench.bench_apply [--collections 200] [--skip-limited]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    COLLECTIONS,
    POLL_INTERVAL,
    RATE_LIMIT,
    RUN_SECONDS,
    Figure,
    print_figures,
    run_sprunner,
    total_calls,
    write_jobfiles,
)


@dataclass(frozen=True)
class FirstApply:
    seconds: float
    calls: int
    by_route: Counter[str]
    rate_limited: int  # calls answered 429 by the emulator's token bucket
    second_seconds: float | None = None  # the unchanged `--no-run` apply that followed
    second_by_route: Counter[str] | None = None


def _report_ok(path: Path, collections: int) -> bool:
    report = json.loads(path.read_text())
    runs = [c["run"] for c in report["collections"] if c.get("run")]
    return (
        bool(report["ok"])
        and len(runs) == collections
        and all(r["status"] == "completed" for r in runs)
    )


def run_first_apply(
    collections: int = COLLECTIONS,
    *,
    limited: bool,
    then_unchanged: bool = False,
    poll: str = POLL_INTERVAL,
) -> FirstApply:
    """A first apply of the workload (every collection created and run), in one emulator."""
    from sprunner.emulator.server import running_emulator

    faults = [f"rate-limit:{RATE_LIMIT:g}"] if limited else []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_emulator(mode="simulate", run_seconds=RUN_SECONDS, faults=faults) as emu,
    ):
        folder = write_jobfiles(Path(tmp) / "jobs", collections=collections, poll=poll)
        state, report = Path(tmp) / "state", Path(tmp) / "report.json"
        args = ("apply", str(folder), "--report", str(report))
        first = run_sprunner(emu.url, emu.api_key, state, *args)
        if first.returncode != 0 or not _report_ok(report, collections):
            raise SystemExit(f"first apply failed ({first.returncode}):\n{first.stderr[-3000:]}")
        by_route = Counter(emu.engine.calls)
        rate_limited = sum(f.fired for f in emu.faults.active if f.kind == "rate-limit")
        if not then_unchanged:
            return FirstApply(first.seconds, total_calls(by_route), by_route, rate_limited)
        second = run_sprunner(emu.url, emu.api_key, state, "apply", str(folder), "--no-run")
        if second.returncode != 0:
            raise SystemExit(f"second apply failed ({second.returncode}):\n{second.stderr}")
        second_by_route = Counter(emu.engine.calls) - by_route
    return FirstApply(
        first.seconds,
        total_calls(by_route),
        by_route,
        rate_limited,
        second.seconds,
        second_by_route,
    )


def _routes(counter: Counter[str]) -> str:
    return ", ".join(f"{route} {count}" for route, count in sorted(counter.items()))


def unlimited_figures(
    done: FirstApply, collections: int = COLLECTIONS, *, bench: str = "1 first apply"
) -> list[Figure]:
    """Figures 1 and 4."""
    figures = [
        Figure(bench, "wall time", done.seconds, "s", 2 * RUN_SECONDS + 4),
        Figure(
            bench,
            "API calls per collection",
            done.calls / collections,
            "",
            6.0,
            _routes(done.by_route),
        ),
    ]
    if done.second_by_route is not None and done.second_seconds is not None:
        figures += [
            Figure(
                "4 unchanged",
                "API calls (apply --no-run)",
                total_calls(done.second_by_route),
                "",
                1.0,
                _routes(done.second_by_route),
            ),
            Figure("4 unchanged", "wall time (apply --no-run)", done.second_seconds, "s"),
        ]
    return figures


def limited_figures(done: FirstApply, collections: int = COLLECTIONS) -> list[Figure]:
    """Figure 2."""
    floor = done.calls / RATE_LIMIT
    return [
        Figure(
            "2 limit 25/s",
            "share of calls answered 429",
            100.0 * done.rate_limited / done.calls,
            "%",
            5.0,
            f"{done.rate_limited} of {done.calls}",
        ),
        Figure(
            "2 limit 25/s",
            "wall time ÷ (calls ÷ 25/s)",
            done.seconds / floor,
            "×",
            1.3,
            f"{done.seconds:.1f} s for {done.calls} calls, "
            f"{done.calls / collections:.2f} per collection",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=COLLECTIONS)
    parser.add_argument("--skip-limited", action="store_true")
    args = parser.parse_args()
    first = run_first_apply(args.collections, limited=False, then_unchanged=True)
    figures = unlimited_figures(first, args.collections)
    if not args.skip_limited:
        limited = run_first_apply(args.collections, limited=True)
        figures += limited_figures(limited, args.collections)
    print_figures(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
