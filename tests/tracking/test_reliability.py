"""Runs that fail safely: diverged metrics, failed checkpoint writes, and tampered checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.training.checkpoints import CheckpointError, verify_checkpoint, write_checkpoint

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


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(lab, runs, client):
    result = lab("run", *TOY, "steps=500", "eval_every=1000", "checkpoint_every=100", "save_fails_at=300")
    assert result.code == 1
    assert "No space left on device" in result.err
    assert result.err.rstrip().endswith("(run marked FAILED, traceback logged)")
    (run,) = runs()
    assert run.info.status == "FAILED"
    assert "the checkpoint at step 300 could not be written" in run.data.tags["lab.error"]
    root = artifacts(run)
    assert verify_checkpoint(root / "checkpoints/step-200") == 200
    assert not (root / "checkpoints/step-300").exists()
    assert run.data.tags["lab.checkpoint"] == "step-200"
    # Metrics are written before a checkpoint is, while the disk still has room for them.
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == list(range(10, 301, 10))


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


def test_the_ui_warns_before_binding_beyond_loopback_without_authentication(lab, store, monkeypatch):
    import os

    started = []
    monkeypatch.setattr(os, "execv", lambda path, argv: started.append(argv))
    quiet = lab("ui", "--port", "5999")
    assert "warning" not in quiet.err and started[-1][started[-1].index("--host") + 1] == "127.0.0.1"
    # Beyond loopback lab serves MLflow's login (tests/commands/test_ui.py) unless told --insecure, which warns.
    loud = lab("ui", "--host", "0.0.0.0", "--port", "5999", "--insecure")
    assert "warning: --insecure: no authentication" in loud.err
    assert started[-1][started[-1].index("--host") + 1] == "0.0.0.0" and "--app-name" not in started[-1]


def test_nothing_loads_pickles_implicitly():
    """Model files are safetensors; torch.load, where ever used, must be weights_only=True; pickle never."""
    import re

    root = Path(__file__).parents[2]
    for path in [*root.glob("lab/**/*.py"), *root.glob("plugins/**/*.py"), *root.glob("envs/**/*.py"),
                 *root.glob("examples/**/*.py")]:
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert not re.search(r"\bpickle\.loads?\(", text), f"{path} unpickles"


# ------------------------------------------------------------------------------------ store faults: the truth


def worker_of(monkeypatch: pytest.MonkeyPatch) -> list:
    """The tracking workers the runner starts from now on (their processes), in order."""
    from lab.commands import run as run_command

    started: list = []

    class Recorded(run_command.RemoteTracker):
        def __init__(self) -> None:
            super().__init__()
            started.append(self._process)

    monkeypatch.setattr(run_command, "RemoteTracker", Recorded)
    return started


@pytest.mark.skipif(not hasattr(__import__("resource"), "prlimit"), reason="needs Linux's prlimit")
def test_a_full_disk_under_the_store_is_reported_truthfully_and_leaves_nothing_partial(lab, runs, client,
                                                                                          monkeypatch):
    """The disk fills as a checkpoint is uploaded: the tracking worker may write no byte from then on (a file
    size limit of 0 on it, so every write fails in the kernel, sqlite's included). The run cannot be marked
    FAILED then, and lab says so (not "run marked FAILED"), and how `lab runs clean` fixes it; the half-copied
    checkpoint is gone; every metric logged before the checkpoint is in the store."""
    import resource

    from lab.training import runner

    workers = worker_of(monkeypatch)
    write = runner.write_checkpoint

    def write_then_fill_the_disk(model, root, step, config_text=""):
        folder = write(model, root, step, config_text)
        if step >= 300:
            _, hard = resource.prlimit(workers[-1].pid, resource.RLIMIT_FSIZE)
            resource.prlimit(workers[-1].pid, resource.RLIMIT_FSIZE, (0, hard))
        return folder

    monkeypatch.setattr(runner, "write_checkpoint", write_then_fill_the_disk)
    result = lab("run", *TOY, "steps=500", "eval_every=100", "checkpoint_every=100")
    assert result.code == 1
    assert "File too large" in result.err and "Traceback" not in result.err
    assert "run marked FAILED" not in result.err
    assert "could not be marked FAILED" in result.err and "it stays RUNNING until `lab runs clean`" in result.err
    (run,) = runs()
    assert run.info.status == "RUNNING"
    root = artifacts(run)
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == ["step-100", "step-200"]
    assert run.data.tags["lab.checkpoint"] == "step-200"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == list(range(10, 301, 10))
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/mean_return")] == [100, 200, 300]

    # The lab process exits (here: its pid is made one that is gone); `lab runs clean` does what it said.
    client.set_tag(run.info.run_id, "lab.pid", str(dead_pid()))
    assert lab("runs", "clean").code == 0
    assert client.get_run(run.info.run_id).info.status == "FAILED"


def dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_failed_run_says_marked_failed_only_when_it_is(lab, runs):
    result = lab("run", *TOY, "steps=300", "fail_at=150")
    assert result.code == 1
    assert "RuntimeError: toy failure (run marked FAILED, traceback logged)" in result.err
    (run,) = runs()
    assert run.info.status == "FAILED" and run.data.tags["lab.error"] == "RuntimeError: toy failure"


def store_files(store: Path) -> dict[str, int]:
    """The store's files and their sizes (but its lock file, which only serialises lab processes)."""
    return {str(p.relative_to(store)): p.stat().st_size for p in store.rglob("*")
            if p.is_file() and p.name != ".lab-store.lock"}


@pytest.mark.parametrize(("content", "message"), [
    (b"\x00\x17 not sqlite at all " * 200, "is not a readable MLflow store (file is not a database)"),
    (b"", "is empty (0 bytes): it is not an MLflow store, and lab will not make it a new, empty one"),
])
def test_a_corrupt_or_empty_database_is_refused_in_one_line_and_left_alone(lab, store, content, message):
    """A 0-byte mlflow.db was silently made a new, empty store (its runs gone, their artifacts orphaned); a
    corrupt one gave a traceback and "run marked FAILED" for a run that never existed."""
    database = store / "mlflow.db"
    database.write_bytes(content)
    (store / "artifacts" / "1").mkdir(parents=True)  # the artifacts of the runs it held
    before = store_files(store)
    for command in (["runs"], ["runs", "--stale"], ["run", *TOY, "steps=50"], ["eval", "run=0123abcd"],
                    ["runs", "clean"]):
        result = lab(*command)
        assert result.code == 2, (command, result.err)
        (line,) = result.err.splitlines()
        assert line == f"lab: error: {database} {message}" + line.split(message, 1)[1], line
        assert f"mv {database} {database}." in line, "how to recover: move it aside"
        assert "marked FAILED" not in result.err
    assert store_files(store) == before, "nothing created, nothing changed"


def test_a_malformed_database_is_refused_in_one_line(lab, store, runs):
    assert lab("run", *TOY, "steps=50").code == 0
    database = store / "mlflow.db"
    with database.open("r+b") as file:  # the header stays; the pages after it are lost
        file.truncate(database.stat().st_size // 3)
    for command in (["runs"], ["run", *TOY, "steps=50"]):
        result = lab(*command)
        assert result.code == 2, result.err
        assert result.err.strip().endswith("to start a new store") and "Traceback" not in result.err
        assert f"{database} is not a readable MLflow store (database disk image is malformed)" in result.err


def lab_process(store: Path, read_only: bool = False):
    """Run lab as a process of its own, on ``store``, with the toy plugin. ``read_only``: a process that cannot
    write the store; for root, that takes dropping the capabilities that override file permissions (setpriv),
    for anyone else the permissions suffice."""
    import os
    import shutil
    import subprocess
    import sys

    prefix = []
    if read_only and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root ignores file permissions, and setpriv is not here to drop that")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    plugins = store.parent / "plugins"
    plugins.mkdir(exist_ok=True)
    shutil.copy(Path(__file__).parents[1] / "toy_plugin.py", plugins)
    environment = {**os.environ, "PYTHONPATH": str(plugins)}
    environment.pop("MLFLOW_TRACKING_URI", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, sys.executable, "-m", "lab.cli", "--plugins-dir", str(plugins), *args],
                              cwd=store.parent, env=environment, capture_output=True, text=True, timeout=300)

    return run


def test_a_read_only_store_is_read_and_never_written(lab, store, runs, client):
    """Reading commands work on a store lab cannot write (a colleague's, a read-only mount); writing ones say so
    in one line, exit 2. No `.lab-store.lock` is needed to read."""
    import stat

    assert lab("run", *TOY, "steps=100").code == 0
    (finished,) = runs()
    stale = client.create_run(finished.info.experiment_id, tags={
        "lab.host": "elsewhere", "lab.pid": "1", "lab.heartbeat": "1000", "lab.plugin": "toy"}).info.run_id
    (store / ".lab-store.lock").unlink(missing_ok=True)
    lab_command = lab_process(store, read_only=True)
    for path in [store, *store.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        before = store_files(store)
        listed = lab_command("runs", "--json")
        assert listed.returncode == 0, listed.stderr
        assert finished.info.run_id in listed.stdout and stale in listed.stdout
        evaluated = lab_command("eval", f"run={finished.info.run_id}", "episodes=2")
        assert evaluated.returncode == 0 and "mean_return" in evaluated.stdout, evaluated.stderr
        for command in (["run", *TOY, "steps=50"], ["runs", "clean"], ["run", f"resume={stale}", "steps=200"],
                        ["promote", f"run={finished.info.run_id}", "name=toy"]):
            refused = lab_command(*command)
            assert refused.returncode == 2, (command, refused.stderr)
            (line,) = refused.stderr.splitlines()
            assert line.startswith(f"lab: error: the tracking store {store / 'mlflow.db'} is read-only"), line
        assert store_files(store) == before
    finally:
        for path in [store, *store.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert client.get_run(stale).info.status == "RUNNING"


def test_a_segfault_while_training_is_recorded_as_a_crash(store, runs):
    """`threads=100000` once died with exit 139 and the run said KILLED "interrupted by the user". A fatal
    signal is FAILED "crashed (signal 11, ...)", with the Python stack of the crash, and the exit status stays."""
    crashed = lab_process(store)("run", *TOY, "steps=300", "checkpoint_every=100", "crash_at=150")
    assert crashed.returncode == -11, crashed.stderr
    (run,) = runs()  # the worker has marked it: lab's stderr stays open until the worker exits
    assert run.info.status == "FAILED" and "lab.stopped" not in run.data.tags
    assert run.data.tags["lab.error"] == ("the lab process crashed (signal 11, Segmentation fault); its Python "
                                          "stack is in error/crash.txt")
    stack = (artifacts(run) / "error/crash.txt").read_text()
    assert stack.startswith("Fatal Python error: Segmentation fault") and "in string_at" in stack
    assert f"run {run.info.run_id} marked FAILED" in crashed.stderr and "interrupted" not in crashed.stderr
