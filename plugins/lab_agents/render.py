"""Render one episode of a policy to an animated GIF (the same code serves every agent run's artifact)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

MAX_FRAMES = 400  # longer episodes are subsampled to keep the GIF small
MAX_WIDTH = 320


def record_episode(env_id: str, policy: Any, path: Path, *, seed: int,
                   normalize: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[float, int]:
    """Play one deterministic episode, write it to ``path`` as a GIF; return (return, length)."""
    from PIL import Image

    # Headless rendering: pygame (classic control, Box2D) must not look for a display or a sound card.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    env = gymnasium.make(env_id, render_mode="rgb_array")
    frames: list[np.ndarray] = []
    total, length = 0.0, 0
    try:
        obs, _ = env.reset(seed=seed)
        frames.append(env.render())
        done = False
        while not done:
            model_obs = normalize(obs) if normalize else obs
            action, _ = policy.predict(model_obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, length, done = total + float(reward), length + 1, terminated or truncated
            frames.append(env.render())
        fps = env.metadata.get("render_fps", 30)
    finally:
        env.close()
    stride = max(1, len(frames) // MAX_FRAMES)
    images = [_resize(Image.fromarray(frame)) for frame in frames[::stride]]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 * stride / fps), loop=0,
                   optimize=False)
    return total, length


def _resize(image: Any) -> Any:
    if image.width <= MAX_WIDTH:
        return image
    height = round(image.height * MAX_WIDTH / image.width)
    return image.resize((MAX_WIDTH, height))
