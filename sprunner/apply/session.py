"""What `plan` and `apply` share: the API key, the client, the `--local` emulator, and
the lock an apply takes first.

The key is read here and nowhere else, never from a command-line value (it would show in
`ps` and shell history): from the file `--api-key-file` names (or SCRAPINGPROS_API_KEY_FILE,
the `*_FILE` convention of Docker and Kubernetes secrets), else from SCRAPINGPROS_API_KEY.
Both variables at once are an error, as in the official Docker images: which one wins
would be a guess. It is registered with the redactor at once so it can never be printed;
no message about a key file quotes its content.

A key file open to others gets a warning, by OpenSSH's rule for private keys: a file of
ours must not be open to its group or to others; a file someone else owns (a Kubernetes
Secret is root's, mode 0440 with our group) only must not be readable by every user.

`--local` keeps its emulator's collections in `<state dir>/local/emulator.json` and its
state in `<state dir>/local/`, keyed by one name whatever port the emulator gets: the
tutorial's commands see what the previous ones did, as against the real API.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sprunner.errors import UsageError
from sprunner.output.ui import Output
from sprunner.settings import GlobalOptions

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.api.models import CollectionRef
    from sprunner.state import StateStore

KEY_VARIABLE = "SCRAPINGPROS_API_KEY"
KEY_FILE_VARIABLE = "SCRAPINGPROS_API_KEY_FILE"
# A key is short; more than this is the wrong file (or /dev/zero), never read to its end.
MAX_KEY_FILE_BYTES = 64 * 1024
LOCAL_DIR = "local"  # under the state directory: `--local`'s own state and emulator
LOCAL_STATE_API = "local-emulator"  # the state's key for it (its port changes every time)


@dataclass(frozen=True)
class Target:
    """The API to talk to, with the key and the state directory that belong to it."""

    api_url: str
    api_key: str
    state_dir: Path
    local: bool = False

    def __repr__(self) -> str:  # never show the key
        return f"Target(api_url={self.api_url!r}, state_dir={self.state_dir!r})"

    @property
    def state_api(self) -> str:
        """What the state keys this API's entries by."""
        return LOCAL_STATE_API if self.local else self.api_url


def state_dir_of(options: GlobalOptions, *, local: bool) -> Path:
    return options.state_dir / LOCAL_DIR if local else options.state_dir


def exclusive(
    options: GlobalOptions, *, local: bool = False, whole: bool = False
) -> contextlib.AbstractContextManager[object]:
    """The lock an apply (or a retry) takes before anything else: the state directory's OS
    lock, so that a second apply stops at once (exit 4) having pinged, loaded, written and
    sent nothing. With `--state-url`, an apply locks per collection as it goes (nothing
    here) and a retry (`whole`) locks the whole state of the API in the database."""
    from sprunner.state import locked, opened

    if options.state_url is None or local:
        return locked(state_dir_of(options, local=local))
    if not whole:
        return contextlib.nullcontext()
    return opened(
        state_dir=options.state_dir,
        state_url=options.state_url,
        api_url=options.api_url,
        key=None,
        lock=True,
        persist=False,
    )


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
    """The real API, or with `local` an in-process emulator in simulate mode that keeps
    its collections under the state directory between commands."""
    if not local:
        yield Target(options.api_url, read_api_key(options, output), options.state_dir)
        return
    from sprunner.emulator.server import running_emulator

    state_dir = state_dir_of(options, local=True)
    output.info("starting a local emulator (simulate mode): nothing leaves this machine")
    with running_emulator(mode="simulate", store=state_dir / "emulator.json") as emulator:
        output.add_secrets([emulator.api_key])
        yield Target(emulator.url, emulator.api_key, state_dir, local=True)


def state_of(
    options: GlobalOptions, api: Target, *, lock: bool = True, persist: bool = True
) -> contextlib.AbstractContextManager[StateStore]:
    """The state of `api`: `--local`'s own (under the state directory, keyed by one name
    whatever port its emulator has), else the `--state-url` database or `--state-dir`.
    The prologue of every command that reads or writes the state."""
    from sprunner.state import opened

    return opened(
        state_dir=api.state_dir,
        state_url=None if api.local else options.state_url,
        api_url=api.state_api,
        key=api.api_key,
        lock=lock,
        persist=persist,
    )


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
