"""Config dataclasses of the generators: one documented field each (``lab show plugin=vae data=digits``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lab.api import option, positive_sizes, unit_fraction


@dataclass
class GeneratorConfig:
    """Keys every generator has: optimisation and how samples are judged."""

    lr: float = option(1e-3, "Learning rate (Adam).", min=0.0)
    batch_size: int = option(128, "Examples per update.", min=1)
    weight_decay: float = option(0.0, "L2 weight decay.", min=0.0)
    hidden: list[int] = option([256, 256], "Hidden layer sizes of the MLP networks (2-D points).", check=positive_sizes)
    channels: list[int] = option([32, 64], "Channels of the conv networks, one entry per resolution (images).",
                                 check=positive_sizes)
    eval_samples: int = option(1000, "Samples drawn at each evaluation to compute the sample-quality metrics.",
                               min=10)


@dataclass
class VAEConfig(GeneratorConfig):
    """A variational autoencoder: encoder q(z|x), decoder p(x|z), standard normal prior."""

    lr: float = option(1e-3, "Learning rate (Adam).", min=0.0)
    latent: int = option(16, "Size of the latent code z.", min=1)
    likelihood: Literal["auto", "bernoulli", "gaussian"] = option(
        "auto", "p(x|z): auto (bernoulli on binarized images, gaussian on points), bernoulli or gaussian.")
    network: Literal["auto", "conv", "mlp"] = option("auto", "auto (conv for images, mlp for points), conv or mlp.")
    kl_weight: float = option(1.0, "Weight of the KL term in the loss (beta; 1 gives the ELBO).", min=0.0)
    kl_warmup: float = option(0.0, "Fraction of the budget over which the KL weight ramps up from 0.",
                              check=unit_fraction)
    dropout: float = option(0.0, "Dropout in the encoder and decoder (a small dataset overfits).", check=unit_fraction)
    iw_samples: int = option(1000, "Importance samples per test example for the NLL bound.", min=1)


@dataclass
class GANConfig(GeneratorConfig):
    """A GAN: DCGAN-style conv networks for images, MLPs for points."""

    lr: float = option(2e-4, "Learning rate of both networks (Adam, betas 0.5 and 0.999).", min=0.0)
    latent: int = option(32, "Size of the generator's noise input.", min=1)
    loss: Literal["nonsaturating", "wasserstein"] = option(
        "nonsaturating", "nonsaturating (the generator maximises log D(G(z))) or wasserstein (a critic).")
    n_critic: int = option(1, "Discriminator updates per generator update.", min=1)
    label_smoothing: float = option(0.0, "One-sided label smoothing: real targets are 1 - this.", check=unit_fraction)
    spectral_norm: bool = option(False, "Spectral normalisation of the discriminator's layers.")
    gradient_penalty: float = option(0.0, "Weight of the gradient penalty: R1 on real data (nonsaturating) or on "
                                          "interpolates (wasserstein, WGAN-GP).", min=0.0)


@dataclass
class DiffusionConfig(GeneratorConfig):
    """A denoising diffusion model: diffusers' UNet2DModel for images, an MLP denoiser for points."""

    lr: float = option(1e-3, "Learning rate (AdamW), with linear warm-up and cosine decay.", min=0.0)
    train_timesteps: int = option(1000, "Noise levels of the DDPM training schedule.", min=2)
    beta_schedule: Literal["linear", "squaredcos_cap_v2"] = option(
        "squaredcos_cap_v2", "The noise schedule: linear, or squaredcos_cap_v2 (cosine).")
    sampler: Literal["ddpm", "ddim"] = option("ddim", "The diffusers scheduler that draws samples: ddpm or ddim.")
    inference_steps: int = option(50, "Denoising steps when sampling (at most train_timesteps).", min=1)
    ema_decay: float = option(0.999, "Decay of the EMA weights used for sampling (0 samples the raw weights).",
                              check=unit_fraction)
    layers_per_block: int = option(1, "ResNet layers per UNet block (images).", min=1)
