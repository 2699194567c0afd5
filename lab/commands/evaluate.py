"""``lab eval``: rebuild a logged run's model from its saved config and evaluate its best weights."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from lab.commands import common
from lab.commands.common import check_store, model_as_run
from lab.core.config import CONFIG_FILE, REQUIRED, ResolvedConfig, check_unique_keys, command_options, parse_overrides
from lab.core.errors import ConfigError
from lab.core.options import RUNNER_KEYS, check_seed, option
from lab.core.registry import Registry
from lab.core.specs import Model
from lab.training.build import rebuild_model, set_threads
from lab.training.runner import BEST_MODEL, FINAL_MODEL


@dataclass
class LoggedModel:
    """A logged run's model, rebuilt from its saved config and loaded with its best (or final) weights."""

    run_id: str
    metrics: Mapping[str, float]
    """The run's latest metrics (``best/score``, ...)."""
    config: ResolvedConfig
    model: Model
    which: str
    """Which weights were loaded: best, or final when the run kept no best model."""


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
    from lab.tracking.models import is_model_uri

    with tempfile.TemporaryDirectory(prefix="lab-load-") as tmp:
        files = (None if is_model_uri(run_id) else _stored_files(run_id)) or _downloaded_files(run_id, Path(tmp))
        model, config = rebuild_model(registry, files.config, overrides, files.weights)
        # The run's threads= (agents: 1), as it trained: with torch's default of a thread per core each of an
        # agent's tiny forward passes waits on the other threads (10 ms instead of 0.05 ms on a busy machine).
        set_threads(config)
        yield LoggedModel(files.run_id, files.metrics, config, model, files.which)


def _stored_files(run_id: str) -> LoggedFiles | None:
    """A run of the local store, read in place (mlflow is not even imported); None for any other store."""
    from lab.tracking.runs import stored_run

    stored = stored_run(run_id)
    if stored is None:
        return None
    try:
        logged = yaml.safe_load((stored.artifacts / CONFIG_FILE).read_text())
    except OSError:
        raise ConfigError(f"run {run_id} has no {CONFIG_FILE}: it was not made by lab run") from None
    for artifact, which in ((BEST_MODEL, "best"), (FINAL_MODEL, "final")):
        if (stored.artifacts / artifact).exists():
            return LoggedFiles(run_id, stored.metrics, logged, stored.artifacts / artifact, which)
    raise ConfigError(f"run {run_id} has no saved model (it may have failed before its first evaluation)")


def _downloaded_files(run_id: str, directory: Path) -> LoggedFiles:
    """A run (or a registered version) downloaded through MLflow into ``directory``."""
    from lab.tracking.models import download, is_model_uri
    from lab.tracking.runs import find_run, logged_config
    from lab.tracking.tracker import client

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


MODEL_DOC = "a run id (see `lab runs`) or a registered version, models:/NAME@ALIAS (model= names it too)"
"""What ``run=`` of ``lab eval``, ``lab sample`` and ``lab play`` takes (:func:`common.model_as_run`)."""


@dataclass
class EvalOptions:
    """``lab eval``'s keys. Those left out keep the run's logged values."""

    run: str = option(REQUIRED, f"The model to evaluate: {MODEL_DOC}.")
    episodes: int | None = option(None, "Episodes to evaluate an agent over; default the run's eval_episodes.",
                                  min=1)
    device: str | None = option(None, "Torch device (auto, cpu, cuda, cuda:N, mps); default the run's.")
    seed: int | None = option(None, "Seed of the evaluation; default the run's.", min=0, check=check_seed)


def evaluate_run(registry: Registry, options: EvalOptions) -> dict[str, Any]:
    """Evaluate run ``options.run``; ``episodes``, ``device`` and ``seed`` override the logged values."""
    overrides = {key: getattr(options, key) for key in ("device", "seed") if getattr(options, key) is not None}
    with logged_model(registry, options.run, overrides) as logged:
        episodes = options.episodes or logged.config.runner.eval_episodes
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


SAMPLE_SUFFIXES = {"generator": (".png", ".npy"), "text": (".txt",)}


@dataclass
class SampleOptions:
    """``lab sample``'s own keys. Any other key must be a key of the run's plugin (``inference_steps=20``): it
    overrides the logged config, and is checked against it once the run is loaded."""

    run: str = option(REQUIRED, f"The model to sample from: {MODEL_DOC}.")
    n: int | None = option(None, "Samples a generator draws (default 64), or characters a language model writes "
                                 "after the prompt (default 400).", min=1)
    seed: int = option(0, "Seed of the samples: the same seed gives the same samples.", min=0, check=check_seed)
    out: str | None = option(None, "File to write: .png (a picture) or .npy (the samples) of a generator, default "
                                   "samples.png; .txt of a language model, which prints its text without one.")
    device: str | None = option(None, "Torch device (auto, cpu, cuda, cuda:N, mps); default the run's.")
    prompt: str | None = option(None, "Text a language model continues, taken as the shell passes it (\"def \").")
    temperature: float | None = option(None, "Sampling temperature of a language model (default 0.8); 0 always "
                                              "takes the likeliest character.", min=0)


