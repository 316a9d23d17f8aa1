"""The README's job-file reference is the schema's, generated: it cannot drift."""

from __future__ import annotations

import json
from pathlib import Path

from sprunner.jobfile.reference import BEGIN, END, markdown
from sprunner.jobfile.schema import schema_text

ROOT = Path(__file__).parents[3]


def test_readme_reference_matches_the_schema() -> None:
    readme = (ROOT / "README.md").read_text()
    embedded = readme[readme.index(BEGIN) : readme.index(END) + len(END)]
    expected = markdown(json.loads(schema_text("jobfile")))
    assert embedded == expected, "run `sprunner schema --markdown` and paste it into README.md"


def test_every_request_field_is_documented() -> None:
    schema = json.loads(schema_text("jobfile"))
    request = schema["properties"]["collections"]["items"]["properties"]["requests"]["items"]
    text = markdown(schema)
    for field in request["properties"]:
        assert f"| `{field}` |" in text
