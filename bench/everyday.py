"""Everyday commands before and after (issue 22): `lab envs`, `lab runs`, `lab eval` and `lab play` wall times.

    git archive HEAD | tar -x -C /tmp/lab-before     # the code to compare with, outside the checkout
    python bench/everyday.py --before /tmp/lab-before [--repeats 5]

One CartPole DQN run (3,000 steps) is made in a temporary folder; every command then runs there as a fresh
process, the old code (``PYTHONPATH=DIR:DIR/plugins:DIR/envs``) and this checkout's alternately, after one untimed
run of each. `lab envs` is timed twice for the new code: with its env cache empty (a first call) and filled.
Prints a markdown table (median, min-max in seconds) for BENCHMARKS.md, and whether both print the same.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

RUN = ["run", "plugin=dqn", "env=CartPole", "steps=3000", "progress=false"]
RUN_ID = re.compile(r"run id:\s+([0-9a-f]{32})")


def commands(run_id: str) -> dict[str, list[str]]:
    return {"lab envs": ["envs"], "lab runs": ["runs"],
            "lab eval (20 episodes)": ["eval", f"run={run_id}", "episodes=20"],
            "lab play (3 episodes)": ["play", f"run={run_id}", "episodes=3", "out=play.gif"]}


class Code:
    """One version of lab, run as ``python -m lab.cli`` in ``folder``."""

    def __init__(self, folder: Path, source: Path | None) -> None:
        self.folder = folder
        self.environment = dict(os.environ)
        self.environment.pop("PYTHONPATH", None)
        if source is not None:
            self.environment["PYTHONPATH"] = os.pathsep.join(str(source / part) for part in ("", "plugins", "envs"))

    def run(self, args: list[str]) -> tuple[float, str]:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "lab.cli", *args], cwd=self.folder, env=self.environment,
                                capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"lab {' '.join(args)} failed:\n{result.stderr[-2000:]}")
        return seconds, result.stdout


def comparable(output: str) -> str:
    """What must not change: everything but ages (lab runs) and the table's column widths."""
    return re.sub(r"\s+", " ", re.sub(r"\b\d+[smhd]\b", "AGE", output)).strip()


def compare(before: Code, after: Code, command: list[str], repeats: int) -> tuple[list[float], list[float], bool]:
    """Seconds of the old and new code, alternating, after one untimed run of each; and whether they print the
    same."""
    before.run(command)  # untimed: the disk cache, and the env cache of the new code
    after.run(command)
    old, new, same = [], [], True
    for _ in range(repeats):
        old_seconds, old_out = before.run(command)
        new_seconds, new_out = after.run(command)
        old.append(old_seconds)
        new.append(new_seconds)
        same = same and comparable(old_out) == comparable(new_out)
    return old, new, same


def first_calls(after: Code, command: list[str], cache: Path, repeats: int) -> list[float]:
    """Seconds of the new code with its env cache emptied before each call."""
    times = []
    for _ in range(repeats):
        (cache / "envs.json").unlink(missing_ok=True)
        times.append(after.run(command)[0])
    return times


def cell(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} ({min(times):.2f}-{max(times):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the old code (git archive of a commit)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lab-everyday-") as name:
        folder = Path(name)
        cache = folder / "cache"
        os.environ["LAB_CACHE_DIR"] = str(cache)  # the env cache of the new code; never the user's
        before, after = Code(folder, args.before.resolve()), Code(folder, None)
        _, out = after.run(RUN)
        run_id = RUN_ID.search(out).group(1)  # type: ignore[union-attr]
        print(f"{platform.uname().system} {platform.uname().release} {platform.machine()}, {os.cpu_count()} cores, "
              f"python {platform.python_version()}, {date.today()}; load average {os.getloadavg()[0]:.1f}; "
              f"median (min-max) of {args.repeats} alternating fresh processes, seconds\n")
        print("| command | before | after | after / before | same output |")
        print("|---|---|---|---|---|")
        for label, command in commands(run_id).items():
            old, new, same = compare(before, after, command, args.repeats)
            if label == "lab envs":
                cold = first_calls(after, command, cache, args.repeats)
                print(f"| `lab envs`, first call (empty env cache) | {cell(old)} | {cell(cold)} "
                      f"| {statistics.median(cold) / statistics.median(old):.2f} | - |")
            print(f"| `{label}` | {cell(old)} | {cell(new)} | {statistics.median(new) / statistics.median(old):.2f} "
                  f"| {'yes' if same else 'NO'} |", flush=True)

if __name__ == "__main__":
    main()
