"""HMF vs MFQ vs independent Q on the Bar game (``gridmarl/games/bar.py``; HMF seed, Fig. 3d).

Each method trains from scratch with the same budget, network width and exploration schedule
on ``--seeds`` training seeds; every ``--eval-every`` updates its greedy policy plays
``--eval-episodes`` validation games (seeds from the ``validate`` stream) and the mean
attendance fraction over their nights is one point of the learning curve.  After training
the greedy policy plays ``--eval-episodes`` test games (``test`` stream), once: the table's
final attendance and reward.  The optimum attendance is capacity / N = 0.6 (mean reward per
agent per night 0.6).

Writes ``--out``/hmf_bar_curves.csv (method, seed, kind = curve | test, updates,
agent_steps, attendance, reward, steps_per_s),
``--out``/hmf_bar.png (mean ± std over seeds) and prints the markdown table.

    python benchmarks/hmf_bar.py [--updates 1500] [--seeds 0 1 2]
        [--methods hmf hmf_taken hmf_ipc mfq iql] [--out docs/controllers]

A run over some ``--methods`` keeps the other methods' rows of an earlier run in the same
``--out`` (so the methods can be run one at a time) and redraws the plot and the table.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import torch

from gridmarl.controllers.common.value_learner import ValueLearner
from gridmarl.controllers.hmf import HMF, HMFConfig
from gridmarl.controllers.mfq import MFQ, IndependentQ, MFQConfig
from gridmarl.core.io import atomic_write
from gridmarl.core.seeding import stream_seed
from gridmarl.games.bar import BarEnv

#: shared by every method (the seed's appendix table is not in the seed text)
COMMON = {
    "num_envs": 8,
    "train_every": 1,
    "gradient_steps": 1,
    "buffer_size": 5_000,
    "batch_size": 32,
    "learning_starts": 100,
    "lr": 5e-4,
    "gamma": 0.9,
    "tau": 0.01,
    "eps_start": 1.0,
    "eps_end": 0.05,
    "eps_fraction": 0.5,
    "hidden": 32,
}


#: method -> (learner class, config) for the Bar game
METHODS = {
    "hmf": (HMF, HMFConfig(**COMMON)),  # the env's 2 contiguous groups
    "hmf_taken": (HMF, HMFConfig(**COMMON, mf_action="taken")),
    "hmf_ipc": (HMF, HMFConfig(**COMMON, grouping="ipc", n_groups=2)),
    "mfq": (MFQ, MFQConfig(**COMMON)),
    "iql": (IndependentQ, MFQConfig(**COMMON)),
}


def make(method: str, spec: object, seed: int) -> ValueLearner:
    """The learner of ``method`` (a key of ``METHODS``) for the Bar game."""
    if method not in METHODS:
        raise SystemExit(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")
    cls, cfg = METHODS[method]
    return cls(spec, cfg, seed=seed)


@torch.no_grad()
def play(learner: ValueLearner, seeds: list[int]) -> tuple[float, float]:
    """Greedy games, one per seed: mean attendance fraction and mean reward per agent-night."""
    env = BarEnv(num_envs=1)
    att, rew = [], []
    for s in seeds:
        learner.reset(env)
        obs = env.reset(seed=s)
        for _ in range(env.episode_len):
            step = env.step(learner.act(obs, deterministic=True))
            att.append(float(step.info["attendance"][0]))
            rew.append(float(step.reward.mean()))
            obs = step.obs
    return statistics.fmean(att), statistics.fmean(rew)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=1500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-episodes", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("docs/controllers"))
    ap.add_argument("--plot-only", action="store_true", help="redraw from the CSV, no training")
    args = ap.parse_args()
    torch.set_num_threads(1)
    path = args.out / "hmf_bar_curves.csv"
    # earlier runs of other methods are kept: a method's rows are replaced when it runs again
    if args.plot_only:
        rows = read_rows(path)
        plot([r for r in rows if r["kind"] == "curve"], args.out / "hmf_bar.png")
        print(table(rows))
        return
    rows = [r for r in read_rows(path) if r["method"] not in args.methods]
    for method in args.methods:
        for seed in args.seeds:
            rows += train_one(method, seed, args.updates, args.eval_every, args.eval_episodes)
    args.out.mkdir(parents=True, exist_ok=True)

    def write_csv(p: Path) -> None:
        with open(p, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write_csv)
    plot([r for r in rows if r["kind"] == "curve"], args.out / "hmf_bar.png")
    print(table(rows))


FIELDS = ["method", "seed", "kind", "updates", "agent_steps", "attendance", "reward", "steps_per_s"]


def read_rows(path: Path) -> list[dict]:
    """The rows of an earlier run's CSV (none when absent), numbers parsed."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        out = []
        for r in csv.DictReader(fh):
            out.append(
                {
                    **r,
                    "seed": int(r["seed"]),
                    "updates": int(r["updates"]),
                    "agent_steps": int(r["agent_steps"]),
                    "attendance": float(r["attendance"]),
                    "reward": float(r["reward"]),
                    "steps_per_s": float(r["steps_per_s"]),
                }
            )
        return out


