"""Terminal output. Only this module and `cli.py` know whether stdout is a terminal.

Logs and problems go to stderr, results to stdout. Every line passes through the active
redactor so that `env()` values and the API key never reach a terminal or a log file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class _Config:
    verbosity: int = 0
    color: bool = True
    secrets: set[str] = field(default_factory=set)


_config = _Config()


def configure(*, verbosity: int, color: bool) -> None:
    _config.verbosity = verbosity
    _config.color = color


def add_secrets(values: Iterable[str]) -> None:
    """Register values that must never be printed (env() values, the API key)."""
    _config.secrets.update(v for v in values if v)


def redact(text: str) -> str:
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(_config.secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def use_color(stream: TextIO | None = None) -> bool:
    return _config.color and is_terminal(stream)


def _styled(text: str, style: str) -> str:
    if not use_color(sys.stderr):
        return text
    import click

    colors = {"error": "red", "warning": "yellow", "info": "cyan"}
    return click.style(text, fg=colors.get(style), bold=style == "error")


def out(text: str) -> None:
    """A result line on stdout."""
    sys.stdout.write(redact(text) + "\n")


def error(text: str) -> None:
    sys.stderr.write(_styled("error: ", "error") + redact(text) + "\n")


def warn(text: str) -> None:
    sys.stderr.write(_styled("warning: ", "warning") + redact(text) + "\n")


def info(text: str) -> None:
    """Progress and decisions; silenced by -q."""
    if _config.verbosity >= 0:
        sys.stderr.write(redact(text) + "\n")


def debug(text: str) -> None:
    if _config.verbosity >= 1:
        sys.stderr.write(redact(text) + "\n")
