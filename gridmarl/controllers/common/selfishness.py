"""LToS interpretability: *selfishness*, the share of its own reward an agent keeps (``w_ii``),
over time and over the network (LToS seed §5, Figs. 5-6), written to a run folder.

* ``selfishness.csv``: ``step`` then one column per agent [-] (mean over the episode batch);
* ``selfishness_time.png``: every agent's selfishness over the episode (Fig. 5);
* ``selfishness_network.png``: the agents laid out by their graph (a seeded spring layout of
  ``AgentSpec.neighbors``), coloured by selfishness at four times of the episode (Fig. 6), on
  a colour scale from the lowest to the highest value seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gridmarl.core.io import atomic_write


def write_selfishness(
    trace: np.ndarray, agent_names: Sequence[str], neighbors: np.ndarray, folder: Path
) -> list[Path]:
    """Write the CSV and both figures for ``trace [T, N]``; returns the files written.

    Args:
        trace: selfishness per step and agent, each in [0, 1].
        agent_names: ``N`` column names.
        neighbors: ``[N, K]`` the graph (-1 padded), for the network layout.
        folder: the run folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(trace, columns=list(agent_names))
    frame.insert(0, "step", np.arange(len(frame)))
    csv = folder / "selfishness.csv"
    atomic_write(csv, lambda p: frame.to_csv(p, index=False, float_format="%.6g"))

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(frame["step"], trace, lw=0.8)
    ax.set(xlabel="step", ylabel="selfishness w_ii [-]", title="selfishness over time")
    t_png = folder / "selfishness_time.png"
    atomic_write(t_png, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)

    g = nx.Graph()
    g.add_nodes_from(range(trace.shape[1]))
    g.add_edges_from((i, int(j)) for i, row in enumerate(neighbors) for j in row if j >= 0)
    pos = nx.spring_layout(g, seed=0)
    times = sorted({int(t) for t in np.linspace(0, len(trace) - 1, 4)})
    # the colour scale spans the values seen (differences are often a few hundredths)
    lo, hi = float(trace.min()), float(trace.max())
    lo, hi = (lo, hi) if hi - lo > 1e-6 else (lo - 0.01, hi + 0.01)
    fig, axes = plt.subplots(1, len(times), figsize=(4 * len(times), 4), squeeze=False)
    for ax, t in zip(axes[0], times, strict=True):
        nodes = nx.draw_networkx_nodes(
            g, pos, ax=ax, node_color=trace[t], cmap="viridis", vmin=lo, vmax=hi, node_size=90
        )
        nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.4)
        ax.set_title(f"step {t}")
        ax.axis("off")
    fig.colorbar(nodes, ax=axes[0].tolist(), label="selfishness w_ii [-]")
    n_png = folder / "selfishness_network.png"
    atomic_write(n_png, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return [csv, t_png, n_png]
