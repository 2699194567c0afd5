"""Every built-in agent end to end through the CLI, on a tiny budget, against a temporary store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TINY = ["steps=400", "eval_every=200", "eval_episodes=2", "progress=false", "device=cpu"]
OFF_POLICY = ["learning_starts=100"]  # the presets wait up to 10k steps before learning
AGENT_ENVS = [
    ("dqn", "CartPole", OFF_POLICY),
    ("ppo", "CartPole", []),
    ("a2c", "CartPole", ["steps=4400", "eval_every=2200"]),  # SB3 logs A2C every 100 updates (4000 steps)
    ("sac", "Pendulum", OFF_POLICY),
    ("td3", "Pendulum", OFF_POLICY),
    ("ddpg", "Pendulum", OFF_POLICY),
]


def artifacts(run) -> set[str]:
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def run_id(output: str) -> str:
    return re.search(r"run id:\s+(\w+)", output).group(1)


@pytest.mark.slow
@pytest.mark.parametrize(("plugin", "env", "extra"), AGENT_ENVS)
def test_agent_trains_and_is_tracked(lab, runs, plugin, env, extra):
    overrides = dict(item.split("=", 1) for item in [*TINY, *extra])  # an extra replaces a TINY key
    result = lab("run", f"plugin={plugin}", f"env={env}", "seed=1", *(f"{k}={v}" for k, v in overrides.items()))
    assert result.code == 0, result.err
    (run,) = runs()
    assert run.info.status == "FINISHED"
    assert run.data.params["plugin"] == plugin and run.data.params["seed"] == "1"
    assert run.data.tags["lab.preset"].startswith(("zoo:", "defaults:"))
    metrics = run.data.metrics
    assert {"eval/mean_return", "eval/std_return", "best/score", "time/wall_seconds"} <= set(metrics)
    assert any(key.startswith(("rollout/", "train/", "time/fps")) for key in metrics), "SB3's logger is forwarded"
    from mlflow import MlflowClient

    steps = [m.step for m in MlflowClient().get_metric_history(run.info.run_id, "eval/mean_return")]
    assert len(steps) >= 2 and steps == sorted(steps), "evaluated on schedule and at the end"
    assert {"config.yaml", "model/best/policy.safetensors", "model/best/agent.json",
            "model/final/policy.safetensors", "learning_curve.png", "play.gif"} <= artifacts(run)

    # lab play: the logged best model plays two episodes; the same seed gives the same episodes.
    played = lab("play", f"run={run.info.run_id}", "episodes=2", "seed=3", "out=watch.gif")
    assert played.code == 0, played.err
    lines = re.findall(r"episode (\d): return (\S+), length (\d+) steps", played.out)
    assert [number for number, _, _ in lines] == ["1", "2"]
    assert all(int(length) > 0 for _, _, length in lines)
    assert gif_frames(Path("watch.gif")) > 2
    again = lab("play", f"run={run.info.run_id}", "episodes=2", "seed=3", "out=again.mp4")
    assert again.code == 0, again.err
    assert re.findall(r"episode \d: .*", again.out) == re.findall(r"episode \d: .*", played.out)
    assert Path("again.mp4").stat().st_size > 1000


def gif_frames(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "GIF"
        return image.n_frames


@pytest.mark.slow
def test_atari_pipeline_trains_logs_a_gif_and_plays(lab, runs):
    """Pong through ale-py: the standard wrappers, a CNN policy, the Zoo preset, on a tiny budget."""
    result = lab("run", "plugin=dqn", "env=Pong", "steps=300", "learning_starts=100", "buffer_size=1000",
                 "eval_every=300", "eval_episodes=1", "progress=false", "device=cpu")
    assert result.code == 0, result.err
    assert "ALE/Pong-v5" in result.out and "zoo:dqn/atari" in result.out
    (run,) = runs()
    assert run.info.status == "FINISHED"
    assert run.data.params["buffer_size"] == "1000" and run.data.params["net_arch"] == "[]"
    assert "play.gif" in artifacts(run)
    # A full game: Pong ends when one side has 21 points, so an untrained agent's return is -21..-1.
    assert -21 <= run.data.metrics["eval/mean_return"] < 0
    from safetensors import safe_open

    root = Path(run.info.artifact_uri.removeprefix("file://"))
    with safe_open(str(root / "model/best/policy.safetensors"), "pt") as weights:
        first_conv = [key for key in weights.keys() if key.endswith("cnn.0.weight")]  # noqa: SIM118
        assert first_conv, "NatureCNN features extractor"
        assert tuple(weights.get_tensor(first_conv[0]).shape) == (32, 4, 8, 8), "4 stacked 84x84 grey frames"


@pytest.fixture(autouse=True)
def tracking_uri(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")


@pytest.mark.slow
def test_eval_reloads_the_best_model_and_reproduces_its_score(lab, runs):
    result = lab("run", "plugin=ppo", "env=CartPole", "steps=2048", "eval_every=1024", "eval_episodes=5",
                 "progress=false", "gif=false")
    assert result.code == 0, result.err
    identifier = run_id(result.out)
    first = lab("eval", f"run={identifier}", "episodes=5")
    second = lab("eval", f"run={identifier}", "episodes=5")
    assert first.code == 0, first.err
    assert first.out == second.out, "evaluation is deterministic"
    score = float(re.search(r"mean_return: (\S+) \+-", first.out).group(1))
    (run,) = runs()
    logged = run.data.metrics["best/score"]
    assert "best model" in first.out and f"logged best: {logged:.2f}" in first.out
    assert score == pytest.approx(logged, rel=0.5), "same weights, fresh episodes: same ballpark"


@pytest.mark.slow
def test_same_seed_same_run(lab, runs):
    from mlflow import MlflowClient

    args = ["plugin=dqn", "env=CartPole", "steps=1500", "eval_every=500", "eval_episodes=3", "learning_starts=200",
            "train_freq=64", "gradient_steps=16", "progress=false", "gif=false"]
    curves = []
    for seed in (5, 5, 6):
        assert lab("run", *args, f"seed={seed}").code == 0
        run = runs()[0]
        history = MlflowClient().get_metric_history(run.info.run_id, "train/loss")
        curves.append([(m.step, m.value) for m in history])
    assert curves[0] and curves[0] == curves[1]
    assert curves[0] != curves[2]
