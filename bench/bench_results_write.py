"""Benchmark: drain throughput into local jsonl.gz, and the CPU share of compression.

Target (issue #14): at least 50 MB/s of raw body on this machine. The drain runs for real
(listing pages of 100 with inline bodies, rows, gzip members, fsync per page, publish with
its sha256); only the API is an in-process generator, so the figure is the drain's and
the writer's own cost, not the network's.

    python bench/bench_results_write.py [--jobs 10000] [--size 20000] [--level 1]

Prints raw MB/s, the file's compression ratio, and the share of the process's CPU time
spent compressing (thread CPU time inside the gzip compressor's calls).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sprunner.results import writer as writer_module
from sprunner.results.apitypes import Job, JobPage
from sprunner.results.drain import Drain, DrainTarget
from sprunner.results.layout import result_paths

TARGET_MB_S = 50.0
WORDS = [
    "div",
    "span",
    "class",
    "product",
    "price",
    "title",
    "card",
    "grid",
    "item",
    "href",
    "link",
    "image",
    "alt",
    "data",
    "value",
    "section",
    "header",
    "footer",
    "nav",
    "button",
    "form",
    "input",
    "label",
    "list",
    "table",
    "row",
    "cell",
    "strong",
    "em",
]


def _bodies(size: int, count: int = 64) -> list[str]:
    """HTML-like pages of `size` characters: tags and words, compressible as real pages are."""
    rng = random.Random(14)
    pages = []
    for _ in range(count):
        parts: list[str] = []
        length = 0
        while length < size:
            tag, text = rng.choice(WORDS), " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
            piece = f'<{tag} class="{rng.choice(WORDS)}-{rng.randint(0, 999)}">{text}</{tag}>\n'
            parts.append(piece)
            length += len(piece)
        pages.append("".join(parts)[:size])
    return pages


@dataclass
class GeneratedApi:
    """Finished jobs generated page by page: no body is held beyond the page asked for."""

    jobs: int
    pages: list[str]

    async def list_jobs(self, collection_id: str, run_id: str, *, name: str,
                        cursor: str | None = None, limit: int | None = None,
                        status_filter: Sequence[str] = (), order_by: str | None = None,
                        order_dir: str | None = None, since_completed_at: str | None = None,
                        include_results: bool = False) -> JobPage:  # fmt: skip
        start, size = int(cursor or 0), min(limit or 100, 100)
        items = tuple(self._job(n) for n in range(start, min(start + size, self.jobs)))
        more = start + size < self.jobs
        return JobPage(items, str(start + size) if more else None, more)

    def _job(self, n: int) -> Job:
        completed = f"2026-11-28T12:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}Z"
        body = {
            "url": f"https://shop.example.com/p/{n}",
            "custom_id": f"p{n}",
            "html": self.pages[n % len(self.pages)],
            "statusCode": 200,
        }
        return Job(f"job-{n:07d}", "run-1", "col-1", "completed", 200, "ok",
                   body["url"], body["custom_id"], completed_at=completed, result=body,
                   has_result=True)  # fmt: skip

    async def get_job_result(self, collection_id: str, run_id: str, job_id: str, *,
                             name: str) -> Mapping[str, Any]:  # fmt: skip
        raise AssertionError("every body is inline in this benchmark")


@dataclass
class Done:
    total_requests: int
    success_requests: int
    failed_requests: int = 0
    timeout_requests: int = 0
    all_jobs_persisted: bool = True


def run(jobs: int, size: int, level: int, directory: Path) -> dict[str, float]:
    compress_seconds = 0.0
    original = writer_module.gzip_compressor

    class Timed:
        """The writer's compressor, with the CPU time of each call added up."""

        def __init__(self, level: int) -> None:
            self.inner = original(level)

        def _timed(self, call: Any, *args: Any) -> Any:
            nonlocal compress_seconds
            began = time.thread_time()
            try:
                return call(*args)
            finally:
                compress_seconds += time.thread_time() - began

        def compress(self, data: bytes) -> Any:
            return self._timed(self.inner.compress, data)

        def flush(self) -> Any:
            return self._timed(self.inner.flush)

    writer_module.gzip_compressor = Timed  # type: ignore[assignment]
    try:
        paths = result_paths(str(directory), collection="bench", run_id="run-1",
                             started=0.0, format="jsonl.gz")  # fmt: skip
        drain = Drain(
            GeneratedApi(jobs, _bodies(size)),
            DrainTarget("bench", "col-1", "run-1", paths),
            warn=lambda text: print(text, file=sys.stderr),
        )
        cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        asyncio.run(drain.step(Done(jobs, jobs)))
        outcome = asyncio.run(drain.finish(Done(jobs, jobs)))
        wall = time.perf_counter() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        writer_module.gzip_compressor = original
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    raw_mb = jobs * size / 1e6
    return {
        "raw_mb": raw_mb,
        "wall_s": wall,
        "mb_s": raw_mb / wall,
        "mb_cpu_s": raw_mb / cpu if cpu else 0.0,
        "ratio": outcome.bytes / (jobs * size),
        "compress_share": compress_seconds / cpu if cpu else 0.0,
        "peak_rss_mb": cpu1.ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=20_000, help="characters of html a body")
    parser.add_argument("--level", type=int, default=writer_module.GZIP_LEVEL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        f = run(args.jobs, args.size, args.level, Path(tmp))
    print(f"drain to jsonl.gz (level {args.level}): {args.jobs} results x {args.size} B "
          f"= {f['raw_mb']:.0f} MB raw in {f['wall_s']:.2f} s")  # fmt: skip
    print(f"  throughput        {f['mb_s']:8.1f} MB/s raw body  (target >= {TARGET_MB_S:.0f}; "
          f"ratio to target {TARGET_MB_S / f['mb_s']:.2f}, <= 1 is within)")  # fmt: skip
    print(f"  per CPU second    {f['mb_cpu_s']:8.1f} MB raw body  (steady under other load)")
    print(f"  compression share {f['compress_share'] * 100:8.1f} % of the process's CPU time")
    print(f"  file / raw        {f['ratio'] * 100:8.1f} %")
    print(f"  peak RSS          {f['peak_rss_mb']:8.0f} MB")
    return 0 if f["mb_s"] >= TARGET_MB_S else 1


if __name__ == "__main__":
    sys.exit(main())
