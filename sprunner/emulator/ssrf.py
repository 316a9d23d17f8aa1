"""Fetch mode's guard against server-side request forgery (issue #12, point 8).

Unless private targets are allowed, the emulator connects only to public addresses: the
check runs on the addresses a host name resolves to, at connect time, for every connection
(redirects included), and the connection goes to the very address that was checked, so a
DNS answer that changes between check and use (rebinding) cannot slip through.

A refused target fails its job with one message that names the host and never depends on
the port or on whether anything listens there: the emulator must not be a port scanner.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud metadata services; most are link-local or private already, listed to be explicit.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class RefusedAddress(Exception):
    """A target that resolves to a loopback, private, link-local or metadata address."""

    def __init__(self, host: str) -> None:
        super().__init__(
            f"refused: {host} is a loopback, private, link-local or metadata address "
            "(the emulator fetches these only with --allow-private)"
        )


def is_forbidden(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_forbidden(embedded)
    return address in METADATA_ADDRESSES or not address.is_global or address.is_multicast


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, but connecting only to checked addresses."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        if not addresses or any(is_forbidden(a) for a in addresses):
            raise RefusedAddress(host)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                last = error
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress(path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def fetch_client(*, timeout: float, allow_private: bool) -> httpx.AsyncClient:
    """The client fetch mode uses; without `allow_private`, every connection is guarded.

    Environment proxies are not used: through a proxy the guard would check the proxy's
    address, not the target's.
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    if not allow_private:
        limits = httpx.Limits()
        transport._pool = httpcore.AsyncConnectionPool(  # no public way to pass a backend
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(),
        )
    return httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=True, trust_env=False
    )
