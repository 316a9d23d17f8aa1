"""Issue #23 item 7: the memory of fetching and parsing one big result (the API side only).

A scraped page can be 100 MB. The emulator (in this process) serves one job whose result is
SIZE bytes (`?size=`, above the inline cap, so it is fetched alone); a child process runs
`ApiClient.get_job_result` for it, over loopback, and reports its peak RSS (`ru_maxrss`)
before and after. The writer side (the results helper's) is not part of this figure.

What keeps it lean: the body is gathered into one `bytearray` as it streams (no list of
pieces joined at the end), and orjson parses straight from those bytes (no decoded copy of
the text); the body's bytes are dropped once parsed. What is left is the parsed body itself
(the page as one `str`), which any writer needs.

    python -m bench.bench_result_memory [--size 100000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import Figure, print_figures

CHILD = """
import asyncio, json, resource, sys
from sprunner.api.client import ApiClient

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

async def main(url, key, cid, rid, jid):
    async with ApiClient(base_url=url, api_key=key) as api:
        await api.list_collections()  # imports and the connection, before the baseline
        before = peak_mb()
        body = await api.get_job_result(cid, rid, jid, name="big")
        size = sum(len(v) for v in body.values() if isinstance(v, str))
        print(json.dumps({"before": before, "after": peak_mb(), "text": size}))

asyncio.run(main(*sys.argv[1:]))
"""


def measure(size: int) -> list[Figure]:
    from sprunner.emulator.server import running_emulator

    with running_emulator(mode="simulate", run_seconds=0.1) as emu:
        engine = emu.engine
        created = engine.create_collection(
            {"name": "big", "requests": [{"url": f"https://example.com/p?size={size}"}]}
        )
        run = engine.start_run(created["id"])
        deadline = time.monotonic() + 60
        while engine.get_run(created["id"], run["run_id"])["status"] != "completed":
            if time.monotonic() > deadline:
                raise SystemExit("the run did not complete")
            time.sleep(0.1)
        job_id = engine.get_run(created["id"], run["run_id"])["job_ids"][0]
        args = [emu.url, emu.api_key, created["id"], run["run_id"], job_id]
        done = subprocess.run(
            [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True
        )
    seen = json.loads(done.stdout)
    mb = size / 1e6
    grown = seen["after"] - seen["before"]
    note = f"peak {seen['after']:.0f} MB, {seen['before']:.0f} MB before"
    note += f"; {seen['text'] / 1e6:.0f} MB of text in the body"
    return [
        Figure(
            "result memory",
            f"peak RSS growth fetching one {mb:.0f} MB result",
            grown,
            "MB",
            note=note,
        ),
        Figure("result memory", "peak RSS growth ÷ body size", grown / mb, "×"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000_000)
    args = parser.parse_args()
    print_figures(measure(args.size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
