"""Atari training speed with the Zoo presets, and the wall time a full-budget run would take here.

    python bench/atari_speed.py                 # DQN and PPO on Pong, a short slice of each preset

Each job is `lab run plugin=P env=Pong` with the default (Zoo Atari) preset except a short budget; DQN starts
learning after 2,000 steps instead of 100,000 so the slice measures the learning phase. Prints env steps per
second and the extrapolated hours for 2e6 and 1e7 steps (the Zoo budget).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
from datetime import date

LAB = [sys.executable, "-m", "lab.cli"]
JOBS = {
    "dqn": ["steps=12000", "learning_starts=2000", "buffer_size=20000"],
    "ppo": ["steps=16384"],
}


def main() -> None:
    print(f"{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), {date.today()}")
    print("| agent | preset | slice steps | seconds | steps/s | 2e6 steps | 1e7 steps (Zoo budget) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="lab-atari-") as tmp:
        environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
        for agent, keys in JOBS.items():
            command = [*LAB, "run", f"plugin={agent}", "env=Pong", *keys, "eval_every=1000000", "eval_episodes=1",
                       "gif=false", "progress=false"]
            run = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tmp)
            if run.returncode != 0:
                print(f"| {agent} | failed: {run.stderr.strip().splitlines()[-1]} |")
                continue
            seconds, steps = re.search(r"in ([\d.]+) s, ([\d,]+) steps", run.stdout).groups()
            speed = int(steps.replace(",", "")) / float(seconds)
            preset = re.search(r"preset: (\S+)", run.stdout).group(1).rstrip(",")
            print(f"| {agent} | {preset} | {steps} | {float(seconds):.0f} | {speed:.0f} | {2e6 / speed / 3600:.1f} h "
                  f"| {1e7 / speed / 3600:.1f} h |", flush=True)


if __name__ == "__main__":
    main()
