"""Inference latency of the MATPPO actor: one deterministic decision for all agents of a
community (``act`` on a ``B = 1`` observation, float64 env tensors in, actions out).

    python benchmarks/matppo_latency.py                          # N=50, CPU, 1 thread
    python benchmarks/matppo_latency.py --agents 200 \
        --checkpoint data/checkpoints/community_50_matppo.pt

Target: <= 5 ms for 50 agents on CPU.  Reports the median and 95th percentile over ``--reps``
calls after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gridmarl.config import load_scenario
from gridmarl.controllers.matppo import MATPPO
from gridmarl.energy.data import build_community
from gridmarl.energy.env import CommunityEnv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/community_50.yaml")
    ap.add_argument("--agents", type=int, default=None, help="community.prosumers override")
    ap.add_argument("--checkpoint", default=None, help="default: untrained weights")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--set", action="append", default=[], help="scenario override KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    over = [*args.set, *([f"community.prosumers={args.agents}"] if args.agents else [])]
    scenario = load_scenario(args.scenario, over)
    env = CommunityEnv(build_community(scenario, "evaluate"), num_envs=1, dtype=torch.float64)
    obs = env.reset(seed=0)
    ctrl = (
        MATPPO.from_checkpoint(args.checkpoint, env.spec) if args.checkpoint else MATPPO(env.spec)
    )
    for _ in range(50):
        ctrl.act(obs)
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        ctrl.act(obs)
        times.append(1e3 * (time.perf_counter() - t0))
    times.sort()
    print(
        f"MATPPO act, N={env.spec.n_agents}, threads={args.threads}: median "
        f"{statistics.median(times):.3f} ms, p95 {times[int(0.95 * len(times))]:.3f} ms "
        f"over {args.reps} calls"
    )


if __name__ == "__main__":
    main()
