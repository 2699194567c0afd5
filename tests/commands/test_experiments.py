"""Several runs from one command (`seed=0,1,2 workers=2`): children nested under a parent whose statistics match
a recomputation from the children."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lab.commands.seeds import summarize


@pytest.mark.slow
def test_seeds_run_as_children_and_the_parent_aggregates_them(lab, client):
    result = lab("run", "plugin=ppo", "env=CartPole", "seed=0,1,2", "workers=2", "steps=1024", "eval_every=512",
                 "eval_episodes=3", "gif=false", "stop_when_solved=false")
    assert result.code == 0, result.err
    assert "3/3 runs finished" in result.out
    runs = client.search_runs([client.get_experiment_by_name("ppo-CartPole-v1").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("lab.kind") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 3
    assert {c.info.status for c in children} == {"FINISHED"}
    assert sorted(c.data.params["seed"] for c in children) == ["0", "1", "2"]
    assert parent.data.params["swept"] == "seed" and parent.data.params["workers"] == "2"

    finals = []
    for child in children:
        history = sorted(client.get_metric_history(child.info.run_id, "eval/mean_return"), key=lambda m: m.step)
        finals.append(history[-1].value)
    expected = {"final_mean": np.mean(finals), "final_std": np.std(finals, ddof=1),
                "final_iqm": stats.trim_mean(finals, 0.25), "final_n": 3.0,
                "best_mean": np.mean([c.data.metrics["best/score"] for c in children])}
    for key, value in expected.items():
        assert parent.data.metrics[key] == pytest.approx(value), key
    low, high = parent.data.metrics["final_mean_ci_low"], parent.data.metrics["final_mean_ci_high"]
    assert min(finals) <= low <= np.mean(finals) <= high <= max(finals)
    root = Path(parent.info.artifact_uri.removeprefix("file://"))
    assert {"aggregates.json", "curves.png"} <= {p.name for p in root.iterdir()}
    saved = json.loads((root / "aggregates.json").read_text())
    assert sorted(c["run_id"] for c in saved["children"]) == sorted(c.info.run_id for c in children)


def test_summary_statistics_are_scipy_s():
    values = [1.0, 2.0, 3.0, 4.0, 100.0]
    summary = summarize(values)
    assert summary["mean"] == pytest.approx(22.0) and summary["iqm"] == pytest.approx(3.0)
    assert summary["std"] == pytest.approx(np.std(values, ddof=1))
    assert summary["iqm_ci_low"] <= 3.0 <= summary["iqm_ci_high"]
    assert summarize(values) == summary, "the bootstrap is seeded"
    assert summarize([5.0]) == {"n": 1.0, "mean": 5.0, "std": 0.0, "iqm": 5.0, "mean_ci_low": 5.0,
                                "mean_ci_high": 5.0, "iqm_ci_low": 5.0, "iqm_ci_high": 5.0}
    assert summarize([None, math.nan]) == {"n": 0.0}


@pytest.mark.parametrize(("args", "message"), [
    (["plugin=ppo", "env=CartPole", "workers=2"], "workers= applies to several runs at once"),
    (["plugin=ppo", "env=CartPole", "seed=0,1", "workers=0"], "workers=0: must be >= 1"),
    (["plugin=ppo", "env=CartPole", "seed=0,1", "lr=abc,1e-3"], "lr=abc"),
    (["plugin=ppo", "env=CartPole", "seed=0,1", "resume=x"], "resume= does not go with several values of seed"),
])
def test_bad_multi_run_input_creates_nothing(lab, client, args, message):
    result = lab("run", *args)
    assert result.code == 2 and message in result.err
    assert client.search_experiments() == [] or not client.search_runs(
        [e.experiment_id for e in client.search_experiments()])


def test_a_child_tells_its_parent_how_it_ended_through_its_result_file(tmp_path, monkeypatch):
    from lab.commands.children import RESULT_FILE_ENV, RunOutcome, read_outcome, report_outcome

    outcome = RunOutcome("abc123", "FINISHED", np.float32(0.75), pruned=np.bool_(True))  # as numpy computes them
    monkeypatch.delenv(RESULT_FILE_ENV, raising=False)
    report_outcome(outcome)  # no parent asked: nothing is written anywhere
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(RESULT_FILE_ENV, str(tmp_path / "outcome.json"))
    report_outcome(outcome)
    assert [p.name for p in tmp_path.iterdir()] == ["outcome.json"], "written whole, no temporary file left"
    assert read_outcome(tmp_path / "outcome.json") == RunOutcome("abc123", "FINISHED", 0.75, pruned=True)
    assert read_outcome(tmp_path / "missing.json") is None
    (tmp_path / "half.json").write_text('{"run_id": "abc')
    assert read_outcome(tmp_path / "half.json") is None


def test_the_pool_runs_children_a_few_at_a_time_and_reads_what_each_wrote(tmp_path):
    import os
    import sys

    from lab.commands.children import LocalLauncher, Pool, RunOutcome

    writes = ("import json, os; json.dump({'run_id': 'r1', 'status': 'FINISHED', 'best_score': 2.5}, "
              "open(os.environ['LAB_RESULT_FILE'], 'w')); print('done')")
    dies = "import sys; print('boom'); sys.exit(3)"
    pool = Pool(LocalLauncher(tmp_path), workers=1)
    for name, script in (("writes", writes), ("dies", dies), ("dropped", writes)):
        pool.submit(name, [sys.executable, "-c", script], dict(os.environ))
    assert pool.cancel("dropped"), "a queued child is dropped before it runs"
    ended = {}
    while pool.busy:
        assert len(pool.running) <= 1
        ended.update(pool.wait())
    assert ended["writes"].code == 0 and ended["writes"].outcome == RunOutcome("r1", "FINISHED", 2.5)
    assert ended["dies"].code == 3 and ended["dies"].tail == "boom" and ended["dies"].outcome is None
    assert "dropped" not in ended


def test_a_child_run_is_tagged_from_its_environment_by_the_command(monkeypatch):
    from lab.commands.children import PARENT_ENV, parent_tags
    from lab.commands.sweep import TRIAL_NUMBER_ENV, trial_tags

    monkeypatch.delenv(PARENT_ENV, raising=False)
    monkeypatch.delenv(TRIAL_NUMBER_ENV, raising=False)
    assert parent_tags() == {} and trial_tags() == {}
    monkeypatch.setenv(PARENT_ENV, "parent-id")
    monkeypatch.setenv(TRIAL_NUMBER_ENV, "4")
    assert parent_tags() == {"mlflow.parentRunId": "parent-id"} and trial_tags() == {"lab.trial": "4"}
