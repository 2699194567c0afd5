"""Generative adversarial network (Goodfellow et al., 2014): DCGAN-style conv networks for images (Radford et
al., 2016), MLPs for points.

``loss=nonsaturating`` trains the discriminator with binary cross-entropy and the generator to maximise
log D(G(z)); ``gradient_penalty`` adds R1 (Mescheder et al., 2018) on real data. ``loss=wasserstein`` trains a
critic instead, with WGAN-GP's penalty on interpolates (Gulrajani et al., 2017). ``n_critic``, one-sided
``label_smoothing`` (Salimans et al., 2016) and ``spectral_norm`` (Miyato et al., 2018) are the usual knobs.
Mode collapse shows in the metrics: recall and class coverage drop.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lab.api import BuildContext
from lab_generators.common import GenerativeModel, conv_decoder, conv_encoder, mlp


def build(context: BuildContext) -> GAN:
    return GAN(context)


def leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


class GAN(GenerativeModel):
    def build(self) -> None:
        config = self.config
        if self.is_image:
            generator = nn.Sequential(conv_decoder(config.latent, self.shape, config.channels, batchnorm=True,
                                                   activation=nn.ReLU), nn.Tanh())
            discriminator = conv_encoder(self.shape, config.channels, 1, spectral=config.spectral_norm,
                                         activation=leaky)
        else:
            size = int(np.prod(self.shape))
            generator = mlp([config.latent, *config.hidden, size], activation=nn.ReLU)
            discriminator = mlp([size, *config.hidden, 1], activation=leaky)
            if config.spectral_norm:
                for i, layer in enumerate(discriminator):
                    if isinstance(layer, nn.Linear):
                        discriminator[i] = nn.utils.parametrizations.spectral_norm(layer)
        self.nets = nn.ModuleDict({"generator": generator, "discriminator": discriminator}).to(self.device)
        betas = (0.5, 0.9) if config.loss == "wasserstein" else (0.5, 0.999)  # the papers' settings
        self.optimizer_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=betas,
                                            weight_decay=config.weight_decay)
        self.optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=betas)

    def fake(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.latent, generator=generator, device=self.device)
        return self.nets["generator"](z).view(n, *self.shape)

    def update(self, batch: torch.Tensor) -> dict[str, float]:
        losses: dict[str, float] = {}
        for step in range(self.config.n_critic):
            real = batch if step == 0 else self._random_batch(len(batch))
            losses.update(self._discriminator_step(real))
        losses.update(self._generator_step(len(batch)))
        return losses

    def _random_batch(self, size: int) -> torch.Tensor:
        index = torch.randint(0, len(self.train_x), (size,), generator=self.generator).to(self.device)
        return self.train_x[index]

    def _discriminator_step(self, real: torch.Tensor) -> dict[str, float]:
        config, discriminator = self.config, self.nets["discriminator"]
        with torch.no_grad():
            fake = self.fake(len(real))
        penalty = torch.zeros((), device=self.device)
        if config.loss == "wasserstein":
            real_score, fake_score = discriminator(real), discriminator(fake)
            loss = fake_score.mean() - real_score.mean()
            if config.gradient_penalty:
                mix = torch.rand(len(real), *[1] * (real.dim() - 1), device=self.device)
                between = (mix * real + (1 - mix) * fake).requires_grad_(True)
                norms = self._gradient_norms(discriminator(between), between)
                penalty = config.gradient_penalty * ((norms - 1) ** 2).mean()
        else:
            real = real.requires_grad_(config.gradient_penalty > 0)
            real_score, fake_score = discriminator(real), discriminator(fake)
            bce = nn.functional.binary_cross_entropy_with_logits
            loss = (bce(real_score, torch.full_like(real_score, 1.0 - config.label_smoothing))
                    + bce(fake_score, torch.zeros_like(fake_score)))
            if config.gradient_penalty:
                penalty = config.gradient_penalty / 2 * (self._gradient_norms(real_score, real) ** 2).mean()
        self.optimizer_d.zero_grad()
        (loss + penalty).backward()
        self.optimizer_d.step()
        result = {"loss_d": float(loss.detach()), "penalty": float(penalty.detach())}
        if config.loss == "nonsaturating":  # how sure the discriminator is: 0.5 each is an even game
            result["d_real"] = float(torch.sigmoid(real_score.detach()).mean())
            result["d_fake"] = float(torch.sigmoid(fake_score.detach()).mean())
        return result

    @staticmethod
    def _gradient_norms(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        (gradients,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
        return gradients.flatten(1).norm(dim=1)

    def _generator_step(self, size: int) -> dict[str, float]:
        score = self.nets["discriminator"](self.fake(size))
        if self.config.loss == "wasserstein":
            loss = -score.mean()
        else:  # non-saturating: strong gradients while the discriminator still wins easily
            loss = nn.functional.binary_cross_entropy_with_logits(score, torch.ones_like(score))
        self.optimizer_g.zero_grad()
        loss.backward()
        self.optimizer_g.step()
        return {"loss_g": float(loss.detach())}

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.fake(n, generator)
