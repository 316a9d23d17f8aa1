"""The world of one random history (tests/e2e/test_stateful.py): an emulator, job files in
two folders, and one state store, a real SQLite file or a real PostgreSQL database.

Every collection delivers its results to one folder, `results/`: a small file system of
its own (tmpfs, when we may mount one) that a rule can fill, as a full results disk. `a`
retries its failed jobs (two retries) and allows one failed job.

It runs applies in-process (`Sprunner`, CliRunner) or as subprocesses (to kill them, to
run two hosts at once), keeps every report any apply wrote, and reads the state as the
next apply would (committed rows, without a lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from starlette.types import ASGIApp, Receive, Scope, Send

from sprunner.emulator.server import EmulatorHandle
from sprunner.jobfile.load import load
from sprunner.jobfile.model import DesiredCollection
from sprunner.settings import Selection
from sprunner.state import Entry, Hasher, State, StateStore
from tests.e2e.apply_helpers import Sprunner, check_report
from tests.e2e.emulator_helpers import PREFIX
from tests.e2e.subprocess_helpers import DEADLINE, wait_served
from tests.postgres import PostgresServer

FOLDERS = {"a": "a", "b": "a", "c": "b"}  # each managed name's folder (names never move)
RETRIED = "a"  # the collection that retries its failed jobs
RESULTS_SIZE = 8 * 1024 * 1024  # the results file system: far more than a history writes
PATHS = (("a",), ("b",), ("a", "b"))  # what an apply may be given


class ListingBarrier:
    """Once armed for `count` applies, holds each one's first listing until all have
    listed: they have all loaded the state and none has acted, as when pods start together
    (without it, a host started late on a loaded machine is a later apply, not one at the
    same time). As tests/e2e/test_many_hosts.py's, but armed per step."""

    def __init__(self) -> None:
        self.count = 0
        self.arrived = 0
        self.all_in: asyncio.Event | None = None

    def arm(self, count: int) -> None:
        self.count, self.arrived, self.all_in = count, 0, None

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def held(scope: Scope, receive: Receive, send: Send) -> None:
            listing = scope["type"] == "http" and scope["method"] == "GET"
            if listing and scope["path"] == PREFIX and not scope["query_string"]:
                await self._arrive()
            await app(scope, receive, send)

        return held

    async def _arrive(self) -> None:
        if self.arrived >= self.count:
            return
        if self.all_in is None:
            self.all_in = asyncio.Event()
        self.arrived += 1
        if self.arrived == self.count:
            self.all_in.set()
        with contextlib.suppress(asyncio.TimeoutError):  # a host died first: go on
            await asyncio.wait_for(self.all_in.wait(), DEADLINE)


@dataclass
class Spawned:
    """An apply in its own process, as a cron job or a pod runs it."""

    process: subprocess.Popen[str]
    report: Path
    output: str = ""

    def finish(self, signum: signal.Signals | None = None) -> int:
        if signum is not None and self.process.poll() is None:
            self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=DEADLINE * 3)
        self.output = out + err
        return self.process.returncode


