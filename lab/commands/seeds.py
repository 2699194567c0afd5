"""Several runs from one command: ``lab run ... seed=0,1,2,3,4 workers=2``.

Each combination of the multi-valued keys is a child ``lab run`` process (``workers`` at a time) whose MLflow run
is nested under one parent run. When they are done the parent logs, per configuration, statistics over its
seeds computed with scipy.stats: mean, std, IQM (the 25%-trimmed mean of rliable) and bootstrap 95% confidence
intervals of the final evaluation score, the best score and the time to solve, plus a plot of every learning
curve with the mean and a standard-deviation band.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.commands.children import (
    PARENT_ENV,
    LocalLauncher,
    Pool,
    lab_run_command,
    local_environment,
    start_parent,
)
from lab.core.config import Sweep, command_options, replace_override, resolve
from lab.core.errors import ConfigError
from lab.core.options import MAX_SWEEP_VALUES, option
from lab.core.registry import Registry

BOOTSTRAP_RESAMPLES = 2000


@dataclass
class GridOptions:
    """The keys of several runs at once (``lab run key=a,b,c``) beyond the runs' own."""

    workers: int = option(1, "Child runs at a time (parallel `lab run` processes).", min=1)


def grid_options(cli: Mapping[str, Any]) -> tuple[GridOptions, dict[str, Any]]:
    """The grid's own keys, checked, and the runs' keys (checked with each child's config)."""
    return command_options(GridOptions, cli, "run", extra=lambda key: True)


@dataclass
class Child:
    keys: dict[str, str]  # the swept keys of this child, as written on the command line
    args: list[str]
    code: int | None = None


@dataclass
class GridResult:
    parent_run_id: str
    children: list[Child]
    aggregates: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[Child]:
        return [child for child in self.children if child.code != 0]


def expand(cli: Mapping[str, Any], fixed_args: Sequence[str]) -> list[Child]:
    """One child per combination of the swept keys, each with every fixed argument plus its own values."""
    swept = {key: value for key, value in cli.items() if isinstance(value, Sweep)}
    children = []
    for combination in itertools.product(*(value.texts for value in swept.values())):
        keys = dict(zip(swept, combination, strict=True))
        children.append(Child(keys, [*fixed_args, *(f"{key}={text}" for key, text in keys.items())]))
    return children


def check_children(registry: Registry, cli: Mapping[str, Any], config_file: Mapping[str, Any] | None) -> Any:
    """Resolve every child's config before anything is created: bad input in any child is refused up front."""
    swept = {key: value for key, value in cli.items() if isinstance(value, Sweep)}
    fixed = {key: value for key, value in cli.items() if not isinstance(value, Sweep)}
    count = math.prod(len(value.values) for value in swept.values())
    if count > MAX_SWEEP_VALUES:  # each is resolved here, and then a process
        raise ConfigError(f"{' x '.join(str(len(v.values)) for v in swept.values())} = {count:,} child runs; valid: "
                          f"up to {MAX_SWEEP_VALUES:,} (fewer values of {', '.join(swept)})")
    first = None
    for combination in itertools.product(*(value.values for value in swept.values())):
        config = resolve(registry, {**fixed, **dict(zip(swept, combination, strict=True))}, config_file)
        first = first or config
    return first


def run_grid(config: Any, children: list[Child], workers: int, plugins_dir: str | None,
             echo: Any = print) -> GridResult:
    """Start the parent run, run the children ``workers`` at a time, then log the aggregates on the parent."""
    from lab.tracking.tracker import client

    swept = sorted({key for child in children for key in child.keys})
    fixed = {key: value for key, value in config.as_dict().items() if key not in swept}
    mlflow_client = client()
    parent_id = start_parent(
        mlflow_client, config, config.runner.run_name or f"{config.plugin.name}-{len(children)}-runs",
        tags={"lab.plugin": config.plugin.name, "lab.target": str(config.target), "lab.kind": "parent",
              "lab.swept": ",".join(swept)},
        params={**fixed, "swept": ", ".join(swept), "children": len(children), "workers": workers})
    echo(f"parent run {parent_id}: {len(children)} runs of {config.plugin.name} on {config.target}, "
         f"{workers} at a time")
    status = "FAILED"
    try:
        with tempfile.TemporaryDirectory(prefix="lab-grid-") as folder:
            _execute(children, workers, plugins_dir, parent_id, Path(folder), echo)
        result = GridResult(parent_id, children)
        result.aggregates = log_aggregates(mlflow_client, parent_id, config.plugin.spec.score, swept)
        status = "FINISHED" if not result.failed else "FAILED"
        if result.failed:
            failed = "; ".join(" ".join(f"{k}={v}" for k, v in c.keys.items()) for c in result.failed)
            mlflow_client.set_tag(parent_id, "lab.error", f"{len(result.failed)} child run(s) failed: {failed}")
        return result
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        mlflow_client.set_terminated(parent_id, status=status)


def _execute(children: list[Child], workers: int, plugins_dir: str | None, parent_id: str, folder: Path,
             echo: Any) -> None:
    """Run every child to its end, ``workers`` at a time, saying how each ended; Ctrl-C stops them all."""
    command = lab_run_command(plugins_dir)
    environment = local_environment(workers, **{PARENT_ENV: parent_id})
    pool = Pool(LocalLauncher(folder), workers)
    named = {f"child-{index}": child for index, child in enumerate(children)}
    for name, child in named.items():
        pool.submit(name, [*command, *replace_override(child.args, "progress", "false")], environment)
    try:
        while pool.busy:
            for name, end in pool.wait():
                child = named[name]
                child.code = end.code
                what = " ".join(f"{k}={v}" for k, v in child.keys.items())
                if child.code == 0:
                    echo(f"  {what}: FINISHED")
                else:
                    echo(f"  {what}: failed (exit {child.code}) {end.tail}")
    except KeyboardInterrupt:  # stop the children the same way: each is checkpointed and marked KILLED
        pool.interrupt()
        raise


