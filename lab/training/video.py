"""Recording played episodes: frames kept at a stride, written as a looping GIF or an MP4.

The same :class:`Recorder` makes every agent run's GIF artifact and the files of ``lab play``. numpy, PIL and
imageio are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VIDEO_SUFFIXES = (".gif", ".mp4")
MAX_WIDTH = 320  # GIFs are subsampled to at most this width: small files that still show the game
GIF_COLORS = 64


@dataclass
class Episode:
    """What one played episode scored."""

    total_reward: float
    length: int


@dataclass
class Recorder:
    """Collects frames while an agent plays; renders only the frames it keeps.

    Call :meth:`frame` after every reset and every step (``last=True`` after an episode's final step, which is
    always kept) and :meth:`end_episode` after each episode. The stride starts small (so short episodes stay
    smooth) and doubles whenever an episode would keep more than ``max_frames`` frames, so files stay small
    whatever the episode length."""

    fps: float | None = None
    """Frame rate of the env (its ``render_fps``), so the recording plays at real speed; see :meth:`configure`."""
    expected_length: int | None = None
    """Steps the longest episode can take (the env's time limit): the first stride is chosen so that such an
    episode is thinned at most twice (it renders at most twice the frames it keeps)."""
    max_frames: int = 200
    """Most frames kept per episode."""
    record: bool = True
    """False: count returns and lengths only, render nothing."""
    episodes: list[Episode] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)
    durations_ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Rendering without a display: pygame (classic control, Box2D) must not look for a screen or sound card.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        self._step = 0
        self._episode_start = 0
        self.configure(self.fps, self.expected_length)

    def configure(self, fps: float | None, expected_length: int | None) -> None:
        """Set the frame rate and expected episode length where they were not given (the player knows its env)."""
        self.fps = self.fps or fps or 30.0
        self.expected_length = self.expected_length or expected_length
        self.stride = max(1, -(-(self.expected_length or 0) // (4 * self.max_frames)))

    def frame(self, render: Callable[[], Any], *, last: bool = False) -> None:
        """Note one step of the episode; keeps ``render()``'s frame every ``stride`` steps and at the end."""
        if self.record and (self._step % self.stride == 0 or last):
            self.frames.append(render())
            self.durations_ms.append(1000.0 * self.stride / float(self.fps))
            if len(self.frames) - self._episode_start > self.max_frames:
                self._thin_episode()
        self._step += 1

    def _thin_episode(self) -> None:
        start = self._episode_start
        kept = self.frames[start:][::2]
        self.frames[start:] = kept
        self.stride *= 2
        self.durations_ms[start:] = [1000.0 * self.stride / float(self.fps)] * len(kept)

    def end_episode(self, total_reward: float, length: int) -> None:
        self.episodes.append(Episode(float(total_reward), int(length)))
        self._step = 0
        self._episode_start = len(self.frames)

    def save(self, path: Path) -> Path:
        """Write the frames to ``path``: ``.gif`` (looping) or ``.mp4`` (H.264)."""
        if not self.frames:
            raise ValueError("nothing was recorded")
        suffix = Path(path).suffix.lower()
        if suffix == ".gif":
            write_gif(self.frames, self.durations_ms, Path(path))
        elif suffix == ".mp4":
            write_mp4(self.frames, 1000.0 / statistics.median(self.durations_ms), Path(path))
        else:
            raise ValueError(f"cannot write {path}: valid suffixes are {', '.join(VIDEO_SUFFIXES)}")
        return Path(path)


def write_gif(frames: list[Any], durations_ms: list[float], path: Path) -> None:
    """Frames to a looping GIF: subsampled to MAX_WIDTH, one shared palette (fast, small, no flicker)."""
    import numpy as np
    from PIL import Image

    factor = -(-frames[0].shape[1] // MAX_WIDTH)
    images = [Image.fromarray(np.ascontiguousarray(frame[::factor, ::factor])) for frame in frames]
    # The palette comes from first, middle and last frames together, so late colours are not lost.
    sample = [images[0], images[len(images) // 2], images[-1]]
    strip = Image.new("RGB", (sample[0].width, sample[0].height * len(sample)))
    for i, image in enumerate(sample):
        strip.paste(image, (0, i * image.height))
    palette = strip.quantize(colors=GIF_COLORS, method=Image.Quantize.FASTOCTREE)
    indexed = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    indexed[0].save(path, format="GIF", save_all=True, append_images=indexed[1:],
                    duration=[max(20, int(d)) for d in durations_ms], loop=0)


def write_mp4(frames: list[Any], fps: float, path: Path) -> None:
    """Frames to an H.264 MP4 that browsers play (yuv420p needs even sizes: odd ones get one padded row/column)."""
    import imageio.v2 as imageio
    import numpy as np

    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    with imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                            macro_block_size=1, quality=7) as writer:
        for frame in frames:
            writer.append_data(np.pad(frame, pad, mode="edge") if any(p[1] for p in pad) else frame)
