"""`lab run resume=...`: an interrupted run continues in the same MLflow run, exactly where it stopped."""

from __future__ import annotations

import hashlib
import json
import pickle
import textwrap
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

# Ctrl-C at a chosen moment, from inside the run: a callback sending its process SIGINT at the first evaluation at
# or after $INTERRUPT_AT (the runner checkpoints at the next step boundary and marks the run KILLED).
INTERRUPTER = textwrap.dedent("""
    import os
    import signal
    from lab.api import hookimpl

    @hookimpl
    def on_metrics(metrics, step):
        if any(key.startswith("eval/") for key in metrics) and step >= int(os.environ["INTERRUPT_AT"]):
            os.kill(os.getpid(), signal.SIGINT)
    """)


@pytest.fixture
def interrupter(tmp_path: Path) -> Path:
    directory = tmp_path / "interrupt"
    directory.mkdir()
    (directory / "interrupter.py").write_text(INTERRUPTER)
    return directory


def only_run(client: MlflowClient):
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run


def history(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [m.step for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_a_killed_run_resumes_in_the_same_run(lab, client, with_toy_plugin):
    args = ["plugin=toy", "env=Toy", "steps=300", "eval_every=50", "interrupt_at=77", "stop_when_solved=false",
            "progress=false"]
    assert lab("run", *args).code == 130
    killed = only_run(client)
    run_id = killed.info.run_id
    assert killed.data.tags["lab.best_step"] == "50", "a stopped run keeps its best model so far"
    assert "model" in {a.path for a in client.list_artifacts(run_id)}
    resumed = lab("run", f"resume={run_id}", "progress=false")
    assert resumed.code == 0, resumed.err
    assert f"resuming run {run_id} at step 77" in resumed.out
    assert "restores weights only" in resumed.err, "the toy has no checkpoint()/restore()"
    run = only_run(client)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.tags["lab.resumed_from"] == "step-77" and run.data.tags["lab.step"] == "300"
    assert history(client, run_id, "eval/mean_return") == [50, 100, 150, 200, 250, 300], "no gaps, no duplicates"


@pytest.mark.parametrize(("extra", "message"), [
    (["rate=0.5"], "resume cannot change logged params (rate: 0.01 -> 0.5); only steps, progress, device"),
    (["steps=50"], "steps=50: the checkpoint is at step 77"),
    (["config=x.yaml"], "config= does not go with resume="),
    (["trust=true"], "trust=: lab loads no pickled file"),
])
def test_resume_refuses_changes_and_bad_budgets(lab, client, with_toy_plugin, extra, message):
    assert lab("run", "plugin=toy", "env=Toy", "steps=300", "interrupt_at=77", "progress=false").code == 130
    run_id = only_run(client).info.run_id
    result = lab("run", f"resume={run_id}", *extra)
    assert result.code == 2 and message in result.err
    assert only_run(client).info.status == "KILLED", "nothing was reopened"


def test_resume_refuses_unknown_live_and_checkpointless_runs(lab, client, with_toy_plugin):
    assert "unknown run id 'nope'" in lab("run", "resume=nope").err
    assert "no such checkpoint folder" in lab("run", "resume=./missing/step-3").err
    assert lab("run", "plugin=toy", "env=Toy", "steps=100", "progress=false").code == 0
    finished = only_run(client).info.run_id
    result = lab("run", f"resume={finished}", "steps=200")
    assert result.code == 2 and "has no checkpoint to resume from" in result.err
    live = client.create_run(client.search_runs([only_run(client).info.experiment_id])[0].info.experiment_id,
                             tags={"lab.host": "elsewhere", "lab.pid": "1", "lab.heartbeat": "9999999999"})
    result = lab("run", f"resume={live.info.run_id}")
    assert result.code == 2 and "is still RUNNING" in result.err
    assert "trust=: lab loads no pickled file" in lab("run", "plugin=toy", "env=Toy", "trust=true").err


def write_manifest(folder: Path, step: int) -> None:
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}
    (folder / "manifest.json").write_text(json.dumps({"step": step, "files": files}))


class Payload:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_with_pickles_is_refused_before_anything_is_read(lab, client, tmp_path):
    folder = tmp_path / "downloaded" / "step-500"
    folder.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    (folder / "sb3_algorithm.zip").write_bytes(pickle.dumps(Payload(marker)))
    (folder / "replay_buffer.pkl").write_bytes(pickle.dumps(Payload(marker)))
    (folder / "config.yaml").write_text(yaml.safe_dump({"plugin": "dqn", "env": "CartPole-v1", "steps": 1000}))
    write_manifest(folder, 500)
    result = lab("run", f"resume={folder}")
    assert result.code == 2
    assert "replay_buffer.pkl, sb3_algorithm.zip load by unpickling" in result.err and "lab loads none" in result.err
    assert not marker.exists(), "nothing from the folder ran"
    assert client.search_experiments() == [] or client.search_runs(
        [e.experiment_id for e in client.search_experiments()]) == []
    assert "trust=: lab loads no pickled file" in lab("run", f"resume={folder}", "trust=true").err
    for name in ("sb3_algorithm.zip", "replay_buffer.pkl"):
        (folder / name).unlink()
    write_manifest(folder, 500)
    (folder / "config.yaml").write_text("plugin: dqn\n")  # altered after its manifest was written
    tampered = lab("run", f"resume={folder}")
    assert tampered.code == 2 and "does not match its sha256" in tampered.err
    assert not marker.exists()


def test_a_checkpoint_swapped_in_the_store_is_refused(lab, client, with_toy_plugin):
    """Swapping a file of a stored checkpoint and recomputing its manifest.json does not get past the digest the
    run tagged when it wrote the checkpoint."""
    assert lab("run", "plugin=toy", "env=Toy", "steps=300", "interrupt_at=77", "progress=false").code == 130
    run = only_run(client)
    folder = Path(run.info.artifact_uri.removeprefix("file://")) / "checkpoints" / "step-77"
    (folder / "manifest.json").unlink()
    (folder / "toy.json").write_text('{"step": 77, "weights": [0]}')
    write_manifest(folder, 77)
    result = lab("run", f"resume={run.info.run_id}")
    assert result.code == 2 and "does not match the sha256 the run tagged" in result.err, result.err
    assert only_run(client).info.status == "KILLED", "nothing was reopened"


@pytest.mark.slow
@pytest.mark.parametrize(("plugin", "keys"), [
    # Dropout, shift augmentation and Adam: every kind of training state matters for exactness.
    ("mlp", ["data=digits", "steps=3000", "eval_every=700"]),
    ("vae", ["data=moons", "steps=2000", "eval_every=700"]),
    ("gan", ["data=moons", "steps=2000", "eval_every=700"]),
    ("diffusion", ["data=moons", "steps=2000", "eval_every=700"]),  # + EMA weights and their step count
])
def test_a_torch_plugin_resumes_to_exactly_the_same_weights(lab, client, interrupter, monkeypatch, plugin, keys):
    from safetensors.torch import load_file

    args = [f"plugin={plugin}", *keys, "seed=3", "progress=false"]
    assert lab("run", *args).code == 0
    straight = only_run(client)
    monkeypatch.setenv("INTERRUPT_AT", "1400")
    assert lab("--plugins-dir", str(interrupter), "run", *args, "experiment=interrupted").code == 130
    interrupted = client.search_runs([client.get_experiment_by_name("interrupted").experiment_id])[0]
    assert interrupted.info.status == "KILLED"
    assert int(interrupted.data.tags["lab.checkpoint"].removeprefix("step-")) >= 1400
    resumed = lab("run", f"resume={interrupted.info.run_id}", "progress=false")
    assert resumed.code == 0 and "restores weights only" not in resumed.err, resumed.err

    def final_weights(run) -> dict:
        root = Path(client.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://")) / "model/final"
        files = sorted(root.rglob("*.safetensors"))
        assert files
        return {f"{p.relative_to(root)}:{k}": v for p in files for k, v in load_file(str(p)).items()}

    first, second = final_weights(straight), final_weights(interrupted)
    assert first.keys() == second.keys()
    assert all((first[key] == second[key]).all() for key in first), "bit-identical weights"
    score = "eval/score"
    assert history(client, interrupted.info.run_id, score) == history(client, straight.info.run_id, score)


@pytest.mark.slow
def test_an_sb3_agent_resumes_with_its_replay_buffer_and_counters(lab, client, interrupter, monkeypatch):
    import numpy as np

    args = ["plugin=dqn", "env=CartPole", "steps=3000", "eval_every=1000", "eval_episodes=2", "learning_starts=200",
            "checkpoint_every=1000", "stop_when_solved=false", "progress=false", "gif=false"]
    monkeypatch.setenv("INTERRUPT_AT", "2000")
    assert lab("--plugins-dir", str(interrupter), "run", *args).code == 130
    run = only_run(client)
    checkpoints = Path(run.info.artifact_uri.removeprefix("file://")) / "checkpoints"
    # DQN's preset collects 256 steps between updates; SB3's step boundary is the start of a collection, so
    # Ctrl-C at step 2000 takes effect at 2048, with every transition so far stored and trained on.
    assert run.data.tags["lab.checkpoint"] == "step-2048"
    assert {"policy.safetensors", "training_state.safetensors", "training_state.json", "replay_buffer.npz",
            "env_state.json", "manifest.json"} <= {p.name for p in (checkpoints / "step-2048").iterdir()}
    assert not [p for p in checkpoints.rglob("*") if p.suffix in (".zip", ".pkl")], "nothing pickled"

    def saved(step: int) -> tuple[int, int]:
        folder = checkpoints / f"step-{step}"
        with np.load(folder / "replay_buffer.npz", allow_pickle=False) as buffer:
            rows = len(buffer["observations"])
        return json.loads((folder / "training_state.json").read_text())["values"]["num_timesteps"], rows

    assert saved(2048) == (2048, 2048)
    resumed = lab("run", f"resume={run.info.run_id}", "progress=false")
    assert resumed.code == 0, resumed.err
    run = only_run(client)
    assert run.info.status == "FINISHED" and int(run.data.tags["lab.step"]) == 3072, "the chunk that crosses 3000"
    assert history(client, run.info.run_id, "eval/mean_return") == [1000, 2000, 3000]
    steps = history(client, run.info.run_id, "rollout/exploration_rate")
    assert steps == sorted(steps) and steps[-1] > 2000, "SB3's own counters continue"
