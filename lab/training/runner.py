"""The shared runner: trains any plugin's model, on CPU or GPU, tracked in MLflow.

It owns what every plugin kind needs and no plugin should write again: seeding, device and thread choice,
the evaluation and checkpoint schedule, keeping the best model by its evaluation score, stopping when
solved, the progress bar, the run summary, and the MLflow run with the right final status.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab import DISTRIBUTION, __version__
from lab.core import smoke
from lab.core.config import CONFIG_FILE, ResolvedConfig
from lab.core.errors import StoreError, TrackingError
from lab.core.specs import Model, RunInfo
from lab.training import distributed
from lab.training.build import build_context, experiment_name, pick_device, run_tags, seed_everything, set_threads
from lab.training.callbacks import Callbacks
from lab.training.checkpoints import (
    CHECKPOINTS,
    DIGEST_TAG,
    CheckpointError,
    ResumePoint,
    manifest_digest,
    prune,
    write_checkpoint,
)
from lab.training.examples import write_examples
from lab.training.pictures import save_png
from lab.training.progress import ProgressBar
from lab.training.reporting import RunTracker, TrialReporter
from lab.training.video import Recorder

BEST_MODEL = "model/best"
FINAL_MODEL = "model/final"
PLAY_GIF = "play.gif"
"""The run's GIF of the best model playing one episode (agents)."""


class Terminated(Exception):
    """Raised in the main thread on SIGTERM so the run is checkpointed and marked KILLED, like Ctrl-C."""


HEARTBEAT_SECONDS = 30.0


class NonFiniteMetric(RuntimeError):
    """A loss, reward, return or score became NaN or infinite: training has diverged."""


# Metrics whose NaN or inf means the run has diverged (other metrics may be NaN legitimately, e.g. no episode yet).
GUARDED_METRICS = re.compile(r"loss|reward|return|score|^eval/", re.IGNORECASE)


def check_finite(metrics: Mapping[str, float], step: int) -> None:
    for key, value in metrics.items():
        if GUARDED_METRICS.search(key) and not math.isfinite(float(value)):
            raise NonFiniteMetric(f"{key} is {float(value)} at step {step}: training diverged (lower lr=, or "
                                  "check the reward scale); the best model so far is kept in the run")


@dataclass
class RunResult:
    """What a finished (or interrupted) run reports to the CLI."""

    run_id: str
    run_name: str
    experiment: str
    status: str
    steps: int
    seconds: float
    score_key: str
    budget: int = 0
    stop_reason: str | None = None
    best_score: float | None = None
    best_step: int | None = None
    target_score: float | None = None
    solved: bool = False
    artifact_uri: str = ""
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    test_metrics: dict[str, float] = field(default_factory=dict)


