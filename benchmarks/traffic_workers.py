"""Parallel simulations: steps/s of ``TrafficEnv(num_envs=K)`` with K worker processes.

    python benchmarks/traffic_workers.py [scenario.yaml] [K ...] [--set key=value ...]

Reports env-steps per second (K × decision steps / wall time) and the scaling efficiency
relative to one worker.
"""

from __future__ import annotations

import sys
import time

import torch

from gridmarl.config import load_scenario
from gridmarl.core.types import Action
from gridmarl.traffic.env import TrafficEnv


def steps_per_s(sc, k: int) -> float:
    """Env-steps per second of one episode of ``k`` parallel simulations (reset excluded)."""
    env = TrafficEnv(sc, num_envs=k, in_process=False)
    try:
        env.reset(seed=sc.seed)
        n = env.spec.n_agents
        t0 = time.perf_counter()
        for t in range(env.episode_len):
            phase = (t // 3) % 2
            env.step(
                Action(
                    discrete=torch.full((k, n), phase, dtype=torch.long),
                    continuous=torch.zeros(k, n, 0),
                )
            )
        return k * env.episode_len / (time.perf_counter() - t0)
    finally:
        env.close()


def main(argv: list[str]) -> None:
    path = "scenarios/traffic_grid_6x6.yaml"
    ks, overrides = [], []
    for a in argv:
        if "=" in a:
            overrides.append(a)
        elif a.isdigit():
            ks.append(int(a))
        elif not a.startswith("--"):
            path = a
    sc = load_scenario(path, overrides)
    base = None
    for k in ks or [1, 2]:
        sps = steps_per_s(sc, k)
        base = base or sps
        print(
            f"K={k}: {sps:.1f} env-steps/s, {sps / base:.2f}x one worker "
            f"(efficiency {sps / base / k:.2f})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
