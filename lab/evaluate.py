"""``lab eval``: rebuild a logged run's model from its saved config and evaluate its best weights."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.config import resolve
from lab.errors import ConfigError
from lab.registry import Registry
from lab.runner import BEST_MODEL, CONFIG_ARTIFACT, FINAL_MODEL, build_context, pick_device, seed_everything


@dataclass
class LoggedModel:
    """A logged run's model, rebuilt from its saved config and loaded with its best (or final) weights."""

    run: Any
    config: Any
    model: Any
    which: str


@contextmanager
def logged_model(registry: Registry, run_id: str, overrides: Mapping[str, Any]) -> Iterator[LoggedModel]:
    """Rebuild run ``run_id``'s model; ``overrides`` (device, seed, ...) replace the logged runner keys."""
    from mlflow.exceptions import MlflowException

    from lab.tracking import client, tracking_uri

    mlflow_client = client()
    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"unknown run id {run_id!r} in {tracking_uri()} (list runs with `lab ui`)") from None
    with tempfile.TemporaryDirectory(prefix="lab-load-") as tmp:
        try:
            config_path = mlflow_client.download_artifacts(run_id, CONFIG_ARTIFACT, tmp)
        except (MlflowException, OSError):
            raise ConfigError(f"run {run_id} has no {CONFIG_ARTIFACT}: it was not made by lab run") from None
        config = resolve(registry, dict(overrides), yaml.safe_load(Path(config_path).read_text()))
        model_dir, which = _download_model(mlflow_client, run_id, Path(tmp))
        seed_everything(config.runner.seed)
        model = config.plugin.build(build_context(config, pick_device(config.runner.device), training=False))
        model.load(model_dir)
        yield LoggedModel(run, config, model, which)


def _positive_int(options: Mapping[str, Any], key: str, default: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value}: expected an integer >= 1")
    return value


def evaluate_run(registry: Registry, options: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate run ``options['run']``; ``episodes``, ``device`` and ``seed`` override the logged values."""
    _positive_int(options, "episodes", 1)
    overrides = {key: options[key] for key in ("device", "seed") if key in options}
    with logged_model(registry, str(options["run"]), overrides) as logged:
        episodes = _positive_int(options, "episodes", logged.config.runner.eval_episodes)
        logged.config.runner.eval_episodes = episodes
        metrics = logged.model.evaluate(episodes)
        test = getattr(logged.model, "test", None)
        test_metrics = dict(test()) if callable(test) else {}
    score_key = logged.config.plugin.spec.score
    best = logged.run.data.metrics.get("best/score")
    return {
        "run_id": logged.run.info.run_id, "score_key": score_key, "mean": metrics[score_key],
        "std": metrics.get(score_key.replace("mean", "std"), 0.0), "episodes": episodes, "model": logged.which,
        "logged_best": "none" if best is None else f"{best:.2f}", "metrics": metrics, "test": test_metrics,
    }


def sample_run(registry: Registry, options: Mapping[str, Any]) -> str:
    """Draw from run ``options['run']``'s model: ``prompt``, ``n``, ``temperature``, ``seed``."""
    n = _positive_int(options, "n", 400)
    temperature = options.get("temperature", 0.8)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or temperature < 0:
        raise ConfigError(f"temperature={temperature}: expected a number >= 0")
    prompt = options.get("prompt", "")
    if not isinstance(prompt, str):
        prompt = str(prompt)
    overrides = {key: options[key] for key in ("device",) if key in options}
    with logged_model(registry, str(options["run"]), overrides) as logged:
        sample = getattr(logged.model, "sample", None)
        if not callable(sample):
            raise ConfigError(f"run {logged.run.info.run_id} ({logged.config.plugin.name} on "
                              f"{logged.config.target}) has nothing to sample from: only language models and "
                              "generators do")
        try:
            return sample(prompt, n, temperature=float(temperature), seed=int(options.get("seed", 0)))
        except ValueError as e:
            raise ConfigError(str(e)) from None


def _download_model(mlflow_client: Any, run_id: str, directory: Path) -> tuple[Path, str]:
    from mlflow.exceptions import MlflowException

    for artifact, which in ((BEST_MODEL, "best"), (FINAL_MODEL, "final")):
        try:
            return Path(mlflow_client.download_artifacts(run_id, artifact, str(directory))), which
        except (MlflowException, OSError):
            continue
    raise ConfigError(f"run {run_id} has no saved model (it may have failed before its first evaluation)")
