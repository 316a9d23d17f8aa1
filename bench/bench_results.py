"""Benchmark (issue #14): results drained by `sprunner apply` vs the SDK's `Batch.iter_results`.

The same workload both ways, against one emulator in simulate mode (in this process):
COLLECTIONS collections of REQUESTS requests whose bodies are SIZE bytes (`?size=`), runs
lasting RUN_SECONDS.

- sprunner: `python -m sprunner apply` (a subprocess) on job files with a `results:` block
  writing jsonl.gz into a local directory: create, run, poll and drain, all in one loop.
- SDK: a subprocess running a short script on the official `scrapingpros` SDK (the bench
  extra): `AsyncClient.submit_batch` for every collection at once under `asyncio.gather`,
  then `async for r in batch.iter_results(poll_interval=1.0)`, each result written as one
  JSON line to a gzip file (level 1, as sprunner's) per collection.

Printed per side: wall time, API calls (counted by the emulator: every call that arrived),
rows written, and peak RSS (`os.wait4` of that very subprocess); then the ratios
sprunner ÷ SDK (targets: time ≤ 1.2, calls ≤ 1, peak RSS ≤ 250 MB).

    python -m bench.bench_results                       # a 2-core-friendly scale
    python -m bench.bench_results --collections 20 --requests 2500 --size 20000   # issue scale
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.common import Figure, print_figures

RUN_SECONDS = 3.0
RSS_TARGET_MB = 250.0
TIME_TARGET = 1.2

JOB_HEAD = "version: 1\ncollections:\n"
COLLECTION = """\
  - name: res-{index:04d}
    requests:
      - url: "https://shop{index}.test/p/{{{{ page }}}}?size={size}"
        custom_id: "c{index}-p{{{{ page }}}}"
        foreach:
          page: "{{{{ range({requests}) }}}}"
    run: {{poll_interval: 1s, timeout: 30m}}
    results: {{to: "{to}"}}
