"""HAMA / MADDPG decision latency for one env of N agents on CPU (default sizes: hidden 256,
the seed's), on a community_50-shaped spec: 24 local features, a 3 × 3 forecast, 3 modes + 2
continuous dimensions, 3 groups, 9 neighbours (one feeder of 10).

Three deciders share the same weights and take turns, ``--block`` consecutive decisions each
(a decision is timed with its weights in cache, as in a control loop), so a busy machine
slows them alike: ``hama`` (``HGAT.forward``), ``hama_literal`` (the same network
evaluated as the seed writes it: every MLP fed the concatenated ``[x_i, z_ij]`` /
``[s_i, e_ij]`` / ``[s_i, h_i^g]`` of each pair, no per-row reuse) and ``maddpg`` (the flat MLP
ablation).  Prints median, p10 and p90 [ms], the multiply-accumulates per decision (a count,
independent of the machine's load), the thread's CPU time (what a busy machine's waits leave
out), the thread count and the load average before and after.

    python benchmarks/hama_latency.py [--agents 50] [--repeats 200] [--hidden 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from gridmarl.controllers.common.hgat import HGAT, Attention, masked_softmax
from gridmarl.controllers.hama import HAMA, HAMAConfig
from gridmarl.controllers.maddpg import MADDPG
from gridmarl.core.types import AgentSpec, Observation


def spec_of(n: int) -> AgentSpec:
    """Feeders of 10 in index order (everyone sees the other 9 of its feeder), 3 groups."""
    nb = torch.tensor(
        [[j for j in range(10 * (i // 10), 10 * (i // 10) + 10) if j != i] for i in range(n)]
    )
    return AgentSpec(
        n_agents=n,
        local_dim=24,
        forecast_len=3,
        forecast_dim=3,
        state_dim=25,
        global_dim=8,
        n_discrete=3,
        n_continuous=2,
        groups=torch.arange(n) % 3,
        neighbors=nb,
    )


class LiteralHGAT(HGAT):
    """:class:`HGAT` evaluated literally: each MLP reads the concatenated pair input."""

    def forward(
        self,
        own: Tensor,
        ent: Tensor,
        kind: Tensor,
        group: Tensor,
        mask: Tensor,
        n_groups: int,
    ) -> tuple[Tensor, Attention]:
        """As ``HGAT.forward``, with ``[x_i, z_ij]``, ``[s_i, e_ij]``, ``[s_i, h_i^g]`` built."""
        m, e = ent.shape[:2]
        s = F.relu(self.f_self(own))
        x_ij = torch.cat([own.unsqueeze(1).expand(m, e, own.shape[-1]), ent], -1)
        s_e = s.unsqueeze(1).expand(m, e, s.shape[-1])
        emb = s.new_zeros(m, e, s.shape[-1])
        logit = s.new_zeros(m, e)
        for k in range(self.kinds):
            cols = (kind == k).nonzero().squeeze(-1)
            e_k = F.relu(self.f_emb[k](x_ij[:, cols]))
            emb[:, cols] = e_k
            logit[:, cols] = self.f_att[k](torch.cat([s_e[:, cols], e_k], -1)).squeeze(-1)
        in_group = group.unsqueeze(1) == torch.arange(n_groups).view(1, -1, 1)
        member = in_group & mask.unsqueeze(1)
        alpha = masked_softmax(logit.unsqueeze(1).expand(m, n_groups, e), member)
        h_g = alpha @ emb
        s_g = s.unsqueeze(1).expand(m, n_groups, s.shape[-1])
        beta = masked_softmax(self.f_gatt(torch.cat([s_g, h_g], -1)).squeeze(-1), member.any(-1))
        h = (beta.unsqueeze(-1) * h_g).sum(1)
        return torch.cat([s, h], -1), Attention(alpha, beta)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=256, help="MLP width (seed: 256)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--block", type=int, default=10, help="consecutive calls per turn")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = spec_of(args.agents)
    n = args.agents
    obs = Observation(
        local=torch.randn(1, n, 24),
        forecast=torch.randn(1, n, 3, 3),
        state=torch.randn(1, n, 25),
        global_=torch.randn(1, 8),
        action_mask=torch.ones(1, n, 3, dtype=torch.bool),
    )
    cfg = HAMAConfig(hidden=args.hidden)
    hama = HAMA(spec, cfg, "cpu", 0)
    literal = HAMA(spec, cfg, "cpu", 0)
    for enc in literal.actor.encoders:
        enc.__class__ = LiteralHGAT
    deciders = {"hama": hama, "hama_literal": literal, "maddpg": MADDPG(spec, cfg, "cpu", 0)}
    a, b = hama.act(obs), literal.act(obs)
    assert torch.equal(a.discrete, b.discrete)
    gap = (a.continuous - b.continuous).abs().max()
    print(f"max |Δ continuous action| hama vs literal: {gap:.2e}")
    macs = {}
    for name, ctrl in deciders.items():
        with FlopCounterMode(display=False) as fc:
            ctrl.act(obs)
        macs[name] = fc.get_total_flops() / 2
        for _ in range(10):
            ctrl.act(obs)
    # this CPU's float32 matrix product rate on a typical HGAT layer: [500 pairs, d] × [d, d]
    x, w = torch.randn(500, args.hidden), torch.randn(args.hidden, args.hidden)
    calls = {name: ctrl.act for name, ctrl in deciders.items()}
    calls["sgemm"] = lambda _obs: torch.mm(x, w)
    macs["sgemm"] = 500 * args.hidden**2
    load0 = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for r in range(max(1, args.repeats // args.block)):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            calls[name](obs)  # its weights back in cache after the others ran
            for _ in range(args.block):
                t0, c0 = time.perf_counter(), time.thread_time()
                calls[name](obs)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.thread_time() - c0)
    load1 = os.getloadavg()
    print(
        f"N={n}, hidden {args.hidden}, {torch.get_num_threads()} thread(s), {args.repeats} "
        f"repeats; load average (1/5/15 min) before {load0[0]:.2f}/{load0[1]:.2f}/"
        f"{load0[2]:.2f}, after {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f} on "
        f"{os.cpu_count()} cores"
    )
    med = {}
    for name, ts in times.items():
        ts.sort()
        med[name] = ts[len(ts) // 2]
        cs = sorted(cpu[name])
        print(
            f"{name}: median {1e3 * med[name]:.2f} ms, p10 {1e3 * ts[len(ts) // 10]:.2f} ms, "
            f"p90 {1e3 * ts[(9 * len(ts)) // 10]:.2f} ms per decision (thread CPU time: median "
            f"{1e3 * cs[len(cs) // 2]:.2f} ms); {macs[name] / 1e6:.1f} M multiply-accumulates"
        )
    rate = macs["sgemm"] / med["sgemm"]
    print(
        f"sgemm rate (median) {rate / 1e9:.1f} G multiply-accumulates/s: HAMA's matrix "
        f"products alone take {1e3 * macs['hama'] / rate:.2f} ms at that rate"
    )
    print(
        f"median ratios: hama / maddpg {med['hama'] / med['maddpg']:.2f}, "
        f"hama_literal / hama {med['hama_literal'] / med['hama']:.2f}"
    )


if __name__ == "__main__":
    main()
