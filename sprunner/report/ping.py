"""`--ping URL`: tell a dead man's switch (healthchecks.io and compatibles) how an apply went.

The healthchecks.io convention: `URL/start` when the apply starts, `URL` on exit 0,
`URL/<exit code>` otherwise. The URL's query string is kept (`.../ping/KEY/slug?create=1`
-> `.../ping/KEY/slug/start?create=1&rid=...`), every ping carries `rid`, the apply id in
UUID form (so a monitor pairs each start with its end when applies overlap), and the
final ping is a POST whose body is a short summary (healthchecks.io shows it as the
ping's log; the caller masks it).

Invariants:
- a ping never fails the apply: every error is caught and warned about, once per apply;
- a ping never slows the apply by more than `bound` seconds (default 5): the start ping runs
  in a background thread, and the final one (which first lets the start ping finish, so the
  monitor sees them in order) is waited for at most `bound` seconds in all. Each attempt has a
  short timeout; a refused connection or a 5xx is retried once, quickly (tenacity); a
  timeout is not (it already spent its time). A thread still hanging at the bound is a
  daemon: it never keeps the process alive;
- an answer is read at most `MAX_ANSWER` bytes, as sent (`Accept-Encoding: identity`, and
  never decoded): a huge or compressed answer (a gzip bomb) costs no memory;
- the URL's path and query are secret (healthchecks URLs embed the check's UUID, or a ping
  key and a slug): messages show only scheme, host and port, as `https://hc-ping.com/***`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sprunner.errors import UsageError

if TYPE_CHECKING:
    import httpx

DEFAULT_BOUND = 5.0
ATTEMPT_TIMEOUT = 2.0
RETRY_DELAY = 0.3
MAX_ANSWER = 10 * 1024  # bytes of a monitor's answer read at most (SPEC §9)
MAX_REDIRECTS = 3


class _Retryable(Exception):
    """A refused connection or a 5xx: worth one more quick try."""


class _Final(Exception):
    """A failure another try would not mend (a timeout, a 4xx)."""


def _read_capped(answer: httpx.Response) -> None:
    """Read at most `MAX_ANSWER` bytes of the answer, as sent: never decompressed."""
    read = 0
    for chunk in answer.iter_raw(MAX_ANSWER):
        read += len(chunk)
        if read >= MAX_ANSWER:
            return


def masked(url: str) -> str:
    """The URL without what may be secret: user info, path, query and fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/***"


def check_url(url: str) -> str:
    """The ping URL; a usage error if it is not absolute http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("--ping needs an absolute http(s) URL")
    return url


def ping_url(url: str, suffix: str, *, rid: str | None) -> str:
    """`url` with `/suffix` added to its path (none for "") and `rid` to its query."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + (f"/{suffix}" if suffix else "")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if rid is not None:
        query = [(k, v) for k, v in query if k != "rid"] + [("rid", rid)]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def run_id(apply_id: str) -> str:
    """The apply id as healthchecks.io's `rid` wants it: a UUID with its dashes."""
    try:
        return str(uuid.UUID(apply_id))
    except ValueError:
        return apply_id


class Pinger:
    """Pings for one apply. `start()` returns at once; `finish(code)` takes at most `bound` s."""

    def __init__(
        self,
        url: str,
        *,
        warn: Callable[[str], None],
        rid: str | None = None,
        bound: float = DEFAULT_BOUND,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
    ) -> None:
        self._url = check_url(url)
        self._rid = None if rid is None else run_id(rid)
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
        self._start = self._spawn(ping_url(self._url, "start", rid=self._rid), "start", None)

    def finish(self, exit_code: int, *, body: str | None = None) -> None:
        """POST `URL` (exit 0) or `URL/<exit code>` with `body`, waiting at most the bound."""
        deadline = time.monotonic() + self._bound
        if self._start is not None:
            self._start.join(max(0.0, deadline - time.monotonic()))
        url = ping_url(self._url, "" if exit_code == 0 else str(exit_code), rid=self._rid)
        thread = self._spawn(url, f"exit {exit_code}", body)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            self._warn_once(f"gave up after {self._bound:g}s")

    def _spawn(self, url: str, what: str, body: str | None) -> threading.Thread:
        thread = threading.Thread(
            target=self._send, args=(url, what, body), name=f"sprunner-ping-{what}", daemon=True
        )
        thread.start()
        return thread

    def _send(self, url: str, what: str, body: str | None) -> None:
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

        attempts = Retrying(
            stop=stop_after_attempt(2),
            wait=wait_fixed(RETRY_DELAY),
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            for attempt in attempts:
                with attempt:
                    self._once(url, body)
        except (_Retryable, _Final) as problem:
            self._warn_once(f"the {what} ping failed: {problem}")
        except Exception as error:  # a ping must never fail the apply
            self._warn_once(f"the {what} ping failed: {type(error).__name__}")

    def _once(self, url: str, body: str | None) -> None:
        import httpx

        headers = {"User-Agent": "sprunner", "Accept-Encoding": "identity"}
        content = None if body is None else body.encode("utf-8")
        try:
            # Redirects followed here, not by httpx: it would read (and decode) each
            # redirect's whole body.
            with httpx.Client(timeout=httpx.Timeout(self._attempt_timeout)) as client:
                request = client.build_request(
                    "GET" if body is None else "POST", url, headers=headers, content=content
                )
                for _ in range(MAX_REDIRECTS + 1):
                    answer = client.send(request, stream=True)
                    try:
                        _read_capped(answer)
                    finally:
                        answer.close()
                    if not answer.is_redirect or answer.next_request is None:
                        break
                    request = answer.next_request
        except httpx.TimeoutException:
            raise _Final(f"no answer within {self._attempt_timeout:g}s") from None
        except httpx.HTTPError as e:
            raise _Retryable(type(e).__name__) from None
        if answer.is_success:
            return
        problem = f"HTTP {answer.status_code}"
        raise (_Retryable if answer.status_code >= 500 else _Final)(problem)

    def _warn_once(self, text: str) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        self._warn(f"--ping {masked(self._url)}: {text} (the apply goes on)")
