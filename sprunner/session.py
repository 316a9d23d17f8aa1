"""What `plan` and `apply` share: the API key, the client, and the `--local` emulator.

The key is read here and nowhere else, from `--api-key-file` or SCRAPINGPROS_API_KEY,
never from a command-line value (it would show in `ps` and shell history). It is
registered with the redactor at once so it can never be printed.
"""

from __future__ import annotations

import contextlib
import os
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
