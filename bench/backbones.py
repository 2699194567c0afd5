"""Quality benchmark of the backbones on digits: test accuracy of the default preset, seed after seed,
next to scikit-learn references measured on the very same split.

    python bench/backbones.py --seeds 0 1 2

Each lab row is `lab run plugin=P data=D seed=S` in a fresh process (the default preset), against a temporary
store; *test accuracy* is the best (by validation accuracy) checkpoint on the held-out test split.
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

JOBS = [("perceptron", "digits", 0.93), ("mlp", "digits", 0.97), ("cnn", "digits", 0.985),
        ("lstm", "digits_rows", 0.97), ("gru", "digits_rows", 0.97), ("transformer", "digits_rows", 0.96)]


def lab_run(plugin: str, data: str, seed: int, store: Path) -> tuple[float, float]:
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lab.cli", "run", f"plugin={plugin}", f"data={data}", f"seed={seed}",
                          "progress=false"], capture_output=True, text=True, env=environment, cwd=store)
    wall = time.perf_counter() - started
    match = re.search(r"test \(best model\): accuracy ([\d.]+)", out.stdout)
    if out.returncode or not match:
        raise RuntimeError(f"{plugin} {data} seed {seed} failed: {out.stderr.strip()[-300:]}")
    return float(match.group(1)), wall


def sklearn_references(seeds: list[int]) -> list[tuple[str, list[float], list[float]]]:
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    from lab.core.loading import load_registry

    data = load_registry().load_dataset("digits")
    x_train = data.x_train.reshape(len(data.x_train), -1)
    x_test = data.x_test.reshape(len(data.x_test), -1)
    rows = []
    references = (("scikit-learn SVC (rbf, defaults)", lambda s: SVC()),
                  ("scikit-learn MLPClassifier (defaults)", lambda s: MLPClassifier(max_iter=1000, random_state=s)))
    for name, make in references:
        scores, walls = [], []
        for seed in seeds:
            started = time.perf_counter()
            model = make(seed).fit(x_train, data.y_train)
            scores.append(float((model.predict(x_test) == data.y_test).mean()))
            walls.append(time.perf_counter() - started)
        rows.append((name, scores, walls))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="*", help="plugins to run (default: all)")
    args = parser.parse_args()
    print(f"{platform.node()} ({os.cpu_count()} cores), {date.today()}; digits split: 1257 train / 270 val / "
          "270 test (split seed 0)")
    print("| model | data | target | test accuracy per seed | min | wall s per seed |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        for plugin, data, target in JOBS:
            if args.only and plugin not in args.only:
                continue
            results = [lab_run(plugin, data, seed, Path(tmp)) for seed in args.seeds]
            scores = [score for score, _ in results]
            verdict = "meets" if min(scores) >= target else "misses"
            print(f"| lab {plugin} | {data} | >= {target} ({verdict}) | {', '.join(f'{s:.4f}' for s in scores)} "
                  f"| {min(scores):.4f} | {', '.join(f'{w:.1f}' for _, w in results)} |", flush=True)
    for name, scores, walls in sklearn_references(args.seeds):
        print(f"| {name} | digits | reference | {', '.join(f'{s:.4f}' for s in scores)} | {min(scores):.4f} "
              f"| {', '.join(f'{w:.1f}' for w in walls)} (fit only) |")


if __name__ == "__main__":
    main()
