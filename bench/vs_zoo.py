"""lab vs the RL Baselines3 Zoo: the same algorithm, env, seed, budget and evaluation schedule, both as users run them.

For each row (algorithm, env) and seed, three fresh processes, each timed whole (interpreter start, imports,
tracking and saving included):

    zoo:        python -m rl_zoo3.train --algo A --env E --seed S --eval-freq F --eval-episodes K --n-eval-envs 1
                    -f TMP --device cpu --vec-env dummy [-n N] [--num-threads T]
    lab:        python -m lab.cli run plugin=A env=E seed=S eval_every=F eval_episodes=K stop_when_solved=false
                    progress=false [steps=N]
    lab-solved: the same with stop_when_solved=true (lab's default): the time to its solved stop

The budget is the Zoo's own ``n_timesteps`` (rl_zoo3/hyperparams/A.yml; lab's preset carries the same value, and
the table shows both) unless --steps overrides it on both sides. Evaluation: K deterministic episodes every F env
steps on both sides (F = max(1000, budget // 25), lab's preset schedule; K = 5, the Zoo's default). The Zoo divides
--eval-freq by its n_envs (rl_zoo3/exp_manager.py:587) and EvalCallback counts vec-env steps, so it also evaluates
every F total env steps; from its ``evaluations.npz`` the bench takes the final evaluation (mean of the last one)
and the best (highest mean). lab tracks into a temporary sqlite store (MLFLOW_TRACKING_URI), created before the
timed runs; its final and best evaluations come from the metric history of ``eval/mean_return``. Torch threads:
lab's agents use threads=1 (their default; read back from each run's params), the Zoo torch's default (the core
count) unless --zoo-threads passes ``--num-threads``. Sides alternate in a rotated order from one (row, seed) to
the next (zoo, lab, lab-solved; lab, lab-solved, zoo; ...) so that drift cancels. Where lab declares no solved
threshold for an env (Pendulum-v1: gymnasium has none) it never stops early: the lab-solved run is skipped once
a lab run of that row has shown it, and its time to solved is "-".

    python bench/vs_zoo.py                                   # every default row, seeds 0-2, into BENCHMARKS.md
    python bench/vs_zoo.py --rows ppo:CartPole-v1 --seeds 0 --zoo-threads 1 --no-write
    python bench/vs_zoo.py --rows dqn:CartPole-v1,sac:Pendulum-v1 --seeds 0 --steps 3000 --eval-every 1000 --no-write

Why the Zoo is slow on a shared machine (a first PPO CartPole seed 0 on a loaded machine: lab 229 s, the Zoo
602 s): threads. rl_zoo3/train.py:35 defaults --num-threads to -1 and train.py:193-197 calls
torch.set_num_threads only for a positive value, so the Zoo trains with torch's default (one intra-op thread per
core, 2 here) while lab's agents use 1; with other processes on the cores, two OpenMP threads on every small
minibatch wait on each other. Measured here (2026-12-03, load average ~3.5 from other jobs), the Zoo's PPO
CartPole-v1 seed 0, 20,000 steps, 5 episodes every 4,000, alternating: 115 s and 141 s with torch's default,
19.0 s and 20.3 s with --num-threads 1 (6-7x, as for lab's own agents in BENCHMARKS.md section 9, "Torch threads
per plugin kind"; the thread count also changes the float sums, so the same seed learns a little differently).
The rest is small or cuts the other way: the Zoo's default --eval-freq 25000 (train.py:46) evaluates less often
than lab's schedule (4 vs 25 evaluations per 1e5 steps; this bench passes the same F to both), Monitor writes
and flushes one CSV line per training episode (stable_baselines3/common/monitor.py:205-213, a few thousand
lines at most), and --n-eval-envs 1 plays the evaluation episodes one after another where lab batches min(K, 10)
of them (plugins/lab_agents/sb3.py:97). --zoo-threads 1 shows the Zoo without the threads.

The Zoo has no ppo_lstm entry for CartPole-v1 and its `default` entry fails there (policy MlpPolicy is unknown
to RecurrentPPO): the recurrent agent's row is the Zoo's own task for it, CartPoleNoVel-v1 (CartPole without its
velocities, registered by both the Zoo and lab), with the Zoo's tuned entry on both sides.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from functools import partial
from pathlib import Path

import yaml

LAB = [sys.executable, "-m", "lab.cli"]
ZOO = [sys.executable, "-m", "rl_zoo3.train"]
ZOO_HYPERPARAMS = Path(importlib.util.find_spec("rl_zoo3").origin).parent / "hyperparams"
SECTION = "## 12. lab vs the Zoo"
CARTPOLE, PENDULUM = "CartPole-v1", "Pendulum-v1"
# Every algorithm on CartPole-v1 if it takes Discrete actions (those taking both too), else on Pendulum-v1;
# plus the other classic-control and Box2D tasks for dqn and ppo.
DEFAULT_ROWS = ([(algo, CARTPOLE) for algo in ("dqn", "qrdqn", "ppo", "a2c", "trpo", "ars")]
                + [("ppo_lstm", "CartPoleNoVel-v1")]
                + [(algo, PENDULUM) for algo in ("sac", "td3", "ddpg", "tqc", "crossq")]
                + [(algo, env) for env in ("Acrobot-v1", "MountainCar-v0", "LunarLander-v3")
                   for algo in ("dqn", "ppo")])
# The quality bar on the best evaluation: gymnasium's reward_threshold, and for Pendulum-v1 (none in gymnasium)
# the usual -200.
BENCH_THRESHOLDS = {PENDULUM: -200.0, "CartPoleNoVel-v1": 475.0}
SIDES = ("zoo", "lab", "lab-solved")
VERSIONS = """
import json, gymnasium, rl_zoo3, sb3_contrib, stable_baselines3, torch
import lab.tracking.tracker
lab.tracking.tracker.client()
print(json.dumps({"rl_zoo3": rl_zoo3.__version__, "stable-baselines3": stable_baselines3.__version__,
                  "sb3-contrib": sb3_contrib.__version__, "torch": torch.__version__,
                  "gymnasium": gymnasium.__version__, "torch_default_threads": torch.get_num_threads()}))
