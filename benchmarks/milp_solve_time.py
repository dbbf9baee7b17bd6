"""Build and solve times of the community MILP (and optionally the rolling MPC).

Cases:
  * ``day``: 50 prosumers, one day hourly, to 0.1 % gap (target <= 10 s on 2 cores).
  * ``week``: the default evaluation week with the scenario's MILP time limit and gap.
  * ``mpc`` (``--mpc``): the default week closed loop with the scenario's MPC entry
    (168 solves of a 24 h horizon), through ``CommunityEnv``.

Each line: model build and solve time separately (the solve split into the LP relaxation and
the per-heat-pump subproblems of the decomposition start), status, objective, proven bound
and gap.

Data: ``gridmarl.energy.data.build_community(scenario, "evaluate")`` — real CityLearn loads,
pvlib PV and the real tariff of community_50's evaluation week.

Run: ``/work/venv/bin/python benchmarks/milp_solve_time.py [--mpc] [--threads 2]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from baselines_opt.community import schedule_cost, solve_community_milp
from gridmarl.energy.community import Community

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "community_50.yaml"


def load_case() -> tuple[Community, int, dict, str]:
    """(community, episode steps, scenario controller options, data description)."""
    from gridmarl.config import load_scenario

    scenario = load_scenario(SCENARIO)
    opts = {e.name: e for e in scenario.controllers}
    episode = round(scenario.window.evaluate.days * 24 / scenario.window.step_h)
    from gridmarl.energy.data import build_community

    return (
        build_community(scenario, "evaluate"),
        episode,
        opts,
        "real data: build_community(community_50, 'evaluate')",
    )


def report(label: str, res, community: Community) -> None:
    """Print one result line and check the schedule's numpy accounting."""
    acc = schedule_cost(community, res.discrete, res.continuous, start=res.start)
    dev = abs(acc["cost_usd"].sum() - res.objective_usd) / max(1.0, abs(res.objective_usd))
    lp_s, hp_s = res.extra.get("lp_s", float("nan")), res.extra.get("hp_s", float("nan"))
    parts = f"LP {lp_s:.2f} s, heat pumps {hp_s:.2f} s"
    print(
        f"{label:>5}: build {res.build_s:6.2f} s  solve {res.solve_s:6.2f} s ({parts})  status "
        f"{res.status:<10} objective {res.objective_usd:10.4f} $  bound {res.bound_usd:10.4f}"
        f" $  gap {100 * res.gap:.3f} %  vars {res.extra['n_vars']}  cons "
        f"{res.extra['n_constraints']}  |replay − objective|/objective {dev:.1e}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="HiGHS threads")
    ap.add_argument("--mpc", action="store_true", help="also run the closed-loop MPC week")
    ap.add_argument("--skip-week", action="store_true", help="only the one-day case")
    args = ap.parse_args()
    community, episode, opts, source = load_case()
    print(f"data: {source}; {community.n} prosumers, span {community.steps} steps")

    day = solve_community_milp(
        community, start=0, steps=24, time_limit_s=60, mip_gap=1e-3, threads=args.threads
    )
    report("day", day, community)
    if not args.skip_week:
        milp = opts.get("milp")
        week = solve_community_milp(
            community,
            start=0,
            steps=episode,
            time_limit_s=(milp.time_limit_s if milp and milp.time_limit_s else 60.0),
            mip_gap=(milp.mip_gap if milp and milp.mip_gap is not None else 1e-3),
            threads=args.threads,
        )
        report("week", week, community)
    if args.mpc:
        run_mpc(community, episode, opts.get("mpc"), args.threads)


def run_mpc(community: Community, episode: int, entry, threads: int) -> None:
    """The closed-loop MPC week through ``CommunityEnv`` (B = 1, float64)."""
    import torch

    from baselines_opt.community import MPCController
    from gridmarl.energy.env import CommunityEnv
    from gridmarl.experiment import run_episode

    env = CommunityEnv(
        community,
        num_envs=1,
        device="cpu",
        dtype=torch.float64,
        episode_steps=episode,
        forecast_steps=3,
        forecast_kind="perfect",
        noise_std=0.1,
        random_start=False,
        seed=7,
    )
    kw = {"horizon_h": entry.horizon_h} if entry and entry.horizon_h else {}
    ctrl = MPCController(threads=threads, **kw)
    t0 = time.perf_counter()
    records, wall = run_episode(env, ctrl, seed=7)
    total = time.perf_counter() - t0
    st = ctrl.stats
    cost = _episode_cost(records)
    print(
        f"  mpc: {ctrl.describe()}; wall {total:.1f} s (episode {wall:.1f} s, build "
        f"{st['build_s']:.2f} s, {st['solves']} solves, mean {np.mean(st['solve_s']):.2f} s, "
        f"max {np.max(st['solve_s']):.2f} s, fallbacks {st['fallbacks']}); cost {cost}"
    )


def _episode_cost(records: pd.DataFrame) -> str:
    """The community cost from the env records, if a cost column is there."""
    for col in ("team_cost_usd", "community_cost_usd", "cost_usd"):
        if col in records.columns:
            return f"{records[col].sum():.4f} $ ({col})"
    return "n/a"


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.1f} s")
