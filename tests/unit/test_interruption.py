"""The signal handlers of an apply: installed for all of it, restored after."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from sprunner.apply.interruption import Interruption


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_outside_the_loop_is_remembered(signum: signal.Signals) -> None:
    before = signal.getsignal(signum)
    with Interruption().installed() as interruption:
        os.kill(os.getpid(), signum)
        os.kill(os.getpid(), signal.SIGINT)  # only the first one counts
    assert interruption.signum == signum
    assert signal.getsignal(signum) is before


def test_inside_the_loop_the_first_signal_cancels_through_the_loop() -> None:
    async def main(interruption: Interruption) -> str:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        interruption.on_first = lambda: loop.call_soon_threadsafe(task.cancel)
        loop.call_later(0.01, os.kill, os.getpid(), signal.SIGTERM)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "cancelled"
        return "slept"

    with Interruption().installed() as interruption:
        assert asyncio.run(main(interruption)) == "cancelled"
    assert interruption.signum == signal.SIGTERM


def test_a_closed_loop_does_not_turn_the_signal_into_an_error() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    with Interruption().installed() as interruption:
        interruption.on_first = lambda: loop.call_soon_threadsafe(print)
        os.kill(os.getpid(), signal.SIGINT)
    assert interruption.signum == signal.SIGINT


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_in_the_program_a_signal_after_the_handlers_changes_no_exit_code(
    signum: signal.Signals,
) -> None:
    """The `sprunner` process only exits after its apply: a signal then (after the report)
    is ignored, not Python's KeyboardInterrupt or death by the signal. In a subprocess:
    the handlers it leaves must not leak into the test run."""
    import subprocess
    import sys
    import textwrap

    program = textwrap.dedent(
        f"""
        import os
        from sprunner.apply.interruption import Interruption, ends_the_process

        ends_the_process()
        with Interruption().installed():
            pass
        os.kill(os.getpid(), {int(signum)})
        print("exited normally")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip()) == (0, "exited normally"), done.stderr
