from __future__ import annotations

from sprunner.api.models import Run
from sprunner.runs.poller import MIN_DELAY, next_delay


def run(done: int, total: int = 100) -> Run:
    return Run("r", "c", "in_progress", total, done, 0, 0)


def test_backoff_when_no_progress_is_known() -> None:
    assert next_delay(run(0), backoff_delay=8.0, elapsed=2.0) == 8.0


def test_poll_lands_just_after_the_predicted_end() -> None:
    # Half done after 10 s: about 10 s to go.
    assert next_delay(run(50), backoff_delay=30.0, elapsed=10.0) == 11.1


def test_prediction_never_exceeds_backoff_nor_goes_below_the_floor() -> None:
    assert next_delay(run(1), backoff_delay=5.0, elapsed=10.0) == 5.0
    assert next_delay(run(99), backoff_delay=5.0, elapsed=0.01) == MIN_DELAY
