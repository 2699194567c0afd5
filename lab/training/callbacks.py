"""Calling the lifecycle hooks of third-party callbacks and loggers, each implementation on its own."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.core.specs import RunInfo


class CallbackError(LabError):
    """A lifecycle hook raised while LAB_STRICT_PLUGINS is set."""

    exit_code = 1


class Callbacks:
    """Dispatches ``on_run_start``/``on_metrics``/``on_checkpoint``/``on_run_end`` to every plugin implementing them.

    A callback that raises is reported once on stderr and skipped for the rest of the run, so a broken logger
    never costs a training run; with ``LAB_STRICT_PLUGINS=1`` the run fails instead."""

    def __init__(self, hooks: Any) -> None:
        self.hooks = hooks
        self.run: RunInfo | None = None
        self.failed: set[str] = set()
        self.strict = os.environ.get("LAB_STRICT_PLUGINS", "") not in ("", "0", "false")
        self.tracing = os.environ.get("LAB_TRACE_PLUGINS", "") not in ("", "0", "false")

    def _call(self, hook_name: str, **arguments: Any) -> None:
        if self.hooks is None or self.run is None:
            return
        for impl in getattr(self.hooks, hook_name).get_hookimpls():
            if impl.plugin_name in self.failed:
                continue
            started = time.perf_counter()
            try:
                impl.function(*(arguments[name] for name in impl.argnames))
            except Exception as e:
                message = f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(e).__name__}: {e}"
                if self.strict:
                    raise CallbackError(f"{message} (LAB_STRICT_PLUGINS is set)") from e
                print(f"lab: warning: {message}; its lifecycle hooks are skipped for the rest of this run",
                      file=sys.stderr)
                self.failed.add(impl.plugin_name)
            if self.tracing:
                print(f"lab trace: {impl.plugin_name}.{hook_name}() in {1000 * (time.perf_counter() - started):.1f} ms",
                      file=sys.stderr)

    def run_started(self, run: RunInfo) -> None:
        self.run = run
        self._call("on_run_start", run=run)

    def metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._call("on_metrics", run=self.run, metrics=dict(metrics), step=step)

    def checkpoint(self, path: Path, step: int, kind: str) -> None:
        self._call("on_checkpoint", run=self.run, path=path, step=step, kind=kind)

    def run_ended(self, status: str, summary: Mapping[str, Any]) -> None:
        self._call("on_run_end", run=self.run, status=status, summary=dict(summary))
