"""A kill storm (issue #22): what SPEC §10 promises, after many deaths at random moments.

1. SQLite state: 30 applies with runs, each killed by SIGKILL at a random moment, the job
   files edited between them (content and `when`), then applies until one ends cleanly.
2. PostgreSQL state: rounds of 4 applies at once (4 hosts), PostgreSQL restarted in the
   middle of each round, edits between rounds, then a clean apply.

After each part it checks and prints: every collection exists once with its last content;
every `when: changed` collection's last content ran (a change is never lost); every run the
API started is named in a report, or was seen to its end by an apply killed before its
report (SPEC §4 promises the runs in flight); no collection ran twice in one apply (in
part 2: in one round of 4 overlapping hosts).

    PYTHONPATH=. python3 tests/stress/kill_storm.py [--kills 30] [--rounds 4] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sprunner.emulator.server import running_emulator
from tests.e2e.history import FOLDERS, ListingBarrier, World
from tests.postgres import postgres_server

NAMES = tuple(FOLDERS)  # a, b in a/; c in b/


def content(rng: random.Random) -> list[dict[str, Any]]:
    pages = rng.sample(range(8), rng.randint(1, 4))
    return [{"url": f"https://storm.example/{page}"} for page in pages]


def edit(rng: random.Random, desired: dict[str, Any]) -> None:
    for name in rng.sample(NAMES, rng.randint(1, len(NAMES))):
        desired[name] = (content(rng), {"when": rng.choice(["always", "changed"])})


def exempt_after_kill(world: World) -> set[str]:
    """Runs the killed apply saw to their end: no record left to adopt, no report."""
    entries = world.entries().values()
    inflight = {e.inflight.run_id for e in entries if e.inflight and e.inflight.run_id}
    pending = {e.id for e in entries if e.inflight and e.inflight.run_id is None}
    runs = list(world.emulator.engine.runs.values())
    return {r.run_id for r in runs if r.run_id not in inflight and r.collection_id not in pending}


def runs_by_name(world: World) -> Counter[str]:
    engine = world.emulator.engine
    names = {c.id: c.name for c in list(engine.collections.values())}
    return Counter(names.get(r.collection_id, "?") for r in list(engine.runs.values()))


def twice(before: Counter[str], after: Counter[str]) -> list[str]:
    return [name for name in NAMES if after[name] - before[name] > 1]


def check(world: World, desired: dict[str, Any], exempt: set[str], title: str) -> None:
    engine = world.emulator.engine
    collections = list(engine.collections.values())
    names = Counter(c.name for c in collections)
    problems = [f"{n}: {k} remote collections" for n, k in names.items() if k != 1]
    ids = {c.name: c.id for c in collections}
    every = {c.id: c.name for c in collections}
    for name, (requests, run) in desired.items():
        remote = [c.requests for c in collections if c.name == name]
        if remote != [requests]:
            problems.append(f"{name}: remote {remote} != declared {requests}")
        ran = [r for r in engine.runs.values() if r.collection_id == ids.get(name)]
        if run["when"] == "changed" and not any(r.requests == requests for r in ran):
            problems.append(f"{name}: its last content never ran (a change lost)")
    reported = world.reported_runs()
    runs = list(engine.runs.values())
    unreported = [r.run_id for r in runs if r.run_id not in reported and r.run_id not in exempt]
    live = [r for r in unreported if engine.runs[r].collection_id in every]
    if live:
        problems.append(f"runs the API started that no report names: {live}")
    adopted = sum(
        1
        for report in world.reports
        for c in report["collections"]
        if (c.get("run") or {}).get("adopted")
    )
    print(
        f"{title}: {len(world.reports)} reports, {len(runs)} runs ({len(reported)} reported, "
        f"{adopted} adoptions, {len(exempt & set(engine.runs))} seen to their end by a killed "
        f"apply), collections {dict(names)}"
    )
    print("  OK" if not problems else "  PROBLEMS:\n  " + "\n  ".join(problems))


def sqlite_storm(kills: int, rng: random.Random) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_emulator(run_seconds=1.5) as emulator:
        world = World(emulator, Path(tmp), None)
        desired: dict[str, Any] = {}
        edit(rng, desired)
        exempt: set[str] = set()
        codes: Counter[int] = Counter()
        doubled: list[str] = []
        for _ in range(kills):
            world.write_jobs(desired)
            before = runs_by_name(world)
            spawned = world.spawn(("a", "b"))
            time.sleep(rng.uniform(0.05, 3.0))
            codes[spawned.finish(signal.SIGKILL)] += 1
            doubled += twice(before, runs_by_name(world))
            exempt |= exempt_after_kill(world)
            world.ended(spawned)
            edit(rng, desired)
        world.write_jobs(desired)
        clean = [world.apply(("a", "b"))[0] for _ in range(2)]
        print(f"sqlite: {kills} applies killed (exit codes {dict(codes)}); then {clean}")
        print(f"  collections run twice in one apply: {doubled or 'none'}")
        check(world, desired, exempt, "sqlite")


def postgres_storm(rounds: int, rng: random.Random) -> None:
    barrier = ListingBarrier()
    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_server() as server,
        running_emulator(run_seconds=1.5, wrap=barrier.wrap) as emulator,
    ):
        world = World(emulator, Path(tmp), server)
        desired: dict[str, Any] = {}
        codes: Counter[int] = Counter()
        doubled: list[str] = []
        for _ in range(rounds):
            edit(rng, desired)
            world.write_jobs(desired)
            before = runs_by_name(world)
            barrier.arm(4)
            starts = emulator.engine.calls["run"]
            hosts = [world.spawn(("a", "b")) for _ in range(4)]
            # Mid-work: as a run's POST is on its way (answered slowly), or a little later.
            emulator.faults.add("slow", 0.4, route="run")
            world.wait(lambda begun=starts: emulator.engine.calls["run"] > begun, hosts[0])
            time.sleep(rng.uniform(0.0, 0.6))
            server.restart()
            emulator.faults.clear()
            for host in hosts:
                codes[host.finish()] += 1
                if "Traceback" in host.output:
                    print(host.output)
                world.ended(host)
            doubled += twice(before, runs_by_name(world))
        barrier.arm(0)
        clean = [world.apply(("a", "b"))[0] for _ in range(2)]
        print(f"postgres: {rounds} rounds of 4 hosts, restarted; exit codes {dict(codes)}; {clean}")
        print(f"  collections run twice in one round: {doubled or 'none'}")
        check(world, desired, set(), "postgres")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed}")
    sqlite_storm(args.kills, random.Random(seed))
    postgres_storm(args.rounds, random.Random(seed + 1))


if __name__ == "__main__":
    main()
