"""Generators: each end to end through the CLI, `lab sample`, save/load, refused combinations, determinism."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lab.core.config import resolve
from lab.core.errors import ConfigError
from lab.core.loading import load_registry, make_plugin_manager
from lab.training.build import build_context

GENERATORS = ["vae", "gan", "diffusion"]
# A few hundred examples, small metric samples and few denoising steps: seconds per run.
TINY = ["steps=512", "eval_every=256", "eval_samples=100", "batch_size=64", "progress=false"]
FAST = {"vae": ["iw_samples=10"], "gan": [], "diffusion": ["inference_steps=5"]}


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


@pytest.fixture
def tracked(store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    return store


def build(registry, **keys):
    config = resolve(registry, {"seed": 0, "batch_size": 64, "eval_samples": 100, **keys})
    torch.manual_seed(config.runner.seed)
    return config.plugin.build(build_context(config, "cpu"))


def artifacts(run) -> set[str]:
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def run_id_of(output: str) -> str:
    return re.search(r"run id:\s+(\w+)", output).group(1)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["digits", "moons"])
@pytest.mark.parametrize("plugin", GENERATORS)
def test_generator_trains_end_to_end_and_samples(lab, runs, tracked, tmp_path, plugin, data):
    result = lab("run", f"plugin={plugin}", f"data={data}", *TINY, *FAST[plugin])
    assert result.code == 0, result.err
    (run,) = runs()
    assert run.info.status == "FINISHED"
    metrics, files = run.data.metrics, artifacts(run)
    quality = ["fd", "precision", "recall", "class_coverage"] if data == "digits" else ["mmd2"]
    assert {f"eval/{name}" for name in quality} <= set(metrics)
    assert {f"test/{name}" for name in quality} <= set(metrics)
    if data == "digits":
        assert metrics["test/fd_floor"] < metrics["test/fd_ceiling"]
        assert {"test/fd_gap_closed", "test/precision_floor", "test/recall_floor"} <= set(metrics)
    else:
        assert metrics["test/mmd2_floor"] < metrics["test/mmd2_ceiling"]
    if plugin == "vae":
        assert {"eval/neg_elbo", "test/neg_elbo", "test/iw_nll", "test/baseline_nll", "train/kl"} <= set(metrics)
    # a sample picture at every evaluation, each an MLflow image at its step
    steps = sorted(int(m.group(1)) for f in files if (m := re.match(r"images/samples\+step\+(\d+)\+.*\.png$", f)))
    assert steps == [256, 512]
    if plugin == "vae" and data == "digits":
        assert any(f.startswith("images/reconstructions+step+") for f in files)
    assert {"config.yaml", "samples.png", "learning_curve.png"} <= files
    saved = "model_index.json" if (plugin, data) == ("diffusion", "digits") else "model.safetensors"
    if plugin == "diffusion" and data == "moons":
        saved = "denoiser/diffusion_pytorch_model.safetensors"
    assert f"model/best/{saved}" in files and f"model/final/{saved}" in files
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == data

    # lab sample: the same seed gives the same samples, another seed others
    run_id = run_id_of(result.out)
    first, again, other = (tmp_path / name for name in ("first.npy", "again.npy", "other.npy"))
    for path, seed in ((first, 3), (again, 3), (other, 4)):
        sampled = lab("sample", f"run={run_id}", "n=12", f"seed={seed}", f"out={path}")
        assert sampled.code == 0, sampled.err
        assert "wrote 12 samples" in sampled.out
    samples = np.load(first)
    assert samples.shape == ((12, 1, 8, 8) if data == "digits" else (12, 2))
    np.testing.assert_array_equal(samples, np.load(again))
    assert not np.array_equal(samples, np.load(other))
    if data == "digits":
        assert samples.min() >= 0.0 and samples.max() <= 1.0
    picture = tmp_path / "grid.png"
    assert lab("sample", f"run={run_id}", "n=16", f"out={picture}").code == 0
    from PIL import Image

    with Image.open(picture) as image:
        assert image.format == "PNG" and min(image.size) >= 64


@pytest.mark.slow
def test_diffusion_run_reloads_as_a_diffusers_pipeline(lab, runs, tracked):
    from diffusers import DDPMPipeline

    result = lab("run", "plugin=diffusion", "data=digits", *TINY, *FAST["diffusion"])
    assert result.code == 0, result.err
    (run,) = runs()
    best = Path(run.info.artifact_uri.removeprefix("file://")) / "model" / "best"
    pipeline = DDPMPipeline.from_pretrained(best)
    images = pipeline(batch_size=3, num_inference_steps=4, generator=torch.Generator().manual_seed(0),
                      output_type="np").images
    assert images.shape == (3, 8, 8, 1) and np.isfinite(images).all()
    # lab sample takes the plugin's sampling keys: fewer steps, the other sampler
    out = best.parent.parent.parent / "ddpm.npy"
    sampled = lab("sample", f"run={run.info.run_id}", "n=4", "sampler=ddpm", "inference_steps=3", f"out={out}")
    assert sampled.code == 0, sampled.err and np.load(out).shape == (4, 1, 8, 8)


@pytest.mark.slow
def test_image_generators_train_on_generated_shapes(lab, runs, tracked, tmp_path):
    """16x16 images: the conv networks, the UNet and the feature classifier all follow the dataset's shape."""
    result = lab("run", "plugin=gan", "data=shapes", *TINY)
    assert result.code == 0, result.err
    (run,) = runs()
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test/fd_floor"] < run.data.metrics["test/fd_ceiling"]
    assert run.data.params["channels"] == "[32, 64, 128]"  # the shapes preset: one more resolution than digits
    out = tmp_path / "shapes.npy"
    assert lab("sample", f"run={run_id_of(result.out)}", "n=5", f"out={out}").code == 0
    assert np.load(out).shape == (5, 1, 16, 16)
    evaluated = lab("eval", f"run={run_id_of(result.out)}")  # the best model, judged again on val and test
    assert evaluated.code == 0, evaluated.err
    assert "on the validation split" in evaluated.out and "fd_gap_closed" in evaluated.out
    score, best = re.search(r"score: (\S+) on the validation split .*logged best: ([^)]+)\)", evaluated.out).groups()
    assert score == f"{float(score):.4g}" and best == f"{run.data.metrics['best/score']:.4g}", "one format for both"


