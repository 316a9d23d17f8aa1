"""Benchmark (issue #23 item 7): peak memory of `sprunner apply` for one 100 MB result.

One collection of one request whose result body is SIZE bytes of JSON (the `html` field),
served by the emulator in this process (simulate mode caps its bodies at 64 MB, so the
result call of that job is answered here, streamed, by `BigResult`; the emulator's own
body is over the inline cap, so the drain fetches it alone, as it would 100 MB). sprunner runs as a
subprocess (`python -m sprunner apply`), writing its results to a local directory; its
own peak RSS is read with `os.wait4`.

Printed:
- the same apply with a 2 KB result: what the process holds before any body (imports,
  emulator-independent);
- the apply with the SIZE-byte result, for jsonl.gz and for parquet, and its peak above
  that baseline in multiples of the body;
- the writer alone (a subprocess that builds one SIZE-character page in a row and writes
  it through `ResultWriter`): the page itself, then what writing adds to it.

    python -m bench.bench_big_result                 # 100 MB
    python -m bench.bench_big_result --size 20000000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from bench.common import Figure, print_figures

SIZE = 100 * 1000 * 1000
TARGET_MULTIPLE = 3.0  # peak above the baseline, in bodies: fetch + parse + write

JOB = """\
version: 1
collections:
  - name: big
    requests:
      - url: https://big.test/page?size=300000
    run: {{poll_interval: 0.5s}}
    results: {{to: "{to}", format: {fmt}}}
"""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]


class BigResult:
    """Answers every job's result call with a `size`-byte body, streamed in 1 MB chunks."""

    def __init__(self, size: int) -> None:
        self.size = size

    def wrap(self, app: ASGI) -> ASGI:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] != "http" or self.size <= 0 or not path.endswith("/result"):
                await app(scope, receive, send)
                return
            head = b'{"url": "https://big.test/page", "statusCode": 200, "html": "'
            tail = b'", "markdown": null}'
            filler = self.size - len(head) - len(tail)
            headers = [(b"content-type", b"application/json")]
            headers.append((b"content-length", str(len(head) + filler + len(tail)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": head, "more_body": True})
            chunk = b"<p>" + b"x" * (1 << 20) + b"</p>"
            while filler > 0:
                piece = chunk[:filler]
                filler -= len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": tail, "more_body": False})

        return wrapped


def peak_of(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run `command`: its wall time (s), its own peak RSS (MB), return code and stderr."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode(errors="replace")
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), text


def apply_peak(size: int, fmt: str, work: Path) -> float:
    """Peak RSS (MB) of one apply whose one result is `size` bytes (0: the emulator's 2 KB)."""
    from sprunner.emulator.server import running_emulator

    folder = work / f"{fmt}-{size}"
    folder.mkdir()
    job = folder / "big.yaml"
    job.write_text(JOB.format(to=folder / "results", fmt=fmt))
    with running_emulator(mode="simulate", run_seconds=0.5, wrap=BigResult(size).wrap) as emu:
        env = {**os.environ, "SCRAPINGPROS_API_KEY": emu.api_key, "NO_COLOR": "1"}
        command = [sys.executable, "-m", "sprunner", "--api-url", emu.url]
        command += ["--state-dir", str(folder / "state"), "apply", str(job)]
        _, peak, code, err = peak_of(command, env)
    written = sum(p.stat().st_size for p in (folder / "results").rglob(f"*.{fmt}"))
    if code != 0 or not written:
        raise SystemExit(f"the apply failed ({code}):\n{err}")
    return peak


WRITER_ONLY = """
import sys
from sprunner.results.layout import result_paths
from sprunner.results.rowschema import job_row
from sprunner.results.writer import ResultWriter
from sprunner.api.models import Job
import resource
size, folder, fmt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
page = "x" * size
page_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
job = Job("j", "r", "c", "completed", "https://big.test/page", status_code=200)
row = job_row(job, {"html": page}, run_id="r", run_started_at=None)
paths = result_paths(folder, collection="big", run_id="r", started=0, format=fmt)
writer = ResultWriter(paths)
writer.write(row)
writer.publish({})
print(page_peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def writer_only(size: int, fmt: str, work: Path) -> tuple[float, float]:
    """(peak with the page built, peak after writing it), MB, in a process of its own."""
    folder = work / f"writer-{fmt}"
    done = subprocess.run(
        [sys.executable, "-c", WRITER_ONLY, str(size), str(folder), fmt],
        capture_output=True,
        text=True,
        check=True,
    )
    before, after = (int(v) / 1024 for v in done.stdout.split())
    return before, after


def measure(size: int) -> list[Figure]:
    mb = size / 1e6
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        baseline = apply_peak(0, "jsonl.gz", work)
        figures.append(Figure("big-result", "apply, 2 KB result: peak RSS", baseline, "MB"))
        for fmt in ("jsonl.gz", "parquet"):
            peak = apply_peak(size, fmt, work)
            figures.append(Figure("big-result", f"apply, {mb:.0f} MB result, {fmt}", peak, "MB"))
            figures.append(
                Figure(
                    "big-result",
                    f"  above the baseline, in bodies ({fmt})",
                    (peak - baseline) / mb,
                    "x",
                    TARGET_MULTIPLE,
                )
            )
        for fmt in ("jsonl.gz", "parquet"):
            page, written = writer_only(size, fmt, work)
            note = f"the page alone: {page:.0f} MB"
            figures.append(
                Figure(
                    "big-result",
                    f"writer alone, {fmt}: added",
                    (written - page) / mb,
                    "x",
                    note=note,
                )
            )
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=SIZE, help="bytes of the one result")
    args = parser.parse_args(argv)
    print_figures(measure(args.size))


if __name__ == "__main__":
    main()
