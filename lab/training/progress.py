"""A live progress bar (rich) that costs next to nothing when a model reports every single step."""

from __future__ import annotations

import time
from types import TracebackType

REFRESH_SECONDS = 0.25


class ProgressBar:
    """Steps done of the budget, speed, time left, and a line of key metrics; on stderr."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self._progress = None
        self._task = None
        self._last_refresh = 0.0
        self._metrics = ""
        self._step = 0

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(bar_width=24), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"), console=Console(stderr=True), transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("train", total=self.total, metrics="")
        return self

    def advance_to(self, step: int) -> None:
        self._step = step
        if self._progress is None:
            return
        now = time.monotonic()
        if now - self._last_refresh >= REFRESH_SECONDS:  # rich is cheap, but not per-step cheap
            self._last_refresh = now
            self._progress.update(self._task, completed=min(step, self.total), metrics=self._metrics)

    def show(self, metrics: str) -> None:
        self._metrics = metrics
        self._last_refresh = 0.0

    def stopped(self, reason: str) -> None:
        """Training ended before its budget (solved, pruned): the bar ends at the step reached, with the reason,
        rather than at a stale "22000/50000 eta 0:04:09"."""
        self._metrics = f"{self._metrics}  {reason}".strip()
        self.total = self._step

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            # A model may overrun its budget to finish its last rollout or batch: the bar shows the steps done.
            total = max(self.total, self._step) if exc_type is None else self.total
            self._progress.update(self._task, total=total, completed=min(self._step, total), metrics=self._metrics)
            self._progress.__exit__(exc_type, exc, tb)
