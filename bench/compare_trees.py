"""What a change cost, measured in one run: one benchmark command against two source trees.

The machine is shared and its speed drifts from minute to minute, so figures measured at
different times say little about a change. This runs the same command once per tree in
each round (PYTHONPATH set to the tree, so `python -m sprunner` imports it; the order
alternates between rounds), reads every `name value unit` line it prints (bench_validate's
`time`, `cpu`, `memory`) and shows each figure's median per tree and their ratio.

    git archive main | tar -x -C /tmp/before        # the tree to compare against
    python -m bench.compare_trees /tmp/before . --rounds 3 -- \\
        python bench/bench_validate.py --collections 100
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

_FIGURE = re.compile(r"^(\w+)\s+([0-9][0-9.]*)\s+(\S+)", re.MULTILINE)


def run_once(tree: Path, command: list[str]) -> dict[str, tuple[float, str]]:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command} failed under {tree}:\n{done.stdout}{done.stderr[-2000:]}")
    return {name: (float(value), unit) for name, value, unit in _FIGURE.findall(done.stdout)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:]
    if "--" not in argv:
        parser.error("the benchmark command goes after --")
    split = argv.index("--")
    args, command = parser.parse_args(argv[:split]), argv[split + 1 :]
    trees = {"before": args.before, "after": args.after}
    seen: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    units: dict[str, str] = {}
    for round_ in range(args.rounds):
        order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
        for label in order:
            for name, (value, unit) in run_once(trees[label], command).items():
                seen[label].setdefault(name, []).append(value)
                units[name] = unit
            figures = ", ".join(f"{n} {v[-1]:g}" for n, v in seen[label].items())
            print(f"round {round_ + 1} {label:6}: {figures}", file=sys.stderr, flush=True)
    print(f"{'figure':10} {'before':>10} {'after':>10} {'after/before':>13}   (medians)")
    for name, unit in units.items():
        before = statistics.median(seen["before"][name])
        after = statistics.median(seen["after"][name])
        ratio = after / before if before else float("nan")
        print(f"{name:10} {before:10.2f} {after:10.2f} {ratio:12.2f} x   {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
