"""``lab sweep``: hyperparameter search with Optuna, every trial a set of child ``lab run`` processes.

    lab sweep plugin=ppo env=CartPole 'lr=loguniform(1e-5,1e-2)' 'n_steps=choice(64,128,256)' \\
        trials=40 seeds=2 workers=2

Optuna's TPE sampler proposes the values; its median pruner stops a trial whose first seed evaluates below the
median of earlier trials at the same step. A trial's value is the mean over its seeds of each run's best score. The
study lives in ``optuna.db`` beside the tracking store under a name derived from the command, so re-running the
same command (with the same or a larger ``trials=``) continues it: finished trials are never repeated, and trials
cut short by an interruption are run again. A trial whose run fails (an exception, a NaN) is recorded as failed
and the sweep goes on. All runs nest under one MLflow parent run, which gets the best values and Optuna's history
and importance plots. Each child run tells the sweep how it ended (its best score, whether it was pruned) through
the result file of :mod:`lab.commands.children`; the sweep's own keys are :class:`SweepOptions`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lab.commands import common
from lab.commands.children import (
    PARENT_ENV,
    ChildEnd,
    LocalLauncher,
    Pool,
    lab_run_command,
    local_environment,
    run_child,
    start_parent,
)
from lab.commands.common import check_experiment, check_writable, interruptible
from lab.core import smoke
from lab.core.config import check_unique_keys, command_options, parse_overrides, replace_override, resolve
from lab.core.errors import ConfigError
from lab.core.options import option
from lab.core.registry import Registry
from lab.core.text import as_override

if TYPE_CHECKING:
    import optuna

TRIAL_ENV = "LAB_OPTUNA_TRIAL"  # JSON {storage, study, trial}: the child run that reports to the pruner
TRIAL_NUMBER_ENV = "LAB_SWEEP_TRIAL"  # every child run of a trial is tagged lab.trial with it
INTERRUPTED = "interrupted"  # a trial's user attribute: cut short by a stopped sweep, so run again (not counted)
_DISTRIBUTION = re.compile(r"^(loguniform|uniform|int|choice)\((.*)\)$")


@dataclass
class SweepOptions:
    """The keys of ``lab sweep`` itself; every other key is the runs' own, or searched (``lr=loguniform(a,b)``)."""

    trials: int = option(10, "Trials of the study; a continued sweep runs only those still missing.",
                         min=1)
    seeds: int = option(1, "Runs per trial, seeds 0..N-1; the trial's value is the mean of their best scores.",
                        min=1)
    workers: int = option(1, "Child runs at a time.", min=1)
    sampler: Literal["tpe", "random"] = option("tpe", "Optuna's sampler: tpe (TPE) or random.")
    pruner: Literal["median", "none"] = option(
        "median", "median: stop a trial whose first seed evaluates below the median of earlier trials at the same "
                  "step; none: run every trial to its end.")
    study: str | None = option(None, "The study's name in optuna.db; default: derived from the command, so the "
                                     "same command continues it.")
    backend: Literal["local", "ray"] = option("local", "Where child runs run: local processes, or Ray tasks.")
    address: str | None = option(None, "backend=ray: the Ray cluster (auto: the one `ray start` made); default: a "
                                        "Ray of this machine's own.")


SWEEP_KEYS = tuple(f.name for f in dataclasses.fields(SweepOptions))


@dataclass(frozen=True)
class Space:
    """One searched key."""

    kind: str  # loguniform | uniform | int | choice
    args: tuple[Any, ...]

    def suggest(self, trial: optuna.trial.Trial, key: str) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(key, list(self.args))
        if self.kind == "int":
            return trial.suggest_int(key, int(self.args[0]), int(self.args[1]))
        return trial.suggest_float(key, float(self.args[0]), float(self.args[1]), log=self.kind == "loguniform")

    def example(self) -> Any:
        return self.args[0]


