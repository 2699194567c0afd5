"""`lab sweep`: an Optuna study whose trials are child `lab run`s; failed trials do not stop it, and an
interrupted sweep continues to the requested trial count without repeating finished trials."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lab.tracking.tracker import store_lock

TESTS = Path(__file__).parents[1]  # where toy_plugin.py is
SWEEP = ["sweep", "plugin=toy", "env=Toy", "rate=uniform(0.001,0.02)", "fail_at=choice(0,150)", "steps=300",
         "eval_every=100", "stop_when_solved=false", "pruner=none", "trials=6",
         "step_seconds=0.005"]  # trials of a few seconds: the test sees them finish one by one


@pytest.fixture
def toy_dir(tmp_path: Path) -> Path:
    """A --plugins-dir that makes the toy plugin available to the sweep's child processes too."""
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "toy_entry.py").write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
                                            "from toy_plugin import register_envs, register_plugins  # noqa\n")
    return directory


def study(store: Path) -> optuna.Study:
    storage = f"sqlite:///{store / 'optuna.db'}"
    with store_lock(storage):  # as lab does: never create optuna.db's tables while a starting sweep does
        (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def counted(trials) -> list:
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))]


@pytest.mark.slow
def test_failed_trials_are_recorded_and_an_interrupted_sweep_continues(lab, client, store, toy_dir):
    process = subprocess.Popen([sys.executable, "-m", "lab.cli", "--plugins-dir", str(toy_dir), *SWEEP,
                                "workers=1"], env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               # as `lab sweep ... &` in a script starts it: SIGINT ignored; Ctrl-C must still work
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    ended = 0
    assert process.stdout is not None
    for line in process.stdout:  # the sweep prints a line as each trial ends: interrupt it after two
        ended += bool(re.match(r"\s*trial \d+ ", line))
        if ended == 2:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 130, err
    before = {t.number: (t.state, t.params) for t in counted(study(store).trials)}
    assert 2 <= len(before) < 6

    result = lab("--plugins-dir", str(toy_dir), *SWEEP, "workers=2")
    assert result.code == 0, result.err
    trials = study(store).trials
    assert len(counted(trials)) == 6, "completed to the requested count"
    for number, (state, params) in before.items():  # finished trials are kept as they were, never re-run
        assert (trials[number].state, trials[number].params) == (state, params)
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert all(t.state == TrialState.FAIL for t in interrupted)
    states = {t.state for t in counted(trials)}
    assert states == {TrialState.COMPLETE, TrialState.FAIL}, "fail_at=150 trials failed, the others completed"
    for trial in counted(trials):
        assert (trial.params["fail_at"] == 150) == (trial.state == TrialState.FAIL)

    (parent,) = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
                 if r.data.tags.get("lab.kind") == "sweep"]
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    per_trial = {}
    for child in children:
        per_trial.setdefault(child.data.tags["lab.trial"], []).append(child)
    assert all(len(per_trial[str(number)]) == 1 for number in before), "no finished trial ran twice"
    best = study(store).best_trial
    assert parent.data.tags["lab.best_trial"] == str(best.number)
    assert parent.data.metrics["best/value"] == pytest.approx(best.value)
    assert f"best: trial {best.number}" in result.out
    root = Path(parent.info.artifact_uri.removeprefix("file://"))
    assert "optimization_history.png" in {p.name for p in root.iterdir()}


@pytest.mark.slow
def test_the_median_pruner_stops_poor_trials(lab, client, store, toy_dir):
    result = lab("--plugins-dir", str(toy_dir), "sweep", "plugin=toy", "env=Toy", "rate=loguniform(0.0001,0.1)",
                 "steps=300", "eval_every=50", "stop_when_solved=false", "trials=8", "workers=2", "sampler=random")
    assert result.code == 0, result.err
    trials = study(store).trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete
    assert max(t.params["rate"] for t in pruned) < max(t.params["rate"] for t in complete)


@pytest.mark.slow
def test_the_same_sweep_runs_on_a_local_ray(lab, client, store, toy_dir):
    pytest.importorskip("ray", reason="Ray is an optional dependency (pip install -e '.[ray]')")
    import ray

    try:
        result = lab("--plugins-dir", str(toy_dir), "sweep", "plugin=toy", "env=Toy", "rate=uniform(0.001,0.02)",
                     "steps=200", "eval_every=100", "trials=4", "workers=2", "backend=ray", "pruner=none")
    finally:
        ray.shutdown()
    assert result.code == 0, result.err
    assert "4/4 trials done (4 complete" in result.out
    (parent,) = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
                 if r.data.tags.get("lab.kind") == "sweep"]
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}


