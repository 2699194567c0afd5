"""Denoising diffusion (Ho et al., 2020) on diffusers: ``UNet2DModel`` for images, a small MLP denoiser for
points, diffusers' DDPM scheduler for training and its DDPM or DDIM scheduler (Song et al., 2021) for
sampling, and diffusers' ``EMAModel`` for the weights samples are drawn with.

A saved image model is a diffusers pipeline directory: ``DDPMPipeline.from_pretrained(path)`` loads it (with the
EMA weights). A saved points model holds ``denoiser/`` (``PointDenoiser.from_pretrained``) and ``scheduler/``.
Both also keep the raw training weights in ``training.safetensors``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_timestep_embedding
from diffusers.models.modeling_utils import ModelMixin
from diffusers.training_utils import EMAModel
from torch import nn

from lab.api import BuildContext, load_weights, save_weights
from lab_generators.common import META_FILE, GenerativeModel, mlp

TRAINING_WEIGHTS = "training.safetensors"
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"  # in unet/ or denoiser/, as diffusers names it
WARMUP_UPDATES = 100
SAMPLERS = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}


def build(context: BuildContext) -> Diffusion:
    return Diffusion(context)


class PointDenoiser(ModelMixin, ConfigMixin):
    """Predicts the noise in a noisy point from the point and a sinusoidal embedding of its timestep."""

    @register_to_config
    def __init__(self, dims: int = 2, hidden: tuple[int, ...] = (256, 256, 256), time_embedding: int = 64) -> None:
        super().__init__()
        self.net = mlp([dims + time_embedding, *hidden, dims])

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        timesteps = timestep.expand(len(sample)) if timestep.dim() == 0 else timestep
        embedding = get_timestep_embedding(timesteps, self.config.time_embedding, flip_sin_to_cos=True)
        return self.net(torch.cat([sample, embedding.to(sample.dtype)], dim=1))


class Diffusion(GenerativeModel):
    def build(self) -> None:
        config = self.config
        if self.is_image:
            levels = len(config.channels)
            self.denoiser = UNet2DModel(
                sample_size=self.shape[1], in_channels=self.shape[0], out_channels=self.shape[0],
                block_out_channels=tuple(config.channels), layers_per_block=config.layers_per_block,
                down_block_types=("DownBlock2D",) * levels, up_block_types=("UpBlock2D",) * levels,
                norm_num_groups=min(8, *config.channels))
        else:
            self.denoiser = PointDenoiser(dims=int(np.prod(self.shape)), hidden=tuple(config.hidden))
        self.denoiser.to(self.device)
        self.nets = nn.ModuleDict({"denoiser": self.denoiser})
        # The predicted clean sample is clipped to the data's range: at the last noise levels of the cosine
        # schedule alpha_bar is about 0, and dividing by its root blew DDIM samples up (inference_steps=1000).
        limit = 1.0 if self.is_image else float(np.abs(self.train_x.cpu().numpy()).max()) + 1.0
        self.noise = DDPMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule=config.beta_schedule,
                                   prediction_type="epsilon", clip_sample=True, clip_sample_range=limit)
        self.optimizer = torch.optim.AdamW(self.denoiser.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.ema = EMAModel(self.denoiser.parameters(), decay=config.ema_decay) if config.ema_decay else None
        self.updates = 0

    def predict(self, sample: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        output = self.denoiser(sample, timesteps)
        return output.sample if self.is_image else output

    def update(self, batch: torch.Tensor) -> dict[str, float]:
        for group in self.optimizer.param_groups:  # linear warm-up, then cosine decay over the budget
            warmup = min(1.0, (self.updates + 1) / WARMUP_UPDATES)
            group["lr"] = self.config.lr * warmup * 0.5 * (1 + math.cos(math.pi * self.progress()))
        noise = torch.randn(batch.shape, generator=self.generator).to(self.device)
        timesteps = torch.randint(0, self.config.train_timesteps, (len(batch),), generator=self.generator)
        timesteps = timesteps.to(self.device)
        loss = nn.functional.mse_loss(self.predict(self.noise.add_noise(batch, noise, timesteps), timesteps), noise)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.denoiser.parameters(), 1.0)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.step(self.denoiser.parameters())
        self.updates += 1
        return {"loss": float(loss.detach())}

    @contextlib.contextmanager
    def sampling_weights(self) -> Iterator[None]:
        """The EMA weights in the denoiser for the duration (the raw ones are put back after)."""
        if self.ema is None:
            yield
            return
        self.ema.store(self.denoiser.parameters())
        self.ema.copy_to(self.denoiser.parameters())
        try:
            yield
        finally:
            self.ema.restore(self.denoiser.parameters())

    def sampler(self) -> DDPMScheduler | DDIMScheduler:
        scheduler = SAMPLERS[self.config.sampler].from_config(self.noise.config)
        scheduler.set_timesteps(self.config.inference_steps, device=self.device)
        return scheduler

    def extra_state(self) -> dict[str, Any]:
        return {"updates": self.updates, "ema_step": self.ema.optimization_step if self.ema is not None else 0}

    def restore_extra_state(self, values: dict[str, Any]) -> None:
        self.updates = int(values["updates"])
        if self.ema is not None:  # load() made the shadow the saved EMA weights; its decay depends on the step
            self.ema.optimization_step = int(values["ema_step"])

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        scheduler = self.sampler()
        sample = torch.randn(n, *self.train_x.shape[1:], generator=generator, device=self.device)
        with self.sampling_weights():
            for timestep in scheduler.timesteps:
                output = self.predict(sample, timestep.expand(n))
                sample = scheduler.step(output, timestep, sample, generator=generator).prev_sample
        return sample

    # ------------------------------------------------------------------------------------ files

    def save(self, directory: Path) -> None:
        """A diffusers directory with the EMA weights, plus the raw training weights."""
        directory.mkdir(parents=True, exist_ok=True)
        with self.sampling_weights():
            if self.is_image:
                DDPMPipeline(unet=self.denoiser, scheduler=self.noise).save_pretrained(directory)
            else:
                self.denoiser.save_pretrained(directory / "denoiser")
                self.noise.save_pretrained(directory / "scheduler")
        save_weights(directory, self.denoiser, weights_file=TRAINING_WEIGHTS, settings=self.meta(updates=self.updates),
                     settings_file=META_FILE)

    def load(self, directory: Path) -> None:
        sampling = directory / ("unet" if self.is_image else "denoiser")
        load_weights(sampling, self.denoiser, weights_file=DIFFUSERS_WEIGHTS, device=self.device)
        if self.ema is not None:
            self.ema = EMAModel(self.denoiser.parameters(), decay=self.config.ema_decay)  # shadow = saved EMA
        if (directory / TRAINING_WEIGHTS).is_file():
            load_weights(directory, self.denoiser, weights_file=TRAINING_WEIGHTS, device=self.device)
