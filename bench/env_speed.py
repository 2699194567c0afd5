"""Raw env speed: random-policy steps per second on one core, our games next to gymnasium's and ale-py's.

    python bench/env_speed.py                    # our three games, CartPole, LunarLander and Pong
    python bench/env_speed.py Snake Maze --steps 200000

Each env is made with ``gymnasium.make`` (its default wrappers: time limit, order enforcing, passive checker) and
stepped with ``env.action_space.sample()``, resetting at episode ends, in this one process pinned to one core.
Prints a markdown table for BENCHMARKS.md; the target for our games is >= 20,000 steps/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

DEFAULT_ENVS = ("Snake", "Maze", "Dock", "CartPole", "LunarLander", "Pong")
TARGET = 20_000


def steps_per_second(env_id: str, steps: int, seed: int = 0) -> tuple[float, int]:
    """(steps/s, episodes finished) over ``steps`` random steps."""
    import gymnasium

    env = gymnasium.make(env_id)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    episodes = 0
    started = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
            episodes += 1
    elapsed = time.perf_counter() - started
    env.close()
    return steps / elapsed, episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("envs", nargs="*", default=list(DEFAULT_ENVS), help="aliases or gymnasium ids")
    parser.add_argument("--steps", type=int, default=100_000, help="random steps per env (Atari: a tenth)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the acceptance target says
    from lab.core.loading import load_registry

    registry = load_registry()
    print(f"{platform.node()} ({os.cpu_count()} cores, pinned to one; {platform.processor() or platform.machine()}),"
          f" {date.today()}")
    print("| env | id | family | steps | episodes | steps/s | vs target |")
    print("|---|---|---|---|---|---|---|")
    for name in args.envs:
        env_id = registry.resolve_env(name)
        spec = registry.env_spec(env_id)
        family = spec.family if spec else "gymnasium"
        steps = args.steps // 10 if family == "atari" else args.steps
        speed, episodes = steps_per_second(env_id, steps)
        verdict = f"{speed / TARGET:.1f}x" if family == "lab" else "-"
        print(f"| {name} | {env_id} | {family} | {steps:,} | {episodes:,} | {speed:,.0f} | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
