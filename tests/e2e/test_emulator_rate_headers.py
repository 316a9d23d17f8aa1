"""The emulator's account rate limit states itself, as a real API's does: every answer under
`--fault rate-limit:N` carries `X-RateLimit-Limit` (per minute), `-Remaining` (calls left in
the bucket) and `-Reset` (seconds until one is), so that clients sharing the limit can slow
down before the 429s."""

from __future__ import annotations

from sprunner.emulator.server import running_emulator
from tests.e2e.emulator_helpers import PREFIX, http


def test_rate_limited_answers_state_the_limit_the_budget_left_and_when_it_refills() -> None:
    with running_emulator(faults=["rate-limit:5"]) as emulator, http(emulator) as client:
        answers = [client.get(PREFIX) for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert 200 in statuses and 429 in statuses
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "300"  # 5 a second, per minute
    remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in answers]
    first_refused = statuses.index(429)
    assert remaining[:first_refused] == sorted(remaining[:first_refused], reverse=True)
    refused = answers[first_refused]
    assert remaining[first_refused] == 0 and 0 < float(refused.headers["X-RateLimit-Reset"]) <= 1
    assert int(refused.headers["Retry-After"]) >= 1


def test_without_a_rate_limit_no_rate_headers_are_sent() -> None:
    with running_emulator() as emulator, http(emulator) as client:
        answer = client.get(PREFIX)
    assert answer.status_code == 200 and "X-RateLimit-Limit" not in answer.headers
