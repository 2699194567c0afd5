"""The shared sample-quality metrics on cases with known answers, and the cached feature network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lab.core.loading import load_registry, make_plugin_manager
from lab.training import sample_quality as metrics


@pytest.fixture(scope="module")
def digits():
    return load_registry(make_plugin_manager(entry_points=False)).load_dataset("digits")


def test_mmd2_is_about_zero_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    same = metrics.mmd2(x, y)
    assert abs(same) < 0.002
    assert abs(metrics.mmd2(x, x)) < 0.01  # identical sets: about zero (the unbiased estimate can dip below)
    shifts = [metrics.mmd2(x, y + shift) for shift in (0.1, 0.3, 1.0)]
    assert same < shifts[0] < shifts[1] < shifts[2]


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # N(0, I) against N(m, 4 I): |m|^2 + tr(I + 4I - 2 * 2I) = |m|^2 + 3
    b = rng.normal(size=(20000, 3)) * 2 + np.array([1.0, 2.0, 0.0])
    assert metrics.frechet_distance(a, b) == pytest.approx(5.0 + 3.0, rel=0.05)


def test_precision_and_recall_see_fidelity_and_coverage_apart():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2))
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    far = real + 100.0
    assert metrics.precision_recall(real, far) == (0.0, 0.0)
    collapsed = real[real[:, 0] > 1.0]  # faithful samples of one corner only: precise, but little recall
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.4


def test_independent_bernoulli_nll_is_the_entropy_of_the_pixels():
    rng = np.random.default_rng(0)
    images = (rng.random((20000, 4)) < np.array([0.5, 0.5, 0.1, 0.9])).astype(np.float32)
    entropy = 2 * np.log(2) + 2 * -(0.1 * np.log(0.1) + 0.9 * np.log(0.9))
    assert metrics.independent_bernoulli_nll(images, images) == pytest.approx(entropy, rel=0.01)


def test_independent_pixels_keep_each_pixels_marginal_and_lose_the_structure():
    images = np.zeros((100, 1, 2, 2), dtype=np.float32)
    images[50:] = 1.0  # two kinds of image: all black or all white
    samples = metrics.independent_pixels(images, 4000)
    assert samples.mean() == pytest.approx(0.5, abs=0.03)
    uniform = (samples.reshape(4000, -1).min(1) == samples.reshape(4000, -1).max(1)).mean()
    assert uniform < 0.2  # real images are all uniform; about 1/8 of independent ones happen to be


def test_image_judge_floor_beats_ceiling_and_real_data_scores_as_the_floor(digits):
    judge = metrics.SampleJudge(digits)
    baselines = judge.baselines("test", 500)
    assert baselines["fd_floor"] * 10 < baselines["fd_ceiling"]
    assert baselines["precision_floor"] > 0.8 and baselines["recall_floor"] > 0.8
    real = judge.metrics(digits.x_train[:500], "test")
    assert real["fd"] == pytest.approx(baselines["fd_floor"])
    assert real["class_coverage"] == 1.0
    ones = digits.x_train[digits.y_train == 1]
    collapsed = judge.metrics(np.repeat(ones, 500 // len(ones) + 1, axis=0)[:500], "test")  # only ones
    assert collapsed["class_coverage"] == pytest.approx(0.1) and collapsed["recall"] < 0.3
    assert collapsed["fd"] > 5 * baselines["fd_floor"]


def test_the_feature_network_is_trained_once_deterministically_then_cached(digits, tmp_path: Path, monkeypatch):
    first = metrics.feature_network(digits)  # from the session's cache (conftest) or trained now
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path))
    retrained = metrics.feature_network(digits)
    (cached,) = (tmp_path / "features").glob("digits-*.safetensors")
    again = metrics.feature_network(digits)
    for a, b, c in zip(first.state_dict().values(), retrained.state_dict().values(), again.state_dict().values(),
                       strict=True):
        assert torch.equal(a, b) and torch.equal(b, c)
    with torch.no_grad():
        logits = retrained["head"](retrained["body"](torch.as_tensor(digits.x_test)))
    accuracy = (logits.argmax(1).numpy() == digits.y_test).mean()
    assert accuracy > 0.95 and cached.stat().st_size > 10_000


@pytest.mark.parametrize(("plugin", "data"), [("gan", "digits"), ("vae", "moons")])
def test_built_in_generators_log_exactly_what_the_public_judge_returns(plugin, data):
    """An outside generator calling lab.api.judge_samples gets the numbers a built-in logs for the same samples."""
    from lab import api
    from lab.core.config import resolve
    from lab.training.build import build_context, seed_everything
    from lab_generators.common import EVAL_SEED

    registry = load_registry(make_plugin_manager(entry_points=False))
    config = resolve(registry, {"plugin": plugin, "data": data, "eval_samples": 200, "steps": 64})
    seed_everything(0)
    model = config.plugin.build(build_context(config, "cpu"))
    logged = model.evaluate(1)
    samples = model.generate(200, EVAL_SEED)
    public = api.judge_samples(model.data, samples, "val", transform=model.observe)
    assert {key: logged[key] for key in public if key != "score"} == {k: v for k, v in public.items() if k != "score"}
    if plugin == "gan":  # the VAE keeps its best model by the ELBO: its own score
        assert logged["score"] == public["score"] == -public["fd"]
    test = api.judge_samples(model.data, samples, "test", baselines=True, transform=model.observe)
    expected = {"fd", "precision", "recall", "class_coverage", "fd_floor", "fd_ceiling", "fd_gap_closed"}
    assert (expected if data == "digits" else {"mmd2", "mmd2_floor", "mmd2_ceiling", "mmd2_ratio_to_ceiling"}) < set(
        test)


@pytest.mark.parametrize("samples", [np.zeros((1, 2)), np.zeros((10, 3))])
def test_the_public_judge_refuses_samples_of_the_wrong_shape(samples):
    from lab import api

    moons = load_registry(make_plugin_manager(entry_points=False)).load_dataset("moons")
    with pytest.raises(ValueError, match=r"samples must be at least 2 examples of shape \(2,\)"):
        api.judge_samples(moons, samples)
