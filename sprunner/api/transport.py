"""Tell a wrong endpoint from a passing network fault, and say which URL was tried.

A dropped connection or a timeout may heal: those are retried. A TLS failure (a refused
certificate, https to a port that speaks plain http), or a peer whose bytes are not HTTP
(a wrong port), does not heal by waiting: the caller gets an `EndpointError` at once.

http to a port that speaks TLS, or to a service that is not HTTP (ssh, smtp), looks from
the HTTP side exactly like a dropped connection: the server hangs up without an answer.
So when that happens before the API ever answered, `port_problem` asks the port again
through httpx (a plain HEAD, then the same over TLS without checking the certificate),
once per client. No module of sprunner opens a socket or reads HTTP itself.

URLs shown to users never carry credentials: the user-info and the query of the base URL
are dropped (the key itself only ever travels in a header).
"""

from __future__ import annotations

import ipaddress
import ssl
from urllib.parse import urlsplit

import httpx

PROBE_TIMEOUT = 2.0
# Failures of the TLS layer that a dropped or reset connection also produces: transient.
_TLS_TRANSIENT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
_DISCONNECTED = "disconnected without sending a response"


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_url(base_url: str, path: str) -> str:
    """`base_url` + `path`, without user-info or query: fit for a message or a log line."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}{path}"


def describe(error: BaseException) -> str:
    # httpx messages name the URL at most, never headers; keep the type for readability.
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if text != type(error).__name__ else text


def _tls_error(error: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return None if isinstance(seen, _TLS_TRANSIENT) else seen
        seen = seen.__cause__ or seen.__context__
    return None


def endpoint_problem(
    error: httpx.TransportError, scheme: str, *, first_contact: bool
) -> str | None:
    """Why this failure means a wrong endpoint, or None when it may be a passing fault.

    Bytes that are not HTTP count only before the API ever answered: after that, the URL is
    known to be right and a garbled answer is a fault of the moment.
    """
    tls = _tls_error(error)
    if isinstance(tls, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate was refused ({tls.verify_message or tls.reason})"
    if tls is not None:
        reason = str(tls.reason or tls).lower()
        if any(word in reason for word in ("wrong_version", "wrong version", "record", "length")):
            return (
                "TLS failed: the server does not speak TLS on this port "
                "(use http://, or the right port)"
            )
        return f"TLS failed ({tls.reason or tls})"
    text = str(error).lower()
    if first_contact and isinstance(error, httpx.RemoteProtocolError) and "status line" in text:
        # Not even a status line: whatever answers is not HTTP. (A broken header or body
        # after a good status line is a garbled answer, retried like a dropped one.)
        return f"the server's answer is not HTTP ({describe(error)}): wrong port" + (
            ", or http:// to an https port?" if scheme == "http" else "?"
        )
    return None


def hung_up_silently(error: httpx.TransportError) -> bool:
    return isinstance(error, httpx.RemoteProtocolError) and _DISCONNECTED in str(error).lower()


async def port_problem(host: str, port: int, *, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Why an http:// port that hung up silently is the wrong one, or None if it looks fine."""
    if await _answers(f"http://{_netloc(host, port)}/", timeout):
        return None  # it speaks HTTP: the hang-up was a fault of the moment
    if await _answers(f"https://{_netloc(host, port)}/", timeout):
        return "the port speaks TLS: use https:// in the API URL"
    return "the server does not speak HTTP on this port: wrong port?"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _answers(url: str, timeout: float) -> bool:
    """Does `url` give any HTTP answer at all? (A probe: certificates are not checked.)"""
    async with httpx.AsyncClient(verify=False, trust_env=False, timeout=timeout) as probe:
        try:
            await probe.head(url)
        except httpx.HTTPError:
            return False
    return True
