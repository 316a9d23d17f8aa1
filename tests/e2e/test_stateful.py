"""A stateful model test: random histories of edits, remote meddling, faults, kills, a store
that goes away and two hosts, with every SPEC §10 promise checked after every step.

A hypothesis `RuleBasedStateMachine` keeps a model of the job files (two folders, `a/`
declares `a` and `b`, `b/` declares `c`: names → requests and run policy) and of what other
people made remotely, and drives one emulator and one state store, a real SQLite file or a
real PostgreSQL database (drawn per history), through random sequences of:

- job-file edits: add, remove or change a collection (requests, `when`, `overlap`);
- someone else: create an unmanaged collection (twice with one name makes a duplicate),
  delete a managed one, edit a managed collection's requests behind sprunner's back;
- faults armed for the next apply (drop-after / error-after on create / update / run),
  with the Idempotency-Key honoured or ignored;
- interruptions: an apply in a subprocess stopped by SIGKILL, SIGTERM or SIGINT after a
  random number of API calls; an edit made while a run is in flight, then a SIGKILL;
  losing the state;
- the store going away mid-apply (PostgreSQL restarted; the SQLite file's disk full);
- two hosts: two applies at once on one PostgreSQL state;
- applies in-process, of one folder or both, mostly `--no-run`, sometimes with runs,
  sometimes with `--prune`; `plan` of one folder.

- results: every collection delivers its results files (`a` retries its failed jobs: its
  page 4 always fails, its page 5 fails once); an apply killed at a step of a publication
  (`SPRUNNER_KILL_AT`, sprunner/killpoints.py); a full results disk during an apply.

Checked after every step, one invariant per SPEC §10 promise (named after it): nothing is
created twice, nothing unmanaged is touched, one lifecycle (every run the API started is
recorded or pending in the state), a change is never lost, prune is scoped, every run the
API started is reported, data is never lost or wrong (each published file has one line per
request of its run with its final status and attempts; no staging file outlives a clean
apply of its collection). After every apply that was not interrupted: every declared
collection exists exactly once with exactly the rendered requests, no collection was run
twice, a run left in flight was adopted, and `--prune` removed what it should.

The API returns no request lists, so an edit made behind sprunner's back is invisible until
the job file changes that collection (or the state is lost): the model marks such a
collection as drifted and checks only its count until a report says it was written again.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sprunner.emulator.server import running_emulator
from sprunner.state import Entry
from sprunner.util.killpoints import ENV as KILL_AT
from tests.e2e.history import FOLDERS, PATHS, RETRIED, ListingBarrier, Spawned, World
from tests.e2e.results_helpers import manifest_of, read_rows
from tests.e2e.subprocess_helpers import fill_the_state_disk
from tests.postgres import PostgresServer

MANAGED = tuple(FOLDERS)  # names the job files may declare (few: histories revisit them)
UNMANAGED = ("x", "y")  # names only someone else uses: never in a job file
RUN_SECONDS = 0.1  # how long a run takes; longer while an apply is to be interrupted
# The steps of a publication (results/publication.py) and of a retried collection's
# (runs/retry.py, retryledger.py, retryresults.py) where an apply may be killed.
KILL_POINTS = ("publish.built", "publish.recorded", "publish.data", "publish.manifest")
KILL_POINTS += ("publish.finished", "retry.phase", "retry.ledger:1", "retry.settled:1")
KILL_POINTS += ("run.finished:1", "retry.ledger:4", "retry.settled:2", "retry.ledger:9")


SEEN: Counter[str] = Counter()  # what the histories went through: printed at the end


def event(text: str) -> None:
    hypothesis_event(text)
    SEEN[text] += 1


def counted(rule_function: Any) -> Any:
    """Count each run of a rule in SEEN (under `@rule`, which keeps the signature)."""

    @functools.wraps(rule_function)
    def counting(self: Any, *args: Any, **data: Any) -> Any:
        SEEN[rule_function.__name__] += 1
        return rule_function(self, *args, **data)

    return counting


def _failing(name: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The retried collection's page 4 always fails and its page 5 fails once (per URL,
    across the emulator's runs: simulate mode), so its runs have jobs to retry."""
    if name != RETRIED:
        return requests
    words = {"/4": "/4-fail", "/5": "/5-flaky"}
    return [{**r, "url": r["url"][:-2] + words.get(r["url"][-2:], r["url"][-2:])} for r in requests]


