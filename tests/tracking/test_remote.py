"""Everything through a real `mlflow server` (sqlite backend, artifacts served over HTTP): runs, checkpoints,
resume, evaluation and `lab runs` behave as on the local store."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from mlflow import MlflowClient


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"mlflow server did not start: {process.stderr.read()[-2000:]}")
    yield uri
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow
def test_run_interrupt_resume_eval_through_a_tracking_server(lab, server, tmp_path, monkeypatch, with_toy_plugin):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    args = ["plugin=toy", "env=Toy", "steps=400", "eval_every=50", "checkpoint_every=50", "checkpoint_keep=2",
            "interrupt_at=177", "stop_when_solved=false", "progress=false", "experiment=remote"]
    assert lab("run", *args).code == 130
    client = MlflowClient(server)
    (run,) = client.search_runs([client.get_experiment_by_name("remote").experiment_id])
    assert run.info.status == "KILLED" and run.info.artifact_uri.startswith("mlflow-artifacts:")
    names = lambda: sorted(a.path for a in client.list_artifacts(run.info.run_id, "checkpoints"))  # noqa: E731
    assert names() == ["checkpoints/step-150", "checkpoints/step-177"]

    resumed = lab("run", f"resume={run.info.run_id}", "progress=false")
    assert resumed.code == 0, resumed.err
    run = client.get_run(run.info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["lab.resumed_from"] == "step-177"
    assert names() == ["checkpoints/step-350", "checkpoints/step-400"], "the newest 2 across both sessions"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "eval/mean_return")]
    assert steps == list(range(50, 401, 50)), "no gaps, no duplicates"
    assert {"config.yaml", "model", "learning_curve.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}

    evaluated = lab("eval", f"run={run.info.run_id}", "episodes=2")
    assert evaluated.code == 0 and "mean_return: 4.00" in evaluated.out, evaluated.out + evaluated.err
    listed = lab("runs", "--json")
    assert run.info.run_id in listed.out and '"status": "FINISHED"' in listed.out