def train_one(method: str, seed: int, updates: int, every: int, episodes: int) -> list[dict]:
    """Train ``method`` on training seed ``seed``: its curve rows and its test row."""
    env = BarEnv(num_envs=COMMON["num_envs"])
    learner = make(method, env.spec, seed)
    budget = updates * COMMON["num_envs"] * env.n
    val = [stream_seed(seed, "validate", i) for i in range(episodes)]
    rows = []
    t0 = time.perf_counter()
    for u in range(1, updates + 1):
        learner.update(learner.collect(env, budget))
        if u % every == 0 or u == updates:
            att, rew = play(learner, val)
            rows.append(row(method, seed, "curve", learner, att, rew, 0.0))
    speed = learner.progress().agent_steps / (time.perf_counter() - t0)  # incl. evaluations
    att, rew = play(learner, [stream_seed(seed, "test", i) for i in range(episodes)])
    rows.append(row(method, seed, "test", learner, att, rew, speed))
    print(f"{method} seed {seed}: test attendance {att:.3f}, {speed:,.0f} agent-steps/s")
    return rows


def row(
    method: str, seed: int, kind: str, learner: ValueLearner, att: float, rew: float, sps: float
) -> dict:
    p = learner.progress()
    return {
        "method": method,
        "seed": seed,
        "kind": kind,
        "updates": p.updates,
        "agent_steps": p.agent_steps,
        "attendance": round(att, 4),
        "reward": round(rew, 4),
        "steps_per_s": round(sps, 1),
    }


def table(rows: list[dict]) -> str:
    """The markdown table of the test rows: mean ± std over seeds per method."""
    out = [
        "| method | seeds | test attendance (mean ± std) | mean abs(attendance − 0.6) "
        "| reward / agent-night | train agent-steps/s |",
        "|---|---|---|---|---|---|",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        test = [r for r in rows if r["method"] == method and r["kind"] == "test"]
        att = [r["attendance"] for r in test]
        rew = [r["reward"] for r in test]

        def sd(v: list[float]) -> float:
            return statistics.stdev(v) if len(v) > 1 else 0.0

        out.append(
            f"| {method} | {len(test)} | {statistics.fmean(att):.3f} ± {sd(att):.3f} | "
            f"{statistics.fmean(abs(a - 0.6) for a in att):.3f} | "
            f"{statistics.fmean(rew):.3f} ± {sd(rew):.3f} | "
            f"{statistics.fmean(r['steps_per_s'] for r in test):,.0f} |"
        )
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    """Mean ± std over seeds of the greedy attendance and of the reward per agent-night against
    agent-steps, one line a method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.0))
    for key, ax in zip(("attendance", "reward"), axes, strict=True):
        for method in dict.fromkeys(r["method"] for r in rows):
            pts: dict[int, list[float]] = {}
            for r in rows:
                if r["method"] == method:
                    pts.setdefault(r["agent_steps"], []).append(r[key])
            xs = sorted(pts)
            mean = [statistics.fmean(pts[x]) for x in xs]
            sd = [statistics.stdev(pts[x]) if len(pts[x]) > 1 else 0.0 for x in xs]
            lo = [m - s for m, s in zip(mean, sd, strict=True)]
            hi = [m + s for m, s in zip(mean, sd, strict=True)]
            ax.plot(xs, mean, label=method)
            ax.fill_between(xs, lo, hi, alpha=0.15)
        ax.axhline(0.6, color="k", ls="--", lw=0.8, label="optimum 0.6")
        ax.set_xlabel("training agent-steps")
    axes[0].set_ylabel("greedy attendance fraction [-]")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].set_ylabel("greedy reward per agent-night [-]")
    axes[1].set_ylim(-1.02, 1.02)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle("Bar game, N = 100, C = 60: validation games, mean ± std over 3 training seeds")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)


if __name__ == "__main__":
    main()
