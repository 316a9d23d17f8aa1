"""Secret redaction: the values that must never be printed or written (env() values, the
API key, database passwords), and the one function that masks them in a text.

A leaf module (it imports nothing of sprunner) because every layer needs it: the output
object, the reports, the crash log and the API errors. The output object of a command owns
one `Redactor` (`sprunner.output`); `using()` makes it the *current* one for the command, so
that code far from the output layer (the API errors, which cut long bodies short and must
mask before they cut) reaches the same secrets without a process-wide singleton.

What is searched (SPEC §10, "A secret never leaves"):
- a value of `MIN_SECRET_LENGTH` (8) characters or more, in every common encoding an echo
  may give it (`sprunner.util.echoes`): raw, percent-encoded in either hex case, `+` for a
  space, JSON-, XML- or HTML-escaped, one such escape escaped once more (a JSON body in a
  URL), in upper or lower case, mixed within one value;
- a value of 6 or 7 characters as it is (case-sensitive), as before: a best effort;
  shorter ones not at all: searching free text for "ok" or "prod" would garble ordinary
  words. env() values of any length are still masked exactly by taint where sprunner
  shows its own requests (`sprunner.jobfile.masking`), and `validate` warns about the
  short ones;
- a password in any URL's user-info, and any `password=` parameter (a `--state-url`).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sprunner.util.echoes import secret_pattern

MIN_SECRET_LENGTH = 8  # searched in every encoding: the promise of SPEC §10
MIN_SEARCHED_LENGTH = 6  # searched as it is, below MIN_SECRET_LENGTH
MASK = "***"
_ANCHOR_LENGTH = 4

# `scheme://user:PASSWORD@`, and `password=VALUE` / `sslpassword=VALUE` in a query string
# or a libpq key=value string (quoted or not).
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://[^:/?#@\s]*:)([^@/?#\s]*)(@)", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(
    r"""(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s;'"]+)""", re.IGNORECASE
)


def url_without_password(url: str) -> str:
    """A URL (a `--state-url`, an API URL) as it may be printed: the password of its
    user-info and any `password=` parameter shown as "***". The one function for it."""
    return passwords_masked(url)


def passwords_masked(text: str) -> str:
    """Every URL password and `password=` value in `text` masked."""
    if "@" not in text and "assword" not in text.lower():
        return text
    text = _USERINFO.sub(lambda m: f"{m[1]}{MASK if m[2] else ''}{m[3]}", text)
    return _PASSWORD_PARAM.sub(lambda m: f"{m[1]}{MASK}", text)


def url_passwords(url: str | None) -> list[str]:
    """The passwords a URL carries (user-info, `password=`), to register as secrets."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
    except ValueError:
        found = []
        parts = None
    if parts is not None:
        found += [v for k, v in parse_qsl(parts.query) if k.lower().endswith("password")]
    return [p for p in found if p]


class Redactor:
    """A set of secrets and the masking of them."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        # Lower-cased runs of ASCII letters and digits, one per secret (see `_anchor`);
        # None when some secret has none long enough: then every text is searched.
        self._anchors: tuple[str, ...] | None = ()
        self.add(secrets)

    def add(self, values: Iterable[str]) -> None:
        """Register values that must never be printed (env() values, the API key)."""
        new = {v for v in values if len(v) >= MIN_SEARCHED_LENGTH} - self._secrets
        if new:
            self._secrets |= new
            self._pattern = None  # made again, with the new ones, when next needed
            anchors = [_anchor(s) for s in new]
            if self._anchors is None or None in anchors:
                self._anchors = None
            else:
                self._anchors += tuple(a for a in anchors if a)

    def _compiled(self) -> re.Pattern[str] | None:
        if self._pattern is None and self._secrets:
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._secrets, key=lambda s: (-len(s), s))
            parts = [
                secret_pattern(s) if len(s) >= MIN_SECRET_LENGTH else f"(?-i:{re.escape(s)})"
                for s in ordered
            ]
            self._pattern = re.compile("|".join(parts), re.IGNORECASE)
        return self._pattern

    def redact(self, text: str) -> str:
        pattern = self._compiled()
        if pattern is not None and self._may_hold(text):
            text = pattern.sub(MASK, text)
        return passwords_masked(text)

    def _may_hold(self, text: str) -> bool:
        """False when no secret can be in `text`: a cheap test before the pattern's."""
        if self._anchors is None:
            return True
        lowered = text.lower()
        return any(anchor in lowered for anchor in self._anchors)


def _anchor(secret: str) -> str | None:
    """The longest run of ASCII letters and digits of `secret`, lower-cased: no common
    encoding escapes those (percent-encoding, JSON, XML and HTML leave them as they are),
    so a text that lacks it, in any case, cannot hold the secret. None when too short to
    tell anything. A 6- or 7-character secret, searched as it is, is its own anchor."""
    if len(secret) < MIN_SECRET_LENGTH:
        return secret.lower()
    runs = re.findall(r"[A-Za-z0-9]+", secret)
    longest = max(runs, key=len, default="")
    return longest.lower() if len(longest) >= _ANCHOR_LENGTH else None


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
