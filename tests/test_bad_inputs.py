"""A table of bad inputs across commands, config files, run ids and files: each is refused with exit code 2 and
one line naming what was wrong, and leaves the store and the folder exactly as they were."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FILES = {
    "broken.yaml": "plugin: [toy\n",
    "list.yaml": "- plugin\n- toy\n",
    "typo.yaml": "plugin: toy\nenv: Toy\nrat: 0.1\n",
    "nested.yaml": "config: other.yaml\n",
}
RUN = "<run>"  # replaced by the id of a finished toy run in the store
BAD_INPUTS = [
    # lab run: keys and values
    (["run", "plugin=toy", "env=Toy", "steps=1.5"], "steps=1.5: expected an integer"),
    (["run", "plugin=toy", "env=Toy", "rate=abc"], "rate=abc"),
    (["run", "plugin=toy", "env=Toy", "progress=maybe"], "progress=maybe"),
    (["run", "plugin=toy", "data=digits"], "data= does not apply to agent plugin 'toy'"),
    (["run", "plugin=vae", "data=nosuch"], "unknown dataset 'nosuch'"),
    (["run", "plugin=vae", "env=CartPole"], "env= does not apply to generator plugin 'vae'"),
    (["run", "plugin=mlp", "data=pydocs"], "text is modelled by sequence models"),
    (["run", "plugin=dqn", "env=CartPole", "net_arch=[0]"], "net_arch=[0]"),
    (["run", "plugin=dqn", "env=CartPole", "gamma=2"], "gamma=2"),
    (["run", "plugin=dqn", "env=CartPole", "backbone=nosuch"], "backbone=nosuch: not an installed backbone"),
    (["run", "plugin=sac", "env=Snake"], "agents that fit: dqn, ppo, a2c"),
    (["run", "plugin=toy", "env=Toy", "trust=true"], "trust= applies to resume="),
    # config files
    (["run", "config=broken.yaml"], "config file broken.yaml is not valid YAML"),
    (["run", "config=list.yaml"], "config file list.yaml must be a mapping"),
    (["run", "config=typo.yaml"], "unknown key 'rat' in the config file"),
    (["run", "config=nested.yaml"], "may not itself contain a 'config' key"),
    (["run", "config=absent.yaml"], "config file not found: absent.yaml"),
    # run ids
    (["eval", "run=nosuch"], "unknown run id 'nosuch'"),
    (["eval", f"run={RUN}", "episodes=0"], "episodes=0: expected an integer >= 1"),
    (["eval", f"run={RUN}", "device=tpu"], "device=tpu"),
    (["sample", f"run={RUN}"], "has nothing to sample from"),
    (["play", f"run={RUN}"], "does not implement play(episodes, seed, recorder)"),
    (["run", f"resume={RUN}", "rate=0.5"], "resume cannot change logged params (rate: 0.01 -> 0.5)"),
    (["run", f"resume={RUN}", "steps=500"], "has no checkpoint to resume from"),
    (["run", "resume=nosuch"], "unknown run id 'nosuch'"),
    (["run", "resume=./nowhere/step-1"], "no such checkpoint folder"),
    # files
    (["sample", f"run={RUN}", "out=missing/dir/x.png"], "folder missing/dir does not exist"),
    (["sample", f"run={RUN}", "out=x.bmp"], "out=x.bmp: unknown file type"),
    (["play", "env=Snake", "policy=random", "out=x.txt"], "out=x.txt: unknown file type; valid: .gif, .mp4"),
    (["play", "env=Snake", "policy=random", "seed=-1"], "seed=-1: expected an integer >= 0"),
    (["play", "env=Snake", "policy=random", "episodes=abc"], "episodes=abc"),
    (["--plugins-dir", "no/such/dir", "plugins"], "plugins directory no/such/dir does not exist"),
    (["new", "plugin", "Lab X", "--kind", "agent"], "use lowercase letters"),
    (["new", "plugin", "lab-x", "--kind", "agent", "--dir", "no/such/dir"], "no such folder"),
    # listing commands
    (["runs", "--limit", "0"], "--limit 0: expected an integer >= 1"),
    (["plugins", "check"], "missing plugin name"),
    (["show", "plugin=nosuch"], "unknown plugin 'nosuch'"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> tuple[Path, str]:
    """A folder with the default store holding one finished toy run (made once, copied per test)."""
    import toy_plugin

    from lab import cli, registry

    folder = tmp_path_factory.mktemp("with-a-run")
    (folder / "mlflow").mkdir()
    shutil.copy(empty_store, folder / "mlflow" / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        original = registry.make_plugin_manager

        def with_toy(**kwargs):
            pm = original(**kwargs)
            pm.register_source(toy_plugin, "toy_plugin", "lab-toy", "9.9")
            return pm

        patch.setattr(registry, "make_plugin_manager", with_toy)
        assert cli.main(["run", "plugin=toy", "env=Toy", "steps=100", "progress=false"]) == 0
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    run_id = run.info.run_id
    for name, text in FILES.items():
        (folder / name).write_text(text)
    return folder, run_id


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_table_is_large():
    assert len(BAD_INPUTS) >= 30


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a)[:60] for a, _ in BAD_INPUTS])
def test_bad_input_is_refused_and_changes_nothing(lab, template, tmp_path, monkeypatch, with_toy_plugin, args,
                                                  message):
    source, run_id = template
    folder = tmp_path / "work"
    shutil.copytree(source, folder)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert [r.info.run_id for r in client.search_runs(experiments)] == [run_id]
    before = snapshot(folder)
    result = lab(*[arg.replace(RUN, run_id) for arg in args])
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error: "), result.err
    assert message in lines[0]
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert [r.info.run_id for r in client.search_runs(experiments)] == [run_id], "no run was created"
    assert client.get_run(run_id).info.status == "FINISHED", "the existing run was not touched"
    after = snapshot(folder)
    assert {k for k in after if not k.startswith("mlflow/")} == {k for k in before if not k.startswith("mlflow/")}
