"""Plugin packages as users meet them: `lab new plugin` for every kind and the outside example package, each
pip-installed (editable) into a fresh virtualenv where lab is installed, its own tests run there, and trained
through `lab run` in that environment. The project's own environment is never modified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from doc_commands import Terminal, parse, user_venv

from lab.commands.new import SCAFFOLD_KINDS

EXAMPLE = Path(__file__).parents[2] / "examples" / "lab-reinforce"


class Venv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "bin" / "python"

    def install(self, package: Path) -> None:
        # pip (from the project's environment) installs into the fresh one; --no-deps: lab and its dependencies
        # are already visible there, and nothing may be downloaded.
        subprocess.run([sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet",
                        "--no-deps", "--no-build-isolation", "-e", str(package)], check=True, capture_output=True)

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LAB_", "PYTEST_"))}
        environment["LAB_CACHE_DIR"] = os.environ.get("LAB_CACHE_DIR", "")
        return subprocess.run([str(self.python), *args], cwd=cwd, capture_output=True, text=True,
                              env={**environment, **(env or {})}, timeout=600)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    """A brand-new virtualenv that sees lab (and its dependencies) the way a user's environment with lab does."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site_packages = Path(subprocess.check_output(
        [str(root / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True).strip())
    host = sysconfig.get_paths()["purelib"]
    (site_packages / "lab-host.pth").write_text(f"import site; site.addsitedir({host!r})\n")
    yield Venv(root)


def trained_run(venv: Venv, plugin: str, keys: list[str], tmp_path: Path) -> dict:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = venv.run("-m", "lab.cli", "run", f"plugin={plugin}", *keys, "progress=false", cwd=tmp_path,
                      env={"MLFLOW_TRACKING_URI": uri})
    assert result.returncode == 0, result.stderr[-2000:]
    check = venv.run("-c", f"import mlflow; c = mlflow.MlflowClient({uri!r}); "
                           "r = c.search_runs([e.experiment_id for e in c.search_experiments()])[0]; "
                           "print(r.info.status, r.data.tags['lab.plugin.package'])", cwd=tmp_path)
    status, package = check.stdout.split()
    return {"status": status, "package": package}


@pytest.mark.slow
@pytest.mark.parametrize("kind", SCAFFOLD_KINDS)
def test_scaffolded_package_installs_passes_its_tests_and_trains(lab, tmp_path, kind):
    """The generated README's commands, as written, from the package folder in a fresh environment (smoke mode:
    tiny budgets, as tests/test_docs.py runs lab's own READMEs)."""
    created = lab("new", "plugin", f"lab-new{kind}", "--kind", kind, "--dir", str(tmp_path))
    assert created.code == 0, created.err
    package = tmp_path / f"lab-new{kind}"
    terminal = Terminal(package, user_venv(tmp_path / "venv"))
    commands = parse(package / "README.md").commands
    assert [c.text for c in commands[:3]] == ["pip install -e '.[test]'", "python -m pytest", "lab plugins"]
    outcomes = {}
    for command in commands:
        outcome = terminal.run(command.text)
        assert outcome.code == 0, f"{command.text}\n{outcome.out[-3000:]}\n{outcome.err[-2000:]}"
        if command.text.startswith("lab"):
            assert "Warning" not in outcome.err and "WARN" not in outcome.err, outcome.err
        outcomes[command.text] = outcome
    tests = outcomes["python -m pytest"].out
    assert " passed" in tests and " failed" not in tests, tests[-3000:]
    listed = terminal.run("lab plugins --json")
    rows = {row["name"]: row for row in json.loads(listed.out)}
    assert rows[f"new{kind}"]["package"] == f"lab-new{kind}" and rows[f"new{kind}"]["version"] == "0.1.0"
    assert rows[f"new{kind}"]["status"] == "ok"
    runs = store_runs(package / "mlflow")
    assert runs and all(run.info.status == "FINISHED" for run in runs), "every README run finished"
    if kind in ("agent", "backbone", "generator"):
        assert {run.data.tags["lab.plugin.package"] for run in runs} == {f"lab-new{kind}"}
    if kind == "env":
        assert "Newenv" in outcomes["lab envs"].out and (package / "corridor.gif").is_file()
    if kind == "callback":  # the README promises mlflow/lab-jsonl/<run id>.jsonl
        assert [p.stem for p in (package / "mlflow" / "lab-jsonl").glob("*.jsonl")] == [runs[0].info.run_id]


def store_runs(store: Path) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.slow
def test_example_outside_package_passes_the_kit_and_trains(venv, tmp_path):
    venv.install(EXAMPLE)
    checked = venv.run("-m", "lab.cli", "plugins", "check", "reinforce", "env=CartPole", "steps=1500",
                       "eval_every=750", "gif=false", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr[-2000:]
    assert "7/7 checks passed for plugin 'reinforce'" in checked.stdout
    tests = venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=EXAMPLE)
    assert tests.returncode == 0, tests.stdout[-3000:]
    run = trained_run(venv, "reinforce", ["env=CartPole", "steps=2000", "eval_every=1000", "eval_episodes=2"],
                      tmp_path)
    assert run == {"status": "FINISHED", "package": "lab-reinforce"}


def test_the_example_is_not_part_of_lab(lab):
    """Core never imports it: in the project's own environment reinforce is not installed."""
    assert "reinforce" not in lab("plugins").out
    assert not list(Path(__file__).parents[2].glob("lab/**/*reinforce*"))


@pytest.mark.parametrize(("args", "message"), [
    (["new", "plugin", "Bad Name", "--kind", "agent"], "use lowercase letters"),
    (["new", "plugin", "lab-x", "--kind", "agent", "--dir", "/no/such/folder"], "no such folder"),
])
def test_bad_scaffold_input_is_refused(lab, tmp_path, args, message):
    result = lab(*args)
    assert result.code == 2 and message in result.err


def test_an_existing_folder_is_never_overwritten(lab, tmp_path):
    (tmp_path / "lab-x").mkdir()
    (tmp_path / "lab-x" / "mine.txt").write_text("keep")
    result = lab("new", "plugin", "lab-x", "--kind", "agent", "--dir", str(tmp_path))
    assert result.code == 2 and "already exists" in result.err
    assert [p.name for p in (tmp_path / "lab-x").iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab-x"], "no staging folder left behind"
