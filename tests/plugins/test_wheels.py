"""A plugin author's whole journey as published packages: lab and a scaffolded plugin of every kind built as
wheels, installed (not editable) into a fresh virtualenv, listed, checked by the kit, trained and served as an
MLflow pyfunc model there, offline: nothing comes from the package index but what is already installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from lab import DISTRIBUTION, __version__
from lab.commands.new import SCAFFOLD_KINDS

ROOT = Path(__file__).parents[2]
MODEL_KINDS = ("agent", "backbone", "generator")
TARGETS = {"agent": "env=CartPole", "backbone": "data=digits", "generator": "data=moons"}


def source_copy(destination: Path) -> Path:
    """The checkout's files (tracked, or new and not ignored) in ``destination``: building a wheel writes
    build/ and *.egg-info beside the sources, which must not happen in the checkout."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def build_wheel(source: Path, wheels: Path, distribution: str) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(wheels), str(source)], check=True, capture_output=True)
    (wheel,) = wheels.glob(f"{distribution.replace('-', '_')}-*.whl")
    return wheel


def requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")]


class Environment:
    """A fresh virtualenv. lab's dependencies are visible in it as a plain path (no .pth processing, so the
    project's own editable lab is not), lab itself comes from its wheel."""

    def __init__(self, root: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        self.python = root / "bin" / "python"
        site = subprocess.check_output([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                        "['purelib'])"], text=True).strip()
        (Path(site) / "host-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        self.home = root / "home"
        self.home.mkdir()

    def pip_install(self, *wheels: Path, find_links: Path) -> None:
        # No --no-deps: pip resolves every declared dependency, offline (what is installed, or these wheels).
        subprocess.run([sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet", "--no-index",
                        "--find-links", str(find_links), *map(str, wheels)], check=True, capture_output=True,
                       text=True)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LAB_", "PYTEST_"))}
        environment.update(LAB_SMOKE="1", LAB_CACHE_DIR=os.environ.get("LAB_CACHE_DIR", ""), PIP_NO_INDEX="1")
        return subprocess.run([str(self.python), *args], cwd=self.home, capture_output=True, text=True,
                              env=environment, timeout=900)


@pytest.mark.slow
def test_wheels_of_lab_and_of_every_scaffolded_kind_work_in_a_fresh_environment(lab, tmp_path):
    wheels = tmp_path / "wheels"
    lab_wheel = build_wheel(source_copy(tmp_path / "source"), wheels, DISTRIBUTION)
    assert lab_wheel.name.startswith(f"{DISTRIBUTION}-{__version__}-")
    plugin_wheels = {}
    for kind in SCAFFOLD_KINDS:
        assert lab("new", "plugin", f"lab-wheel{kind}", "--kind", kind, "--dir", str(tmp_path)).code == 0
        plugin_wheels[kind] = build_wheel(tmp_path / f"lab-wheel{kind}", wheels, f"lab-wheel{kind}")
        assert f"{DISTRIBUTION}>=0.1" in requirements(plugin_wheels[kind]), "depends on lab's own name"

    env = Environment(tmp_path / "venv")
    assert env.run("-c", "import lab").returncode != 0, "the project's editable lab is not visible"
    env.pip_install(lab_wheel, *plugin_wheels.values(), find_links=wheels)
    where = env.run("-c", "import lab, lab_wheelagent; print(lab.__file__)")
    assert where.returncode == 0 and str(tmp_path / "venv") in where.stdout, where.stderr

    listed = env.run("-m", "lab.cli", "plugins", "--json")
    assert listed.returncode == 0 and "Warning" not in listed.stderr, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["dqn"]["package"] == DISTRIBUTION
    for kind in SCAFFOLD_KINDS:
        assert rows[f"wheel{kind}"]["package"] == f"lab-wheel{kind}" and rows[f"wheel{kind}"]["status"] == "ok"

    for kind in MODEL_KINDS:
        checked = env.run("-m", "lab.cli", "plugins", "check", f"wheel{kind}", TARGETS[kind])
        assert checked.returncode == 0, checked.stdout + checked.stderr[-2000:]
        trained = env.run("-m", "lab.cli", "run", f"plugin=wheel{kind}", TARGETS[kind], "progress=false")
        assert trained.returncode == 0 and "FINISHED" in trained.stdout, trained.stderr[-2000:]
        served = env.run("-c", PYFUNC)
        assert served.returncode == 0, served.stderr[-2000:]
        model_requirements, predicted = served.stdout.strip().split("\n")
        assert f"{DISTRIBUTION}=={__version__}" in model_requirements
        assert f"lab-wheel{kind}==0.1.0" in model_requirements
        assert predicted.startswith("predicted ")


PYFUNC = """
import mlflow
mlflow.set_tracking_uri("sqlite:///mlflow/mlflow.db")
client = mlflow.MlflowClient()
run = max(client.search_runs([e.experiment_id for e in client.search_experiments()]), key=lambda r: r.info.start_time)
uri = f"runs:/{run.info.run_id}/model/pyfunc"
path = mlflow.artifacts.download_artifacts(uri)
print(open(path + "/requirements.txt").read().replace("\\n", " "))
model = mlflow.pyfunc.load_model(uri)
example = mlflow.models.Model.load(path).load_input_example(path)
print("predicted", type(model.predict(example)).__name__)
"""
