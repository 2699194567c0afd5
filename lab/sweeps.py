"""``lab sweep``: hyperparameter search with Optuna, every trial a set of child ``lab run`` processes.

    lab sweep plugin=ppo env=CartPole 'lr=loguniform(1e-5,1e-2)' 'n_steps=choice(64,128,256)' \\
        trials=40 seeds=2 workers=2

Optuna's TPE sampler proposes the values; its median pruner stops a trial whose first seed evaluates below the
median of earlier trials at the same step. A trial's value is the mean over its seeds of each run's best score. The
study lives in ``optuna.db`` beside the tracking store under a name derived from the command, so re-running the
same command (with the same or a larger ``trials=``) continues it: finished trials are never repeated, and trials
cut short by an interruption are run again. A trial whose run fails (an exception, a NaN) is recorded as failed
and the sweep goes on. All runs nest under one MLflow parent run, which gets the best values and Optuna's history
and importance plots.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import smoke
from lab.config import check_unique_keys, parse_overrides, replace_override, resolve
from lab.errors import ConfigError
from lab.registry import Registry

POLL_SECONDS = 0.5  # how often the sweep looks at its running trials (each takes seconds at the least)
SWEEP_KEYS = {"trials": 10, "seeds": 1, "workers": 1, "sampler": "tpe", "pruner": "median", "study": None,
              "backend": "local", "address": None}
TRIAL_ENV = "LAB_OPTUNA_TRIAL"  # JSON {storage, study, trial}: the child run that reports to the pruner
TRIAL_NUMBER_ENV = "LAB_SWEEP_TRIAL"  # every child run of a trial is tagged lab.trial with it
_DISTRIBUTION = re.compile(r"^(loguniform|uniform|int|choice)\((.*)\)$")


@dataclass(frozen=True)
class Space:
    """One searched key."""

    kind: str  # loguniform | uniform | int | choice
    args: tuple[Any, ...]

    def suggest(self, trial: Any, key: str) -> Any:
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
    values = parse_overrides(run_args)
    options = {key: values.pop(key, default) for key, default in SWEEP_KEYS.items()}
    for key in ("trials", "seeds", "workers"):
        if isinstance(options[key], bool) or not isinstance(options[key], int) or options[key] < 1:
            raise ConfigError(f"{key}={options[key]}: expected an integer >= 1")
    if options["sampler"] not in ("tpe", "random"):
        raise ConfigError(f"sampler={options['sampler']}: valid samplers are tpe, random")
    if options["pruner"] not in ("median", "none"):
        raise ConfigError(f"pruner={options['pruner']}: valid pruners are median, none")
    if options["backend"] not in ("local", "ray"):
        raise ConfigError(f"backend={options['backend']}: valid backends are local, ray")
    if options["address"] is not None and options["backend"] != "ray":
        raise ConfigError("address= applies to backend=ray (e.g. address=auto for the cluster `ray start` made)")
    if options["backend"] == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ConfigError("backend=ray needs Ray: pip install 'ray>=2.30' (or pip install -e '.[ray]')")
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
                                        options["seeds"]], default=str).encode()).hexdigest()[:10]
    study = options["study"] or f"{config.plugin.name}-{config.target}-{digest}".replace("/", "_")
    trials, seeds = smoke.cap_sweep(options["trials"], options["seeds"])
    return SweepPlan(config, fixed_args, space, trials, seeds, options["workers"],
                     options["sampler"], options["pruner"], str(study), storage_uri(), options["backend"],
                     None if options["address"] is None else str(options["address"]))


def _with_file(args: Sequence[str]) -> list[str]:
    """The arguments of ``config=FILE`` (as key=value) followed by the others, each key once (the last wins)."""
    from lab.config import load_config_file

    files = [arg.partition("=")[2] for arg in args if arg.partition("=")[0].strip() == "config"]
    if not files:
        return list(args)
    merged = {key: f"{key}={_text(value) if not isinstance(value, str) else value}"
              for key, value in load_config_file(files[-1]).items()}
    for arg in args:
        key = arg.partition("=")[0].strip()
        if key != "config":
            merged[key] = arg
    return list(merged.values())


def _space(key: str, kind: str, inside: str) -> Space:
    from lab.config import Sweep

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
    from lab.tracking import tracking_uri

    uri = tracking_uri()
    folder = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'optuna.db'}"


# ---------------------------------------------------------------------------------------------- running


@dataclass
class Job:
    trial: Any
    seed: int
    args: list[str]
    process: subprocess.Popen | None = None  # local launcher
    log: Path | None = None
    handle: Any = None  # Ray launcher: the task's future
    code: int | None = None
    tail: str = ""
    ended: bool = False


@dataclass
class TrialRuns:
    trial: Any
    jobs: list[Job]
    scores: dict[int, float | None] = field(default_factory=dict)
    failed: str | None = None
    pruned: bool = False


def run_sweep(plan: SweepPlan, plugins_dir: str | None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(n_warmup_steps=0) if plan.pruner == "median" else optuna.pruners.NopPruner()
    from lab.tracking import store_lock

    with store_lock(plan.storage):  # two sweeps starting on a new optuna.db would both create its tables
        study = optuna.create_study(study_name=plan.study, storage=plan.storage, direction="maximize",
                                    pruner=pruner, load_if_exists=True)
    # Seeded by how far the study got: reproducible, and a continued sweep does not propose the first trials again.
    seed = len(study.get_trials(deepcopy=False))
    study.sampler = (optuna.samplers.TPESampler(seed=seed) if plan.sampler == "tpe"
                     else optuna.samplers.RandomSampler(seed=seed))
    _fail_interrupted(study)
    parent_id = _parent_run(study, plan)
    echo(f"study {plan.study} in {plan.storage}: {_done(study)}/{plan.trials} trials done; parent run {parent_id}")
    status = "FAILED"
    try:
        with tempfile.TemporaryDirectory(prefix="lab-sweep-") as logs:
            _loop(study, plan, plugins_dir, parent_id, Path(logs), echo)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        summary = _finish(study, plan, parent_id, status)
    return summary


def _done(study: Any) -> int:
    """Trials that count towards trials=: finished, pruned, or failed on their own (not interrupted)."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")))


