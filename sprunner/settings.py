"""Frozen settings built by the CLI and handed to one command function.

Nothing here reads the environment at import time; `cli.py` builds these from options and
environment variables once, and the commands never look at `os.environ` for settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sprunner.jobfile.model import DEFAULT_MAX_REQUESTS
from sprunner.util.backoff import Retries

if TYPE_CHECKING:
    from sprunner.output.ui import ColorMode

DEFAULT_API_URL = "https://api.scrapingpros.com"
DEFAULT_JOBFILES = Path("jobfiles")
DEFAULT_STATE_DIR = Path(".sprunner")
DEFAULT_PARALLEL = 8


@dataclass(frozen=True)
class Shard:
    """`--shard I/N`: this host takes the collections whose stable hash mod N equals I-1."""

    index: int  # 1-based, as the user writes it
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class GlobalOptions:
    api_url: str = DEFAULT_API_URL
    api_key_file: Path | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    state_url: str | None = None  # postgresql://...: a shared state instead of state_dir
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose
    color: ColorMode = "auto"  # from the environment's conventions (`ui.color_mode`)
    retries: Retries = field(default_factory=Retries)  # tests inject faster ones
    log_format: str = "text"  # text | json (`--log-format`): how stderr lines look


@dataclass(frozen=True)
class Selection:
    """Which collections a command acts on."""

    paths: tuple[Path, ...] = (DEFAULT_JOBFILES,)
    select: tuple[str, ...] = ()
    shard: Shard | None = None
    max_requests: int = DEFAULT_MAX_REQUESTS


@dataclass(frozen=True)
class ApplyOptions:
    report: Path | None = None
    junit: Path | None = None
    run: bool = True
    run_now: bool = False  # --run-now: start runs whatever `when` and `schedule` say
    prune: bool = False
    yes: bool = False  # --yes: delete without asking at a terminal (--prune)
    local: bool = False
    max_credits: int | None = None
    parallel: int = DEFAULT_PARALLEL
    max_rps: float | None = None
    json: bool = False
    metrics: Path | None = None  # --metrics FILE: Prometheus text for node_exporter
    ping: str | None = None  # --ping URL: healthchecks.io-style start / exit pings
    progress_interval: float = 30.0  # seconds between progress lines when not on a terminal
