"""Building a run, one home for every command that builds a model: the device (``device=auto`` picks cuda when
present), the seeds, torch's threads, the context a plugin's factory receives, the tags that say what ran where, and
a logged model rebuilt from its config and weights (``lab eval/play/sample``, the pyfunc model, the plugin kit)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import subprocess
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from lab import __version__
from lab.core import smoke
from lab.core.config import ResolvedConfig, resolve
from lab.core.errors import ConfigError
from lab.core.registry import Registry, load_dataset
from lab.core.specs import BuildContext, DatasetSpec, Model
from lab.training import distributed
from lab.training.reporting import RunTracker


def pick_device(requested: str) -> str:
    """Resolve ``auto`` to cuda when present, else cpu; refuse a device this machine does not have."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={requested}: CUDA is not available here; valid: auto, cpu")
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={requested}: only {torch.cuda.device_count()} CUDA device(s) here")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps: MPS is not available here; valid: auto, cpu")
    return requested


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def experiment_name(config: ResolvedConfig) -> str:
    return config.runner.experiment or f"{config.plugin.name}-{config.target}"


def set_threads(config: ResolvedConfig) -> None:
    """``threads=``, or else for a rank of a data-parallel run its share of the cores (N ranks of torch's default
    one-thread-per-core would fight over them)."""
    import torch

    if config.runner.threads:
        torch.set_num_threads(config.runner.threads)
    elif distributed.world_size() > 1 and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(distributed.core_share(distributed.world_size()))


def build_context(config: ResolvedConfig, device: str, tracker: RunTracker | None = None,
                  **extra: Any) -> BuildContext:
    """What the plugin's factory receives; datasets are handed over as a loader (recorded in the run when a
    tracker is given), not loaded here."""
    dataset = config.target_spec if isinstance(config.target_spec, DatasetSpec) else None
    loader = None
    if dataset is not None:
        loader = partial(_load_and_record, dataset, tracker) if tracker else partial(load_dataset, dataset)
    return BuildContext(config=config.params, runner=config.runner, target=config.target, device=device,
                        dataset=dataset, load_dataset=loader, build_features=config.build_features, **extra)


def _load_and_record(spec: DatasetSpec, tracker: RunTracker) -> Any:
    """Load a dataset and record it as the run's dataset input: digest of its splits, sizes, split seed."""

    import numpy as np

    data = load_dataset(spec)
    digest = hashlib.sha256()
    sizes = {}
    for split in ("train", "val", "test"):
        x = np.ascontiguousarray(getattr(data, f"x_{split}"))
        digest.update(x.tobytes())
        sizes[split] = len(x)
    profile = {"splits": sizes, "split_seed": data.split_seed, "task": spec.task, "shape": list(spec.shape)}
    tracker.log_dataset(spec.name, digest.hexdigest()[:16], spec.loader, json.dumps(profile))
    tracker.set_tags({"lab.data.split_seed": str(data.split_seed), "lab.data.digest": digest.hexdigest()[:16]})
    return data


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def host_tags() -> dict[str, str]:
    return {"lab.host": socket.gethostname(), "lab.pid": str(os.getpid())}


def run_tags(config: ResolvedConfig, device: str) -> dict[str, str]:
    """What ran where. A child run's tags (its parent, its trial) come from the command that starts it."""
    plugin = config.plugin
    tags = {
        "lab.version": __version__,
        "lab.plugin": plugin.name,
        "lab.plugin.kind": plugin.spec.kind,
        "lab.plugin.package": plugin.package,
        "lab.plugin.version": plugin.version,
        "lab.target": str(config.target),
        "lab.preset": config.preset or "none",
        "lab.device": device,
        "lab.seed": str(config.runner.seed),
        **host_tags(),
    }
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if smoke.enabled():
        tags[smoke.SMOKE_TAG] = "true"
    return tags


def rebuild_model(registry: Registry, logged: Mapping[str, Any], overrides: Mapping[str, Any],
                  weights: Path) -> tuple[Model, ResolvedConfig]:
    """A plugin's model built from a logged config (``overrides`` replace its keys) with ``weights`` loaded."""
    config = resolve(registry, dict(overrides), dict(logged), training=False)
    model = _built(config)
    try:
        model.load(weights)
    except Exception as e:  # the weights do not fit the model these keys make: say which key, not a traceback
        raise _misfit(registry, logged, overrides, weights, e) from None
    return model, config


def _built(config: ResolvedConfig) -> Model:
    seed_everything(config.runner.seed)
    return config.plugin.build(build_context(config, pick_device(config.runner.device), training=False))


def _misfit(registry: Registry, logged: Mapping[str, Any], overrides: Mapping[str, Any], weights: Path,
            error: Exception) -> ConfigError:
    """Why the logged weights do not load: the overridden keys that change the model's architecture (each tried
    alone), or the load error itself when no override is to blame."""
    changed = [key for key in overrides if key in logged and overrides[key] != logged[key]]

    def loads(key: str) -> bool:
        try:
            _built(resolve(registry, {key: overrides[key]}, dict(logged), training=False)).load(weights)
        except Exception:
            return False
        return True

    culprits = [key for key in changed if not loads(key)]
    if not culprits:
        return ConfigError(f"the run's weights do not load into its own model: {type(error).__name__}: "
                           f"{str(error).splitlines()[0] if str(error) else ''}")
    given = ", ".join(f"{key}={overrides[key]}" for key in culprits)
    trained = ", ".join(f"{key}={logged[key]}" for key in culprits)
    return ConfigError(f"{given}: changes the architecture of the logged model (trained with {trained}); keys "
                       f"that change the architecture cannot be overridden here: {', '.join(culprits)} "
                       "(others, e.g. sampling keys, can)")


