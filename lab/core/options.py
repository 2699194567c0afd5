"""Declaring keys: :func:`option` (a dataclass field with its one-line doc, bounds and check), the runner's own
keys (:class:`RunnerConfig`) and the limits every value is held to. Plugins reach these through ``lab.api``."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def positive_sizes(value: list[int]) -> str | None:
    """An ``option(check=...)`` for layer sizes: a non-empty list of positive integers."""
    return None if value and all(v > 0 for v in value) else "must be a non-empty list of positive sizes"


def unit_fraction(value: float) -> str | None:
    """An ``option(check=...)`` for rates such as dropout: in [0, 1)."""
    return None if 0.0 <= value < 1.0 else "must be in [0, 1)"


def option(
    default: Any,
    doc: str,
    *,
    min: float | None = None,  # noqa: A002 - reads naturally at the call site
    max: float | None = None,  # noqa: A002
    check: Callable[[Any], str | None] | None = None,
    plugin_kind: str | None = None,
) -> Any:
    """Declare a config field with its one-line doc and optional bounds.

    ``check`` receives the typed value and returns an error message (what is valid) or None.
    Use ``typing.Literal[...]`` as the annotation for a fixed set of choices. ``plugin_kind`` makes the value the
    name of an installed plugin of that kind (e.g. an agent's ``backbone``), checked against the registry.
    """
    if isinstance(default, dataclasses.Field):  # option(field(default_factory=list), ...) would keep the Field
        raise TypeError(f"option({doc!r}): give the default value itself, e.g. option([64, 64], ...) for a list; "
                        "option() makes the field (dataclasses.field() is not needed)")
    metadata = {"doc": doc, "min": min, "max": max, "check": check, "plugin_kind": plugin_kind}
    if isinstance(default, list | dict | set):  # each config gets its own copy, as default_factory would
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
MAX_STEPS = 10**12
"""A trillion steps: 11 days even at a million steps a second; anything larger is a typo (steps=1e20)."""
MAX_SEED = 2**32 - 1
MAX_INT = 2**63 - 1  # every integer ends up in numpy, torch or sqlite, all 64-bit
MAX_EXPERIMENT_BYTES = 255
"""lab names the experiment's artifact folder after it: a file name holds 255 bytes (MLflow allows 500)."""
MAX_RUN_NAME = 250  # MLflow's runs.name column
THREADS_PER_CORE = 4
MAX_SWEEP_VALUES = 1000  # values of one key in `lab run key=a,b,c` (one child run each)


def _check_device(value: str) -> str | None:
    return None if _DEVICE.match(value) else "valid: auto, cpu, cuda, cuda:N, mps"


def _check_steps(value: int) -> str | None:
    return None if value <= MAX_STEPS else f"must be <= {MAX_STEPS:,} (11 days even at a million steps a second)"


def check_seed(value: int) -> str | None:
    """numpy's seeds (np.random.seed, which SB3 calls too) are 32-bit."""
    return None if value <= MAX_SEED else f"must be <= {MAX_SEED:,} (numpy's seeds are 32-bit)"


def _check_threads(value: int) -> str | None:
    """More threads than this is a typo, and torch crashes on some (threads=100000 segfaults)."""
    cores = os.cpu_count() or 1
    limit = THREADS_PER_CORE * cores
    return None if value <= limit else f"must be <= {limit} ({THREADS_PER_CORE} x the {cores} cores here)"


def _name_check(key: str, max_bytes: int) -> Callable[[str], str | None]:
    """A check for a name MLflow stores: not empty (an empty name would silently mean the default) and short
    enough for the store."""

    def check(value: str) -> str | None:
        if not value.strip():
            return f"empty; give a name, or leave {key}= out for the default"
        if len(value.encode()) > max_bytes:
            return f"too long ({len(value.encode())} bytes); valid: up to {max_bytes}"
        return None

    return check


@dataclass
class RunnerConfig:
    """Keys every run understands, whatever the plugin. A plugin may not declare a key of the same name."""

    plugin: str = option("", "The plugin to train (see `lab plugins`).")
    env: str | None = option(None, "Environment: a gymnasium id or a short alias (CartPole), for agents.")
    data: str | None = option(None, "Dataset name, for backbones and generators.")
    seed: int = option(0, "Seed for python, numpy, torch and the envs.", min=0, check=check_seed)
    steps: int = option(100_000, "Training budget: env steps for agents, examples for other kinds.", min=1,
                        check=_check_steps)
    device: str = option("auto", "Torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:N, mps.",
                         check=_check_device)
    threads: int = option(0, "Torch CPU threads; 0 = torch's default (one per core, or OMP_NUM_THREADS). Default "
                             "1 for agents and backbones, 0 for generators, 0 with nproc > 1 (each rank takes its "
                             "share of the cores). At most 4 per core.", min=0)
    nproc: int = option(1, "Data-parallel processes (torch.distributed: gloo on CPU, nccl on GPU), for plugins "
                           "that support it; batch_size stays the global batch.", min=1)
    eval_every: int = option(10_000, "Steps between evaluations (the best model is kept by its score).", min=1)
    eval_episodes: int = option(20, "Episodes (or batches) per evaluation.", min=1)
    checkpoint_every: int = option(0, "Steps between checkpoints; 0 saves one only when interrupted.", min=0)
    checkpoint_keep: int = option(3, "Newest checkpoints kept in the run; 0 keeps all.", min=0)
    stop_when_solved: bool = option(True, "Stop as soon as an evaluation reaches the solved threshold.")
    experiment: str | None = option(None, "MLflow experiment name; default '<plugin>-<env or data>'.",
                                    check=_name_check("experiment", MAX_EXPERIMENT_BYTES))
    run_name: str | None = option(None, "MLflow run name; default generated by MLflow.",
                                  check=_name_check("run_name", MAX_RUN_NAME))
    progress: bool = option(True, "Show a live progress bar.")


RUNNER_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunnerConfig))
THREADS_BY_KIND = {"agent": 1, "backbone": 1, "generator": 0}
"""The default of ``threads=`` per plugin kind, from bench/threads.py (BENCHMARKS.md section 9, 2 cores). The
small networks of agents and backbones (language models included) lose at most 16% to a second thread on an idle
machine and run 1.45-1.85x faster on one (agents: 7x) when another process wants the cores. Generators keep
torch's default: 1.3x faster on an idle machine, and it grows with the cores (threads=1 on a shared machine)."""
TARGET_KEY = {"agent": "env", "backbone": "data", "generator": "data"}
ENV_KWARGS_KEY = "env_kwargs"
"""An agent key by convention: the env's constructor arguments (``env_kwargs.continuous=true``). Given, it may
change the env's spaces, so the plugin's ``check_config`` (which sees it) judges the env rather than
``check_target`` (which sees the env's id alone)."""
"""Which runner key names the thing a plugin of each kind trains on."""
