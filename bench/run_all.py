"""Run every benchmark of issue #6 and print one table of figures against their targets.

    python -m bench.run_all [--quick]

Each figure is measured once, in this run; "ratio" is value ÷ target (≤ 1 is within target).
Figure 3 prints sprunner's wall time and API calls as ratios to each alternative's, with
the job files' `poll_interval` at 1 s (the pace estimate at work: two polls a run) and at
3 s (the runs' length: one poll a run). `--quick` runs 40 collections and a smaller
validate, for a smoke test of the benchmarks themselves; its numbers are not the targets'.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import (
    bench_alternatives,
    bench_apply,
    bench_shared_limit,
    bench_startup,
    bench_terminal,
    bench_validate,
)
from bench.common import COLLECTIONS, Figure, print_figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sample", type=int, default=3, help="doc-loop collections timed")
    args = parser.parse_args()
    collections = 40 if args.quick else COLLECTIONS
    began = time.perf_counter()
    figures: list[Figure] = []

    def step(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {text}", file=sys.stderr, flush=True)

    step("1, 4: first apply (poll_interval 1s), then an unchanged apply --no-run")
    fast = bench_apply.run_first_apply(collections, limited=False, then_unchanged=True)
    figures += bench_apply.unlimited_figures(fast, collections)
    step("1': first apply with poll_interval 3s")
    fast3 = bench_apply.run_first_apply(collections, limited=False, poll="3s")
    figures += bench_apply.unlimited_figures(fast3, collections, bench="1' poll 3s")
    step("2: first apply under rate-limit:25")
    slow = bench_apply.run_first_apply(collections, limited=True)
    figures += bench_apply.limited_figures(slow, collections)

    step("3a: the documentation's loop (sampled)")
    doc = bench_alternatives.doc_loop(args.sample, collections)
    step("3b: the SDK script, no limit")
    sdk = bench_alternatives.sdk(collections, limited=False)
    step("3b: the SDK script, rate-limit:25")
    sdk_limited = bench_alternatives.sdk(collections, limited=True)
    for other in (doc, sdk):
        figures += bench_alternatives.compare(
            "sprunner", fast.seconds, fast.calls, other, collections
        )
        if other.error is None:
            figures += bench_alternatives.compare(
                "sprunner (3s)", fast3.seconds, fast3.calls, other, collections
            )[2:]
    figures += bench_alternatives.compare("sprunner 25/s", slow.seconds, slow.calls, sdk_limited)

    step("7: four processes under one shared rate-limit:25")
    figures += bench_shared_limit.run_shared(collections)

    step("5: validate")
    figures += bench_validate.measure(20, 5_000 if args.quick else 50_000)
    step("6: start-up")
    figures += bench_startup.measure()
    step("7: apply on a pty against no pty")
    if args.quick:
        figures += bench_terminal.measure(40, bench_terminal.REQUESTS, rounds=1)
    else:
        figures += bench_terminal.measure(
            bench_terminal.COLLECTIONS, bench_terminal.REQUESTS, rounds=1
        )
    step("done")
    print_figures(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
