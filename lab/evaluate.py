"""``lab eval``: rebuild a logged run's model from its saved config and evaluate its best weights."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.checkpoints import CONFIG
from lab.config import MAX_INT, MAX_SEED, resolve
from lab.errors import ConfigError
from lab.registry import Registry
from lab.runner import BEST_MODEL, FINAL_MODEL, build_context, pick_device, seed_everything, set_threads


@dataclass
class LoggedModel:
    """A logged run's model, rebuilt from its saved config and loaded with its best (or final) weights."""

    run_id: str
    metrics: Mapping[str, float]
    """The run's latest metrics (``best/score``, ...)."""
    config: Any
    model: Any
    which: str


@dataclass
class LoggedFiles:
    """What rebuilding a logged model takes: the run's config and the folder of its best (or final) weights."""

    run_id: str
    metrics: Mapping[str, float]
    config: dict[str, Any]
    weights: Path
    which: str


@contextmanager
def logged_model(registry: Registry, run_id: str, overrides: Mapping[str, Any]) -> Iterator[LoggedModel]:
    """Rebuild run ``run_id``'s model (or a registered version's: ``models:/NAME@ALIAS``); ``overrides`` (device,
    seed, ...) replace the logged runner keys."""
    from lab.models import is_model_uri

    with tempfile.TemporaryDirectory(prefix="lab-load-") as tmp:
        files = (None if is_model_uri(run_id) else _stored_files(run_id)) or _downloaded_files(run_id, Path(tmp))
        model, config = rebuild_model(registry, files.config, overrides, files.weights)
        # The run's threads= (agents: 1), as it trained: with torch's default of a thread per core each of an
        # agent's tiny forward passes waits on the other threads (10 ms instead of 0.05 ms on a busy machine).
        set_threads(config)
        yield LoggedModel(files.run_id, files.metrics, config, model, files.which)


def _stored_files(run_id: str) -> LoggedFiles | None:
    """A run of the local store, read in place (mlflow is not even imported); None for any other store."""
    from lab.runs import stored_run

    stored = stored_run(run_id)
    if stored is None:
        return None
    try:
        logged = yaml.safe_load((stored.artifacts / CONFIG).read_text())
    except OSError:
        raise ConfigError(f"run {run_id} has no {CONFIG}: it was not made by lab run") from None
    for artifact, which in ((BEST_MODEL, "best"), (FINAL_MODEL, "final")):
        if (stored.artifacts / artifact).exists():
            return LoggedFiles(run_id, stored.metrics, logged, stored.artifacts / artifact, which)
    raise ConfigError(f"run {run_id} has no saved model (it may have failed before its first evaluation)")


def _downloaded_files(run_id: str, directory: Path) -> LoggedFiles:
    """A run (or a registered version) downloaded through MLflow into ``directory``."""
    from lab.models import download, is_model_uri
    from lab.runs import find_run, logged_config
    from lab.tracking import client

    mlflow_client = client()
    if is_model_uri(run_id):  # a registered version: its own config and weights, whatever became of the run
        registered = download(run_id, directory)
        run = find_run(mlflow_client, registered.run_id)
        return LoggedFiles(run.info.run_id, run.data.metrics, yaml.safe_load(registered.config_file.read_text()),
                           registered.weights, f"registered ({run_id} = version {registered.version})")
    run = find_run(mlflow_client, run_id)
    logged = logged_config(mlflow_client, run_id, str(directory))
    weights, which = _download_model(mlflow_client, run_id, directory)
    return LoggedFiles(run.info.run_id, run.data.metrics, logged, weights, which)


def rebuild_model(registry: Registry, logged: Mapping[str, Any], overrides: Mapping[str, Any],
                  weights: Path) -> tuple[Any, Any]:
    """A plugin's model built from a logged config (``overrides`` replace its keys) with ``weights`` loaded."""
    config = resolve(registry, dict(overrides), dict(logged), training=False)
    model = _built(config)
    try:
        model.load(weights)
    except Exception as e:  # the weights do not fit the model these keys make: say which key, not a traceback
        raise _misfit(registry, logged, overrides, weights, e) from None
    return model, config


def _built(config: Any) -> Any:
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


def integer_option(options: Mapping[str, Any], key: str, default: int, *, minimum: int = 1,
                   maximum: int = MAX_INT) -> int:
    """``options[key]`` (or ``default``) checked to be an integer from ``minimum`` to ``maximum``."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}={value}: expected an integer >= {minimum}")
    if value > maximum:
        why = " (numpy's seeds are 32-bit)" if maximum == MAX_SEED else ""
        raise ConfigError(f"{key}={value}: expected an integer <= {maximum:,}{why}")
    return value


def evaluate_run(registry: Registry, options: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate run ``options['run']``; ``episodes``, ``device`` and ``seed`` override the logged values."""
    integer_option(options, "episodes", 1)
    overrides = {key: options[key] for key in ("device", "seed") if key in options}
    with logged_model(registry, str(options["run"]), overrides) as logged:
        episodes = integer_option(options, "episodes", logged.config.runner.eval_episodes)
        logged.config.runner.eval_episodes = episodes
        metrics = logged.model.evaluate(episodes)
        test = getattr(logged.model, "test", None)
        test_metrics = dict(test()) if callable(test) else {}
    score_key = logged.config.plugin.spec.score
    best = logged.metrics.get("best/score")
    return {
        "run_id": logged.run_id, "kind": logged.config.plugin.spec.kind, "score_key": score_key,
        "mean": metrics[score_key],
        "std": metrics.get(score_key.replace("mean", "std"), 0.0), "episodes": episodes, "model": logged.which,
        "logged_best": best, "metrics": metrics, "test": test_metrics,
    }


