"""A table of bad inputs across commands, config files, run ids and files: each is refused with exit code 2 and
one line naming what was wrong, and leaves the store and the folder exactly as they were."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FILES: dict[str, str | bytes] = {
    "broken.yaml": "plugin: [toy\n",
    "list.yaml": "- plugin\n- toy\n",
    "typo.yaml": "plugin: toy\nenv: Toy\nrat: 0.1\n",
    "nested.yaml": "config: other.yaml\n",
    "twice.yaml": "plugin: toy\nenv: Toy\nrate: 0.1\nrate: 0.2\n",
    "latin1.yaml": "plugin: toy\nenv: Toy\nrun_name: caf\u00e9\n".encode("latin-1"),
}
FOLDER = "configs"  # a folder in the template, for config=<a folder>
DELETED = "gone"  # a deleted experiment of the template's store
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
    (["run", "plugin=toy", "env=Toy", "steps=1e20"], "steps=1e+20: must be <= 1,000,000,000,000"),
    (["run", "plugin=toy", "env=Toy", "steps=1e99"], "steps=1e+99: must be <= 1,000,000,000,000"),
    (["run", "plugin=toy", "env=Toy", "peak=1e30"], "peak=1e+30: must be between"),
    (["run", "plugin=toy", "env=Toy", "rate=nan"], "rate=nan: must be a finite number"),
    (["run", "plugin=toy", "env=Toy", "rate=inf"], "rate=inf: must be a finite number"),
    (["run", "plugin=dqn", "env=CartPole", "lr=nan"], "lr=nan: must be a finite number"),
    (["run", "plugin=dqn", "env=CartPole", "lr=inf"], "lr=inf: must be a finite number"),
    (["run", "plugin=dqn", "env=CartPole", "plugin=ppo"], "plugin= is given twice; give each key once"),
    (["run", "plugin=toy", "env=Toy", "seed=0,1", "seed=2"], "seed= is given twice"),
    (["run", "plugin=toy", "env=Toy", "run_name="], "run_name=: empty; give a name"),
    (["run", "plugin=toy", "env=Toy", "experiment="], "experiment=: empty; give a name"),
    (["run", "plugin=toy", "env=Toy", "experiment=" + "x" * 600], "too long (600 bytes); valid: up to 255"),
    (["run", "plugin=toy", "env=Toy", "run_name=" + "r" * 300], "too long (300 bytes); valid: up to 250"),
    (["run", "plugin=toy", "env=Toy", f"experiment={DELETED}"], f"experiment {DELETED!r} was deleted"),
    (["run", "plugin=toy", "env=Toy", "seed=4294967296"], "seed=4294967296: must be <= 4,294,967,295 (numpy's"),
    (["run", "plugin=toy", "env=Toy", "threads=100000"], "threads=100000: must be <= "),
    (["run", "plugin=toy", "env=Toy", "seed=range(0,inf)"], "more than 1000 values"),
    (["run", "plugin=toy", "env=Toy", "seed=range(1,9,0)"], "cannot list its values"),
    (["run", "plugin=toy", "env=Toy", "seed=range(5,1)"], "no values"),
    (["run", "plugin=toy", "env=Toy", "seed=range(100)", "rate=range(20)"], "100 x 20 = 2,000 child runs"),
    (["run", "plugin=dqn", "env=Blackjack-v1"], "Blackjack-v1 has a Tuple observation space"),
    (["run", "plugin=ppo", "env=CartPole", "n_steps=1", "n_envs=1"], "n_steps=1 n_envs=1: with normalize_advantage"),
    (["run", "plugin=ppo", "env=CartPole", "batch_size=1"], "batch_size=1: with normalize_advantage=true"),
    (["run", "plugin=ppo", "env=CartPole", "use_sde=true"], "use_sde=true needs continuous (Box) actions"),
    (["run", "plugin=dqn", "env=CartPole", "exploration_fraction=0"], "exploration_fraction=0: must be in (0, 1]"),
    (["run", "plugin=sac", "env=Pendulum", "ent_coef=auto_0"], "ent_coef=auto_0: valid: auto, auto_<initial"),
    (["run", "plugin=dqn", "env=CartPole", "buffer_size=1e12"], "buffer_size=1000000000000: its buffer needs about "
                                                                "52.0 TB"),
    (["sweep", "plugin=toy", "env=Toy", "rate=uniform(0,1)", "rate=uniform(1,2)"], "rate= is given twice"),
    (["run", "plugin=toy", "env=Toy", "trust=true"], "trust=: lab loads no pickled file"),
    # config files
    (["run", "config=broken.yaml"], "config file broken.yaml is not valid YAML"),
    (["run", "config=list.yaml"], "config file list.yaml must be a mapping"),
    (["run", "config=typo.yaml"], "unknown key 'rat' in the config file"),
    (["run", "config=nested.yaml"], "may not itself contain a 'config' key"),
    (["run", "config=absent.yaml"], "config file not found: absent.yaml"),
    (["run", "config=twice.yaml"], "key 'rate' is given twice (lines 3 and 4)"),
    (["run", "config=latin1.yaml"], "config file latin1.yaml is not UTF-8 text (byte 0xe9"),
    (["run", f"config={FOLDER}"], f"config={FOLDER} is a folder; give a YAML file"),
    # run ids
    (["eval", "run=nosuch"], "unknown run id 'nosuch'"),
    (["eval", f"run={RUN}", "episodes=0"], "episodes=0: must be >= 1"),
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
    (["play", "env=Snake", "policy=random", "seed=-1"], "seed=-1: must be >= 0"),
    (["play", "env=Snake", "policy=random", "seed=4294967296"], "seed=4294967296: must be <= 4,294,967,295 (numpy's "
                                                                "seeds are 32-bit)"),
    (["play", "env=Snake", "policy=random", "seed=abc"], "seed=abc: expected an integer >= 0"),
    (["sample"], "missing run=: The model to sample from"),
    (["sample", f"run={RUN}", "n=0"], "n=0: must be >= 1"),
    (["sample", f"run={RUN}", "seed=-1"], "seed=-1: must be >= 0"),
    (["sample", f"run={RUN}", "temperature=-1"], "temperature=-1: must be >= 0"),
    (["sample", f"run={RUN}", "temperature=hot"], "temperature=hot: expected a number >= 0"),
    (["sample", f"run={RUN}", "eval_every=5"], "eval_every= does not apply to lab sample; valid keys: run, n, seed, "
                                               "out, device, prompt, temperature, or a key of the run's plugin"),
    (["sample", f"run={RUN}", "prompt=a", "prompt=b"], "prompt= is given twice"),
    (["play", "env=Snake", "policy=random", "episodes=abc"], "episodes=abc"),
    (["--plugins-dir", "no/such/dir", "plugins"], "plugins directory no/such/dir does not exist"),
    (["new", "plugin", "Lab X", "--kind", "agent"], "use lowercase letters"),
    (["new", "plugin", "lab-x", "--kind", "agent", "--dir", "no/such/dir"], "no such folder"),
    # listing commands
    (["runs", "--limit", "0"], "--limit 0: expected an integer >= 1"),
    (["runs", "--limit", "100000"], "--limit 100000: expected an integer >= 1 and <= 50000"),
    (["plugins", "check"], "missing plugin name"),
    (["show", "plugin=nosuch"], "unknown plugin 'nosuch'"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> tuple[Path, str]:
    """A folder with the default store holding one finished toy run (made once, copied per test)."""
    import toy_plugin

    from lab import cli
    from lab.core import loading

    folder = tmp_path_factory.mktemp("with-a-run")
    (folder / "mlflow").mkdir()
    shutil.copy(empty_store, folder / "mlflow" / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        original = loading.make_plugin_manager

        def with_toy(**kwargs):
            pm = original(**kwargs)
            pm.register_source(toy_plugin, "toy_plugin", "lab-toy", "9.9")
            return pm

        patch.setattr(loading, "make_plugin_manager", with_toy)
        assert cli.main(["run", "plugin=toy", "env=Toy", "steps=100", "progress=false"]) == 0
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    run_id = run.info.run_id
    client.delete_experiment(client.create_experiment(DELETED))
    for name, text in FILES.items():
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    (folder / FOLDER).mkdir()
    return folder, run_id


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_table_is_large():
    assert len(BAD_INPUTS) >= 71


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


@pytest.mark.parametrize("args", [["run", "resume=nosuch"], ["eval", "run=nosuch"], ["play", "run=nosuch"],
                                  ["sample", "run=nosuch"], ["rerun", "nosuch"]])
def test_an_unknown_run_id_in_an_empty_folder_creates_no_store(lab, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = lab(*args)
    assert result.code == 2, (result.out, result.err)
    assert result.err.strip().splitlines() == [f"lab: error: unknown run id 'nosuch': there is no store at "
                                               f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'} yet (see `lab store`)"]
    assert list(tmp_path.iterdir()) == [], "nothing was created"


def test_an_experiment_whose_artifacts_live_elsewhere_is_used_with_a_warning(lab, store, tmp_path,
                                                                             with_toy_plugin):
    from mlflow import MlflowClient

    elsewhere = (tmp_path / "elsewhere").as_uri()
    MlflowClient(f"sqlite:///{store / 'mlflow.db'}").create_experiment("shared", artifact_location=elsewhere)
    result = lab("run", "plugin=toy", "env=Toy", "steps=20", "eval_every=10", "progress=false", "experiment=shared")
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if line.startswith("lab: warning: experiment")]
    assert warnings == [f"lab: warning: experiment 'shared' keeps its artifacts in {elsewhere}, not in "
                        f"{(store / 'artifacts').resolve().as_uri()}/shared: this run's artifacts go there too"]
    assert elsewhere in result.out  # the summary's artifacts line names it too


@pytest.mark.parametrize(("name", "folder"), [("../../escaped", "_.._.._escaped"), ("team/a", "team_a"),
                                              ("..", "_..")])
def test_an_experiment_name_never_reaches_outside_the_stores_artifacts(lab, store, runs, with_toy_plugin, name,
                                                                        folder):
    result = lab("run", "plugin=toy", "env=Toy", "steps=20", "eval_every=10", "progress=false",
                 f"experiment={name}")
    assert result.code == 0, result.err
    (run,) = runs()
    artifacts = (store / "artifacts").resolve()
    where = Path(run.info.artifact_uri.removeprefix("file://")).resolve()
    assert where.parent.parent == artifacts / folder and (where / "config.yaml").is_file()
    assert "warning" not in result.err
