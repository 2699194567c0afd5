"""Child runs: the ``lab run`` processes that a parent command starts (several runs at once, a sweep's trials),
and what passes between the two.

The parent tells each child, through its environment, the run to nest under (:data:`PARENT_ENV`) and a file for
its outcome (:data:`RESULT_FILE_ENV`). The child tags its run with the one and, when it ends, writes the other
(:func:`report_outcome`), so the parent learns how each child ended from the child itself (:class:`ChildEnd`),
not by searching the tracking store for it. A child that died before it could write one has no outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from lab.core.text import plain

PARENT_ENV = "LAB_PARENT_RUN_ID"
"""Set for a child run: the id of the run it nests under (its ``mlflow.parentRunId`` tag)."""
RESULT_FILE_ENV = "LAB_RESULT_FILE"
"""Set for a child run: where it writes its :class:`RunOutcome` (JSON) when it ends."""
POLL_SECONDS = 0.5  # how often a parent looks at its running children (each takes seconds at the least)


# ---------------------------------------------------------------------------------------------- the child side


@dataclass(frozen=True)
class RunOutcome:
    """How a child run ended, as it tells its parent."""

    run_id: str
    status: str
    best_score: float | None
    pruned: bool = False  # stopped by a sweep's pruner


def parent_tags() -> dict[str, str]:
    """The tags that nest this run under its parent in the MLflow UI, when it is a child run."""
    parent = os.environ.get(PARENT_ENV)
    return {"mlflow.parentRunId": parent} if parent else {}


def report_outcome(outcome: RunOutcome) -> None:
    """Write ``outcome`` where the parent asked (nothing when this run is no child), atomically: the parent never
    reads half a file, only a whole one or none."""
    path = os.environ.get(RESULT_FILE_ENV)
    if not path:
        return
    target = Path(path)
    score = None if outcome.best_score is None else float(outcome.best_score)  # numpy's scalars are no JSON
    payload = {**asdict(outcome), "best_score": score, "pruned": bool(outcome.pruned)}
    with tempfile.NamedTemporaryFile("w", dir=target.parent, prefix=f".{target.name}.", delete=False) as file:
        json.dump(payload, file)
    os.replace(file.name, target)


def read_outcome(path: Path) -> RunOutcome | None:
    """The outcome a child wrote at ``path``; None when it wrote none (it died, or never got that far)."""
    try:
        return RunOutcome(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


# ---------------------------------------------------------------------------------------------- the parent side


def lab_run_command(plugins_dir: str | None) -> list[str]:
    """How a child run is started: this Python's ``lab run``, seeing the same plugins as its parent."""
    return [sys.executable, "-m", "lab.cli", *(["--plugins-dir", plugins_dir] if plugins_dir else []), "run"]


def local_environment(workers: int, **extra: str) -> dict[str, str]:
    """The environment of a child run on this machine: ours, plus the child's share of the cores.

    torch, NumPy and SB3 default to one thread per core in every process, so ``workers`` children would each run
    as many threads as there are cores and fight over them (on 2 cores, workers=2 gained 1.5x instead of 1.9x).
    Each child gets ``cores // workers`` threads unless the user set OMP_NUM_THREADS (or ``threads=``) already.
    """
    from lab.training.distributed import core_share

    environment = {**os.environ, **extra}
    share = str(core_share(workers))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environment.setdefault(name, share)
    return environment


def start_parent(mlflow_client: Any, config: Any, run_name: str, tags: Mapping[str, str],
                 params: Mapping[str, Any]) -> str:
    """A new parent run in the experiment of ``config``, with ``tags`` (and the host's) and ``params``; its id."""
    from lab.tracking.tracker import experiment_id
    from lab.training.build import experiment_name, host_tags

    parent = mlflow_client.create_run(experiment_id(mlflow_client, experiment_name(config)), run_name=run_name,
                                      tags={**tags, **host_tags()})
    mlflow_client.log_batch(parent.info.run_id, params=params_of(params))
    return parent.info.run_id


def params_of(values: Mapping[str, Any]) -> list[Any]:
    """``values`` as MLflow params, written as a run's own params are (``null``, ``true``), each clipped to what the
    store takes, 100 at most."""
    from mlflow.entities import Param

    return [Param(key, plain(value)[:6000]) for key, value in values.items()][:100]


