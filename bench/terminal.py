"""Running a command under a pseudo-terminal, and reading the screen it leaves.

`run_in_pty` gives the child a pty of a fixed size on stdin, stdout and stderr (so it sees
a terminal, as a person's shell would give it) and collects everything it writes.
`screen` replays that output on a minimal terminal model (text, `\\n`, `\\r`, cursor-up
`ESC[nF` / `ESC[nA`, erase `ESC[J` / `ESC[K`, colours ignored) and returns the lines left
on the screen and in the scrollback: what a person would see after the command ended.
Used by bench/bench_terminal.py and by the live-display tests.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass

_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


@dataclass(frozen=True)
class PtyRun:
    returncode: int
    output: str
    seconds: float


def run_in_pty(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    columns: int = 120,
    rows: int = 40,
    timeout: float = 600.0,
) -> PtyRun:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    start = time.perf_counter()
    process = subprocess.Popen(
        list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        returncode = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    seconds = time.perf_counter() - start
    return PtyRun(returncode, b"".join(chunks).decode("utf-8", "replace"), seconds)


def screen(output: str) -> list[str]:
    """The lines a terminal shows (scrollback included) after printing `output`."""
    lines: list[str] = [""]
    row = col = 0
    pos = 0
    text = output.replace("\r\n", "\n")
    while pos < len(text):
        match = _CSI.match(text, pos)
        if match:
            arg, code = match.group(1), match.group(2)
            n = int(arg) if arg.isdigit() else 1
            if code in "FA":
                row = max(0, row - n)
                col = 0 if code == "F" else col
            elif code == "J":
                lines[row] = lines[row][:col]
                del lines[row + 1 :]
            elif code == "K":
                lines[row] = lines[row][:col]
            pos = match.end()
            continue
        char = text[pos]
        pos += 1
        if char == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif char == "\r":
            col = 0
        elif char == "\x1b":
            continue
        else:
            line = lines[row]
            line = line.ljust(col)
            lines[row] = line[:col] + char + line[col + 1 :]
            col += 1
    while lines and lines[-1] == "":
        lines.pop()
    return lines
