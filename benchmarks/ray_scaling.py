"""Local Ray scaling: throughput with K workers against 1 worker, on this machine.

    python benchmarks/ray_scaling.py                         # K = 1 2, 3 repetitions
    python benchmarks/ray_scaling.py --workers 1 2 4 --repeats 5 --horizon-s 600

Two workloads, each in one Ray session started with ``--cpus`` CPUs (default: this machine's):

* **simulator workers** (``train.workers: {backend: ray}``): ``TrafficEnv`` of the shipped
  6 x 6 SUMO grid with K simulations as Ray actors, random phases, one episode of
  ``--horizon-s``; env-steps/s = K x decisions / wall time (reset excluded).  The local process
  workers (``backend: process``) run beside it in the same repetition, as the baseline.
* **sweep cells**: ``gridmarl.sweep.run_cell``-sized tasks (a routing ``simulate`` of the IBM
  scenario, one 100-step episode, one controller), 2·K tasks with at most K in flight; cells/s.

Efficiency of K = throughput(K) / (K x throughput(1)), each repetition against the K = 1 run of
the same repetition (a shared machine's drifting speed cancels); the table gives the median
over repetitions and the load average before the run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def traffic_rate(sc, k: int, backend: str) -> float:
    """Env-steps/s of one episode of ``k`` simulations on ``backend`` (reset excluded)."""
    from gridmarl.config import WorkersConfig
    from gridmarl.core.types import Action
    from gridmarl.traffic.env import TrafficEnv

    env = TrafficEnv(sc, num_envs=k, in_process=False, workers=WorkersConfig(backend=backend))
    try:
        env.reset(seed=sc.seed)
        gen = torch.Generator().manual_seed(0)
        n = env.spec.n_agents
        t0 = time.perf_counter()
        for _ in range(env.episode_len):
            act = torch.randint(0, env.n_phases, (k, n), generator=gen)
            env.step(Action(discrete=act, continuous=torch.zeros(k, n, 0)))
        return k * env.episode_len / (time.perf_counter() - t0)
    finally:
        env.close()


def routing_cell(seed: int) -> float:
    """One sweep-cell-sized unit of work: a routing simulate (one controller); wall [s]."""
    from gridmarl.config import load_scenario
    from gridmarl.routing.simulate import simulate

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sc = load_scenario(
        ROOT / "scenarios" / "routing_ibm.yaml",
        [
            f"seed={seed}",
            "evaluation.episodes=1",
            "traffic.profile=[{steps: 100, rate_pkt_per_step: 2.0}]",
            "controllers=[{name: shortest_path_distance}]",
        ],
    )
    simulate(sc)
    return time.perf_counter() - t0


def cells_rate(ray, task, k: int) -> float:
    """Cells per second with 2·k cells, at most ``k`` in flight."""
    todo, pending, done = list(range(2 * k)), [], 0
    t0 = time.perf_counter()
    while todo or pending:
        while todo and len(pending) < k:
            pending.append(task.remote(todo.pop()))
        ready, pending = ray.wait(pending, num_returns=1)
        ray.get(ready)
        done += 1
    return done / (time.perf_counter() - t0)


def median_eff(rates: dict[int, list[float]], k: int) -> tuple[float, float]:
    """Median throughput of K and median efficiency vs K = 1 (same repetition)."""
    eff = [r / (k * r1) for r, r1 in zip(rates[k], rates[1], strict=True)]
    return statistics.median(rates[k]), statistics.median(eff)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="K values")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--horizon-s", type=int, default=600, help="traffic episode [s]")
    ap.add_argument("--cpus", type=int, default=None, help="CPUs the local Ray offers")
    ap.add_argument("--skip", choices=["traffic", "cells"], action="append", default=[])
    args = ap.parse_args()
    ks = sorted(set([1, *args.workers]))
    torch.set_num_threads(1)
    from gridmarl.config import load_scenario
    from gridmarl.core.cluster import connect
    from gridmarl.core.training import available_cores

    load = os.getloadavg()
    cpus = args.cpus or available_cores()
    t_start = time.perf_counter()
    ray = connect(num_cpus=max(cpus, max(ks)))
    startup = time.perf_counter() - t_start
    sc = load_scenario(
        ROOT / "scenarios" / "traffic_grid_6x6.yaml", [f"traffic.horizon_s={args.horizon_s}"]
    )
    task = ray.remote(num_cpus=1)(routing_cell)
    rates: dict[str, dict[int, list[float]]] = {"process": {}, "ray": {}, "cells": {}}
    for _ in range(args.repeats):
        for k in ks:
            if "traffic" not in args.skip:
                for backend in ("process", "ray"):
                    rates[backend].setdefault(k, []).append(traffic_rate(sc, k, backend))
            if "cells" not in args.skip:
                # k warm workers (imports done), as in a running sweep
                ray.get([task.remote(0) for _ in range(k)])
                rates["cells"].setdefault(k, []).append(cells_rate(ray, task, k))
    print(
        f"cores {available_cores()}, Ray CPUs {cpus}, load average before "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, Ray start {startup:.1f} s, "
        f"{args.repeats} repetitions, traffic horizon {args.horizon_s} s"
    )
    print("| workload | K | throughput (median) | efficiency vs K = 1 (median) |")
    print("|---|---|---|---|")
    names = {
        "process": ("traffic, process workers (baseline)", "env-steps/s"),
        "ray": ("traffic, Ray actor workers", "env-steps/s"),
        "cells": ("sweep cells as Ray tasks", "cells/s"),
    }
    for key, (label, unit) in names.items():
        if not rates[key]:
            continue
        for k in ks:
            rate, eff = median_eff(rates[key], k)
            print(f"| {label} | {k} | {rate:,.2f} {unit} | {eff:.0%} |")


if __name__ == "__main__":
    main()