@dataclass
class SweepPlan:
    config: Any
    fixed_args: list[str]
    space: dict[str, Space]
    trials: int
    seeds: int
    workers: int
    sampler: str
    pruner: str
    study: str
    storage: str
    backend: str = "local"
    address: str | None = None


def parse(registry: Registry, args: Sequence[str]) -> SweepPlan:
    """Split the arguments into searched keys, sweep keys and fixed run keys; check them all before anything runs.

    ``config=FILE.yaml`` gives the same keys in YAML (``lr: loguniform(1e-5,1e-2)``); command-line keys win."""
    check_unique_keys(args)  # searched keys too, which the grammar does not parse
    args = _with_file(args)
    space: dict[str, Space] = {}
    run_args: list[str] = []
    for arg in args:
        key, _, value = arg.partition("=")
        match = _DISTRIBUTION.match(value.strip())
        if match:
            space[key.strip()] = _space(key.strip(), match.group(1), match.group(2))
        else:
            run_args.append(arg)
    options, values = command_options(SweepOptions, parse_overrides(run_args), "sweep", extra=lambda key: True)
    _check_backend(options)
    if not space:
        raise ConfigError("nothing to search: give at least one key as loguniform(a,b), uniform(a,b), int(a,b) "
                          "or choice(a,b,...)")
    for key in ("seed", "resume", "config"):
        if key in values or key in space:
            raise ConfigError(f"{key}= does not go with lab sweep (seeds=N runs seeds 0..N-1 of every trial)")
    config = resolve(registry, {**values, **{key: s.example() for key, s in space.items()}})
    for key, searched in space.items():  # every value the search can propose must be valid for the plugin
        for example in searched.args:
            resolve(registry, {**values, key: example})
    fixed_args = [arg for arg in run_args if arg.partition("=")[0].strip() not in SWEEP_KEYS]
    digest = hashlib.sha256(json.dumps([sorted(fixed_args), sorted((k, s.kind, s.args) for k, s in space.items()),
                                        options.seeds], default=str).encode()).hexdigest()[:10]
    study = options.study or f"{config.plugin.name}-{config.target}-{digest}".replace("/", "_")
    trials, seeds = smoke.cap_sweep(options.trials, options.seeds)
    return SweepPlan(config, fixed_args, space, trials, seeds, options.workers, options.sampler, options.pruner,
                     study, storage_uri(), options.backend, options.address)


def _check_backend(options: SweepOptions) -> None:
    """What the keys allow one by one is checked already: here, what they need together and of this machine."""
    if options.address is not None and options.backend != "ray":
        raise ConfigError("address= applies to backend=ray (e.g. address=auto for the cluster `ray start` made)")
    if options.backend == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ConfigError("backend=ray needs Ray: pip install 'ray>=2.30' (or pip install -e '.[ray]')")


def _with_file(args: Sequence[str]) -> list[str]:
    """The arguments of ``config=FILE`` (as key=value) followed by the others, each key once (the last wins)."""
    from lab.core.config import load_config_file

    files = [arg.partition("=")[2] for arg in args if arg.partition("=")[0].strip() == "config"]
    if not files:
        return list(args)
    merged = {key: f"{key}={as_override(value) if not isinstance(value, str) else value}"
              for key, value in load_config_file(files[-1]).items()}
    for arg in args:
        key = arg.partition("=")[0].strip()
        if key != "config":
            merged[key] = arg
    return list(merged.values())


def _space(key: str, kind: str, inside: str) -> Space:
    from lab.core.config import Sweep

    try:
        parsed = parse_overrides([f"{key}={inside}"], sweeps=True)[key]
    except ConfigError:
        raise ConfigError(f"{key}={kind}({inside}): cannot read the values inside the parentheses") from None
    items = list(parsed.values) if isinstance(parsed, Sweep) else [parsed]
    if kind == "choice":
        return Space(kind, tuple(items))
    if len(items) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
        raise ConfigError(f"{key}={kind}({inside}): expected two numbers, low and high")
    low, high = items
    if low >= high or (kind == "loguniform" and low <= 0):
        condition = "low < high and low > 0" if kind == "loguniform" else "low < high"
        raise ConfigError(f"{key}={kind}({inside}): expected {condition}")
    return Space(kind, (low, high))


