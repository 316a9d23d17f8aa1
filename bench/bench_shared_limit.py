"""Benchmark 7 (issue #16): N processes under one shared account rate limit.

N = 4 sprunner processes apply the workload at once (`--shard I/4`, each with its own state
directory, as four hosts would) against one emulator whose token bucket allows 25 requests
a second to all of them together (`--fault rate-limit:25`, the same bucket for every
caller, as an account limit is). No process knows about the others: each one's adaptive
limiter must find its share from the 429s and `X-RateLimit-*` headers it gets.

Targets: 429s under 5 % of all calls together, and a total wall time (first start to last
end) within 1.3 × total calls ÷ 25.

    python -m bench.bench_shared_limit [--collections 200] [--processes 4]
                                       [--variant production|no-learning]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    COLLECTIONS,
    RATE_LIMIT,
    RUN_SECONDS,
    Figure,
    print_figures,
    total_calls,
    write_jobfiles,
)

PROCESSES = 4
BENCH = "7 shared 25/s"


def run_shared(
    collections: int = COLLECTIONS, processes: int = PROCESSES, variant: str = "production"
) -> list[Figure]:
    from sprunner.emulator.server import running_emulator

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_emulator(
            mode="simulate", run_seconds=RUN_SECONDS, faults=[f"rate-limit:{RATE_LIMIT:g}"]
        ) as emu,
    ):
        folder = write_jobfiles(Path(tmp) / "jobs", collections=collections)
        env = {**os.environ, "SCRAPINGPROS_API_KEY": emu.api_key, "NO_COLOR": "1"}
        # Files, not pipes: nobody reads them until the end, and a full pipe blocks.
        logs = [(Path(tmp) / f"stderr-{i}").open("w") for i in range(1, processes + 1)]
        began = time.perf_counter()
        running = [
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "bench.variants", variant, "--api-url", emu.url),
                    *("--state-dir", str(Path(tmp) / f"state-{i}")),
                    *("apply", str(folder), "--shard", f"{i}/{processes}"),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=logs[i - 1],
            )
            for i in range(1, processes + 1)
        ]
        # Start-up (four interpreters at once) is part of the wall time; shown on its own too.
        first_call = None
        while any(p.poll() is None for p in running):
            if first_call is None and emu.engine.calls:
                first_call = time.perf_counter() - began
            time.sleep(0.02)
        seconds = time.perf_counter() - began
        for log in logs:
            log.close()
        failures = [
            f"exit {p.returncode}: {(Path(tmp) / f'stderr-{i}').read_text()[-2000:]}"
            for i, p in enumerate(running, start=1)
            if p.returncode != 0
        ]
        if failures:
            raise SystemExit("an apply failed:\n" + "\n".join(failures))
        calls = total_calls(dict(emu.engine.calls))
        rejected = sum(f.fired for f in emu.faults.active if f.kind == "rate-limit")
    floor = calls / RATE_LIMIT
    return [
        Figure(
            BENCH,
            f"{processes} processes: share answered 429",
            100.0 * rejected / calls,
            "%",
            5.0,
            f"{rejected} of {calls}",
        ),
        Figure(
            BENCH,
            f"{processes} processes: wall ÷ (calls ÷ 25/s)",
            seconds / floor,
            "×",
            1.3,
            f"{seconds:.1f} s for {calls} calls",
        ),
        Figure(BENCH, f"{processes} processes: start-up to first call", first_call or 0.0, "s"),
        Figure(
            BENCH,
            "from the first call: wall ÷ (calls ÷ 25/s)",
            (seconds - (first_call or 0.0)) / floor,
            "×",
            note=f"load {os.getloadavg()[0]:.1f} at the end",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=COLLECTIONS)
    parser.add_argument("--processes", type=int, default=PROCESSES)
    parser.add_argument("--variant", default="production", help="see bench/variants.py")
    args = parser.parse_args()
    print_figures(run_shared(args.collections, args.processes, args.variant))
    return 0


if __name__ == "__main__":
    sys.exit(main())
