"""HMF vs MFQ vs independent Q on the Bar game (``gridmarl/games/bar.py``; HMF seed, Fig. 3d).

Each method trains from scratch with the same budget, network width and exploration schedule
on ``--seeds`` training seeds; every ``--eval-every`` updates its greedy policy plays
``--eval-episodes`` validation games (seeds from the ``validate`` stream) and the means over
their nights are one point of the learning curves.  After training the greedy policy plays
``--eval-episodes`` test games (``test`` stream), once: the table's figures.  The optimum is
an attendance of capacity / N = 0.6 on every night, i.e. a mean reward per agent-night of 0.6
(the y-axis of the seed's Fig. 3d is the average reward).

Figures per game set: the mean attendance fraction, ``abs_dev`` = the mean over nights of
|attendance − 0.6| (a policy alternating between an empty and a crowded bar has a mean
attendance near 0.6 but a large ``abs_dev``) and the mean reward per agent-night.  Besides
the greedy games, ``train_reward`` is the mean reward per agent-night of the ε-greedy training
nights since the previous curve point (the seed's Fig. 3d plots the reward of the learning
episodes, exploration included); the test row's is that of the last ``--eval-every`` rounds.

Writes ``--out``/hmf_bar_curves.csv (method, seed, kind = curve | test, updates,
agent_steps, attendance, abs_dev, reward, train_reward, steps_per_s),
``--out``/hmf_bar.png (mean ± std over seeds) and prints the markdown table.

    python benchmarks/hmf_bar.py [--updates 6000] [--seeds 0 1 2]
        [--methods hmf hmf_taken hmf_ipc mfq iql] [--identity onehot|index|none]
        [--option KEY=VALUE ...] [--out docs/controllers]

``--option`` overrides a ``COMMON`` hyper-parameter for every method (e.g. ``gamma=0.5``).
A run over some ``--methods`` keeps the other methods' rows of an earlier run in the same
``--out`` (so the methods can be run one at a time) and redraws the plot and the table.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from gridmarl.controllers.common.value_learner import ValueConfig, ValueLearner
from gridmarl.controllers.hmf import HMF, HMFConfig
from gridmarl.controllers.mfq import MFQ, IndependentQ, MFQConfig
from gridmarl.core.io import atomic_write
from gridmarl.core.seeding import stream_seed
from gridmarl.games.bar import BarEnv

#: shared by every method (the seed's appendix table is not in the seed text).  ``gamma`` 0
#: and the one-hot identity were chosen on validation games and training seeds
#: (docs/controllers/hmf.md, "Bar game"): one agent moves tomorrow's observation by 1 / N,
#: and with γ > 0 the greedy policies' reaction to it made HMF's attendance cycle.
COMMON = {
    "num_envs": 8,
    "train_every": 1,
    "gradient_steps": 1,
    "buffer_size": 5_000,
    "batch_size": 32,
    "learning_starts": 100,
    "lr": 5e-4,
    "gamma": 0.0,
    "tau": 0.01,
    "eps_start": 1.0,
    "eps_end": 0.05,
    "eps_fraction": 0.5,
    "hidden": 32,
}


#: method -> (learner class, config class, method-specific options) for the Bar game
METHODS: dict[str, tuple[type, type, dict]] = {
    "hmf": (HMF, HMFConfig, {}),  # the env's 2 contiguous groups
    "hmf_taken": (HMF, HMFConfig, {"mf_action": "taken"}),
    "hmf_ipc": (HMF, HMFConfig, {"grouping": "ipc", "n_groups": 2}),
    "mfq": (MFQ, MFQConfig, {}),
    "iql": (IndependentQ, MFQConfig, {}),
}

#: the optimum attendance fraction capacity / N of the seed's game
OPTIMUM = 0.6


def best_under_exploration(
    n: int = 100, capacity: int = 60, eps: float = 0.05
) -> tuple[int, float]:
    """The best a greedy population can do on ε-greedy nights.

    ``m`` agents mean to go; each agent's action is replaced by a uniformly random one with
    probability ε, so each flips with probability ε / 2 (two actions).  Returns the ``m``
    that maximises the expected reward per agent-night and that reward [-] (exact binomial
    sums; ε = 0 gives ``(capacity, capacity / n)``).
    """
    from math import comb

    p = eps / 2.0
    best = (0, 0.0)
    for m in range(n + 1):
        go = [comb(m, i) * (1 - p) ** i * p ** (m - i) for i in range(m + 1)]
        extra = [comb(n - m, j) * p**j * (1 - p) ** (n - m - j) for j in range(n - m + 1)]
        value = 0.0
        for i, pi in enumerate(go):
            for j, pj in enumerate(extra):
                count = i + j
                value += pi * pj * (count if count <= capacity else -count)
        if value / n > best[1]:
            best = (m, value / n)
    return best


def make(method: str, spec: object, seed: int, common: dict | None = None) -> ValueLearner:
    """The learner of ``method`` (a key of ``METHODS``) for the Bar game, with the shared
    hyper-parameters ``common`` (default ``COMMON``)."""
    if method not in METHODS:
        raise SystemExit(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")
    cls, cfg_cls, own = METHODS[method]
    return cls(spec, cfg_cls(**{**(common or COMMON), **own}), seed=seed)


def parse_options(items: list[str]) -> dict:
    """``KEY=VALUE`` overrides of ``COMMON`` (each value typed as the field's default); exit 2
    naming the allowed keys on an unknown key or an unreadable value."""
    fields = {f.name: f.default for f in dataclasses.fields(ValueConfig)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            print(f"--option {item!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
            raise SystemExit(2)
        kind = type(COMMON.get(key, fields[key]))
        try:
            out[key] = kind(value)
        except ValueError:
            print(f"--option {item!r}: {key} takes a {kind.__name__}")
            raise SystemExit(2) from None
    return out


@torch.no_grad()
def play(learner: ValueLearner, seeds: list[int], identity: str = "onehot") -> dict[str, float]:
    """Greedy games, one per seed: the mean attendance fraction, the mean over nights of
    |attendance − 0.6| and the mean reward per agent-night."""
    env = BarEnv(num_envs=1, identity=identity)
    att, rew = [], []
    for s in seeds:
        learner.reset(env)
        obs = env.reset(seed=s)
        for _ in range(env.episode_len):
            step = env.step(learner.act(obs, deterministic=True))
            att.append(float(step.info["attendance"][0]))
            rew.append(float(step.reward.mean()))
            obs = step.obs
    return {
        "attendance": statistics.fmean(att),
        "abs_dev": statistics.fmean(abs(a - OPTIMUM) for a in att),
        "reward": statistics.fmean(rew),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=6000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--eval-every", type=int, default=300)
    ap.add_argument("--eval-episodes", type=int, default=8)
    ap.add_argument("--identity", default="onehot", choices=["index", "onehot", "none"])
    ap.add_argument("--option", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=Path("docs/controllers"))
    ap.add_argument("--plot-only", action="store_true", help="redraw from the CSV, no training")
    ap.add_argument(
        "--no-test", action="store_true", help="tuning: validation games only, no test games"
    )
    args = ap.parse_args()
    common = {**COMMON, **parse_options(args.option)}
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
            rows += train_one(
                method,
                seed,
                args.updates,
                args.eval_every,
                args.eval_episodes,
                common,
                args.identity,
                not args.no_test,
            )
    args.out.mkdir(parents=True, exist_ok=True)

    def write_csv(p: Path) -> None:
        with open(p, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write_csv)
    plot([r for r in rows if r["kind"] == "curve"], args.out / "hmf_bar.png")
    print(table(rows))


FIELDS = [
    "method",
    "seed",
    "kind",
    "updates",
    "agent_steps",
    "attendance",
    "abs_dev",
    "reward",
    "train_reward",
    "steps_per_s",
]


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
                    "abs_dev": float(r.get("abs_dev") or "nan"),
                    "train_reward": float(r.get("train_reward") or "nan"),
                    "reward": float(r["reward"]),
                    "steps_per_s": float(r["steps_per_s"]),
                }
            )
        return out


def train_one(
    method: str,
    seed: int,
    updates: int,
    every: int,
    episodes: int,
    common: dict | None = None,
    identity: str = "onehot",
    test_games: bool = True,
) -> list[dict]:
    """Train ``method`` on training seed ``seed``: its curve rows and (``test_games``) its
    test row."""
    common = common or COMMON
    env = BarEnv(num_envs=common["num_envs"], identity=identity)
    learner = make(method, env.spec, seed, common)
    budget = updates * common["num_envs"] * env.n
    val = [stream_seed(seed, "validate", i) for i in range(episodes)]
    rows = []
    t0 = time.perf_counter()
    train_rew: list[float] = []  # per-agent reward of the ε-greedy training nights
    for u in range(1, updates + 1):
        batch = learner.collect(env, budget)
        train_rew.append(batch.reward_per_step)
        learner.update(batch)
        if u % every == 0 or u == updates:
            figs = {**play(learner, val, identity), "train_reward": statistics.fmean(train_rew)}
            rows.append(row(method, seed, "curve", learner, figs, 0.0))
            last_train, train_rew = figs["train_reward"], []
    speed = learner.progress().agent_steps / (time.perf_counter() - t0)  # incl. evaluations
    if not test_games:  # tuning: validation games only
        print(f"{method} seed {seed}: {speed:,.0f} agent-steps/s (no test games)", flush=True)
        return rows
    test = play(learner, [stream_seed(seed, "test", i) for i in range(episodes)], identity)
    # the training reward of the last ``every`` rounds (ε = eps_end by then)
    test["train_reward"] = last_train
    rows.append(row(method, seed, "test", learner, test, speed))
    print(
        f"{method} seed {seed}: test attendance {test['attendance']:.3f}, "
        f"|att - 0.6| {test['abs_dev']:.3f}, reward {test['reward']:.3f}, "
        f"{speed:,.0f} agent-steps/s",
        flush=True,
    )
    return rows


def row(method: str, seed: int, kind: str, learner: ValueLearner, figs: dict, sps: float) -> dict:
    """One CSV row: the learner's progress and the figures of :func:`play`."""
    p = learner.progress()
    return {
        "method": method,
        "seed": seed,
        "kind": kind,
        "updates": p.updates,
        "agent_steps": p.agent_steps,
        **{k: round(v, 4) for k, v in figs.items()},
        "steps_per_s": round(sps, 1),
    }


def table(rows: list[dict]) -> str:
    """The markdown table of the test rows: mean ± std over seeds per method."""
    out = [
        "| method | seeds | test attendance (mean ± std) | per-night abs(attendance − 0.6) "
        "| reward / agent-night | training reward / agent-night (ε-greedy) "
        "| train agent-steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        test = [r for r in rows if r["method"] == method and r["kind"] == "test"]
        if not test:  # a --no-test run: the last validation point of each seed
            last: dict[int, dict] = {}
            for r in rows:
                if r["method"] == method:
                    last[r["seed"]] = r
            test = list(last.values())
            method = f"{method} (validation)"
        att = [r["attendance"] for r in test]
        rew = [r["reward"] for r in test]
        dev = [r["abs_dev"] for r in test]
        trn = [r["train_reward"] for r in test]

        def sd(v: list[float]) -> float:
            return statistics.stdev(v) if len(v) > 1 else 0.0

        out.append(
            f"| {method} | {len(test)} | {statistics.fmean(att):.3f} ± {sd(att):.3f} | "
            f"{statistics.fmean(dev):.3f} ± {sd(dev):.3f} | "
            f"{statistics.fmean(rew):.3f} ± {sd(rew):.3f} | "
            f"{statistics.fmean(trn):.3f} ± {sd(trn):.3f} | "
            f"{statistics.fmean(r['steps_per_s'] for r in test):,.0f} |"
        )
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    """Mean ± std over seeds of the greedy attendance, of |attendance − 0.6| per night, of the
    greedy reward and of the ε-greedy training reward per agent-night against agent-steps, one
    line a method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = {
        "attendance": ("greedy attendance fraction [-]", (-0.02, 1.02), OPTIMUM),
        "abs_dev": ("per-night abs(attendance − 0.6) [-]", (-0.02, 0.62), 0.0),
        "reward": ("greedy reward per agent-night [-]", (-1.02, 1.02), OPTIMUM),
        "train_reward": ("ε-greedy training reward per agent-night [-]", (-1.02, 1.02), OPTIMUM),
    }
    fig, axes = plt.subplots(2, 2, figsize=(11.0, 8.0))
    axes = axes.ravel()
    n_seeds = len({r["seed"] for r in rows})
    for (key, (label, ylim, best)), ax in zip(keys.items(), axes, strict=True):
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
        ax.axhline(best, color="k", ls="--", lw=0.8, label="optimum")
        if key == "train_reward":
            m, value = best_under_exploration(eps=COMMON["eps_end"])
            ax.axhline(value, color="k", ls=":", lw=0.8)
            ax.text(
                0.02,
                value - 0.08,
                f"best with ε = {COMMON['eps_end']}: {value:.3f} ({m} meaning to go)",
                transform=ax.get_yaxis_transform(),
                fontsize=8,
            )
        ax.set_xlabel("training agent-steps")
        ax.set_ylabel(label)
        ax.set_ylim(*ylim)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(
        f"Bar game, N = 100, C = 60: greedy play on validation games and the training nights,\n"
        f"mean ± std over {n_seeds} training seeds"
    )
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)


if __name__ == "__main__":
    main()