"""


def zoo_entry(algo: str, env: str) -> tuple[str, dict]:
    """The Zoo's hyperparameters of ``algo`` on ``env``: its own entry, else its ``<Name>NoVel-<v>`` entry (the
    recurrent agents' tasks: the same env without velocities), which the bench hands to the Zoo with -conf."""
    table = yaml.safe_load((ZOO_HYPERPARAMS / f"{algo}.yml").read_text())
    if env in table:
        return env, table[env]
    name, _, version = env.rpartition("-")
    if f"{name}NoVel-{version}" in table:
        return f"{name}NoVel-{version}", table[f"{name}NoVel-{version}"]
    raise SystemExit(f"the Zoo has no {algo} entry for {env} in {ZOO_HYPERPARAMS / f'{algo}.yml'}")


def gymnasium_threshold(env: str) -> float | None:
    """The env's reward_threshold as gymnasium registers it (what lab's stop-when-solved uses); the Zoo's NoVel
    tasks keep their base task's."""
    import gymnasium

    base = env.replace("NoVel", "")
    return gymnasium.spec(base).reward_threshold if base in gymnasium.registry else None


def threshold(env: str) -> float | None:
    import gymnasium

    if env in BENCH_THRESHOLDS:
        return BENCH_THRESHOLDS[env]
    return gymnasium.spec(env).reward_threshold


