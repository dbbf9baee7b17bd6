"""HAMA vs MADDPG on cooperative navigation, and HAMA's transfer to N = 50 / 100
([HAMA] Ryu et al. 2020, arXiv:1909.12557, Table 1).

For each method (``hama``, ``maddpg``) and each training seed: train on N = 3 games
(``gridmarl.games.spread.SpreadEnv``, 25-step episodes) for ``--steps`` agent-steps, evaluate
the deterministic policy on ``--episodes`` games of N = 3, then run the same weights unchanged
on N = 50 and N = 100 under the seed's transfer setting (agents 25× smaller, each seeing its
3 nearest agents and 3 landmarks).  Evaluation games use seeds disjoint from training
(``core.seeding`` ``test`` stream).  Prints the normalised mean penalty (per landmark:
nearest-agent distance + collisions, averaged over the steps) and the landmark occupation at the
last step, mean ± std over the training seeds, beside the seed's numbers; writes the table to
``--out`` as CSV.

    python benchmarks/hama_spread.py [--steps 60000] [--seeds 0 1 2] [--episodes 200]
        [--set hidden=256 ...] [--out runs/hama_spread.csv]
    python benchmarks/hama_spread.py --table-from runs/a.csv runs/b.csv ...

One run per (method, seed) keeps each process short; ``--table-from`` prints the table of
several such CSVs together.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gridmarl.controllers.hama import HAMA, HAMAConfig
from gridmarl.controllers.maddpg import MADDPG
from gridmarl.core.io import write_csv
from gridmarl.core.learner import run
from gridmarl.core.seeding import stream_seed
from gridmarl.core.types import Action, Observation
from gridmarl.games.spread import (
    AGENT_RADIUS,
    TRANSFER_SHRINK,
    SpreadEnv,
    SpreadView,
    nearest_landmark_action,
)

#: seed Table 1: normalised mean penalty (landmark occupation [%])
SEED_TABLE = {
    ("maddpg", 3): "0.22 ± 0.010",
    ("hama", 3): "0.15 ± 0.008",
    ("hama", 50): "0.05 (90 %)",
    ("hama", 100): "0.04 (96 %)",
}
METHODS = {"hama": HAMA, "maddpg": MADDPG}


def evaluate(
    learner: HAMA | str, n: int, episodes: int, radius: float, seed: int
) -> dict[str, float]:
    """Deterministic play of ``episodes`` games of ``n`` agents with the learner's weights
    (a learner for the ``n``-agent spec sharing them), or a baseline: ``"random"`` (uniformly
    random actions) or ``"nearest"`` (``games.spread.nearest_landmark_action``)."""
    env = SpreadEnv(n, num_envs=min(episodes, 50), agent_radius=radius)
    gen = torch.Generator().manual_seed(seed)
    if not isinstance(learner, str):
        player = type(learner)(env.spec, learner.cfg, "cpu", learner.seed, SpreadView(env.spec))
        player.actor.load_state_dict(learner.actor.state_dict())
        player.view.load_state_dict(learner.view.state_dict())
    else:
        zeros = torch.zeros(env.num_envs, n, 0)
        baseline = learner

        class _Baseline:
            def act(self, obs: Observation) -> Action:
                if baseline == "nearest":
                    return Action(discrete=nearest_landmark_action(obs), continuous=zeros)
                k = torch.randint(0, 5, (env.num_envs, n), generator=gen)
                return Action(discrete=k, continuous=zeros)

        player = _Baseline()  # type: ignore[assignment]
    pen, occ, done = [], [], 0
    t_act = 0.0
    while done < episodes:
        obs: Observation = env.reset(seed=stream_seed(seed, "test", done))
        total = torch.zeros(env.num_envs, dtype=torch.float64)
        for _ in range(env.episode_len):
            t0 = time.perf_counter()
            action = player.act(obs)
            t_act += time.perf_counter() - t0
            step = env.step(action)
            total += step.info["penalty"]
            obs = step.obs
        take = min(env.num_envs, episodes - done)
        pen += (total / env.episode_len)[:take].tolist()
        occ += step.info["occupied"][:take].tolist()
        done += take
    steps = (done // env.num_envs + 1) * env.episode_len
    return {
        "penalty": float(np.mean(pen)),
        "occupied": float(np.mean(occ)),
        "act_ms": 1e3 * t_act / steps,
    }


class ProgressLog:
    """Prints the mean training episode return [-] and critic loss about ``parts`` times."""

    def __init__(self, label: str, budget: int, parts: int = 10) -> None:
        self.label, self.every, self.next = label, max(1, budget // parts), max(1, budget // parts)
        self.returns: list[float] = []
        self.losses: list[float] = []
        self.t0 = time.perf_counter()

    def log(self, agent_steps: int, metrics: dict[str, float]) -> None:
        """Collect one update's metrics; print when the next tenth of the budget is done."""
        if "train/episode_return" in metrics:
            self.returns.append(metrics["train/episode_return"])
        if "loss/critic" in metrics:
            self.losses.append(metrics["loss/critic"])
        if agent_steps >= self.next:
            ret = np.mean(self.returns) if self.returns else float("nan")
            loss = np.mean(self.losses) if self.losses else float("nan")
            print(
                f"  {self.label}: {agent_steps} agent-steps, episode return {ret:.2f}, "
                f"critic loss {loss:.4f}, {time.perf_counter() - self.t0:.0f} s",
                flush=True,
            )
            self.returns, self.losses = [], []
            self.next += self.every


