"""A pure-Python plugin for testing the runner: its score is a known function of the step."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from lab.api import BuildContext, EnvSpec, Plugin, StepCallback, hookimpl, option


@dataclass
class ToyConfig:
    rate: float = option(0.01, "Score gained per step.")
    peak: int = option(0, "Step after which the score falls again; 0 = never.", min=0)
    interrupt_at: int = option(0, "Send this process SIGINT (Ctrl-C) inside this step; 0 = never.", min=0)
    fail_at: int = option(0, "Raise RuntimeError at this step; 0 = never.", min=0)
    crash_at: int = option(0, "Die of a segmentation fault at this step, as a broken C extension does; 0 = never.",
                           min=0)
    jitter: float = option(0.0, "Evaluations alternately add and subtract this much (lucky/unlucky episodes).")
    nan_at: int = option(0, "Log a NaN training loss at this step; 0 = never.", min=0)
    save_fails_at: int = option(0, "save() raises 'No space left on device' from this step on; 0 = never.", min=0)
    step_seconds: float = option(0.0, "Sleep this long at every step, so that a run lasts.", min=0)


class ToyModel:
    target_score = 5.0

    def __init__(self, context: BuildContext) -> None:
        self.config: ToyConfig = context.config
        self.log_metrics = context.log_metrics
        self.step = 0
        self.evaluations = 0
        self.resumed = False  # loaded weights: interrupt_at has happened already

    def train(self, budget: int, on_step: StepCallback) -> None:
        while self.step < budget:
            self.step += 1
            if self.config.step_seconds:
                time.sleep(self.config.step_seconds)
            if self.step == self.config.interrupt_at and not self.resumed:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: it takes effect at on_step
            if self.step == self.config.fail_at:
                raise RuntimeError("toy failure")
            if self.step == self.config.crash_at:
                import ctypes

                ctypes.string_at(0)  # reads address 0: SIGSEGV
            if self.step % 10 == 0:
                self.log_metrics({"train/loss": 1.0 / self.step}, self.step)
            if self.step == self.config.nan_at:
                self.log_metrics({"train/loss": float("nan")}, self.step)
            if not on_step(self.step):
                return

    def score(self) -> float:
        rising = self.step if not self.config.peak else min(self.step, 2 * self.config.peak - self.step)
        return rising * self.config.rate

    def evaluate(self, episodes: int) -> dict[str, float]:
        self.evaluations += 1
        luck = self.config.jitter if self.evaluations % 2 else -self.config.jitter
        return {"mean_return": self.score() + luck, "std_return": 0.0}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.config.save_fails_at and self.step >= self.config.save_fails_at:
            (directory / "toy.json").write_text('{"st')  # a half-written file, as a full disk leaves it
            raise OSError(28, "No space left on device")
        (directory / "toy.json").write_text(json.dumps({"step": self.step}))

    def load(self, directory: Path) -> None:
        self.step = json.loads((directory / "toy.json").read_text())["step"]
        self.resumed = True

    def artifacts(self, directory: Path) -> list[Path]:
        path = directory / "toy.txt"
        path.write_text(f"step {self.step}\n")
        return [path]


def build(context: BuildContext) -> ToyModel:
    return ToyModel(context)


@hookimpl
def register_plugins(register) -> None:
    register(Plugin(name="toy", kind="agent", config=ToyConfig, factory="toy_plugin:build",
                    description="A toy agent for runner tests", score="mean_return"))


@hookimpl
def register_envs(register) -> None:
    register(EnvSpec(id="Toy-v0", aliases=("Toy",)))
