"""Start-up time: `lab --help` and `lab plugins` wall time (median of 5, warm disk cache), and where it goes.

    python bench/startup.py

Targets (issue 6): `lab --help` <= 0.3 s, `lab plugins` <= 1.0 s with every built-in installed. Also checks
that neither imports torch, stable-baselines3, diffusers or mlflow, and prints the largest imports of
`lab plugins` from `python -X importtime` (cumulative microseconds) for BENCHMARKS.md.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

LAB = shutil.which("lab", path=str(Path(sys.executable).parent)) or "lab"
COMMANDS = {"lab --help": [LAB, "--help"], "lab plugins": [LAB, "plugins"], "lab envs": [LAB, "envs"]}
TARGETS = {"lab --help": 0.3, "lab plugins": 1.0}
HEAVY = ("torch", "stable_baselines3", "diffusers", "mlflow")
REPEATS = 5


def wall_times(command: list[str]) -> list[float]:
    subprocess.run(command, capture_output=True, check=True)  # warm the disk cache
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def import_profile(args: list[str]) -> list[tuple[int, str]]:
    """(cumulative us, module) of every top-level import of ``python -m lab.cli ARGS``."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "lab.cli", *args], capture_output=True,
                            text=True, check=True)
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative.strip()), name.rstrip()[1:]))  # nested imports keep their indentation
    return rows


def main() -> None:
    print(f"{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), {date.today()}")
    print("| command | median s | min s | max s | target | heavy imports |")
    print("|---|---|---|---|---|---|")
    for label, command in COMMANDS.items():
        times = wall_times(command)
        modules = {name.strip() for _, name in import_profile(command[1:])}
        heavy = sorted(m for m in HEAVY if m in modules) or ["none"]
        target = f"<= {TARGETS[label]} s" if label in TARGETS else "-"
        print(f"| `{label}` | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} | {target} "
              f"| {', '.join(heavy)} |")
    print("\nLargest top-level imports of `lab plugins` (python -X importtime, cumulative ms):\n")
    print("| module | ms |")
    print("|---|---|")
    top_level = [(us, name) for us, name in import_profile(["plugins"]) if not name.startswith(" ")]
    for us, name in sorted(top_level, reverse=True)[:12]:
        print(f"| {name} | {us / 1000:.1f} |")


if __name__ == "__main__":
    main()
