"""Reading job files in worker processes, for `validate` (issue #17 point 4).

`validate` may read thousands of files, or files that expand to millions of requests, and
keeps only what each file says (problems, warnings, request counts). Files are read
independently (reader.py), so they can be read on every core and merged in file order by
load.py: the result is the same as reading them one after the other.

- Files are read here first. Workers start only once that has taken `SERIAL_SECONDS` of
  CPU with files left, so a small validate never pays for starting processes.
- Workers are forked (Linux only, and only from a process without other threads: a fork
  copies locks held by other threads): they inherit the imports and the compiled schema.
  They ignore SIGINT, which the parent handles; the parent stops them on any exit.
- Chunks of files go to the workers in order and their reads come back in order.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence

from sprunner.jobfile.reader import FileRead, FileReader, JobFile

SERIAL_SECONDS = 0.5
MAX_WORKERS = 4
_CHUNKS_PER_WORKER = 8  # enough to even out files of different sizes
_MAX_CHUNK = 64  # files: an interrupted validate waits for the chunks being read

_worker: dict[str, FileReader] = {}  # in a worker process: its reader


def default_workers() -> int:
    """One worker per core available to this process (at most MAX_WORKERS)."""
    if not sys.platform.startswith("linux"):
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


def read_files(jobs: Sequence[JobFile], cap: int, *, workers: int | None) -> Iterator[FileRead]:
    """Each file's read (requests counted, not kept), in the order of `jobs`."""
    workers = default_workers() if workers is None else workers
    reader = FileReader(cap, keep_requests=False)
    started = time.process_time()
    index = 0
    while index < len(jobs):
        yield reader.read(jobs[index])
        index += 1
        if (
            workers > 1
            and len(jobs) - index > 1
            and time.process_time() - started >= SERIAL_SECONDS
            and _can_fork()
        ):
            yield from _in_workers(jobs[index:], cap, workers)
            return


def _can_fork() -> bool:
    """No other thread: a fork copies the locks other threads hold, never their release."""
    return threading.active_count() == 1


def _in_workers(jobs: Sequence[JobFile], cap: int, workers: int) -> Iterator[FileRead]:
    # Imported here: only a long validate pays for them (plan and apply never do).
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    size = max(1, min(len(jobs) // (workers * _CHUNKS_PER_WORKER), _MAX_CHUNK))
    chunks = [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)),
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(cap,),
    )
    try:
        for reads in pool.map(_read_chunk, chunks):
            yield from reads
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(cap: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's to handle
    gc.disable()  # as in load(): millions of acyclic dicts, nothing cyclic to free
    _worker["reader"] = FileReader(cap, keep_requests=False)


def _read_chunk(jobs: list[JobFile]) -> list[FileRead]:
    reader = _worker["reader"]
    return [reader.read(job) for job in jobs]
