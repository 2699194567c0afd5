"""Tracking benchmark: what lab's MLflow tracking costs per run, against the real sqlite store.

In a temporary directory with MLFLOW_TRACKING_URI set to a sqlite store there, it times
  (a) one run's tracking on an existing store: Tracker.start (client, experiment lookup, create_run), logging
      the ~40 params of the PPO CartPole config (Tracker.log_params) and its config.yaml (Tracker.log_text),
      and Tracker.finish; both in a fresh process (what every `lab run` pays: --processes child processes,
      the first use of the store in the process included) and for further runs in a warm process (--runs);
  (b) metric logging: --metrics points through Tracker.log_metrics (buffered, sent in batches of 1000)
      against --per-call points through MLflow's one-call-per-point MlflowClient.log_metric;
  (c) creating a fresh store (first use of a new sqlite db: MLflow's schema creation and migrations);
  (d) what `lab run`'s training process itself pays with the tracking worker (lab.tracking.worker): spawning it,
      sending start/params/config, --metrics points, and waiting for finish, once the worker has had time to
      import mlflow (as it has while the trainer imports torch and builds its model).

    python bench/tracking_overhead.py --processes 3 --runs 10 --metrics 10000 --per-call 500

Prints markdown tables (median milliseconds, microseconds per metric point, speed-up) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

EXPERIMENT = "bench-tracking"


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def use_store(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{directory / 'mlflow.db'}"


def ppo_config() -> tuple[dict[str, Any], dict[str, str]]:
    """The params and tags `lab run plugin=ppo env=CartPole` logs."""
    from lab.core.config import resolve
    from lab.core.loading import load_registry
    from lab.training.build import run_tags as _tags

    config = resolve(load_registry(), {"plugin": "ppo", "env": "CartPole"})
    return config.as_dict(), _tags(config, "cpu")


def store_creation(root: Path, repeats: int) -> list[float]:
    from lab.tracking.tracker import client

    seconds = []
    for i in range(repeats):
        use_store(root / f"fresh-{i}")
        seconds.append(timed(client)[0])
    return seconds


STAGES = ("start", "log_params", "log_text", "finish")


def run_lifecycle(params: dict[str, Any], tags: dict[str, str], runs: int) -> dict[str, list[float]]:
    import yaml

    from lab.tracking.tracker import Tracker

    text = yaml.safe_dump(params, sort_keys=False)
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for _ in range(runs):
        seconds, tracker = timed(lambda: Tracker.start(EXPERIMENT, None, tags))
        times["start"].append(seconds)
        times["log_params"].append(timed(lambda t=tracker: t.log_params(params))[0])
        times["log_text"].append(timed(lambda t=tracker: t.log_text(text, "config.yaml"))[0])
        times["finish"].append(timed(lambda t=tracker: t.finish("FINISHED"))[0])
    return times


def child() -> None:
    """One run's tracking in this fresh process (MLFLOW_TRACKING_URI set by the parent); prints JSON."""
    import_s, _ = timed(lambda: __import__("mlflow"))
    params, tags = ppo_config()  # untimed: lab run resolves its config before the run starts
    times = run_lifecycle(params, tags, 1)
    print(json.dumps({"import_mlflow": import_s, **{stage: values[0] for stage, values in times.items()}}))


def fresh_processes(store: Path, processes: int) -> dict[str, list[float]]:
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    times: dict[str, list[float]] = {"import_mlflow": [], **{stage: [] for stage in STAGES}}
    for _ in range(processes):
        out = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True,
                             check=True, env=environment, cwd=store)
        for key, value in json.loads(out.stdout.strip().splitlines()[-1]).items():
            times[key].append(value)
    return times


def metrics_batched(tags: dict[str, str], points: int, keys: int) -> float:
    """Seconds for ``points`` (a multiple of ``keys``) metric points logged as ``keys`` metrics per step,
    the final flush included."""
    from lab.tracking.tracker import Tracker

    tracker = Tracker.start(EXPERIMENT, None, tags)
    names = [f"train/metric_{k}" for k in range(keys)]
    steps = points // keys

    def log() -> None:
        for step in range(steps):
            tracker.log_metrics({name: step * 0.001 + k for k, name in enumerate(names)}, step)
        tracker.flush()

    seconds = timed(log)[0]
    tracker.finish("FINISHED")
    return seconds


def metrics_per_call(tags: dict[str, str], points: int, keys: int) -> float:
    """Seconds for ``points`` metric points through MlflowClient.log_metric, one call (one commit) each."""
    from lab.tracking.tracker import Tracker

    tracker = Tracker.start(EXPERIMENT, None, tags)
    names = [f"train/metric_{k}" for k in range(keys)]

    def log() -> None:
        for i in range(points):
            step, k = divmod(i, keys)
            tracker.client.log_metric(tracker.run_id, names[k], step * 0.001 + k, step=step)

    seconds = timed(log)[0]
    tracker.finish("FINISHED")
    return seconds


