"""Issue #23 / #28: the HTTP transport and the pacing, where users live and on loopback.

One run measures, side by side, for httpx's own transport (httpcore, shipped) and for
httpx-aiohttp (measured, not shipped; `bench/variants.py`):

- **realistic**: 1,000 collections × 50 requests, every answer delayed 150 ms, the
  emulator's token bucket at 33 calls/s (the largest plan's 2,000 a minute), with its
  `X-RateLimit-*` headers. Target: wall ≤ 1.05 × calls ÷ 33.
- **heavy-tailed**: the same with answer times drawn log-normal, median 150 ms, p99 1 s
  (`--latency heavy:0.15:1.0`). Target: wall ≤ 1.05 × calls ÷ 33.
- **loopback**: today's scale regime (bench_scale): 1,000 collections, 44 ms a call, no
  rate limit, `--parallel 64`. No target: the transports' CPU shows here.

Runs are interleaved (one regime, both transports, then the next), so a slower minute of
the shared machine hits both; the load average is printed with each.

    python -m bench.bench_http [--collections 1000] [--regimes realistic,heavy,loopback]
                               [--transports httpcore,aiohttp]
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

LIMIT = 33.0
TARGET = 1.05


@dataclass(frozen=True)
class Regime:
    name: str
    latency: str
    limit: float | None
    parallel: int | None


REGIMES = {
    "realistic": Regime("realistic", "fixed:0.15", LIMIT, None),
    "heavy": Regime("heavy", "heavy:0.15:1.0", LIMIT, None),
    "loopback": Regime("loopback", "fixed:0.044", None, 64),
}
RUNNERS = {
    "httpcore": ("-m", "bench.variants", "production"),
    "aiohttp": ("-m", "bench.variants", "aiohttp"),
    # Not transports: sprunner on httpcore with one mechanism off (bench/variants.py).
    "no-priorities": ("-m", "bench.variants", "no-priorities"),
    "no-catch-up": ("-m", "bench.variants", "no-catch-up"),
}


@dataclass(frozen=True)
class Measured:
    regime: Regime
    transport: str
    seconds: float
    calls: int
    rejected: int
    cpu: float
    load: float
    calling: float  # seconds from the first call the emulator saw to the last


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(regime: Regime, transport: str, collections: int) -> Measured:
    from sprunner.emulator.server import running_emulator

    faults = [f"rate-limit:{regime.limit:g}"] if regime.limit else []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_emulator(
            mode="simulate", run_seconds=RUN_SECONDS, faults=faults, latency=regime.latency
        ) as emu,
    ):
        folder = write_jobfiles(Path(tmp) / "jobs", collections=collections)
        state, report = Path(tmp) / "state", Path(tmp) / "report.json"
        args = ["apply", str(folder), "--report", str(report)]
        if regime.parallel:
            args += ["--parallel", str(regime.parallel)]
        load, cpu = os.getloadavg()[0], _child_cpu()
        done = run_sprunner(emu.url, emu.api_key, state, *args, runner=RUNNERS[transport])
        cpu = _child_cpu() - cpu
        if done.returncode != 0 or not _report_ok(report, collections):
            raise SystemExit(f"apply failed ({done.returncode}):\n{done.stderr[-3000:]}")
        calls = sum(Counter(emu.engine.calls).values())
        rejected = sum(f.fired for f in emu.faults.active if f.kind == "rate-limit")
        calling = emu.engine.timeline[-1][0] - emu.engine.timeline[0][0]
    return Measured(regime, transport, done.seconds, calls, rejected, cpu, load, calling)


def figures(done: Measured) -> list[Figure]:
    bench = f"{done.regime.name} {done.transport}"
    cpu = 1000 * done.cpu / done.calls
    note = f"{done.calls} calls, load {done.load:.1f}, {cpu:.2f} ms CPU a call"
    out = [Figure(bench, "wall time", done.seconds, "s", note=note)]
    if done.regime.limit:
        floor = done.calls / done.regime.limit
        out.append(Figure(bench, "wall ÷ (calls ÷ 33/s)", done.seconds / floor, "×", TARGET))
        # The pacing alone: start-up (interpreter, imports, job files) left out, which the
        # machine's load stretches from about 1 s to several.
        pacing = done.calling / ((done.calls - 1) / done.regime.limit)
        out.append(Figure(bench, "first to last call ÷ ((calls - 1) ÷ 33/s)", pacing, "×"))
        share = 100.0 * done.rejected / done.calls
        out.append(Figure(bench, "share of calls answered 429", share, "%", 5.0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--regimes", default="realistic,heavy,loopback")
    parser.add_argument("--transports", default="httpcore,aiohttp")
    args = parser.parse_args()
    out: list[Figure] = []
    for name in args.regimes.split(","):
        for transport in args.transports.split(","):
            done = measure(REGIMES[name], transport, args.collections)
            out += figures(done)
            print_figures(figures(done))  # as it goes: the whole run takes minutes
    print()
    print_figures(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
