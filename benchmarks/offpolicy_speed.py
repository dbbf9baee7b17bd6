"""Training speed of the off-policy learners (DQN, DGN, LToS, HAMA, MADDPG, HMF, MFQ, ...) per
scenario, on the CPU, and where the time goes: env stepping, choosing actions (forward), writing /
sampling the replay buffer, the loss forward (TD targets, critic and actor losses), backward +
optimiser step (+ soft target update), and the rest (LToS's high level, bookkeeping, and for a
learner that does not time a part, that part).

Each controller trains ``--rounds`` collect + update rounds after a warm-up that runs until an
update returns a loss (the buffer is past ``learning_starts`` / HAMA's warm-up, so every timed
round learns); the scenario's ``train.options`` and ``train.controller_options`` apply, ``--set``
overrides them.  Single thread (``torch.set_num_threads(1)``).  A part the learner does not time
prints as ``–`` and falls into ``other``.

    python benchmarks/offpolicy_speed.py scenarios/routing_ltos_ibm.yaml
        [--controllers dqn dgn ltos] [--num-envs 4] [--rounds 30] [--set key=value ...]
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
    opts = {**train_options(scenario, name), "num_envs": num_envs}
    cfg = cls.config_class.from_options(opts)
    make_env = dom.train_env_factory(scenario, torch.device("cpu"), scenario.seed)
    env = make_env(num_envs)
    learner = cls(env.spec, cfg, device="cpu", seed=scenario.seed)
    try:
        m: dict[str, float] = {}
        while not any(k.startswith("loss/") for k in m):  # until an update learns
            m = learner.update(learner.collect(env, 10**12))
        sums = dict.fromkeys([k for _, k in PARTS], 0.0)
        seen: set[str] = set()
        steps0 = learner.agent_steps
        t0 = time.perf_counter()
        for _ in range(rounds):
            m = learner.update(learner.collect(env, 10**12))
            for k in sums:
                if k in m:
                    sums[k] += m[k]
                    seen.add(k)
        wall = time.perf_counter() - t0
        steps = learner.agent_steps - steps0
    finally:
        env.close()
    out = {"agent_steps_per_s": steps / wall, "wall_s": wall}
    for label, key in PARTS:
        out[label] = 100.0 * sums[key] / wall if key in seen else float("nan")
    out["other"] = 100.0 - sum(out[label] for label, key in PARTS if key in seen)
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
        cells = [
            f"{r['agent_steps_per_s']:,.0f}",
            *("–" if r[c] != r[c] else f"{r[c]:.0f}" for c in cols[1:]),
        ]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