def _requests(pages: list[int], size: int, markdown: list[bool]) -> list[dict[str, Any]]:
    return [
        {"url": f"https://site.example/{page}", **({"format": "markdown"} if md else {})}
        for page, md in zip(pages[:size], markdown, strict=False)
    ]


# 1 to 4 distinct pages in any order, some as markdown: drawn without a uniqueness filter.
requests_strategy = st.builds(
    _requests,
    st.permutations(range(6)),
    st.integers(1, 4),
    st.lists(st.booleans(), min_size=4, max_size=4),
)
policies = st.fixed_dictionaries(
    {"overlap": st.sampled_from(["skip", "allow"]), "when": st.sampled_from(["always", "changed"])}
)
paths_strategy = st.sampled_from(PATHS)


def _superseded_failure(collection: dict[str, Any]) -> bool:
    """An adopted run started with content the job file no longer has: its failed jobs
    match no request of today's file, so they are reported, not retried (SPEC §8), and
    may fail `max_failed`; the new content's run follows in a later apply."""
    run = collection.get("run") or {}
    final = run.get("final") or {}
    return bool(run.get("adopted")) and int(final.get("unmatched") or 0) > 0


class Applies(RuleBasedStateMachine):
    server: PostgresServer | None = None  # set by the test: one server per test process

    def __init__(self) -> None:
        super().__init__()
        self._stack = contextlib.ExitStack()
        self.workdir = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        self.barrier = ListingBarrier()
        self.emulator = self._stack.enter_context(
            running_emulator(mode="simulate", run_seconds=RUN_SECONDS, wrap=self.barrier.wrap)
        )
        self.world: World | None = None
        self.desired: dict[str, tuple[list[dict[str, Any]], dict[str, str]]] = {}
        # Collections someone else made: id → (name, requests); sprunner must never touch them.
        self.theirs: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self.drifted: set[str] = set()
        # A run may have run drifted content under the declared content's record: `a change
        # is never lost` cannot hold for these names until the state is lost (and rebuilt).
        self.tainted: set[str] = set()
        self.names: dict[str, str] = {}  # every collection id ever seen → its name
        self.seen: set[str] = set()  # the managed collection ids at the last check
        self.deleted_by_others: set[str] = set()
        self.prunable: set[str] = set()  # names the step's applies may delete
        self.must_be_reported: set[str] = set()
        self.exempt: set[str] = set()  # runs no report can name (see `_exempt_runs`)
        self.lost: set[str] = set()  # runs started before the state was lost: unknown to it

    def teardown(self) -> None:
        if self.world is not None:
            self.world.close()
        self._stack.close()

    # --- helpers ------------------------------------------------------------------------
    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    @property
    def engine(self) -> Any:
        return self.emulator.engine

    def _write_jobs(self) -> None:
        self.w.write_jobs(self.desired)

    def _remote(self, name: str) -> list[Any]:
        return [c for c in list(self.engine.collections.values()) if c.name == name]

    def _runs_recorded(self) -> set[str]:
        return {
            e.inflight.run_id for e in self.w.entries().values() if e.inflight and e.inflight.run_id
        }

    def _in(self, paths: tuple[str, ...]) -> list[str]:
        return [name for name in self.desired if FOLDERS[name] in paths]

    def _exempt_runs(self) -> None:
        """After a SIGKILL: a run the killed apply saw to its end left no record to adopt,
        and that apply wrote no report (SPEC §4 promises the runs in flight and the starts
        pending, which the next apply adopts and reports)."""
        entries = self.w.entries().values()
        inflight = {e.inflight.run_id for e in entries if e.inflight and e.inflight.run_id}
        pending = {e.id for e in entries if e.inflight and e.inflight.run_id is None}
        self.exempt |= {
            r.run_id
            for r in list(self.engine.runs.values())
            if r.run_id not in inflight and r.collection_id not in pending
        }

    # --- job-file edits -----------------------------------------------------------------
    @rule(name=st.sampled_from(MANAGED), requests=requests_strategy, policy=policies)
    @counted
    def declare(self, name: str, requests: list[dict[str, Any]], policy: dict[str, str]) -> None:
        """Add a collection, or change its requests and run policy."""
        self.desired[name] = (_failing(name, requests), policy)
        self._write_jobs()

    @rule(name=st.sampled_from(MANAGED))
    @counted
    def undeclare(self, name: str) -> None:
        self.desired.pop(name, None)
        self._write_jobs()

    @initialize(
        postgres=st.booleans(), a=requests_strategy, b=requests_strategy, x=requests_strategy
    )
    @counted
    def first_apply(
        self,
        postgres: bool,
        a: list[dict[str, Any]],
        b: list[dict[str, Any]],
        x: list[dict[str, Any]],
    ) -> None:
        """A SQLite or a PostgreSQL state; two managed collections and someone else's."""
        server = self.server if postgres else None
        self.world = World(self.emulator, self.workdir, server)
        event(f"engine: {'postgres' if server else 'sqlite'}")
        self.someone_creates("x", x)
        self.desired.update(a=(_failing("a", a), {"overlap": "skip"}), b=(b, {"overlap": "allow"}))
        self._write_jobs()
        self.apply(run=False, prune=False, paths=("a", "b"))

    # --- someone else -------------------------------------------------------------------
    @rule(name=st.sampled_from(UNMANAGED), requests=requests_strategy)
    @counted
    def someone_creates(self, name: str, requests: list[dict[str, Any]]) -> None:
        answer = self.engine.create_collection({"name": name, "requests": requests})
        self.theirs[answer["id"]] = (name, requests)

    @rule(name=st.sampled_from(MANAGED))
    @counted
    def someone_deletes(self, name: str) -> None:
        for collection in self._remote(name):
            self.engine.delete_collection(collection.id)
            self.deleted_by_others.add(collection.id)
        # Not untainted: a run of the drifted content stays recorded as the declared one.
        self.drifted.discard(name)

    @rule(name=st.sampled_from(MANAGED), requests=requests_strategy)
    @counted
    def someone_edits(self, name: str, requests: list[dict[str, Any]]) -> None:
        for collection in self._remote(name):
            collection.requests = requests
            self.drifted.add(name)
            self.tainted.add(name)

    # --- faults and interruptions -------------------------------------------------------
    @rule(
        kinds=st.lists(st.sampled_from(["drop-after", "error-after"]), min_size=3, max_size=3),
        idempotency=st.booleans(),
    )
    @counted
    def arm_faults(self, kinds: list[str], idempotency: bool) -> None:
        """For the next apply only: one fault on the next create, PUT and run start each,
        on a deployment that may ignore the Idempotency-Key."""
        for kind, route in zip(kinds, ("create", "update", "run"), strict=True):
            self.emulator.faults.add(kind, route=route, times=1)
        if not idempotency:
            self.emulator.faults.add("no-idempotency")

    @rule(now=st.integers(0, 3))
    @counted
    def lose_state(self, now: int) -> None:
        """Losing the state: one draw in four (else it empties most histories' state)."""
        if now:
            return
        event("state lost")
        self.w.lose_state()
        self.tainted.clear()  # the next apply PUTs before it runs: the record is true again
        self.lost |= set(self.engine.runs)
        self.exempt |= self.lost

    def _stopped(self, spawned: Spawned, signum: signal.Signals) -> None:
        """Stop a spawned apply (unless it ended first) and check how it ended."""
        code = spawned.finish(signum)
        assert "Traceback" not in spawned.output, spawned.output
        event(f"interrupted apply: exit {code}")
        if code not in (130, 143):  # killed, or the signal came too late to matter
            assert code in (0, -signal.SIGKILL, -signal.SIGTERM), (code, spawned.output)
        if code == -signal.SIGKILL:
            self._exempt_runs()
        self.w.ended(spawned)
        if code in (130, 143):
            assert self.w.reports[-1]["interrupted"] is True
        self.emulator.faults.clear()
        self.engine.run_seconds = RUN_SECONDS

    @rule(
        point=st.one_of(st.integers(1, 6), st.just("a run recorded")),
        signum=st.sampled_from([signal.SIGKILL, signal.SIGTERM, signal.SIGINT]),
        paths=paths_strategy,
    )
    @counted
    def interrupted_apply(
        self, point: int | str, signum: signal.Signals, paths: tuple[str, ...]
    ) -> None:
        """An apply with runs, stopped after some calls or once a run id is recorded."""
        calls_before = sum(self.engine.calls.values())
        runs_before = self._runs_recorded()

        def reached() -> bool:
            if isinstance(point, int):
                return sum(self.engine.calls.values()) - calls_before >= point
            return bool(self._runs_recorded() - runs_before)

        self.engine.run_seconds = 1.0  # so that kills find runs in flight
        spawned = self.w.spawn(paths)
        self.w.wait(reached, spawned)
        self._stopped(spawned, signum)

    @rule(name=st.sampled_from(MANAGED), requests=requests_strategy)
    @counted
    def edit_while_a_run_is_in_flight_then_kill(
        self, name: str, requests: list[dict[str, Any]]
    ) -> None:
        """Issue #22 item 1: a run starts, the job file is edited, the apply is killed. The
        edit must stay pending until a run with the new content starts."""
        if name not in self.desired:
            self.declare(name, requests, {"overlap": "skip", "when": "changed"})
            return
        runs_before = self._runs_recorded()
        self.engine.run_seconds = 1.0
        spawned = self.w.spawn((FOLDERS[name],))
        if self.w.wait(lambda: bool(self._runs_recorded() - runs_before), spawned):
            event("edited while a run was in flight")
        self.desired[name] = (_failing(name, requests), self.desired[name][1])
        self._write_jobs()
        self._stopped(spawned, signal.SIGKILL)

    @rule(paths=paths_strategy)
    @counted
    def store_goes_away(self, paths: tuple[str, ...]) -> None:
        """The store is lost mid-apply: PostgreSQL restarts (every session ends), or the
        SQLite file's disk fills. The apply ends cleanly, says what it could not do, and
        the next apply finishes the work (the invariants say the rest)."""
        self.engine.run_seconds = 1.0
        # Run starts answered slowly: the store goes away while some are on their way.
        self.emulator.faults.add("slow", 0.4, route="run")
        starts = self.engine.calls["run"]
        spawned = self.w.spawn(paths)
        fired = self.w.wait(lambda: self.engine.calls["run"] > starts, spawned)  # a POST sent
        if self.w.server is not None:
            self.w.server.restart()
        elif spawned.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                fill_the_state_disk(spawned.process, self.w.sprunner.state_dir)
        code = spawned.finish()
        assert "Traceback" not in spawned.output, spawned.output
        assert code in (0, 1, 3), (code, spawned.output)
        event(f"store went away {'as a run started' if fired else 'after the apply'}: exit {code}")
        self.emulator.faults.clear()
        self.w.ended(spawned)
        self.engine.run_seconds = RUN_SECONDS

    @rule(point=st.sampled_from(KILL_POINTS), paths=paths_strategy)
    @counted
    def kill_at_publication(self, point: str, paths: tuple[str, ...]) -> None:
        """An apply with runs that kills itself (SIGKILL, no cleanup) at one step of a
        results publication, when it gets there; the next apply rolls it forward."""
        spawned = self.w.spawn(paths, env={KILL_AT: point})
        code = spawned.finish()
        assert "Traceback" not in spawned.output, spawned.output
        assert code in (0, -signal.SIGKILL), (code, spawned.output)
        event(f"killed at {point}" if code else "kill point not reached")
        if code == -signal.SIGKILL:
            self._exempt_runs()
        self.w.ended(spawned)

    @precondition(lambda self: self.world is not None and self.world.mounted)
    @rule(paths=paths_strategy)
    @counted
    def results_disk_full(self, paths: tuple[str, ...]) -> None:
        """An apply with runs while the results disk is full: the rows it could not write
        stay pending, every report says so, and a later apply with room finishes them."""
        self.w.fill_results()
        try:
            code, output, report = self.w.apply(paths)
        finally:
            self.w.free_results()
            self.emulator.faults.clear()
        assert "Traceback" not in output and code in (0, 1), (code, output)
        for collection in report["collections"]:
            if collection["ok"] is False:  # never a false "ok": it names what is pending
                assert collection.get("results_pending") or collection.get("error"), collection
        event(f"results disk full: exit {code}")

    @precondition(lambda self: self.world is not None and self.world.server is not None)
    @rule(run=st.booleans())
    @counted
    def two_hosts(self, run: bool) -> None:
        """Two applies at once on one PostgreSQL state (pods): each collection is created
        once and run at most once between them; each is done by one of them."""
        runs_before = Counter(r.collection_id for r in list(self.engine.runs.values()))
        candidates = set(self.engine.runs)
        args = () if run else ("--no-run",)
        self.barrier.arm(2)
        hosts = [self.w.spawn(("a", "b"), *args) for _ in range(2)]
        codes = [host.finish() for host in hosts]
        self.barrier.arm(0)
        for host, code in zip(hosts, codes, strict=True):
            assert "Traceback" not in host.output and code in (0, 1), (code, host.output)
            self.w.ended(host)
        self._check_created(("a", "b"))
        runs_after = Counter(r.collection_id for r in list(self.engine.runs.values()))
        for name in self.desired:
            for collection in self._remote(name):
                assert runs_after[collection.id] - runs_before[collection.id] <= 1, name
        if run and codes == [0, 0]:
            self._settle_reports(candidates, ("a", "b"))

    # --- the apply ----------------------------------------------------------------------
    @rule(run=st.booleans(), prune=st.booleans(), paths=paths_strategy)
    @counted
    def apply(self, run: bool, prune: bool, paths: tuple[str, ...]) -> None:
        state_before = self.w.entries()
        runs_before = Counter(r.collection_id for r in list(self.engine.runs.values()))
        candidates = set(self.engine.runs)
        if prune:  # created from a file under `paths` that no longer declares them
            self.prunable |= {n for n in MANAGED if n not in self.desired and FOLDERS[n] in paths}
        args = (*(() if run else ("--no-run",)), *(("--prune",) if prune else ()))
        try:
            code, output, report = self.w.apply(paths, *args)
        finally:
            self.emulator.faults.clear()
        failing = [c for c in report["collections"] if not c["ok"]]
        if code == 1 and failing and all(map(_superseded_failure, failing)):
            event("an adopted run of older content failed what it could not retry: exit 1")
        else:
            assert code == 0, output
            assert report["ok"] is True
        for collection in report["collections"]:
            if collection["action"] in ("created", "updated"):
                if collection["name"] in self.drifted:
                    event("drift written over")
                self.drifted.discard(collection["name"])
        self._check_created(paths)
        if run:
            self._check_runs(report, state_before, runs_before, paths)
            self._settle_reports(candidates, paths)
            # SPEC §10: no staging file outlives the apply that finishes its run.
            assert not self.w.partial_files(set(self._in(paths))), self.w.partial_files(
                set(MANAGED)
            )
        if prune:
            self._check_pruned(state_before, paths)

    @rule(paths=paths_strategy)
    @counted
    def apply_with_runs(self, paths: tuple[str, ...]) -> None:
        """Runs are where in-flight work is left behind: give them their own rule."""
        self.apply(run=True, prune=False, paths=paths)

    @rule(folder=st.sampled_from(sorted(set(FOLDERS.values()))))
    @counted
    def plan_of_one_folder(self, folder: str) -> None:
        """SPEC §10: `plan` of one folder says nothing about what other folders declare."""
        cwd = os.getcwd()
        os.chdir(self.workdir)
        try:
            result = self.w.sprunner("plan", folder, "--json", "--prune", *self.w.engine_args)
        finally:
            os.chdir(cwd)
        assert result.exit_code in (0, 1, 10), result.output
        named = {c["name"] for c in json.loads(result.stdout)["collections"]}
        elsewhere = {n for n in MANAGED if FOLDERS[n] != folder}
        assert not named & elsewhere, (folder, named)

    def _check_created(self, paths: tuple[str, ...]) -> None:
        """Every declared collection under `paths` exists once, with the rendered requests."""
        for name in self._in(paths):
            remote = [c.requests for c in self._remote(name)]
            assert len(remote) == 1, (name, remote)
            if name not in self.drifted:
                assert remote[0] == self.desired[name][0], (name, remote[0])

    def _check_runs(
        self,
        report: dict[str, Any],
        state_before: dict[str, Entry],
        runs_before: Counter[str],
        paths: tuple[str, ...],
    ) -> None:
        by_name = {c["name"]: c for c in report["collections"]}
        runs_after = Counter(r.collection_id for r in list(self.engine.runs.values()))
        for name in self._in(paths):
            (collection_id,) = [c.id for c in self._remote(name)]
            assert runs_after[collection_id] - runs_before[collection_id] <= 1, name
            run = by_name[name]["run"]
            assert run["status"] in ("completed", "skipped"), (name, run)
            if run["status"] == "skipped":
                assert "nothing changed" in run["reason"], (name, run)
            entry = state_before.get(name)
            inflight = entry.inflight if entry is not None else None
            if inflight is None or entry is None or entry.id != collection_id:
                continue
            event("run left in flight" if inflight.run_id else "run start left pending")
            if inflight.run_id is not None:
                # Left in flight by an interrupted apply: adopted, never repeated.
                assert (run["run_id"], run["adopted"]) == (inflight.run_id, True), name
            else:
                since = [
                    r
                    for r in list(self.engine.runs.values())
                    if r.collection_id == collection_id and r.created_at >= inflight.started_at
                ]
                assert len(since) == 1, (name, since)

    def _check_pruned(self, state_before: dict[str, Entry], paths: tuple[str, ...]) -> None:
        for name, entry in state_before.items():
            if name in self.desired or not entry.created or name not in FOLDERS:
                continue
            if entry.file is not None and FOLDERS[name] in paths:
                event("pruned")
                assert entry.id not in self.engine.collections, name

    def _settle_reports(self, candidates: set[str], paths: tuple[str, ...]) -> None:
        """After a clean apply with runs over `paths`: every run that existed when it began,
        of a collection it applied and that still exists, is named in some report."""
        for run_id in candidates - self.exempt:
            run = self.engine.runs[run_id]
            collection = self.engine.collections.get(run.collection_id)
            if collection is not None and collection.name in self._in(paths):
                self.must_be_reported.add(run_id)

    # --- SPEC §10, after every step -----------------------------------------------------
    @invariant()
    def spec_section_10_holds(self) -> None:
        """Every promise, checked on one reading of the state and of the remote side."""
        self.nothing_is_created_twice()
        self.nothing_unmanaged_was_touched()
        self.prune_is_scoped()
        if self.world is None:
            return
        entries = self.w.entries()
        self.one_lifecycle_every_run_started_is_recorded(entries)
        self.a_change_is_never_lost(entries)
        self.every_run_the_api_started_is_reported()
        self.data_is_never_lost_or_wrong()

    def nothing_is_created_twice(self) -> None:
        names = Counter(c.name for c in list(self.engine.collections.values()))
        assert all(names[name] <= 1 for name in MANAGED), names

    def nothing_unmanaged_was_touched(self) -> None:
        for collection_id, (name, requests) in self.theirs.items():
            stored = self.engine.collections.get(collection_id)
            assert stored is not None, f"someone else's {name} ({collection_id}) was deleted"
            assert (stored.name, stored.requests) == (name, requests)

    def prune_is_scoped(self) -> None:
        """A managed collection goes only when someone else deletes it, or a --prune whose
        paths hold the file that declared it, which no longer does."""
        current = {c.id for c in list(self.engine.collections.values()) if c.name in MANAGED}
        for collection in list(self.engine.collections.values()):
            self.names[collection.id] = collection.name
        gone = self.seen - current - self.deleted_by_others
        for collection_id in gone:
            assert self.names[collection_id] in self.prunable, (
                self.names[collection_id],
                "deleted",
            )
        self.seen, self.prunable = current, set()

    def one_lifecycle_every_run_started_is_recorded(self, entries: dict[str, Entry]) -> None:
        """Each step is recorded before anything that depends on it is sent: the newest run
        of a collection the state knows is its last or in-flight run, or a pending start
        (or one from before the state was lost)."""
        for name, entry in entries.items():
            runs = [r for r in list(self.engine.runs.values()) if r.collection_id == entry.id]
            if not runs or not entry.id:
                continue
            newest = max(runs, key=lambda r: r.created_at)
            pending = entry.inflight is not None and entry.inflight.run_id is None
            known = newest.run_id in entry.known_run_ids or newest.run_id in self.lost
            assert known or pending, (name, newest.run_id, entry)

    def a_change_is_never_lost(self, entries: dict[str, Entry]) -> None:
        """A declared change stays pending until a run started with that content exists:
        when the state says the last started run ran the declared content, such a run is
        there (drift behind sprunner's back excepted: the API never shows it)."""
        hasher = self.w.hasher
        for name, desired in self.w.loaded().items():
            entry = entries.get(name)
            if entry is None or name in self.tainted or entry.started_fingerprint is None:
                continue
            if entry.started_fingerprint != hasher.fingerprint(desired):
                continue  # pending: a run will start with it
            content = [dict(q) for q in desired.requests]
            runs = list(self.engine.runs.values())
            with_it = [
                r for r in runs if self.names.get(r.collection_id) == name and r.requests == content
            ]
            assert with_it, f"{name}: recorded as run with its content, but no such run"

    def data_is_never_lost_or_wrong(self) -> None:
        """Each published file has exactly one line per request of its run, with the final
        status (after the run's retries) and the runs it took (`attempts`)."""
        for name, run_id, data in self.w.published():
            rows = read_rows(data)
            run = self.engine.runs[run_id]
            # Rows can be missing only when the API lost the run (someone deleted its
            # collection before its rows were drained): the manifest counts them.
            missing = 0  # a kill between the data and its manifest: rolled forward later
            with contextlib.suppress(FileNotFoundError):
                missing = int(manifest_of(data).get("missing") or 0)
            gone = run.collection_id not in self.engine.collections
            assert not missing or gone, (name, run_id, f"{missing} rows missing")
            assert len(rows) + missing == len(run.jobs), (name, run_id, len(rows), missing)
            keys = Counter((row["url"], row["custom_id"]) for row in rows)
            assert keys <= Counter((j.url, j.custom_id) for j in run.jobs), (name, keys)
            finals = self._final_outcomes(name, run)
            for row in rows:
                status, attempts = finals[(row["url"], row["custom_id"])]
                assert (row["status"], row["attempts"]) == (status, attempts), (name, row)

    def _final_outcomes(self, name: str, run: Any) -> dict[tuple[str, str | None], Any]:
        """Each request's last outcome and the runs it took: the run, then the runs of
        `<name>.retry` started after it and before the collection's next run."""
        runs = sorted(self.engine.runs.values(), key=lambda r: r.created_at)
        later = [r for r in runs if r.created_at > run.created_at]
        parents = {c.id for c in self.engine.collections.values() if c.name == name}
        parents.add(run.collection_id)
        end = next((r.created_at for r in later if r.collection_id in parents), float("inf"))
        retried = [r for r in later if r.created_at < end and self._named(r) == f"{name}.retry"]
        finals = {(j.url, j.custom_id): (j.outcome, 1) for j in run.jobs}
        for retry_run in retried:
            for job in retry_run.jobs:
                key = (job.url, job.custom_id)
                if key in finals:
                    finals[key] = (job.outcome, finals[key][1] + 1)
        return finals

    def _named(self, run: Any) -> str | None:
        collection = self.engine.collections.get(run.collection_id)
        return collection.name if collection is not None else self.names.get(run.collection_id)

    def every_run_the_api_started_is_reported(self) -> None:
        missing = self.must_be_reported - self.w.reported_runs()
        assert not missing, f"runs the API started that no report names: {missing}"


