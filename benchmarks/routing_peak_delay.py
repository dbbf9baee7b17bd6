"""Average delay overall and at the peak segment, per controller, on a routing scenario's
traffic seeds (mean ± std over the seeds).

    python benchmarks/routing_peak_delay.py --checkpoint data/checkpoints/routing_ibm_matppo.pt
    python benchmarks/routing_peak_delay.py --checkpoint runs/routing_ibm/<run>/checkpoints/best.pt
    python benchmarks/routing_peak_delay.py --test --set evaluation.test_episodes=50 \
        --checkpoint data/checkpoints/routing_ibm_matppo.pt     # the protocol's test seeds

Controllers: the scenario's (shortest_path_hops, shortest_path_distance, mcf) plus, with
``--checkpoint``, a learned ``matppo`` policy.  Each runs one ``B = 1`` episode per traffic seed
(``seed``, ``seed + 1``, … as ``simulate``), the env keeping a per-packet log.  Columns:

* ``avg delay`` = mean (delivery step − birth step) of the packets delivered in the episode
  [steps] (``simulate``'s ``avg_delay_steps``);
* ``peak delay`` = the same over the packets **born** in the peak segment (``--peak``, default
  steps 100–199, LToS's 10/3 pkt/step stretch) and delivered in the episode [steps];
* ``peak undelivered`` = packets born in the peak segment still in the network at the end [pkt];
* ``throughput`` = packets delivered [pkt].

A last row, ``no-queueing bound``, is the mean shortest-path delay (by link delay, no waiting in
any queue) of the same packets: no routing can deliver them faster on average.

A second table gives each controller's ratio to ``--baseline`` (default
``shortest_path_distance``), overall and at the peak: ratio of the mean delays over the seeds,
with a 95 % paired bootstrap interval (seeds resampled with replacement, 10,000 draws).  Three
seeds are few: the mean delay of one episode varies between traffic seeds (standard deviation
4–17 % of the mean on IBM, depending on the controller), so
``--set evaluation.episodes=50`` gives the ratio that holds in expectation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from gridmarl.config import ControllerEntry, load_scenario
from gridmarl.core.seeding import stream_seeds
from gridmarl.experiment import run_episode
from gridmarl.routing.simulate import build_controller, load_topology, make_env

ROOT = Path(__file__).resolve().parents[1]


def _ms(x: list[float], digits: int = 2) -> str:
    a = np.asarray(x, dtype=float)
    sd = a.std(ddof=1) if a.size > 1 else 0.0
    return f"{a.mean():.{digits}f} ± {sd:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "routing_ibm.yaml"))
    ap.add_argument("--checkpoint", action="append", default=[], help="matppo checkpoint(s)")
    ap.add_argument("--peak", type=int, nargs=2, default=(100, 200), help="[start, end) [steps]")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--baseline", default="shortest_path_distance", help="ratio denominator")
    ap.add_argument(
        "--test",
        action="store_true",
        help="run on the test split's seeds (evaluation.test_episodes of the test seed stream, "
        "docs/protocol.md) instead of seed, seed + 1, ...",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sc = load_scenario(args.scenario, args.overrides)
    topo = load_topology(sc)
    if args.test:
        seeds = stream_seeds(sc.seed, "test", sc.evaluation.test_episodes)
    else:
        seeds = [sc.seed + i for i in range(sc.evaluation.episodes)]
    entries = list(sc.controllers) + [
        ControllerEntry(
            name="matppo",
            label=f"matppo[{Path(p).parent.parent.name}/{Path(p).stem}]",
            checkpoint=str(Path(p).resolve()),
        )
        for p in args.checkpoint
    ]
    names = [e.display_name for e in entries]
    if args.baseline not in names:
        ap.error(f"--baseline {args.baseline!r} is not a controller of this run; allowed: {names}")
    lo, hi = args.peak
    print(f"{sc.name}: seeds {seeds}, peak = packets born in steps [{lo}, {hi})\n")
    print(
        "| controller | avg delay [steps] | peak delay [steps] | peak undelivered [pkt] | "
        "throughput [pkt] | wall [s] |"
    )
    print("|---|---|---|---|---|---|")
    bound_all, bound_peak = [], []
    dist = topo.delay_matrix()
    for seed in seeds:
        env = make_env(sc, topo, seed=seed)
        env.reset(seed=seed)
        counts, src, dst = env.arrivals()
        born = np.repeat(np.arange(len(counts)), counts)
        order = np.concatenate([np.arange(c) for c in counts])
        d = dist[src[born, order], dst[born, order]]
        bound_all.append(float(d.mean()))
        bound_peak.append(float(d[(born >= lo) & (born < hi)].mean()))
    per_seed: dict[str, tuple[list[float], list[float]]] = {}
    for entry in entries:
        t0 = time.perf_counter()
        ctrl, _, _ = build_controller(entry, topo, sc)
        avg, peak, und, thr = [], [], [], []
        for seed in seeds:
            env = make_env(sc, topo, seed=seed)
            env.log_packets = True
            run_episode(env, ctrl, seed=seed)
            k = env.kpis()
            log = env.packet_log()
            ok = log[~log["dropped"]]
            born_peak = ok[(ok["born"] >= lo) & (ok["born"] < hi)]
            n_peak = int(env.arrivals()[0][lo:hi].sum())
            avg.append(float(k["avg_delay_steps"][0]))
            peak.append(float((born_peak["delivered_step"] - born_peak["born"]).mean()))
            und.append(float(n_peak - len(born_peak)))
            thr.append(float(k["delivered_pkt"][0]))
        per_seed[entry.display_name] = (avg, peak)
        print(
            f"| {entry.display_name} | {_ms(avg)} | {_ms(peak)} | {_ms(und, 1)} | "
            f"{_ms(thr, 1)} | {time.perf_counter() - t0:.1f} |"
        )
    print(f"| no-queueing bound | {_ms(bound_all)} | {_ms(bound_peak)} | | | |")
    _print_ratios(per_seed, args.baseline, len(seeds))


def _ratio_ci(x: np.ndarray, y: np.ndarray, draws: int = 10_000) -> tuple[float, float, float]:
    """Ratio of means ``x.mean() / y.mean()`` and its 95 % paired bootstrap interval."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(x), (draws, len(x)))
    r = x[idx].mean(1) / y[idx].mean(1)
    return float(x.mean() / y.mean()), float(np.quantile(r, 0.025)), float(np.quantile(r, 0.975))


def _print_ratios(
    per_seed: dict[str, tuple[list[float], list[float]]], baseline: str, n_seeds: int
) -> None:
    """Second table: delay ratio to ``baseline``, overall and at the peak, paired over seeds."""
    base_avg, base_peak = (np.asarray(v) for v in per_seed[baseline])
    print(f"\nratio to {baseline} (ratio of means over {n_seeds} seeds, 95 % paired bootstrap)\n")
    print("| controller | avg delay ratio | peak delay ratio |")
    print("|---|---|---|")
    for name, (avg, peak) in per_seed.items():
        if name == baseline:
            continue
        cells = []
        for x, y in ((avg, base_avg), (peak, base_peak)):
            r, lo, hi = _ratio_ci(np.asarray(x), y)
            cells.append(f"{r:.3f} [{lo:.3f}, {hi:.3f}]")
        print(f"| {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
