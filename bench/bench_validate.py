"""Benchmark: validate 20 collections × 50,000 foreach-generated requests (1,000,000).

Targets (SPEC performance goals): under 20 s and under 1.5 GB peak memory on 2 cores.
Runs `sprunner validate` in a subprocess so the peak RSS measured is that of the
validation alone, not of this script.

    python bench/bench_validate.py [--collections 20] [--per 50000]
    python bench/bench_validate.py --collections 1 --per 1000000   # one big collection
    python bench/bench_validate.py --collections 100               # 5,000,000 requests
    python bench/bench_validate.py --files 5000 --per-file 20      # many small files

With more than 50,000 requests a collection, `--max-requests` is raised to match.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 20.0
TARGET_MANY_SECONDS = 15.0  # 5,000 files of 20 collections (issue #17)
TARGET_BYTES = 1.5 * 1024**3

JOB = """\
version: 1
vars:
  shop: https://shop{index}.example.com
defaults:
  use_proxy: any
  format: html
collections:
  - name: bench-{index:02d}
    tags: [bench]
    requests:
      - url: "{{{{ shop }}}}/c/{{{{ cat }}}}/p/{{{{ page }}}}?sort={{{{ sort }}}}"
        custom_id: "{{{{ cat }}}}-{{{{ page }}}}-{{{{ sort }}}}"
        foreach:
          cat: [{cats}]
          sort: [price, name]
          page: "{{{{ range(1, {pages}) }}}}"
"""


MANY = """\
version: 1
vars:
  site: https://shop{index}.example.com
collections:
{collections}
"""
MANY_COLLECTION = """\
  - name: f{index:04d}-c{number:02d}
    tags: [many]
    requests:
      - url: "{{{{ site }}}}/c{number}/first"
        custom_id: f{index}-c{number}-1
      - url: "{{{{ site }}}}/c{number}/second"
        custom_id: f{index}-c{number}-2
    run:
      poll_interval: 5s
"""


def write_many_files(folder: Path, files: int, per_file: int) -> None:
    """`files` job files of `per_file` small collections each (issue #17: 5,000 x 20)."""
    for index in range(files):
        body = "".join(MANY_COLLECTION.format(index=index, number=n) for n in range(per_file))
        text = MANY.format(index=index, collections=body.rstrip("\n"))
        (folder / f"many{index:04d}.yaml").write_text(text + "\n")


def write_files(folder: Path, collections: int, per: int) -> None:
    cats = [f"cat{i}" for i in range(25)]
    pages = per // (len(cats) * 2)
    for index in range(collections):
        text = JOB.format(index=index, cats=", ".join(cats), pages=pages + 1)
        (folder / f"bench{index:02d}.yaml").write_text(text)


# Runs the command in a child of its own and prints that child's peak RSS (KiB), so the
# figure is the validation's alone even when the caller has run other children before.
_WRAPPER = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=False)
sys.stderr.write(done.stderr)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def measure(collections: int = 20, per: int = 50_000) -> list[Any]:
    """Figure 5 for `bench.run_all`: time and peak memory of one `sprunner validate`."""
    from bench.common import Figure

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_files(folder, collections, per)
        command = [sys.executable, "-m", "sprunner", "validate", str(folder)]
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _WRAPPER, *command], capture_output=True, text=True, check=False
        )
        seconds = time.perf_counter() - start
    code, peak_kib = (int(x) for x in done.stdout.split())
    if code != 0:
        raise SystemExit(f"validate failed ({code}):\n{done.stderr[-2000:]}")
    peak = peak_kib * 1024
    total = f"{collections * per:,} requests"
    return [
        Figure("5 validate", f"time, {total}", seconds, "s", TARGET_SECONDS),
        Figure("5 validate", "peak memory", peak / 1024**2, "MiB", TARGET_BYTES / 1024**2),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=20)
    parser.add_argument("--per", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=0, help="many small files instead")
    parser.add_argument("--per-file", type=int, default=20, help="collections in each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.files:
            write_many_files(folder, args.files, args.per_file)
        else:
            write_files(folder, args.collections, args.per)
        command = [sys.executable, "-m", "sprunner", "validate", str(folder)]
        command += ["--max-requests", str(max(args.per, 50_000))]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = usage.ru_maxrss * 1024  # KiB on Linux
    print(done.stdout.strip() or done.stderr.strip()[:2000])
    target = TARGET_MANY_SECONDS if args.files else TARGET_SECONDS
    print(f"time   {seconds:7.2f} s   target {target:.0f} s    ratio {seconds / target:.2f}")
    # On a shared machine the wall time says as much about the others as about sprunner.
    cpu = usage.ru_utime + usage.ru_stime
    print(f"cpu    {cpu:7.2f} s   load average {os.getloadavg()[0]:.2f}")
    print(
        f"memory {peak / 1024**2:7.0f} MiB target {TARGET_BYTES / 1024**2:.0f} MiB ratio "
        f"{peak / TARGET_BYTES:.2f}"
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
