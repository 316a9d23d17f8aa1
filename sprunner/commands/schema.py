"""`sprunner schema`: print the job-file (or report) JSON Schema shipped in the package."""

from __future__ import annotations

import sys
from typing import Literal


def run(*, which: Literal["jobfile", "report"] | str = "jobfile") -> int:
    from sprunner.jobfile.schema import schema_text

    text = schema_text("report" if which == "report" else "jobfile")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
