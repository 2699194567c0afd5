"""What a plugin declares and what lab hands it: :class:`Plugin`, :class:`EnvSpec`, :class:`DatasetSpec`,
:class:`Preset`, the :class:`Model` protocol it builds, the :class:`BuildContext` it is built from and the
:class:`RunInfo` callbacks get. The public face of these is ``lab.api``; the core imports them from here so that it
never depends on that face."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pluggy

from lab.core.options import RunnerConfig

API_VERSION = 1
"""Bumped when a change to this module would break existing plugins."""

KINDS = ("agent", "backbone", "generator")
"""Plugin kinds. Agents train on an ``env=``; backbones and generators on ``data=``."""

hookimpl = pluggy.HookimplMarker("lab")

@dataclass(frozen=True)
class Preset:
    """Tuned values for one (plugin, target) pair, applied between the config defaults and user keys."""

    name: str
    """Short name shown by ``lab show`` and tagged on the run, e.g. ``zoo:dqn/CartPole-v1``."""
    values: Mapping[str, Any]
    """Runner keys and plugin keys, as a user would write them."""
    source: str = ""
    """Where the values come from (a URL or a sentence)."""


@dataclass(frozen=True)
class Plugin:
    """A model plugin, as registered through the ``register_plugins`` hook."""

    name: str
    """What users type after ``plugin=``: lowercase letters, digits, ``-`` and ``_``."""
    kind: str
    """One of :data:`KINDS`."""
    config: type
    """A dataclass whose fields are the plugin's keys; declare each with :func:`lab.api.option`."""
    factory: str
    """``"package.module:callable"``: called with a :class:`BuildContext`, returns a :class:`Model`.
    Imported only when a run starts, so heavy imports belong in that module."""
    description: str
    """One line for ``lab plugins``."""
    presets: Callable[[str], Preset | None] | None = None
    """Given the resolved env id or dataset name, the tuned preset for it, if any."""
    check_target: Callable[[str], str | None] | None = None
    """Given the resolved env id or dataset name, why this plugin cannot train on it (None if it can)."""
    score: str = "score"
    """The evaluation metric the runner maximises to keep the best model (e.g. ``mean_return``)."""
    features: str | None = None
    """Backbones: ``"package.module:callable"`` taking (input_shape, config) and returning a torch module with an
    ``out_features`` attribute, so agents can use the backbone as their network (``backbone=NAME``)."""
    check_config: Callable[[Any, Any], str | None] | None = None
    """Given the resolved config and the target's spec (EnvSpec, DatasetSpec or None), why this combination
    cannot work (None if it can): refused before a run is created. For a gymnasium env lab has no spec for, the
    spec is an ``EnvSpec`` with its id alone."""
    check_resources: Callable[[Any, Any], str | None] | None = None
    """Like ``check_config``, for what training needs of this machine (e.g. a replay buffer's memory): checked
    before a training run, not when a logged run's model is loaded to evaluate, play or sample."""
    data_parallel: bool = False
    """True when the model trains data-parallel under ``nproc=N`` or torchrun: it builds the same model on every
    rank, calls :func:`sync_parameters` on its modules and :func:`average_gradients` on its optimisers once, and
    trains each global batch's :func:`shard` (same shuffled order on every rank, budget counted globally)."""