@pytest.mark.parametrize("data", ["digits", "moons"])
@pytest.mark.parametrize("plugin", GENERATORS)
def test_save_load_round_trip_gives_identical_samples(registry, tmp_path: Path, plugin, data):
    keys = {"plugin": plugin, "data": data, **({"inference_steps": 4} if plugin == "diffusion" else {})}
    trained = build(registry, **keys)
    trained.train(256, lambda step, boundary=True: True)
    trained.save(tmp_path / "model")
    fresh = build(registry, **keys, seed=7)
    assert not np.array_equal(fresh.generate(8, seed=1), trained.generate(8, seed=1))
    fresh.load(tmp_path / "model")
    np.testing.assert_array_equal(fresh.generate(8, seed=1), trained.generate(8, seed=1))


def test_same_seed_same_training(registry):
    samples = []
    for seed in (4, 4, 5):
        model = build(registry, plugin="gan", data="moons", seed=seed)
        model.train(640, lambda step, boundary=True: True)
        samples.append(model.generate(50, seed=0))
    np.testing.assert_array_equal(samples[0], samples[1])
    assert not np.array_equal(samples[0], samples[2])


def test_the_vae_bound_is_consistent(registry):
    """On the same data: the importance-weighted NLL is at most the -ELBO, and it tightens with more samples."""
    model = build(registry, plugin="vae", data="digits")
    model.train(1257 * 3, lambda step, boundary=True: True)
    x = model._split("test")[:64]
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = float(model.neg_elbo(x)[0].mean())
        one, many = (float(model.importance_weighted_nll(x, k).mean()) for k in (1, 200))
    assert many < one and many < elbo
    assert one == pytest.approx(elbo, rel=0.1)  # one importance sample is the ELBO, up to noise


