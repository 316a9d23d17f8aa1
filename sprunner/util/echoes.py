"""The common encodings a secret may be echoed in, as one regular expression per secret.

An API that echoes a request back (`{"detail": "URL blocked: <url as sent>"}`, a failed
job's URL, a body quoted in an error) may give the secret raw, percent-encoded (either hex
case, `+` for a space, some characters only, as httpx encodes a URL), JSON-escaped (`\\"`,
`\\u00e9`, surrogate pairs), XML- or HTML-escaped (`&quot;`, `&#39;`, `&#x27;`, `&eacute;`),
upper- or lower-cased, and one escape escaped once more (a JSON body put in a URL gives
`%5C%22` for `"`; a percent-encoding percent-encoded again gives `%2522`).

Listing whole encoded strings would miss the mixed and partial forms, so the pattern is
built character by character: each character of the secret matches any of its forms, so
every mix of them matches too. ASCII letters, digits and `-._~` are matched as they are:
no common encoder escapes them (which also keeps a pattern small enough to compile at
once for a 64-character key). The pattern is meant to be compiled with IGNORECASE (hex
digits, entity names and the secret's own case); the case variants whose encoded bytes
differ (`é` / `É`, `ß` / `SS`) are listed explicitly.

Standard library only; a leaf module (`sprunner.util.redact` uses it).
"""

from __future__ import annotations

import functools
import html.entities
import json
import re
import string

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# JSON's two-character escapes (besides \\uXXXX, which any character may take).
_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f"}
_JSON_SHORT |= {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


@functools.cache
def _entity_names() -> dict[str, tuple[str, ...]]:
    """Character -> its named HTML5/XML entities (`&quot;`, `&apos;`, `&eacute;`)."""
    names: dict[str, list[str]] = {}
    for name, value in html.entities.html5.items():
        if len(value) == 1 and name.endswith(";"):
            names.setdefault(value, []).append(f"&{name}")
    # Case-insensitive matching makes `&QUOT;` and `&quot;` one: keep one spelling.
    return {c: tuple(sorted({n.lower() for n in found})) for c, found in names.items()}


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def _json_u(char: str) -> str:
    """`\\uXXXX`, or the surrogate pair of a character outside the BMP."""
    return json.dumps(char, ensure_ascii=True)[1:-1] if len(char) == 1 else char


def escapes(char: str) -> tuple[str, ...]:
    """The escaped spellings of one character, each a plain string (none is `char`)."""
    point = ord(char)
    forms = [_percent(char), f"&#{point};", f"&#x{point:x};", _json_u(char)]
    forms += _entity_names().get(char, ())
    if char in _JSON_SHORT:
        forms.append(_JSON_SHORT[char])
    if char == " ":
        forms.append("+")
    return tuple(dict.fromkeys(f for f in forms if f != char))


def _once(char: str) -> str:
    """A character of an escape, written raw or escaped once more (its special
    characters only: a second encoding leaves letters and digits alone)."""
    if char.isalnum():
        return re.escape(char)
    forms = [re.escape(char), _percent(char), f"&#0*{ord(char)};", f"&#x0*{ord(char):x};"]
    forms += [re.escape(n) for n in _entity_names().get(char, ())]
    if char in _JSON_SHORT:
        forms.append(re.escape(_JSON_SHORT[char]))
    return _group(forms)


def _group(alternatives: list[str]) -> str:
    unique = sorted(set(alternatives), key=lambda a: (-len(a), a))
    return unique[0] if len(unique) == 1 else "(?:" + "|".join(unique) + ")"


def _case_forms(char: str) -> dict[str, None]:
    """`char` and every spelling an upper- or lower-casing of the text may give it, in a
    stable order: closed under upper, lower and casefold (`ß` -> `SS` -> `ss`), with the
    final sigma, the one letter whose lower case depends on its place (`aΣ`.lower() is
    `aς`, `Σa`.lower() is `σa`)."""
    forms = dict.fromkeys((char,))
    pending = [char]
    while pending:
        form = pending.pop()
        cased = [form.upper(), form.lower(), form.casefold()]
        cased += ["ς"] if form == "σ" else []
        for other in cased:
            if other not in forms:
                forms[other] = None
                pending.append(other)
    return forms


@functools.lru_cache(maxsize=4096)
def char_pattern(char: str) -> str:
    """Every form of one character of a secret, as a regular expression."""
    if char in _UNRESERVED:
        # No common encoder escapes these (RFC 3986's unreserved characters): percent-
        # encoding, JSON, XML and HTML leave them as they are. Case is IGNORECASE's.
        return re.escape(char)
    alternatives: list[str] = []
    for variant in _case_forms(char):
        if len(variant) != 1:  # `ß`.upper() is `SS`: each letter in its own forms
            alternatives.append("".join(char_pattern(c) for c in variant))
            continue
        alternatives.append(re.escape(variant))
        point = ord(variant)
        # Numeric references with leading zeros; any character may take them.
        alternatives += [f"&#0*{point};", f"&#x0*{point:x};"]
        for form in escapes(variant):
            alternatives.append(re.escape(form))
            alternatives.append("".join(_once(c) for c in form))
    return _group(alternatives)


@functools.lru_cache(maxsize=256)
def secret_pattern(secret: str) -> str:
    """A regular expression (for IGNORECASE) that matches `secret` in every common
    encoding, mixed character by character."""
    return "(?:" + "".join(char_pattern(c) for c in secret) + ")"
