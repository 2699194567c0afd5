"""``lab eval``: rebuild a logged run's model from its saved config and evaluate its best weights."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lab.config import resolve
from lab.errors import ConfigError
from lab.registry import Registry
from lab.runner import BEST_MODEL, CONFIG_ARTIFACT, FINAL_MODEL, build_context, pick_device, seed_everything


def evaluate_run(registry: Registry, options: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate run ``options['run']``; ``episodes``, ``device`` and ``seed`` override the logged values."""
    from mlflow.exceptions import MlflowException

    from lab.tracking import client, tracking_uri

    run_id = str(options["run"])
    episodes = options.get("episodes", 1)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes={episodes}: expected an integer >= 1")
    mlflow_client = client()
    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"unknown run id {run_id!r} in {tracking_uri()} (list runs with `lab ui`)") from None

    with tempfile.TemporaryDirectory(prefix="lab-eval-") as tmp:
        try:
            config_path = mlflow_client.download_artifacts(run_id, CONFIG_ARTIFACT, tmp)
        except (MlflowException, OSError):
            raise ConfigError(f"run {run_id} has no {CONFIG_ARTIFACT}: it was not made by lab run") from None
        logged = yaml.safe_load(Path(config_path).read_text())
        overrides = {key: options[key] for key in ("device", "seed") if key in options}
        config = resolve(registry, overrides, logged)
        episodes = options.get("episodes", config.runner.eval_episodes)
        config.runner.eval_episodes = episodes
        model_dir, which = _download_model(mlflow_client, run_id, Path(tmp))

        seed_everything(config.runner.seed)
        model = config.plugin.build(build_context(config, pick_device(config.runner.device), training=False))
        model.load(model_dir)
        metrics = model.evaluate(episodes)
        test = getattr(model, "test", None)
        test_metrics = dict(test()) if callable(test) else {}

    score_key = config.plugin.spec.score
    best = run.data.metrics.get("best/score")
    return {
        "run_id": run_id, "score_key": score_key, "mean": metrics[score_key],
        "std": metrics.get(score_key.replace("mean", "std"), 0.0), "episodes": episodes, "model": which,
        "logged_best": "none" if best is None else f"{best:.2f}", "metrics": metrics, "test": test_metrics,
    }


def _download_model(mlflow_client: Any, run_id: str, directory: Path) -> tuple[Path, str]:
    from mlflow.exceptions import MlflowException

    for artifact, which in ((BEST_MODEL, "best"), (FINAL_MODEL, "final")):
        try:
            return Path(mlflow_client.download_artifacts(run_id, artifact, str(directory))), which
        except (MlflowException, OSError):
            continue
    raise ConfigError(f"run {run_id} has no saved model (it may have failed before its first evaluation)")