def _fail_interrupted(study: Any) -> None:
    """Trials left RUNNING by a killed sweep are failed as interrupted: they do not count, and are run again."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _parent_run(study: Any, plan: SweepPlan) -> str:
    """The sweep's MLflow parent run, reopened when the sweep continues."""
    from lab.runner import experiment_name
    from lab.tracking import client, experiment_id, host_tags

    mlflow_client = client()
    existing = study.user_attrs.get("mlflow_parent_run")
    if existing:
        try:
            mlflow_client.update_run(existing, status="RUNNING")
            return existing
        except Exception:  # the store was reset: start a new parent
            pass
    parent = mlflow_client.create_run(
        experiment_id(mlflow_client, experiment_name(plan.config)), run_name=f"sweep-{plan.study}",
        tags={"lab.kind": "sweep", "lab.plugin": plan.config.plugin.name, "lab.target": str(plan.config.target),
              "lab.study": plan.study, "lab.optuna_storage": plan.storage, **host_tags()})
    from mlflow.entities import Param

    space = {f"space/{key}": f"{s.kind}{s.args}" for key, s in plan.space.items()}
    mlflow_client.log_batch(parent.info.run_id, params=[Param(k, str(v)) for k, v in {
        **space, "seeds": plan.seeds, "sampler": plan.sampler, "pruner": plan.pruner, "study": plan.study,
        "fixed": " ".join(plan.fixed_args)}.items()])
    study.set_user_attr("mlflow_parent_run", parent.info.run_id)
    return parent.info.run_id


