"""Paired comparison of controllers (or groups of training seeds) over the episodes of one run.

Reads ``kpis_per_episode.csv`` of one or more ``gridmarl simulate --split ...`` run folders of
the same scenario and split (a controller that ran in several, such as a rule run again beside
new checkpoints, counts once: its first folder's rows).  A name ``A`` stands for the
controller labelled ``A`` or, when entries are labelled ``A@TAG`` (one per training seed), for
the mean over its tags on each episode.  For each ``A:B`` it prints, over
the episodes both ran (the same demand / data seeds, so episode-to-episode spread cancels), the
mean difference ``A − B`` and the mean ratio ``A / B`` of the KPI with their 95 % t-intervals,
the episodes where ``A`` is lower, and per tag of ``A`` the same ratio against ``B``.

    python benchmarks/paired_groups.py RUN_DIR [RUN_DIR ...] --kpi avg_travel_time_s \
        --pairs ltos:dgn dgn:dqn
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from gridmarl.protocol import interval


def per_episode(df: pd.DataFrame, name: str, kpi: str) -> pd.Series:
    """``kpi`` of ``name`` per ``(part, episode)``: the controller itself, or the mean over its
    ``name@TAG`` entries."""
    ctrl = df["controller"].astype(str)
    rows = df[(ctrl == name) | ctrl.str.startswith(name + "@")]
    if rows.empty:
        raise SystemExit(f"no controller {name!r} (or {name}@TAG) in the run")
    return rows.groupby(["part", "episode"])[kpi].mean()


def fmt(r: dict[str, float], digits: int) -> str:
    return f"{r['mean']:.{digits}f} [{r['ci95_lo']:.{digits}f}, {r['ci95_hi']:.{digits}f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", type=Path, nargs="+")
    ap.add_argument("--kpi", required=True)
    ap.add_argument("--pairs", nargs="+", required=True, help="A:B, compared as A − B and A / B")
    args = ap.parse_args()
    frames = []
    for run in args.run_dirs:
        path = run / "kpis_per_episode.csv"
        if not path.is_file():
            raise SystemExit(f"{path}: not found (a run folder of gridmarl simulate --split ...)")
        frame = pd.read_csv(path)
        if args.kpi not in frame:
            raise SystemExit(f"{path}: no column {args.kpi!r}")
        frames.append(frame)
    df = pd.concat(frames).drop_duplicates(["controller", "part", "episode"], keep="first")
    names = ", ".join(str(r) for r in args.run_dirs)
    print(f"{names}: KPI {args.kpi}; mean over episodes [95 % t-interval]")
    print("| A : B | episodes | A − B | A / B | episodes with A < B | A / B per tag of A |")
    print("|---|---|---|---|---|---|")
    for pair in args.pairs:
        a, sep, b = pair.partition(":")
        if not sep:
            raise SystemExit(f"--pairs {pair!r}: write A:B")
        va, vb = per_episode(df, a, args.kpi), per_episode(df, b, args.kpi)
        both = va.index.intersection(vb.index)
        va, vb = va[both], vb[both]
        diff, ratio = interval((va - vb).to_numpy()), interval((va / vb).to_numpy())
        ctrl = df["controller"].astype(str)
        tags = sorted(c for c in set(ctrl) if c.startswith(a + "@"))
        per_tag = []
        for t in tags:
            vt = df[ctrl == t].groupby(["part", "episode"])[args.kpi].mean()
            common = vt.index.intersection(vb.index)
            per_tag.append(f"{t}: {(vt[common] / vb[common]).mean():.3f}")
        print(
            f"| {a} : {b} | {len(both)} | {fmt(diff, 2)} | {fmt(ratio, 3)} | "
            f"{int((va < vb).sum())} of {len(both)} | {', '.join(per_tag) or '–'} |"
        )


if __name__ == "__main__":
    main()