def remote_parent_side(params: dict[str, Any], tags: dict[str, str], points: int, keys: int) -> dict[str, float]:
    """Seconds the training process spends on tracking when the work is done by the tracking worker."""
    import yaml

    from lab.tracking.worker import RemoteTracker

    text = yaml.safe_dump(params, sort_keys=False)
    names = [f"train/metric_{k}" for k in range(keys)]
    spawn_s, tracker = timed(RemoteTracker)
    time.sleep(3.0)  # the trainer imports torch and builds its model meanwhile (not tracking time)

    def start() -> None:
        tracker.start(EXPERIMENT, None, tags)
        tracker.log_params(params)
        tracker.log_text(text, "config.yaml")

    start_s = timed(start)[0]

    def log() -> None:
        for step in range(points // keys):
            tracker.log_metrics({name: step * 0.001 + k for k, name in enumerate(names)}, step)
        tracker.flush()

    cpu_started = time.process_time()
    metrics_s = timed(log)[0]
    metrics_cpu_s = time.process_time() - cpu_started
    finish_s = timed(lambda: tracker.finish("FINISHED"))[0]
    return {"spawn": spawn_s, "start": start_s, "metrics": metrics_s, "metrics_cpu": metrics_cpu_s,
            "finish": finish_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=3, help="fresh processes each tracking one run (a)")
    parser.add_argument("--runs", type=int, default=10, help="runs in a warm process (a)")
    parser.add_argument("--metrics", type=int, default=10_000, help="metric points through Tracker (b)")
    parser.add_argument("--per-call", type=int, default=500, help="metric points through log_metric (b)")
    parser.add_argument("--keys", type=int, default=10, help="metrics per logged step (b)")
    parser.add_argument("--stores", type=int, default=3, help="fresh stores created (c)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    if args.metrics % args.keys:
        parser.error("--metrics must be a multiple of --keys")

    import mlflow

    for name in ("mlflow", "alembic"):  # schema-creation INFO lines would clutter the table
        logging.getLogger(name).setLevel(logging.WARNING)
    params, tags = ppo_config()
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        os.chdir(tmp)
        creation = store_creation(Path(tmp), args.stores)
        use_store(Path(tmp) / "store")
        from lab.tracking.tracker import Tracker, client, experiment_id

        experiment_id(client(), EXPERIMENT)  # an existing store and experiment, as after a user's first run
        fresh = fresh_processes(Path(tmp) / "store", args.processes)
        Tracker.start(EXPERIMENT, None, tags).finish("FINISHED")  # warm: first queries of this process
        lifecycle = run_lifecycle(params, tags, args.runs)
        batched_s = metrics_batched(tags, args.metrics, args.keys)
        per_call_s = metrics_per_call(tags, args.per_call, args.keys)
        remote = remote_parent_side(params, tags, args.metrics, args.keys)
        os.chdir("/")

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.1f} (min {min(values) * 1000:.1f})"

    def total(times: dict[str, list[float]]) -> float:
        return sum(statistics.median(times[stage]) for stage in STAGES) * 1000

    batched_us = batched_s / args.metrics * 1e6
    per_call_us = per_call_s / args.per_call * 1e6
    print(f"\n{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), "
          f"{date.today()}")
    print(f"MLflow {mlflow.__version__}, sqlite store; {len(params)} params, {len(tags)} tags; medians "
          f"(and min) over {args.processes} fresh processes, {args.runs} runs in a warm process, "
          f"{args.stores} fresh stores")
    print("| what | fresh process, ms | warm process, ms | notes |")
    print("|---|---|---|---|")
    print(f"| import mlflow | {ms(fresh['import_mlflow'])} | | once per process |")
    notes = {"start": "existing store: client, experiment lookup, create_run",
             "log_params": f"{len(params)} params, one log_batch", "log_text": "config.yaml artifact",
             "finish": "flush + set_terminated"}
    for stage in STAGES:
        print(f"| (a) Tracker.{stage} | {ms(fresh[stage])} | {ms(lifecycle[stage])} | {notes[stage]} |")
    print(f"| (a) one run's tracking | {total(fresh):.1f} | {total(lifecycle):.1f} "
          "| sum of the medians above, import excluded |")
    print(f"| (c) create a fresh store | {ms(creation)} | "
          "| first use of a new sqlite db: schema + migrations (once per store) |")
    print("\n| metric logging | points | total s | us per point | speed-up |")
    print("|---|---|---|---|---|")
    print(f"| Tracker.log_metrics (buffered, batches of 1000) | {args.metrics:,} | {batched_s:.3f} "
          f"| {batched_us:.1f} | {per_call_us / batched_us:.0f}x |")
    print(f"| MlflowClient.log_metric (one call per point) | {args.per_call:,} | {per_call_s:.3f} "
          f"| {per_call_us:.1f} | 1x |")
    print("\n| (d) the training process, tracking worker doing the work | ms | notes |")
    print("|---|---|---|")
    print(f"| spawn the worker | {remote['spawn'] * 1000:.1f} | it imports mlflow while the trainer starts up |")
    print(f"| start run + params + config.yaml | {remote['start'] * 1000:.1f} | sent, not waited for |")
    print(f"| {args.metrics:,} metric points, trainer CPU | {remote['metrics_cpu'] * 1000:.1f} "
          f"| {remote['metrics_cpu'] / args.metrics * 1e6:.1f} us per point: what training pays |")
    print(f"| {args.metrics:,} metric points, wall | {remote['metrics'] * 1000:.1f} "
          f"| {remote['metrics'] / args.metrics * 1e6:.1f} us per point when logging flat out (the pipe waits "
          "for the worker's MLflow writes) |")
    print(f"| finish (waited for) | {remote['finish'] * 1000:.1f} | flush + set_terminated in the worker |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "store_creation_s": creation, "fresh_process_s": fresh, "warm_process_s": lifecycle,
            "metrics": {"batched_points": args.metrics, "batched_s": batched_s,
                        "batched_us_per_point": batched_us, "per_call_points": args.per_call,
                        "per_call_s": per_call_s, "per_call_us_per_point": per_call_us,
                        "speed_up": per_call_us / batched_us, "keys_per_step": args.keys},
            "remote_parent_side_s": remote, "params": len(params), "tags": len(tags)}, indent=2))


if __name__ == "__main__":
    main()
