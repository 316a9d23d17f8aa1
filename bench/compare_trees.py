"""What changes cost, measured in one run: one benchmark command against several trees.

The machine is shared and its speed drifts from minute to minute, so figures measured at
different times say little about a change. This runs the same command once per tree in
each round, each tree going first in turn (sprunner imported from the tree, the
benchmark's own code from this folder), reads every `name value unit` line the command
prints (bench_validate's `time`, `cpu`, `memory`) and shows each figure's median per tree
and its ratio to the first tree's.

    git archive main | tar -x -C /tmp/before        # a tree to compare against
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
import tempfile
from pathlib import Path

_FIGURE = re.compile(r"^(\w+)\s+([0-9][0-9.]*)\s+(\S+)", re.MULTILINE)


def run_once(tree: Path, command: list[str]) -> dict[str, tuple[float, str]]:
    """One run of `command` with sprunner imported from `tree`; the figures it printed."""
    here = Path.cwd()
    command = [str(here / arg) if (here / arg).is_file() else arg for arg in command]
    with tempfile.TemporaryDirectory() as shim:
        # A folder that holds only `tree`'s package, first on the path and the working
        # folder (which `python -m` puts first): sprunner comes from `tree`, the benchmark's
        # own code from this folder.
        (Path(shim) / "sprunner").symlink_to((tree / "sprunner").resolve())
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([shim, str(here)])}
        done = subprocess.run(
            command, env=env, cwd=shim, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"{command} failed under {tree}:\n{done.stdout}{done.stderr[-2000:]}")
    return {name: (float(value), unit) for name, value, unit in _FIGURE.findall(done.stdout)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", type=Path, nargs="+", help="the first is the reference")
    parser.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:]
    if "--" not in argv:
        parser.error("the benchmark command goes after --")
    split = argv.index("--")
    args, command = parser.parse_args(argv[:split]), argv[split + 1 :]
    trees: list[Path] = args.trees
    seen: list[dict[str, list[float]]] = [{} for _ in trees]
    units: dict[str, str] = {}
    for round_ in range(args.rounds):
        # Each tree goes first in turn: none always runs on the machine another warmed.
        turn = round_ % len(trees)
        for index in [*range(turn, len(trees)), *range(turn)]:
            for name, (value, unit) in run_once(trees[index], command).items():
                seen[index].setdefault(name, []).append(value)
                units[name] = unit
            figures = ", ".join(f"{n} {v[-1]:g}" for n, v in seen[index].items())
            print(f"round {round_ + 1} {trees[index]}: {figures}", file=sys.stderr, flush=True)
    for index, tree in enumerate(trees):
        print(f"tree {index}: {tree}")
    print("medians of", args.rounds, "rounds; ratios to tree 0")
    for name, unit in units.items():
        medians = [statistics.median(s[name]) for s in seen]
        cells = [f"{m:.2f} ({m / medians[0]:.2f} x)" if medians[0] else f"{m:.2f}" for m in medians]
        print(f"{name:8} {unit:4} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
