"""A writer killed with SIGKILL mid-stream resumes from its last journaled position.

A real process, a real kill: whatever the kill leaves beyond the journaled position
(half a gzip member, rows not committed) is cut away, and the file completes with every
row once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sprunner.results.layout import Format, result_paths
from sprunner.results.writer import ResultWriter, WriterPosition
from tests.unit.results.helpers import read_rows

WRITER = """
import json, sys
from sprunner.results.layout import result_paths
from sprunner.results.writer import ResultWriter
to, fmt, journal = sys.argv[1:4]
paths = result_paths(to, collection="shop", run_id="run-1", started=0.0, format=fmt)
writer = ResultWriter(paths, flush_bytes=3000)
n = 0
while True:  # until killed
    for _ in range(7):
        writer.write({"job_id": f"j{n:06d}", "html": "x" * (n % 900)})
        n += 1
    position = writer.commit()
    with open(journal, "a") as handle:  # the caller's journal: appended after each commit
        handle.write(json.dumps([position.lines, position.bytes]) + "\\n")
        handle.flush()
"""


def _last_journaled(journal: Path) -> list[int] | None:
    lines = journal.read_text().splitlines() if journal.exists() else []
    complete = [line for line in lines if line.endswith("]")]
    return json.loads(complete[-1]) if complete else None


@pytest.mark.parametrize("format", ["jsonl.gz", "jsonl", "parquet"])
def test_resume_after_sigkill(tmp_path: Path, format: Format) -> None:
    journal = tmp_path / "journal"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "out"), format, str(journal)], env=env
    )
    try:
        deadline = time.monotonic() + 60
        while (last := _last_journaled(journal)) is None or last[0] < 500:
            assert time.monotonic() < deadline, "the writer never got going"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    lines, size = _last_journaled(journal) or [0, 0]

    paths = result_paths(
        str(tmp_path / "out"), collection="shop", run_id="run-1", started=0.0, format=format
    )
    assert not Path(paths.data).exists()
    writer = ResultWriter(paths, resume=WriterPosition(lines=lines, bytes=size))
    for n in range(lines, lines + 10):
        writer.write({"job_id": f"j{n:06d}", "html": "x" * (n % 900)})
    writer.publish({})

    ids = [row["job_id"] for row in read_rows(Path(paths.data), format)]
    assert ids == [f"j{n:06d}" for n in range(lines + 10)]
