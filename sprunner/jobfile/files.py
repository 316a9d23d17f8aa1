"""Reading job files and `lines()` files: regular files only, never more than a cap.

A name ending in `.yaml` may be a FIFO (reading blocks forever), a device such as
`/dev/zero` (its size reads 0, reading never ends), a symlink loop or a broken link.
`read_regular` refuses all of these with a reason, without ever blocking: the path is
checked with `stat` before it is opened (so no device is opened), opened non-blocking,
checked again on the open descriptor (no race), and read up to the cap plus one byte,
so a file that grows after the check is still refused. Nothing here raises anything but
`Refused`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class Refused(Exception):
    """The file cannot be read; `reason` says why, for a message that names the file."""

    def __init__(self, reason: str, *, unreadable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreadable = unreadable  # the OS refused (missing, loop, permission)


def too_large(size: int, limit: int) -> str:
    return f"the file is too large ({size:,} bytes; at most {limit:,})"


def _kind_problem(mode: int) -> str | None:
    for test, kind in _KINDS:
        if test(mode):
            return f"not a regular file: it is {kind}"
    return None if stat.S_ISREG(mode) else "not a regular file"


def _os_refusal(error: OSError) -> Refused:
    if error.errno == errno.ELOOP:
        return Refused("a symlink loop", unreadable=True)
    return Refused(str(error.strerror or error), unreadable=True)


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at `path` (symlinks followed), at most `limit` of them."""
    try:
        problem = _kind_problem(os.stat(path).st_mode)
        if problem:
            raise Refused(problem)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        fd = os.open(path, flags)
    except OSError as e:
        raise _os_refusal(e) from None
    try:
        info = os.fstat(fd)
        problem = _kind_problem(info.st_mode)  # swapped between stat and open
        if problem:
            raise Refused(problem)
        if info.st_size > limit:
            raise Refused(too_large(info.st_size, limit))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # grew after the size check
            raise Refused(too_large(size, limit))
        return b"".join(chunks)
    except OSError as e:
        raise _os_refusal(e) from None
    finally:
        os.close(fd)