SAMPLE_KEYS = ("run", "n", "seed", "out", "device", "prompt", "temperature")
"""``lab sample``'s own keys; any other key must be a key of the run's plugin (e.g. ``inference_steps``)."""
SAMPLE_SUFFIXES = {"generator": (".png", ".npy"), "text": (".txt",)}


def sample_run(registry: Registry, options: Mapping[str, Any]) -> str:
    """Draw from run ``options['run']``'s model and return what to print.

    Generators (models with ``generate``) write ``n`` samples (default 64) to ``out`` (default samples.png: a
    grid, or a scatter plot for 2-D points; ``.npy`` for the raw array). Language models (models with
    ``sample``) continue ``prompt`` by ``n`` characters (default 400) at ``temperature``, printed or written
    to ``out`` (.txt). The same seed gives the same samples. Plugin keys (``inference_steps=20``) override
    the logged config."""
    n = integer_option(options, "n", 1) if "n" in options else None
    seed = integer_option(options, "seed", 0, minimum=0, maximum=MAX_SEED)
    temperature = options.get("temperature", 0.8)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or temperature < 0:
        raise ConfigError(f"temperature={temperature}: expected a number >= 0")
    out = None if options.get("out") is None else output_path(
        options["out"], sorted({s for group in SAMPLE_SUFFIXES.values() for s in group}))
    overrides = {key: value for key, value in options.items() if key not in SAMPLE_KEYS or key == "device"}
    with logged_model(registry, str(options["run"]), overrides) as logged:
        model, what = logged.model, f"{logged.config.plugin.name} on {logged.config.target}"
        if callable(getattr(model, "generate", None)):
            for key in ("prompt", "temperature"):
                if key in options:
                    raise ConfigError(f"{key}= applies to language models; run {logged.run_id} is a {what}")
            return _write_samples(model, n or 64, seed, out or Path("samples.png"), logged.run_id)
        if not callable(getattr(model, "sample", None)):
            raise ConfigError(f"run {logged.run_id} ({what}) has nothing to sample from: only language "
                              "models and generators do")
        if out is not None and out.suffix not in SAMPLE_SUFFIXES["text"]:
            raise ConfigError(f"out={out}: a language model writes text; valid: a .txt file, or no out= to print")
        prompt = str(options.get("prompt", ""))
        try:
            text = prompt + model.sample(prompt, n or 400, temperature=float(temperature), seed=seed)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if out is None:
        return text
    write_atomically(out, lambda path: path.write_text(text))
    return f"wrote {len(text) - len(prompt)} characters after the prompt to {out}"


def output_path(value: Any, suffixes: Sequence[str]) -> Path:
    """Check ``out=`` before anything is loaded or run: a known suffix, in a folder that exists."""
    out = Path(str(value))
    if out.suffix.lower() not in suffixes:
        raise ConfigError(f"out={value}: unknown file type; valid: {', '.join(suffixes)}")
    if not out.parent.is_dir():
        raise ConfigError(f"out={value}: folder {out.parent} does not exist")
    return out


def _write_samples(model: Any, n: int, seed: int, out: Path, run_id: str) -> str:
    import numpy as np

    from lab.pictures import picture_of_samples, save_png

    if out.suffix.lower() not in SAMPLE_SUFFIXES["generator"]:
        raise ConfigError(f"out={out}: a generator writes .png (a picture) or .npy (the samples)")
    samples = np.asarray(model.generate(n, seed))
    if out.suffix.lower() == ".npy":
        write_atomically(out, lambda path: np.save(path, samples))
    else:
        reference = getattr(model, "reference_points", None)
        picture = picture_of_samples(samples, reference() if callable(reference) else None)
        write_atomically(out, lambda path: save_png(picture, path))
    shape = "x".join(map(str, samples.shape[1:]))
    return f"wrote {n} samples ({shape} each) from run {run_id} (seed {seed}) to {out}"


def write_atomically(out: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file in the same folder, renamed into place: never a half-written ``out``."""
    import os

    temporary = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    try:
        write(temporary)
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)


def _download_model(mlflow_client: Any, run_id: str, directory: Path) -> tuple[Path, str]:
    from mlflow.exceptions import MlflowException

    for artifact, which in ((BEST_MODEL, "best"), (FINAL_MODEL, "final")):
        try:
            return Path(mlflow_client.download_artifacts(run_id, artifact, str(directory))), which
        except (MlflowException, OSError):
            continue
    raise ConfigError(f"run {run_id} has no saved model (it may have failed before its first evaluation)")