"""


@dataclass(frozen=True)
class Side:
    label: str
    seconds: float
    calls: Counter[str]
    rows: int
    peak_rss_mb: float
    returncode: int
    stderr: str


def items(index: int, requests: int, size: int) -> list[dict[str, str]]:
    """The requests of collection `index`, as the job file expands them."""
    return [
        {"url": f"https://shop{index}.test/p/{page}?size={size}", "custom_id": f"c{index}-p{page}"}
        for page in range(requests)
    ]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run `command`; its wall time, its own peak RSS (MB), return code and stderr."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return seconds, usage.ru_maxrss / 1024, process.returncode, stderr


def count_rows(folder: Path) -> int:
    rows = 0
    for path in folder.rglob("*.jsonl.gz"):
        with gzip.open(path, "rb") as handle:
            rows += sum(1 for _ in handle)
    return rows


def run_sprunner(url: str, key: str, work: Path, args: argparse.Namespace) -> Side:
    out = work / "sprunner-results"
    jobs = work / "jobs.yaml"
    body = "".join(
        COLLECTION.format(index=i, requests=args.requests, size=args.size, to=out)
        for i in range(args.collections)
    )
    jobs.write_text(JOB_HEAD + body)
    env = {**os.environ, "SCRAPINGPROS_API_KEY": key, "NO_COLOR": "1"}
    command = [sys.executable, "-m", "sprunner", "--api-url", url]
    command += ["--state-dir", str(work / "state"), "apply", str(jobs), "-q"]
    seconds, rss, code, stderr = timed(command, env)
    return Side("sprunner", seconds, Counter(), count_rows(out), rss, code, stderr)


def run_sdk(url: str, key: str, work: Path, args: argparse.Namespace) -> Side:
    out = work / "sdk-results"
    command = [sys.executable, "-m", "bench.bench_results", "--sdk-worker", url, key, str(out)]
    command += ["--collections", str(args.collections), "--requests", str(args.requests)]
    command += ["--size", str(args.size)]
    seconds, rss, code, stderr = timed(command, dict(os.environ))
    return Side("SDK", seconds, Counter(), count_rows(out), rss, code, stderr)


async def sdk_worker(url: str, key: str, out: Path, args: argparse.Namespace) -> None:
    """The SDK script: every batch at once, results streamed to gzip JSON lines."""
    import scrapingpros

    out.mkdir(parents=True, exist_ok=True)
    client = scrapingpros.AsyncClient(key, base_url=url, max_retries=5)

    async def one(index: int) -> None:
        batch = await client.submit_batch(
            f"sdk-{index:04d}", items(index, args.requests, args.size)
        )
        with gzip.open(out / f"sdk-{index:04d}.jsonl.gz", "wt", compresslevel=1) as handle:
            async for result in batch.iter_results(poll_interval=1.0, timeout=1800):
                handle.write(result.model_dump_json() + "\n")

    try:
        await asyncio.gather(*(one(i) for i in range(args.collections)))
    finally:
        await client.close()


def median(sides: list[Side]) -> Side:
    """The run of median wall time (its calls, rows and RSS with it)."""
    return sorted(sides, key=lambda s: s.seconds)[len(sides) // 2]


def measure(args: argparse.Namespace) -> list[Figure]:
    from sprunner.emulator.server import running_emulator

    # Interleaved repeats, median per side: other processes share the cores.
    runs: dict[str, list[Side]] = {"sprunner": [], "SDK": []}
    for _ in range(args.repeat):
        for runner in (run_sprunner, run_sdk):
            with (
                tempfile.TemporaryDirectory(prefix="bench-results-") as tmp,
                running_emulator(mode="simulate", run_seconds=args.run_seconds) as emu,
            ):
                side = runner(emu.url, emu.api_key, Path(tmp), args)
                side = Side(**{**side.__dict__, "calls": Counter(emu.engine.calls)})
            if side.returncode != 0:
                sys.exit(f"{side.label} failed ({side.returncode}):\n{side.stderr[-3000:]}")
            runs[side.label].append(side)
    sides = [median(runs["sprunner"]), median(runs["SDK"])]
    ours, sdk = sides
    expected = args.collections * args.requests
    figures = []
    for side in sides:
        calls = sum(side.calls.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(side.calls.items()))
        figures += [
            Figure("results", f"{side.label}: wall time", side.seconds, "s"),
            Figure("results", f"{side.label}: API calls", calls, "", note=detail),
            Figure("results", f"{side.label}: rows written", side.rows, "", note=f"of {expected}"),
            Figure("results", f"{side.label}: peak RSS", side.peak_rss_mb, "MB"),
        ]
    figures += [
        Figure(
            "results", "sprunner ÷ SDK, wall time", ours.seconds / sdk.seconds, "×", TIME_TARGET
        ),
        Figure(
            "results",
            "sprunner ÷ SDK, API calls",
            sum(ours.calls.values()) / max(1, sum(sdk.calls.values())),
            "×",
            1.0,
        ),
        Figure("results", "sprunner peak RSS", ours.peak_rss_mb, "MB", RSS_TARGET_MB),
    ]
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collections", type=int, default=4)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--size", type=int, default=20_000, help="bytes per result body")
    parser.add_argument("--run-seconds", type=float, default=RUN_SECONDS)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs; medians")
    parser.add_argument("--sdk-worker", nargs=3, metavar=("URL", "KEY", "OUT"))
    args = parser.parse_args(argv)
    if args.sdk_worker:
        url, key, out = args.sdk_worker
        asyncio.run(sdk_worker(url, key, Path(out), args))
        return
    scale = f"{args.collections} collections × {args.requests} requests × {args.size:,} B"
    print(f"workload: {scale}, runs of {args.run_seconds:g} s, median of {args.repeat}")
    print_figures(measure(args))


if __name__ == "__main__":
    main()
