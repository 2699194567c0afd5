"""Variational autoencoder (Kingma and Welling, 2014): conv networks for images, MLPs for points.

The loss is the negative ELBO, reconstruction NLL + kl_weight * KL(q(z|x) || N(0, I)), in nats per example.
Images are binarized (pixels >= 0.5) for the Bernoulli likelihood, the classic setting of VAE likelihood
results; the test split gets an importance-weighted bound on the NLL (Burda et al., 2016) with ``iw_samples``
samples, next to an independent-pixel model's NLL on the same data. Image samples are the decoder's means
(pixel probabilities), as VAE papers show them; points are drawn from p(x|z) itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from lab.api import BuildContext, gaussian_nll, image_grid, independent_bernoulli_nll, smoke_cap
from lab_generators.common import GenerativeModel, conv_decoder, conv_encoder, mlp

LOG_2PI = math.log(2 * math.pi)


def build(context: BuildContext) -> VAE:
    return VAE(context)


def resolve_likelihood(likelihood: str, is_image: bool) -> str:
    if likelihood != "auto":
        return likelihood
    return "bernoulli" if is_image else "gaussian"


class VAE(GenerativeModel):
    def __init__(self, context: BuildContext) -> None:
        self.likelihood = resolve_likelihood(context.config.likelihood, len(context.dataset.shape) == 3)
        super().__init__(context)

    def observe(self, x: np.ndarray) -> np.ndarray:
        if self.is_image and self.likelihood == "bernoulli":
            return (x >= 0.5).astype(np.float32)
        return x

    def to_model(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32) if self.is_image else super().to_model(x)  # pixels stay in [0, 1]

    def to_data(self, x: torch.Tensor) -> np.ndarray:
        return np.clip(x.cpu().numpy(), 0.0, 1.0) if self.is_image else super().to_data(x)

    def build(self) -> None:
        config, latent = self.config, self.config.latent
        outputs = 1 if self.likelihood == "bernoulli" else 2  # mean (logits), or mean and log-variance
        convolutional = config.network == "conv" or (config.network == "auto" and self.is_image)
        if convolutional:
            shape = (self.shape[0] * outputs, *self.shape[1:])
            encoder = conv_encoder(self.shape, config.channels, 2 * latent)
            decoder = conv_decoder(latent, shape, config.channels)
        else:
            size = int(np.prod(self.shape))
            encoder = nn.Sequential(nn.Flatten(), mlp([size, *config.hidden, 2 * latent], dropout=config.dropout))
            decoder = mlp([latent, *config.hidden[::-1], size * outputs], dropout=config.dropout)
        self.nets = nn.ModuleDict({"encoder": encoder, "decoder": decoder}).to(self.device)
        self.optimizer = torch.optim.Adam(self.nets.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    # ------------------------------------------------------------------------------------ the model

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.nets["encoder"](x).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Bernoulli logits, or Gaussian mean and log-variance, flattened to (batch, dims)."""
        output = self.nets["decoder"](z).flatten(1)
        if self.likelihood == "bernoulli":
            return output, None
        mean, log_var = output.chunk(2, dim=1)
        return mean, log_var.clamp(-10, 5)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example, summed over dimensions."""
        first, log_var = self.decode(z)
        x = x.flatten(1)
        if log_var is None:
            return -nn.functional.binary_cross_entropy_with_logits(first, x, reduction="none").sum(1)
        return -0.5 * (LOG_2PI + log_var + (x - first) ** 2 / log_var.exp()).sum(1)

    def neg_elbo(self, x: torch.Tensor, kl_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weighted loss, reconstruction NLL, KL), each per example; one reparameterised sample of z."""
        mean, log_var = self.encode(x)
        z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
        reconstruction = -self.log_likelihood(x, z)
        kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(1)
        return reconstruction + kl_weight * kl, reconstruction, kl

    def update(self, batch: torch.Tensor) -> dict[str, float]:
        warmup = self.config.kl_warmup
        weight = self.config.kl_weight * (min(self.progress() / warmup, 1.0) if warmup else 1.0)
        loss, reconstruction, kl = self.neg_elbo(batch, weight)
        self.optimizer.zero_grad()
        loss.mean().backward()
        self.optimizer.step()
        reconstruction, kl = reconstruction.detach(), kl.detach()
        return {"neg_elbo": float((reconstruction + kl).mean()), "reconstruction": float(reconstruction.mean()),
                "kl": float(kl.mean())}

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.config.latent, generator=generator, device=self.device)
        first, log_var = self.decode(z)
        if log_var is None:
            return torch.sigmoid(first)
        if self.is_image:
            return first
        return first + (0.5 * log_var).exp() * torch.randn(first.shape, generator=generator, device=self.device)

    # ------------------------------------------------------------------------------------ likelihood metrics

    def _split(self, split: str) -> torch.Tensor:
        x = self.observe(np.asarray(getattr(self.data, f"x_{split}"), dtype=np.float32))
        return torch.as_tensor(self.to_model(x), device=self.device)

    @torch.no_grad()
    def extra_metrics(self, split: str) -> dict[str, float]:
        """-ELBO and KL in nats per example (fixed noise); on test also the IW bound and the baseline's NLL."""
        x = self._split(split)
        # Points are modelled standardised: in data units, log-densities move by the log-Jacobian.
        shift = 0.0 if self.is_image else float(np.log(self.std).sum())
        self.nets.eval()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(0)
            _, reconstruction, kl = self.neg_elbo(x)
            metrics = {"neg_elbo": float((reconstruction + kl).mean()) + shift, "kl": float(kl.mean())}
            if split == "test":
                samples = smoke_cap(self.config.iw_samples, 10)  # LAB_SMOKE=1: a check that it runs, in seconds
                metrics["iw_nll"] = float(self.importance_weighted_nll(x, samples).mean()) + shift
                metrics["baseline_nll"] = self.baseline_nll(split)
        self.nets.train()
        return metrics

    def score(self, metrics: dict[str, float]) -> float:
        return -metrics["neg_elbo"]  # the higher the ELBO on the validation split, the better

    def importance_weighted_nll(self, x: torch.Tensor, samples: int, chunk: int = 100) -> torch.Tensor:
        """-log (1/K sum_k p(x, z_k) / q(z_k|x)), z_k ~ q(z|x): an upper bound on -log p(x), tight as K grows."""
        mean, log_var = self.encode(x)
        std = (0.5 * log_var).exp()
        weights = []
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            eps = torch.randn(k, *mean.shape, device=self.device)
            z = mean + std * eps  # (k, batch, latent)
            log_q = -0.5 * (LOG_2PI + log_var + eps**2).sum(-1)
            log_prior = -0.5 * (LOG_2PI + z**2).sum(-1)
            repeated = x.unsqueeze(0).expand(k, *x.shape).reshape(k * len(x), *x.shape[1:])
            log_px = self.log_likelihood(repeated, z.reshape(k * len(x), -1)).view(k, len(x))
            weights.append(log_px + log_prior - log_q)
        return -(torch.logsumexp(torch.cat(weights), dim=0) - math.log(samples))

    def baseline_nll(self, split: str) -> float:
        """The same data's NLL under a model without structure: independent pixels, or one Gaussian."""
        train = self.observe(np.asarray(self.data.x_train, dtype=np.float32))
        test = self.observe(np.asarray(getattr(self.data, f"x_{split}"), dtype=np.float32))
        if self.likelihood == "bernoulli":
            return independent_bernoulli_nll(train, test)
        return gaussian_nll(train, test)

    # ------------------------------------------------------------------------------------ pictures

    def images(self) -> dict[str, Any]:
        pictures = super().images()
        if self.is_image:
            pictures["reconstructions"] = image_grid(self.reconstructions(), columns=8)
        return pictures

    @torch.no_grad()
    def reconstructions(self, count: int = 32) -> np.ndarray:
        """Test images (odd rows) above the decoder's means for their posterior means (even rows)."""
        x = self._split("test")[:count]
        self.nets.eval()
        mean, _ = self.encode(x)
        first, log_var = self.decode(mean)
        self.nets.train()
        decoded = (torch.sigmoid(first) if log_var is None else first).view_as(x)
        rows = [torch.cat([x[i:i + 8], decoded[i:i + 8]]) for i in range(0, len(x), 8)]
        return np.clip(torch.cat(rows).cpu().numpy(), 0.0, 1.0)
