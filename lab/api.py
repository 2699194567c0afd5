"""The public plugin API: everything a plugin package (built-in or third-party) needs from lab.

A plugin package implements the hooks of ``lab.core.hookspecs`` with ``@hookimpl`` and registers
:class:`Plugin` and :class:`EnvSpec` objects. A plugin's ``factory`` builds an object that follows the
:class:`Model` protocol; the shared runner drives it. Nothing here imports torch, SB3 or mlflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.core.cache import cache_dir, write_cached
from lab.core.errors import ConfigError
from lab.core.options import RunnerConfig, option, positive_sizes, unit_fraction
from lab.core.smoke import cap as smoke_cap
from lab.training.distributed import average_gradients, rank, shard, sync_parameters, world_size
from lab.training.env_state import decode as decode_state
from lab.training.env_state import encode as encode_state
from lab.training.env_state import restore_env, snapshot_env
from lab.training.pictures import image_grid, save_png, scatter_plot
from lab.training.state import load_training_state, save_training_state
from lab.training.video import Recorder
from lab.training.weights import load_settings, load_weights, save_weights

if TYPE_CHECKING:  # imported when first used (they need numpy, scipy and torch): see __getattr__ below
    from lab.training.sample_quality import (
        SampleJudge,
        frechet_distance,
        gaussian_nll,
        independent_bernoulli_nll,
        judge_samples,
        mmd2,
        precision_recall,
    )

__all__ = [
    "API_VERSION",
    "KINDS",
    "BuildContext",
    "ConfigError",
    "Dataset",
    "DatasetSpec",
    "EnvSpec",
    "Model",
    "Plugin",
    "Preset",
    "Recorder",
    "RunInfo",
    "RunnerConfig",
    "SampleJudge",
    "StepCallback",
    "average_gradients",
    "cache_dir",
    "decode_state",
    "encode_state",
    "frechet_distance",
    "gaussian_nll",
    "hookimpl",
    "image_grid",
    "independent_bernoulli_nll",
    "judge_samples",
    "load_settings",
    "load_training_state",
    "load_weights",
    "mmd2",
    "option",
    "precision_recall",
    "rank",
    "restore_env",
    "positive_sizes",
    "save_png",
    "save_training_state",
    "save_weights",
    "scatter_plot",
    "shard",
    "smoke_cap",
    "snapshot_env",
    "sync_parameters",
    "unit_fraction",
    "world_size",
    "write_cached",
]

from lab.core.specs import (
    API_VERSION,
    KINDS,
    BuildContext,
    Dataset,
    DatasetSpec,
    EnvSpec,
    Model,
    Plugin,
    Preset,
    RunInfo,
    StepCallback,
    hookimpl,
)

_SAMPLE_QUALITY = ("SampleJudge", "judge_samples", "mmd2", "frechet_distance", "precision_recall", "gaussian_nll",
                   "independent_bernoulli_nll")


def __getattr__(name: str) -> Any:
    """The sample-quality metrics (``lab.training.sample_quality``), imported on first use so that registering a plugin
    never imports torch or scipy."""
    if name in _SAMPLE_QUALITY:
        from lab.training import sample_quality

        return getattr(sample_quality, name)
    raise AttributeError(f"module 'lab.api' has no attribute {name!r}")


