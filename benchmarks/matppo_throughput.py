"""MATPPO training throughput on community_50: agent-steps per second including the PPO
updates, and where the time goes (env step, policy forward in the rollout, loss forward,
backward + optimiser step).

    python benchmarks/matppo_throughput.py                      # CPU, 1 thread, 3 updates
    python benchmarks/matppo_throughput.py --threads 2 --updates 5
    python benchmarks/matppo_throughput.py --device cuda --num-envs 1024
    python benchmarks/matppo_throughput.py --set community.forecast.horizon_h=3

Data: the scenario's training window (``build_community(scenario, "train")``), random starts,
float32, the hyper-parameters of ``MATPPOConfig`` (``--num-envs`` overrides B).  The first
update is a warm-up and is not counted.  GPU timings are not synchronised per phase: only the
total is exact there.
"""

from __future__ import annotations

import argparse
import time

import torch

from gridmarl.config import load_scenario
from gridmarl.controllers.matppo import MATPPO, MATPPOConfig
from gridmarl.core.seeding import resolve_device
from gridmarl.energy.training import energy_env_factory

PHASES = ("time/env_s", "time/policy_forward_s", "time/update_forward_s", "time/update_backward_s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/community_50.yaml")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--updates", type=int, default=3)
    ap.add_argument("--num-envs", type=int, default=None)
    ap.add_argument("--set", action="append", default=[], help="scenario override KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    scenario = load_scenario(args.scenario, args.set)
    make = energy_env_factory(scenario, dev, scenario.seed)
    cfg = MATPPOConfig(num_envs=args.num_envs or scenario.train.num_envs)
    ctrl = MATPPO(make(1).spec, cfg, device=dev, seed=scenario.seed)
    rows: list[dict[str, float]] = []

    class Log:
        def log(self, step: int, metrics: dict[str, float]) -> None:
            rows.append({**metrics, "wall": time.perf_counter()})

    per_update = cfg.rollout_steps * cfg.num_envs * ctrl.spec.n_agents
    t0 = time.perf_counter()
    ctrl.train(make, per_update * (args.updates + 1), Log())
    timed = rows[1:]
    wall = timed[-1]["wall"] - rows[0]["wall"]
    total = per_update * len(timed)
    print(
        f"MATPPO on {scenario.name}: N={ctrl.spec.n_agents}, H={ctrl.spec.forecast_len}, "
        f"B={cfg.num_envs}, "
        f"T={cfg.rollout_steps}, epochs={cfg.epochs}, minibatches={cfg.minibatches}, "
        f"device={dev}, threads={args.threads}"
    )
    print(
        f"  {total:,} agent-steps in {wall:.1f} s -> {total / wall:,.0f} agent-steps/s "
        f"including updates ({len(timed)} timed updates, {time.perf_counter() - t0:.1f} s "
        "with warm-up)"
    )
    for k in PHASES:
        s = sum(r[k] for r in timed)
        print(
            f"  {k.removeprefix('time/').removesuffix('_s'):<18} {s:7.2f} s  "
            f"{100 * s / wall:5.1f} %"
        )


if __name__ == "__main__":
    main()
