"""Sweep throughput: the same 8-trial sweep with workers=1, workers=2, and on a local Ray with 2 CPUs.

    python bench/sweep_scaling.py                  # 131,072-step trials (the Zoo's 1e5 budget; ~25 s each)
    python bench/sweep_scaling.py --steps 16384    # short trials: start-up weighs more

Each mode runs `lab sweep plugin=ppo env=CartPole lr=loguniform(1e-4,3e-3) trials=8 sampler=random pruner=none`
(in a fresh store and study, so every mode trains the same 8 configurations) and reports wall time and trials per
minute; the ratio is against workers=1. Target on 2 cores: workers=2 >= 1.7x. Every trial also starts a Python
process and a tracking worker (about 3 s of CPU), which overlaps with training on the second core even with
workers=1: the shorter the trials, the less a second worker can add.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date

SWEEP = ["sweep", "plugin=ppo", "env=CartPole", "lr=loguniform(1e-4,3e-3)", "eval_episodes=5",
         "stop_when_solved=false", "gif=false", "trials=8", "sampler=random", "pruner=none"]
MODES = {"workers=1": ["workers=1"], "workers=2": ["workers=2"], "ray, 2 CPUs": ["workers=2", "backend=ray"]}


BUSY = "import sys; n = 0\nfor i in range(40_000_000): n += i * i\nsys.exit(0)"


def machine_ceiling() -> float:
    """What two cores give here at best: two copies of a pure-Python loop, one after the other vs at once."""
    def copies(together: bool) -> float:
        started = time.perf_counter()
        if together:
            for process in [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]:
                process.wait()
        else:
            for _ in range(2):
                subprocess.run([sys.executable, "-c", BUSY], check=True)
        return time.perf_counter() - started

    return copies(False) / copies(True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=131072, help="training steps per trial")
    args = parser.parse_args()
    budget = [f"steps={args.steps}", f"eval_every={args.steps // 2}"]
    print(f"{args.steps:,}-step trials")
    print(f"{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), {date.today()}")
    print(f"machine ceiling (2 CPU-bound processes at once vs one after the other): {machine_ceiling():.2f}x")
    print("| mode | trials | wall s | trials/min | vs workers=1 |")
    print("|---|---|---|---|---|")
    baseline = None
    for label, extra in MODES.items():
        with tempfile.TemporaryDirectory(prefix="lab-sweep-bench-") as tmp:
            environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LAB_"))}
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "lab.cli", *SWEEP, *budget, *extra], cwd=tmp,
                                    env=environment,
                                    capture_output=True, text=True)
            wall = time.perf_counter() - started
        if result.returncode != 0 or "8/8 trials done" not in result.stdout:
            print(f"| {label} | failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]} | | | |")
            continue
        baseline = baseline or wall
        print(f"| {label} | 8 | {wall:.1f} | {8 / wall * 60:.1f} | {baseline / wall:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
