"""Quality benchmark of the generators: the default preset of each on digits, moons and swiss_roll, seed after
seed, judged on the test split next to the floor and ceiling that the run itself reports.

    python bench/generators.py --seeds 0 1 2
    python bench/generators.py --seeds 0 --only diffusion --data digits

Each row is `lab run plugin=P data=D seed=S` in a fresh process against a temporary store. The targets are
issue 4's:

- vae on (binarized) digits: test importance-weighted NLL <= 0.8 x the independent-pixel model's NLL, and the
  test -ELBO below that NLL;
- gan and diffusion on digits: the Frechet distance closes >= 80% of the gap from the ceiling (independent
  pixels) to the floor (real training images); for diffusion also precision >= 0.7 and recall >= 0.5;
- every generator on moons and swiss_roll: MMD^2 <= 1/5 of a single Gaussian fit's;
- every preset finishes within 10 minutes.

*to target* is the wall time from the run's start to the first evaluation whose validation metrics meet the
same target (against validation-split baselines computed here; for the VAE the -ELBO stands in for the NLL it
bounds, so that time is an upper bound).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

JOBS = [("vae", "digits"), ("gan", "digits"), ("diffusion", "digits"),
        *[(plugin, data) for data in ("moons", "swiss_roll") for plugin in ("vae", "gan", "diffusion")]]
LIMIT_S = 600.0


def lab_run(plugin: str, data: str, seed: int, store: Path) -> tuple[str, dict[str, float], float]:
    """Run the default preset; return the run id, its test metrics and the wall time of the whole command."""
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lab.cli", "run", f"plugin={plugin}", f"data={data}", f"seed={seed}",
                          "progress=false"], capture_output=True, text=True, env=environment, cwd=store)
    wall = time.perf_counter() - started
    run_id = re.search(r"run id:\s+(\w+)", out.stdout)
    if out.returncode or not run_id:
        raise RuntimeError(f"{plugin} {data} seed {seed} failed: {out.stderr.strip()[-300:]}")
    from mlflow import MlflowClient

    run = MlflowClient(environment["MLFLOW_TRACKING_URI"]).get_run(run_id.group(1))
    tests = {key.removeprefix("test/"): value for key, value in run.data.metrics.items() if key.startswith("test/")}
    return run_id.group(1), tests, wall


def verdict(plugin: str, data: str, test: dict[str, float]) -> tuple[str, bool]:
    """The acceptance figure of a run's test metrics, and whether it meets the target."""
    if data == "digits" and plugin == "vae":
        ratio = test["iw_nll"] / test["baseline_nll"]
        return (f"IW-NLL {test['iw_nll']:.2f} / -ELBO {test['neg_elbo']:.2f} nats vs independent pixels "
                f"{test['baseline_nll']:.2f} (ratio {ratio:.2f})"), ratio <= 0.8 and test["neg_elbo"] < test[
                    "baseline_nll"]
    if data == "digits":
        met = test["fd_gap_closed"] >= 0.8
        if plugin == "diffusion":
            met = met and test["precision"] >= 0.7 and test["recall"] >= 0.5
        return (f"FD {test['fd']:.1f} (floor {test['fd_floor']:.1f}, ceiling {test['fd_ceiling']:.0f}; gap closed "
                f"{test['fd_gap_closed']:.1%}), precision {test['precision']:.2f}, recall {test['recall']:.2f}"), met
    ratio = test["mmd2_ratio_to_ceiling"]
    return f"MMD^2 {test['mmd2']:.5f} vs Gaussian {test['mmd2_ceiling']:.5f} (ratio {ratio:.3f})", ratio <= 0.2


def validation_target(plugin: str, data: str) -> Callable[[dict[str, float]], bool]:
    """The same target on the validation split, for the evaluations logged during a run."""
    import numpy as np

    from lab import api
    from lab.core.loading import load_registry

    dataset = load_registry().load_dataset(data)
    if data == "digits" and plugin == "vae":
        binary = lambda x: (np.asarray(x) >= 0.5).astype(np.float32)  # noqa: E731
        baseline = api.independent_bernoulli_nll(binary(dataset.x_train), binary(dataset.x_val))
        return lambda m: m["neg_elbo"] <= 0.8 * baseline
    if data == "digits":
        base = api.SampleJudge(dataset).baselines("val", 1000)

        def closes(m: dict[str, float]) -> bool:
            closed = (base["fd_ceiling"] - m["fd"]) / (base["fd_ceiling"] - base["fd_floor"]) >= 0.8
            return closed and (plugin != "diffusion" or (m["precision"] >= 0.7 and m["recall"] >= 0.5))

        return closes
    ceiling = api.SampleJudge(dataset).baselines("val", 1000)["mmd2_ceiling"]
    return lambda m: m["mmd2"] <= 0.2 * ceiling


def time_to_target(store: Path, run_id: str, meets: Callable[[dict[str, float]], bool]) -> tuple[int, float] | None:
    """(examples, seconds since the run started) of the first evaluation meeting the target, or None."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    run = client.get_run(run_id)
    names = [key for key in run.data.metrics if key.startswith("eval/")]
    by_step: dict[int, dict[str, Any]] = {}
    for name in names:
        for point in client.get_metric_history(run_id, name):
            entry = by_step.setdefault(point.step, {"time": point.timestamp})
            entry[name.removeprefix("eval/")] = point.value
            entry["time"] = max(entry["time"], point.timestamp)
    for step in sorted(by_step):
        if meets(by_step[step]):
            return step, (by_step[step]["time"] - run.info.start_time) / 1000
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="*", help="plugins to run (default: all)")
    parser.add_argument("--data", nargs="*", help="datasets to run (default: digits, moons, swiss_roll)")
    args = parser.parse_args()
    print(f"{platform.node()} ({os.cpu_count()} cores), {date.today()}; test split of each dataset (split seed 0)")
    print("| model | data | seed | test result | target | wall s | to target (examples, s) |")
    print("|---|---|---|---|---|---|---|")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        store = Path(tmp)
        for plugin, data in JOBS:
            if (args.only and plugin not in args.only) or (args.data and data not in args.data):
                continue
            meets = validation_target(plugin, data)
            for seed in args.seeds:
                run_id, test, wall = lab_run(plugin, data, seed, store)
                figure, met = verdict(plugin, data, test)
                met = met and wall <= LIMIT_S
                failures += not met
                reached = time_to_target(store, run_id, meets)
                when = f"{reached[0]:,}, {reached[1]:.0f}" if reached else "not reached on val"
                print(f"| {plugin} | {data} | {seed} | {figure} | {'meets' if met else 'MISSES'} | {wall:.0f} "
                      f"| {when} |", flush=True)
    print(f"\n{failures} run(s) miss their target" if failures else "\nevery run meets its target")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
