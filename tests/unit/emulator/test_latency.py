"""The emulator's latency modes (issue #28): fixed, heavy-tailed, growing with load."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest

from sprunner.emulator.latency import LatencySpecError, parse_latency
from sprunner.emulator.server import running_emulator


def test_heavy_has_the_median_and_the_p99_it_was_given() -> None:
    latency = parse_latency("heavy:0.15:1.0", seed=3)
    draws = sorted(latency.delay(1) for _ in range(20_000))
    assert statistics.median(draws) == pytest.approx(0.15, rel=0.05)
    assert draws[int(0.99 * len(draws))] == pytest.approx(1.0, rel=0.1)
    assert parse_latency("heavy:0.15").values[1] == pytest.approx(1.0)


def test_busy_rises_with_the_calls_in_flight_then_stays() -> None:
    latency = parse_latency("busy:0.003:0.044:64")
    times = [latency.delay(n) for n in (1, 2, 32, 64, 500)]
    assert times[0] == pytest.approx(0.003) and times[3] == times[4] == pytest.approx(0.044)
    assert times == sorted(times)


def test_fixed_is_fixed() -> None:
    assert {parse_latency("fixed:0.15").delay(n) for n in (1, 10, 100)} == {0.15}


@pytest.mark.parametrize(
    "spec",
    ["", "slow:1", "fixed", "fixed:x", "fixed:-1", "heavy:0", "heavy:1:0.5", "busy:1", "fixed:inf"],
)
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(LatencySpecError):
        parse_latency(spec)


def test_the_emulator_answers_slower_when_busy() -> None:
    """Over real sockets: alone, a call takes the idle time; 40 at once take the busy time."""

    async def timed(url: str, key: str, at_once: int) -> float:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
            began = time.monotonic()
            answers = await asyncio.gather(
                *(http.get(f"{url}/v1/async/collections") for _ in range(at_once))
            )
            assert all(a.status_code == 200 for a in answers)
            return time.monotonic() - began

    with running_emulator(latency="busy:0.01:0.5:40") as emu:
        alone = min(asyncio.run(timed(emu.url, emu.api_key, 1)) for _ in range(3))
        crowded = asyncio.run(timed(emu.url, emu.api_key, 40))
    assert alone < 0.3 and crowded > 0.3, (alone, crowded)


def test_the_command_refuses_a_bad_latency_before_serving() -> None:
    from click.testing import CliRunner

    from sprunner.cli.app import cli

    result = CliRunner().invoke(cli, ["emulator", "--port", "0", "--latency", "heavy:0"])
    assert result.exit_code == 2 and "--latency" in result.output, result.output
