"""Overhead benchmark: the same PPO CartPole training through `lab run` and through a plain SB3 script.

Both sides train lab's PPO CartPole preset (the RL Baselines3 Zoo hyperparameters, one torch thread) with
the same seed, budget and evaluation schedule (20 deterministic episodes every --eval-every env steps, the
best model saved), each in a fresh process so both timings include interpreter start and imports:

    lab: python -m lab.cli run plugin=ppo env=CartPole seed=S steps=N eval_every=E eval_episodes=20 ...
    sb3: python bench/sb3_ppo_cartpole.py --seed S --steps N --eval-every E

lab tracks into a sqlite store in a temporary directory, created before the timed runs (a user's store
exists after their first run; bench/tracking_overhead.py times its creation). The sides alternate
(lab, sb3, lab, sb3, ...) to cancel drift. Reports the median and min wall seconds of each side and
lab's median / SB3's median (target <= 1.05), and each side's best evaluation score.

    python bench/ppo_vs_sb3.py --seed 0 --steps 100000 --eval-every 4000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
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

LAB = [sys.executable, "-m", "lab.cli"]
SB3 = [sys.executable, str(Path(__file__).with_name("sb3_ppo_cartpole.py"))]
WARM_UP = "import lab.tracking.tracker, stable_baselines3; lab.tracking.tracker.client()"


def timed(side: str, command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run one side as a subprocess; (wall seconds, stdout)."""
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"{side} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    return wall, run.stdout


def run_lab(seed: int, steps: int, eval_every: int, store: Path, extra: list[str]) -> dict:
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    command = [*LAB, "run", "plugin=ppo", "env=CartPole", f"seed={seed}", f"steps={steps}",
               f"eval_every={eval_every}", "eval_episodes=20", "stop_when_solved=false", "progress=false",
               *extra]
    wall, out = timed("lab run", command, store, environment)
    best = re.search(r"best mean_return: (\S+) at step ([\d,]+)", out)
    done = re.search(r"in [\d.]+ s, ([\d,]+) steps", out)
    return {"side": "lab", "wall_s": wall, "best": float(best.group(1)) if best else None,
            "best_step": int(best.group(2).replace(",", "")) if best else None,
            "steps": int(done.group(1).replace(",", "")) if done else None}


def run_sb3(seed: int, steps: int, eval_every: int, cwd: Path) -> dict:
    command = [*SB3, "--seed", str(seed), "--steps", str(steps), "--eval-every", str(eval_every)]
    wall, out = timed("sb3 script", command, cwd)
    best = re.search(r"best mean_reward: (\S+) at step (\S+)", out)
    done = re.search(r"steps: (\d+)", out)
    return {"side": "sb3", "wall_s": wall, "best": float(best.group(1)) if best else None,
            "best_step": int(best.group(2)) if best and best.group(2).isdigit() else None,
            "steps": int(done.group(1)) if done else None}


def summary(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    return {"median_s": statistics.median(walls), "min_s": min(walls),
            "walls_s": [round(w, 2) for w in walls],
            "best": [r["best"] for r in runs], "best_step": [r["best_step"] for r in runs],
            "steps": [r["steps"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000, help="env steps (lab's preset budget: 100000)")
    parser.add_argument("--eval-every", type=int, default=4000, help="env steps between evaluations "
                        "(lab's preset: 4000 for 100000 steps); a multiple of 8, the number of envs")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side, alternating")
    parser.add_argument("--fresh-store", action="store_true", help="a new tracking store for every lab run "
                        "(includes store creation in lab's time)")
    parser.add_argument("--lab-extra", nargs="*", default=[], help="extra key=value for lab, e.g. gif=false")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.eval_every % 8:
        parser.error("--eval-every must be a multiple of 8 (the PPO preset's n_envs) for equal schedules")
    runs: dict[str, list[dict]] = {"lab": [], "sb3": []}
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        shared = Path(tmp) / "store"
        shared.mkdir()
        # Untimed: creates lab's store and brings torch, SB3 and MLflow into the page cache for both sides.
        environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{shared / 'mlflow.db'}"}
        subprocess.run([sys.executable, "-c", WARM_UP], check=True, capture_output=True, env=environment,
                       cwd=shared)
        for i in range(args.repeats):
            store = Path(tempfile.mkdtemp(dir=tmp, prefix="fresh-")) if args.fresh_store else shared
            for side in ("lab", "sb3"):
                if side == "lab":
                    result = run_lab(args.seed, args.steps, args.eval_every, store, args.lab_extra)
                else:
                    result = run_sb3(args.seed, args.steps, args.eval_every, Path(tmp))
                runs[side].append(result)
                print(json.dumps({"repeat": i, **result, "wall_s": round(result["wall_s"], 2)}), flush=True)
    lab, sb3 = summary(runs["lab"]), summary(runs["sb3"])
    ratio = lab["median_s"] / sb3["median_s"]
    print(f"\n{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), "
          f"{date.today()}")
    notes = [", fresh store per lab run"] if args.fresh_store else []
    notes += [f", lab extra: {' '.join(args.lab_extra)}"] if args.lab_extra else []
    print(f"PPO CartPole-v1, seed {args.seed}, {args.steps:,} steps, 20 eval episodes every "
          f"{args.eval_every:,} steps, {args.repeats} alternating run(s) per side{''.join(notes)}")
    print("| side | median wall s | min wall s | all wall s | best eval score (at step) | steps |")
    print("|---|---|---|---|---|---|")
    for name, side in (("lab run", lab), ("plain SB3", sb3)):
        pairs = zip(side["best"], side["best_step"], strict=True)
        best = ", ".join(f"{b:g} ({s})" if b is not None else "n/a" for b, s in pairs)
        walls = ", ".join(map(str, side["walls_s"]))
        print(f"| {name} | {side['median_s']:.2f} | {side['min_s']:.2f} | {walls} | {best} "
              f"| {', '.join(str(s) for s in side['steps'])} |")
    verdict = "meets" if ratio <= 1.05 else "misses"
    print(f"\nlab / SB3 median wall time: {ratio:.3f} ({verdict} the target <= 1.05); "
          f"min/min: {lab['min_s'] / sb3['min_s']:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"seed": args.seed, "steps": args.steps, "eval_every": args.eval_every,
                                        "repeats": args.repeats, "fresh_store": args.fresh_store,
                                        "lab_extra": args.lab_extra, "lab": lab, "sb3": sb3,
                                        "ratio_median": ratio, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