def timed(command: list[str], cwd: Path,
          env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    return time.perf_counter() - started, run


def failure(run: subprocess.CompletedProcess) -> str:
    lines = [line for line in (run.stderr or run.stdout).strip().splitlines() if line.strip()]
    return f"exit {run.returncode}: {lines[-1] if lines else ''}"[:200]


def run_zoo(row: dict, seed: int, args: argparse.Namespace, tmp: Path) -> dict:
    import numpy as np

    folder = Path(tempfile.mkdtemp(dir=tmp, prefix=f"zoo-{row['algo']}-{row['env']}-{seed}-"))
    command = [*ZOO, "--algo", row["algo"], "--env", row["env"], "--seed", str(seed),
               "--eval-freq", str(row["eval_every"]), "--eval-episodes", str(args.eval_episodes),
               "--n-eval-envs", str(args.zoo_eval_envs), "-f", str(folder), "--device", "cpu", "--vec-env", "dummy"]
    command += ["-n", str(args.steps)] if args.steps else []
    command += ["--num-threads", str(args.zoo_threads)] if args.zoo_threads else []
    command += ["-conf", row["conf"]] if row["conf"] else []
    wall, run = timed(command, folder)
    if run.returncode != 0:
        return {"wall_s": wall, "error": failure(run)}
    found = sorted(folder.glob("**/evaluations.npz"))
    steps = re.findall(r"total_timesteps\s*\|\s*(\d+)", run.stdout)
    result = {"wall_s": wall, "steps": int(steps[-1]) if steps else None, "evaluations": 0,
              "final": None, "best": None}
    if found:
        with np.load(found[0]) as data:
            means = data["results"].mean(axis=1)
        result.update(evaluations=len(means), final=float(means[-1]) if len(means) else None,
                      best=float(means.max()) if len(means) else None)
    return result


def run_lab(row: dict, seed: int, args: argparse.Namespace, store: Path, *, solved: bool) -> dict:
    environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(store)}
    command = [*LAB, "run", f"plugin={row['algo']}", f"env={row['env']}", f"seed={seed}",
               f"eval_every={row['eval_every']}", f"eval_episodes={args.eval_episodes}",
               f"stop_when_solved={'true' if solved else 'false'}", "progress=false"]
    command += [f"steps={args.steps}"] if args.steps else []
    wall, run = timed(command, store, environment)
    if run.returncode != 0:
        return {"wall_s": wall, "error": failure(run)}
    found = re.search(r"run id:\s+(\w+)", run.stdout)
    target = re.search(r"solved \(threshold (\S+?)\)", run.stdout)  # printed only where lab has a threshold
    return {"wall_s": wall, **lab_metrics(store, found.group(1) if found else None),
            "lab_threshold": float(target.group(1)) if target else None}


def tracking_uri(store: Path) -> str:
    return f"sqlite:///{store / 'mlflow.db'}"


