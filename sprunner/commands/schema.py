"""`sprunner schema`: print the job-file (or report) JSON Schema shipped in the package."""

from __future__ import annotations

import sys
from typing import Literal


def run(*, which: Literal["jobfile", "report"] | str = "jobfile", markdown: bool = False) -> int:
    from sprunner.jobfile.schema import schema_text

    text = schema_text("report" if which == "report" else "jobfile")
    if markdown:
        import json

        from sprunner.jobfile.reference import markdown as reference

        text = reference(json.loads(schema_text("jobfile")))
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
