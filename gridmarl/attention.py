"""Export HAMA's attention weights for one step: CSV tables and a plot (as [HAMA] Fig. 5).

Ryu et al. 2020, arXiv:1909.12557, "Interpreting Strategies": for each agent, the inter-agent
attention it pays to each agent it sees, per group, and the inter-group attention over the
groups.  :func:`export_attention` plays an env deterministically with a HAMA policy up to the
chosen step and writes, into ``out_dir``:

* ``attention_inter_agent_step<K>.csv``: ``agent, group, slot, other, weight`` (``other`` the
  agent seen in that view slot, or ``-1`` for a non-acting entity such as a landmark; only
  visible slots);
* ``attention_inter_group_step<K>.csv``: ``agent, group, weight``;
* ``attention_step<K>.png``: the inter-agent weights as an agent × agent matrix (row: who
  attends, column: whom) beside the inter-group weights per agent.

``gridmarl attention SCENARIO --checkpoint PATH --step K`` runs it on a scenario's env.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.io import atomic_write, write_csv


def attention_tables(policy: object, obs: object, env_index: int = 0) -> tuple[pd.DataFrame, ...]:
    """Inter-agent and inter-group weight tables of ``policy`` (a HAMA learner) at ``obs``."""
    att = policy.attention(obs)  # type: ignore[attr-defined]
    view = policy.view(obs.to(policy.device))  # type: ignore[attr-defined]
    alpha = att.inter_agent[env_index].cpu()  # [N, G, E]
    beta = att.inter_group[env_index].cpu()  # [N, G]
    vis = view.mask[env_index].cpu()
    group = view.group[env_index].cpu()
    other = view.agent[env_index].cpu()
    n, g, e = alpha.shape
    rows = [
        {
            "agent": i,
            "group": int(group[i, j]),
            "slot": j,
            "other": int(other[i, j]),
            "weight": float(alpha[i, int(group[i, j]), j]),
        }
        for i in range(n)
        for j in range(e)
        if bool(vis[i, j])
    ]
    groups = [
        {"agent": i, "group": k, "weight": float(beta[i, k])} for i in range(n) for k in range(g)
    ]
    return pd.DataFrame(rows), pd.DataFrame(groups)


def plot_attention(
    inter_agent: pd.DataFrame, inter_group: pd.DataFrame, path: Path, title: str
) -> None:
    """The agent × agent inter-agent matrix and the per-agent inter-group bars, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = int(inter_group["agent"].max()) + 1
    mat = torch.zeros(n, n)
    agents = inter_agent[inter_agent["other"] >= 0]
    for r in agents.itertuples():
        mat[int(r.agent), int(r.other)] += float(r.weight)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    im = ax1.imshow(mat.numpy(), vmin=0, vmax=1, cmap="Blues")
    ax1.set_xlabel("attended agent")
    ax1.set_ylabel("attending agent")
    ax1.set_title("inter-agent attention α (within each group)")
    fig.colorbar(im, ax=ax1, fraction=0.046)
    piv = inter_group.pivot(index="agent", columns="group", values="weight")
    piv.plot.bar(stacked=True, ax=ax2, width=0.8)
    ax2.set_ylabel("inter-group attention β")
    ax2.set_ylim(0, 1)
    ax2.set_title("inter-group attention β")
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def export_attention(
    policy: object, env: MultiAgentEnv, step: int, out_dir: str | Path, seed: int = 0
) -> list[Path]:
    """Play ``env`` (reset with ``seed``) deterministically with ``policy`` for ``step`` steps,
    then write the attention at that step's observation (files in the module docstring)."""
    if step < 0 or step >= env.episode_len:
        raise ValueError(f"step {step}: allowed 0 … {env.episode_len - 1}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    obs = env.reset(seed=seed)
    with torch.no_grad():
        for _ in range(step):
            obs = env.step(policy.act(obs, deterministic=True)).obs  # type: ignore[attr-defined]
    ia, ig = attention_tables(policy, obs)
    paths = [
        write_csv(out / f"attention_inter_agent_step{step}.csv", ia),
        write_csv(out / f"attention_inter_group_step{step}.csv", ig),
    ]
    png = out / f"attention_step{step}.png"
    plot_attention(ia, ig, png, f"{type(policy).__name__} attention at step {step}")
    return [*paths, png]
