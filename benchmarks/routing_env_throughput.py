"""Throughput of ``RoutingEnv`` against the per-packet reference simulator, same run.

    python benchmarks/routing_env_throughput.py                      # IBM, B=256, CPU
    python benchmarks/routing_env_throughput.py --device cuda --num-envs 4096

Both run full LToS episodes (300 steps: 1, 10/3, 1 pkt/step) under shortest path by hops, in
the same process.  The env is timed with its resets (arrival sampling) and its controller (a
table lookup on the observation); the reference with its policy function, on arrival schedules
drawn beforehand.  Env-steps/s = B x steps / s; agent-steps/s = env-steps/s x N.  The last line
splits the env's time into reset, controller and ``step`` [us per batched step] (without device
synchronisation, so only indicative on a GPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gridmarl.routing.env import RoutingEnv, rates_from_profile
from gridmarl.routing.reference import simulate_reference
from gridmarl.routing.rules import shortest_path_controller
from gridmarl.routing.topology import read_graphml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topology", default=str(ROOT / "data" / "topologies" / "Ibm.graphml"))
    ap.add_argument("--num-envs", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--episodes", type=int, default=2, help="timed env episodes")
    ap.add_argument("--ref-episodes", type=int, default=20, help="timed reference episodes")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument(
        "--pool-init", type=int, default=None, help="initial packet slots per env (env default)"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    r = measure(
        args.topology, args.num_envs, args.device, args.episodes, args.ref_episodes, args.pool_init
    )
    print(
        f"| topology | B | device | env env-steps/s | env agent-steps/s | reference "
        f"env-steps/s | ratio |\n|---|---|---|---|---|---|---|\n"
        f"| {r['topology']} ({r['routers']} routers) | {args.num_envs} | {args.device} | "
        f"{r['env_steps_per_s']:,.0f} | {r['agent_steps_per_s']:,.0f} | "
        f"{r['reference_env_steps_per_s']:,.0f} | {r['ratio']:.1f}x |"
    )
    print(f"env pool {r['pool']} slots/env; torch threads {torch.get_num_threads()}")
    print(
        "env time per batched step [us]: reset (amortised) {:.0f}, controller {:.0f}, "
        "step {:.0f}".format(*r["us_per_step"])
    )


def measure(
    topology: str,
    num_envs: int,
    device: str,
    episodes: int,
    ref_episodes: int,
    pool_init: int | None = None,
) -> dict:
    """Env and reference throughput (module docstring): env-steps/s of both, agent-steps/s
    of the env, their ratio, the env's pool size and its time per batched step [us]
    (reset, controller, step)."""
    topo = read_graphml(topology)
    rates = rates_from_profile([(100, 1.0), (100, 10 / 3), (100, 1.0)])
    ctrl = shortest_path_controller(topo, "hops")
    pool = {} if pool_init is None else {"pool_init": pool_init}
    env = RoutingEnv(topo, rates, num_envs=num_envs, device=device, **pool)

    split = [0.0, 0.0, 0.0]  # reset, controller, step [s]

    def episode(seed: int) -> None:
        t0 = time.perf_counter()
        obs = env.reset(seed=seed)
        t1 = time.perf_counter()
        split[0] += t1 - t0
        for _ in range(env.episode_len):
            action = ctrl.act(obs)
            t2 = time.perf_counter()
            obs = env.step(action).obs
            t3 = time.perf_counter()
            split[1] += t2 - t1
            split[2] += t3 - t2
            t1 = t3

    episode(0)  # warm-up (allocations, pool growth)
    split[:] = [0.0, 0.0, 0.0]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(episodes):
        episode(1 + s)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    env_s = time.perf_counter() - t0
    env_rate = episodes * num_envs * env.episode_len / env_s
    slots = ctrl.slots.numpy()
    small = RoutingEnv(topo, rates, num_envs=ref_episodes)
    small.reset(seed=123)
    schedules = [small.arrivals(b) for b in range(ref_episodes)]
    t0 = time.perf_counter()
    for c, src, dst in schedules:
        simulate_reference(topo, c, src, dst, lambda r, d: int(slots[r, d]))
    ref_s = time.perf_counter() - t0
    ref_rate = ref_episodes * env.episode_len / ref_s
    return {
        "topology": topo.name,
        "routers": topo.n_routers,
        "num_envs": num_envs,
        "device": device,
        "env_steps_per_s": env_rate,
        "agent_steps_per_s": env_rate * topo.n_routers,
        "reference_env_steps_per_s": ref_rate,
        "ratio": env_rate / ref_rate,
        "pool": int(env.pool),
        "us_per_step": [1e6 * x / (episodes * env.episode_len) for x in split],
    }


if __name__ == "__main__":
    main()
