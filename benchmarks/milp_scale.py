"""The community MILP and MPC at operator scale: one week hourly of ``community_50.yaml``'s
evaluation window with N = 50, 200, 500, 1,000 prosumers.

Per N (each in a fresh process, so peak memory is that size's): data build, model build and
solve time (wall, and the CPU seconds of the solver and its workers: on a shared machine the
wall time says little), status, objective (the env's cost of the schedule), proven bound,
gap, the method that gave the schedule and the one that gave the bound (with ``lp_dp``, the
seconds of its phases), peak resident memory of the solver process and of its worker
processes; with ``--mpc-steps K`` also the rolling
MPC's time per re-plan over the first K steps of the week (the scenario's MPC entry, 24 h
horizon).

Targets (issue 25, on 2 cores): N = 50 <= 0.1 % gap in 60 s, N = 200 <= 0.5 % in 120 s,
N = 1,000 <= 2 % in 10 minutes.

Run::

    nice -n 10 python benchmarks/milp_scale.py [--sizes 50 200 500 1000]
        [--time-limits 60 120 300 600] [--method auto|exact|lp_dp|columns] [--workers 2]
        [--mpc-steps 6] [--out results.csv]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "community_50.yaml"
DEFAULT_LIMITS = {50: 60.0, 200: 120.0, 500: 300.0, 1000: 600.0}


def _cpu(who: int) -> float:
    """User + system CPU time of this process or of its finished children [s]."""
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_one(n: int, time_limit_s: float, method: str, workers: int, mpc_steps: int) -> dict:
    """One size, in this process: the MILP, then optionally K steps of MPC."""
    import numpy as np
    import torch

    from baselines_opt.community import solve_community_milp
    from gridmarl.config import load_scenario
    from gridmarl.energy.data import build_community
    from gridmarl.energy.simulate import make_eval_env

    torch.set_num_threads(1)
    sc = load_scenario(SCENARIO, [f"community.prosumers={n}"])
    t0 = time.perf_counter()
    community = build_community(sc, "evaluate")
    data_s = time.perf_counter() - t0
    env = make_eval_env(sc, community)
    steps = env.episode_len
    t0 = time.perf_counter()
    cpu0 = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    res = solve_community_milp(
        community, 0, steps, time_limit_s=time_limit_s, mip_gap=1e-3, method=method,
        workers=workers,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    row = {
        "n": n,
        "steps": steps,
        "time_limit_s": time_limit_s,
        "data_s": round(data_s, 2),
        "build_s": round(res.build_s, 2),
        "solve_s": round(res.solve_s, 2),
        "wall_s": round(wall, 2),
        "status": res.status,
        "objective_usd": round(res.objective_usd, 3),
        "bound_usd": round(res.bound_usd, 3),
        "gap_pct": round(100 * res.gap, 3),
        "method": res.extra.get("method"),
        "bound_method": res.extra.get("bound_method"),
        "rounds": res.extra.get("rounds"),
        "cpu_s": round(_cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - cpu0, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_worker_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }
    # lp_dp's phases [s], its heat pumps with a cell-DP bound and the limit of each MIP [s]
    for key in (
        "lp_s",
        "dp_s",
        "fixed_lp_s",
        "hp_cell_s",
        "hp_cell_bounds",
        "hp_mip_s",
        "hp_mip_limit_s",
    ):
        if key in res.extra:
            row[key] = round(float(res.extra[key]), 2)
    if mpc_steps > 0:
        from baselines_opt.community import MPCController

        entry = next(e for e in sc.controllers if e.name == "mpc")
        ctrl = MPCController(horizon_h=entry.horizon_h or 24.0, **entry.options)
        obs = env.reset(seed=sc.seed)
        t0 = time.perf_counter()
        ctrl.reset(env)
        build = time.perf_counter() - t0
        for _ in range(mpc_steps):
            obs = env.step(ctrl.act(obs)).obs
        step_s = np.asarray(ctrl.stats["step_s"])
        row.update(
            mpc_build_s=round(build, 2),
            mpc_step_s_mean=round(float(step_s.mean()), 3),
            mpc_step_s_max=round(float(step_s.max()), 3),
            mpc_steps=mpc_steps,
        )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500, 1000])
    ap.add_argument("--time-limits", type=float, nargs="+", default=None)
    ap.add_argument("--method", default="auto", choices=["auto", "exact", "lp_dp", "columns"])
    ap.add_argument("--workers", type=int, default=2, help="column-generation processes")
    ap.add_argument("--mpc-steps", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="CSV of the rows")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:  # child: one size, JSON on the last line
        row = run_one(args.one, args.limit, args.method, args.workers, args.mpc_steps)
        print(json.dumps(row))
        return
    limits = args.time_limits or [DEFAULT_LIMITS.get(n, 600.0) for n in args.sizes]
    if len(limits) != len(args.sizes):
        ap.error("--time-limits needs one value per size")
    rows = []
    for n, lim in zip(args.sizes, limits, strict=True):
        cmd = [
            sys.executable, __file__, "--one", str(n), "--limit", str(lim), "--method",
            args.method, "--workers", str(args.workers), "--mpc-steps", str(args.mpc_steps),
        ]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode != 0 or not lines:
            print(f"N={n}: failed (exit {out.returncode}): {out.stderr[-2000:]}", flush=True)
            continue
        row = json.loads(lines[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    if rows:
        import pandas as pd

        df = pd.DataFrame(rows)
        print(df.to_string(index=False))
        if args.out is not None:
            df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
