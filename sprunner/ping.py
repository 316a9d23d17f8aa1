"""`--ping URL`: tell a dead man's switch (healthchecks.io and compatibles) how an apply went.

The healthchecks.io convention: `URL/start` when the apply starts, `URL` on exit 0,
`URL/<exit code>` otherwise.

Invariants:
- a ping never fails the apply: every error is caught and warned about, once per apply;
- a ping never slows the apply by more than `bound` seconds (default 5): the start ping runs
  in a background thread, and the final one (which first lets the start ping finish, so the
  monitor sees them in order) is waited for at most `bound` seconds in all. Each attempt has a
  short timeout; a refused connection or a 5xx is retried once, quickly; a timeout is not (it
  already spent its time). A thread still hanging at the bound is a daemon: it never keeps
  the process alive;
- the URL's path is a secret (healthchecks URLs embed the check's UUID, or a ping key and a
  slug): messages show only scheme, host and port, as `https://hc-ping.com/***`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from sprunner.errors import UsageError

DEFAULT_BOUND = 5.0
ATTEMPT_TIMEOUT = 2.0
RETRY_DELAY = 0.3


def masked(url: str) -> str:
    """The URL without what may be secret: user info, path, query and fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/***"


def check_url(url: str) -> str:
    """The ping URL without a trailing slash; a usage error if it is not absolute http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("--ping needs an absolute http(s) URL")
    return url.rstrip("/")


class Pinger:
    """Pings for one apply. `start()` returns at once; `finish(code)` takes at most `bound` s."""

    def __init__(
        self,
        url: str,
        *,
        warn: Callable[[str], None],
        bound: float = DEFAULT_BOUND,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
    ) -> None:
        self._url = check_url(url)
        self._warn = warn
        self._bound = bound
        self._attempt_timeout = attempt_timeout
        self._warned = False
        self._lock = threading.Lock()
        self._start: threading.Thread | None = None

    def __repr__(self) -> str:  # never show the secret path
        return f"Pinger({masked(self._url)!r})"

    def start(self) -> None:
        """Send `URL/start` in the background."""
        self._start = self._spawn(self._url + "/start", "start")

    def finish(self, exit_code: int) -> None:
        """Send `URL` (exit 0) or `URL/<exit code>`, waiting at most the bound in all."""
        deadline = time.monotonic() + self._bound
        if self._start is not None:
            self._start.join(max(0.0, deadline - time.monotonic()))
        url = self._url if exit_code == 0 else f"{self._url}/{exit_code}"
        thread = self._spawn(url, f"exit {exit_code}")
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            self._warn_once(f"gave up after {self._bound:g}s")

    def _spawn(self, url: str, what: str) -> threading.Thread:
        thread = threading.Thread(
            target=self._send, args=(url, what), name=f"sprunner-ping-{what}", daemon=True
        )
        thread.start()
        return thread

    def _send(self, url: str, what: str) -> None:
        import httpx

        timeout = httpx.Timeout(self._attempt_timeout)
        problem = ""
        for attempt in range(2):
            try:
                with httpx.Client(timeout=timeout, follow_redirects=True) as client:
                    answer = client.get(url, headers={"User-Agent": "sprunner"})
            except httpx.TimeoutException:
                problem = f"no answer within {self._attempt_timeout:g}s"
                break
            except httpx.HTTPError as e:
                problem = type(e).__name__
            except Exception as e:  # a ping must never fail the apply
                problem = type(e).__name__
                break
            else:
                if answer.is_success:
                    return
                problem = f"HTTP {answer.status_code}"
                if answer.status_code < 500:
                    break
            if attempt == 0:
                time.sleep(RETRY_DELAY)
        self._warn_once(f"the {what} ping failed: {problem}")

    def _warn_once(self, text: str) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        self._warn(f"--ping {masked(self._url)}: {text} (the apply goes on)")
