"""Shared fixtures: a fresh tracking store per test, the CLI in-process, and a toy plugin for runner tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import cli
from lab.core import loading

# The tests mirror lab's layout (tests/core, tests/training, ...); their shared helpers (toy_plugin.py,
# doc_commands.py) live here and are importable from every folder.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generators' metric classifiers are trained into a cache of this session, never the user's ~/.cache/lab."""
    import os

    directory = tmp_path_factory.mktemp("lab-cache")
    previous = os.environ.get("LAB_CACHE_DIR")
    os.environ["LAB_CACHE_DIR"] = str(directory)
    yield directory
    if previous is None:
        del os.environ["LAB_CACHE_DIR"]
    else:
        os.environ["LAB_CACHE_DIR"] = previous


CHECKOUT = Path(__file__).parents[1]
# What running Python leaves in any checkout; everything else new after the suite is a leak.
EXPECTED_LEFTOVERS = ("__pycache__", ".pytest_cache", ".ruff_cache", ".grimp_cache", ".egg-info", ".venv")


def _untracked(root: Path) -> set[str] | None:
    """Untracked and ignored paths of the checkout (None outside a git checkout)."""
    import subprocess

    try:
        status = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=root,
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if status.returncode != 0:
        return None
    paths = {line[3:] for line in status.stdout.splitlines() if line.startswith(("??", "!!"))}
    return {path for path in paths if not any(part in path for part in EXPECTED_LEFTOVERS)}


@pytest.fixture(scope="session", autouse=True)
def checkout_stays_clean() -> Iterator[None]:
    """Everything the suite (or lab, or its kit) writes goes to a temporary folder or store, never into the
    checkout: after the whole session no new file (mlruns/, *.jsonl, mlflow.db, ...) may be there."""
    before = _untracked(CHECKOUT)
    yield
    after = _untracked(CHECKOUT)
    if before is not None and after is not None:
        leaked = sorted(after - before)
        assert not leaked, f"the test session left files in the checkout: {leaked[:20]}"


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty sqlite store, created once: schema creation costs seconds, copying it milliseconds."""
    import os

    from lab.tracking import tracker as tracking

    directory = tmp_path_factory.mktemp("template-store")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{directory / 'mlflow.db'}"
    try:
        tracking.client()
    finally:
        if previous is None:
            del os.environ["MLFLOW_TRACKING_URI"]
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    return directory / "mlflow.db"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> Path:
    """Work in a temporary directory whose ./mlflow/ is lab's default store; returns that folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "mlflow").mkdir()
    shutil.copy(empty_store, tmp_path / "mlflow" / "mlflow.db")
    return tmp_path / "mlflow"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def lab(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the lab CLI in-process: ``lab("run", "plugin=dqn", ...)`` -> exit code, stdout, stderr."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        try:
            code = cli.main(list(args))
        except SystemExit as e:  # argparse usage errors
            code = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def client(store: Path, monkeypatch: pytest.MonkeyPatch):
    """An MlflowClient on the test's store, which MLFLOW_TRACKING_URI also names (for subprocesses too)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return MlflowClient(uri)


@pytest.fixture
def runs(store: Path) -> Callable[[], list]:
    """All runs in the test's store, newest first."""

    def search() -> list:
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        return client.search_runs(experiments, order_by=["attributes.start_time DESC"])

    return search


@pytest.fixture
def with_toy_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI's registry include tests/toy_plugin.py, as if package lab-toy 9.9 were installed."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import toy_plugin

    original = loading.make_plugin_manager

    def with_toy(**kwargs) -> loading.PluginManager:
        pm = original(**kwargs)
        pm.register_source(toy_plugin, "toy_plugin", "lab-toy", "9.9")
        return pm

    monkeypatch.setattr(loading, "make_plugin_manager", with_toy)
