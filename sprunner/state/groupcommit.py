"""Group commit of the state journal: one fsync for every record written before it began.

An fsync per record cost about 2.5 ms of an apply's single thread per change (800 at 200
collections). While group commit is on (`Deferred`), a durable record is written and flushed
at once (a kill -9 loses nothing the OS has) and only *marked* for the disk; whoever is
about to rely on it awaits `sync()` before doing so (the apply: before every POST, whose
retry or adoption after a crash needs the records written before it). Records written in
the same event-loop tick, or while an fsync runs, share the next fsync: a caller whose
record was written before the running fsync began waits for that one, a later one for the
next. The fsync runs in a worker thread, so the event loop keeps serving answers.

Invariant: after `sync()` returns, every record written before the call is on the disk.
`sync_blocking()` gives the same without an event loop (end of apply, interruption).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    """fsync a file's contents (data written and flushed by any handle). Raises OSError."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Deferred:
    """The durable records of one journal not fsynced yet, and the fsync shared by them."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._written = 0  # durable records written
        self._synced = 0  # of those, how many are known to be on the disk
        self._running: asyncio.Future[None] | None = None
        self.fsyncs = 0

    def wrote(self) -> None:
        """A durable record was written and flushed; it reaches the disk with the next sync."""
        self._written += 1

    @property
    def pending(self) -> bool:
        return self._synced < self._written

    async def sync(self) -> None:
        """Return once every durable record written before this call is on the disk."""
        target = self._written
        while self._synced < target:
            if self._running is None:
                self._running = asyncio.ensure_future(self._fsync())
            # Shielded: a caller cancelled while waiting must not cancel the others' fsync.
            await asyncio.shield(self._running)

    async def _fsync(self) -> None:
        # Counted when the fsync begins, not when it was asked for: the records written by
        # the other tasks of this event-loop tick are flushed already and are covered too.
        upto = self._written
        try:
            await asyncio.to_thread(fsync_file, self._path)
            self.fsyncs += 1
            self._synced = max(self._synced, upto)
        finally:
            self._running = None

    def sync_blocking(self) -> None:
        """The same as `sync`, in the caller's thread (no event loop needed)."""
        if self.pending and self._path.exists():
            upto = self._written
            fsync_file(self._path)
            self.fsyncs += 1
            self._synced = max(self._synced, upto)
