"""Built-in generators: VAE, GAN and diffusion, on images (digits, shapes) and 2-D points (moons, swiss_roll).

Registration declares names, configs, presets and compatibility rules only; torch and diffusers are imported
by the model modules when a run starts. Every generator is judged by ``lab.api.SampleJudge``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from lab.api import DatasetSpec, Plugin, Preset, hookimpl
from lab_generators import configs

GENERATORS: dict[str, tuple[type, str, str]] = {
    "vae": (configs.VAEConfig, "lab_generators.vae:build",
            "Variational autoencoder: ELBO and importance-weighted NLL in nats, samples and reconstructions"),
    "gan": (configs.GANConfig, "lab_generators.gan:build",
            "GAN: DCGAN for images, MLPs for points; non-saturating or Wasserstein loss, R1/GP, spectral norm"),
    "diffusion": (configs.DiffusionConfig, "lab_generators.diffusion:build",
                  "Denoising diffusion on diffusers: UNet2DModel or an MLP denoiser, DDPM/DDIM sampling, EMA"),
}

# Budgets in examples seen, one evaluation every `eval_every`; tuned on the validation split (bench/generators.py
# reports the test split). Each finishes within 10 minutes on 2 CPU cores.
PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("vae", "digits"): {"steps": 400 * 1257, "eval_every": 20 * 1257},
    ("gan", "digits"): {"steps": 300 * 1257, "eval_every": 20 * 1257},
    ("diffusion", "digits"): {"steps": 300 * 1257, "eval_every": 30 * 1257},
    ("vae", "shapes"): {"steps": 100 * 1400, "eval_every": 10 * 1400},
    ("gan", "shapes"): {"steps": 100 * 1400, "eval_every": 10 * 1400, "channels": [32, 64, 128]},
    ("diffusion", "shapes"): {"steps": 100 * 1400, "eval_every": 10 * 1400},
}
POINT_DATA = {"moons": 2800, "circles": 700, "swiss_roll": 2800}  # training-split sizes
POINT_PRESETS: dict[str, dict[str, Any]] = {
    # Without a KL warm-up the decoder's variance explains the data before the latent code does (posterior
    # collapse): samples are a blur. Warming up over half the budget cut moons' MMD^2 about fivefold.
    "vae": {"latent": 2, "kl_warmup": 0.5, "epochs": 1000},
    "gan": {"epochs": 1000},
    # Ancestral (DDPM) sampling forgives the small denoiser's errors better than the DDIM ODE on 2-D points.
    "diffusion": {"sampler": "ddpm", "inference_steps": 100, "epochs": 2000},
}


def preset_for(plugin: str, dataset: str) -> Preset | None:
    if (plugin, dataset) in PRESETS:
        values = PRESETS[(plugin, dataset)]
        return Preset(f"lab:{plugin}/{dataset}", values, f"{values['steps']:,} examples, tuned for 2 CPU cores")
    if dataset in POINT_DATA:
        keys = dict(POINT_PRESETS[plugin])
        epochs = keys.pop("epochs")
        values = {"steps": epochs * POINT_DATA[dataset], "eval_every": epochs // 10 * POINT_DATA[dataset], **keys}
        return Preset(f"lab:{plugin}/points", values, f"{epochs} epochs of 2-D points")
    return None


def check_config(plugin: str, config: Any, spec: Any) -> str | None:
    """Combinations that cannot work, refused before a run starts."""
    if not isinstance(spec, DatasetSpec):
        return None
    shape = tuple(spec.shape)
    if spec.task == "text" or len(shape) not in (1, 3):
        return (f"generators learn images (channels, height, width) or points (dims,); {spec.name} has "
                f"{'text' if spec.task == 'text' else f'shape {shape}'} (try digits, shapes, moons or swiss_roll)")
    is_image = len(shape) == 3
    if is_image and (plugin != "vae" or config.network != "mlp"):
        levels = len(config.channels) - (0 if plugin == "diffusion" else 1)
        if shape[1] != shape[2] or shape[1] % 2**levels:
            return (f"channels={config.channels} halves the image {levels} times; {spec.name} is "
                    f"{shape[1]}x{shape[2]} (give fewer channels entries)")
        if plugin == "diffusion" and any(c % min(8, *config.channels) for c in config.channels):
            return f"channels={config.channels}: each must be a multiple of the smallest (group normalisation)"
        if plugin == "diffusion" and levels < 2:
            return "channels: a UNet needs at least two resolutions, e.g. channels=[32,64]"
    if plugin == "vae":
        if config.likelihood == "bernoulli" and not is_image:
            return f"likelihood=bernoulli needs binary data; {spec.name} is continuous points (use gaussian)"
        if config.network == "conv" and not is_image:
            return f"network=conv needs images; {spec.name} is points (use mlp)"
    if plugin == "diffusion" and config.inference_steps > config.train_timesteps:
        return (f"inference_steps={config.inference_steps} cannot exceed train_timesteps={config.train_timesteps}")
    if plugin == "gan" and config.loss == "wasserstein" and config.label_smoothing:
        return "label_smoothing applies to the non-saturating loss, not to a Wasserstein critic"
    return None


@hookimpl
def register_plugins(register: Callable[[Plugin], None]) -> None:
    for name, (config, factory, description) in GENERATORS.items():
        register(Plugin(
            name=name,
            kind="generator",
            config=config,
            factory=factory,
            description=description,
            presets=partial(preset_for, name),
            check_config=partial(check_config, name),
            score="score",
            data_parallel=True,
        ))
