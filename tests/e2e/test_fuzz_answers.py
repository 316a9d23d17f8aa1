"""Hostile-answer fuzzing (issue #23, SPEC §10 "No crash from outside input").

A real `sprunner apply` (results drained, failed jobs retried) runs against the emulator
behind `fuzzproxy.FuzzProxy`, whose answers Hypothesis draws: each example is a script of
mutations, one per API call of the apply (malformed JSON values, wrong types, lone
surrogates, dates that are no dates, endless pages, other statuses, huge, deep and binary
bodies, malformed and truncated HTTP). Whatever is drawn, the apply ends with a documented
exit code, never 70, without a traceback, and the process's memory stays bounded.

CI runs a fixed seed and FUZZ_EXAMPLES examples; a longer run:

    SPRUNNER_FUZZ_EXAMPLES=2000 python3 -m pytest -p no:cacheprovider \\
        tests/e2e/test_fuzz_answers.py   # a new seed each run unless SPRUNNER_FUZZ_SEED is set
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from sprunner.emulator.server import running_emulator
from sprunner.errors import EXIT_CRASH
from sprunner.util.backoff import API_BACKOFF, WRITE_BACKOFF, Retries
from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.fuzzproxy import MUTATIONS, FuzzProxy, Mutation

FUZZ_EXAMPLES = int(os.environ.get("SPRUNNER_FUZZ_EXAMPLES", "25"))
FUZZ_SEED = int(os.environ.get("SPRUNNER_FUZZ_SEED", "20261207"))
# Each example changes up to DRAWN of the first CALLS answers of its apply (about the calls
# it makes), the others pass unchanged: an apply goes deep before something breaks.
CALLS = 24
DRAWN = 8
# Production's retries with a hundredth of the waiting and fewer tries: a drawn failure
# costs milliseconds, so an example takes about a second.
# The cap bounds every pause too: a drawn `Retry-After: 1e400` or a Reset a century away is
# waited for a second, not for the 30 s (or 60 s) production allows.
FUZZ_RETRIES = Retries(
    api=dataclasses.replace(API_BACKOFF, base=API_BACKOFF.base / 100, cap=1.0, attempts=3),
    write=dataclasses.replace(WRITE_BACKOFF, base=WRITE_BACKOFF.base / 100, attempts=2),
)
MEMORY_BOUND_MB = 1024  # peak RSS of the whole test process
DOCUMENTED_EXITS = {0, 1, 2, 3}

JOBS = """
version: 1
collections:
  - name: fz{n}-shop
    requests:
      - url: https://shop.example.com/a
      - url: https://shop.example.com/fail
      - url: https://shop.example.com/b?size=2000
    results: {{to: "{results}"}}
    run: {{poll_interval: 0.1s, timeout: 3s, max_failed: 3, retry: {{attempts: 1}}}}
  - name: fz{n}-blog
    requests:
      - url: https://blog.example.com/
      - url: https://blog.example.com/timeout
    run: {{poll_interval: 0.1s, timeout: 3s, max_failed: 2}}
"""


@pytest.fixture(scope="module")
def proxy() -> Iterator[FuzzProxy]:
    with (
        running_emulator(mode="simulate", run_seconds=0.2) as emulator,
        FuzzProxy(emulator.url) as hostile,
    ):
        hostile.handle = dataclasses.replace(emulator, url=hostile.url)  # type: ignore[attr-defined]
        yield hostile


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@seed(FUZZ_SEED)
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize="SPRUNNER_FUZZ_SEED" not in os.environ and FUZZ_EXAMPLES <= 100,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(script=st.dictionaries(st.integers(0, CALLS - 1), MUTATIONS, min_size=1, max_size=DRAWN))
def test_no_drawn_answer_crashes_an_apply(
    proxy: FuzzProxy, workdir: Path, script: dict[int, Mutation]
) -> None:
    n = proxy.examples = getattr(proxy, "examples", 0) + 1  # type: ignore[attr-defined]
    here = workdir / f"example-{n}"
    here.mkdir()
    job = write_job(here, JOBS.format(n=n, results=here / "results"))
    sprunner = Sprunner(proxy.handle, here / "state", here, FUZZ_RETRIES)  # type: ignore[attr-defined]
    proxy.reset(script)
    began = time.monotonic()
    result = sprunner("apply", str(job), "--report", str(here / "report.json"))
    took = time.monotonic() - began
    assert result.exit_code != EXIT_CRASH, result.output
    assert result.exit_code in DOCUMENTED_EXITS, (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    assert took < 60, f"the apply took {took:.0f} s"
    if os.environ.get("FUZZ_DEBUG"):
        print(f"example {n}: {took:.2f} s, {proxy.calls} calls, exit {result.exit_code}", script)
    assert _peak_rss_mb() < MEMORY_BOUND_MB
