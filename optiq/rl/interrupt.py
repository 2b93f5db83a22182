"""Stop training cleanly on Ctrl-C or SIGTERM, so the run can save a checkpoint and resume.

Without this, Ctrl-C raised KeyboardInterrupt somewhere inside SB3's loop and the run kept
only its last periodic checkpoint (the quick preset saves every 20k steps). Here the signal
only raises a flag; :class:`StopOnSignal` ends ``learn()`` at the next env step, the caller
writes a checkpoint, and :func:`stop_requested` tells it to exit as interrupted.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from stable_baselines3.common.callbacks import BaseCallback


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint; rerunning the command resumes."""


class _Flag:
    signum: int | None = None


_flag = _Flag()


def stop_requested() -> int | None:
    """The signal that asked training to stop, if any."""
    return _flag.signum


@contextmanager
def stop_on_signals(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM set the flag instead of killing; a second Ctrl-C still interrupts."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if _flag.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        _flag.signum = signum

    _flag.signum = None
    try:
        previous = {s: signal.signal(s, handler) for s in signals}
    except ValueError:  # not the main thread: signals cannot be caught here
        yield
        return
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class StopOnSignal(BaseCallback):
    """Ends ``learn()`` at the next step once a signal was caught by :func:`stop_on_signals`."""

    def _on_step(self) -> bool:
        return _flag.signum is None