# ---------------------------------------------------------------------------------------------- statistics


def summarize(values: Sequence[float]) -> dict[str, float]:
    """mean, std, IQM and bootstrap 95% CIs (percentile method, seeded) of the mean and the IQM."""
    import numpy as np
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return {"n": 0.0}
    summary = {"n": float(len(x)), "mean": float(x.mean()), "std": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
               "iqm": float(stats.trim_mean(x, 0.25))}
    if len(x) > 1 and np.ptp(x) > 0:
        for name, statistic in (("mean", np.mean), ("iqm", lambda a, axis: stats.trim_mean(a, 0.25, axis=axis))):
            interval = stats.bootstrap((x,), statistic, confidence_level=0.95, n_resamples=BOOTSTRAP_RESAMPLES,
                                       method="percentile", rng=np.random.default_rng(0)).confidence_interval
            summary[f"{name}_ci_low"], summary[f"{name}_ci_high"] = float(interval.low), float(interval.high)
    else:  # every value equal (or only one): the interval is that value
        for name in ("mean", "iqm"):
            summary[f"{name}_ci_low"] = summary[f"{name}_ci_high"] = summary[name]
    return summary


def child_outcomes(mlflow_client: Any, parent_id: str, score: str) -> list[dict[str, Any]]:
    """Per child run: its keys, final and best score, time to solve (steps; None if unsolved), curve."""
    parent = mlflow_client.get_run(parent_id)
    swept = [key for key in parent.data.tags.get("lab.swept", "").split(",") if key]
    runs = mlflow_client.search_runs([parent.info.experiment_id],
                                     filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    outcomes = []
    for run in runs:
        history = sorted(mlflow_client.get_metric_history(run.info.run_id, f"eval/{score}"), key=lambda m: m.step)
        solved = run.data.tags.get("lab.solved") == "true"
        outcomes.append({
            "run_id": run.info.run_id, "status": run.info.status,
            "keys": {key: run.data.params.get(key) for key in swept},
            "final": history[-1].value if history else None, "best": run.data.metrics.get("best/score"),
            "time_to_solve": float(run.data.tags["lab.step"]) if solved and run.data.tags.get("lab.step") else None,
            "curve": [(m.step, m.value) for m in history]})
    return outcomes


def log_aggregates(mlflow_client: Any, parent_id: str, score: str, swept: Sequence[str]) -> dict[str, float]:
    """Aggregates over seeds for every configuration of the other swept keys, logged on the parent run."""
    from mlflow.entities import Metric

    outcomes = [o for o in child_outcomes(mlflow_client, parent_id, score) if o["status"] == "FINISHED"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        label = ",".join(f"{k}={outcome['keys'][k]}" for k in swept if k != "seed")
        groups.setdefault(label, []).append(outcome)
    aggregates: dict[str, float] = {}
    for label, members in groups.items():
        prefix = f"{label}/" if label else ""
        for quantity in ("final", "best", "time_to_solve"):
            for name, value in summarize([m[quantity] for m in members]).items():
                aggregates[f"{prefix}{quantity}_{name}"] = value
        aggregates[f"{prefix}solved_fraction"] = sum(m["time_to_solve"] is not None for m in members) / len(members)
    timestamp = int(time.time() * 1000)
    metrics = [Metric(key.replace("=", "-"), value, timestamp, 0) for key, value in aggregates.items()]
    for start in range(0, len(metrics), 1000):
        mlflow_client.log_batch(parent_id, metrics=metrics[start:start + 1000])
    with tempfile.TemporaryDirectory(prefix="lab-aggregates-") as tmp:
        (Path(tmp) / "aggregates.json").write_text(json.dumps(
            {"aggregates": aggregates, "children": [{k: v for k, v in o.items() if k != "curve"} for o in outcomes]},
            indent=2))
        mlflow_client.log_artifact(parent_id, str(Path(tmp) / "aggregates.json"))
        if outcomes:
            plot_curves(groups, score, Path(tmp) / "curves.png")
            mlflow_client.log_artifact(parent_id, str(Path(tmp) / "curves.png"))
    return aggregates


def plot_curves(groups: Mapping[str, list[dict[str, Any]]], score: str, path: Path) -> Path:
    """Every child's evaluation curve, thin, and per configuration the mean with a one-std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axes = plt.subplots(figsize=(7, 4))
    for index, (label, members) in enumerate(groups.items()):
        color = f"C{index}"
        steps = sorted({step for m in members for step, _ in m["curve"]})
        if not steps:
            continue
        table = np.array([_hold(m["curve"], steps) for m in members])
        for row in table:
            axes.plot(steps, row, color=color, alpha=0.25, linewidth=0.8)
        mean, std = np.nanmean(table, axis=0), np.nanstd(table, axis=0)
        axes.plot(steps, mean, color=color, linewidth=2, label=f"{label or 'mean'} ({len(members)} seeds)")
        axes.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
    axes.set_xlabel("step")
    axes.set_ylabel(f"eval/{score}")
    axes.legend(loc="best", fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _hold(curve: list[tuple[int, float]], steps: list[int]) -> list[float]:
    """The curve's value at each step, holding its last value (a run stopped when solved stays solved)."""
    values, position, last = [], 0, float("nan")
    for step in steps:
        while position < len(curve) and curve[position][0] <= step:
            last = curve[position][1]
            position += 1
        values.append(last)
    return values
