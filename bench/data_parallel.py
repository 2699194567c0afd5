"""Data-parallel training: the same generator run with nproc=1 and nproc=2 (gloo on CPU), side by side.

    python bench/data_parallel.py                       # vae and gan on digits, default presets, seed 0
    python bench/data_parallel.py --jobs vae:moons --seeds 0 1

Both runs use the preset's batch_size as the global batch (nproc=2: half of every batch on each process,
gradients averaged), the same data order and the same number of examples, so the quality columns should agree
up to the noise draws; the wall-time ratio is what a second process buys on this machine.
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
from datetime import date
from pathlib import Path

QUALITY = {"digits": ("fd_gap_closed", "iw_nll"), "moons": ("mmd2_ratio_to_ceiling",)}


def lab_run(plugin: str, data: str, seed: int, nproc: int, store: Path) -> tuple[dict[str, float], float]:
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lab.cli", "run", f"plugin={plugin}", f"data={data}", f"seed={seed}",
                          f"nproc={nproc}", "progress=false"], capture_output=True, text=True, env=environment,
                         cwd=store)
    wall = time.perf_counter() - started
    run_id = re.search(r"run id:\s+(\w+)", out.stdout)
    if out.returncode or not run_id:
        raise RuntimeError(f"{plugin} {data} nproc={nproc} failed: {out.stderr.strip()[-300:]}")
    from mlflow import MlflowClient

    run = MlflowClient(environment["MLFLOW_TRACKING_URI"]).get_run(run_id.group(1))
    return {k.removeprefix("test/"): v for k, v in run.data.metrics.items() if k.startswith("test/")}, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", nargs="+", default=["vae:digits", "gan:digits"], help="plugin:data pairs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args()
    print(f"{platform.node()} ({os.cpu_count()} cores, {platform.machine()}), {date.today()}")
    print("| plugin | data | seed | nproc | test quality | wall s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for job in args.jobs:
        plugin, data = job.split(":")
        for seed in args.seeds:
            base = None
            for nproc in (1, 2):
                with tempfile.TemporaryDirectory(prefix="lab-dp-bench-") as tmp:
                    metrics, wall = lab_run(plugin, data, seed, nproc, Path(tmp))
                base = base or wall
                quality = ", ".join(f"{key} {metrics[key]:.4g}" for key in QUALITY.get(data, ()) if key in metrics)
                print(f"| {plugin} | {data} | {seed} | {nproc} | {quality} | {wall:.1f} | {base / wall:.2f}x |",
                      flush=True)


if __name__ == "__main__":
    main()
