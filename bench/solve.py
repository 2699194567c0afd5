"""Quality benchmark: does `lab run` solve the task with its default preset, seed after seed?

Each job runs `lab run plugin=P env=E seed=S` exactly as a user would (a fresh process, the default preset),
against a temporary tracking store, then `lab eval run=<id> episodes=20` on the logged best model.

    python bench/solve.py dqn:CartPole:0-4 ppo:CartPole:0 a2c:CartPole:0 sac:Pendulum:0 td3:Pendulum:0

Prints a markdown table (wall time, steps, best logged score, re-evaluated score) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

LAB = [sys.executable, "-m", "lab.cli"]


def jobs(specs: list[str]) -> list[tuple[str, str, int]]:
    out = []
    for spec in specs:
        plugin, env, seeds = spec.split(":")
        first, _, last = seeds.partition("-")
        out += [(plugin, env, seed) for seed in range(int(first), int(last or first) + 1)]
    return out


def run_job(plugin: str, env: str, seed: int, store: Path, extra: list[str]) -> dict:
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    started = time.perf_counter()
    command = [*LAB, "run", f"plugin={plugin}", f"env={env}", f"seed={seed}", "progress=false", *extra]
    run = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=store)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        return {"plugin": plugin, "env": env, "seed": seed, "error": run.stderr.strip().splitlines()[-1]}
    run_id = re.search(r"run id:\s+(\w+)", run.stdout).group(1)
    steps = int(re.search(r"in [\d.]+ s, ([\d,]+) steps", run.stdout).group(1).replace(",", ""))
    best = re.search(r"best mean_return: (\S+)", run.stdout).group(1)
    evaluation = subprocess.run([*LAB, "eval", f"run={run_id}", "episodes=20"], capture_output=True,
                                text=True, env=environment, cwd=store)
    match = re.search(r"mean_return: (\S+) \+- (\S+)", evaluation.stdout)
    return {"plugin": plugin, "env": env, "seed": seed, "wall_s": round(wall, 1), "steps": steps,
            "best_logged": float(best), "eval20_mean": float(match.group(1)) if match else None,
            "eval20_std": float(match.group(2)) if match else None, "run_id": run_id}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("jobs", nargs="+", help="plugin:env:seeds, seeds like 0 or 0-4")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--extra", nargs="*", default=[], help="extra key=value for every run")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        for plugin, env, seed in jobs(args.jobs):
            result = run_job(plugin, env, seed, Path(tmp), args.extra)
            results.append(result)
            print(json.dumps(result), flush=True)
    print(f"\n{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), "
          f"{date.today()}")
    print("| plugin | env | seed | wall s | steps | best logged | lab eval, 20 episodes |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['plugin']} | {r['env']} | {r['seed']} | failed: {r['error']} | | | |")
            continue
        print(f"| {r['plugin']} | {r['env']} | {r['seed']} | {r['wall_s']} | {r['steps']:,} "
              f"| {r['best_logged']:.4g} | {r['eval20_mean']:.4g} +- {r['eval20_std']:.2g} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
