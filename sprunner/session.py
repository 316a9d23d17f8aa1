"""What `plan` and `apply` share: the API key, the client, the `--local` emulator, and
the lock an apply takes first.

The key is read here and nowhere else, from `--api-key-file` or SCRAPINGPROS_API_KEY,
never from a command-line value (it would show in `ps` and shell history). It is
registered with the redactor at once so it can never be printed.

`--local` keeps its emulator's collections in `<state dir>/local/emulator.json` and its
state in `<state dir>/local/`, keyed by one name whatever port the emulator gets: the
tutorial's commands see what the previous ones did, as against the real API.
"""

from __future__ import annotations

import contextlib
import os
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
    if options.api_key_file is not None:
        try:
            key = options.api_key_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UsageError(f"cannot read the API key file {options.api_key_file}: {e}") from e
        if not key:
            raise UsageError(f"the API key file {options.api_key_file} is empty")
    else:
        key = os.environ.get(KEY_VARIABLE, "").strip()
        if not key:
            raise UsageError(
                f"no API key: set {KEY_VARIABLE} or pass --api-key-file PATH "
                "(or try the demo with --local)"
            )
    output.add_secrets([key])
    return key


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