def storage_uri() -> str:
    """``optuna.db`` beside a sqlite tracking store (or ./optuna.db); ``LAB_OPTUNA_STORAGE`` overrides."""
    if os.environ.get("LAB_OPTUNA_STORAGE"):
        return os.environ["LAB_OPTUNA_STORAGE"]
    from lab.tracking.tracker import tracking_uri

    uri = tracking_uri()
    folder = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'optuna.db'}"


# ---------------------------------------------------------------------------------------------- running


@dataclass(eq=False)
class Job:
    """One child run of a trial: one seed."""

    trial: optuna.trial.Trial
    seed: int
    args: list[str]
    ended: bool = False

    @property
    def name(self) -> str:
        return f"trial-{self.trial.number}-seed-{self.seed}"


@dataclass
class TrialRuns:
    trial: optuna.trial.Trial
    jobs: list[Job]
    scores: dict[int, float | None] = field(default_factory=dict)
    failed: str | None = None
    pruned: bool = False


def run_sweep(plan: SweepPlan, plugins_dir: str | None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(n_warmup_steps=0) if plan.pruner == "median" else optuna.pruners.NopPruner()
    from lab.tracking.tracker import store_lock

    with store_lock(plan.storage):  # two sweeps starting on a new optuna.db would both create its tables
        storage = optuna.storages.RDBStorage(plan.storage)
        study = optuna.create_study(study_name=plan.study, storage=storage, direction="maximize", pruner=pruner,
                                    load_if_exists=True)
    # Seeded by how far the study got: reproducible, and a continued sweep does not propose the first trials again.
    seed = len(study.get_trials(deepcopy=False))
    study.sampler = (optuna.samplers.TPESampler(seed=seed) if plan.sampler == "tpe"
                     else optuna.samplers.RandomSampler(seed=seed))
    _fail_interrupted(study, storage)
    parent_id = _parent_run(study, plan)
    echo(f"study {plan.study} in {plan.storage}: {_done(study)}/{plan.trials} trials done; parent run {parent_id}")
    status = "FAILED"
    try:
        with tempfile.TemporaryDirectory(prefix="lab-sweep-") as folder:
            _loop(study, plan, plugins_dir, parent_id, Path(folder), echo)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        summary = _finish(study, plan, parent_id, status)
    return summary


def _done(study: optuna.Study) -> int:
    """Trials that count towards trials=: finished, pruned, or failed on their own (not interrupted)."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED)))


def _fail_interrupted(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Trials left RUNNING by a stopped sweep are failed as interrupted: they do not count, and are run again."""
    from optuna.trial import TrialState

    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # Marked before tell(): a finished trial is read-only.
        _live_trial(study, storage, frozen.number).set_user_attr(INTERRUPTED, True)
        study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)


def _live_trial(study: optuna.Study, storage: optuna.storages.BaseStorage, number: int) -> optuna.trial.Trial:
    """Trial ``number`` of ``study`` (opened on ``storage``), live: one that takes reports and user attributes.

    Optuna hands a live trial only to the process that asked for it (``study.ask()``); a sweep's child run, and a
    sweep continuing a study, know the trial only by its number. The storage API (public, documented for custom
    storages) maps the number to the trial's id, which is what a live trial is made from."""
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    return optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))


