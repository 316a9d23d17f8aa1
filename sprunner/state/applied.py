"""The state directory's applied/ folder: the request digests each collection last applied.

Display only (`plan`'s added / removed / changed counts), so the files are replaced
atomically but never fsynced: a power cut or a kill can at worst make a diff unknown.

Layout: 256 bucket files, `applied/<bb>.txt`, `bb` the first two hex digits of the
collection's key (sha256 of the API URL and the name). A bucket holds, for each of its
collections, a `@<key> #<key id>` line, then one line per request last applied (keyed
`key:content` digests, hashing.py). A file per collection cost an apply of thousands of
collections one file creation each at its end, up to a millisecond of kernel time apiece
on some file systems (5 s at 3,000 collections); buckets cost at most 256 rewrites.

The layout before buckets (`applied/<key>.txt`, one collection, a `#<key id>` line first)
is still read for a collection its bucket does not hold, and that file is deleted when the
collection is written again. Such files without a key line (state version 1: unkeyed
digests, a brute-force oracle for short secrets) are deleted when an apply first opens the
directory (`drop_unkeyed`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from sprunner.atomic import write_atomically

KEY_LENGTH = 24  # hex digits of a collection's key
BUCKET_DIGITS = 2  # 256 buckets

Found = tuple[str, list[str]]  # (key id, digests)
_HEX_KEY = re.compile(f"[0-9a-f]{{{KEY_LENGTH}}}")


def collection_key(api_url: str, name: str) -> str:
    return hashlib.sha256(f"{api_url}\n{name}".encode()).hexdigest()[:KEY_LENGTH]


class AppliedFiles:
    """Read and write the applied/ folder; raises OSError (the state wraps it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._texts: dict[str, str] = {}  # bucket -> its text, as read or last written
        self._legacy: bool | None = None  # whether files of the old layout exist

    def read(self, api_url: str, name: str) -> Found | None:
        key = collection_key(api_url, name)
        found = _block(self._bucket_text(key[:BUCKET_DIGITS]), key)
        return found if found is not None else self._read_legacy(key)

    def write(self, entries: Mapping[tuple[str, str], tuple[str, Iterable[str]]]) -> None:
        """Write `(api_url, name) -> (key id, digests)`: each bucket touched is rewritten
        once, with its other collections kept."""
        by_bucket: dict[str, dict[str, str]] = {}
        for (api_url, name), (key_id, digests) in entries.items():
            key = collection_key(api_url, name)
            block = f"@{key} #{key_id}\n" + "".join(f"{d}\n" for d in digests)
            by_bucket.setdefault(key[:BUCKET_DIGITS], {})[key] = block
        for bucket, blocks in by_bucket.items():
            kept = _blocks(self._bucket_text(bucket))
            kept.update(blocks)
            text = "".join(kept.values())
            write_atomically(self.folder / f"{bucket}.txt", text, sync=False)
            self._texts[bucket] = text
        if self._has_legacy():
            for blocks in by_bucket.values():
                for key in blocks:
                    (self.folder / f"{key}.txt").unlink(missing_ok=True)

    def drop_unkeyed(self) -> None:
        """Delete old-layout files without a key line (state version 1)."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("*.txt"):
            if len(path.stem) != KEY_LENGTH:
                continue
            with path.open("rb") as handle:
                keyed = handle.read(1) == b"#"
            if not keyed:
                path.unlink(missing_ok=True)

    def _bucket_text(self, bucket: str) -> str:
        text = self._texts.get(bucket)
        if text is None:
            try:
                # A damaged file reads as what it still says: display-only data, never a crash.
                path = self.folder / f"{bucket}.txt"
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                text = ""
            self._texts[bucket] = text
        return text

    def _has_legacy(self) -> bool:
        if self._legacy is None:
            self._legacy = self.folder.is_dir() and any(
                len(path.stem) == KEY_LENGTH for path in self.folder.glob("*.txt")
            )
        return self._legacy

    def _read_legacy(self, key: str) -> Found | None:
        if not self._has_legacy():
            return None
        try:
            path = self.folder / f"{key}.txt"
            lines = path.read_text(encoding="utf-8", errors="replace").split()
        except FileNotFoundError:
            return None
        if not lines or not lines[0].startswith("#"):
            return None
        return lines[0][1:], lines[1:]


def _blocks(text: str) -> dict[str, str]:
    """A bucket's text as key -> its block (the `@` line and the digests), in order; what
    does not start with a well-formed `@<key> #` line is dropped (a damaged file)."""
    blocks: dict[str, str] = {}
    start = text.find("@")
    while start != -1:
        end = text.find("\n@", start)
        end = len(text) if end == -1 else end + 1
        key = text[start + 1 : start + 1 + KEY_LENGTH]
        if _HEX_KEY.fullmatch(key) and text.startswith(" #", start + 1 + KEY_LENGTH):
            blocks[key] = text[start:end]
        start = end if end < len(text) else -1
    return blocks


def _block(text: str, key: str) -> Found | None:
    """One collection's key id and digests from a bucket's text, without splitting it all."""
    start = text.find(f"@{key} #")
    if start == -1 or (start and text[start - 1] != "\n"):
        return None
    end = text.find("\n@", start)
    lines = text[start : len(text) if end == -1 else end].split()
    return lines[1][1:], lines[2:]
