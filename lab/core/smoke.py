"""``LAB_SMOKE=1``: check that a command or a config works end to end in seconds, not that it learns.

Like Lightning's ``fast_dev_run``: every run trains at most ``SMOKE_STEPS`` steps past where it starts (a resumed
run continues from its checkpoint), evaluates every ``SMOKE_STEPS`` steps on ``SMOKE_EPISODES`` episodes
(checkpoints, if asked for, every ``SMOKE_STEPS // 2``), and a sweep runs at most ``SMOKE_TRIALS`` trials of one
seed; a plugin caps its own evaluation sizes with :func:`cap` (``lab.api.smoke_cap``).
Runs made this way are tagged ``lab.smoke=true`` so nobody mistakes them for results. The documentation's
commands are tested this way (tests/test_docs.py).
"""

from __future__ import annotations

import os
from typing import Any

SMOKE_ENV = "LAB_SMOKE"
SMOKE_STEPS = 300
SMOKE_EPISODES = 2
SMOKE_TRIALS = 2
SMOKE_TAG = "lab.smoke"
SMOKE_SAMPLES = 100
"""What a plugin's own evaluation sizes are capped to in smoke mode (samples judged, importance samples, ...):
``lab.api.smoke_cap``."""


def enabled() -> bool:
    return os.environ.get(SMOKE_ENV, "").strip().lower() in ("1", "true", "yes")


def cap_run(runner: Any, start_step: int = 0) -> None:
    """Shrink a run's budget and evaluation schedule in place (the runner keys are logged as they ran)."""
    if not enabled():
        return
    runner.steps = min(runner.steps, start_step + SMOKE_STEPS)
    runner.eval_every = min(runner.eval_every, SMOKE_STEPS)
    runner.eval_episodes = min(runner.eval_episodes, SMOKE_EPISODES)
    if runner.checkpoint_every:  # a run that asked for checkpoints still gets one
        runner.checkpoint_every = min(runner.checkpoint_every, SMOKE_STEPS // 2)


def cap(value: int, smoke_value: int = SMOKE_SAMPLES) -> int:
    """``value`` (an evaluation size of a plugin's own: samples drawn, importance samples), capped at
    ``smoke_value`` in smoke mode, so that a smoke run's evaluations cost seconds too."""
    return min(value, smoke_value) if enabled() else value


def cap_sweep(trials: int, seeds: int) -> tuple[int, int]:
    """A sweep's trials and seeds per trial under smoke mode."""
    return (min(trials, SMOKE_TRIALS), 1) if enabled() else (trials, seeds)
