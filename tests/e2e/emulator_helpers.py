"""Plain-HTTP helpers for the emulator's own contract tests (no sprunner client involved)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from sprunner.emulator.server import EmulatorHandle

PREFIX = "/v1/async/collections"


def http(handle: EmulatorHandle) -> httpx.Client:
    headers = {"Authorization": f"Bearer {handle.api_key}"}
    return httpx.Client(base_url=handle.url, headers=headers, timeout=30)


def start(client: httpx.Client, requests: list[dict[str, Any]], name: str = "c") -> dict[str, Any]:
    created = client.post(PREFIX, json={"name": name, "requests": requests})
    assert created.status_code == 201, created.text
    started = client.post(f"{PREFIX}/{created.json()['id']}/run")
    assert started.status_code == 201, started.text
    run: dict[str, Any] = started.json()
    return run


def run_path(run: dict[str, Any]) -> str:
    return f"{PREFIX}/{run['collection_id']}/runs/{run['run_id']}"


def wait_done(client: httpx.Client, run: dict[str, Any], deadline: float = 20.0) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        answer: dict[str, Any] = client.get(run_path(run)).json()
        if answer["status"] == "completed":
            return answer
        assert time.monotonic() < end, f"run not completed within {deadline} s"
        time.sleep(0.02)


def all_jobs(client: httpx.Client, run: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    """Every page of the jobs listing, following `cursor_next`."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10_000):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        answer = client.get(run_path(run) + "/jobs", params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        if not page["has_more"]:
            assert page["cursor_next"] is None
            return items
        cursor = page["cursor_next"]
    raise AssertionError("the listing never ended")
