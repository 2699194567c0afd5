"""`lab runs`: recent runs, stale ones (RUNNING with their process gone), and `lab runs clean`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient


def fake_run(client: MlflowClient, host: str, pid: int, heartbeat_age: float) -> str:
    experiment = client.get_experiment_by_name("fake") or client.create_experiment("fake")
    experiment_id = experiment if isinstance(experiment, str) else experiment.experiment_id
    tags = {"lab.host": host, "lab.pid": str(pid), "lab.heartbeat": str(int(time.time() - heartbeat_age)),
            "lab.plugin": "dqn", "lab.target": "CartPole-v1", "lab.step": "1200"}
    return client.create_run(experiment_id, tags=tags).info.run_id


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_means_running_with_its_process_gone(lab, client):
    here = socket.gethostname()
    alive = fake_run(client, here, os.getpid(), heartbeat_age=5)
    gone = fake_run(client, here, dead_pid(), heartbeat_age=5)
    silent = fake_run(client, "other-host", 1, heartbeat_age=3600)
    remote_ok = fake_run(client, "other-host", 1, heartbeat_age=5)

    rows = {row["run_id"]: row for row in json.loads(lab("runs", "--json").out)}
    assert {alive, gone, silent, remote_ok} <= set(rows)
    assert rows[alive]["stale_reason"] is None and rows[remote_ok]["stale_reason"] is None
    assert "is gone" in rows[gone]["stale_reason"] and "no heartbeat for" in rows[silent]["stale_reason"]
    assert rows[gone]["step"] == 1200 and rows[gone]["plugin"] == "dqn"

    stale = {row["run_id"] for row in json.loads(lab("runs", "--stale", "--json").out)}
    assert stale == {gone, silent}
    cleaned = lab("runs", "clean")
    assert cleaned.code == 0 and "2 stale run(s) marked FAILED" in cleaned.out
    for run_id in (gone, silent):
        run = client.get_run(run_id)
        assert run.info.status == "FAILED" and run.data.tags["lab.error"].startswith("stale: ")
    assert client.get_run(alive).info.status == "RUNNING", "a live run is never touched"
    assert json.loads(lab("runs", "--stale", "--json").out) == []


def test_finished_runs_are_listed_with_their_step(lab, client, with_toy_plugin):
    assert lab("run", "plugin=toy", "env=Toy", "steps=300", "progress=false", "stop_when_solved=false").code == 0
    (row,) = json.loads(lab("runs", "--json").out)
    assert (row["plugin"], row["target"], row["status"], row["step"]) == ("toy", "Toy-v0", "FINISHED", 300)
    assert row["host"] == socket.gethostname() and row["heartbeat_age_s"] < 60
    table = lab("runs")
    assert table.code == 0 and row["run_id"] in table.out and "FINISHED" in table.out


@pytest.mark.parametrize(("args", "message"), [(["--limit", "0"], "--limit 0"),
                                               (["--stale-after", "-1"], "--stale-after -1.0")])
def test_bad_options_are_refused(lab, client, args, message):
    result = lab("runs", *args)
    assert result.code == 2 and message in result.err


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the tracking worker through /proc")
def test_a_sigkilled_run_is_found_stale_and_cleaned(lab, client):
    process = subprocess.Popen([sys.executable, "-m", "lab.cli", "run", "plugin=ppo", "env=CartPole",
                                "steps=500000", "checkpoint_every=1024", "stop_when_solved=false", "progress=false",
                                "gif=false"],
                               env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    run = None
    while time.monotonic() < deadline and run is None:  # wait for a first checkpoint
        time.sleep(0.5)
        experiment = client.get_experiment_by_name("ppo-CartPole-v1")
        found = client.search_runs([experiment.experiment_id]) if experiment else []
        run = found[0] if found and "lab.checkpoint" in found[0].data.tags else None
    assert run is not None, "the run did not checkpoint"
    # Power loss, the OOM killer: the lab process and its tracking worker die at once, nobody marks the run.
    for pid in [*children(process.pid), process.pid]:
        os.kill(pid, signal.SIGKILL)
    process.wait()
    assert client.get_run(run.info.run_id).info.status == "RUNNING"
    (stale,) = json.loads(lab("runs", "--stale", "--json").out)
    assert stale["run_id"] == run.info.run_id and f"process {process.pid}" in stale["stale_reason"]
    assert lab("runs", "clean").code == 0
    assert client.get_run(run.info.run_id).info.status == "FAILED"

    # ... and it resumes from its newest checkpoint, in the same run.
    tagged = int(client.get_run(run.info.run_id).data.tags["lab.checkpoint"].removeprefix("step-"))
    folders = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    resumed = lab("run", f"resume={run.info.run_id}", f"steps={tagged + 4096}", "progress=false")
    assert resumed.code == 0, resumed.err
    # The kill can land between a checkpoint's upload and its tag: resume takes the newest one that verifies.
    started = int(re.search(r"at step ([\d,]+)", resumed.out).group(1).replace(",", ""))
    assert started >= tagged and f"checkpoints/step-{started}" in folders
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED" and int(finished.data.tags["lab.step"]) >= tagged + 4096


class PowerLoss(BaseException):
    """The lab process dies on the spot (kill -9, the OOM killer): nothing of it runs any more."""


def test_a_kill_9_after_a_checkpoint_loses_nothing_logged_before_it_and_the_run_recovers(lab, client,
                                                                                        with_toy_plugin, monkeypatch):
    """Flush before each checkpoint: the worker commits every metric logged before a checkpoint ahead of the
    checkpoint itself, so killing both processes right after it loses none of them. `lab runs` shows how far the
    run got (not the step of its last heartbeat), `lab runs clean` marks it FAILED, and once resumed and
    finished it no longer carries that error."""
    from lab.training import runner

    save = runner._save_checkpoint

    def save_then_die(loop: runner.TrainingLoop) -> None:
        save(loop)
        if loop.step >= 200:
            loop.tracker._process.kill()  # the worker, with whatever it had not written, and then lab
            loop.tracker._process.wait()
            raise PowerLoss

    monkeypatch.setattr(runner, "_save_checkpoint", save_then_die)
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 3600.0)  # its only beat, at the start, says step 0
    args = ["plugin=toy", "env=Toy", "steps=400", "eval_every=100", "checkpoint_every=100", "progress=false",
            "stop_when_solved=false"]
    with pytest.raises(PowerLoss):
        lab("run", *args)
    monkeypatch.setattr(runner, "_save_checkpoint", save)
    (run,) = client.search_runs([client.get_experiment_by_name("toy-Toy-v0").experiment_id])
    assert run.info.status == "RUNNING" and run.data.tags["lab.step"] == "0"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == list(range(10, 201, 10))
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/mean_return")] == [100, 200]

    client.set_tag(run.info.run_id, "lab.pid", str(dead_pid()))  # the process is gone
    (row,) = json.loads(lab("runs", "--json").out)
    assert row["step"] == 200 and "is gone" in row["stale_reason"]
    assert lab("runs", "clean").code == 0
    assert client.get_run(run.info.run_id).data.tags["lab.error"].startswith("stale: ")

    resumed = lab("run", f"resume={run.info.run_id}", "progress=false")
    assert resumed.code == 0, resumed.err
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED" and finished.data.tags["lab.step"] == "400"
    assert "lab.error" not in finished.data.tags, "the error was the last session's"
    assert finished.data.tags["lab.error.previous"].startswith("stale: ")


def test_the_step_of_a_run_is_its_furthest_metric_when_no_tag_says_more(client):
    """Through MLflow (any store) as through the local sqlite store: the newest metric step counts."""
    from lab.tracking import runs

    run_id = fake_run(client, "other-host", 1, heartbeat_age=5)  # its tag says step 1200
    client.log_metric(run_id, "rollout/ep_rew_mean", 20.0, step=7680)
    (found,) = client.search_runs([client.get_experiment_by_name("fake").experiment_id])
    assert runs.row_of(found).step == 7680
    assert [row.step for row in runs.list_runs(5)] == [7680]
