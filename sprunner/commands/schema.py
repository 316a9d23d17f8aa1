"""`sprunner schema`: print the job-file (or report) JSON Schema shipped in the package."""

from __future__ import annotations

from typing import Literal

from sprunner.output.ui import Output


def run(
    *,
    output: Output,
    which: Literal["jobfile", "report"] | str = "jobfile",
    markdown: bool = False,
) -> int:
    from sprunner.util.schemafiles import schema_text

    text = schema_text("report" if which == "report" else "jobfile")
    if markdown:
        import json

        from sprunner.jobfile.reference import markdown as reference

        text = reference(json.loads(schema_text("jobfile")))
    output.out(text.removesuffix("\n"))
    return 0
