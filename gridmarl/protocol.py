"""The evaluation protocol's splits (``docs/protocol.md``): run a scenario's controllers on every
episode of one split and summarise them with means, standard deviations and 95 % intervals.

A domain's simulate module provides ``split_parts(scenario, split) -> list[SplitPart]``: what
the ``test`` (or ``validate``, ``dev``) split is in that domain (energy: one part per window;
traffic and routing: one part holding the split's demand / traffic seeds, drawn from the seed
streams of ``gridmarl.core.seeding``), ``simulate(scenario, console, seeds=None)``, and
optionally ``PAIRED_BASELINE = (kpi, controller)``: the summary then adds, per controller, the
mean over episodes of ``kpi`` divided by that controller's ``kpi`` on the same episode.

Every controller of the scenario runs on every part, each part in isolation
(``gridmarl.experiment.isolated``): a part that fails as a whole, or a controller that fails on
one, is recorded (``SimulationResult.errors`` / the controller's ``error``) and the summary is
taken over the episodes that ran.  An *episode* is one window (a part
without a ``kpis_per_seed`` table) or one seed (the rows of the part's ``kpis_per_seed``
table).  Entries labelled ``NAME@TAG`` (for example ``matppo@s7``, one per training seed) are
summarised once more as ``NAME``: the mean over tags of each tag's mean over episodes, and the
standard deviation over tags (ddof 1): the spread that comes from training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gridmarl.experiment import ControllerResult, SimulationResult, isolated

SPLITS = ("evaluate", "validate", "dev", "test")


@dataclass(frozen=True)
class SplitPart:
    """One simulate call of a split.

    Attributes:
        label: names the part in tables (``2017-02-13+7d``, ``test seeds``).
        scenario: the scenario to simulate (energy: ``window.evaluate`` set to the part's window).
        seeds: episode seeds for domains that evaluate over seeds, else None.
    """

    label: str
    scenario: Any
    seeds: list[int] | None = None


def t95(n: int) -> float:
    """Two-sided 95 % Student-t quantile for ``n`` samples (``n - 1`` degrees of freedom)."""
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1)) if n > 1 else math.nan


def interval(values: np.ndarray) -> dict[str, float]:
    """``n``, mean, std (ddof 1) and the 95 % t-interval of the mean of ``values``."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    std = float(v.std(ddof=1)) if n > 1 else math.nan
    half = t95(n) * std / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "ci95_lo": mean - half, "ci95_hi": mean + half}


def episode_table(parts: list[tuple[SplitPart, SimulationResult]]) -> pd.DataFrame:
    """One row per controller and episode: ``controller, part, episode`` and the KPIs."""
    rows: list[dict[str, Any]] = []
    for part, res in parts:
        per_seed = res.tables.get("kpis_per_seed")
        if per_seed is not None:
            for rec in per_seed.to_dict("records"):
                ctrl = rec.pop("controller")
                seed = rec.pop("seed")
                rows.append({"controller": ctrl, "part": part.label, "episode": seed, **rec})
        else:
            for c in res.controllers:
                err = {"error": c.error} if c.error else {}
                rows.append(
                    {
                        "controller": c.name,
                        "part": part.label,
                        "episode": part.label,
                        **c.kpis,
                        **err,
                    }
                )
    return pd.DataFrame(rows)


def add_paired_ratio(episodes: pd.DataFrame, kpi: str, baseline: str) -> str | None:
    """Add column ``<kpi>_vs_<baseline>``: each row's ``kpi`` divided by ``baseline``'s on the
    same episode (a paired ratio, so episode-to-episode spread cancels).  Returns the column
    name, or None when the baseline did not run."""
    base = episodes[episodes["controller"] == baseline].set_index(["part", "episode"])[kpi]
    if base.empty:
        return None
    col = f"{kpi}_vs_{baseline}"
    key = list(zip(episodes["part"], episodes["episode"], strict=True))
    episodes[col] = episodes[kpi].to_numpy() / base.reindex(key).to_numpy()
    return col


def summary_table(episodes: pd.DataFrame, kpis: list[str]) -> pd.DataFrame:
    """Per controller (and per ``NAME`` of ``NAME@TAG`` groups) and KPI: n, mean, std, 95 %
    interval over episodes; groups add ``tags`` and ``std_over_tags``."""
    rows: list[dict[str, Any]] = []
    order = list(dict.fromkeys(episodes["controller"]))
    for ctrl in order:
        sub = episodes[episodes["controller"] == ctrl]
        for k in kpis:
            if k in sub:
                rows.append({"controller": ctrl, "kpi": k, **interval(sub[k].to_numpy())})
    groups: dict[str, list[str]] = {}
    for ctrl in order:
        if "@" in ctrl:
            groups.setdefault(ctrl.split("@", 1)[0], []).append(ctrl)
    for name, members in groups.items():
        sub = episodes[episodes["controller"].isin(members)]
        for k in kpis:
            if k not in sub:
                continue
            per_tag = sub.groupby("controller")[k].mean().to_numpy()
            row = {"controller": name, "kpi": k, **interval(sub[k].to_numpy())}
            row["mean"] = float(per_tag.mean())
            row["tags"] = len(per_tag)
            row["std_over_tags"] = float(per_tag.std(ddof=1)) if len(per_tag) > 1 else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def _fmt(x: float, digits: int) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:,.{digits}f}"


