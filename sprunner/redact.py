"""Secret redaction: the values that must never be printed or written (env() values, the
API key), and the one function that masks them in a text.

A leaf module (it imports nothing of sprunner) because every layer needs it: the output
object, the reports, the crash log and the API errors. The output object of a command owns
one `Redactor` (`sprunner.output`); `using()` makes it the *current* one for the command, so
that code far from the output layer (the API errors, which cut long bodies short and must
mask before they cut) reaches the same secrets without a process-wide singleton.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

# Substring masking is only a safety net. env() values of any length are masked exactly, by
# taint (`sprunner.jobfile.masking`: every rendered value made with env() has a masked
# display form, used by render, plan, and for the failed jobs' URLs the API echoes back).
# Searching text for a value shorter than this would garble ordinary words ("ok", "us",
# "prod") wherever they occur; long values (the API key, a long token) are searched for as
# well, in case an API error message echoes one.
MIN_SECRET_LENGTH = 6
MASK = "***"


class Redactor:
    """A set of secrets and the masking of them."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, values: Iterable[str]) -> None:
        """Register values that must never be printed (env() values, the API key)."""
        self._secrets.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)

    def redact(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


def structured(value: Any, redactor: Redactor) -> Any:
    """`value` (JSON-like data) with every string masked, before it is encoded."""
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, dict):
        return {redactor.redact(str(k)): structured(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [structured(v, redactor) for v in value]
    return value


_current: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "sprunner_redactor", default=None
)


def current() -> Redactor:
    """The redactor of the command in progress; an empty one outside any command."""
    return _current.get() or Redactor()


@contextlib.contextmanager
def using(redactor: Redactor) -> Iterator[Redactor]:
    """Make `redactor` the current one for the duration (asyncio tasks inherit it)."""
    token = _current.set(redactor)
    try:
        yield redactor
    finally:
        _current.reset(token)
