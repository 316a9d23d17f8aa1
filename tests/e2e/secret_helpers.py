"""Searching everything sprunner wrote for a secret in any common encoding (SPEC §10).

Written independently of `sprunner.encodings`: the forms are made with the standard
library's own encoders, composed two deep (an encoding of an encoding: a JSON body in a
URL, an HTML-escaped JSON string), for the secret as it is and upper- and lower-cased.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape as xml_escape

import httpx

# What the target site sent, written as it came (README, "Results"): a page that echoes
# its own URL holds it. Every other column and file is sprunner's to keep clean.
SCRAPED = ("html", "markdown", "extracted_data", "screenshot")


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), text)


def _as_httpx_sends(value: str) -> str:
    """The value as httpx puts it in a query: only what a URL may not carry is encoded."""
    url = str(httpx.URL("https://x.example/?t=" + value.replace("#", "%23")))
    return url.split("?t=", 1)[1]


def _first(value: str) -> set[str]:
    pct = quote(value, safe="")
    return {
        value,
        pct,
        _lower_hex(pct),
        quote(value),
        quote_plus(value),
        _lower_hex(quote_plus(value)),
        _as_httpx_sends(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
        html.escape(value, quote=False),
        xml_escape(value, {'"': "&quot;", "'": "&apos;"}),
    }


def _second(value: str) -> set[str]:
    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
        quote(value, safe=""),
        _lower_hex(quote(value, safe="")),
    }


def encodings_of(secret: str) -> set[str]:
    """The secret and its common encodings, composed two deep, in either case."""
    forms: set[str] = set()
    for variant in {secret, secret.upper(), secret.lower()}:
        for first in _first(variant):
            forms |= _second(first)
    return forms


def pieces(secret: str, size: int = 8) -> set[str]:
    """Every `size`-character piece: a half-masked secret is a leaked secret."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def _rows_text(path: Path) -> str:
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    rows = [json.loads(line) for line in raw.splitlines()]
    kept = [{k: v for k, v in row.items() if k not in SCRAPED} for row in rows]
    return json.dumps(kept, ensure_ascii=False)


def written(roots: Iterable[Path]) -> dict[str, str]:
    """Every file under `roots` as text (results files: their rows but scraped bodies)."""
    texts: dict[str, str] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix in (".yaml", ".yml"):
                continue
            if path.name.endswith((".jsonl.gz", ".jsonl")):
                texts[str(path)] = _rows_text(path)
            else:
                texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return texts


def leaks(texts: dict[str, str], secrets: Iterable[str]) -> list[str]:
    """Where any form (or 8-character piece) of any secret shows, as readable lines."""
    found = []
    for secret in secrets:
        forms = encodings_of(secret) | pieces(secret)
        for where, text in texts.items():
            shown = sorted(f for f in forms if f in text)
            if shown:
                found.append(f"{where} holds {shown[:3]} of {secret!r}")
    return found