def _parent_run(study: optuna.Study, plan: SweepPlan) -> str:
    """The sweep's MLflow parent run, reopened when the sweep continues."""
    from lab.tracking.tracker import client

    mlflow_client = client()
    existing = study.user_attrs.get("mlflow_parent_run")
    if existing:
        try:
            mlflow_client.update_run(existing, status="RUNNING")
            return existing
        except Exception:  # the store was reset: start a new parent
            pass
    space = {f"space/{key}": f"{s.kind}{s.args}" for key, s in plan.space.items()}
    parent_id = start_parent(
        mlflow_client, plan.config, f"sweep-{plan.study}",
        tags={"lab.kind": "sweep", "lab.plugin": plan.config.plugin.name, "lab.target": str(plan.config.target),
              "lab.study": plan.study, "lab.optuna_storage": plan.storage},
        params={**space, "seeds": plan.seeds, "sampler": plan.sampler, "pruner": plan.pruner, "study": plan.study,
                "fixed": " ".join(plan.fixed_args)})
    study.set_user_attr("mlflow_parent_run", parent_id)
    return parent_id


class RayLauncher:
    """Child runs as Ray tasks (one CPU each) on a Ray cluster, or on a local Ray when no address is given.

    Every node needs this environment (lab and the plugins) and must reach the tracking store: use an
    ``mlflow server`` as MLFLOW_TRACKING_URI and a shared ``LAB_OPTUNA_STORAGE`` database for a real cluster."""

    def __init__(self, address: str | None, workers: int) -> None:
        import ray

        self.ray = ray
        if not ray.is_initialized():
            # logging_level: Ray's own INFO and WARNING lines at start-up are not lab's output.
            if address:
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        self.task = ray.remote(num_cpus=1)(run_child)

    def start(self, name: str, command: list[str], environment: dict[str, str]) -> Any:
        return self.task.remote(command, environment)  # a Ray ObjectRef to the task's ChildEnd

    def poll(self, handle: Any) -> ChildEnd | None:
        ready, _ = self.ray.wait([handle], timeout=0)
        if not ready:
            return None
        try:
            return self.ray.get(ready[0])
        except self.ray.exceptions.RayError as e:  # cancelled (by stop()), or its worker died
            return ChildEnd(1, type(e).__name__, None)

    def stop(self, handle: Any) -> None:
        self.ray.cancel(handle, force=True)

    def close(self, handles: list[Any]) -> None:
        pass


def _loop(study: optuna.Study, plan: SweepPlan, plugins_dir: str | None, parent_id: str, folder: Path,
          echo: Callable[[str], None]) -> None:
    """Ask trials while there is room for them, run their seeds, and tell each trial its value once all its seeds
    have ended (or one failed or was pruned: the others are stopped)."""
    command = lab_run_command(plugins_dir)
    launcher = RayLauncher(plan.address, plan.workers) if plan.backend == "ray" else LocalLauncher(folder)
    pool = Pool(launcher, plan.workers)
    active: list[TrialRuns] = []
    jobs: dict[str, Job] = {}
    done = _done(study)  # counted again only when a trial ends: reading the study costs a query
    try:
        while True:
            while done + len(active) < plan.trials and len(pool.queued) < plan.workers:
                runs = _ask(study, plan)
                active.append(runs)
                for job in runs.jobs:
                    jobs[job.name] = job
                    pool.submit(job.name, [*command, *replace_override(job.args, "progress", "false")],
                                _environment(plan, parent_id, job))
            if not pool.busy:
                break
            for name, end in pool.wait():
                job = jobs.pop(name)
                job.ended = True
                runs = next(r for r in active if r.trial is job.trial)
                _collect(runs, job, end)
                if runs.pruned or runs.failed:  # no point finishing the trial's other seeds
                    for sibling in runs.jobs:
                        if not sibling.ended and pool.cancel(sibling.name):
                            sibling.ended = True
                if all(j.ended for j in runs.jobs):
                    active.remove(runs)
                    _tell(study, runs, echo)
                    done = _done(study)
    except KeyboardInterrupt:
        pool.interrupt()
        raise


