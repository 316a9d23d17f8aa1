"""The prologue every job-file command shares: load, register the secrets, warn."""

from __future__ import annotations

from sprunner.jobfile.load import Loaded, load
from sprunner.output.ui import Output
from sprunner.settings import Selection


def load_jobs(
    selection: Selection, output: Output, *, warn: bool = True, keep_requests: bool = True
) -> Loaded:
    """Load the selected collections (raising JobFileError on any problem), register their
    env() values with the output's redactor before anything is printed, then print the
    warnings (unless `warn` is False: `validate --json` puts them in its document)."""
    loaded = load(selection, keep_requests=keep_requests)
    for collection in loaded.collections:
        output.add_secrets(collection.secrets)
    if warn:
        for warning in loaded.warnings:
            output.warn(str(warning))
    return loaded
