"""Average delay overall and at the peak segment, per controller, on a routing scenario's
traffic seeds (mean ± std over the seeds).

    python benchmarks/routing_peak_delay.py --checkpoint data/checkpoints/routing_ibm_matppo.pt
    python benchmarks/routing_peak_delay.py --checkpoint runs/routing_ibm/<run>/checkpoints/best.pt

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
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from gridmarl.config import ControllerEntry, load_scenario
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sc = load_scenario(args.scenario, args.overrides)
    topo = load_topology(sc)
    seeds = [sc.seed + i for i in range(sc.evaluation.episodes)]
    entries = list(sc.controllers) + [
        ControllerEntry(
            name="matppo",
            label=f"matppo[{Path(p).parent.parent.name}/{Path(p).stem}]",
            checkpoint=str(Path(p).resolve()),
        )
        for p in args.checkpoint
    ]
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
        print(
            f"| {entry.display_name} | {_ms(avg)} | {_ms(peak)} | {_ms(und, 1)} | "
            f"{_ms(thr, 1)} | {time.perf_counter() - t0:.1f} |"
        )
    print(f"| no-queueing bound | {_ms(bound_all)} | {_ms(bound_peak)} | | | |")


if __name__ == "__main__":
    main()
