"""Parallel simulations: steps/s of ``TrafficEnv(num_envs=K)`` with K worker processes.

    python benchmarks/traffic_workers.py [scenario.yaml] [K ...] [key=value ...] [--repeats R]

Reports env-steps per second (K × decision steps / wall time) and the scaling efficiency
relative to one worker.  The K values run in turn, ``R`` times (default 3), and each
repetition's ratio is taken against the single-worker run of the same repetition, so that a
shared machine's drifting speed cancels; the summary line is the median over repetitions.
"""

from __future__ import annotations

import statistics
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
    repeats = 3
    if "--repeats" in argv:
        i = argv.index("--repeats")
        repeats = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
    for a in argv:
        if "=" in a:
            overrides.append(a)
        elif a.isdigit():
            ks.append(int(a))
        elif not a.startswith("--"):
            path = a
    sc = load_scenario(path, overrides)
    ks = ks or [1, 2]
    if ks[0] != 1:
        ks = [1, *ks]
    ratios: dict[int, list[float]] = {k: [] for k in ks}
    for r in range(repeats):
        base = None
        for k in ks:
            sps = steps_per_s(sc, k)
            base = base or sps
            ratios[k].append(sps / base)
            print(
                f"repeat {r}: K={k}: {sps:.1f} env-steps/s, {sps / base:.2f}x one worker "
                f"(efficiency {sps / base / k:.2f})",
                flush=True,
            )
    for k in ks[1:]:
        med = statistics.median(ratios[k])
        print(f"K={k}: median {med:.2f}x one worker, {repeats} repeats (efficiency {med / k:.2f})")


if __name__ == "__main__":
    main(sys.argv[1:])
