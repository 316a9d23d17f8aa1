"""JSON lines that never crash on odd Unicode and never copy a huge body whole."""

from __future__ import annotations

import json

import pytest

from sprunner.results import encoding
from sprunner.results.encoding import CHUNK_CHARS, dumps, encode_row


@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "json"])
def test_lone_surrogates_are_written_as_text_and_pairs_are_kept(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast:
        monkeypatch.setattr(encoding, "_ORJSON", None)
    value = json.loads('{"html": "a\\ud800b", "k\\udfff": ["\\ud83d\\ude00", "\\udc00"]}')
    line = b"".join(encode_row(value))
    line.decode("utf-8")  # valid UTF-8: every reader takes it
    assert json.loads(line) == {"html": "a\\ud800b", "k\\udfff": ["\U0001f600", "\\udc00"]}


def test_both_encoders_write_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    row = {"a": 'é\n"\\', "b": 1, "c": 1.5, "d": None, "e": [True, {"f": "\u2028"}]}
    fast = dumps(row)
    monkeypatch.setattr(encoding, "_ORJSON", None)
    assert dumps(row) == fast


def test_a_huge_string_is_encoded_a_piece_at_a_time() -> None:
    page = ('<p>\u00e9"x\\</p>\n' * (CHUNK_CHARS // 4))[: 3 * CHUNK_CHARS + 17]
    row = {"job_id": "j", "html": page, "markdown": None}
    pieces = list(encode_row(row))
    assert len(pieces) > 4 and max(len(p) for p in pieces) <= 6 * CHUNK_CHARS + 2
    line = b"".join(pieces)
    assert line.endswith(b"\n") and json.loads(line) == row
    assert line == dumps(row) + b"\n", "the same bytes as one encoding of the whole row"