def lab_metrics(store: Path, run_id: str | None) -> dict:
    """Final and best evaluation, steps, budget, threads and solved of a lab run, from its store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(store))
    if run_id is None:  # the newest run in the store
        experiments = [e.experiment_id for e in client.search_experiments()]
        run_id = client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)[0].info.run_id
    run = client.get_run(run_id)
    history = sorted(client.get_metric_history(run_id, "eval/mean_return"), key=lambda m: (m.step, m.timestamp))
    values = [m.value for m in history]
    return {"run_id": run_id, "steps": int(run.data.tags.get("lab.step", 0)) or None,
            "budget": int(run.data.params["steps"]) if "steps" in run.data.params else None,
            "threads": run.data.params.get("threads"), "preset": run.data.tags.get("lab.preset"),
            "solved": run.data.tags.get("lab.solved") == "true", "evaluations": len(values),
            "final": values[-1] if values else None, "best": max(values) if values else None}


def rows_from(spec: str | None) -> list[tuple[str, str]]:
    if not spec:
        return DEFAULT_ROWS
    return [tuple(item.split(":", 1)) for item in spec.split(",") if item]  # type: ignore[misc]


def prepare(algo: str, env: str, args: argparse.Namespace, tmp: Path) -> dict:
    key, entry = zoo_entry(algo, env)
    conf = None
    if key != env:  # hand the Zoo its NoVel entry under this env's name
        conf = tmp / f"zoo-{algo}-{env}.yml"
        conf.write_text(yaml.safe_dump({env: entry}))
    zoo_budget = int(float(entry["n_timesteps"]))
    budget = args.steps or zoo_budget
    eval_every = args.eval_every or max(1000, budget // 25)
    n_envs = int(entry.get("n_envs", 1))
    notes = []
    if conf:
        notes.append(f"{algo} {env}: the Zoo has no {env} entry; its {key} entry is used (-conf), the Zoo's "
                     f"`default` entry does not run")
    if eval_every % n_envs:
        notes.append(f"{algo} {env}: the Zoo evaluates every {eval_every // n_envs * n_envs} steps "
                     f"({eval_every} // {n_envs} envs), lab every {eval_every}")
    return {"algo": algo, "env": env, "zoo_key": key, "conf": str(conf) if conf else None,
            "zoo_budget": zoo_budget, "eval_every": eval_every, "n_envs": n_envs, "notes": notes,
            "threshold": threshold(env)}


def spread(mean: float | None, std: float) -> str:
    return "-" if mean is None else f"{mean:.1f} ± {std:.1f}"


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def mean_std(values: list) -> tuple[float | None, float]:
    values = [v for v in values if v is not None]
    if not values:
        return None, 0.0
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def cell(result: dict | None, key: str, digits: int = 1) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return "failed"
    return fmt(result.get(key), digits)


def solved_time(result: dict | None) -> float | None:
    return result["wall_s"] if result and "error" not in result and result.get("solved") else None


def markdown(rows: list[dict], results: dict, meta: dict, args: argparse.Namespace) -> str:
    lines = [SECTION, "", f"    {meta['command']}", ""]
    fill = partial(textwrap.fill, width=115, break_long_words=False, break_on_hyphens=False)
    versions = meta["versions"]
    zoo_threads = (f"--num-threads {args.zoo_threads}" if args.zoo_threads
                   else f"torch's default, {versions.get('torch_default_threads')} here")
    lab_threads = sorted({str(r.get("threads")) for side in results.values() for r in side.values()
                          if r and "threads" in r})
    lines += [
        fill(f"Machine: `{platform.node()}`, {os.cpu_count()} cores ({platform.machine()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; torch {versions.get('torch')}, rl_zoo3 "
        f"{versions.get('rl_zoo3')}, stable-baselines3 {versions.get('stable-baselines3')}, sb3-contrib "
        f"{versions.get('sb3-contrib')}, gymnasium {versions.get('gymnasium')}. {meta['date']}, load average "
        f"{meta['load_start']:.2f} at the start, {meta['load_end']:.2f} at the end. Torch threads: lab "
        f"threads={', '.join(lab_threads) or '?'} (its agents' default), the Zoo {zoo_threads}."),
        "",
        fill(f"Each row: the Zoo (`rl_zoo3.train`, {args.zoo_eval_envs} eval env, dummy vec env, cpu), `lab run` with "
        "`stop_when_solved=false`, and `lab run` as a user types it (stops when solved), each a fresh process "
        f"timed whole, alternating in a rotated order. Budget: "
        f"{f'--steps {args.steps:,}' if args.steps else 'the Zoo n_timesteps'}"
        f"; {args.eval_episodes} deterministic evaluation episodes every *eval* env steps on both sides. "
        "*final*: the mean of the last evaluation; *best*: the highest evaluation mean; *to solved*: the wall "
        "seconds of the run that stops when solved (\"-\": no threshold in lab, \"not solved\": it ran its budget)."),
        "",
        "| algo | env | seed | budget Zoo / lab | eval | Zoo wall s | lab wall s | lab/Zoo | Zoo final | lab final "
        "| Zoo best | lab best | lab to solved s | solved/Zoo |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = (row["algo"], row["env"])
        for seed in args.seed_list:
            zoo, lab, fast = (results[side].get((*name, seed)) for side in SIDES)
            lab_budget = lab.get("budget") if lab else None
            budget = f"{args.steps or row['zoo_budget']:,} / {'-' if lab_budget is None else f'{lab_budget:,}'}"
            if fast is None or ("error" not in fast and fast["lab_threshold"] is None):
                to_solved = "-"
            elif "error" in fast:
                to_solved = "failed"
            else:
                to_solved = fmt(fast["wall_s"]) if fast.get("solved") else f"not solved ({fast['wall_s']:.1f})"
            zoo_wall = zoo["wall_s"] if zoo and "error" not in zoo else None
            lab_wall = lab["wall_s"] if lab and "error" not in lab else None
            lines.append(
                f"| {row['algo']} | {row['env']} | {seed} | {budget} | {row['eval_every']:,} | {cell(zoo, 'wall_s')} "
                f"| {cell(lab, 'wall_s')} | {fmt(ratio(lab_wall, zoo_wall), 2)} | {cell(zoo, 'final')} "
                f"| {cell(lab, 'final')} | {cell(zoo, 'best')} | {cell(lab, 'best')} | {to_solved} "
                f"| {fmt(ratio(solved_time(fast), zoo_wall), 2)} |")
    lines += [
        "",
        fill("Per row over the seeds: medians of the wall seconds and of the per-seed ratios. lab meets *full <= 1.0* "
        "when the median of lab/Zoo at the full budget is at most 1.0; *solved <= 0.5* when every seed solves and "
        "the median of (time to solved / the Zoo's full-budget wall) is at most 0.5; *quality* when lab's mean "
        "best over the seeds is at least the Zoo's mean best minus the Zoo's standard deviation over the seeds "
        "(0 with one seed); *threshold* when lab's best evaluation reaches the threshold (gymnasium's "
        "reward_threshold; Pendulum-v1 -200) on every seed (the Zoo's count alongside)."),
        "",
        "| algo | env | seeds | Zoo wall s | lab wall s | lab/Zoo | lab to solved s | solved/Zoo | Zoo best "
        "mean ± std | lab best mean ± std | full <= 1.0 | solved <= 0.5 | quality | threshold (Zoo, lab) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(summary_line(row, results, args.seed_list))
    notes = [note for row in rows for note in row["notes"]]
    failed = [f"{side} {algo} {env} seed {seed}: {r['error']}" for side, runs in results.items()
              for (algo, env, seed), r in runs.items() if r and "error" in r]
    budgets = [f"{row['algo']} {row['env']}: the Zoo's n_timesteps {row['zoo_budget']:,}, lab's preset "
               f"{lab['budget']:,}" for row in rows for seed in args.seed_list
               if (lab := results["lab"].get((row["algo"], row["env"], seed))) and "error" not in lab
               and not args.steps and lab.get("budget") not in (None, row["zoo_budget"])]
    extra = notes + sorted(set(budgets)) + failed
    if extra:
        lines += ["", *[f"- {line}" for line in extra]]
    return "\n".join(lines) + "\n"


def summary_line(row: dict, results: dict, seeds: list[int]) -> str:
    keys = [(row["algo"], row["env"], seed) for seed in seeds]
    zoo = [results["zoo"].get(k) for k in keys]
    lab = [results["lab"].get(k) for k in keys]
    fast = [results["lab-solved"].get(k) for k in keys]

    def ok(runs: list) -> list[dict]:
        return [r for r in runs if r and "error" not in r]

    pairs = [(z, b) for z, b in zip(zoo, lab, strict=True) if z and b and "error" not in z and "error" not in b]
    full = median([ratio(b["wall_s"], z["wall_s"]) for z, b in pairs])
    has_target = any(r["lab_threshold"] is not None for r in ok(fast) + ok(lab))
    solved_walls = [solved_time(f) for f in fast]
    solved_ratio = median([ratio(solved_time(f), z["wall_s"] if z and "error" not in z else None)
                           for z, f in zip(zoo, fast, strict=True)])
    all_solved = has_target and all(t is not None for t in solved_walls)
    zoo_mean, zoo_std = mean_std([r["best"] for r in ok(zoo)])
    lab_mean, lab_std = mean_std([r["best"] for r in ok(lab)])
    target = row["threshold"]

    def reached(runs: list) -> str:
        if target is None or not ok(runs):
            return "-"
        return f"{sum(1 for r in ok(runs) if r['best'] is not None and r['best'] >= target)}/{len(seeds)}"

    quality = "-" if zoo_mean is None or lab_mean is None else ("yes" if lab_mean >= zoo_mean - zoo_std else "no")
    lab_reached = reached(lab)
    return (f"| {row['algo']} | {row['env']} | {len(seeds)} | {fmt(median([r['wall_s'] for r in ok(zoo)]))} "
            f"| {fmt(median([r['wall_s'] for r in ok(lab)]))} | {fmt(full, 2)} | {fmt(median(solved_walls))} "
            f"| {fmt(solved_ratio, 2)} | {spread(zoo_mean, zoo_std)} | {spread(lab_mean, lab_std)} "
            f"| {'-' if full is None else ('yes' if full <= 1.0 else 'no')} "
            f"| {'-' if not has_target else ('yes' if all_solved and (solved_ratio or 1) <= 0.5 else 'no')} "
            f"| {quality} | {reached(zoo)}, {lab_reached}"
            f"{'' if lab_reached == '-' else (' yes' if lab_reached == f'{len(seeds)}/{len(seeds)}' else ' no')} |")


def write_section(path: Path, text: str) -> None:
    """Replace the section (its heading up to the next `## ` heading) in ``path``, or append it."""
    old = path.read_text() if path.exists() else ""
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        path.write_text(old.rstrip("\n") + "\n\n" + text if old else text)
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    path.write_text("".join(lines[:start]) + text + ("\n" + tail if tail else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", help="algo:env,... (default: every algorithm on CartPole-v1 or Pendulum-v1, "
                        "dqn and ppo also on Acrobot-v1, MountainCar-v0, LunarLander-v3)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--steps", type=int, help="override the budget on both sides (default: the Zoo's n_timesteps)")
    parser.add_argument("--eval-every", type=int,
                        help="env steps between evaluations (default max(1000, budget // 25))")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation (default 5)")
    parser.add_argument("--zoo-threads", type=int, help="pass --num-threads N to the Zoo (default: not passed, "
                        "torch's default as users run it)")
    parser.add_argument("--zoo-eval-envs", type=int, default=1, help="the Zoo's --n-eval-envs (default 1)")
    parser.add_argument("--no-write", action="store_true", help="print the markdown only")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "BENCHMARKS.md",
                        help="markdown file whose section 12 is written (default BENCHMARKS.md)")
    parser.add_argument("--json", type=Path, help="also write every run's results as JSON here")
    args = parser.parse_args()
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    command = "python bench/vs_zoo.py " + " ".join(sys.argv[1:])
    load_start = os.getloadavg()[0]
    results: dict[str, dict] = {side: {} for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="lab-vs-zoo-") as name:
        tmp = Path(name)
        store = tmp / "store"
        store.mkdir()
        rows = [prepare(algo, env, args, tmp) for algo, env in rows_from(args.rows)]
        # Untimed: creates lab's store, reads the versions, brings torch, SB3, the Zoo and MLflow into the page cache.
        warm = subprocess.run([sys.executable, "-c", VERSIONS], capture_output=True, text=True, check=True, cwd=store,
                              env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(store)})
        versions = json.loads(warm.stdout.strip().splitlines()[-1])
        # Where gymnasium has no threshold (Pendulum-v1) lab never stops early: no run of its own to time.
        lab_has_target = {(row["algo"], row["env"]): False for row in rows if gymnasium_threshold(row["env"]) is None}
        turn = 0
        for row in rows:
            for seed in args.seed_list:
                order = SIDES[turn % 3:] + SIDES[:turn % 3]
                turn += 1
                for side in order:
                    key = (row["algo"], row["env"], seed)
                    if side == "lab-solved" and lab_has_target.get(key[:2]) is False:
                        results[side][key] = None  # lab has no threshold here: it never stops early
                        continue
                    if side == "zoo":
                        result = run_zoo(row, seed, args, tmp)
                    else:
                        result = run_lab(row, seed, args, store, solved=side == "lab-solved")
                        if "error" not in result:
                            lab_has_target[key[:2]] = result["lab_threshold"] is not None
                    results[side][key] = result
                    print(json.dumps({"side": side, "algo": key[0], "env": key[1], "seed": seed,
                                      **{k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}}),
                          flush=True)
    meta = {"command": command, "versions": versions, "date": str(date.today()), "load_start": load_start,
            "load_end": os.getloadavg()[0]}
    text = markdown(rows, results, meta, args)
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows, "results": {
            side: [{"algo": k[0], "env": k[1], "seed": k[2], **(v or {})} for k, v in runs.items()]
            for side, runs in results.items()}}, indent=2))
    if not args.no_write:
        write_section(args.out, text)
        print(f"written: {args.out} ({SECTION})")


if __name__ == "__main__":
    main()
