"""Benchmark 3 of issue #6: the same workload done the ways a user would otherwise do it.

(a) The API documentation's loop, with plain httpx: for each collection in turn, create it,
    start a run, then check the run's status and, while it is in progress, sleep 5 s and
    check again. It is strictly sequential, so a sample of `--sample` collections is timed
    and extrapolated linearly to the whole workload (the output says so).
(b) A short script on the official `scrapingpros` SDK (pip install scrapingpros, the
    `bench` extra), pointed at the emulator with `base_url`: `create_collection` then
    `run_and_wait` for every collection, all at once under `asyncio.gather`. Run without a
    limit and under the 25 request/s token bucket.

sprunner's own figures come from bench 1 and 2 (`bench.bench_apply`); the ratios printed are
sprunner's wall time and API calls divided by each alternative's (below 1: sprunner is
faster / makes fewer calls).

    python -m bench.bench_alternatives [--sample 3] [--collections 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

from bench.common import COLLECTIONS, RATE_LIMIT, RUN_SECONDS, Figure, print_figures, urls

DOC_POLL_SECONDS = 5.0
SDK_TIMEOUT = 300.0


@dataclass(frozen=True)
class Outcome:
    label: str
    seconds: float  # for the whole workload (extrapolated where `note` says so)
    calls: float  # for the whole workload
    completed: int  # collections whose run was seen completed
    error: str | None = None
    note: str = ""


def doc_loop(sample: int, collections: int = COLLECTIONS) -> Outcome:
    """The documentation's loop, sequential, on `sample` collections, extrapolated."""
    import httpx

    from sprunner.emulator.server import running_emulator

    with running_emulator(mode="simulate", run_seconds=RUN_SECONDS) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        start = time.perf_counter()
        completed = 0
        with httpx.Client(base_url=emu.url, headers=headers, timeout=30) as http:
            for index in range(sample):
                created = http.post(
                    "/v1/async/collections",
                    json={"name": f"doc-{index:04d}", "requests": urls(index)},
                ).json()
                cid = created["id"]
                run = http.post(f"/v1/async/collections/{cid}/run").json()
                for _ in range(1000):  # bounded: a run lasts RUN_SECONDS
                    run = http.get(f"/v1/async/collections/{cid}/runs/{run['run_id']}").json()
                    if run["status"] == "completed":
                        completed += 1
                        break
                    time.sleep(DOC_POLL_SECONDS)
        seconds = time.perf_counter() - start
        calls = sum(emu.engine.calls.values())
    scale = collections / sample
    return Outcome(
        "doc loop",
        seconds * scale,
        calls * scale,
        round(completed * scale),
        note=f"extrapolated ×{scale:.4g} from {sample} collections: {seconds / sample:.2f} s and "
        f"{calls / sample:.2f} calls each",
    )


async def _sdk_script(url: str, api_key: str, collections: int) -> tuple[int, str | None]:
    from scrapingpros import AsyncClient

    async with AsyncClient(api_key, base_url=url) as client:

        async def one(index: int) -> str:
            collection = await client.create_collection(f"sdk-{index:04d}", urls(index))
            run = await client.run_and_wait(collection.id, timeout=SDK_TIMEOUT)
            return run.status

        results = await asyncio.gather(
            *(one(i) for i in range(collections)), return_exceptions=True
        )
    errors = [r for r in results if isinstance(r, BaseException)]
    completed = sum(1 for r in results if r == "completed")
    first = None
    if errors:
        first = f"{len(errors)} collections failed, e.g. {type(errors[0]).__name__}: {errors[0]}"
    return completed, first


def sdk(collections: int = COLLECTIONS, *, limited: bool) -> Outcome:
    label = "SDK limit 25/s" if limited else "SDK"
    try:
        import scrapingpros  # noqa: F401
    except ImportError:
        return Outcome(
            label,
            float("nan"),
            float("nan"),
            0,
            error="scrapingpros is not installed: pip install '.[bench]'",
        )
    from sprunner.emulator.server import running_emulator

    faults = [f"rate-limit:{RATE_LIMIT:g}"] if limited else []
    with running_emulator(mode="simulate", run_seconds=RUN_SECONDS, faults=faults) as emu:
        start = time.perf_counter()
        completed, error = asyncio.run(_sdk_script(emu.url, emu.api_key, collections))
        seconds = time.perf_counter() - start
        calls = sum(emu.engine.calls.values())
    return Outcome(label, seconds, calls, completed, error)


def compare(
    name: str,
    mine_seconds: float,
    mine_calls: float,
    other: Outcome,
    collections: int = COLLECTIONS,
) -> list[Figure]:
    """sprunner's wall time and calls as ratios to `other`'s (target: below 1)."""
    bench = f"3 vs {other.label}"
    done = f"{other.completed} of {collections} runs completed"
    if other.error is not None:
        note = f"{other.label} did not finish the workload: {other.error}; {done}"
        return [
            Figure(bench, f"{other.label}: wall time", other.seconds, "s", note=note),
            Figure(bench, f"{other.label}: API calls", other.calls, "", note=note),
        ]
    note = f"{other.note}; " if other.note else ""
    return [
        Figure(bench, f"{other.label}: wall time", other.seconds, "s", note=f"{note}{done}"),
        Figure(bench, f"{other.label}: API calls", other.calls, ""),
        Figure(
            bench, f"{name} wall time ÷ {other.label}'s", mine_seconds / other.seconds, "×", 1.0
        ),
        Figure(bench, f"{name} API calls ÷ {other.label}'s", mine_calls / other.calls, "×", 1.0),
    ]


def main() -> int:
    from bench.bench_apply import run_first_apply

    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--collections", type=int, default=COLLECTIONS)
    args = parser.parse_args()
    mine = run_first_apply(args.collections, limited=False)
    mine_limited = run_first_apply(args.collections, limited=True)
    figures = compare(
        "sprunner",
        mine.seconds,
        mine.calls,
        doc_loop(args.sample, args.collections),
        args.collections,
    )
    figures += compare("sprunner", mine.seconds, mine.calls, sdk(args.collections, limited=False))
    figures += compare(
        "sprunner 25/s",
        mine_limited.seconds,
        mine_limited.calls,
        sdk(args.collections, limited=True),
    )
    print_figures(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
