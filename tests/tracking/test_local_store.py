"""`lab runs`, `lab eval` and `lab play` read the local sqlite store without MLflow: the same answers as through it.

(`lab eval run=<id>` reading the store directly and `lab eval model=models:/...` through MLflow printing the
same is checked in test_models.py.)
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from lab.core.errors import ConfigError
from lab.tracking import runs


def comparable(rows: list[runs.RunRow]) -> list[dict]:
    return [{key: value for key, value in row.as_dict().items() if key not in ("age_s", "heartbeat_age_s")}
            for row in rows]


def test_listing_the_local_store_directly_matches_mlflow(client, monkeypatch):
    kept, dropped = client.create_experiment("kept"), client.create_experiment("dropped")
    now = int(time.time() * 1000)
    tags = {"lab.plugin": "dqn", "lab.target": "CartPole-v1", "lab.step": "300", "lab.host": "elsewhere",
            "lab.pid": "1", "lab.heartbeat": str(int(time.time()) - 3600), "other": "ignored"}
    for start in (now - 5000, now - 1000, now - 1000, now):  # two at the same time: the run id breaks the tie
        client.create_run(kept, start_time=start, tags=tags)
    client.create_run(kept, start_time=now - 2000)  # no lab tags at all
    client.set_terminated(client.create_run(kept, start_time=now - 3000).info.run_id, status="FINISHED")
    client.delete_run(client.create_run(kept, start_time=now + 1000).info.run_id)
    client.create_run(dropped, start_time=now + 2000)
    client.delete_experiment(dropped)

    direct = {limit: runs.list_runs(limit) for limit in (3, 100)}
    monkeypatch.setattr(runs, "_local_database", lambda: None)  # through MlflowClient
    for limit, rows in direct.items():
        assert comparable(rows) == comparable(runs.list_runs(limit))
    assert len(direct[100]) == 6 and sum(row.stale_reason is not None for row in direct[100]) == 4


def test_a_store_not_made_yet_lists_no_runs_and_is_not_created(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'later' / 'mlflow.db'}")
    assert runs.list_runs(10) == []
    assert not (tmp_path / "later").exists()


def test_a_database_lab_cannot_read_is_left_to_mlflow(tmp_path, monkeypatch):
    database = tmp_path / "other.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE runs (id TEXT)")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    assert runs._local_rows(10, 600) is None and runs.stored_run("0" * 32) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://localhost:5000")
    assert runs._local_rows(10, 600) is None and runs.stored_run("0" * 32) is None


def test_a_stored_run_has_mlflows_metrics_and_its_artifact_folder(client, tmp_path):
    experiment = client.create_experiment("metrics")
    run_id = client.create_run(experiment).info.run_id
    for step, value in ((1, 2.0), (2, 3.5), (3, float("nan"))):
        client.log_metric(run_id, "eval/score", value, step=step)
    client.log_metric(run_id, "best/score", 3.5, step=2)
    (tmp_path / "config.yaml").write_text("plugin: dqn\n")
    client.log_artifact(run_id, str(tmp_path / "config.yaml"))

    stored = runs.stored_run(run_id)
    assert stored is not None and stored.run_id == run_id
    expected = client.get_run(run_id).data.metrics
    assert stored.metrics["best/score"] == expected["best/score"] == 3.5
    assert set(stored.metrics) == set(expected) and stored.metrics["eval/score"] != stored.metrics["eval/score"]
    assert (stored.artifacts / "config.yaml").read_text() == "plugin: dqn\n"
    with pytest.raises(ConfigError, match=r"unknown run id 'nosuch' in sqlite:///.*see `lab runs`"):
        runs.stored_run("nosuch")