def _environment(plan: SweepPlan, parent_id: str, job: Job) -> dict[str, str]:
    """A child run's environment: its parent run and trial, and for the seed that reports to the pruner, where."""
    extra = {PARENT_ENV: parent_id, TRIAL_NUMBER_ENV: str(job.trial.number)}
    # Ray gives each task its own thread count (OMP_NUM_THREADS = the task's CPUs) on its node.
    environment = ({**os.environ, **extra} if plan.backend == "ray"
                   else local_environment(plan.workers, **extra))
    if job.seed == 0 and plan.pruner != "none":
        environment[TRIAL_ENV] = json.dumps({"storage": plan.storage, "study": plan.study,
                                             "trial": job.trial.number})
    return environment


def _ask(study: optuna.Study, plan: SweepPlan) -> TrialRuns:
    trial = study.ask()
    values = {key: searched.suggest(trial, key) for key, searched in plan.space.items()}
    texts = [f"{key}={as_override(value)}" for key, value in values.items()]
    jobs = [Job(trial, seed, [*plan.fixed_args, *texts, f"seed={seed}", f"experiment={_experiment(plan)}"])
            for seed in range(plan.seeds)]
    return TrialRuns(trial, jobs)


def _experiment(plan: SweepPlan) -> str:
    from lab.training.build import experiment_name

    return experiment_name(plan.config)


def _collect(runs: TrialRuns, job: Job, end: ChildEnd) -> None:
    """The ended child's part of its trial, as the child told it: its best score, or that it was pruned. A child
    that exited with an error, or without telling (it died first), fails the trial."""
    if runs.failed or runs.pruned:  # decided already: this child was stopped for it, and says nothing more
        return
    if end.code != 0 or end.outcome is None:
        runs.failed = f"seed {job.seed}: exit {end.code} {end.tail}".strip()
        return
    if end.outcome.pruned:
        runs.pruned = True
    runs.scores[job.seed] = end.outcome.best_score


def _tell(study: optuna.Study, runs: TrialRuns, echo: Callable[[str], None]) -> None:
    import math

    from optuna.trial import TrialState

    values = ", ".join(f"{k}={v}" for k, v in runs.trial.params.items())
    if runs.failed:
        runs.trial.set_user_attr("error", runs.failed[:500])  # before tell(): a finished trial is read-only
        study.tell(runs.trial, state=TrialState.FAIL)
        echo(f"  trial {runs.trial.number} ({values}): failed — {runs.failed}")
    elif runs.pruned:
        study.tell(runs.trial, state=TrialState.PRUNED)
        echo(f"  trial {runs.trial.number} ({values}): pruned")
    else:
        scores = [s for s in runs.scores.values() if s is not None and math.isfinite(s)]
        if len(scores) < len(runs.jobs):
            study.tell(runs.trial, state=TrialState.FAIL)
            echo(f"  trial {runs.trial.number} ({values}): failed — no finite score")
            return
        value = sum(scores) / len(scores)
        study.tell(runs.trial, value)
        echo(f"  trial {runs.trial.number} ({values}): {value:.4g}")


def _finish(study: optuna.Study, plan: SweepPlan, parent_id: str, status: str) -> dict[str, Any]:
    """Best values on the parent run (tags and metrics), Optuna's plots as artifacts, the run's final status."""
    from optuna.trial import TrialState

    from lab.tracking.tracker import client

    mlflow_client = client()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    summary: dict[str, Any] = {"study": plan.study, "storage": plan.storage, "parent_run_id": parent_id,
                               "done": _done(study), "trials": plan.trials, "complete": len(complete),
                               "failed": sum(t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED)
                                             for t in study.get_trials(deepcopy=False)),
                               "pruned": sum(t.state == TrialState.PRUNED for t in study.get_trials(deepcopy=False))}
    if complete:
        best = study.best_trial
        summary.update(best_value=best.value, best_params=best.params, best_trial=best.number)
        mlflow_client.set_tag(parent_id, "lab.best_trial", str(best.number))
        for key, value in best.params.items():
            mlflow_client.set_tag(parent_id, f"lab.best.{key}", str(value))
        mlflow_client.log_metric(parent_id, "best/value", best.value, step=len(study.trials))
        for key in ("complete", "failed", "pruned"):
            mlflow_client.log_metric(parent_id, f"sweep/{key}", summary[key], step=len(study.trials))
        _log_plots(mlflow_client, parent_id, study)
    mlflow_client.set_terminated(parent_id, status=status)
    return summary