def print_table(df: pd.DataFrame) -> None:
    """Mean ± std over the training seeds per method and N, beside the seed's Table 1."""
    print("| method | N | penalty (ours) | occupation (ours) | seed Table 1 |")
    print("|---|---|---|---|---|")
    for (method, n), g in df.groupby(["method", "n_agents"], sort=False):
        print(
            f"| {method} | {n} | {g.penalty.mean():.3f} ± {g.penalty.std(ddof=0):.3f} | "
            f"{100 * g.occupied.mean():.0f} ± {100 * g.occupied.std(ddof=0):.0f} % | "
            f"{SEED_TABLE.get((method, n), '-')} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60_000, help="training agent-steps per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--num-envs", type=int, default=16)
    ap.add_argument("--skip-random", action="store_true", help="no baseline rows")
    ap.add_argument(
        "--baselines",
        nargs="*",
        default=["random", "nearest"],
        choices=["random", "nearest"],
        help="reference policies evaluated first (random play; each to its nearest landmark)",
    )
    ap.add_argument("--set", nargs="*", default=[], help="HAMAConfig overrides, key=value")
    ap.add_argument("--out", type=Path, default=Path("runs/hama_spread.csv"))
    ap.add_argument("--table-from", type=Path, nargs="+", help="print the table of these CSVs")
    args = ap.parse_args()
    if args.table_from:
        print_table(pd.concat([pd.read_csv(p) for p in args.table_from], ignore_index=True))
        return
    torch.set_num_threads(1)
    overrides: dict[str, object] = {"num_envs": args.num_envs}
    for kv in args.set:
        key, _, value = kv.partition("=")
        overrides[key] = type(getattr(HAMAConfig(), key))(value)
    cfg = HAMAConfig.from_options(overrides)
    rows = []
    sizes = (
        (3, AGENT_RADIUS),
        (50, AGENT_RADIUS / TRANSFER_SHRINK),
        (100, AGENT_RADIUS / TRANSFER_SHRINK),
    )
    for base in () if args.skip_random else args.baselines:
        for n, radius in sizes:
            r = evaluate(base, n, args.episodes, radius, 0)
            rows.append(
                {"method": base, "seed": 0, "n_agents": n, **r, "train_s": 0.0, "updates": 0}
            )
            print(f"{base} N={n}: penalty {r['penalty']:.3f}, occupied {100 * r['occupied']:.0f} %")
    for method in args.methods:
        for seed in args.seeds:
            env = SpreadEnv(3, num_envs=cfg.num_envs)
            learner = METHODS[method](env.spec, cfg, "cpu", seed, SpreadView(env.spec))
            t0 = time.perf_counter()
            log = ProgressLog(f"{method} seed {seed}", args.steps)
            run(learner, lambda b, env=env: env, args.steps, log)
            train_s = time.perf_counter() - t0
            for n, radius in sizes:
                r = evaluate(learner, n, args.episodes, radius, seed)
                rows.append(
                    {
                        "method": method,
                        "seed": seed,
                        "n_agents": n,
                        **r,
                        "train_s": train_s,
                        "updates": learner.progress().updates,
                    }
                )
                print(
                    f"{method} seed {seed} N={n}: penalty {r['penalty']:.3f}, "
                    f"occupied {100 * r['occupied']:.0f} %, act {r['act_ms']:.2f} ms "
                    f"(trained {train_s:.0f} s, {learner.progress().updates} updates)",
                    flush=True,
                )
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.out, df)
    print(
        f"\nN=3 training: {args.steps} agent-steps per run, {len(args.seeds)} seeds; "
        f"{args.episodes} evaluation episodes; config {cfg}"
    )
    print_table(df)


if __name__ == "__main__":
    main()
