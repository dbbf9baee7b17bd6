"""ES fine-tuning throughput on community_50, beside PPO's from the same run: agent-steps per
second, wall time per generation, and where an ES generation's time goes (env step vs the
policy's batched forward of all weight copies).

    python benchmarks/es_throughput.py                         # CPU, 1 thread, 3 generations
    python benchmarks/es_throughput.py --device cuda --generations 5
    python benchmarks/es_throughput.py --set train.es.pairs=48

ES runs the shipped checkpoint with the scenario's ``train.es`` settings (2P + 1 weight copies
× E episodes of the training window, forward only); PPO runs the scenario's ``train.options``
from the same checkpoint (``train.num_envs`` envs, rollout + update).  One warm-up generation
and one warm-up update are not counted.  GPU timings are not synchronised per phase.
"""

from __future__ import annotations

import argparse
import time

import torch

from gridmarl.config import load_scenario
from gridmarl.controllers.es import ESFinetuner
from gridmarl.controllers.matppo import MATPPO
from gridmarl.core.seeding import resolve_device
from gridmarl.energy.training import energy_env_factory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/community_50.yaml")
    ap.add_argument("--checkpoint", default="data/checkpoints/community_50_matppo.pt")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--updates", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="scenario override KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    scenario = load_scenario(args.scenario, args.set)
    make = energy_env_factory(scenario, dev, scenario.seed)
    spec = make(1).spec

    es = ESFinetuner(
        MATPPO.from_checkpoint(args.checkpoint, spec, device=dev), scenario.train.es, seed=0
    )
    env = make(es.num_envs())
    es.generation(env)  # warm-up
    t0 = time.perf_counter()
    phases = {"policy_forward_s": 0.0, "env_s": 0.0}
    for _ in range(args.generations):
        stats = es.generation(env)
        for k in phases:
            phases[k] += stats[f"time/{k}"]
    es_wall = time.perf_counter() - t0
    es_steps = es.agent_steps_per_generation(env) * args.generations

    ppo = MATPPO.from_checkpoint(args.checkpoint, spec, device=dev)
    per_update = ppo.cfg.rollout_steps * ppo.cfg.num_envs * spec.n_agents
    marks: list[float] = []

    class Log:
        def log(self, step: int, metrics: dict[str, float]) -> None:
            marks.append(time.perf_counter())

    ppo.train(make, ppo.agent_steps + per_update * (args.updates + 1), Log())
    ppo_wall = marks[-1] - marks[0]
    ppo_steps = per_update * args.updates

    cfg = scenario.train.es
    print(
        f"ES on {scenario.name}: {es.dim:,} weights, {es.copies()} copies x {cfg.episodes} "
        f"episodes = {env.num_envs} envs x {env.episode_len} steps x {spec.n_agents} agents, "
        f"device={dev}, threads={args.threads}"
    )
    print(
        f"  ES  {es_steps:,} agent-steps in {es_wall:.1f} s -> {es_steps / es_wall:,.0f} "
        f"agent-steps/s; {es_wall / args.generations:.2f} s per generation"
    )
    for k, v in phases.items():
        print(f"      {k.removesuffix('_s'):<16} {v:7.2f} s  {100 * v / es_wall:5.1f} %")
    print(
        f"  PPO {ppo_steps:,} agent-steps in {ppo_wall:.1f} s -> {ppo_steps / ppo_wall:,.0f} "
        f"agent-steps/s; {ppo_wall / args.updates:.2f} s per update (B={ppo.cfg.num_envs}, "
        f"T={ppo.cfg.rollout_steps}, {ppo.cfg.epochs} epochs x {ppo.cfg.minibatches} minibatches)"
    )
    ratio = (es_steps / es_wall) / (ppo_steps / ppo_wall)
    print(f"  ratio ES / PPO agent-steps per second: {ratio:.1f}")


if __name__ == "__main__":
    main()
