"""Training speed of the value learners (DQN, DGN, LToS) per scenario, on the CPU, and where the
time goes: env stepping, choosing actions (forward), writing / sampling the replay buffer, the
TD loss forward, backward + optimiser step, and the rest (LToS's high level, bookkeeping).

Each controller trains ``--rounds`` collect + update rounds after a warm-up that fills the
buffer past ``learning_starts`` (so every timed round learns); the scenario's ``train.options``
apply, ``--set`` overrides them.  Single thread (``torch.set_num_threads(1)``).

    python benchmarks/ltos_speed.py scenarios/routing_ltos_ibm.yaml [--controllers dqn dgn ltos]
        [--num-envs 4] [--rounds 30] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gridmarl import domains
from gridmarl.config import load_scenario
from gridmarl.controllers import registry
from gridmarl.train import train_options

PARTS = (
    ("env", "time/env_s"),
    ("act", "time/policy_forward_s"),
    ("replay", "time/replay_s"),
    ("loss fwd", "time/update_forward_s"),
    ("backward", "time/update_backward_s"),
)


def measure(scenario, name: str, num_envs: int, rounds: int) -> dict[str, float]:
    """Agent-steps/s over ``rounds`` learning rounds and the share of each part [%]."""
    dom = domains.get(scenario.domain)
    cls = registry.get(name).load_class()
    opts = {**train_options(scenario), "num_envs": num_envs}
    cfg = cls.config_class.from_options(opts)
    make_env = dom.train_env_factory(scenario, torch.device("cpu"), scenario.seed)
    env = make_env(num_envs)
    learner = cls(env.spec, cfg, device="cpu", seed=scenario.seed)
    try:
        per_row = num_envs  # rows per env step
        while learner.replay is None or len(learner.replay) < cfg.learning_starts + per_row:
            learner.update(learner.collect(env, 10**12))
        sums = dict.fromkeys([k for _, k in PARTS], 0.0)
        steps = 0
        t0 = time.perf_counter()
        for _ in range(rounds):
            m = learner.update(learner.collect(env, 10**12))
            for k in sums:
                sums[k] += m[k]
            steps += cfg.steps_per_collect * num_envs * env.spec.n_agents
        wall = time.perf_counter() - t0
    finally:
        env.close()
    out = {"agent_steps_per_s": steps / wall, "wall_s": wall}
    for label, key in PARTS:
        out[label] = 100.0 * sums[key] / wall
    out["other"] = 100.0 - sum(out[label] for label, _ in PARTS)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", type=Path)
    ap.add_argument("--controllers", nargs="+", default=["dqn", "dgn", "ltos"])
    ap.add_argument("--num-envs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(1)
    scenario = load_scenario(args.scenario, [*args.sets, "controllers=[]"])
    print(f"{scenario.name}, {args.num_envs} envs, {args.rounds} rounds, CPU, 1 thread")
    cols = ["agent_steps_per_s", *(label for label, _ in PARTS), "other"]
    print("| controller | agent-steps/s | " + " | ".join(f"{c} %" for c in cols[1:]) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name in args.controllers:
        r = measure(scenario, name, args.num_envs, args.rounds)
        cells = [f"{r['agent_steps_per_s']:,.0f}", *(f"{r[c]:.0f}" for c in cols[1:])]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