@dataclass(frozen=True)
class ChildEnd:
    """How a child process ended: its exit code, its last line of output, and the outcome it wrote (if any)."""

    code: int
    tail: str
    outcome: RunOutcome | None


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


class Launcher(Protocol):
    """Where child runs run. ``start`` returns a handle that the other methods take."""

    def start(self, name: str, command: list[str], environment: dict[str, str]) -> Any: ...
    def poll(self, handle: Any) -> ChildEnd | None: ...  # None while it runs
    def stop(self, handle: Any) -> None: ...  # as Ctrl-C does: the run is checkpointed and marked KILLED
    def close(self, handles: list[Any]) -> None: ...  # wait for stopped children to end


@dataclass
class LocalChild:
    process: subprocess.Popen
    log: Path
    result: Path


class LocalLauncher:
    """Child runs as processes on this machine, each with its output and its result file in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def start(self, name: str, command: list[str], environment: dict[str, str]) -> LocalChild:
        log, result = self.folder / f"{name}.log", self.folder / f"{name}.json"
        with log.open("w") as output:
            process = subprocess.Popen(command, env={**environment, RESULT_FILE_ENV: str(result)}, stdout=output,
                                       stderr=subprocess.STDOUT)
        return LocalChild(process, log, result)

    def poll(self, child: LocalChild) -> ChildEnd | None:
        if child.process.poll() is None:
            return None
        return ChildEnd(child.process.returncode, _last_line(child.log.read_text(errors="replace")),
                        read_outcome(child.result))

    def stop(self, child: LocalChild) -> None:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGINT)

    def close(self, children: list[LocalChild]) -> None:
        for child in children:
            child.process.wait(timeout=120)


def run_child(command: list[str], environment: dict[str, str]) -> ChildEnd:
    """One child run from start to end, where this is called (a Ray task, on whichever node runs it): its result
    file is written and read on that node."""
    with tempfile.TemporaryDirectory(prefix="lab-child-") as folder:
        result = Path(folder) / "outcome.json"
        done = subprocess.run(command, env={**os.environ, **environment, RESULT_FILE_ENV: str(result)},
                              capture_output=True, text=True, errors="replace")
        return ChildEnd(done.returncode, _last_line(done.stdout + done.stderr), read_outcome(result))


class Pool:
    """Child runs, ``workers`` at a time in the order they were submitted, each known by its (unique) name."""

    def __init__(self, launcher: Launcher, workers: int) -> None:
        self.launcher = launcher
        self.workers = workers
        self.queued: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.running: dict[str, Any] = {}
        self.stopped: set[str] = set()

    def submit(self, name: str, command: list[str], environment: dict[str, str]) -> None:
        self.queued[name] = (command, environment)

    @property
    def busy(self) -> bool:
        return bool(self.queued or self.running)

    def wait(self) -> list[tuple[str, ChildEnd]]:
        """Start queued children while there is room, wait a moment, and return those that have ended since."""
        while self.queued and len(self.running) < self.workers:
            name = next(iter(self.queued))
            command, environment = self.queued.pop(name)
            self.running[name] = self.launcher.start(name, command, environment)
        time.sleep(POLL_SECONDS)
        ended = []
        for name, handle in list(self.running.items()):
            end = self.launcher.poll(handle)
            if end is not None:
                del self.running[name]
                ended.append((name, end))
        return ended

    def cancel(self, name: str) -> bool:
        """Drop a queued child (True: it never runs, and is never reported), or stop a running one (False: it is
        reported by :meth:`wait` when it has ended)."""
        if self.queued.pop(name, None) is not None:
            return True
        if name in self.running and name not in self.stopped:  # once: a second Ctrl-C would cut its checkpoint
            self.stopped.add(name)
            self.launcher.stop(self.running[name])
        return False

    def interrupt(self) -> None:
        """Stop every running child (each is checkpointed and marked KILLED) and wait for them to end."""
        for name, handle in self.running.items():
            if name not in self.stopped:
                self.launcher.stop(handle)
        self.launcher.close(list(self.running.values()))
