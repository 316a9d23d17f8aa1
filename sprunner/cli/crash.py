"""A bug in sprunner (an unexpected exception): the traceback goes to a crash log, never to
the terminal, and the command exits 70 with one line naming the log.

The log is written in the state directory (a temporary directory when that one cannot be
written), through the command's redactor: a traceback's message may quote an env() value
or the API key.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from pathlib import Path

from sprunner.util.atomic import write_atomically
from sprunner.util.redact import Redactor


def write_crash_log(error: BaseException, *, state_dir: Path, redactor: Redactor) -> Path:
    """Write the traceback of `error` (redacted) and return where it went."""
    text = redactor.redact("".join(traceback.format_exception(error)))
    name = f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 1_000_000:06d}.log"
    for directory in (state_dir, Path(tempfile.gettempdir())):
        path = directory / name
        try:
            write_atomically(path, text, sync=False)
        except OSError:
            continue
        return path
    raise OSError("no directory to write the crash log into")  # both failed: very rare
