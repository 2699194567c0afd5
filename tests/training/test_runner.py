"""The shared runner, driven through the CLI with a toy plugin: schedule, best model, statuses, tracking."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.usefixtures("with_toy_plugin")


def artifacts(run) -> set[str]:
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def metric_history(run, key: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    client = MlflowClient()
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]


@pytest.fixture(autouse=True)
def tracking_uri(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")


def test_finished_run_keeps_the_best_model_and_logs_everything(lab, runs):
    result = lab("run", "plugin=toy", "env=Toy", "steps=300", "eval_every=50", "peak=120", "progress=false",
                 "stop_when_solved=false")
    assert result.code == 0, result.err
    (run,) = runs()
    assert run.info.status == "FINISHED"
    evals = metric_history(run, "eval/mean_return")
    assert [step for step, _ in evals] == [50, 100, 150, 200, 250, 300]
    assert run.data.tags["lab.best_step"] == "100"  # score peaks at step 120: the eval at 100 is best
    assert run.data.metrics["best/score"] == pytest.approx(1.0)
    assert len(metric_history(run, "train/loss")) == 30
    assert {"config.yaml", "model/best/toy.json", "model/final/toy.json", "learning_curve.png",
            "toy.txt"} <= artifacts(run)
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    assert yaml.safe_load((root / "model/best/toy.json").read_text()) == {"step": 100}
    assert (root / "toy.txt").read_text() == "step 100\n", "plugin artifacts are made from the best model"
    assert "best mean_return: 1 at step 100" in result.out


def test_params_and_tags_record_the_whole_config(lab, runs):
    assert lab("run", "plugin=toy", "env=Toy", "steps=20", "eval_every=10", "rate=0.5", "seed=4",
               "experiment=mine", "run_name=first", "progress=false").code == 0
    (run,) = runs()
    params = run.data.params
    assert params["rate"] == "0.5" and params["seed"] == "4" and params["env"] == "Toy-v0"
    assert {"plugin", "env", "data", "seed", "steps", "device", "eval_every", "eval_episodes",
            "checkpoint_every", "experiment", "run_name", "peak", "interrupt_at", "fail_at"} <= set(params)
    tags = run.data.tags
    assert tags["lab.plugin"] == "toy" and tags["lab.plugin.package"] == "lab-toy"
    assert tags["lab.plugin.version"] == "9.9" and tags["lab.version"]
    assert tags["lab.device"] == "cpu" and tags["lab.seed"] == "4" and tags["lab.host"]
    assert run.info.run_name == "first"
    from mlflow import MlflowClient

    assert MlflowClient().get_experiment(run.info.experiment_id).name == "mine"


def test_stops_when_solved(lab, runs):
    assert lab("run", "plugin=toy", "env=Toy", "steps=10000", "eval_every=100", "rate=0.01",
               "progress=false").code == 0
    (run,) = runs()
    assert run.data.tags["lab.solved"] == "true"
    assert metric_history(run, "eval/mean_return")[-1] == (500, 5.0)  # target_score 5.0 reached at step 500


def test_a_lucky_evaluation_must_be_confirmed_before_stopping(lab, runs):
    assert lab("run", "plugin=toy", "env=Toy", "steps=10000", "eval_every=100", "rate=0.01", "jitter=1.0",
               "progress=false").code == 0
    (run,) = runs()
    # step 500: 5+1 passes, its confirmation 5-1 does not; step 600: 6+1 and then 6-1 both reach 5.0
    assert metric_history(run, "eval/confirmed_mean_return") == [(500, 4.0), (600, 5.0)]
    assert metric_history(run, "eval/mean_return")[-1] == (600, 7.0)
    assert run.data.metrics["best/score"] == 5.0 and run.data.tags["lab.solved"] == "true"


def test_ctrl_c_saves_a_checkpoint_and_marks_the_run_killed(lab, runs):
    result = lab("run", "plugin=toy", "env=Toy", "steps=1000", "interrupt_at=77", "progress=false")
    assert result.code == 130
    (run,) = runs()
    assert run.info.status == "KILLED"
    # Ctrl-C came inside step 77: it takes effect at the step's end (a step boundary), checkpointed there.
    assert run.data.tags["lab.checkpoint"] == "step-77"
    assert run.data.tags["lab.step"] == "77", "`lab runs` shows where it stopped, even before any heartbeat"
    assert {"checkpoints/step-77/toy.json", "checkpoints/step-77/manifest.json"} <= artifacts(run)


def test_an_exception_marks_the_run_failed_with_its_traceback(lab, runs):
    result = lab("run", "plugin=toy", "env=Toy", "steps=1000", "fail_at=33", "progress=false")
    assert result.code == 1
    assert "toy failure" in result.err
    (run,) = runs()
    assert run.info.status == "FAILED"
    assert "error/traceback.txt" in artifacts(run)
    assert "RuntimeError: toy failure" in run.data.tags["lab.error"]


def test_periodic_checkpoints_are_verified_and_only_the_newest_kept(lab, runs):
    from lab.training.checkpoints import manifest_digest, verify_checkpoint

    assert lab("run", "plugin=toy", "env=Toy", "steps=200", "checkpoint_every=40", "checkpoint_keep=2",
               "progress=false", "stop_when_solved=false").code == 0
    (run,) = runs()
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == ["step-160", "step-200"]
    newest = root / "checkpoints" / "step-200"
    assert yaml.safe_load((newest / "toy.json").read_text()) == {"step": 200}
    assert verify_checkpoint(newest) == 200
    assert run.data.tags["lab.checkpoint"] == "step-200"
    assert run.data.tags["lab.checkpoint.sha256"] == manifest_digest(newest)


def test_config_file_with_cli_overrides(lab, runs, tmp_path: Path):
    (tmp_path / "exp.yaml").write_text("plugin: toy\nenv: Toy\nsteps: 50\nrate: 0.2\nprogress: false\n")
    assert lab("run", "config=exp.yaml", "rate=0.3").code == 0
    (run,) = runs()
    assert run.data.params["rate"] == "0.3" and run.data.params["steps"] == "50"


def test_the_default_store_is_mlflow_folder_in_the_working_directory(lab, store, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert lab("run", "plugin=toy", "env=Toy", "steps=10", "progress=false").code == 0
    artifact_dirs = list((store / "artifacts").glob("toy-Toy-v0/*/artifacts/config.yaml"))
    assert len(artifact_dirs) == 1


def test_show_prints_every_key_with_type_source_and_doc(lab):
    result = lab("show", "plugin=toy", "env=Toy", "rate=0.5")
    assert result.code == 0
    for text in ("rate", "0.5", "float", "cli", "Score gained per step.", "eval_every", "default", "seed"):
        assert text in result.out
