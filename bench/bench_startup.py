"""Benchmark 6 of issue #6: start-up time, and what each command imports.

`sprunner --version` (the installed console script) against a bare `python -c pass`: the
median of `--repeat` runs of each, interleaved so that machine noise hits both alike
(target ≤ 8 ×). Then `python -X importtime` tells which heavy modules `--version`, `--help`
and `validate` load: `--version` and `--help` must load none of them, `validate` only what
it needs (jinja2 and jsonschema, never httpx, rich, starlette or uvicorn).

    python -m bench.bench_startup [--repeat 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Figure, print_figures

HEAVY = ("httpx", "jsonschema", "jinja2", "rich", "starlette", "uvicorn", "tenacity")
VALIDATE_NEEDS = ("jsonschema", "jinja2")
TARGET_RATIO = 8.0

JOB = """\
version: 1
collections:
  - name: one
    requests:
      - url: "https://example.com/{{ page }}"
        foreach:
          page: "{{ range(3) }}"
"""


def _sprunner_command() -> list[str]:
    script = Path(sys.executable).with_name("sprunner")
    if script.exists():
        return [str(script)]
    found = shutil.which("sprunner")
    return [found] if found else [sys.executable, "-m", "sprunner"]


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start


def imported(args: list[str]) -> set[str]:
    """Top-level modules `python -X importtime -m sprunner ARGS` imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sprunner", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def measure(repeat: int = 15) -> list[Figure]:
    command = _sprunner_command()
    bare = [sys.executable, "-c", "pass"]
    _time([*command, "--version"])  # warm the page cache and the .pyc files
    mine, base = [], []
    for _ in range(repeat):
        mine.append(_time([*command, "--version"]))
        base.append(_time(bare))
    ratio = statistics.median(mine) / statistics.median(base)
    figures = [
        Figure(
            "6 start-up",
            "sprunner --version ÷ python -c pass",
            ratio,
            "×",
            TARGET_RATIO,
            f"medians of {repeat}: {statistics.median(mine) * 1000:.0f} ms vs "
            f"{statistics.median(base) * 1000:.0f} ms",
        )
    ]
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.yaml"
        job.write_text(JOB)
        cases = {
            "--version": (["--version"], ()),
            "--help": (["--help"], ()),
            "validate": (["validate", str(job)], VALIDATE_NEEDS),
        }
        for label, (args, allowed) in cases.items():
            heavy = sorted(set(HEAVY) & imported(args) - set(allowed))
            figures.append(
                Figure(
                    "6 start-up",
                    f"heavy modules imported by {label} (want 0)",
                    len(heavy),
                    "",
                    None,
                    ", ".join(heavy)
                    or "none of " + ", ".join(m for m in HEAVY if m not in allowed),
                )
            )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print_figures(measure(args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
