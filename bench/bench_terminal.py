"""Benchmark 7 of issue #13: an apply on a pseudo-terminal against the same apply without one.

300 collections × 20 requests (issue #13's workload), runs lasting 3 s, `poll_interval`
1 s, the emulator in simulate mode in a thread of this process. Each round applies the
same job files twice from scratch (a fresh emulator and state each time): once with
stdout and stderr on pipes (no terminal: plain stamped lines) and once on a pty of
120 × 40 (the live display). The ratio pty ÷ no-pty of the wall times is the figure
(target ≤ 1.2); with `--rounds N` the best time of each side is taken, interleaved so
that machine noise hits both alike.

    python -m bench.bench_terminal [--rounds 2] [--collections 300] [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Figure, print_figures, write_jobfiles
from bench.terminal import run_in_pty

COLLECTIONS = 300
REQUESTS = 20
RUN_SECONDS = 3.0
TARGET = 1.2


def _apply(jobs: Path, *, terminal: bool) -> float:
    from sprunner.emulator.server import running_emulator

    with (
        tempfile.TemporaryDirectory(prefix="bench-term-") as state,
        running_emulator(mode="simulate", run_seconds=RUN_SECONDS) as emulator,
    ):
        env = {**os.environ, "SCRAPINGPROS_API_KEY": emulator.api_key, "NO_COLOR": "1"}
        argv = [
            sys.executable,
            "-m",
            "sprunner",
            "--api-url",
            emulator.url,
            "--state-dir",
            state,
            "apply",
            str(jobs),
        ]
        if terminal:
            done = run_in_pty(argv, env=env, timeout=600)
            if done.returncode != 0:
                raise SystemExit(
                    f"apply on a pty failed ({done.returncode}): {done.output[-2000:]}"
                )
            return done.seconds
        start = time.perf_counter()
        plain = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        seconds = time.perf_counter() - start
        if plain.returncode != 0:
            raise SystemExit(f"apply failed ({plain.returncode}): {plain.stderr[-2000:]}")
        return seconds


def measure(collections: int, requests: int, rounds: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-term-jobs-") as folder:
        jobs = write_jobfiles(Path(folder), collections=collections, requests=requests)
        plain: list[float] = []
        pty: list[float] = []
        for _ in range(rounds):
            plain.append(_apply(jobs, terminal=False))
            pty.append(_apply(jobs, terminal=True))
    best_plain, best_pty = min(plain), min(pty)
    workload = f"{collections} × {requests}, runs {RUN_SECONDS:g} s"
    pairs = ", ".join(f"{p:.2f}/{q:.2f}" for p, q in zip(pty, plain, strict=True))
    return [
        Figure(
            "7 terminal", "apply without a terminal, wall time", best_plain, "s", None, workload
        ),
        Figure("7 terminal", "apply on a pty (live display), wall time", best_pty, "s"),
        Figure(
            "7 terminal",
            "pty ÷ no pty",
            best_pty / best_plain,
            "×",
            TARGET,
            f"best of {rounds} (pty/no pty): {pairs}",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=COLLECTIONS)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    figures = measure(args.collections, args.requests, args.rounds)
    print_figures(figures)
    ratio = figures[-1].ratio
    return 0 if ratio is not None and ratio <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