def _log_plots(mlflow_client: Any, parent_id: str, study: optuna.Study) -> None:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    with tempfile.TemporaryDirectory(prefix="lab-sweep-plots-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        for name, draw in (("optimization_history.png", plots.plot_optimization_history),
                           ("param_importances.png", plots.plot_param_importances)):
            try:
                axes = draw(study)
            except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importances need 2+ varied trials
                continue
            figure = axes.figure if hasattr(axes, "figure") else plt.gcf()
            figure.set_size_inches(7, 4)
            figure.tight_layout()
            figure.savefig(Path(tmp) / name, dpi=100)
            plt.close(figure)
            mlflow_client.log_artifact(parent_id, str(Path(tmp) / name))


# ---------------------------------------------------------------------------------------------- the child side


class TrialReporter:
    """In a child run of a sweep: reports each evaluation to its Optuna trial and says when to prune."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        import optuna
        from optuna.trial import TrialState

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.RDBStorage(spec["storage"])
        study = optuna.load_study(study_name=spec["study"], storage=storage)
        frozen = next((t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                       if t.number == spec["trial"]), None)
        if frozen is None:
            raise RuntimeError(f"trial {spec['trial']} of study {spec['study']} is not running: its sweep has "
                               "ended it")
        self.trial = _live_trial(study, storage, frozen.number)
        self.pruned = False  # what this run tells its sweep when it ends

    def should_stop(self, score: float, step: int) -> bool:
        self.trial.report(score, step)
        self.pruned = bool(self.trial.should_prune())  # numpy's bool, from the pruner
        return self.pruned


def reporter_from_environment() -> TrialReporter | None:
    spec = os.environ.get(TRIAL_ENV)
    return TrialReporter(json.loads(spec)) if spec else None


def trial_tags() -> dict[str, str]:
    """The tag of a sweep's child run that says which trial it is part of."""
    number = os.environ.get(TRIAL_NUMBER_ENV)
    return {"lab.trial": number} if number else {}


# ---------------------------------------------------------------------------------------------- the command


def cmd_sweep(args: argparse.Namespace) -> int:
    interruptible()
    check_writable()
    plan = parse(common.registry(), args.overrides)
    check_experiment(plan.config)
    console = common.console()
    console.print(f"[bold]lab sweep[/] {plan.config.plugin.name} on {plan.config.target}: "
                  f"{', '.join(f'{k}={s.kind}{s.args}' for k, s in plan.space.items())}; {plan.trials} trials x "
                  f"{plan.seeds} seed(s), {plan.workers} at a time")
    try:
        summary = run_sweep(plan, common.plugins_dir, echo=console.print)
    except KeyboardInterrupt:
        print("lab: interrupted: running trials stopped; run the same command again to continue the study",
              file=sys.stderr)
        return 130
    console.print(f"\n[bold]{summary['done']}/{summary['trials']} trials done[/] ({summary['complete']} complete, "
                  f"{summary['pruned']} pruned, {summary['failed']} failed); parent run {summary['parent_run_id']}")
    if "best_params" in summary:
        values = " ".join(f"{k}={v}" for k, v in summary["best_params"].items())
        console.print(f"  best: trial {summary['best_trial']}, {summary['best_value']:.4g} with {values}")
    return 0
