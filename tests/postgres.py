"""A real PostgreSQL server for the tests, started with `initdb` + `pg_ctl` in a temp dir.

The server listens on a free loopback port and a private socket folder, with fsync off
(the tests check behaviour, not the disk). `initdb` refuses to run as root, so as root it
runs as the `postgres` user (`runuser`), owning its temporary folder.

When no server can be started, the tests that need one are skipped with the reason; with
CI=true they fail instead, so a CI machine that lost PostgreSQL cannot pass by skipping.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT = 60  # seconds: initdb and the first start are slow on a loaded machine


@dataclass(frozen=True)
class PostgresServer:
    port: int
    user: str = "postgres"
    folder: Path | None = None  # data, sockets and log: for `restart`

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self) -> None:
        """Stop the server (ending every session, as a crash or failover does) and start it
        again on the same port: what an apply sees when its database restarts mid-apply."""
        assert self.folder is not None
        _run(_as_owner([*_pg_ctl(self.folder, self.port), "-m", "fast", "restart"]))


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _why_not() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    if _binary("initdb") is None or _binary("pg_ctl") is None:
        return "initdb / pg_ctl not found (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run initdb as"
    return None


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=START_TIMEOUT)


def _start(folder: Path) -> PostgresServer:
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (folder, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    initdb = [_binary("initdb") or "", "-D", str(data), "-U", "postgres", "-A", "trust"]
    _run(_as_owner([*initdb, "--no-sync", "-E", "UTF8"]))
    _run(_as_owner([*_pg_ctl(folder, port), "start"]))
    return PostgresServer(port, folder=folder)


def _pg_ctl(folder: Path, port: int) -> list[str]:
    options = f"-p {port} -k {folder / 'sockets'} -c listen_addresses=127.0.0.1 -c fsync=off"
    data, log = str(folder / "data"), str(folder / "log")
    return [_binary("pg_ctl") or "", "-D", data, "-o", options, "-w", "-t", "60", "-l", log]


def _stop(folder: Path) -> None:
    with contextlib.suppress(Exception):
        stop = [_binary("pg_ctl") or "", "-D", str(folder / "data"), "-m", "immediate", "stop"]
        _run(_as_owner(stop))
    shutil.rmtree(folder, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required on CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server for the duration; skip (or, on CI, fail) when none can start."""
    reason = _why_not()
    if reason is not None:
        _unavailable(reason)
    # Not under pytest's tmp_path: its parents are private to root, closed to `postgres`.
    # /tmp itself, whatever TMPDIR says: the `postgres` user must be able to reach it.
    root = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
    folder = Path(tempfile.mkdtemp(prefix="sprunner-pg-", dir=root))
    try:
        try:
            server = _start(folder)
        except (OSError, subprocess.SubprocessError) as e:
            detail = getattr(e, "stderr", None) or str(e)
            log = folder / "log"
            if log.exists():
                detail += "\n" + log.read_text(errors="replace")[-2000:]
            _unavailable(f"it did not start: {detail}")
        yield server
    finally:
        _stop(folder)
