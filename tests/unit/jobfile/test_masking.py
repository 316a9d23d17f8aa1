"""env() values are tracked by taint: whatever filter they go through, however short.

Issue #12 points 1 and 2. A value made with env() (through urlencode, trim, upper,
replace, concatenation, JSON escaping, slicing, a foreach loop) is secret-bearing: the
collection maps it to its masked form, its display never depends on the secret, and a URL
the API echoes back (in any percent-encoding) maps to the masked form.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprunner.errors import JobFileError
from sprunner.jobfile.identify import canonical
from sprunner.jobfile.load import load
from sprunner.jobfile.model import DesiredCollection
from sprunner.settings import Selection

VAR = "SPRUNNER_TAINT_TOKEN"
HEADERS = {
    "trim": "{{ env('VAR') | trim }}",
    "upper": "{{ env('VAR') | upper }}",
    "lower": "{{ env('VAR') | lower }}",
    "replace": "{{ env('VAR') | replace('a', 'b') | replace('\"', '_') }}",
    "concat": "Bearer {{ env('VAR') }}!",
    "tilde": "{{ 'x' ~ env('VAR') ~ 'y' }}",
    "json": "{{ env('VAR') | tojson }}",
    "reversed": "{{ env('VAR')[::-1] }}",
    "urlencoded": "{{ env('VAR') | urlencode }}",
    "set": "{% set t = env('VAR') %}k={{ t | upper }}",
}


def job(var: str = VAR) -> dict[str, object]:
    return {
        "version": 1,
        "collections": [
            {
                "name": "c",
                "requests": [
                    {
                        "url": f"https://a.example.com/p?t={{{{ env('{var}') | urlencode }}}}",
                        "headers": {k: v.replace("VAR", var) for k, v in HEADERS.items()},
                        "custom_id": "id-{{ env('VAR') | upper }}".replace("VAR", var),
                    },
                    {
                        # A loop value made with env() taints every template using it.
                        "url": "https://a.example.com/{{ i }}/{{ t | urlencode }}",
                        "foreach": {
                            "t": "{{ [env('VAR') | upper, env('VAR') ~ '-2'] }}".replace(
                                "VAR", var
                            ),
                            "i": [1, 2],
                        },
                    },
                ],
            }
        ],
    }


@contextmanager
def secret(value: str) -> Iterator[None]:
    old = os.environ.get(VAR)
    os.environ[VAR] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[VAR]
        else:
            os.environ[VAR] = old


def load_one(folder: Path, document: dict[str, object]) -> DesiredCollection:
    path = folder / "jobs.yaml"
    path.write_text(json.dumps(document))  # JSON is YAML: no quoting trouble with secrets
    (collection,) = load(Selection(paths=(path,))).collections
    return collection


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


# Secrets of 1 to 5 characters, with quotes, backslashes, spaces, %, + and non-ASCII.
short_secrets = st.text(
    alphabet=st.sampled_from("ab\"\\ %+/?#&='Zé€1_"), min_size=1, max_size=5
).filter(lambda s: s.strip() and "***" not in s)


@settings(max_examples=40, deadline=None)
@given(first=short_secrets, second=short_secrets)
def test_display_never_depends_on_the_secret(
    tmp_path_factory: pytest.TempPathFactory, first: str, second: str
) -> None:
    folder = tmp_path_factory.mktemp("taint")
    with secret(first):
        one = load_one(folder, job())
    with secret(second):
        two = load_one(folder, job())
    # What `render` and `plan` show is the same whatever the secret: it cannot leak it.
    assert one.shown_requests() == two.shown_requests()
    assert set(one.masked.values()) == set(two.masked.values())
    # And the secret's text is not in it, unless that text is there whatever the secret
    # (a "1/" secret matches the template's own "/1/"): the display made with another one.
    with secret("\u2603\u2603\u2603"):
        other = load_one(folder, job())
    elsewhere = "\n".join(strings(list(other.shown_requests())))
    for shown in strings(list(one.shown_requests())):
        assert first not in shown or first in elsewhere


@settings(max_examples=40, deadline=None)
@given(value=short_secrets)
def test_every_value_made_with_env_maps_to_its_masked_form(
    tmp_path_factory: pytest.TempPathFactory, value: str
) -> None:
    with secret(value):
        collection = load_one(tmp_path_factory.mktemp("taint"), job())
    for real, shown in zip(collection.requests, collection.shown_requests(), strict=True):
        for text, masked in zip(strings(real), strings(shown), strict=True):
            assert collection.mask_value(text) == masked
        url = real["url"]
        assert collection.mask_url(url) == shown["url"]
        # The API may echo the URL decoded, re-encoded, or with other hex case.
        for echoed in (unquote(url), quote(unquote(url), safe=":/?=&"), url.lower()):
            if canonical(echoed) == canonical(url):
                assert collection.mask_url(echoed) == shown["url"]


def test_filters_show_the_mask(tmp_path: Path) -> None:
    with secret("Tok3n"):
        collection = load_one(tmp_path, job())
    first = collection.shown_requests()[0]
    assert first["url"] == "https://a.example.com/p?t=***"
    assert first["headers"] == {
        "trim": "***",
        "upper": "***",
        "lower": "***",
        "replace": "***",
        "concat": "Bearer ***!",
        "tilde": "x***y",
        "json": '"***"',
        "reversed": "***",
        "urlencoded": "***",
        "set": "k=***",
    }
    assert first["custom_id"] == "id-***"
    assert [r["url"] for r in collection.shown_requests()[1:]] == [
        "https://a.example.com/1/***",
        "https://a.example.com/2/***",
        "https://a.example.com/1/***-2",
        "https://a.example.com/2/***-2",
    ]
    assert collection.mask_url("https://A.EXAMPLE.COM:443/p?t=Tok3n") == first["url"]
    assert collection.mask_url("https://a.example.com/p?t=other") is None
    assert collection.mask_value("TOK3N") == "***"


def test_a_plain_collection_has_nothing_masked(tmp_path: Path) -> None:
    document = {"version": 1, "collections": [{"name": "c", "requests": [{"url": "https://a.b/"}]}]}
    collection = load_one(tmp_path, document)
    assert collection.masked == {} and collection.mask_url("https://a.b/") is None


@pytest.mark.parametrize(
    ("url", "quoted"),
    [
        ("{{ env('VAR') | upper }}", "notaurl-xyz"),
        ("https://a.example.com/{{ env('VAR') | upper }} x", "notaurl-xyz"),
    ],
)
def test_errors_never_quote_a_value_made_with_env(tmp_path: Path, url: str, quoted: str) -> None:
    document = {
        "version": 1,
        "collections": [{"name": "c", "requests": [{"url": url.replace("VAR", VAR)}]}],
    }
    with secret(quoted), pytest.raises(JobFileError) as caught:
        load_one(tmp_path, document)
    text = str(caught.value)
    assert "expected an absolute http or https URL" in text and "made with env()" in text
    assert quoted.upper() not in text and quoted not in text


def test_template_errors_are_worded_by_the_masked_render(tmp_path: Path) -> None:
    request = {
        "url": "https://a.example.com/{{ d }}",
        "foreach": {"d": "{{ date_range(env('VAR') | upper, '2024-01-02') }}".replace("VAR", VAR)},
    }
    document = {"version": 1, "collections": [{"name": "c", "requests": [request]}]}
    with secret("bad-date"), pytest.raises(JobFileError) as caught:
        load_one(tmp_path, document)
    text = str(caught.value)
    assert "date_range start" in text and "BAD-DATE" not in text


@pytest.mark.parametrize(
    ("value", "warned"), [("s3cr", True), ("1234567", True), ("12345678", False)]
)
def test_a_secret_under_8_characters_is_warned_about_never_shown(
    tmp_path: Path, value: str, warned: bool
) -> None:
    """SPEC §10: the promise holds for 8 characters or more; below, free text (an API
    message quoting the value) cannot be searched for it without garbling other words."""
    path = tmp_path / "jobs.yaml"
    path.write_text(json.dumps(job()))
    with secret(value):
        loaded = load(Selection(paths=(path,)))
    messages = [str(w) for w in loaded.warnings]
    short = [m for m in messages if "under 8 characters" in m]
    assert len(short) == (1 if warned else 0), messages
    assert all(VAR in m and value not in m for m in short)
