"""Small builders shared by the state tests."""

from __future__ import annotations

from typing import Any

from sprunner.jobfile.model import DesiredCollection


def collection(name: str, *urls: str, **fields: Any) -> DesiredCollection:
    requests = tuple({"url": url, **fields} for url in urls)
    return DesiredCollection(name=name, file="jobs.yaml", line=1, tags=(), requests=requests)