@dataclass
class World:
    emulator: EmulatorHandle
    workdir: Path
    server: PostgresServer | None  # None: the SQLite state directory
    state_url: str | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    spawned: int = 0
    mounted: bool = False  # results/ is a tmpfs of its own (a disk that can be filled)

    def __post_init__(self) -> None:
        self.sprunner = Sprunner(self.emulator, self.workdir / "state", self.workdir)
        if self.server is not None:
            self.state_url = self.server.create_database()
        for folder in set(FOLDERS.values()):
            (self.workdir / folder).mkdir()
        self.results.mkdir()
        if os.geteuid() == 0:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={RESULTS_SIZE}", "tmpfs", self.results],
                capture_output=True,
            )
            self.mounted = done.returncode == 0

    @property
    def results(self) -> Path:
        return self.workdir / "results"

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", self.results], capture_output=True)
            self.mounted = False

    def fill_results(self) -> None:
        """The results disk full: a filler file takes every block left."""
        assert self.mounted, "never fill a disk that is not the results' own tmpfs"
        filler = (self.results / "filler").open("wb", buffering=0)
        with filler, contextlib.suppress(OSError):
            while True:
                filler.write(bytes(65536))

    def free_results(self) -> None:
        (self.results / "filler").unlink(missing_ok=True)

    def published(self) -> list[tuple[str, str, Path]]:
        """Every published results file: (collection, run id, data file), by its manifest."""
        found = []
        for manifest in sorted(self.results.glob("collection=*/date=*/_*.manifest.json")):
            collection = manifest.parent.parent.name.split("=", 1)[1]
            run_id = manifest.name[1:].split(".", 1)[0]
            found.append((collection, run_id, manifest.parent / f"{run_id}.jsonl.gz"))
        return found

    def partial_files(self, names: set[str]) -> list[Path]:
        """Staging files (`.part`, `.build`) of the collections `names` in results/."""
        return [
            path
            for name in names
            for path in self.results.glob(f"collection={name}/**/*")
            if path.name.endswith((".part", ".build"))
        ]

    @property
    def engine_args(self) -> tuple[str, ...]:
        return () if self.state_url is None else ("--state-url", self.state_url)

    # -- job files -------------------------------------------------------------------------
    def write_jobs(self, desired: dict[str, tuple[list[dict[str, Any]], dict[str, str]]]) -> None:
        """One job file per folder: `name -> (requests, run policy)`."""
        for folder in set(FOLDERS.values()):
            collections = [
                {
                    "name": name,
                    "requests": requests,
                    "run": {"poll_interval": "0.05s", **run, **self._retrying(name)},
                    "results": {"to": str(self.results)},
                }
                for name, (requests, run) in desired.items()
                if FOLDERS[name] == folder
            ]
            document = {"version": 1, "collections": collections}
            (self.workdir / folder / "jobs.yaml").write_text(yaml.safe_dump(document))

    @staticmethod
    def _retrying(name: str) -> dict[str, Any]:
        return {"retry": {"attempts": 2}, "max_failed": 1} if name == RETRIED else {}

    def loaded(self) -> dict[str, DesiredCollection]:
        """The collections as sprunner loads them now (for their keyed fingerprints)."""
        paths = tuple(self.workdir / f for f in sorted(set(FOLDERS.values())))
        return {c.name: c for c in load(Selection(paths=paths)).collections}

    @property
    def hasher(self) -> Hasher:
        return Hasher.from_api_key(self.emulator.api_key)

    # -- the state, as the next apply reads it ---------------------------------------------
    def store(self) -> StateStore:
        if self.state_url is None:
            return State(self.sprunner.state_dir, self.emulator.url, persist=False)
        from sprunner.state.postgres import PostgresState

        return PostgresState.connect(self.state_url, self.emulator.url, key=None)

    def entries(self) -> dict[str, Entry]:
        store = self.store()
        try:
            return dict(store.entries())
        finally:
            store.close()

    def lose_state(self) -> None:
        if self.server is None:
            import shutil

            shutil.rmtree(self.sprunner.state_dir, ignore_errors=True)
        else:
            self.state_url = self.server.create_database()  # a new, empty database

    # -- applies ---------------------------------------------------------------------------
    def apply(self, paths: tuple[str, ...], *args: str) -> tuple[int, str, dict[str, Any]]:
        """An apply in this process (CliRunner), from the work directory."""
        report = self.workdir / "report.json"
        report.unlink(missing_ok=True)
        cwd = os.getcwd()
        os.chdir(self.workdir)
        try:
            result = self.sprunner(
                "apply", *paths, "--report", str(report), *args, *self.engine_args
            )
        finally:
            os.chdir(cwd)
        document = check_report(report)
        self.reports.append(document)
        return result.exit_code, result.output, document

    def spawn(
        self, paths: tuple[str, ...], *args: str, env: dict[str, str] | None = None
    ) -> Spawned:
        self.spawned += 1
        report = self.workdir / f"spawned-{self.spawned}.json"
        env = {
            **os.environ,
            "SCRAPINGPROS_API_KEY": self.emulator.api_key,
            "PYTHONPATH": os.pathsep.join(sys.path),
            **(env or {}),
        }
        command = [sys.executable, "-m", "sprunner", "--api-url", self.emulator.url]
        command += ["--state-dir", str(self.sprunner.state_dir), *self.engine_args]
        process = subprocess.Popen(
            [*command, "apply", *paths, "--report", str(report), *args],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Spawned(process, report)

    def ended(self, spawned: Spawned) -> None:
        """A spawned apply is over: its report (if it wrote one) is kept, and the calls it
        sent before it died are served before anything else happens."""
        if spawned.report.exists():
            self.reports.append(check_report(spawned.report))
        wait_served(self.sprunner)

    def wait(self, predicate: Callable[[], bool], spawned: Spawned) -> bool:
        """Poll `predicate` until it holds (True) or the apply ends first (False)."""
        import time

        deadline = time.monotonic() + DEADLINE
        while not predicate():
            if spawned.process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def reported_runs(self) -> set[str]:
        """Every run id any report named: first runs, and runs in flight."""
        return {
            c["run"]["run_id"]
            for report in self.reports
            for c in report["collections"]
            if c.get("run") and c["run"].get("run_id")
        }


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
