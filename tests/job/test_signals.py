from __future__ import annotations

import os
import signal

import pytest

from seedhp.job.signals import held_interrupts


def test_an_interrupt_during_a_held_step_is_raised_when_the_step_ends() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), held_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("the rest of the step")  # not cut short
    assert done == ["the rest of the step"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_sigterm_reaches_the_handler_the_process_had() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with held_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
