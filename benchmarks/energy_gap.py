"""Where each controller's cost goes on an energy scenario's evaluation window, against the
perfect-foresight MILP (same run, same accounting env).

    python benchmarks/energy_gap.py                                   # community_50.yaml
    python benchmarks/energy_gap.py --checkpoint runs/community_50/<run>/checkpoints/best.pt

Every controller listed in the scenario (``milp`` is always added) runs the evaluation window
once in the ``B = 1`` float64 env that ``gridmarl simulate`` uses; ``--checkpoint`` adds
``matppo`` rows.  Three tables:

1. **Cost by category** [$]: grid (imports − feed-in), battery degradation, comfort, EV unmet
   energy, transformer excess, peak charge; their sum is the community cost.  ``share`` = share
   of the MILP's savings over ``no_control`` (when listed).
2. **Cost by day** [$] of the window, with the EV energy charged that day [kWh].
3. **End of the window**: the window's cost gives no value to energy left in a car at the last
   step, and the MILP knows where the window ends.  For the EVs whose stay runs past the last
   step: the energy charged into them during that stay [kWh] and its cost at the import price
   [$].  A controller that does not know when the window ends (every causal one) pays for it;
   the MILP charges them nothing.
4. **By hour of day** (mean over the window's days): community net import [kW], battery
   discharge [kW] and EV charging [kW], and each controller's battery energy sent beyond its
   owner's own net load (to neighbours or the grid) over the window [kWh].

``--lookahead-days D`` adds a row ``milp+Dd``: the MILP planned over the window plus ``D``
days (same start, same data) and replayed over the window only, so the end of the window is
no longer the end of its plan; every controller's share is then also given against it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gridmarl.config import ControllerEntry, load_scenario
from gridmarl.energy.data import build_community
from gridmarl.energy.kpis import share_of_optimal_savings
from gridmarl.energy.simulate import build_controller, make_eval_env, reference_gap_warning
from gridmarl.experiment import run_episode

ROOT = Path(__file__).resolve().parents[1]

CATEGORIES = {
    "grid": "grid_cost_usd",
    "degradation": "degradation_usd",
    "comfort": "comfort_usd",
    "EV unmet": "ev_unmet_usd",
    "transformer": "over_usd",
    "peak": "peak_usd",
}


def open_stays(community, steps: int) -> dict[int, int]:
    """``{prosumer: first step of its stay}`` for the EVs present at the window's last step
    and at the step after it (the community's span holds look-ahead steps past ``steps``)."""
    present, arrives = community.ev_present, community.ev_arrives()
    return {
        int(n): int(np.flatnonzero(arrives[:steps, n])[-1])
        for n in np.flatnonzero(present[steps - 1] & present[steps])
    }


def _lookahead_milp(
    args: argparse.Namespace, sc, community, days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The MILP planned over the window + ``days`` and replayed over the window."""
    from baselines_opt.community import solve_community_milp

    longer = load_scenario(
        args.scenario,
        [*args.overrides, f"window.evaluate.days={sc.window.evaluate.days + days}"],
    )
    env = make_eval_env(sc, community)
    t0 = time.perf_counter()
    res = solve_community_milp(
        build_community(longer, "evaluate"),
        start=0,
        steps=env.episode_len + round(days * 24 / sc.window.step_h),
        time_limit_s=args.milp_time_limit,
        mip_gap=1e-3,
        threads=1,
    )
    rec, _ = run_episode(env, res.to_controller(f"milp+{days}d"), seed=sc.seed)
    print(
        f"milp+{days}d: {res.status}, gap {100 * res.gap:.3f} %, {time.perf_counter() - t0:.1f} s"
        + reference_gap_warning(res.gap, f"milp+{days}d"),
        flush=True,
    )
    return rec, env.community_records()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "community_50.yaml"))
    ap.add_argument("--checkpoint", action="append", default=[], help="matppo checkpoint(s)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--lookahead-days", type=int, default=0, help="add a MILP planned D days past")
    ap.add_argument("--milp-time-limit", type=float, default=300.0, help="[s] for that MILP")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sc = load_scenario(args.scenario, args.overrides)
    community = build_community(sc, "evaluate")
    entries = list(sc.controllers)
    if not any(e.name == "milp" for e in entries):
        entries.append(ControllerEntry(name="milp", time_limit_s=60.0))
    entries += [
        ControllerEntry(
            name="matppo",
            label=f"matppo[{Path(p).parent.parent.name}/{Path(p).stem}]",
            checkpoint=str(Path(p).resolve()),
        )
        for p in args.checkpoint
    ]
    runs: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for entry in entries:
        env = make_eval_env(sc, community)
        t0 = time.perf_counter()
        ctrl, _, info = build_controller(entry, sc, community, env)
        rec, _ = run_episode(env, ctrl, seed=sc.seed)
        runs[entry.display_name] = (rec, env.community_records())
        gap = f", status {info['status']}, gap {100 * info['gap']:.3f} %" if "gap" in info else ""
        print(f"{entry.display_name}: {time.perf_counter() - t0:.1f} s{gap}", flush=True)
        if warning := reference_gap_warning(info.get("gap", 0.0), entry.display_name):
            print(warning.lstrip(), flush=True)
    if args.lookahead_days > 0:
        runs[f"milp+{args.lookahead_days}d"] = _lookahead_milp(
            args, sc, community, args.lookahead_days
        )
    steps = len(next(iter(runs.values()))[1])
    total = {k: float(c["cost_usd"].sum()) for k, (_, c) in runs.items()}
    milp = next(e.display_name for e in entries if e.name == "milp")
    base = next((e.display_name for e in entries if e.name == "no_control"), None)

    refs = [milp] + ([f"milp+{args.lookahead_days}d"] if args.lookahead_days > 0 else [])
    share_cols = " | ".join(f"share vs {r}" for r in refs)
    print(f"\n{sc.name}: evaluation window, {steps} steps; costs [$]\n")
    print("| controller | " + " | ".join(CATEGORIES) + f" | total | vs MILP | {share_cols} |")
    print("|---|" + "---|" * (len(CATEGORIES) + 2 + len(refs)))
    for name, (rec, com) in runs.items():
        cells = [rec[col].sum() if col in rec else com[col].sum() for col in CATEGORIES.values()]
        shares = [
            f"{100 * share_of_optimal_savings(total[base], total[name], total[ref]):.1f} %"
            if base is not None
            else ""
            for ref in refs
        ]
        print(
            f"| {name} | "
            + " | ".join(f"{c:.1f}" for c in cells)
            + f" | {total[name]:.2f} | {total[name] - total[milp]:+.1f} | "
            + " | ".join(shares)
            + " |"
        )

    print("\ncost by day [$] (EV energy charged that day [kWh])\n")
    days = pd.to_datetime(next(iter(runs.values()))[1]["time"]).dt.strftime("%m-%d")
    print("| controller | " + " | ".join(days.unique()) + " |")
    print("|---|" + "---|" * days.nunique())
    for name, (rec, com) in runs.items():
        cost = com["cost_usd"].groupby(days.values).sum()
        ev = rec.groupby("step")["ev_kw"].sum().groupby(days.values).sum() * sc.window.step_h
        print(
            f"| {name} | "
            + " | ".join(f"{cost[d]:.0f} ({ev[d]:.0f})" for d in days.unique())
            + " |"
        )

    stays = open_stays(community, steps)
    print(
        f"\nend of the window: {len(stays)} EVs stay past the last step; energy charged into "
        "them during that stay [kWh] and its cost at the import price [$]\n"
    )
    print("| controller | energy [kWh] | at the import price [$] |")
    print("|---|---|---|")
    names = make_eval_env(sc, community).spec.agent_names  # the records' prosumer labels
    for name, (rec, _) in runs.items():
        kwh = usd = 0.0
        for n, start in stays.items():
            r = rec[(rec["prosumer"] == names[n]) & (rec["step"] >= start)]
            kwh += float(r["ev_kw"].sum()) * sc.window.step_h
            usd += float((r["ev_kw"] * r["price_usd_per_kwh"]).sum()) * sc.window.step_h
        print(f"| {name} | {kwh:.1f} | {usd:.1f} |")

    _hourly(runs, sc.window.step_h)


def _hourly(runs: dict[str, tuple[pd.DataFrame, pd.DataFrame]], step_h: float) -> None:
    """Table 4: net import, battery discharge and EV charging by hour of day; battery energy
    beyond own load."""
    hours = range(24)
    cols = ["net_kw", "battery_discharge_kw", "ev_kw"]
    profiles = {}  # controller -> [24, 3] mean per hour of day of the community sums of cols
    for name, (rec, _) in runs.items():
        per_step = rec.groupby("step")[cols].sum()
        hour = pd.to_datetime(rec.groupby("step")["time"].first()).dt.hour.values
        profiles[name] = per_step.groupby(hour).mean().reindex(hours, fill_value=0.0)
    for title, col in (
        ("community net import", "net_kw"),
        ("battery discharge", "battery_discharge_kw"),
        ("EV charging", "ev_kw"),
    ):
        print(f"\n{title} by hour of day [kW], mean over the days\n")
        print("| controller | " + " | ".join(f"{h}" for h in hours) + " |")
        print("|---|" + "---|" * 24)
        for name, prof in profiles.items():
            print(f"| {name} | " + " | ".join(f"{v:.0f}" for v in prof[col]) + " |")
    print("\nbattery energy discharged beyond the owner's own net load over the window [kWh]\n")
    print("| controller | to neighbours or the grid [kWh] | discharged in all [kWh] |")
    print("|---|---|---|")
    for name, (rec, _) in runs.items():
        own = (rec["load_kw"] + rec["hp_kw"] + rec["ev_kw"] - rec["pv_kw"]).clip(lower=0)
        beyond = (rec["battery_discharge_kw"] - own).clip(lower=0).sum() * step_h
        total = rec["battery_discharge_kw"].sum() * step_h
        print(f"| {name} | {beyond:.0f} | {total:.0f} |")


if __name__ == "__main__":
    main()
