"""Loaded by every Python process of a test run under libfaketime (CONTRIBUTING.md, "On any date"), through
PYTHONPATH=scripts/faketime: libfaketime 0.9.10 shifts the absolute monotonic deadline of clock_nanosleep, which
Python 3.11's time.sleep uses, so every sleep fails with EINVAL. select() takes a relative timeout, which it leaves
alone."""

import select
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], seconds)


time.sleep = _sleep
