"""What `plan` and `apply` share: the API key, the client, and the `--local` emulator.

The key is read here and nowhere else, never from a command-line value (it would show in
`ps` and shell history): from the file `--api-key-file` names (or SCRAPINGPROS_API_KEY_FILE,
the `*_FILE` convention of Docker and Kubernetes secrets), else from SCRAPINGPROS_API_KEY.
Both variables at once are an error, as in the official Docker images: which one wins
would be a guess. It is registered with the redactor at once so it can never be printed;
no message about a key file quotes its content.

A key file open to others gets a warning, by OpenSSH's rule for private keys: a file of
ours must not be open to its group or to others; a file someone else owns (a Kubernetes
Secret is root's, mode 0440 with our group) only must not be readable by every user.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sprunner.errors import UsageError
from sprunner.settings import GlobalOptions
from sprunner.ui import Output

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.api.models import CollectionRef

KEY_VARIABLE = "SCRAPINGPROS_API_KEY"
KEY_FILE_VARIABLE = "SCRAPINGPROS_API_KEY_FILE"
# A key is short; more than this is the wrong file (or /dev/zero), never read to its end.
MAX_KEY_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Target:
    """The API to talk to, with the key and the state directory that belong to it."""

    api_url: str
    api_key: str
    state_dir: Path
    local: bool = False

    def __repr__(self) -> str:  # never show the key
        return f"Target(api_url={self.api_url!r}, state_dir={self.state_dir!r})"


def read_api_key(options: GlobalOptions, output: Output) -> str:
    """The key, from the key file or the environment; a UsageError (exit 2, nothing sent)
    when there is none, the file is missing, empty or unreadable, or both variables are set."""
    path = options.api_key_file
    from_environment = os.environ.get(KEY_VARIABLE, "").strip()
    if path is not None and from_environment and os.environ.get(KEY_FILE_VARIABLE) == str(path):
        raise UsageError(f"both {KEY_VARIABLE} and {KEY_FILE_VARIABLE} are set: set only one")
    if path is not None:
        key = _read_key_file(path, output)
    else:
        key = from_environment
        if not key:
            raise UsageError(
                f"no API key: set {KEY_VARIABLE}, or {KEY_FILE_VARIABLE} or --api-key-file "
                "to a file that holds it (or try the demo with --local)"
            )
    output.add_secrets([key])
    if any(c.isspace() or not c.isprintable() for c in key):
        where = f"the API key file {path}" if path is not None else KEY_VARIABLE
        raise UsageError(f"{where} holds more than the key: spaces, lines or control characters")
    return key


def _read_key_file(path: Path, output: Output) -> str:
    name = f"the API key file {path}"
    try:
        with path.open("rb") as file:  # a FIFO too: --api-key-file <(pass show key)
            info = os.fstat(file.fileno())
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{name} does not exist") from None
    except PermissionError:
        raise UsageError(f"cannot read {name}: permission denied to uid {os.getuid()}") from None
    except OSError as e:
        raise UsageError(f"cannot read {name}: {e.strerror or e}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise UsageError(f"{name} is larger than {MAX_KEY_FILE_BYTES:,} bytes: not a key")
    try:
        key = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{name} is not UTF-8 text") from None
    if not key:
        raise UsageError(f"{name} is empty")
    exposure = _exposure(info)
    if exposure is not None:
        output.warn(f"{name} is {exposure}: anyone who can read it can spend your credits")
    return key


def _exposure(info: os.stat_result) -> str | None:
    """How a regular key file is open to others, or None (see the module docstring)."""
    if not stat.S_ISREG(info.st_mode):
        return None
    mode = stat.S_IMODE(info.st_mode)
    if mode & stat.S_IROTH:
        return f"readable by every user (mode {mode:04o}; chmod o-r)"
    if info.st_uid == os.getuid() and mode & 0o077:
        return f"open to its group or others (mode {mode:04o}; chmod 600)"
    return None


@contextlib.contextmanager
def target(options: GlobalOptions, output: Output, *, local: bool) -> Iterator[Target]:
    """The real API, or with `local` a fresh in-process emulator in simulate mode.

    A local emulator starts empty every time, so its state lives in a temporary directory:
    ids recorded against one emulator mean nothing to the next.
    """
    if not local:
        yield Target(options.api_url, read_api_key(options, output), options.state_dir)
        return
    from sprunner.emulator.server import running_emulator

    output.info("starting a local emulator (simulate mode): nothing leaves this machine")
    with (
        running_emulator(mode="simulate") as emulator,
        tempfile.TemporaryDirectory(prefix="sprunner-local-") as state_dir,
    ):
        output.add_secrets([emulator.api_key])
        yield Target(emulator.url, emulator.api_key, Path(state_dir), local=True)


async def list_remote(client: ApiClient) -> list[CollectionRef]:
    """The remote list: the first call of plan and apply. Failing it, nothing can be done."""
    from sprunner.api.errors import ApiError, ApiUnusableError, UnreachableError

    try:
        return await client.list_collections()
    except ApiUnusableError:
        raise
    except ApiError as error:
        # Without the remote list nothing can be reconciled safely: exit 3, not 1.
        raise UnreachableError(
            f"the API cannot be used: {error}", call="list collections"
        ) from error