def run(config: ResolvedConfig, tracker: RunTracker, *, resume: ResumePoint | None = None,
        tags: Mapping[str, str] | None = None, reporter: TrialReporter | None = None) -> RunResult:
    """Train ``config``'s plugin in a new MLflow run (or, with ``resume``, on from a checkpoint). Raises
    KeyboardInterrupt/Terminated after marking the run KILLED, or the original exception after marking it FAILED.

    ``tracker`` (made by the caller, e.g. ``lab.tracking.worker.RemoteTracker``, which starts importing mlflow in
    its own process at once) is this run's from here on: it is closed when the run ends. ``reporter``: the sweep
    trial this run is, to be told each evaluation's score."""
    if distributed.launched_size() > 1 and os.environ.get("RANK", "0") != "0":
        raise RuntimeError("ranks other than 0 train with runner.follow()")
    try:
        config.plugin.load_factory()  # before the run exists: a broken plugin makes no FAILED run
        device = pick_device(config.runner.device)  # before the run exists: a bad device is bad input
        if distributed.launched_size() > 1:
            device = distributed.initialize(device)
    except BaseException:
        tracker.close()
        raise
    set_threads(config)
    seed_everything(config.runner.seed)
    smoke.cap_run(config.runner, resume.step if resume is not None else 0)

    if resume is not None and resume.run_id is not None:
        tracker.resume(resume.run_id, {**run_tags(config, device), "lab.resumed_from": f"step-{resume.step}",
                                       "lab.steps": str(config.runner.steps)})
    else:
        tracker.start(experiment_name(config), config.runner.run_name, {**run_tags(config, device), **(tags or {})})
    tracker.report_crashes()  # a segfault is recorded as such (FAILED, "crashed (signal 11, ...)")
    # SIGINT interrupts even where the shell started lab with it ignored (`lab run ... &`, nohup).
    interrupts = Interrupts()
    previous_sigint = signal.signal(signal.SIGINT, interrupts.handle)
    previous_sigterm = signal.signal(signal.SIGTERM, interrupts.handle)
    heartbeat = Heartbeat(tracker)
    try:
        with tempfile.TemporaryDirectory(prefix="lab-run-") as workdir:
            return _train(config, tracker, device, Path(workdir), heartbeat, resume, interrupts, reporter)
    finally:
        distributed.finalize()
        heartbeat.stop()
        tracker.close(wait=False)  # finished already, or never started (a store fault): let the worker go
        signal.signal(signal.SIGINT, previous_sigint)
        signal.signal(signal.SIGTERM, previous_sigterm)


def follow(config: ResolvedConfig) -> int:
    """Rank 1..N-1 of a data-parallel run: the same model on its shard of every batch, stopping when rank 0
    says so. Nothing is tracked here; rank 0 owns the run. Returns the exit code."""
    from torch.distributed import DistError

    device = distributed.initialize(pick_device(config.runner.device))
    smoke.cap_run(config.runner)  # the same budget as rank 0
    set_threads(config)
    seed_everything(config.runner.seed)  # the same initial weights and data order as rank 0 ...
    try:
        model: Model = config.plugin.build(build_context(config, device))
        # ... but noise of its own (numpy's seeds are 32-bit: seed=4294967295 wraps rather than failing)
        seed_everything((config.runner.seed + 1_000_003 * distributed.rank()) % 2**32)
        model.train(config.runner.steps, lambda step, boundary=True: distributed.agree(True))
        return 0
    except DistError:  # rank 0 stopped (Ctrl-C, an error): it reports why and marks the run; no second traceback
        return 1
    finally:
        with contextlib.suppress(Exception):
            distributed.finalize()


