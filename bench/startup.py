"""Start-up time: `lab --help` and `lab plugins` wall time (median of 5, warm disk cache), and where it goes.

    python bench/startup.py
    python bench/startup.py --against 0b17fd6 --repeats 21   # this checkout side by side with an earlier commit

``--against REF`` extracts REF (``git archive``) into a temporary folder and times the same commands from both
trees, alternating processes (this tree, REF, this tree, ...) so that a busy moment costs both alike; each
process puts its tree's ``lab``, ``plugins/`` and ``envs/`` first on ``sys.path`` (the same bootstrap for both).

Targets (issue 6): `lab --help` <= 0.3 s, `lab plugins` <= 1.0 s with every built-in installed. Also checks
that neither imports torch, stable-baselines3, diffusers or mlflow, and prints the largest imports of
`lab plugins` from `python -X importtime` (cumulative microseconds) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
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


BOOT = ("import sys; root = sys.argv.pop(1); sys.path[:0] = [root, root + '/plugins', root + '/envs']; "
        "import lab; assert lab.__file__.startswith(root), lab.__file__; "
        "from lab.cli import main; sys.exit(main(sys.argv[1:]))")
SIDE_BY_SIDE = {"lab --help": ["--help"], "lab plugins": ["plugins"]}


def side_by_side(ref: str, repeats: int) -> None:
    """Median wall time of each command from this checkout and from ``ref``, alternating processes."""
    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="lab-startup-") as tmp:
        subprocess.run(f"git archive {ref} | tar -x -C {tmp}", shell=True, check=True, cwd=here)
        trees = {"this checkout": str(here), ref: tmp}
        print(f"{platform.node()} ({os.cpu_count()} cores), {date.today()}; {repeats} runs each, alternating")
        print(f"| command | this checkout, median s | {ref}, median s | ratio (this / {ref}) |")
        print("|---|---|---|---|")
        for label, args in SIDE_BY_SIDE.items():
            times: dict[str, list[float]] = {name: [] for name in trees}
            for round_ in range(repeats + 1):
                for name, root in trees.items():
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-c", BOOT, root, *args], capture_output=True, check=True,
                                   cwd=tmp)
                    if round_:  # the first round warms the disk cache
                        times[name].append(time.perf_counter() - started)
            this, then = (statistics.median(times[name]) for name in trees)
            print(f"| `{label}` | {this:.3f} | {then:.3f} | {this / then:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REF", help="also time git REF of this repository, side by side")
    parser.add_argument("--repeats", type=int, default=21, help="runs of each command per tree (--against)")
    options = parser.parse_args()
    if options.against:
        side_by_side(options.against, options.repeats)
        return
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
