"""Torch CPU threads per plugin kind: a short run of one plugin of each kind with threads=1, 2 and 0 (torch's
default, one per core), alternating processes, median of the repeats.

    python bench/threads.py [--repeats 3] [--settings 1,2,0] [--only mlp,cnn] [--busy 1]

Each run is a real `lab run` (fresh process, one evaluation at the end) in a temporary store; the time is the
run's own "FINISHED in N s" (model build, training and the evaluation, without lab's start-up). One untimed run
per case first fills the caches (datasets, the generators' feature classifier). ``--busy N`` keeps N other
processes spinning meanwhile (a loaded machine: another run, a test suite). Prints a markdown table for
BENCHMARKS.md; the per-kind defaults of `threads=` (lab/core/config.py) come from it.
"""

from __future__ import annotations

import argparse
import multiprocessing
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

# label -> (kind, arguments): budgets of 10-30 s per run on 2 cores, one evaluation at the end
CASES: dict[str, tuple[str, list[str]]] = {
    "ppo CartPole": ("agent", ["plugin=ppo", "env=CartPole", "steps=20000", "eval_every=20000", "gif=false"]),
    "mlp digits": ("backbone", ["plugin=mlp", "data=digits", "steps=25000", "eval_every=25000"]),
    "cnn digits": ("backbone", ["plugin=cnn", "data=digits", "steps=10000", "eval_every=10000"]),
    "vae digits": ("generator", ["plugin=vae", "data=digits", "steps=10000", "eval_every=10000",
                                 "eval_samples=200", "iw_samples=20"]),
    "diffusion digits": ("generator", ["plugin=diffusion", "data=digits", "steps=3000", "eval_every=3000",
                                       "eval_samples=100", "inference_steps=10"]),
    "transformer pydocs": ("language", ["plugin=transformer", "data=pydocs", "steps=100000", "eval_every=100000"]),
}
FINISHED = re.compile(r"FINISHED in ([\d.]+) s")


def run_once(arguments: list[str], threads: int, environment: dict[str, str]) -> float:
    """Seconds of one `lab run` with ``threads=``, as it reports them (wall time if it does not)."""
    command = [sys.executable, "-m", "lab.cli", "run", *arguments, f"threads={threads}", "progress=false",
               "stop_when_solved=false"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    found = FINISHED.search(result.stdout)
    return float(found.group(1)) if found else wall


def measure(arguments: list[str], settings: list[int], repeats: int, environment: dict[str, str]
            ) -> dict[int, list[float]]:
    """Seconds per setting; the order of the settings rotates every repeat, so a slow patch of the machine
    (another process) does not land on one setting only."""
    run_once(arguments, settings[0], environment)  # untimed: datasets, feature classifiers, disk cache
    times: dict[int, list[float]] = {setting: [] for setting in settings}
    for repeat in range(repeats):
        shift = repeat % len(settings)
        for setting in settings[shift:] + settings[:shift]:
            times[setting].append(run_once(arguments, setting, environment))
    return times


def spin() -> None:
    """A busy process: the other work of a loaded machine."""
    while True:
        pass


def label(setting: int) -> str:
    return "threads=0 (torch default)" if setting == 0 else f"threads={setting}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", default="1,2,0", help="threads= values, comma-separated")
    parser.add_argument("--only", default="", help="case labels' first words, comma-separated (mlp,cnn)")
    parser.add_argument("--busy", type=int, default=0, help="other processes kept spinning meanwhile")
    args = parser.parse_args()
    settings = [int(value) for value in args.settings.split(",")]
    only = {name for name in args.only.split(",") if name}
    cases = {name: case for name, case in CASES.items() if not only or name.split()[0] in only}

    import torch  # only to report what threads=0 means here

    print(f"{platform.node()} ({os.cpu_count()} cores, torch default {torch.get_num_threads()} threads), "
          f"{date.today()}, median of {args.repeats}, load average before: {os.getloadavg()[0]:.1f}, "
          f"{args.busy} busy process(es) meanwhile\n")
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for spinner in spinners:
        spinner.start()
    print("| kind | run | " + " | ".join(f"{label(s)} s" for s in settings) + " | fastest |")
    print("|---" * (len(settings) + 3) + "|")
    with tempfile.TemporaryDirectory(prefix="lab-threads-") as folder:
        environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(folder) / 'mlflow.db'}",
                       "LAB_CACHE_DIR": os.environ.get("LAB_CACHE_DIR", str(Path(folder) / "cache"))}
        for name, (kind, arguments) in cases.items():
            times = measure(arguments, settings, args.repeats, environment)
            medians = {setting: statistics.median(values) for setting, values in times.items()}
            fastest = min(medians, key=lambda setting: medians[setting])
            cells = " | ".join(f"{medians[s]:.1f} ({min(times[s]):.1f}-{max(times[s]):.1f})" for s in settings)
            print(f"| {kind} | {name} | {cells} | {label(fastest)} |", flush=True)
    for spinner in spinners:
        spinner.terminate()


if __name__ == "__main__":
    main()
