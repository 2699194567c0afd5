"""Lifecycle hooks: third-party callbacks see a run start, its metrics, its checkpoints and its end, in order;
a callback that raises is reported once and never costs the run (unless LAB_STRICT_PLUGINS=1)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

RECORDER = textwrap.dedent("""
    import json, os
    from lab.api import hookimpl

    def write(record):
        with open(os.environ["LIFECYCLE_LOG"], "a") as file:
            file.write(json.dumps(record, default=str) + "\\n")

    @hookimpl
    def on_run_start(run):
        write({"event": "start", "run_id": run.run_id, "plugin": run.plugin, "target": run.target,
               "steps": run.config["steps"]})

    @hookimpl
    def on_metrics(metrics, step):  # any subset of the arguments
        write({"event": "metrics", "step": step, "keys": sorted(metrics)})

    @hookimpl
    def on_checkpoint(run, path, step, kind):
        write({"event": "checkpoint", "kind": kind, "step": step, "files": sorted(p.name for p in path.iterdir())})

    @hookimpl
    def on_run_end(run, status, summary):
        write({"event": "end", "status": status, "steps": summary["steps"], "error": summary.get("error")})
    """)
FAULTY = textwrap.dedent("""
    from lab.api import hookimpl

    @hookimpl
    def on_metrics(metrics, step):
        raise ValueError("logger down")
    """)
TOY = ["plugin=toy", "env=Toy", "steps=300", "eval_every=100", "progress=false"]


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_toy_plugin) -> Path:
    directory = tmp_path / "callbacks"
    directory.mkdir()
    (directory / "recorder.py").write_text(RECORDER)
    monkeypatch.setenv("LIFECYCLE_LOG", str(tmp_path / "lifecycle.jsonl"))
    return directory


def events(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "lifecycle.jsonl").read_text().splitlines()]


def test_callbacks_see_the_whole_run_in_order(lab, runs, plugins, tmp_path):
    result = lab("--plugins-dir", str(plugins), "run", *TOY)
    assert result.code == 0, result.err
    (run,) = runs()
    log = events(tmp_path)
    assert log[0] == {"event": "start", "run_id": run.info.run_id, "plugin": "toy", "target": "Toy-v0", "steps": 300}
    assert log[-1] == {"event": "end", "status": "FINISHED", "steps": 300, "error": None}
    eval_steps = [e["step"] for e in log if e["event"] == "metrics" and "eval/mean_return" in e["keys"]]
    assert eval_steps == [100, 200, 300]
    kinds = [e["kind"] for e in log if e["event"] == "checkpoint"]
    assert kinds.count("best") >= 1 and kinds[-1] == "final"
    assert all(e["files"] for e in log if e["event"] == "checkpoint"), "the folder holds the saved files"


def test_a_failed_run_reports_failed_with_the_error(lab, plugins, store, tmp_path, monkeypatch):
    import toy_plugin

    def explode(self, budget, on_step):
        raise RuntimeError("diverged")

    monkeypatch.setattr(toy_plugin.ToyModel, "train", explode)
    assert lab("--plugins-dir", str(plugins), "run", *TOY).code == 1
    end = events(tmp_path)[-1]
    assert end["status"] == "FAILED" and end["error"] == "RuntimeError: diverged"


def test_a_raising_callback_is_skipped_and_the_run_finishes(lab, runs, plugins, tmp_path):
    (plugins / "faulty.py").write_text(FAULTY)
    result = lab("--plugins-dir", str(plugins), "run", *TOY)
    assert result.code == 0, result.err
    assert result.err.count("plugin 'faulty' failed in on_metrics: ValueError: logger down") == 1
    assert runs()[0].info.status == "FINISHED"
    assert events(tmp_path)[-1]["status"] == "FINISHED", "the other callbacks kept running"


def test_a_raising_callback_fails_the_run_in_strict_mode(lab, runs, plugins, monkeypatch):
    (plugins / "faulty.py").write_text(FAULTY)
    monkeypatch.setenv("LAB_STRICT_PLUGINS", "1")
    result = lab("--plugins-dir", str(plugins), "run", *TOY)
    assert result.code == 1 and "plugin 'faulty' failed in on_metrics" in result.err
    assert runs()[0].info.status == "FAILED"
