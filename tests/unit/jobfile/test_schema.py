"""The job-file schema and its located, readable errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sprunner.jobfile.schema import got, schema_text, validate_document
from sprunner.jobfile.yamlload import format_path, parse_text


def problems(text: str) -> list[str]:
    root, parse_problems = parse_text(text, "f.yaml")
    assert root is not None, parse_problems
    return [str(p) for p in validate_document(root, "f.yaml")]


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}.{name}", sub
        for key, value in node.items():
            yield from _properties(value, f"{path}.{key}" if key != "properties" else path)
    elif isinstance(node, list):
        for item in node:
            yield from _properties(item, path)


def test_schema_is_valid_draft7() -> None:
    import jsonschema

    schema = json.loads(schema_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_every_property_is_documented_for_editors() -> None:
    schema = json.loads(schema_text())
    props = list(_properties(schema))
    assert len(props) > 40
    for path, prop in props:
        if ".if." in path or ".then." in path:
            continue  # the conditions of `http_method`, not fields of their own
        assert prop.get("title") and prop.get("description"), path
        assert prop.get("examples"), path


def test_request_fields_of_the_api_are_all_there() -> None:
    schema = json.loads(schema_text())
    request = schema["properties"]["collections"]["items"]["properties"]["requests"]["items"]
    assert set(request["properties"]) == {
        "url", "format", "browser", "browser_type", "use_proxy", "screenshot", "actions",
        "language", "http_method", "headers", "cookies", "window_size", "extract",
        "network_capture", "retry_on_block", "block_resources", "block_requests",
        "custom_id", "foreach",
    }  # fmt: skip
    assert request["properties"]["custom_id"]["maxLength"] == 255


def test_spec_example_error() -> None:
    text = (
        "version: 1\ncollections:\n  - name: shop\n    requests:\n"
        "      - url: https://shop.example.com/\n"
        "      - url: https://shop.example.com/{{ page }}\n"
        "        foreach:\n          page: 5\n"
    )
    assert problems(text) == [
        "f.yaml:8:17: collections[0].requests[1].foreach.page: expected a list, got 5"
    ]


def test_all_errors_are_reported_in_file_order() -> None:
    text = (
        "version: 1\nbogus: 1\ncollections:\n  - name: c\n    requests:\n"
        "      - url: 1\n        format: pdf\n    run: {when: later}\n"
    )
    assert problems(text) == [
        "f.yaml:2:1: bogus: unknown key",
        "f.yaml:6:14: collections[0].requests[0].url: expected a string, got 1",
        'f.yaml:7:17: collections[0].requests[0].format: expected html or markdown, got "pdf"',
        'f.yaml:8:17: collections[0].run.when: expected always, changed or never, got "later"',
    ]


def test_x_keys_are_allowed_everywhere_with_a_schema() -> None:
    text = (
        "version: 1\nx-top: 1\ndefaults: {x-d: 1}\ncollections:\n"
        "  - name: c\n    x-c: 1\n    run: {x-r: 1}\n    requests:\n"
        "      - url: https://a.example.com/\n        x-req: 1\n"
        "        use_proxy: {proxy: p, x-p: 1}\n        http_method: {method: get, x-h: 1}\n"
    )
    assert problems(text) == []


def test_oneof_noise_is_cut_to_the_fitting_branch() -> None:
    base = "version: 1\ncollections:\n  - name: c\n    requests:\n      - url: https://a.example.com/\n"
    assert problems(base + "        use_proxy: {proxy: 5}\n") == [
        "f.yaml:6:28: collections[0].requests[0].use_proxy.proxy: expected a string, got 5"
    ]
    assert problems(base + "        use_proxy: us\n") == [
        'f.yaml:6:20: collections[0].requests[0].use_proxy: expected null, "any", a 2-letter '
        'country code such as "US", or a proxy mapping, got "us"'
    ]
    for ok in ("null", "any", "US", "{proxy: p, max_retries: 2}"):
        assert problems(base + f"        use_proxy: {ok}\n") == []


def test_post_may_carry_a_payload() -> None:
    text = (
        "version: 1\ncollections:\n  - name: c\n    requests:\n      - url: https://a.example.com/\n"
        "        http_method: {method: post, payload: {q: 1}, content_type: application/json}\n"
    )
    assert problems(text) == []


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ([], ""),
        (
            ["collections", 0, "requests", 1, "foreach", "page"],
            "collections[0].requests[1].foreach.page",
        ),
        (["headers", "User-Agent"], "headers.User-Agent"),
        (["headers", "a b"], 'headers["a b"]'),
        ([0, "x"], "[0].x"),
    ],
)
def test_format_path(path: list[str | int], text: str) -> None:
    assert format_path(path) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(5, "5"), (True, "true"), (None, "null"), ("a", '"a"'), ([1], "a list"), ({}, "a mapping")],
)
def test_got(value: Any, text: str) -> None:
    assert got(value) == text


def test_got_shortens_long_strings() -> None:
    assert got("x" * 100) == '"' + "x" * 55 + '..."'