class Heartbeat:
    """Tags the run with ``lab.heartbeat`` (unix time) and ``lab.step`` every HEARTBEAT_SECONDS while it trains,
    so `lab runs --stale` can tell a run whose process died (SIGKILL, power loss) from a slow one."""

    def __init__(self, tracker: RunTracker) -> None:
        self.tracker = tracker
        self.step = 0
        self._stopped = threading.Event()
        self.beat()
        self._thread = threading.Thread(target=self._run, name="lab-heartbeat", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        if self._stopped.is_set():
            return
        with contextlib.suppress(TrackingError):  # the worker is closed or gone: the run's end says the rest
            self.tracker.set_tags({"lab.heartbeat": str(int(time.time())), "lab.step": str(self.step)})

    def _run(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            self.beat()

    def stop(self) -> None:
        """Stop beating and wait for a beat in progress, so none is sent to a closed tracker later."""
        self._stopped.set()
        self._thread.join(timeout=10)


class Interrupts:
    """SIGINT and SIGTERM while the model trains take effect at its next step boundary (``on_step`` with
    ``boundary=True``), where a checkpoint holds everything, so a resumed run continues exactly. Outside
    training (building the model, saving its outputs), or at a second signal, they take effect at once and
    no checkpoint is written: the state may be half-updated."""

    def __init__(self) -> None:
        self.deferred = False  # True while the model trains
        self.pending: type[BaseException] | None = None

    def handle(self, signum: int, frame: Any) -> None:
        error = KeyboardInterrupt if signum == signal.SIGINT else Terminated
        if not self.deferred or self.pending is not None:
            self.deferred = False
            raise error()
        self.pending = error
        # os.write, not print: the main thread may be inside a write to stderr (the progress bar).
        os.write(2, b"\nlab: stopping at the next step boundary, with a checkpoint (press Ctrl-C again to stop "
                    b"at once, without one)\n")

    def take(self) -> type[BaseException] | None:
        """The signal that arrived while training, once; from now on signals act at once."""
        pending, self.pending = self.pending, None
        if pending is not None:
            self.deferred = False
        return pending


def _train(config: ResolvedConfig, tracker: RunTracker, device: str, workdir: Path,
           heartbeat: Heartbeat, resume: ResumePoint | None, interrupts: Interrupts,
           reporter: TrialReporter | None) -> RunResult:
    started = time.monotonic()
    config_text = yaml.safe_dump(config.as_dict(), sort_keys=False)
    if resume is None or resume.run_id is None:  # a resumed run keeps its params (MLflow's are write-once)
        tracker.log_params(config.as_dict())
        tracker.log_text(config_text, CONFIG_FILE)
    if resume is not None and resume.run_id is None:
        tracker.set_tags({"lab.resumed_from": f"{resume.checkpoint} (step {resume.step})"})
    callbacks = Callbacks(config.hooks)
    callbacks.run_started(_run_info(config, tracker))
    loop: TrainingLoop | None = None

    already_logged = resume.last_logged if resume is not None else {}

    def log_metrics(metrics: Mapping[str, float], step: int) -> None:
        if already_logged:  # a resumed run re-trains steps a killed run had logged: keep the first values
            metrics = {key: value for key, value in metrics.items() if step > already_logged.get(key, -1)}
        tracker.log_metrics(metrics, step)  # logged first, so the UI shows the NaN that stopped the run
        check_finite(metrics, step)
        callbacks.metrics(metrics, step)

    def summary(**extra: Any) -> dict[str, Any]:
        progress = {"steps": loop.step, "best_score": loop.best_score, "best_step": loop.best_step,
                    "solved": loop.solved} if loop else {"steps": 0}
        return {**progress, "seconds": time.monotonic() - started, **extra}

    try:
        context = build_context(config, device, tracker, log_metrics=log_metrics)
        model: Model = config.plugin.build(context)
        bar = ProgressBar(config.runner.steps, enabled=config.runner.progress)
        loop = TrainingLoop(config, model, tracker, workdir, log_metrics=log_metrics, callbacks=callbacks,
                            heartbeat=heartbeat, interrupts=interrupts, config_text=config_text, reporter=reporter,
                            bar=bar)
        on_step = loop.on_step
        if distributed.world_size() > 1:  # every rank stops where rank 0 does
            tracker.set_tags({"lab.world_size": str(distributed.world_size())})

            def on_step(step: int, boundary: bool = True) -> bool:
                return distributed.agree(loop.on_step(step, boundary))
        if resume is not None:
            _restore(loop, model, resume, tracker)
        with bar:
            interrupts.deferred = True
            try:
                model.train(config.runner.steps, on_step)
            finally:
                interrupts.deferred = False
            if interrupts.pending is not None:  # it came after the last boundary: the end of training is one
                loop.stop_interrupted()
            loop.finish()
        _log_outputs(loop, model, tracker, workdir, wants_gif=bool(getattr(config.params, "gif", True)))
        result = loop.result(tracker, "FINISHED", time.monotonic() - started)
        log_metrics({"time/wall_seconds": result.seconds}, loop.step)
        tracker.finish("FINISHED")
        callbacks.run_ended("FINISHED", summary())
        return result
    except (KeyboardInterrupt, Terminated) as stop:
        note = loop.interrupt_note if loop is not None else ""
        if not note:  # stopped at once: outside training, or by a second signal
            saved = loop.checkpoints if loop is not None else resume.checkpoints if resume is not None else []
            note = (f"no new checkpoint (stopped at once); resume= continues from {saved[-1]}" if saved else
                    "no checkpoint (stopped before the first); resume= trains it again from step 0")
        with contextlib.suppress(TrackingError, StoreError):  # a full disk must not turn Ctrl-C into a failure
            if loop is not None:
                _keep_best(loop)
            tracker.set_tags({"lab.stopped": f"interrupted by the user (SIGINT/SIGTERM): {note}",
                              "lab.step": str(loop.step if loop is not None else 0)})
        with contextlib.suppress(TrackingError, StoreError):
            tracker.finish("KILLED")
        stop.lab_marked = tracker.final_status == "KILLED"  # type: ignore[attr-defined]
        callbacks.run_ended("KILLED", summary())
        stop.lab_note = note  # type: ignore[attr-defined]  # what the CLI tells the user
        raise
    except BaseException as e:
        note = _record_failure(tracker, loop, e)
        with contextlib.suppress(AttributeError):
            e.lab_note = note  # type: ignore[attr-defined]  # what the CLI says of the run
        with contextlib.suppress(Exception):
            callbacks.run_ended("FAILED", summary(error=f"{type(e).__name__}: {e}"))
        raise


def _record_failure(tracker: RunTracker, loop: TrainingLoop | None, error: BaseException) -> str | None:
    """Mark the run FAILED with the error and its traceback, as far as the store allows; returns what is true
    of the run now (None when there is no run). A broken tracker or a full disk must not hide the error."""
    if not tracker.started:
        return None
    logged = False
    with contextlib.suppress(TrackingError, StoreError):
        tracker.log_text(traceback.format_exc(), "error/traceback.txt")
        tracker.set_tags({"lab.error": f"{type(error).__name__}: {error}"[:5000]})
        if loop is not None:
            _keep_best(loop)
        logged = True
    with contextlib.suppress(TrackingError, StoreError):
        tracker.finish("FAILED")  # raises if anything before it failed, too
        return "run marked FAILED, traceback logged" if logged else "run marked FAILED"
    if tracker.final_status == "FAILED":
        return "run marked FAILED"
    return ("the run could not be marked FAILED (the store cannot be written): it stays RUNNING until "
            "`lab runs clean` marks it FAILED, once the store can be written again")


def _run_info(config: ResolvedConfig, tracker: RunTracker) -> RunInfo:
    return RunInfo(run_id=tracker.run_id, run_name=tracker.run_name, experiment=tracker.experiment,
                   plugin=config.plugin.name, kind=config.plugin.spec.kind, target=config.target,
                   config=config.as_dict(), artifact_uri=tracker.artifact_uri, tracking_uri=tracker.tracking_uri)


def _keep_best(loop: TrainingLoop) -> None:
    """A stopped or failed run keeps its best model so far (and resume picks it up)."""
    if loop.best_step is not None:
        loop.tracker.log_artifact(loop.workdir / BEST_MODEL, BEST_MODEL)
        loop.tracker.set_tags({"lab.best_step": str(loop.best_step)})


def _restore(loop: TrainingLoop, model: Model, resume: ResumePoint, tracker: RunTracker) -> None:
    """Load the checkpoint into the model and put the loop where the interrupted run was."""
    restore = getattr(model, "restore", None)
    if resume.checkpoint is None:  # stopped before its first checkpoint: trained again from step 0
        tracker.set_tags({"lab.resume": "from step 0 (the run had no checkpoint)"})
    elif callable(restore):
        restore(resume.checkpoint)
    else:  # the plugin saves weights only: optimizer and RNG state start afresh
        model.load(resume.checkpoint)
        tracker.set_tags({"lab.resume": "weights only (the plugin has no checkpoint/restore)"})
        print(f"lab: warning: plugin {loop.plugin_name!r} restores weights only: its optimizer and random state "
              "start afresh", file=sys.stderr)
    runner = loop.runner
    loop.checkpoints = list(resume.checkpoints)
    loop.step = resume.step
    loop.next_eval = (resume.step // runner.eval_every + 1) * runner.eval_every
    if runner.checkpoint_every:
        loop.next_checkpoint = (resume.step // runner.checkpoint_every + 1) * runner.checkpoint_every
    loop.evaluations = list(resume.evaluations)
    if loop.evaluations:
        loop.last_eval_step = loop.evaluations[-1][0]
    if resume.best_model is not None and resume.best_step is not None:
        shutil.copytree(resume.best_model, loop.workdir / BEST_MODEL)
        loop.best_score, loop.best_step = resume.best_score, resume.best_step


class TrainingLoop:
    """The callback a model calls at every step: evaluation, checkpoints, best model, progress, stopping."""

    def __init__(self, config: ResolvedConfig, model: Model, tracker: RunTracker, workdir: Path, *,
                 log_metrics: Callable[[Mapping[str, float], int], None], callbacks: Callbacks,
                 heartbeat: Heartbeat | None = None, interrupts: Interrupts | None = None, config_text: str = "",
                 reporter: TrialReporter | None = None, bar: ProgressBar | None = None) -> None:
        self.log_metrics = log_metrics
        self.callbacks = callbacks
        self.heartbeat = heartbeat
        self.interrupts = interrupts
        self.interrupt_note = ""  # what an interrupted run saved, for the run's tag and the CLI
        self.config_text = config_text  # the resolved config, written into every checkpoint
        self.checkpoints: list[str] = []  # the run's checkpoint folders, oldest first
        self.reporter = reporter  # set when this run is a trial of `lab sweep`
        self.plugin_name = config.plugin.name
        self.plugin_package = (config.plugin.package, config.plugin.version)
        self.runner = config.runner
        self.score_key = config.plugin.spec.score
        self.model = model
        self.tracker = tracker
        self.workdir = workdir
        self.bar = bar
        self.step = 0
        self.next_eval = self.runner.eval_every
        self.next_checkpoint = self.runner.checkpoint_every or None
        self.last_eval_step: int | None = None
        self.best_score: float | None = None
        self.best_step: int | None = None
        self.solved = False
        self.stop_reason: str | None = None  # why training ended before its budget
        self.evaluations: list[tuple[int, dict[str, float]]] = []
        self.test_metrics: dict[str, float] = {}

    def on_step(self, step: int, boundary: bool = True) -> bool:
        """Called by the model; returns False to stop training. Cheap unless something is due. Checkpoints and
        interrupts wait for a step boundary."""
        self.step = step
        if boundary and self.interrupts is not None and self.interrupts.pending is not None:
            self.stop_interrupted()
        if self.heartbeat is not None:
            self.heartbeat.step = step
        if self.bar is not None:
            self.bar.advance_to(step)
        if step >= self.next_eval:
            self.next_eval = (step // self.runner.eval_every + 1) * self.runner.eval_every
            self.evaluate()
            if self.solved and self.runner.stop_when_solved:
                return self._stop(f"stopped: solved at step {step:,}")
            if self.reporter is not None and self.reporter.should_stop(self._score(self.evaluations[-1][1]), step):
                self.tracker.set_tags({"lab.pruned": "true"})  # a sweep's pruner: this trial is not promising
                return self._stop(f"stopped: pruned by the sweep at step {step:,}")
        if boundary and self.next_checkpoint is not None and step >= self.next_checkpoint:
            self.next_checkpoint = (step // self.runner.checkpoint_every + 1) * self.runner.checkpoint_every
            _save_checkpoint(self)
        return True  # the model owns its budget: SB3, say, still trains on the rollout that reached it

    def stop_interrupted(self) -> None:
        """Ctrl-C or SIGTERM arrived while training: checkpoint at this boundary, then stop the run."""
        assert self.interrupts is not None
        stop = self.interrupts.take()
        assert stop is not None
        try:
            _save_checkpoint(self)
            self.interrupt_note = f"checkpoint {self.checkpoints[-1]} saved"
        except CheckpointError as e:  # still KILLED: the user stopped it; say why there is no new checkpoint
            self.tracker.set_tags({"lab.error": str(e)})
            self.interrupt_note = f"no checkpoint ({e})"
        raise stop()

    def _stop(self, reason: str) -> bool:
        self.stop_reason = reason
        if self.bar is not None:
            self.bar.stopped(reason)
        return False

    def _score(self, metrics: Mapping[str, float]) -> float:
        if self.score_key not in metrics:
            raise RuntimeError(f"evaluate() returned {sorted(metrics)} without the score {self.score_key!r}")
        return float(metrics[self.score_key])

    def evaluate(self) -> None:
        metrics = dict(self.model.evaluate(self.runner.eval_episodes))
        if not all(math.isfinite(float(v)) for k, v in metrics.items() if GUARDED_METRICS.search(f"eval/{k}")):
            self.log_metrics({f"eval/{k}": v for k, v in metrics.items()}, self.step)  # logs, then raises
        score = self._score(metrics)
        target = getattr(self.model, "target_score", None)
        if target is not None and score >= target and self.runner.stop_when_solved:
            # A lucky set of episodes must not end a run: the same weights must pass again on fresh episodes,
            # and the lower of the two scores counts.
            confirmation = self._score(self.model.evaluate(self.runner.eval_episodes))
            metrics[f"confirmed_{self.score_key}"] = confirmation
            score = min(score, confirmation)
        self.last_eval_step = self.step
        self.evaluations.append((self.step, metrics))
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_step = score, self.step
            self.model.save(self.workdir / BEST_MODEL)
            self.callbacks.checkpoint(self.workdir / BEST_MODEL, self.step, "best")
        self.solved = self.solved or (target is not None and score >= target)
        self.log_metrics({**{f"eval/{k}": v for k, v in metrics.items()}, "best/score": self.best_score},
                                 self.step)
        self._log_images()
        self.tracker.flush()  # evaluations are rare: make them visible in the UI at once
        if self.bar is not None:
            self.bar.show(f"{self.score_key} {score:.4g}  best {self.best_score:.4g}")

    def _log_images(self) -> None:
        """The model's pictures of this evaluation (sample grids, say) as MLflow images at this step."""
        images = getattr(self.model, "images", None)
        if not callable(images):
            return
        directory = self.workdir / "images"
        directory.mkdir(exist_ok=True)
        for key, picture in images().items():
            # The worker copies the file later, in order, before the run finishes: the name must stay unique.
            path = save_png(picture, directory / f"{key}-{self.step}.png")
            self.tracker.log_image(path, key, self.step)

    def finish(self) -> None:
        """Make sure there is a best model: evaluate the final weights if the budget ended before any
        evaluation. (Otherwise the schedule decides, as in SB3's EvalCallback; the final weights are saved.)"""
        if self.last_eval_step is None:
            self.evaluate()

    def result(self, tracker: RunTracker, status: str, seconds: float) -> RunResult:
        return RunResult(
            run_id=tracker.run_id, run_name=tracker.run_name, experiment=tracker.experiment,
            status=status, steps=self.step, budget=self.runner.steps, stop_reason=self.stop_reason,
            seconds=seconds, score_key=self.score_key,
            best_score=self.best_score, best_step=self.best_step,
            target_score=getattr(self.model, "target_score", None), solved=self.solved,
            artifact_uri=tracker.artifact_uri, evaluations=self.evaluations, test_metrics=self.test_metrics,
        )


def _save_checkpoint(loop: TrainingLoop) -> None:
    """An atomic, verified checkpoint at the current step, uploaded to ``checkpoints/step-<N>``; older ones pruned."""
    loop.tracker.flush()  # every metric logged before the checkpoint is in the store first: a kill -9 loses none
    root = loop.workdir / CHECKPOINTS
    folder = write_checkpoint(loop.model, root, loop.step, loop.config_text)
    loop.tracker.log_artifact(folder, f"{CHECKPOINTS}/{folder.name}")
    digest = manifest_digest(folder)
    loop.tracker.set_tags({"lab.checkpoint": folder.name, DIGEST_TAG: digest, f"{DIGEST_TAG}.{folder.name}": digest})
    prune(root, loop.runner.checkpoint_keep)
    loop.checkpoints = [name for name in loop.checkpoints if name != folder.name] + [folder.name]
    keep = loop.runner.checkpoint_keep
    while keep and len(loop.checkpoints) > keep:  # the run's, including those of earlier sessions (resume)
        loop.tracker.delete_artifacts(f"{CHECKPOINTS}/{loop.checkpoints.pop(0)}")
    loop.callbacks.checkpoint(folder, loop.step, "checkpoint")


def _log_outputs(loop: TrainingLoop, model: Model, tracker: RunTracker, workdir: Path, *, wants_gif: bool) -> None:
    """Final and best weights, the learning curve, the plugin's own artifacts of the best model, and a GIF of
    the best model playing one episode (agents: models with ``play``), unless the plugin's config has
    ``gif=false`` or its ``artifacts`` made one already."""
    model.save(workdir / FINAL_MODEL)
    tracker.log_artifact(workdir / FINAL_MODEL, FINAL_MODEL)
    loop.callbacks.checkpoint(workdir / FINAL_MODEL, loop.step, "final")
    if loop.best_step is not None:
        model.load(workdir / BEST_MODEL)
        tracker.log_artifact(workdir / BEST_MODEL, BEST_MODEL)
    test = getattr(model, "test", None)
    if callable(test):  # held-out metrics of the best model
        loop.test_metrics = dict(test())
        loop.log_metrics({f"test/{key}": value for key, value in loop.test_metrics.items()}, loop.step)
    tracker.set_tags({"lab.best_step": str(loop.best_step), "lab.solved": str(loop.solved).lower(),
                      "lab.step": str(loop.step)})
    tracker.log_learning_curve(loop.evaluations, loop.score_key, getattr(model, "target_score", None))
    _log_pyfunc(loop, model, tracker, workdir)
    extra = workdir / "extra"
    extra.mkdir()
    made = model.artifacts(extra)
    for path in made:
        tracker.log_artifact(path)
    if wants_gif and callable(getattr(model, "play", None)) and PLAY_GIF not in {path.name for path in made}:
        recorder = Recorder()
        model.play(1, loop.runner.seed, recorder)
        tracker.log_artifact(recorder.save(workdir / PLAY_GIF))


def _log_pyfunc(loop: TrainingLoop, model: Model, tracker: RunTracker, workdir: Path) -> None:
    """The best model as an MLflow pyfunc model (``model/pyfunc``), for plugins that implement its methods."""
    examples = write_examples(model, workdir / "pyfunc-examples")
    if examples is None:
        return
    weights = workdir / (BEST_MODEL if loop.best_step is not None else FINAL_MODEL)
    tracker.log_pyfunc(weights, loop.config_text, examples, _requirements(loop))


def _requirements(loop: TrainingLoop) -> list[str]:
    """What a model server needs installed: lab, and the plugin's own distribution when it is not lab."""
    requirements = [f"{DISTRIBUTION}=={__version__}"]
    package, version = loop.plugin_package
    if package and package != DISTRIBUTION and version:
        requirements.append(f"{package}=={version}")
    return requirements