@dataclass(frozen=True)
class EnvSpec:
    """An environment users can name with ``env=``, as registered through the ``register_envs`` hook."""

    id: str
    """The gymnasium id, e.g. ``CartPole-v1``."""
    aliases: tuple[str, ...] = ()
    """Short names that resolve to ``id`` (matched case-insensitively), e.g. ``("CartPole",)``."""
    description: str = ""
    """One line for ``lab envs``."""
    family: str = ""
    """What kind of game, for listings and ``lab play`` (e.g. ``classic-control``, ``box2d``, ``atari``, ``lab``)."""
    setup: str | None = None
    """``"package.module:callable"`` that registers ``id`` with gymnasium (e.g. importing ale-py, or a
    ``gymnasium.register`` call). lab calls it once per process before the env is made, so registration
    stays cheap; None when gymnasium already knows ``id``."""


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset users can name with ``data=``, as registered through the ``register_datasets`` hook.

    Everything ``lab data`` lists is declared here, so listing never loads data."""

    name: str
    """What users type after ``data=``."""
    task: str
    """``classification``, ``regression`` or ``text``: which losses and heads make sense."""
    shape: tuple[int, ...]
    """Shape of one input example, e.g. ``(1, 8, 8)`` for an image, ``(8, 8)`` for 8 steps of 8 features."""
    size: int
    """Number of examples over all splits (characters for text; 0 when only loading can tell)."""
    loader: str
    """``"package.module:callable"``: called with no arguments, returns a :class:`Dataset`. Imported only
    when a run needs the data."""
    description: str = ""
    """One line for ``lab data``."""
    classes: int | None = None
    """Number of classes (classification only)."""


@dataclass
class Dataset:
    """Loaded data with fixed train/validation/test splits (the same whatever the run's seed)."""

    name: str
    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any
    split_seed: int
    """The seed that made the splits; logged with every run that uses them."""
    classes: int | None = None
    vocabulary: list[str] | None = None
    """Text datasets: the symbol of each token id (the x arrays hold ids)."""


class StepCallback(Protocol):
    def __call__(self, step: int, boundary: bool = True) -> bool:
        """Report that training reached ``step``; returns False when the model must stop training.

        ``boundary=True`` (the default) says the model is at a step boundary: everything ``checkpoint()`` saves
        is consistent (the last update finished, the next not begun), so the runner may checkpoint here and
        Ctrl-C/SIGTERM take effect here. A model whose steps are not all boundaries (SB3 collects a whole
        rollout before it trains) reports the others with ``boundary=False``: the runner evaluates and updates
        the progress bar there, and leaves checkpoints and interrupts to the next boundary."""


@dataclass
class BuildContext:
    """What a plugin factory receives."""

    config: Any
    """The plugin's config dataclass instance, fully resolved and validated."""
    runner: RunnerConfig
    """The runner keys of this run (seed, steps, eval_episodes, ...)."""
    target: str | None
    """The resolved env id (agents) or dataset name (backbones, generators)."""
    device: str
    """The torch device to use: ``cpu``, ``cuda``, ``cuda:1`` or ``mps`` (never ``auto``)."""
    log_metrics: Callable[[Mapping[str, float], int], None] = field(default=lambda metrics, step: None)
    """Send training metrics at a step; the runner buffers them and logs them to MLflow in batches."""
    training: bool = True
    """False when the model is built only to load weights and evaluate (``lab eval``)."""
    dataset: DatasetSpec | None = None
    """The spec of ``data=`` for backbones and generators."""
    load_dataset: Callable[[], Dataset] | None = None
    """Loads ``data=`` with its fixed splits."""
    build_features: Callable[[str, tuple[int, ...]], Any] | None = None
    """Builds the named backbone plugin's features module (default config) for an input shape; each call
    returns new weights."""


@dataclass(frozen=True)
class RunInfo:
    """The run a lifecycle hook (``on_run_start``, ``on_metrics``, ``on_checkpoint``, ``on_run_end``) is about."""

    run_id: str
    run_name: str
    experiment: str
    plugin: str
    kind: str
    target: str | None
    config: Mapping[str, Any]
    """Every resolved key with its value, as logged in the run's params."""
    artifact_uri: str
    tracking_uri: str


@runtime_checkable
class Model(Protocol):
    """What a plugin's factory returns. The runner owns seeding, device, schedule, tracking and files."""

    target_score: float | None
    """Evaluation score at which the task counts as solved (None if it has no threshold)."""

    def train(self, budget: int, on_step: StepCallback) -> None:
        """Train until ``budget`` steps in total or until ``on_step`` returns False.

        Call ``on_step(step)`` often (every env step or batch): the runner evaluates, checkpoints and
        updates the progress bar from inside it, and a Ctrl-C or SIGTERM stops the run there (with a checkpoint),
        so the model must be in a consistent state there (see :class:`StepCallback` for steps that are not).
        """

    def evaluate(self, episodes: int) -> dict[str, float]:
        """Evaluate the current weights; the result holds the plugin's ``score`` metric."""

    def save(self, directory: Path) -> None:
        """Write everything needed to rebuild the model's behaviour into ``directory``."""

    def load(self, directory: Path) -> None:
        """Load what :meth:`save` wrote into a model built from the same config."""

    def artifacts(self, directory: Path) -> list[Path]:
        """Write extra artifacts of the current model (e.g. a GIF of an episode); return their paths."""

    # Optional methods the runner and CLI use when a model has them:
    # - ``test(self) -> dict[str, float]``: metrics of the best model on held-out data. The runner calls it after
    #   loading the best weights and logs the result as ``test/<name>``.
    # - ``images(self) -> dict[str, ndarray]``: pictures of the current weights (RGB uint8, e.g. from
    #   :func:`image_grid` or :func:`scatter_plot`). The runner logs each after every evaluation as an MLflow image
    #   with the evaluation's step, so the UI shows them on a step slider.
    # - ``generate(self, n: int, seed: int) -> ndarray``: ``n`` samples of a generator, the same for the same seed:
    #   images (n, channels, height, width) in [0, 1] or points (n, dims). ``lab sample`` writes them as a PNG or .npy.
    # - ``sample(self, prompt: str, n: int, temperature: float, seed: int) -> str``: a language model's text.
    # - ``checkpoint(self, directory: Path) -> None`` and ``restore(self, directory: Path) -> None``: everything exact
    #   resumption needs (weights, optimizer state, RNG states, counters; see :func:`save_training_state`). The
    #   runner uses them for checkpoints and ``resume=``; without them a checkpoint is ``save()`` and resuming
    #   restores the weights only.
    # - ``play(self, episodes: int, seed: int, recorder: Recorder) -> None``: agents play ``episodes`` deterministic
    #   episodes with the current weights, starting from ``seed``, calling ``recorder.frame(render)`` after every
    #   reset and step and ``recorder.end_episode(total_reward, length)`` after each episode. ``lab play`` writes
    #   the recording as a GIF or MP4, and the runner records one episode of the best model (seed = the run's
    #   seed) as the run's ``play.gif``, unless the plugin's config has a ``gif`` key set to false or
    #   ``artifacts`` already returned a ``play.gif``.
