"""What a third-party plugin author used to get wrong silently (issue 16): each trap now has a plain answer."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from lab.core.loading import load_registry, make_plugin_manager
from lab.core.options import option
from lab.testing import BudgetWatch, ConformanceError

WALKER = textwrap.dedent("""
    from dataclasses import dataclass

    import gymnasium

    from lab.api import Plugin, hookimpl, option


    @dataclass
    class WalkerConfig:
        push: int = option(1, "The action it always takes.", min=0, max=1)


    class Walker:
        target_score = None

        def __init__(self, context):
            self.env_id, self.push, self.steps = context.target, context.config.push, 0

        def train(self, budget, on_step):
            while self.steps < budget:
                self.steps += 1
                if not on_step(self.steps):
                    return

        def evaluate(self, episodes):
            return {"mean_return": float(self.steps)}

        def save(self, directory):
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "walker.txt").write_text(str(self.push))

        def load(self, directory):
            self.push = int((directory / "walker.txt").read_text())

        def artifacts(self, directory):
            return []  # no GIF of its own: lab makes play.gif from play()

        def play(self, episodes, seed, recorder):
            env = gymnasium.make(self.env_id, render_mode="rgb_array")
            recorder.configure(env.metadata.get("render_fps", 30), 500)
            for episode in range(episodes):
                env.reset(seed=seed + episode)
                recorder.frame(env.render)
                total, length, done = 0.0, 0, False
                while not done:
                    _, reward, terminated, truncated, _ = env.step(self.push)
                    total, length, done = total + reward, length + 1, terminated or truncated
                    recorder.frame(env.render, last=done)
                recorder.end_episode(total, length)


    def build(context):
        return Walker(context)


    @hookimpl
    def register_plugins(register):
        register(Plugin("walker", "agent", WalkerConfig, FACTORY, "Always pushes one way.", score="mean_return"))
    """)
RUN = ["run", "plugin=walker", "env=CartPole", "steps=20", "eval_every=10", "progress=false"]


def walker_dir(tmp_path: Path, factory: str = "walker_agent:build", module: str = "walker_agent") -> Path:
    """A plugins folder holding the walker as ``module``.py. Each test that imports the factory module gives it
    a name of its own: an earlier test's module of the same name would still be in sys.modules."""
    directory = tmp_path / "plugins"
    directory.mkdir(exist_ok=True)
    (directory / f"{module}.py").write_text(WALKER.replace("FACTORY", repr(factory)))
    return directory


def artifacts(run) -> set[str]:
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_the_runner_makes_play_gif_from_play(lab, runs, tmp_path, monkeypatch):
    directory = walker_dir(tmp_path, "walker_gif:build", "walker_gif")
    monkeypatch.syspath_prepend(str(directory))  # the factory module, as an installed package would be
    result = lab("--plugins-dir", str(directory), *RUN)
    assert result.code == 0, result.err
    (run,) = runs()
    assert "play.gif" in artifacts(run)
    assert (Path(run.info.artifact_uri.removeprefix("file://")) / "play.gif").read_bytes()[:6] == b"GIF89a"


def test_gif_false_in_the_plugins_config_turns_it_off(lab, runs):
    result = lab("run", "plugin=dqn", "env=CartPole", "steps=200", "learning_starts=50", "eval_every=200",
                 "eval_episodes=1", "progress=false", "gif=false")
    assert result.code == 0, result.err
    assert "play.gif" not in artifacts(runs()[0])


@pytest.mark.parametrize(("factory", "extra", "reason"), [
    ("mist.agnet:build", "", "factory 'mist.agnet:build'"),
    ("walker_agent:biuld", "", "has no callable 'biuld'"),
    ("walker_agent:build", "\nimport not_a_module_anyone_has\n", None),
])
def test_a_broken_factory_is_caught_before_any_run(lab, runs, tmp_path, monkeypatch, factory, extra, reason):
    directory = walker_dir(tmp_path, factory)
    if extra:  # an import error inside the factory's module (not the registering module)
        (directory.parent / "inner").mkdir()
        (directory.parent / "inner" / "walker_inner.py").write_text(extra)
        factory = "walker_inner:build"
        (directory / "walker_agent.py").write_text(WALKER.replace("FACTORY", repr(factory)))
        monkeypatch.syspath_prepend(str(directory.parent / "inner"))
        reason = "failed to import: ModuleNotFoundError"
    monkeypatch.syspath_prepend(str(directory))
    if factory.startswith("mist"):  # lab plugins finds a missing module without importing anything
        rows = {row["name"]: row for row in json.loads(lab("--plugins-dir", str(directory), "plugins",
                                                           "--json").out)}
        assert rows["walker"]["status"] == "broken" and reason in rows["walker"]["error"]
    checked = lab("--plugins-dir", str(directory), "plugins", "check", "walker", "env=CartPole")
    assert checked.code == 1 and "FAIL  registers" in checked.out and reason in checked.out
    refused = lab("--plugins-dir", str(directory), *RUN)
    assert refused.code == 2 and reason in refused.err and "Traceback" not in refused.err
    assert len(refused.err.strip().splitlines()) == 1, refused.err
    assert runs() == [], "no FAILED run is left behind"


