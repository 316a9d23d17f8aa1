"""The redactor masks a secret in every common encoding, mixed and composed (SPEC §10), and
the passwords of database URLs; it leaves ordinary text alone."""

from __future__ import annotations

import html
import json
import string
from collections.abc import Callable
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape as xml_escape

from hypothesis import given, settings
from hypothesis import strategies as st

from sprunner.util.redact import MASK, Redactor

Encoder = Callable[[str], str]
UNRESERVED = set(string.ascii_letters + string.digits + "-._~")

ENCODERS: dict[str, Encoder] = {
    "raw": lambda s: s,
    "percent": lambda s: quote(s, safe=""),
    "percent-lower": lambda s: "".join(
        p.lower() if p.startswith("%") else p for p in _split_escapes(quote(s, safe=""))
    ),
    "percent-keep-slash": quote,
    "plus": quote_plus,
    "json": lambda s: json.dumps(s)[1:-1],
    "json-unicode": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "html": html.escape,
    "xml": lambda s: xml_escape(s, {'"': "&quot;", "'": "&apos;"}),
    # As XML writers that escape every character outside ASCII's unreserved ones.
    "numeric": lambda s: "".join(c if c in UNRESERVED else f"&#{ord(c)};" for c in s),
    "upper": str.upper,
    "lower": str.lower,
}


def _split_escapes(text: str) -> list[str]:
    out, i = [], 0
    while i < len(text):
        size = 3 if text[i] == "%" else 1
        out.append(text[i : i + size])
        i += size
    return out


secrets = st.text(
    alphabet=st.sampled_from(list("aZq9X0-_") + list(" &<>\"'%+#?=/\\é€ЖßΣ中😀\t")),
    min_size=8,
    max_size=24,
).filter(lambda s: len(set(s)) >= 3)


@settings(max_examples=150, deadline=None)
@given(
    secret=secrets,
    chain=st.lists(st.sampled_from(sorted(ENCODERS)), min_size=1, max_size=2),
)
def test_every_common_encoding_is_masked(secret: str, chain: list[str]) -> None:
    encoded = secret
    for name in chain:
        encoded = ENCODERS[name](encoded)
    shown = Redactor([secret]).redact(f"before {encoded} after")
    # Masked whole. An escape of an escape may leave its tail: the JSON escape of `\`
    # is two backslashes, and when both are written `&#92;` the pattern may take the first
    # as the secret's own; what stays is one character's escape, nothing of the secret.
    assert shown.startswith(f"before {MASK}") and shown.endswith(" after"), (encoded, shown)
    assert len(shown) - len(f"before {MASK} after") <= len("%26%2392%3B"), (encoded, shown)


def test_short_values_are_searched_as_they_are_and_tiny_ones_not_at_all() -> None:
    redactor = Redactor(["ok", "prod", "six-ch", "Seven!7"])
    assert (
        redactor.redact("ok: production six-ch SIX-CH Seven!7") == "ok: production *** SIX-CH ***"
    )


def test_a_secret_inside_another_is_masked_whole() -> None:
    redactor = Redactor(["token-12345678", "token-12345678-and-more"])
    assert redactor.redact("a token-12345678-and-more b token-12345678") == "a *** b ***"


def test_ordinary_text_is_left_alone() -> None:
    redactor = Redactor(["Tok&<é 1234"])
    text = "https://shop.example.com/p?a=1&b=%20x  &amp; \\u00e9 Tok 1234"
    assert redactor.redact(text) == text


def test_database_url_passwords_are_masked_in_any_text() -> None:
    redactor = Redactor()
    text = (
        "cannot connect to postgresql://app:hunter2@db:5432/s?password=x1&sslmode=require "
        "nor host=db password='a b' user=app"
    )
    assert redactor.redact(text) == (
        "cannot connect to postgresql://app:***@db:5432/s?password=***&sslmode=require "
        "nor host=db password=*** user=app"
    )