def summary_markdown(summary: pd.DataFrame, kpis: list[str], split: str) -> str:
    """A markdown table: mean ± std [95 % interval] per controller and KPI."""
    head = "| controller | " + " | ".join(kpis) + " |"
    lines = [
        f"**Split `{split}`**: mean ± std over episodes [95 % interval of the mean]; rows "
        "NAME summarise the NAME@TAG entries (± std over tags, i.e. training seeds).",
        "",
        head,
        "|---" * (len(kpis) + 1) + "|",
    ]
    for ctrl in dict.fromkeys(summary["controller"]):
        cells = []
        for k in kpis:
            r = summary[(summary["controller"] == ctrl) & (summary["kpi"] == k)]
            if r.empty:
                cells.append("")
                continue
            r = r.iloc[0]
            d = 3 if abs(r["mean"]) < 10 else 1
            spread = r.get("std_over_tags", math.nan)
            if isinstance(spread, float) and math.isfinite(spread):
                cells.append(f"{_fmt(r['mean'], d)} ± {_fmt(spread, d)} (seeds)")
            else:
                cells.append(
                    f"{_fmt(r['mean'], d)} ± {_fmt(r['std'], d)} "
                    f"[{_fmt(r['ci95_lo'], d)}, {_fmt(r['ci95_hi'], d)}]"
                )
        lines.append(f"| {ctrl} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_split(sim: Any, scenario: Any, split: str, console: Any = None) -> SimulationResult:
    """Run ``scenario``'s controllers on every part of ``split`` and summarise them.

    Args:
        sim: the domain's simulate module (``split_parts`` and ``simulate``).
        scenario: a validated scenario.
        split: one of ``SPLITS`` other than ``evaluate``.
        console: rich console for progress, or None.

    Returns:
        A ``SimulationResult`` whose controllers hold the mean KPIs over the split's episodes
        (``<kpi>_std``, ``<kpi>_ci95_lo`` / ``_hi`` beside each headline KPI) and whose tables
        are ``kpis_per_episode`` and ``summary``.
    """
    from gridmarl.core.errors import ScenarioError

    if split not in SPLITS or split == "evaluate":
        raise ScenarioError(f"--split {split!r}; allowed: {', '.join(s for s in SPLITS)}")
    parts = sim.split_parts(scenario, split)
    if not parts:
        raise ScenarioError(f"{scenario.source}: the scenario defines no {split!r} episodes")
    done: list[tuple[SplitPart, SimulationResult]] = []
    errors: list[str] = []
    for i, part in enumerate(parts):
        if console is not None:
            console.print(f"[bold]{split} part {i + 1}/{len(parts)}: {part.label}[/bold]")
        res, err = isolated(
            lambda part=part: sim.simulate(part.scenario, console=console, seeds=part.seeds),
            console,
            part.label,
        )
        if res is None:  # the whole episode failed (e.g. its data): the others still count
            errors.append(f"{split} part {part.label}: {err}")
            continue
        done.append((part, res))
        errors += [f"{part.label}: {f}" for f in res.failures()]
    if not done:
        raise RuntimeError(f"every part of the {split!r} split failed: " + "; ".join(errors))
    headline = [k for k in done[0][1].headline if k != "wall_s"]
    episodes = episode_table(done)
    paired = getattr(sim, "PAIRED_BASELINE", None)
    if paired is not None:
        kpi, base = paired
        col = add_paired_ratio(episodes, kpi, base)
        if col is not None:
            headline.insert(headline.index(kpi) + 1, col)
    summary = summary_table(episodes, headline)
    controllers: list[ControllerResult] = []
    for ctrl in dict.fromkeys(summary["controller"]):
        kp: dict[str, float] = {}
        for k in headline:
            r = summary[(summary["controller"] == ctrl) & (summary["kpi"] == k)]
            if r.empty:
                continue
            r = r.iloc[0]
            kp[k] = float(r["mean"])
            kp[f"{k}_std"] = float(r["std"])
            kp[f"{k}_ci95_lo"] = float(r["ci95_lo"])
            kp[f"{k}_ci95_hi"] = float(r["ci95_hi"])
            if "std_over_tags" in r and pd.notna(r["std_over_tags"]):
                kp[f"{k}_std_over_seeds"] = float(r["std_over_tags"])
        n_ep = int(summary[summary["controller"] == ctrl]["n"].max())
        wall = sum(c.wall_s for _, res in done for c in res.controllers if c.name == ctrl)
        failed = [
            f"{p.label}: {c.error}"
            for p, res in done
            for c in res.controllers
            if c.name == ctrl and c.error
        ]
        controllers.append(
            ControllerResult(
                ctrl,
                kp,
                wall_s=wall,
                notes=f"{n_ep} episodes" + (f", {len(failed)} failed" if failed else ""),
                error="; ".join(failed),
            )
        )
    text = summary_markdown(summary, headline, split)
    text += "\n\n" + "\n\n".join(f"*{p.label}*: {r.summary}" for p, r in done if r.summary)
    return SimulationResult(
        scenario=scenario,
        controllers=controllers,
        headline=headline,
        tables={"kpis_per_episode": episodes, "summary": summary},
        summary=text,
        errors=[e for e in errors if not any(e.startswith(f"{p.label}: ") for p, _ in done)],
        extra_manifest={
            "split": split,
            "parts": [{"label": p.label, "seeds": p.seeds} for p, _ in done],
            "part_manifests": [r.extra_manifest for _, r in done],
        },
    )
