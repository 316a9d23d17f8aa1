"""The request enums are written once, in the schema; every reader gets them from there."""

from __future__ import annotations

import json

from sprunner.emulator import validation
from sprunner.jobfile.expand import RENDERED_ENUMS
from sprunner.util.schemafiles import request_enums, schema_text


def test_every_reader_of_the_request_enums_reads_the_schema() -> None:
    schema = json.loads(schema_text("jobfile"))
    request = schema["properties"]["collections"]["items"]["properties"]["requests"]["items"]
    assert request_enums()["format"] == tuple(request["properties"]["format"]["enum"])
    assert request_enums() == RENDERED_ENUMS
    assert request_enums() == validation._ENUMS
