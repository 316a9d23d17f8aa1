"""Result bodies: the JSON a job's result call answers, real (fetch) or synthetic (simulate).

- The size of a result is the length of its JSON exactly as the emulator sends it (compact,
  UTF-8). Listings inline a completed job's result only up to `RESULT_INLINE_CAP` bytes.
- Simulate mode: a URL with a query parameter `size=N` gets a result of exactly N bytes
  (or the smallest result that holds its metadata, if N is smaller); without it, about
  `DEFAULT_SIMULATED_SIZE`. N is capped at `MAX_SIMULATED_SIZE`. Synthetic bodies are made
  on demand from the URL, so a run of large bodies costs no memory while nobody reads them.
- Fetch mode keeps the page (at most `MAX_PAGE_BYTES`) and renders markdown from it on demand.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sprunner.emulator.model import Job

RESULT_INLINE_CAP = 256 * 1024
DEFAULT_SIMULATED_SIZE = 2048
MAX_SIMULATED_SIZE = 64 * 1024 * 1024
MAX_PAGE_BYTES = 8 * 1024 * 1024


def encode(value: Any) -> bytes:
    """JSON exactly as starlette's JSONResponse renders it, so sizes match the wire."""
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def size_from_url(url: str) -> int:
    if "size" not in url and "%" not in url:
        return DEFAULT_SIMULATED_SIZE  # no `size=`, even percent-encoded: skip the parsing
    values = parse_qs(urlsplit(url).query).get("size", [])
    for value in values:
        if value.isdigit():
            return min(int(value), MAX_SIMULATED_SIZE)
    return DEFAULT_SIMULATED_SIZE


def _meta(job: Job, execution_ms: int) -> dict[str, Any]:
    return {
        "url": job.url,
        "custom_id": job.custom_id,
        "html": None,
        "markdown": None,
        "statusCode": job.status_code,
        "message": job.message or "OK",
        "executionTime": execution_ms / 1000,
        "extracted_data": None,
        "screenshot": None,
        "content_type": "text/html; charset=utf-8",
    }


def _filler(seed: str, length: int) -> str:
    if length <= 0:
        return ""
    # Words that JSON never escapes, so each character is one byte on the wire.
    unit = " ".join(seed[i : i + 8] for i in range(0, len(seed), 8)) + ". "
    return (unit * (length // len(unit) + 1))[:length]


def synthetic_result(job: Job, execution_ms: int) -> dict[str, Any]:
    result = _meta(job, execution_ms)
    if job.outcome != "completed":
        return result
    seed = hashlib.sha256(f"{job.url}\0{job.custom_id}".encode()).hexdigest()
    title = html_lib.escape(job.url)
    head, tail, md_head = (
        f"<html><head><title>{title}</title></head><body><p>",
        "</p></body></html>",
        f"# {job.url}\n\n",
    )
    result["html"], result["markdown"] = head + tail, md_head
    room = max(0, job.body_size - len(encode(result)))
    html_room = room * 2 // 3
    result["html"] = head + _filler(seed, html_room) + tail
    result["markdown"] = md_head + _filler(seed, room - html_room)
    return result


def synthetic_size(job: Job, execution_ms: int) -> int:
    """The size `synthetic_result` would have, without building it."""
    if job.outcome != "completed":
        return len(encode(synthetic_result(job, execution_ms)))
    smallest = len(encode(synthetic_result(_without_size(job), execution_ms)))
    return max(job.body_size, smallest)


def _without_size(job: Job) -> Job:
    return Job(job.index, job.url, job.custom_id, job.outcome, job.status_code, job.message)


def fetched_result(job: Job, execution_ms: int) -> dict[str, Any]:
    result = _meta(job, execution_ms)
    if job.html is not None:
        result["html"] = job.html
        result["markdown"] = to_markdown(job.html)
    return result


_DROP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", re.I | re.S)
_LINK = re.compile(r"<a\b[^>]*href=[\"']([^\"']*)[\"'][^>]*>(.*?)</a\s*>", re.I | re.S)
_BREAK = re.compile(r"<(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.I)
_ITEM = re.compile(r"<li\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]+>")
_BLANKS = re.compile(r"\n\s*\n+")


def to_markdown(page: str) -> str:
    """A plain markdown rendering: headings, links, list items and paragraphs; no tags."""
    text = _DROP.sub("", page)
    text = _HEADING.sub(lambda m: "\n" + "#" * int(m.group(1)) + " " + m.group(2) + "\n", text)
    text = _LINK.sub(lambda m: f"[{m.group(2)}]({m.group(1)})", text)
    text = _ITEM.sub("\n- ", text)
    text = _BREAK.sub("\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