class LocalLauncher:
    """Child runs as processes on this machine."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs

    def start(self, job: Job, command: list[str], environment: dict[str, str]) -> None:
        job.log = self.logs / f"trial-{job.trial.number}-seed-{job.seed}.log"
        with job.log.open("w") as log:
            job.process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)

    def poll(self, job: Job) -> bool:
        """True once the job has ended; sets ``job.code`` and ``job.tail`` (its last output line)."""
        if job.process is None or job.process.poll() is None:
            return False
        job.code = job.process.returncode
        lines = job.log.read_text().strip().splitlines() if job.log else []
        job.tail = lines[-1] if lines else ""
        return True

    def stop(self, job: Job) -> None:
        if job.process and job.process.poll() is None:
            job.process.send_signal(signal.SIGINT)  # Ctrl-C: the run is checkpointed and marked KILLED

    def close(self, jobs: list[Job]) -> None:
        for job in jobs:
            if job.process:
                job.process.wait(timeout=120)


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
        self.task = ray.remote(num_cpus=1)(_run_command)

    def start(self, job: Job, command: list[str], environment: dict[str, str]) -> None:
        job.handle = self.task.remote(command, environment)

    def poll(self, job: Job) -> bool:
        ready, _ = self.ray.wait([job.handle], timeout=0)
        if not ready:
            return False
        job.code, job.tail = self.ray.get(ready[0])
        return True

    def stop(self, job: Job) -> None:
        self.ray.cancel(job.handle, force=True)

    def close(self, jobs: list[Job]) -> None:
        pass


def _run_command(command: list[str], environment: dict[str, str]) -> tuple[int, str]:
    """A Ray task: one child `lab run`; returns its exit code and last output line."""
    result = subprocess.run(command, env={**os.environ, **environment}, capture_output=True, text=True)
    lines = (result.stdout + result.stderr).strip().splitlines()
    return result.returncode, lines[-1] if lines else ""


def _loop(study: Any, plan: SweepPlan, plugins_dir: str | None, parent_id: str, logs: Path, echo: Any) -> None:
    from lab.experiments import lab_run_command, local_environment

    command = lab_run_command(plugins_dir)
    launcher = RayLauncher(plan.address, plan.workers) if plan.backend == "ray" else LocalLauncher(logs)
    active: list[TrialRuns] = []
    queue: list[Job] = []
    running: list[Job] = []
    done = _done(study)  # counted again only when a trial ends: reading the study costs a query
    try:
        while True:
            while done + len(active) < plan.trials and len(queue) < plan.workers:
                active.append(_ask(study, plan, queue))
            while queue and len(running) < plan.workers:
                job = queue.pop(0)
                extra = {"LAB_PARENT_RUN_ID": parent_id, TRIAL_NUMBER_ENV: str(job.trial.number)}
                # Ray gives each task its own thread count (OMP_NUM_THREADS = the task's CPUs) on its node.
                environment = ({**os.environ, **extra} if plan.backend == "ray"
                               else local_environment(plan.workers, **extra))
                if job.seed == 0 and plan.pruner != "none":
                    environment[TRIAL_ENV] = json.dumps({"storage": plan.storage, "study": plan.study,
                                                         "trial": job.trial.number})
                launcher.start(job, [*command, *replace_override(job.args, "progress", "false")], environment)
                running.append(job)
            if not running and not queue:
                break
            time.sleep(POLL_SECONDS)
            for job in [j for j in running if launcher.poll(j)]:
                running.remove(job)
                job.ended = True
                runs = next(r for r in active if r.trial is job.trial)
                _collect(runs, job, parent_id)
                if runs.pruned or runs.failed:  # no point finishing the trial's other seeds
                    for sibling in [j for j in queue if j.trial is job.trial]:
                        queue.remove(sibling)
                        sibling.ended = True
                    for sibling in [j for j in running if j.trial is job.trial]:
                        launcher.stop(sibling)
                if all(j.ended for j in runs.jobs):
                    active.remove(runs)
                    _tell(study, runs, echo)
                    done = _done(study)
    except KeyboardInterrupt:
        for job in running:
            launcher.stop(job)
        launcher.close(running)
        raise


def _ask(study: Any, plan: SweepPlan, queue: list[Job]) -> TrialRuns:
    trial = study.ask()
    values = {key: searched.suggest(trial, key) for key, searched in plan.space.items()}
    texts = [f"{key}={_text(value)}" for key, value in values.items()]
    jobs = [Job(trial, seed, [*plan.fixed_args, *texts, f"seed={seed}", f"experiment={_experiment(plan)}"])
            for seed in range(plan.seeds)]
    queue.extend(jobs)
    return TrialRuns(trial, jobs)


def _text(value: Any) -> str:
    """A value as a command-line override."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return json.dumps(value) if isinstance(value, list | str) else repr(value)


def _experiment(plan: SweepPlan) -> str:
    from lab.runner import experiment_name

    return experiment_name(plan.config)


def _collect(runs: TrialRuns, job: Job, parent_id: str) -> None:
    """Read the finished child's outcome from the tracking store (its best score, pruned or failed)."""
    from lab.tracking import tracking_uri

    mlflow_client = _client(tracking_uri())
    found = mlflow_client.search_runs(
        [mlflow_client.get_experiment_by_name(_experiment_name_of(job)).experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and params.seed = '{job.seed}' "
                      f"and tags.`lab.trial` = '{job.trial.number}'") if _experiment_name_of(job) else []
    run = found[0] if found else None
    if job.code != 0 or run is None:
        runs.failed = runs.failed or f"seed {job.seed}: exit {job.code} {job.tail}".strip()
        return
    if run.data.tags.get("lab.pruned") == "true":
        runs.pruned = True
    runs.scores[job.seed] = run.data.metrics.get("best/score")


@functools.cache
def _client(uri: str) -> Any:
    """One tracking client per store for the sweep's whole loop (opening one costs a store check)."""
    from lab.tracking import client

    return client()


def _experiment_name_of(job: Job) -> str:
    return next(arg.partition("=")[2] for arg in job.args if arg.startswith("experiment="))


def _tell(study: Any, runs: TrialRuns, echo: Any) -> None:
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


def _finish(study: Any, plan: SweepPlan, parent_id: str, status: str) -> dict[str, Any]:
    """Best values on the parent run (tags and metrics), Optuna's plots as artifacts, the run's final status."""
    from optuna.trial import TrialState

    from lab.tracking import client

    mlflow_client = client()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    summary: dict[str, Any] = {"study": plan.study, "storage": plan.storage, "parent_run_id": parent_id,
                               "done": _done(study), "trials": plan.trials, "complete": len(complete),
                               "failed": sum(t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")
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


def _log_plots(mlflow_client: Any, parent_id: str, study: Any) -> None:
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

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.load_study(study_name=spec["study"], storage=spec["storage"])
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, spec["trial"])
        self.trial = optuna.trial.Trial(self.study, trial_id)

    def should_stop(self, score: float, step: int) -> bool:
        self.trial.report(score, step)
        return self.trial.should_prune()


def reporter_from_environment() -> TrialReporter | None:
    spec = os.environ.get(TRIAL_ENV)
    return TrialReporter(json.loads(spec)) if spec else None
