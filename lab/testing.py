"""The conformance kit: the checks every lab plugin must pass, usable from any package's pytest suite.

    # tests/test_conformance.py of a plugin package
    import pytest
    from lab.testing import CHECKS, check_plugin

    @pytest.mark.parametrize("check", CHECKS)
    def test_conformance(check):
        check_plugin("reinforce", check, env="CartPole", steps=300, eval_episodes=2)

or from the command line: ``lab plugins check reinforce env=CartPole steps=300``.

Checks (each builds the plugin exactly as ``lab run`` does, on CPU, with the keys given):

- ``registers``: the plugin is found by a fresh registry (entry points included) and is not broken.
- ``config``: every config key is documented and typed, and the defaults plus the given keys resolve.
- ``tiny_run``: ``lab run`` finishes on a temporary MLflow store: status FINISHED, eval metrics and a best model.
- ``evaluate``: ``evaluate()`` returns the plugin's score as a finite number.
- ``save_load``: a model rebuilt from ``save()``'s files gives identical outputs (generated samples, played
  episodes, or evaluation metrics).
- ``determinism``: two trainings with the same seed give identical outputs on CPU.
- ``bad_config``: an unknown key and a value of the wrong type are refused with a clear message.

A package's own tests may also look at what lab sees: :func:`load_registry` is the registry ``lab`` builds (every
plugin, env, dataset and lifecycle hook installed, broken ones listed in ``registry.broken``).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.core.errors import ConfigError
from lab.core.loading import load_registry

if TYPE_CHECKING:
    from lab.core.registry import Registry

CHECKS = ("registers", "config", "tiny_run", "evaluate", "save_load", "determinism", "bad_config")
TINY_DEFAULTS = {"steps": 300, "eval_every": 300, "eval_episodes": 2, "progress": False, "device": "cpu"}


class ConformanceError(AssertionError):
    """A conformance check failed; the message says what was expected and what happened."""


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str


def check_plugin(name: str, check: str, *, registry: Registry | None = None, store_uri: str | None = None,
                 **keys: Any) -> str:
    """Run one check on plugin ``name`` with ``keys`` (its target, e.g. ``env="CartPole"``, and tiny budgets).

    Returns a one-line detail on success; raises :class:`ConformanceError` on failure."""
    if check not in CHECKS:
        raise ValueError(f"unknown check {check!r}; valid: {', '.join(CHECKS)}")
    if registry is None:
        registry = load_registry()
    return _CHECK_FUNCTIONS[check](registry, name, {**TINY_DEFAULTS, **keys}, store_uri)


def run_checks(registry: Registry, name: str, keys: Mapping[str, Any],
               store_uri: str | None = None) -> list[CheckResult]:
    """Every check in order; a failed ``registers`` check skips the rest."""
    results = []
    for check in CHECKS:
        try:
            detail = check_plugin(name, check, registry=registry, store_uri=store_uri, **keys)
            results.append(CheckResult(check, True, detail))
        except Exception as e:  # a crash inside the plugin is a failed check, reported with its type
            detail = str(e) if isinstance(e, ConformanceError) else f"{type(e).__name__}: {e}"
            results.append(CheckResult(check, False, detail.splitlines()[0] if detail else type(e).__name__))
            if check == "registers":
                results += [CheckResult(rest, False, "skipped: the plugin is not registered")
                            for rest in CHECKS[CHECKS.index(check) + 1:]]
                break
    return results


# ---------------------------------------------------------------------------------------------- the checks


def _registers(registry: Registry, name: str, keys: dict[str, Any], store_uri: str | None) -> str:
    broken = [b for b in registry.broken.values() if name in (b.name, b.package)]
    if broken:
        raise ConformanceError(f"plugin {name!r} is broken: {broken[0]}")
    if name not in registry.plugins:
        raise ConformanceError(f"plugin {name!r} is not registered; installed: {', '.join(registry.plugin_names())}")
    info = registry.plugins[name]
    info.load_factory()  # a wrong factory path or an error in its module fails here, not in a run
    return f"{info.spec.kind} from {info.package} {info.version}; factory {info.spec.factory} loads"


def _config(registry: Registry, name: str, keys: dict[str, Any], store_uri: str | None) -> str:
    import dataclasses

    spec = registry.plugin(name).spec
    undocumented = [f.name for f in dataclasses.fields(spec.config) if not f.metadata.get("doc")]
    if undocumented:
        raise ConformanceError(f"config keys without a doc: {', '.join(undocumented)}")
    config = _resolve(registry, name, keys)
    untyped = [f.key for f in config.fields if f.owner == name and f.type in ("", "Any")]
    if untyped:
        raise ConformanceError(f"config keys without a type: {', '.join(untyped)}")
    return f"{sum(f.owner == name for f in config.fields)} documented keys; preset {config.preset or 'none'}"


def _tiny_run(registry: Registry, name: str, keys: dict[str, Any], store_uri: str | None) -> str:
    from lab.tracking.worker import RemoteTracker
    from lab.training import runner

    config = _resolve(registry, name, keys)
    with _tracking_store(store_uri) as uri:
        result = runner.run(config, RemoteTracker())
        from mlflow import MlflowClient

        run = MlflowClient(uri).get_run(result.run_id)
    score = f"eval/{config.plugin.spec.score}"
    if run.info.status != "FINISHED":
        raise ConformanceError(f"the run ended {run.info.status}, expected FINISHED")
    if score not in run.data.metrics or "best/score" not in run.data.metrics:
        raise ConformanceError(f"the run logged {sorted(run.data.metrics)} without {score} and best/score")
    return f"FINISHED in {result.seconds:.1f} s, {result.steps} steps, {score} {run.data.metrics[score]:.4g}"


def _evaluate(registry: Registry, name: str, keys: dict[str, Any], store_uri: str | None) -> str:
    config = _resolve(registry, name, keys)
    model = _trained(config)
    metrics = dict(model.evaluate(config.runner.eval_episodes))
    score = config.plugin.spec.score
    if score not in metrics:
        raise ConformanceError(f"evaluate() returned {sorted(metrics)} without the score {score!r}")
    if not isinstance(metrics[score], int | float) or not math.isfinite(metrics[score]):
        raise ConformanceError(f"evaluate() returned {score}={metrics[score]!r}, expected a finite number")
    return f"{score} {metrics[score]:.4g}"


def _save_load(registry: Registry, name: str, keys: dict[str, Any], store_uri: str | None) -> str:
    from lab.training.build import build_context, seed_everything

    config = _resolve(registry, name, keys)
    trained = _trained(config)
    with tempfile.TemporaryDirectory(prefix="lab-conformance-") as directory:
        trained.save(Path(directory))
        files = sorted(p.name for p in Path(directory).rglob("*") if p.is_file())
        if not files:
            raise ConformanceError("save() wrote no files")
        seed_everything(config.runner.seed + 1)  # the reloaded model must not depend on the seed it is built with
        reloaded = config.plugin.build(build_context(config, "cpu", training=False))
        reloaded.load(Path(directory))
    what, before = _outputs(trained, config)
    _, after = _outputs(reloaded, config)
    if not _same(before, after):
        raise ConformanceError(f"{what} differ after save()/load(): {_short(before)} vs {_short(after)}")
    return f"identical {what} after reloading {', '.join(files)}"


def _determinism(registry: Registry, name: str, keys: dict[str, Any], store_uri: str | None) -> str:
    config = _resolve(registry, name, keys)
    what, first = _outputs(_trained(config), config)
    _, second = _outputs(_trained(config), config)
    if not _same(first, second):
        raise ConformanceError(f"two trainings with seed {config.runner.seed} gave different {what}: "
                               f"{_short(first)} vs {_short(second)}")
    return f"identical {what} from two trainings with seed {config.runner.seed}"


def _bad_config(registry: Registry, name: str, keys: dict[str, Any], store_uri: str | None) -> str:
    config = _resolve(registry, name, keys)
    _expect_refusal(registry, name, {**keys, "no_such_key_xyz": 1}, "unknown key 'no_such_key_xyz'")
    typed = [f for f in config.fields if f.owner == name and f.type.split(" ")[0] in ("int", "float", "bool")]
    if typed:
        _expect_refusal(registry, name, {**keys, typed[0].key: "not-a-value"}, typed[0].key)
        return f"unknown key and {typed[0].key}=not-a-value refused"
    return "unknown key refused (no numeric or boolean key to mistype)"


_CHECK_FUNCTIONS: dict[str, Callable[..., str]] = {
    "registers": _registers, "config": _config, "tiny_run": _tiny_run, "evaluate": _evaluate,
    "save_load": _save_load, "determinism": _determinism, "bad_config": _bad_config,
}


# ---------------------------------------------------------------------------------------------- helpers


def _resolve(registry: Registry, name: str, keys: Mapping[str, Any]) -> Any:
    from lab.core import smoke
    from lab.core.config import resolve

    config = resolve(registry, {"plugin": name, **keys})
    smoke.cap_run(config.runner)  # LAB_SMOKE=1: the kit's trainings are as short as lab run's
    return config


def _expect_refusal(registry: Registry, name: str, keys: Mapping[str, Any], expected: str) -> None:
    try:
        _resolve(registry, name, keys)
    except ConfigError as e:
        if expected not in str(e):
            raise ConformanceError(f"refused, but the message does not name {expected!r}: {e}") from None
        if "\n" in str(e):
            raise ConformanceError(f"the refusal is not one line: {e!r}") from None
        return
    raise ConformanceError(f"config {dict(keys)} was accepted; expected a refusal naming {expected!r}")


def _trained(config: Any) -> Any:
    """Build and train the plugin's model in this process on CPU, seeded as ``lab run`` does."""
    import torch

    from lab.training.build import build_context, seed_everything

    torch.set_num_threads(config.runner.threads or 1)
    seed_everything(config.runner.seed)
    model = config.plugin.build(build_context(config, "cpu"))
    model.train(config.runner.steps, BudgetWatch(config.runner.steps))
    return model