def sample_run(registry: Registry, options: SampleOptions, plugin_keys: Mapping[str, Any]) -> str:
    """Draw from run ``options.run``'s model and return what to print.

    Generators (models with ``generate``) write ``n`` samples (default 64) to ``out`` (default samples.png: a
    grid, or a scatter plot for 2-D points; ``.npy`` for the raw array). Language models (models with
    ``sample``) continue ``prompt`` by ``n`` characters (default 400) at ``temperature``, printed or written
    to ``out`` (.txt). The same seed gives the same samples. ``plugin_keys`` (``inference_steps=20``) override
    the logged config."""
    out = None if options.out is None else output_path(
        options.out, sorted({s for group in SAMPLE_SUFFIXES.values() for s in group}))
    overrides = {**plugin_keys, **({} if options.device is None else {"device": options.device})}
    with logged_model(registry, options.run, overrides) as logged:
        model, what = logged.model, f"{logged.config.plugin.name} on {logged.config.target}"
        if callable(getattr(model, "generate", None)):
            for key in ("prompt", "temperature"):
                if getattr(options, key) is not None:
                    raise ConfigError(f"{key}= applies to language models; run {logged.run_id} is a {what}")
            return _write_samples(model, options.n or 64, options.seed, out or Path("samples.png"), logged.run_id)
        if not callable(getattr(model, "sample", None)):
            raise ConfigError(f"run {logged.run_id} ({what}) has nothing to sample from: only language "
                              "models and generators do")
        if out is not None and out.suffix not in SAMPLE_SUFFIXES["text"]:
            raise ConfigError(f"out={out}: a language model writes text; valid: a .txt file, or no out= to print")
        prompt = options.prompt or ""
        temperature = 0.8 if options.temperature is None else options.temperature
        try:
            text = prompt + model.sample(prompt, options.n or 400, temperature=temperature, seed=options.seed)
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

    from lab.training.pictures import picture_of_samples, save_png

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


# ---------------------------------------------------------------------------------------------- the command


def cmd_eval(args: argparse.Namespace) -> int:
    options, _ = command_options(EvalOptions, model_as_run(parse_overrides(args.overrides)), "eval")
    check_store(options.run)
    result = evaluate_run(common.registry(), options)
    # The score and the logged best in the same format, so that equal values read equal.
    number = "{:.2f}" if result["kind"] == "agent" else "{:.4g}"
    best = "none" if result["logged_best"] is None else number.format(result["logged_best"])
    where = f"run {result['run_id']}, {result['model']} model; logged best: {best}"
    if result["kind"] == "agent":
        print(f"{result['score_key']}: {number.format(result['mean'])} +- {result['std']:.2f} over "
              f"{result['episodes']} episodes ({where})")
    else:  # episodes do not apply: the score is measured on the validation split
        print(f"{result['score_key']}: {number.format(result['mean'])} on the validation split ({where})")
    if result["test"]:
        print("test: " + ", ".join(f"{key} {value:.4f}" for key, value in result["test"].items()))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    check_unique_keys(args.overrides)  # prompt= too, which the grammar does not parse
    # A prompt is free text, taken as the shell passed it: the override grammar would strip its trailing space
    # ("def ") and read commas, quotes and brackets as syntax.
    prompts = [arg.partition("=")[2] for arg in args.overrides if arg.partition("=")[0].strip() == "prompt"]
    given = model_as_run(parse_overrides([a for a in args.overrides if a.partition("=")[0].strip() != "prompt"]))
    if prompts:
        prompt = prompts[-1]
        quoted = len(prompt) >= 2 and prompt[0] == prompt[-1] and prompt[0] in "'\""
        given["prompt"] = prompt[1:-1] if quoted else prompt  # prompt="'def '" quotes it for the grammar
    own = [field.name for field in fields(SampleOptions)]
    misplaced = sorted(key for key in given if key in RUNNER_KEYS and key not in own)
    if misplaced:  # other keys may be the run's plugin keys, checked against its config once it is loaded
        raise ConfigError(f"{misplaced[0]}= does not apply to lab sample; valid keys: {', '.join(own)}, "
                          "or a key of the run's plugin (e.g. inference_steps=20)")
    options, plugin_keys = command_options(SampleOptions, given, "sample", extra=lambda key: key not in RUNNER_KEYS)
    check_store(options.run)
    print(sample_run(common.registry(), options, plugin_keys))
    return 0
