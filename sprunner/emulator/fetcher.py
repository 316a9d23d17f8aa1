"""Fetch mode: each job's URL fetched for real, under a bounded concurrency and a deadline.

A job succeeds unless the target answers 5xx (failed), cannot be reached (failed), is a
refused address (failed; see `ssrf.py`) or does not answer within `timeout` (timeout). The
page is kept for the result (at most `MAX_PAGE_BYTES`; the rest is dropped).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from sprunner.emulator.bodies import MAX_PAGE_BYTES, encode, fetched_result
from sprunner.emulator.model import Job, StoredRun
from sprunner.emulator.ssrf import RefusedAddress, fetch_client


class Fetcher:
    def __init__(self, *, timeout: float, concurrency: int, allow_private: bool) -> None:
        self.timeout = timeout
        self._semaphore = asyncio.Semaphore(concurrency)
        self._http = fetch_client(timeout=timeout, allow_private=allow_private)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch_run(self, run: StoredRun, requests: list[dict[str, Any]]) -> None:
        await asyncio.gather(
            *(self._fetch_job(run, j, r) for j, r in zip(run.jobs, requests, strict=True))
        )
        run.fetch_done = True

    async def _fetch_job(self, run: StoredRun, job: Job, request: Mapping[str, Any]) -> None:
        async with self._semaphore:
            job.started_offset = time.monotonic() - run.started
            try:
                await asyncio.wait_for(self._fetch(job, request), timeout=self.timeout)
            except (httpx.TimeoutException, asyncio.TimeoutError):
                job.outcome, job.status_code = "timeout", None
                job.message, job.html = f"Timed out after {self.timeout:g} s", None
            except RefusedAddress as error:
                job.outcome, job.message = "failed", str(error)
            except httpx.HTTPError as exc:
                job.outcome, job.message = "failed", f"{type(exc).__name__}: {exc}".rstrip(": ")
            except Exception as exc:  # a bad header value, say: a failed job, not a dead run
                job.outcome, job.message = "failed", f"{type(exc).__name__}: {exc}"
        execution_ms = int((time.monotonic() - run.started - job.started_offset) * 1000)
        job.result_bytes = len(encode(fetched_result(job, execution_ms)))
        job.done_offset = time.monotonic() - run.started  # last: this makes the job finished

    async def _fetch(self, job: Job, request: Mapping[str, Any]) -> None:
        method_spec = request.get("http_method") or {}
        method = str(method_spec.get("method", "get")).upper()
        async with self._http.stream(
            method,
            request["url"],
            headers=request.get("headers") or None,
            cookies=request.get("cookies") or None,
            content=_payload(method_spec),
        ) as response:
            page = bytearray()
            async for chunk in response.aiter_bytes():
                page += chunk[: MAX_PAGE_BYTES - len(page)]
                if len(page) >= MAX_PAGE_BYTES:
                    break
            job.status_code = response.status_code
            job.html = _decode(bytes(page), response.charset_encoding)
        if response.status_code >= 500:
            job.outcome, job.message = "failed", f"HTTP {response.status_code} from target"
        else:
            job.outcome, job.message = "completed", "OK"


def _decode(page: bytes, charset: str | None) -> str:
    try:
        return page.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return page.decode("utf-8", errors="replace")


def _payload(method_spec: Mapping[str, Any]) -> bytes | None:
    payload = method_spec.get("payload")
    if payload is None:
        return None
    return payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
