"""Benchmarks of issues #17 and #28: a first apply at 200, 1,000 and 3,000 collections, all
measured in one run, against the emulator answering every call after a round trip.

The emulator's latency mode (`--latency`, see `sprunner/emulator/latency.py`) delays every
answer without blocking its event loop, so hundreds of calls can be in flight at once, as
against the real API: `fixed:0.044` (issue #17's regime), or `busy:0.003:0.044` (issue #28:
3 ms with one call in flight, rising to 44 ms at 64, as real servers do when busy).
Workload as in bench_apply: 50 requests a collection, runs of 3 s, `poll_interval: 1s`.
Targets: wall(1,000) <= 1.6 x wall(200), wall(3,000) <= 4 x wall(200), about 3 calls a
collection; with `--fixed-window`, also wall(200) within 1.2 x of the same apply with the
window fixed at `--parallel` (`bench/variants.py fixed-window`). Also printed: sprunner's CPU
seconds per API call (user + system of the sprunner process, from
`getrusage(RUSAGE_CHILDREN)`), and the load average before each apply (the machine is
shared: the figures are noisy).

    python -m bench.bench_scale [--sizes 200,1000,3000] [--latency fixed:0.044]
                                [--parallel 64] [--repeat 3] [--fixed-window]
                                [--variants production,pool-before]

`--variants`: each round runs every size with each of these `bench/variants.py` variants in
turn (interleaved before/after figures of one run); the figures of each are shown.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.bench_apply import _report_ok
from bench.common import RUN_SECONDS, Figure, print_figures, run_sprunner, write_jobfiles

LATENCY = "fixed:0.044"
PARALLEL = 64
# The machine is shared and its speed drifts by a fifth from minute to minute: each size is
# measured in REPEAT interleaved rounds and its median run shown.
REPEAT = 3


@dataclass(frozen=True)
class Scaled:
    collections: int
    seconds: float
    calls: int
    by_route: Counter[str]
    cpu_seconds: float  # of the sprunner process
    load: float  # 1-minute load average just before the apply


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def first_apply(
    collections: int, *, latency: str, parallel: int | None, variant: str = "production"
) -> Scaled:
    from sprunner.emulator.server import running_emulator

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_emulator(mode="simulate", run_seconds=RUN_SECONDS, latency=latency) as emu,
    ):
        folder = write_jobfiles(Path(tmp) / "jobs", collections=collections)
        state, report = Path(tmp) / "state", Path(tmp) / "report.json"
        args = ["apply", str(folder), "--report", str(report)]
        if parallel is not None:
            args += ["--parallel", str(parallel)]
        load = os.getloadavg()[0]
        cpu = _child_cpu()
        runner = ("-m", "bench.variants", variant)
        done = run_sprunner(emu.url, emu.api_key, state, *args, runner=runner)
        cpu = _child_cpu() - cpu
        if done.returncode != 0 or not _report_ok(report, collections):
            raise SystemExit(f"apply failed ({done.returncode}):\n{done.stderr[-3000:]}")
        by_route = Counter(emu.engine.calls)
    return Scaled(collections, done.seconds, sum(by_route.values()), by_route, cpu, load)


def figures(results: list[Scaled], *, latency: str, variant: str = "") -> list[Figure]:
    base = results[0]
    out: list[Figure] = []
    targets = {1000: 1.6, 3000: 4.0}
    for done in results:
        bench = f"17 n={done.collections}" + (f" {variant}" if variant else "")
        note = f"load {done.load:.2f}, latency {latency}"
        out.append(Figure(bench, "first apply, wall time", done.seconds, "s", note=note))
        per = done.calls / done.collections
        out.append(Figure(bench, "API calls per collection", per, "", target=6.0))
        cpu_ms = 1000 * done.cpu_seconds / max(1, done.calls)
        out.append(Figure(bench, "sprunner CPU per API call", cpu_ms, "ms"))
        if done is not base:
            ratio = done.seconds / base.seconds
            target = targets.get(done.collections)
            name = f"wall ÷ wall({base.collections})"
            out.append(Figure(bench, name, ratio, "x", target=target))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,1000,3000")
    parser.add_argument("--latency", default=LATENCY, help="an emulator --latency spec")
    parser.add_argument("--fixed-window", action="store_true", help="also the window pinned")
    parser.add_argument("--parallel", type=int, default=PARALLEL, help="0: sprunner's default")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="rounds; medians shown")
    parser.add_argument("--variants", default="production", help="bench/variants.py names")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    variants = args.variants.split(",")
    parallel = args.parallel or None
    rounds: dict[tuple[str, int], list[Scaled]] = {(v, n): [] for v in variants for n in sizes}
    pinned: list[Scaled] = []
    for _ in range(max(1, args.repeat)):  # interleaved: a slower minute hits every size
        for n in sizes:
            for variant in variants:
                done = first_apply(n, latency=args.latency, parallel=parallel, variant=variant)
                rounds[variant, n].append(done)
        if args.fixed_window:
            fixed = first_apply(
                sizes[0], latency=args.latency, parallel=parallel, variant="fixed-window"
            )
            pinned.append(fixed)
    out: list[Figure] = []
    for variant in variants:
        results = [median_run(rounds[variant, n]) for n in sizes]
        named = variant if len(variants) > 1 else ""
        out += figures(results, latency=args.latency, variant=named)
        if pinned and variant == variants[0]:
            base, fixed = results[0], median_run(pinned)
            name = f"wall ÷ wall with the window fixed at --parallel ({fixed.seconds:.2f} s)"
            ratio = base.seconds / fixed.seconds
            out.append(Figure(f"28 n={base.collections}", name, ratio, "x", 1.2))
    print_figures(out)
    for (variant, n), runs in rounds.items():
        done = median_run(runs)
        routes = ", ".join(f"{r} {c}" for r, c in sorted(done.by_route.items()))
        walls = ", ".join(f"{run.seconds:.2f} (load {run.load:.1f})" for run in runs)
        print(f"{variant} n={n}: {routes}; walls {walls} s (the median shown)")
    return 0


def median_run(runs: list[Scaled]) -> Scaled:
    """The run of median wall time (of an even number, the faster of the middle two)."""
    ordered = sorted(runs, key=lambda run: run.seconds)
    return ordered[(len(ordered) - 1) // 2]


if __name__ == "__main__":
    raise SystemExit(main())
