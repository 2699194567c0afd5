"""Runs that fail safely: diverged metrics, failed checkpoint writes, and tampered checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.checkpoints import CheckpointError, verify_checkpoint, write_checkpoint

TOY = ["plugin=toy", "env=Toy", "progress=false", "stop_when_solved=false"]


def artifacts(run) -> Path:
    return Path(run.info.artifact_uri.removeprefix("file://"))


@pytest.fixture(autouse=True)
def toy(with_toy_plugin) -> None:
    """Every test here trains the toy plugin."""


def test_a_nan_loss_fails_the_run_naming_the_metric_and_step(lab, runs):
    result = lab("run", *TOY, "steps=500", "eval_every=100", "checkpoint_every=100", "nan_at=250")
    assert result.code == 1
    assert "train/loss is nan at step 250" in result.err
    (run,) = runs()
    assert run.info.status == "FAILED"
    assert "NonFiniteMetric: train/loss is nan at step 250" in run.data.tags["lab.error"]
    root = artifacts(run)
    assert json.loads((root / "model/best/toy.json").read_text()) == {"step": 200}, "the best model survives"
    assert verify_checkpoint(root / "checkpoints/step-200") == 200, "the last good checkpoint survives"


def test_a_real_plugin_that_diverges_is_stopped(lab, runs):
    result = lab("run", "plugin=mlp", "data=digits", "lr=1e12", "optimizer=sgd", "steps=3000", "eval_every=1000",
                 "progress=false")
    assert result.code == 1, result.err
    (run,) = runs()
    assert run.info.status == "FAILED" and "NonFiniteMetric" in run.data.tags["lab.error"]


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(lab, runs):
    result = lab("run", *TOY, "steps=500", "eval_every=1000", "checkpoint_every=100", "save_fails_at=300")
    assert result.code == 1
    assert "No space left on device" in result.err
    (run,) = runs()
    assert run.info.status == "FAILED"
    assert "the checkpoint at step 300 could not be written" in run.data.tags["lab.error"]
    root = artifacts(run)
    assert verify_checkpoint(root / "checkpoints/step-200") == 200
    assert not (root / "checkpoints/step-300").exists()
    assert run.data.tags["lab.checkpoint"] == "step-200"


class Saves:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "weights.bin").write_bytes(b"\x00" * 64)
        if self.fail:
            raise OSError(28, "No space left on device")


def test_checkpoints_are_atomic_and_tampering_is_detected(tmp_path):
    folder = write_checkpoint(Saves(), tmp_path, step=7)
    assert verify_checkpoint(folder) == 7
    with pytest.raises(CheckpointError, match="could not be written"):
        write_checkpoint(Saves(fail=True), tmp_path, step=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-7"], "no half-written folder is left"
    (folder / "weights.bin").write_bytes(b"\x01" * 64)
    with pytest.raises(CheckpointError, match="does not match its sha256"):
        verify_checkpoint(folder)


def test_no_environment_variable_or_secret_is_logged(lab, runs, monkeypatch):
    monkeypatch.setenv("LAB_TEST_API_TOKEN", "s3cr3t-value-123")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another-s3cr3t")
    assert lab("run", *TOY, "steps=50").code == 0
    (run,) = runs()
    logged = " ".join([*run.data.params.values(), *run.data.tags.values(), *run.data.params, *run.data.tags])
    assert "s3cr3t" not in logged
    root = artifacts(run)
    assert all("s3cr3t" not in p.read_text(errors="ignore") for p in root.rglob("*") if p.is_file())


def test_the_ui_warns_before_binding_beyond_loopback(lab, store, monkeypatch):
    import os

    started = []
    monkeypatch.setattr(os, "execv", lambda path, argv: started.append(argv))
    quiet = lab("ui", "--port", "5999")
    assert "warning" not in quiet.err and started[-1][started[-1].index("--host") + 1] == "127.0.0.1"
    loud = lab("ui", "--host", "0.0.0.0", "--port", "5999")
    assert "no authentication by default" in loud.err and started[-1][started[-1].index("--host") + 1] == "0.0.0.0"


def test_nothing_loads_pickles_implicitly():
    """Model files are safetensors; torch.load, where ever used, must be weights_only=True; pickle never."""
    import re

    root = Path(__file__).parents[1]
    for path in [*root.glob("lab/**/*.py"), *root.glob("plugins/**/*.py"), *root.glob("envs/**/*.py"),
                 *root.glob("examples/**/*.py")]:
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert not re.search(r"\bpickle\.loads?\(", text), f"{path} unpickles"
