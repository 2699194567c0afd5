"""What a user reads: only lab's own lines, numbers that agree (steps vs budget, the bar, eval), the store's URI."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.training.progress import ProgressBar

# Every line `lab run` prints, stdout and stderr: its header, the progress bar, the summary.
LAB_LINES = re.compile(
    r"^(lab run \S+ on \S+ \(.*\)"
    r"|train .*"
    r"|Run \S+ (FINISHED|FAILED|KILLED) in [\d.]+ s, [\d,]+ steps( \(.*\))?"
    r"|  (best|test \(best model\)|run id|experiment|store|artifacts|next):? .*)$")


@pytest.mark.slow
def test_a_first_run_on_a_brand_new_store_prints_only_lab_lines(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LAB_SMOKE"))}
    result = subprocess.run([sys.executable, "-m", "lab.cli", "run", "plugin=dqn", "env=CartPole", "steps=600",
                             "eval_every=300", "eval_episodes=2"], cwd=tmp_path, capture_output=True, text=True,
                            env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mlflow" / "mlflow.db").is_file(), "the run created the default store"
    lines = [line for text in (result.stdout, result.stderr) for line in re.split(r"[\r\n]", text) if line.strip()]
    foreign = [line for line in lines if not LAB_LINES.match(line)]
    assert not foreign, f"lines that are not lab's own: {foreign}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow"], "nothing written outside the store"
    # DQN's preset trains every 256 steps: the last chunk runs past the budget, and the summary says so.
    summary = next(line for line in lines if line.startswith("Run "))
    steps = int(re.search(r"([\d,]+) steps", summary).group(1).replace(",", ""))
    assert steps >= 600
    if steps > 600:
        assert "(budget 600: its last rollout or batch ran past it)" in summary


def run_summary(lab, *keys: str) -> str:
    result = lab("run", "plugin=toy", "env=Toy", "progress=false", *keys)
    assert result.code == 0, result.err
    return next(line for line in result.out.splitlines() if line.startswith("Run "))


@pytest.mark.usefixtures("with_toy_plugin", "client")
def test_the_summary_says_why_steps_differ_from_the_budget(lab):
    assert re.search(r"FINISHED in [\d.]+ s, 300 steps$", run_summary(lab, "steps=300", "eval_every=100"))
    solved = run_summary(lab, "steps=10000", "eval_every=100", "rate=0.01")
    assert solved.endswith("500 steps (stopped: solved at step 500; budget 10,000)")


def bar_text(steps_done: int, total: int, stop: str | None = None) -> str:
    stream = io.StringIO()
    with ProgressBar(total) as bar:
        bar._progress.console.file = stream  # rich renders into the string instead of the terminal
        bar.advance_to(steps_done)
        if stop:
            bar.stopped(stop)
    return stream.getvalue().splitlines()[-1]


def test_the_bar_ends_at_the_steps_done_with_the_stop_reason():
    stopped = bar_text(22_000, 50_000, "stopped: solved at step 22,000")
    assert "22000/22000" in stopped and "stopped: solved at step 22,000" in stopped
    overrun = bar_text(6_400, 6_285)
    assert "6400/6400" in overrun


@pytest.mark.usefixtures("store")
def test_lab_store_prints_the_tracking_uri(lab, monkeypatch, tmp_path: Path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = lab("store", "--uri")
    assert result.code == 0 and result.out.strip() == f"sqlite:///{(tmp_path / 'mlflow' / 'mlflow.db').resolve()}"
    described = lab("store").out
    assert "lab's default" in described and (tmp_path / "mlflow" / "artifacts").resolve().as_uri() in described
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other' / 'runs.db'}")
    assert "(MLFLOW_TRACKING_URI)" in lab("store").out
    assert f"{(tmp_path / 'other' / 'artifacts').as_uri()}" in lab("store").out, "artifacts beside any sqlite store"


@pytest.mark.usefixtures("with_toy_plugin")
def test_the_conformance_kit_writes_nothing_where_it_runs(lab, tmp_path, monkeypatch):
    """It trains on a temporary store whose artifacts live beside it (MLflow's default would be ./mlruns)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = lab("plugins", "check", "toy", "env=Toy", "steps=50", "eval_every=50")
    assert result.code == 0, result.out + result.err
    assert "7/7 checks passed" in result.out
    assert list(tmp_path.iterdir()) == []
