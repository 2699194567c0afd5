"""`lab play` with a random policy on every env family, its refusals, and the Recorder behind every GIF."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lab.training.video import Recorder

FAMILIES = [("CartPole", "classic-control"), ("LunarLander", "box2d"), ("Pong", "atari"), ("Snake", "lab"),
            ("Maze", "lab"), ("Dock", "lab")]


@pytest.fixture(autouse=True)
def in_tmp(store: Path) -> None:
    """Every test works in a fresh folder with its own store (files are written to the cwd)."""


def episodes_of(output: str) -> list[tuple[float, int]]:
    return [(float(r), int(n)) for r, n in re.findall(r"episode \d+: return (\S+), length (\d+) steps", output)]


@pytest.mark.parametrize(("env", "family"), FAMILIES)
def test_random_policy_plays_every_env_family(lab, env, family):
    result = lab("play", f"env={env}", "policy=random", "episodes=2", "seed=4", "out=random.gif")
    assert result.code == 0, result.err
    played = episodes_of(result.out)
    assert len(played) == 2 and all(length > 0 for _, length in played)
    assert "mean return" in result.out and "random policy on" in result.out
    with Image.open("random.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames > 2
    again = lab("play", f"env={env}", "policy=random", "episodes=2", "seed=4", "out=again.gif")
    assert episodes_of(again.out) == played, "same seed, same episodes"


def test_mp4_output_is_a_video_with_the_recorded_frames(lab):
    result = lab("play", "env=Snake", "policy=random", "episodes=3", "seed=1", "out=snake.mp4")
    assert result.code == 0, result.err
    frames = int(re.search(r"wrote (\d+) frames", result.out).group(1))
    import imageio.v3 as iio

    video = iio.imread("snake.mp4", plugin="FFMPEG", index=None)
    assert video.shape[0] == frames and video.shape[-1] == 3


@pytest.mark.parametrize(("args", "message"), [
    (["env=Snake"], "missing policy=random"),
    (["env=Snake", "policy=greedy"], "policy=greedy: valid policies with env= are random"),
    (["env=Snake", "policy=random", "out=x.avi"], "out=x.avi: unknown file type; valid: .gif, .mp4"),
    (["env=Snake", "policy=random", "out=nowhere/x.gif"], "folder nowhere does not exist"),
    (["env=Snake", "policy=random", "episodes=0"], "episodes=0: must be >= 1"),
    (["env=Snake", "policy=random", "episodes=two"], "episodes=two: expected an integer >= 1"),
    (["env=Snake", "policy=random", "speed=2"], "unknown key 'speed' for lab play"),
    (["env=Snake", "policy=random", "episode=2"], "unknown key 'episode' for lab play (did you mean 'episodes'?); "
                                                  "valid keys: run, env, policy, episodes, seed, out, device"),
    (["env=Snake", "policy=random", "device=cpu"], "device= applies to run=<run id> only"),
    (["env=Snak", "policy=random"], "unknown env 'Snak'"),
    (["run=abc", "policy=random"], "policy= does not go with run="),
    (["run=abc"], "unknown run id 'abc'"),
    ([], "missing run=<run id> (a trained agent) or env=NAME policy=random"),
])
def test_bad_input_is_refused_and_writes_nothing(lab, args, message):
    result = lab("play", *args)
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert not list(Path.cwd().glob("*.gif")) and not list(Path.cwd().glob("*.avi"))
    assert not Path("play.gif").exists()


def test_a_generator_run_is_not_played(lab):
    trained = lab("run", "plugin=vae", "data=moons", "steps=200", "eval_every=200", "progress=false")
    assert trained.code == 0, trained.err
    run_id = re.search(r"run id:\s+(\w+)", trained.out).group(1)
    result = lab("play", f"run={run_id}")
    assert result.code == 2 and "is a generator" in result.err and "lab sample" in result.err
    assert not Path("play.gif").exists()


# ------------------------------------------------------------------------------------------------ Recorder


def frame(value: int) -> np.ndarray:
    return np.full((10, 12, 3), value, dtype=np.uint8)


def test_recorder_keeps_every_stride_th_frame_and_the_last():
    recorder = Recorder(fps=10, expected_length=300, max_frames=20)
    assert recorder.stride == 4, "a 300-step episode is thinned at most twice"
    rendered = []
    for step in range(23):
        recorder.frame(lambda step=step: rendered.append(step) or frame(step), last=step == 22)
    recorder.end_episode(3.0, 22)
    assert rendered == [0, 4, 8, 12, 16, 20, 22], "only kept frames are rendered"
    assert [int(f[0, 0, 0]) for f in recorder.frames] == rendered
    assert recorder.durations_ms == [400.0] * 7
    assert recorder.episodes[0].total_reward == 3.0 and recorder.episodes[0].length == 22


def test_recorder_thins_long_episodes_to_max_frames():
    recorder = Recorder(fps=10, max_frames=8)
    for step in range(100):
        recorder.frame(lambda step=step: frame(step))
    assert len(recorder.frames) <= 8 and recorder.stride == 16
    kept = [int(f[0, 0, 0]) for f in recorder.frames]
    assert kept == list(range(0, 100, 16))
    assert set(recorder.durations_ms) == {1600.0}, "each kept frame shows for the time it stands for"


def test_recorder_counts_without_rendering_when_not_recording():
    recorder = Recorder(record=False)
    recorder.frame(lambda: pytest.fail("rendered"))
    recorder.end_episode(1.0, 1)
    assert recorder.frames == [] and len(recorder.episodes) == 1
    with pytest.raises(ValueError, match="nothing was recorded"):
        recorder.save(Path("x.gif"))


def moving_dot(step: int) -> np.ndarray:
    picture = np.zeros((10, 12, 3), dtype=np.uint8)
    picture[5, step] = 255
    return picture


def test_recorder_writes_gif_and_mp4(tmp_path):
    recorder = Recorder(fps=20)
    for step in range(9):
        recorder.frame(lambda step=step: moving_dot(step))
    recorder.save(tmp_path / "a.gif")
    recorder.save(tmp_path / "a.mp4")
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 9 and gif.size == (12, 10) and gif.info["duration"] == 50
    import imageio.v3 as iio

    video = iio.imread(tmp_path / "a.mp4", plugin="FFMPEG", index=None)
    assert video.shape[:3] == (9, 10, 12)
    with pytest.raises(ValueError, match="valid suffixes are .gif, .mp4"):
        recorder.save(tmp_path / "a.webm")