def test_random_histories(request: pytest.FixtureRequest) -> None:
    """About a minute on two loaded cores (derandomized in the suite: the same histories each
    run, the seed follows the source): each subprocess apply takes about 1.5 s under load,
    and they dominate. tests/stress/run_stateful.sh runs it 20 times beside a CPU burner,
    with new histories each time."""
    Applies.server = request.getfixturevalue("postgres")
    SEEN.clear()
    try:
        run_state_machine_as_test(Applies, settings=SETTINGS)
    finally:
        print("events:", dict(sorted(SEEN.items())))


SETTINGS = settings(
    max_examples=int(os.environ.get("SPRUNNER_HISTORIES", "6")),
    stateful_step_count=10,
    deadline=None,
    database=None,
    print_blob=True,
    # No explain phase: it traces every line of a failing history again, which took
    # minutes in CI. No shrinking in CI either: a failure that depends on timing may take
    # many minutes to shrink (a CI run was killed before it printed anything); the
    # history as found and its reproduce_failure blob are printed at once instead.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    + ([] if os.environ.get("CI") or os.environ.get("SPRUNNER_NO_SHRINK") else [Phase.shrink]),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # The suite's profile (tests/conftest.py): the same histories each run, new ones with
    # HYPOTHESIS_PROFILE=explore (tests/stress/run_stateful.sh).
    derandomize=settings.default.derandomize,
)
