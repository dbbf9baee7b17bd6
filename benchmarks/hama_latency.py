"""HAMA / MADDPG decision latency for one env of N agents on one CPU thread (default sizes:
hidden 256, the seed's), on a community_50-shaped spec: 24 local features, a 3 × 3 forecast,
3 modes + 2 continuous dimensions, 3 groups, 9 neighbours (one feeder of 10).

    python benchmarks/hama_latency.py [--agents 50] [--repeats 200] [--hidden 256]
"""

from __future__ import annotations

import argparse
import time

import torch

from gridmarl.controllers.hama import HAMA, HAMAConfig
from gridmarl.controllers.maddpg import MADDPG
from gridmarl.core.types import AgentSpec, Observation


def spec_of(n: int) -> AgentSpec:
    """Feeders of 10 in index order (everyone sees the other 9 of its feeder), 3 groups."""
    nb = torch.tensor(
        [[j for j in range(10 * (i // 10), 10 * (i // 10) + 10) if j != i] for i in range(n)]
    )
    return AgentSpec(
        n_agents=n,
        local_dim=24,
        forecast_len=3,
        forecast_dim=3,
        state_dim=25,
        global_dim=8,
        n_discrete=3,
        n_continuous=2,
        groups=torch.arange(n) % 3,
        neighbors=nb,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=256, help="MLP width (seed: 256)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    spec = spec_of(args.agents)
    n = args.agents
    obs = Observation(
        local=torch.randn(1, n, 24),
        forecast=torch.randn(1, n, 3, 3),
        state=torch.randn(1, n, 25),
        global_=torch.randn(1, 8),
        action_mask=torch.ones(1, n, 3, dtype=torch.bool),
    )
    for cls in (HAMA, MADDPG):
        ctrl = cls(spec, HAMAConfig(hidden=args.hidden), "cpu", 0)
        for _ in range(10):
            ctrl.act(obs)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ctrl.act(obs)
            times.append(time.perf_counter() - t0)
        times.sort()
        print(
            f"{cls.name}: N={n} median {1e3 * times[len(times) // 2]:.2f} ms, "
            f"p10 {1e3 * times[len(times) // 10]:.2f} ms per decision (1 thread)"
        )


if __name__ == "__main__":
    main()
