"""A run stopped by real signals at random moments and resumed ends bit-identical (CPU) to one never stopped.

Each case trains once without interruption, then again with SIGINT/SIGTERM sent at random moments of training,
resuming after each with ``resume=<run id>`` until the budget is done. The final weights and the evaluation curve
must match exactly. To land in training whatever the machine's speed, a moment is drawn after the interrupted
process has written a new periodic checkpoint (``checkpoint_every``, which both runs have): a random wait of up
to a second from there. The test insists that at least two signals were checkpointed at a boundary inside the
budget, trying more sessions if a signal came too late.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

CASES = {
    "mlp": ["plugin=mlp", "data=digits", "steps=30000", "eval_every=6000", "checkpoint_every=2000"],
    "vae": ["plugin=vae", "data=digits", "steps=16000", "eval_every=4000", "checkpoint_every=1000",
            "eval_samples=200", "iw_samples=10"],
    "ppo": ["plugin=ppo", "env=CartPole", "steps=8000", "eval_every=2000", "checkpoint_every=512",
            "eval_episodes=2", "gif=false"],
    "dqn": ["plugin=dqn", "env=CartPole", "steps=5000", "eval_every=1000", "checkpoint_every=512",
            "eval_episodes=2", "gif=false"],
}
WANTED_INTERRUPTS = 2
MOST_SESSIONS = 5


def lab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lab.cli", "run", *args, "progress=false"]


def runs_by_name(client) -> dict[str, str]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return {run.info.run_name: run.info.run_id for run in client.search_runs(experiments)}


def final_state(client, run_id: str, destination: Path, score: str) -> tuple[dict[str, np.ndarray], list]:
    folder = Path(client.download_artifacts(run_id, "model/final", str(destination)))
    weights = {f"{file.name}/{key}": value for file in sorted(folder.glob("*.safetensors"))
               for key, value in load_file(file).items()}
    curve = [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, score), key=lambda m: m.step)]
    return weights, curve


def interrupted_session(command: list[str], checkpoints: Path, seen: set[str], wait: float,
                        signum: int) -> tuple[int, str]:
    """Start ``command``; once it has written a checkpoint not in ``seen``, wait ``wait`` seconds and signal it."""
    def written() -> set[str]:
        return {path.name for path in checkpoints.glob("*/*/artifacts/checkpoints/step-*")}

    seen |= written()  # the last session's, and the one its interrupt wrote
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        if written() - seen:
            time.sleep(wait)
            process.send_signal(signum)
            break
        time.sleep(0.05)
    _, err = process.communicate(timeout=600)
    return process.returncode, err


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_signals_at_random_moments_then_resume_end_bit_identical(case: str, client, store: Path, tmp_path: Path):
    args = [*CASES[case], "seed=3", "threads=1"]
    score = "eval/" + ("mean_return" if case in ("ppo", "dqn") else "score")
    reference = subprocess.run(lab_command(*args, "run_name=reference"), capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    reference_id = runs_by_name(client)["reference"]
    shutil.rmtree(next((store / "artifacts").glob(f"*/{reference_id}/artifacts/checkpoints")))  # not watched

    draw = random.Random(f"{case}-moments")
    command = lab_command(*args, "run_name=interrupted")
    checkpoints_inside, run_id, sessions, seen = 0, None, [], set()
    for session in range(MOST_SESSIONS):
        if checkpoints_inside >= WANTED_INTERRUPTS:
            break
        signum = (signal.SIGINT, signal.SIGTERM)[session % 2]
        code, err = interrupted_session(command, store / "artifacts", seen, draw.uniform(0, 1), signum)
        sessions.append((code, err.strip().splitlines()[-1:] if err.strip() else []))
        if run_id is None:
            run_id = runs_by_name(client).get("interrupted")
            if run_id is None:  # stopped before the run existed: start afresh
                continue
            command = lab_command(f"resume={run_id}")
        if code == 0:  # finished before the signal: nothing left to stop
            break
        assert code in (130, 143, -signum), f"session {session} exited {code}: {err[-2000:]}"
        assert "Traceback" not in err, err[-3000:]
        if "saved, run marked KILLED" in err:
            checkpoints_inside += 1
    if code != 0:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert finished.returncode == 0, finished.stderr[-2000:]
    assert checkpoints_inside >= WANTED_INTERRUPTS, f"too few signals landed in training: {sessions}"

    assert client.get_run(run_id).info.status == "FINISHED"
    expected = final_state(client, runs_by_name(client)["reference"], tmp_path / "reference", score)
    resumed = final_state(client, run_id, tmp_path / "resumed", score)
    assert expected[0].keys() == resumed[0].keys()
    different = [key for key in expected[0] if not np.array_equal(expected[0][key], resumed[0][key])]
    assert not different, f"weights differ after {sessions}: {different[:5]}"
    assert expected[1] == resumed[1], "the evaluation curve differs"
    if os.environ.get("LAB_SHOW_SESSIONS"):
        print(sessions)