@pytest.mark.parametrize(("keys", "message"), [
    ({"plugin": "vae", "data": "moons", "likelihood": "bernoulli"}, "likelihood=bernoulli needs binary data"),
    ({"plugin": "vae", "data": "moons", "network": "conv"}, "network=conv needs images"),
    ({"plugin": "gan", "data": "digits", "channels": [8, 16, 32, 64, 128]}, "halves the image 4 times; digits is 8x8"),
    ({"plugin": "diffusion", "data": "digits", "channels": [32]}, "a UNet needs at least two resolutions"),
    ({"plugin": "diffusion", "data": "digits", "channels": [32, 36]}, "each must be a multiple of the smallest"),
    ({"plugin": "diffusion", "data": "moons", "inference_steps": 2000}, "cannot exceed train_timesteps=1000"),
    ({"plugin": "gan", "data": "moons", "loss": "wasserstein", "label_smoothing": 0.1},
     "label_smoothing applies to the non-saturating loss"),
    ({"plugin": "gan", "data": "pydocs"}, "generators learn images (channels, height, width) or points"),
    ({"plugin": "vae", "data": "sine"}, "sine has shape (32, 1)"),
    ({"plugin": "diffusion", "data": "moons", "sampler": "euler"}, "sampler=euler: valid: ddpm, ddim"),
    ({"plugin": "diffusion", "data": "moons", "ema_decay": 1.5}, "ema_decay=1.5: must be in [0, 1)"),
    ({"plugin": "gan", "data": "moons", "loss": "hinge"}, "loss=hinge: valid: nonsaturating, wasserstein"),
    ({"plugin": "gan", "data": "moons", "n_critic": 0}, "n_critic=0: must be >= 1"),
    ({"plugin": "vae", "data": "moons", "latnt": 2}, "unknown key 'latnt' (did you mean 'latent'?)"),
    ({"plugin": "vae", "env": "CartPole"}, "env= does not apply to generator plugin 'vae'"),
])
def test_combinations_that_cannot_work_are_refused(registry, keys, message):
    with pytest.raises(ConfigError) as error:
        resolve(registry, keys)
    assert message in str(error.value)


def test_refused_before_a_run_exists(lab, store, runs):
    result = lab("run", "plugin=diffusion", "data=digits", "channels=[32]", "progress=false")
    assert result.code == 2 and result.err.count("\n") == 1 and "at least two resolutions" in result.err
    assert runs() == []


@pytest.mark.slow
def test_lab_sample_refuses_bad_input_without_writing(lab, runs, tracked, tmp_path):
    assert lab("run", "plugin=gan", "data=moons", *TINY).code == 0
    (run,) = runs()
    run_id = run.info.run_id
    cases = [
        (["out=samples.jpg"], "out=samples.jpg: unknown file type; valid: .npy, .png, .txt"),
        ([f"out={tmp_path / 'missing' / 'x.png'}"], "does not exist"),
        ([f"out={tmp_path / 'x.txt'}"], "a generator writes .png (a picture) or .npy (the samples)"),
        (["prompt=def"], "prompt= applies to language models"),
        (["steps=5"], "steps= does not apply to lab sample"),
        (["n=0"], "n=0: must be >= 1"),
        (["seed=-1"], "seed=-1: must be >= 0"),
        (["inference_steps=4"], "unknown key 'inference_steps'"),  # a diffusion key, not the GAN's
    ]
    for extra, message in cases:
        result = lab("sample", f"run={run_id}", *extra)
        assert result.code == 2 and message in result.err, (extra, result.err)
    assert lab("sample", "run=0123456789abcdef", "n=4").code == 2
    # tmp_path is also the working directory (and holds the store): no sample file may appear in it
    assert [p for p in tmp_path.iterdir() if p.is_file()] == [] and not (tmp_path / "missing").exists()