@pytest.mark.parametrize(("source", "message"), [
    ("def register_plugins(register):\n    pass\n", "register_plugins not decorated with @hookimpl"),
    ("X = 1\n", "implements no lab hook"),
    ("from lab.api import hookimpl\n@hookimpl\ndef register_plugin(register):\n    pass\n",
     "unknown hook 'register_plugin' (did you mean 'register_plugins'?)"),
    ("from lab.api import hookimpl\n@hookimpl\ndef register_plugins(registr):\n    pass\n",
     "hook register_plugins() takes any of (register), not registr"),
])
def test_hook_mistakes_are_named(lab, tmp_path, source, message):
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "mistake.py").write_text(source)
    result = lab("--plugins-dir", str(directory), "plugins", "--json")
    rows = {row["name"]: row for row in json.loads(result.out)}
    assert rows["mistake"]["status"] == "broken" and message in rows["mistake"]["error"]
    assert "lab: warning:" in result.err and message in result.err


def test_option_takes_list_defaults_and_refuses_a_dataclasses_field():
    import dataclasses

    @dataclasses.dataclass
    class Sizes:
        hidden: list[int] = option([64, 64], "Hidden sizes.")

    first, second = Sizes(), Sizes()
    first.hidden.append(1)
    assert second.hidden == [64, 64], "each config its own list"
    with pytest.raises(TypeError, match=r"give the default value itself, e\.g\. option\(\[64, 64\]"):
        option(dataclasses.field(default_factory=list), "Hidden sizes.")


def test_agents_without_check_target_are_not_listed_as_fitting(tmp_path, monkeypatch):
    directory = walker_dir(tmp_path)  # walker has no check_target: lab cannot tell what it fits
    registry = load_registry(make_plugin_manager(plugins_dir=directory))
    assert "walker" in registry.plugins
    fitting = registry.plugins_for("agent", "CartPole-v1")
    assert "walker" not in fitting and "dqn" in fitting and "sac" not in fitting


def test_the_kit_flags_training_past_the_budget():
    watch = BudgetWatch(100)
    assert all(watch(step) for step in range(1, 101))  # stops at the budget: fine
    rollout = BudgetWatch(100)
    assert all(rollout(step, False) for step in range(1, 130))  # SB3 finishing the rollout it is in: fine
    generator = BudgetWatch(100)
    assert generator(64) and generator(128)  # the first boundary past the budget ends it: fine
    overshoot = BudgetWatch(100)
    for step in range(1, 101):
        overshoot(step)
    with pytest.raises(ConformanceError, match=r"train\(100\) went on past its budget: on_step\(101\)"):
        overshoot(101)


@pytest.mark.slow
def test_the_kit_fails_an_agent_that_overshoots(lab, tmp_path, monkeypatch):
    directory = walker_dir(tmp_path, "walker_overshoot:build", "walker_overshoot")
    source = (directory / "walker_overshoot.py").read_text()
    (directory / "walker_overshoot.py").write_text(source.replace("while self.steps < budget:",
                                                                  "while self.steps < budget + 50:"))
    monkeypatch.syspath_prepend(str(directory))
    checked = lab("--plugins-dir", str(directory), "plugins", "check", "walker", "env=CartPole", "steps=40",
                  "eval_every=20")
    assert checked.code == 1 and "went on past its budget" in checked.out, checked.out


@pytest.mark.slow
def test_sample_refuses_an_architecture_key_and_takes_the_others(lab, runs, tmp_path):
    trained = lab("run", "plugin=diffusion", "data=moons", "steps=256", "eval_every=256", "eval_samples=50",
                  "batch_size=64", "hidden=[32,32]", "inference_steps=5", "progress=false")
    assert trained.code == 0, trained.err
    run_id = runs()[0].info.run_id
    refused = lab("sample", f"run={run_id}", "hidden=[64,64]", "n=8", f"out={tmp_path / 'x.npy'}")
    assert refused.code == 2 and "Traceback" not in refused.err
    assert "hidden=[64, 64]: changes the architecture of the logged model (trained with hidden=[32, 32])" in (
        refused.err), refused.err
    assert not (tmp_path / "x.npy").exists()
    taken = lab("sample", f"run={run_id}", "inference_steps=3", "n=8", f"out={tmp_path / 'y.npy'}")
    assert taken.code == 0, taken.err
    assert (tmp_path / "y.npy").is_file()