class BudgetWatch:
    """An ``on_step`` that lets training run and checks that it ends at the budget: after a report at or past
    the budget, training may go on only to its next step boundary (SB3 finishes the rollout it is in)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.reached: int | None = None  # the first step reported at or past the budget

    def __call__(self, step: int, boundary: bool = True) -> bool:
        if self.reached is not None and boundary:
            raise ConformanceError(f"train({self.budget}) went on past its budget: on_step({step}) after "
                                   f"on_step({self.reached}); stop at the first step boundary at or past the budget")
        if step >= self.budget and self.reached is None:
            self.reached = step
        return True


def _outputs(model: Any, config: Any) -> tuple[str, Any]:
    """What the model does, comparable across instances: samples, played episodes or evaluation metrics."""
    from lab.training.build import seed_everything
    from lab.training.video import Recorder

    if callable(getattr(model, "generate", None)):
        import numpy as np

        return "samples", np.asarray(model.generate(8, 0))
    if callable(getattr(model, "play", None)):
        recorder = Recorder(record=False)
        model.play(2, config.runner.seed, recorder)
        return "played episodes", [(e.total_reward, e.length) for e in recorder.episodes]
    seed_everything(config.runner.seed)
    return "evaluation metrics", dict(model.evaluate(config.runner.eval_episodes))


def _same(a: Any, b: Any) -> bool:
    import numpy as np

    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return a == b


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


@contextlib.contextmanager
def _tracking_store(uri: str | None) -> Iterator[str]:
    """``uri``, or a fresh sqlite store in a temporary folder, as MLFLOW_TRACKING_URI for the block."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    with tempfile.TemporaryDirectory(prefix="lab-conformance-store-") as directory:
        uri = uri or f"sqlite:///{Path(directory) / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        try:
            yield uri
        finally:
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous
