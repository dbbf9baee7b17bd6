"""HMF training speed and memory on community_50 at N = 50, 200, 1,000 prosumers (the same
code, one ``--set community.prosumers=N``).

For each N a fresh process (so that its peak memory is its own) builds the scenario's training
env (``energy_env_factory``: training window, random starts, the ``train`` block's credit),
an HMF learner with the given hyper-parameters and the env's prior groups (``devices``: the
device-ownership classes), fills ``learning_starts`` rows, then times ``--updates`` rounds of
``collect`` (``train_every`` env steps of ``num_envs`` envs) + ``update`` (``gradient_steps``
minibatches).  Reported: training agent-steps/s (env steps + gradient steps, after the warm-up),
the replay buffer's size and the process's peak resident memory.

    python benchmarks/hmf_scale.py [--n 50 200 1000] [--updates 20] [--num-envs 4]
        [--buffer-size 2000] [--batch-size 16] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def one(args: argparse.Namespace, n: int) -> dict:
    """Measure at ``n`` prosumers in this process."""
    from gridmarl.config import load_scenario
    from gridmarl.controllers.hmf import HMF, HMFConfig
    from gridmarl.core.seeding import resolve_device
    from gridmarl.energy.training import energy_env_factory

    torch.set_num_threads(1)
    dev = resolve_device(args.device)
    scenario = load_scenario(
        "scenarios/community_50.yaml",
        [f"community.prosumers={n}", "train.controller=null", *args.set],
    )
    make = energy_env_factory(scenario, dev, scenario.seed)
    env = make(args.num_envs)
    cfg = HMFConfig(
        num_envs=args.num_envs,
        train_every=args.train_every,
        buffer_size=args.buffer_size,
        batch_size=args.batch_size,
        learning_starts=args.batch_size,
    )
    learner = HMF(env.spec, cfg, device=dev, seed=scenario.seed)
    budget = 10**12
    while learner.replay is None or len(learner.replay) < cfg.learning_starts:
        learner.update(learner.collect(env, budget))
    learner.update(learner.collect(env, budget))  # warm-up, with a gradient step
    start = learner.progress().agent_steps
    env_s = upd_s = 0.0
    t0 = time.perf_counter()
    for _ in range(args.updates):
        m = learner.update(learner.collect(env, budget))
        env_s += m["time/env_s"]
        upd_s += m["time/update_s"]
    wall = time.perf_counter() - t0
    steps = learner.progress().agent_steps - start
    assert learner.replay is not None
    return {
        "n": n,
        "groups": learner.n_groups,
        "actions": learner.n_actions,
        "agent_steps_per_s": steps / wall,
        "env_share": env_s / wall,
        "update_share": upd_s / wall,
        "replay_mb": learner.replay.nbytes / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_s": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[50, 200, 1000])
    ap.add_argument("--updates", type=int, default=20)
    ap.add_argument("--num-envs", type=int, default=4)
    ap.add_argument("--train-every", type=int, default=4)
    ap.add_argument("--buffer-size", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[], help="scenario override KEY=VALUE")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(one(args, args.child)))
        return
    print(
        "| N | groups | actions | train agent-steps/s | env share | update share "
        "| replay [MB] | peak RSS [MB] |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n in args.n:
        argv = list(sys.argv[1:])
        out = subprocess.run(
            [sys.executable, __file__, *argv, "--child", str(n)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {r['n']} | {r['groups']} | {r['actions']} | {r['agent_steps_per_s']:,.0f} | "
            f"{r['env_share']:.0%} | {r['update_share']:.0%} | {r['replay_mb']:,.0f} | "
            f"{r['peak_rss_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