@pytest.mark.parametrize(("args", "message"), [
    (["plugin=toy", "env=Toy"], "nothing to search"),
    (["plugin=toy", "env=Toy", "rate=uniform(2,1)"], "expected low < high"),
    (["plugin=toy", "env=Toy", "rate=loguniform(0,1)"], "low > 0"),
    (["plugin=toy", "env=Toy", "rate=uniform(a,b)"], "expected two numbers"),
    (["plugin=toy", "env=Toy", "rat=uniform(0.1,0.2)"], "unknown key 'rat'"),
    (["plugin=toy", "env=Toy", "peak=choice(1,-1)"], "peak=-1"),
    (["plugin=toy", "env=Toy", "rate=uniform(0.1,0.2)", "trials=0"], "trials=0: must be >= 1"),
    (["plugin=toy", "env=Toy", "rate=uniform(0.1,0.2)", "backend=dask"], "backend=dask: valid: local, ray"),
    (["plugin=toy", "env=Toy", "rate=uniform(0.1,0.2)", "address=auto"], "address= applies to backend=ray"),
    (["plugin=toy", "env=Toy", "rate=uniform(0.1,0.2)", "seed=3"], "seed= does not go with lab sweep"),
    (["plugin=toy", "env=Toy", "rate=uniform(0.1,0.2)", "sampler=grid"], "sampler=grid: valid: tpe, random"),
    (["plugin=toy", "env=Toy", "rate=uniform(0.1,0.2)", "pruner=always"], "pruner=always: valid: median, none"),
    (["plugin=toy", "env=Toy", "rate=uniform(0.1,0.2)", "workers=1.5"], "workers=1.5: expected an integer"),
])
def test_bad_sweeps_are_refused_before_anything_runs(lab, client, store, with_toy_plugin, args, message):
    result = lab("sweep", *args)
    assert result.code == 2 and message in result.err, result.err
    assert not (store / "optuna.db").exists()
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()] or ["0"])


def test_a_sweep_can_come_from_yaml(with_toy_plugin, tmp_path):
    from lab.commands.sweep import parse
    from lab.core.loading import load_registry, make_plugin_manager

    (tmp_path / "sweep.yaml").write_text("plugin: toy\nenv: Toy\nrate: loguniform(1e-4,1e-2)\n"
                                         "peak: choice(0,100)\ntrials: 7\nsteps: 300\n")
    registry = load_registry(make_plugin_manager(entry_points=False))
    plan = parse(registry, [f"config={tmp_path / 'sweep.yaml'}", "trials=9"])
    assert plan.trials == 9, "the command line wins"
    assert {k: (s.kind, s.args) for k, s in plan.space.items()} == {"rate": ("loguniform", (1e-4, 1e-2)),
                                                                    "peak": ("choice", (0, 100))}
    assert plan.config.runner.steps == 300


def test_study_names_follow_the_command(with_toy_plugin):
    from lab.commands.sweep import parse
    from lab.core.loading import load_registry, make_plugin_manager

    registry = load_registry(make_plugin_manager(entry_points=False))
    first = parse(registry, ["plugin=toy", "env=Toy", "rate=uniform(0.1,0.2)", "trials=5"])
    more = parse(registry, ["plugin=toy", "env=Toy", "rate=uniform(0.1,0.2)", "trials=50", "workers=2"])
    other = parse(registry, ["plugin=toy", "env=Toy", "rate=uniform(0.1,0.3)"])
    assert first.study == more.study != other.study, "trials= and workers= continue the same study"
    assert json.dumps(first.space["rate"].args) == "[0.1, 0.2]"


def _study(tmp_path: Path, pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    return optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}", direction="maximize",
                               pruner=pruner or optuna.pruners.NopPruner())


def test_trials_left_running_by_a_stopped_sweep_fail_as_interrupted(tmp_path):
    from lab.commands.sweep import _done, _fail_interrupted

    study = _study(tmp_path)
    study.tell(study.ask(), 1.0)
    study.ask()  # left RUNNING, as a killed sweep leaves its trials
    _fail_interrupted(study, optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}"))
    (first, second) = study.trials
    assert first.state == TrialState.COMPLETE and not first.user_attrs
    assert second.state == TrialState.FAIL and second.user_attrs == {"interrupted": True}
    assert _done(study) == 1, "an interrupted trial does not count: it is run again"


def test_a_child_reports_to_its_trial_and_says_whether_it_was_pruned(tmp_path):
    from lab.commands.sweep import TrialReporter

    study = _study(tmp_path)
    trial = study.ask()
    spec = {"storage": f"sqlite:///{tmp_path / 'optuna.db'}", "study": "s", "trial": trial.number}
    reporter = TrialReporter(spec)
    assert not reporter.should_stop(0.5, 100) and not reporter.pruned
    assert study.trials[trial.number].intermediate_values == {100: 0.5}
    study.tell(trial, 0.5)
    with pytest.raises(RuntimeError, match="not running"):
        TrialReporter(spec)


def test_a_trial_fails_when_a_child_ends_without_telling_and_stays_pruned_when_a_sibling_is_stopped():
    from lab.commands.children import ChildEnd, RunOutcome
    from lab.commands.sweep import Job, TrialRuns, _collect

    trial = object()
    jobs = [Job(trial, 0, []), Job(trial, 1, [])]
    died = TrialRuns(trial, jobs)
    _collect(died, jobs[0], ChildEnd(0, "last line", None))
    assert died.failed == "seed 0: exit 0 last line", "exit 0 but no outcome: it died before it could tell"
    pruned = TrialRuns(trial, jobs)
    _collect(pruned, jobs[0], ChildEnd(0, "", RunOutcome("r", "FINISHED", 0.1, pruned=True)))
    _collect(pruned, jobs[1], ChildEnd(130, "lab: interrupted", None))  # stopped because its trial was pruned
    assert pruned.pruned and not pruned.failed
    scored = TrialRuns(trial, jobs)
    _collect(scored, jobs[0], ChildEnd(0, "", RunOutcome("r", "FINISHED", 0.25)))
    assert scored.scores == {0: 0.25} and not scored.failed and not scored.pruned
