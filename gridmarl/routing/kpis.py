"""Routing KPIs (per episode, then mean and std over traffic seeds) and the link-load figure.

======================  ==================================================================
KPI                     definition
======================  ==================================================================
``avg_delay_steps``     mean (delivery step − birth step) of the packets delivered within
                        the episode [steps]; packets still in the network are excluded (see
                        ``in_network_pkt``)
``throughput_pkt``      packets delivered within the episode [pkt]
``drops_pkt``           packets dropped at full queues (only with ``buffer_pkt``) [pkt]
``loops_pkt``           packets that were sent to a router they had visited before [pkt]
``in_network_pkt``      packets still queued or in flight at the end [pkt]
======================  ==================================================================
"""

from __future__ import annotations

import math

import numpy as np

from gridmarl.routing.env import RoutingEnv
from gridmarl.routing.topology import Topology

KPI_ORDER = ("avg_delay_steps", "throughput_pkt", "drops_pkt", "loops_pkt", "in_network_pkt")


def episode_kpis(env: RoutingEnv) -> list[dict[str, float]]:
    """One KPI dict per env of the batch, in ``KPI_ORDER``."""
    k = {name: v.detach().cpu().numpy() for name, v in env.kpis().items()}
    return [
        {
            "avg_delay_steps": float(k["avg_delay_steps"][b]),
            "throughput_pkt": float(k["delivered_pkt"][b]),
            "drops_pkt": float(k["dropped_pkt"][b]),
            "loops_pkt": float(k["loops_pkt"][b]),
            "in_network_pkt": float(k["in_network_pkt"][b]),
        }
        for b in range(env.num_envs)
    ]


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each KPI (in ``KPI_ORDER``), then ``<kpi>_std`` (sample std, 0 for one row)."""
    out: dict[str, float] = {}
    for name in KPI_ORDER:
        out[name] = float(np.mean([r[name] for r in rows]))
    for name in KPI_ORDER:
        vals = [r[name] for r in rows]
        out[f"{name}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return out


def format_mean_std(mean: float, std: float, digits: int = 2) -> str:
    """``mean ± std`` for tables."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def link_load_figure(topology: Topology, loads: dict[str, np.ndarray]):
    """One panel per controller: routers at their positions, each link drawn with width and
    colour by its load [pkt/step] (both directions summed).

    Args:
        topology: the router network.
        loads: controller label -> ``[L]`` mean packets per step sent over each directed link.
    """
    from matplotlib import cm, colormaps, colors
    from matplotlib.figure import Figure

    names = list(loads)
    fig = Figure(figsize=(5.0 * max(len(names), 1), 4.2))  # outside pyplot's registry
    axes = fig.subplots(1, max(len(names), 1), squeeze=False)
    und = topology.link_src < topology.link_dst
    pair = {
        (int(s), int(d)): i
        for i, (s, d) in enumerate(zip(topology.link_src, topology.link_dst, strict=True))
    }
    vmax = max([1e-9] + [float(np.max(v)) * 2 for v in loads.values()])
    norm = colors.Normalize(0.0, min(vmax, 2.0))
    cmap = colormaps["viridis"]
    pos = topology.pos
    for ax, name in zip(axes[0], names, strict=False):
        load = loads[name]
        for a in np.flatnonzero(und):
            s, d = int(topology.link_src[a]), int(topology.link_dst[a])
            both = float(load[a] + load[pair[(d, s)]])
            ax.plot(
                pos[[s, d], 0],
                pos[[s, d], 1],
                color=cmap(norm(both)),
                linewidth=0.8 + 6.0 * both / max(norm.vmax, 1e-9),
                zorder=1,
            )
        ax.scatter(pos[:, 0], pos[:, 1], s=18, color="black", zorder=2)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("longitude [deg]" if topology.geographic else "x [km]")
        ax.set_ylabel("latitude [deg]" if topology.geographic else "y [km]")
    fig.colorbar(
        cm.ScalarMappable(norm=norm, cmap=cmap),
        ax=axes[0].tolist(),
        label="link load, both directions [pkt/step]",
    )
    fig.suptitle(f"{topology.name}: mean link load per controller")
    return fig
