"""Build and solve times of the community MILP (and optionally the rolling MPC).

Cases:
  * ``day``: 50 prosumers, one day hourly, to 0.1 % gap (target <= 10 s on 2 cores).

Each line: model build and solve time separately (the solve split into the LP relaxation and
the per-heat-pump subproblems of the decomposition start), status, objective, proven bound
and gap.
  * ``week``: the default evaluation week with the scenario's MILP time limit and gap.
  * ``mpc`` (``--mpc``): the default week closed loop with the scenario's MPC entry
    (168 solves of a 24 h horizon), through ``CommunityEnv``.

Data: ``gridmarl.energy.data.build_community(scenario, "evaluate")`` when that module exists
(real CityLearn loads, pvlib PV, real tariff), else a synthetic community with plausible daily
shapes (:func:`synthetic_community`); the output says which.

Run: ``/work/venv/bin/python benchmarks/milp_solve_time.py [--mpc] [--threads 2]``
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import pandas as pd

from baselines_opt.community_milp import schedule_cost, solve_community_milp
from gridmarl.energy.community import Community

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "community_50.yaml"


def synthetic_community(
    n: int = 50,
    days: int = 7,
    seed: int = 7,
    lookahead: int = 25,
    transformer_kw: float = 120.0,
    peak_usd_per_kw: float = 0.0,
) -> Community:
    """A plausible hourly winter community (the defaults of ``community_50.yaml``).

    Loads: base + morning and evening peaks [kW]; PV: a clear-sky bell 7 h–17 h times a daily
    cloud factor [kW]; price: time-of-use 0.21 / 0.28 / 0.36 $/kWh (off / mid / 16–21 h peak);
    outdoor temperature 8 ± 6 C; 100 % batteries, 40 % EVs (home 16–20 h to 6–9 h), 50 % heat
    pumps.  ``lookahead`` extra steps follow the ``days`` so departures and MPC horizons have
    data.
    """
    rng = np.random.default_rng(seed)
    S = days * 24 + lookahead
    hour = np.arange(S) % 24
    day = np.arange(S) // 24
    shape = (
        0.35 + 0.5 * np.exp(-((hour - 7.5) ** 2) / 2.0) + 0.9 * np.exp(-((hour - 19.0) ** 2) / 4.0)
    )
    load = shape[:, None] * rng.uniform(0.8, 1.2, n) * (1 + 0.15 * rng.standard_normal((S, n)))
    load = np.maximum(load, 0.05)
    bell = np.clip(np.sin(np.pi * (hour - 7) / 10), 0, None) ** 1.3
    cloud = rng.uniform(0.4, 1.0, days + 2)[day]
    pv = (bell * cloud)[:, None] * rng.uniform(3.0, 6.0, n) * 0.75
    price = np.where(
        (hour >= 16) & (hour < 21), 0.36, np.where((hour >= 8) & (hour < 16), 0.28, 0.21)
    )
    outdoor = 8.0 + 6.0 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 1, days + 2)[day]
    cop = np.repeat((3.5 + 0.05 * (outdoor - 7.0))[:, None], n, axis=1)

    has_ev = rng.random(n) < 0.4
    ev_kwh = np.where(has_ev, rng.uniform(40, 75, n), 0.0)
    ev_kw = np.where(has_ev, rng.uniform(3.7, 7.4, n), 0.0)
    present = np.zeros((S, n), bool)
    arrival_kwh = np.zeros((S, n))
    for i in np.flatnonzero(has_ev):
        for d in range(-1, days + 2):
            a = d * 24 + int(rng.integers(16, 21))
            b = (d + 1) * 24 + int(rng.integers(6, 10))
            lo, hi = max(a, 0), min(b, S)
            if lo < hi:
                present[lo:hi, i] = True
                arrival_kwh[lo:hi, i] = rng.uniform(0.2, 0.5) * ev_kwh[i]
    has_hp = rng.random(n) < 0.5
    cap = rng.uniform(6.4, 13.5, n)
    return Community(
        step_h=1.0,
        time=pd.date_range("2017-01-16", periods=S, freq="h"),
        load_kw=load,
        pv_kw=pv,
        price_usd_per_kwh=price,
        outdoor_c=outdoor,
        cop=cop,
        ev_present=present,
        ev_arrival_kwh=arrival_kwh,
        battery_kwh=cap,
        battery_kw=rng.uniform(3.3, 5.0, n),
        battery_min_kwh=0.1 * cap,
        battery_init_kwh=0.5 * cap,
        eta_charge=0.95,
        eta_discharge=0.95,
        degradation_usd_per_kwh=0.01,
        has_ev=has_ev,
        ev_kwh=ev_kwh,
        ev_kw=ev_kw,
        ev_target_kwh=0.8 * ev_kwh,
        ev_eta=0.92,
        unmet_usd_per_kwh=0.6,
        has_hp=has_hp,
        hp_kw=np.where(has_hp, rng.uniform(1.5, 3.0, n), 0.0),
        hp_modes=3,
        r_c_per_kw=np.where(has_hp, rng.uniform(4, 8, n), 0.0),
        c_kwh_per_c=np.where(has_hp, rng.uniform(3, 6, n), 0.0),
        theta_lo_c=np.full(n, 20.0),
        theta_hi_c=np.full(n, 23.0),
        theta_init_c=np.full(n, 21.0),
        comfort_usd_per_c_h=0.5,
        feed_in_usd_per_kwh=0.05,
        transformer_kw=transformer_kw,
        over_limit_usd_per_kwh=1.0,
        peak_usd_per_kw=peak_usd_per_kw,
        names=tuple(f"prosumer_{i:02d}" for i in range(n)),
        sources=tuple("synthetic" for _ in range(n)),
    )


def load_case() -> tuple[Community, int, dict, str]:
    """(community, episode steps, scenario controller options, data description)."""
    from gridmarl.config import load_scenario

    scenario = load_scenario(SCENARIO)
    opts = {e.name: e for e in scenario.controllers}
    episode = round(scenario.window.evaluate.days * 24 / scenario.window.step_h)
    if importlib.util.find_spec("gridmarl.energy.data") is not None:
        from gridmarl.energy.data import build_community

        return (
            build_community(scenario, "evaluate"),
            episode,
            opts,
            "real data: build_community(community_50, 'evaluate')",
        )
    return (
        synthetic_community(scenario.community.prosumers, scenario.window.evaluate.days),
        episode,
        opts,
        "synthetic community (gridmarl.energy.data not available)",
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

    from baselines_opt.community_milp import MPCController
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
