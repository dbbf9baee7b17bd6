"""A minimal CPU run of HMF (IPC groups) and independent Q on MAgent Battle (200 agents vs 100
stronger, randomly acting enemies; ``gridmarl/games/battle.py``, needs the ``battle`` extra).

Each method trains ``--updates`` rounds (``train_every`` steps of ``--num-envs`` games, one
minibatch each) per training seed, then its greedy policy plays ``--episodes`` test games
(``test`` seed stream); a uniformly random policy plays the same games as the reference.
Reported per method: enemies killed, own agents alive at the end, return per agent, and
training agent-steps/s.  The seed's Battle curves come from far longer training against a
pretrained enemy: this run shows that the same code trains on Battle, not the seed's result.

    python benchmarks/hmf_battle.py [--updates 200] [--seeds 0] [--max-steps 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gridmarl.controllers.common.value_learner import ValueLearner
from gridmarl.controllers.hmf import HMF, HMFConfig
from gridmarl.controllers.mfq import IndependentQ, MFQConfig
from gridmarl.core.seeding import stream_seed
from gridmarl.core.types import Action
from gridmarl.games.battle import N_ACTIONS, BattleEnv

COMMON = {
    "num_envs": 2,
    "train_every": 4,
    "buffer_size": 2_000,
    "batch_size": 8,
    "learning_starts": 16,
    "gamma": 0.95,
    "hidden": 64,
}


class RandomPolicy:
    """Uniform random actions (the reference)."""

    def __init__(self, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(seed)

    def reset(self, env: object) -> None:
        pass

    def act(self, obs, deterministic: bool = True) -> Action:  # noqa: ANN001
        b, n = obs.batch_shape
        k = torch.randint(0, N_ACTIONS, (b, n), generator=self.gen)
        return Action(discrete=k, continuous=torch.zeros(b, n, 0))


def play(policy, seeds: list[int], max_steps: int) -> tuple[float, float, float]:  # noqa: ANN001
    """Greedy games: enemies killed, agents alive at the end, return per agent (means)."""
    killed, alive, ret = [], [], []
    for s in seeds:
        env = BattleEnv(num_envs=1, max_steps=max_steps)
        policy.reset(env)
        obs, total = env.reset(seed=s), 0.0
        for _ in range(max_steps):
            with torch.no_grad():
                step = env.step(policy.act(obs, deterministic=True))
            total += float(step.reward.mean())
            obs = step.obs
            if bool(step.done.any()):
                break
        killed.append(env.n_enemies - float(step.info["enemies_alive"][0]))
        alive.append(float(step.info["agents_alive"][0]))
        ret.append(total)
    return statistics.fmean(killed), statistics.fmean(alive), statistics.fmean(ret)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--episodes", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    methods: dict[str, tuple[type[ValueLearner], object]] = {
        "hmf_ipc": (HMF, HMFConfig(**COMMON, grouping="ipc", n_groups=4)),
        "iql": (IndependentQ, MFQConfig(**COMMON)),
    }
    print("| method | seed | enemies killed | agents alive | return / agent | agent-steps/s |")
    print("|---|---|---|---|---|---|")
    for seed in args.seeds:
        test = [stream_seed(seed, "test", i) for i in range(args.episodes)]
        k, a, r = play(RandomPolicy(seed), test, args.max_steps)
        print(f"| random | {seed} | {k:.1f} | {a:.1f} | {r:.2f} | - |")
        for name, (cls, cfg) in methods.items():
            env = BattleEnv(num_envs=COMMON["num_envs"], max_steps=args.max_steps)
            learner = cls(env.spec, cfg, seed=seed)
            budget = args.updates * COMMON["train_every"] * COMMON["num_envs"] * env.n
            t0 = time.perf_counter()
            for _ in range(args.updates):
                learner.update(learner.collect(env, budget))
            sps = learner.progress().agent_steps / (time.perf_counter() - t0)
            k, a, r = play(learner, test, args.max_steps)
            print(f"| {name} | {seed} | {k:.1f} | {a:.1f} | {r:.2f} | {sps:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
