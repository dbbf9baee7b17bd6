"""``gridmarl simulate`` for ``domain: energy``: every listed controller over the evaluation
window, accounted by the same env, compared with the perfect-foresight MILP.

Headline KPI: **share of optimal savings captured** = (C_no_control − C) / (C_no_control −
C_milp), against the MILP's best schedule; ``share_basis`` says whether that schedule is the
``optimum`` (gap closed) or only the ``incumbent`` at the time limit, and
``share_vs_bound_pct`` measures the same share against the MILP's proven lower bound (the
true share lies between the two).  Beside it, two columns that flatter a controller less
(docs/protocol.md): **cost ÷ MILP cost** (``cost_vs_milp``) and the **share of the
rule_based → MILP gap closed** ((C_rule_based − C) / (C_rule_based − C_milp),
``rule_gap_closed_pct``).  ``no_control``, ``rule_based`` and ``milp`` are always run as
references (reported only if the scenario lists them) so the three are always defined when the
MILP solves.  Each controller runs in isolation (``gridmarl.experiment.isolated``): one that
fails becomes a row with its error and NaN KPIs.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from gridmarl.config import ControllerEntry, resolve_path
from gridmarl.core.controller import Controller
from gridmarl.core.errors import ScenarioError
from gridmarl.core.types import PolicyShape
from gridmarl.experiment import (
    ControllerResult,
    SimulationResult,
    failed_result,
    isolated,
    run_episode,
)

HEADLINE = [
    "cost_usd",
    "savings_vs_no_control_usd",
    "share_of_optimal_savings_pct",
    "share_vs_bound_pct",
    "cost_vs_milp",
    "rule_gap_closed_pct",
    "peak_import_kw",
    "daily_peak_kw",
    "load_factor",
    "ramping_kw",
    "co2_kg",
    "self_sufficiency_pct",
    "comfort_violation_c_h",
    "ev_unmet_kwh",
    "transformer_excess_kwh",
    "wall_s",
]

RULES = ("no_control", "rule_based")
OPTIMIZERS = ("milp", "mpc")


#: a reference MILP stopped further than this from its best bound is flagged in the summary:
#: shares of optimal savings against a poor incumbent mean little [-]
MAX_REFERENCE_GAP = 0.01


def reference_gap_warning(gap: float, name: str = "the MILP") -> str:
    """A warning sentence (with a leading space) when a reference MILP stopped more than
    ``MAX_REFERENCE_GAP`` from its best bound (relative ``gap`` [-]); "" otherwise."""
    if not gap > MAX_REFERENCE_GAP:
        return ""
    return (
        f" Warning: {name} stopped {100 * gap:.1f} % from its best bound (time limit): every "
        "share of optimal savings is measured against that incumbent; raise its time_limit_s "
        "or run on a less busy machine."
    )


def share_basis(milp_info: dict[str, Any], solved: bool) -> str:
    """What the share of optimal savings is measured against: ``optimum`` (the MILP closed its
    gap to ``mip_gap``), ``incumbent`` (its best feasible schedule at the time limit, gap not
    closed: shares are then upper estimates) or ``n/a`` (the MILP gave no schedule)."""
    if not solved:
        return "n/a"
    return "optimum" if milp_info.get("status") == "optimal" else "incumbent"


def forecast_steps(scenario: Any) -> int:
    """Forecast window length in steps: horizon [h] / Δt [h], at least 1."""
    return max(1, round(scenario.community.forecast.horizon_h / scenario.window.step_h))


def policy_shape(scenario: Any) -> PolicyShape:
    """What a learned policy must match to act in this scenario's env (``make_eval_env``, and
    the training env), from the scenario alone: no data read, no env built."""
    from gridmarl.energy.env import local_feature_names
    from gridmarl.energy.env import policy_shape as shape

    c = scenario.community
    names = local_feature_names(
        c.market.broadcast_loading, c.ev.rate_feature, c.ev.action_prior, c.congestion_signal
    )
    return shape(names, forecast_steps(scenario), c.heat_pump.modes)


def episode_steps(scenario: Any, span: str = "evaluate") -> int:
    """Steps in a window span ('train' | 'validate' | 'evaluate')."""
    days = getattr(scenario.window, "validate_" if span == "validate" else span).days
    return round(days * 24 / scenario.window.step_h)


def make_eval_env(scenario: Any, community: Any, dtype: torch.dtype = torch.float64):
    """The B = 1 accounting env of the evaluation window (float64 on CPU)."""
    from gridmarl.energy.env import CommunityEnv

    fc = scenario.community.forecast
    return CommunityEnv(
        community,
        num_envs=1,
        device="cpu",
        dtype=dtype,
        episode_steps=episode_steps(scenario),
        forecast_steps=forecast_steps(scenario),
        forecast_kind=fc.kind,
        noise_std=fc.noise_std,
        random_start=False,
        seed=scenario.seed,
    )


def carbon_option(entry: ControllerEntry, community: Any) -> float:
    """``options.carbon_usd_per_kg`` of a MILP / MPC entry [$/kg] (default 0), checked."""
    raw = entry.options.get("carbon_usd_per_kg", 0.0)
    key = f"controllers[{entry.display_name}].options.carbon_usd_per_kg"
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ScenarioError(f"{key}: {raw!r}; allowed: a number >= 0 [$/kg]")
    if raw > 0 and community.carbon_kg_per_kwh is None:
        raise ScenarioError(
            f"{key}: the dataset has no carbon intensity (carbon_intensity.csv); set it to 0"
        )
    return float(raw)


def build_controller(
    entry: ControllerEntry, scenario: Any, community: Any, env: Any
) -> tuple[Controller, str, dict[str, Any]]:
    """Instantiate the controller an entry names; returns (controller, notes, manifest info)."""
    name = entry.name
    if name == "no_control":
        from gridmarl.energy.rules import NoControl

        return NoControl(), "", {}
    if name == "rule_based":
        from gridmarl.energy.rules import RuleBased

        return RuleBased(), "", {}
    if name == "milp":
        from baselines_opt.community import solve_community_milp
        from gridmarl.energy.config import check_milp_options

        carbon = carbon_option(entry, community)
        check_milp_options(entry.options)
        method = entry.options.get("method", "auto")
        workers = entry.options.get("workers")
        res = solve_community_milp(
            community,
            start=0,
            steps=env.episode_len,
            time_limit_s=entry.time_limit_s or 60.0,
            mip_gap=entry.mip_gap if entry.mip_gap is not None else 1e-3,
            threads=entry.threads,
            carbon_usd_per_kg=carbon,
            method=method,
            workers=None if workers is None else int(workers),
        )
        info = {
            "status": res.status,
            "objective_usd": res.objective_usd,
            "bound_usd": res.bound_usd,
            "gap": res.gap,
            "build_s": res.build_s,
            "solve_s": res.solve_s,
            "method": res.extra.get("method"),
            "bound_method": res.extra.get("bound_method"),
            **{k: res.extra[k] for k in ("rounds", "columns", "failed_methods") if k in res.extra},
        }
        if carbon:
            info["carbon_usd_per_kg"] = carbon
        notes = (
            (f"carbon priced at {carbon:g} $/kg in the objective; " if carbon else "")
            + f"perfect-foresight MILP ({info['method']}), status {res.status}, objective "
            f"{res.objective_usd:.4f} $, best bound {res.bound_usd:.4f} $ "
            f"({info['bound_method']}), gap {100 * res.gap:.3f} %, build {res.build_s:.1f} s, "
            f"solve {res.solve_s:.1f} s"
        )
        return res.to_controller(entry.display_name), notes, info
    if name == "mpc":
        from baselines_opt.community import MPCController

        kwargs = {
            k: v
            for k, v in {
                "horizon_h": entry.horizon_h,
                "forecast": entry.forecast,
                "time_limit_s": entry.time_limit_s,
                "mip_gap": entry.mip_gap,
            }.items()
            if v is not None
        }
        carbon_option(entry, community)
        ctrl = MPCController(**kwargs, **entry.options)
        return ctrl, f"rolling-horizon MPC ({ctrl.describe()})", {}
    from gridmarl.controllers.registry import load_policy

    if entry.checkpoint is None:
        raise ScenarioError(f"controllers[{name}]: a learned controller needs 'checkpoint'")
    ctrl = load_policy(name, resolve_path(scenario, entry.checkpoint), env=env, scenario=scenario)
    return ctrl, f"learned policy {entry.checkpoint}, local observations only", {}


def split_parts(scenario: Any, split: str) -> list[Any]:
    """The windows of ``split`` (``test``, ``dev`` or ``validate``; ``gridmarl.protocol``): one
    part per window, the scenario with ``window.evaluate`` set to it."""
    from gridmarl.protocol import SplitPart

    w = scenario.window
    spans = {"test": w.test, "dev": w.dev, "validate": [w.validate_]}.get(split)
    if spans is None:
        raise ScenarioError(f"--split {split!r}; allowed for energy: test, dev, validate")
    return [
        SplitPart(
            f"{s.start}+{s.days}d",
            scenario.model_copy(update={"window": w.model_copy(update={"evaluate": s})}),
        )
        for s in spans
    ]


def simulate(
    scenario: Any, console: Any = None, seeds: list[int] | None = None
) -> SimulationResult:
    """Run the scenario's controllers on its evaluation window; see the module docstring.

    ``seeds`` must be None: an energy episode is its window (``split_parts``)."""
    if seeds is not None:
        raise ValueError("energy episodes are windows, not seeds; seeds must be None")
    from gridmarl.energy.data import build_community
    from gridmarl.energy.kpis import community_kpis, share_of_optimal_savings

    def say(msg: str) -> None:
        if console is not None:
            console.print(msg)

    t_build = time.perf_counter()
    community = build_community(scenario, "evaluate")
    say(
        f"[dim]{scenario.name}: {community.n} prosumers, "
        f"{episode_steps(scenario)} steps of {scenario.window.step_h} h from "
        f"{scenario.window.evaluate.start} (data {time.perf_counter() - t_build:.1f} s)[/dim]"
    )
    entries = list(scenario.controllers)
    # the references are cost-optimal: an entry with a carbon price is not the MILP reference
    listed = {e.name for e in entries if not e.options.get("carbon_usd_per_kg")}
    refs = [
        ControllerEntry(name=n) for n in ("no_control", "rule_based", "milp") if n not in listed
    ]

    for e in entries:  # a carbon price the data cannot support is refused before any solve
        if e.name in OPTIMIZERS:
            carbon_option(e, community)
    # Load every learned policy first: a checkpoint that does not fit this scenario is refused
    # in a second, before the MILP and MPC spend minutes.
    learned = {
        id(e): build_controller(e, scenario, community, make_eval_env(scenario, community))
        for e in entries
        if e.name not in RULES + OPTIMIZERS
    }

    runs: list[tuple[ControllerEntry, bool, dict[str, Any]]] = []
    for entry in refs + entries:
        t0 = time.perf_counter()
        say(f"running {entry.display_name} …")

        def run_one(entry: ControllerEntry = entry, t0: float = t0) -> dict[str, Any]:
            env = make_eval_env(scenario, community)
            if id(entry) in learned:
                ctrl, notes, info = learned[id(entry)]
            else:
                ctrl, notes, info = build_controller(entry, scenario, community, env)
            records, _ = run_episode(env, ctrl, seed=scenario.seed)
            comm = env.community_records()
            timing = getattr(ctrl, "timing", None)
            if callable(timing):  # MPC: its time per re-plan
                notes = f"{notes}; {timing()}"
                info = {
                    **info,
                    "step_s_mean": float(np.mean(ctrl.stats.get("step_s") or [0.0])),
                    "replans": len(ctrl.stats.get("step_s") or []),
                    "fallbacks": int(ctrl.stats.get("fallbacks", 0)),
                    "time_limit_s": getattr(getattr(ctrl, "options", None), "time_limit_s", None),
                }
            return {
                "kpis": community_kpis(records, comm, scenario.window.step_h),
                "records": records,
                "comm": comm,
                "wall": time.perf_counter() - t0,
                "notes": notes,
                "info": info,
            }

        r, err = isolated(run_one, console, entry.display_name)
        if r is None:
            r = {"error": err, "wall": time.perf_counter() - t0, "info": {}, "notes": ""}
        runs.append((entry, entry in entries, r))

    by_name = {e.name: r for e, _, r in runs if not e.options.get("carbon_usd_per_kg")}

    def ref_cost(name: str) -> float:
        return by_name[name]["kpis"]["cost_usd"] if "kpis" in by_name[name] else math.nan

    c_nc, c_milp, c_rule = ref_cost("no_control"), ref_cost("milp"), ref_cost("rule_based")
    milp_info = by_name["milp"]["info"]
    basis = share_basis(milp_info, "kpis" in by_name["milp"])

    results: list[ControllerResult] = []
    tables: dict[str, pd.DataFrame] = {}
    kpi_names: list[str] = []
    for _, _, r in runs:
        if "kpis" in r:
            kpi_names = [*HEADLINE[:6], *(k for k in r["kpis"] if k != "cost_usd"), "wall_s"]
            break
    for entry, shown, r in runs:
        if not shown:
            continue
        label = entry.display_name
        if "kpis" not in r:
            results.append(failed_result(label, r["error"], kpi_names, r["wall"]))
            continue
        k = r["kpis"]
        share = share_of_optimal_savings(c_nc, k["cost_usd"], c_milp)
        closed = share_of_optimal_savings(c_rule, k["cost_usd"], c_milp)
        bound = milp_info.get("bound_usd", math.nan)
        share_lo = (
            share_of_optimal_savings(c_nc, k["cost_usd"], bound) if basis != "n/a" else math.nan
        )
        kpis = {
            "cost_usd": k["cost_usd"],
            "savings_vs_no_control_usd": c_nc - k["cost_usd"],
            "share_of_optimal_savings_pct": 100 * share,
            "share_vs_bound_pct": 100 * share_lo,
            "cost_vs_milp": k["cost_usd"] / c_milp if c_milp > 0 else math.nan,
            "rule_gap_closed_pct": 100 * closed,
            **{key: v for key, v in k.items() if key != "cost_usd"},
            "wall_s": r["wall"],
            "share_basis": basis,
        }
        results.append(
            ControllerResult(
                label,
                kpis,
                {f"dispatch_{label}": r["records"].reset_index(drop=True)},
                r["wall"],
                r["notes"],
            )
        )
        tables[f"community_{label}"] = r["comm"]

    optimal_ok = all(
        c.kpis["cost_usd"] >= c_milp - 1e-6 * max(1.0, abs(c_milp)) for c in results if not c.error
    )
    summary = (
        f"Evaluation window {scenario.window.evaluate.start} + "
        f"{scenario.window.evaluate.days} d, {community.n} prosumers. "
        f"no_control costs {c_nc:.2f} $, rule_based {c_rule:.2f} $, the MILP optimum "
        f"{c_milp:.2f} $ "
        f"(status {milp_info.get('status')}, gap {100 * milp_info.get('gap', float('nan')):.3f} %"
        f"{', bound by ' + milp_info['bound_method'] if milp_info.get('bound_method') else ''})."
        f" Shares of optimal savings are measured against the MILP's {basis}"
        f"{' (proven optimal within its gap)' if basis == 'optimum' else ''}."
    )
    summary += reference_gap_warning(milp_info.get("gap", 0.0))
    for entry, _, r in runs:
        fell = r.get("info", {}).get("fallbacks", 0)
        if fell and "kpis" in r:
            limit = r["info"].get("time_limit_s")
            summary += (
                f" Warning: {entry.display_name} found no schedule within its "
                f"{'' if limit is None else f'{limit:g} s '}limit in {fell} of "
                f"{r['info']['replans']} "
                "re-plans and followed its fallback there: its row is not what the controller "
                "achieves; raise its time_limit_s or its replan_every."
            )
    failed_refs = [n for n in ("no_control", "rule_based", "milp") if "kpis" not in by_name[n]]
    if failed_refs:
        summary += (
            f" The reference(s) {', '.join(failed_refs)} failed (see Failures): the KPIs "
            "relative to them are n/a."
        )
    if not optimal_ok:
        summary += (
            " Note: a controller cost less than the MILP's incumbent as the env accounts "
            "it; the MILP stopped before optimality (see its gap)."
        )
    errors = [
        f"{e.display_name} (reference, not listed in the scenario): {r['error']}"
        for e, shown, r in runs
        if not shown and "error" in r
    ]
    figures, fig_err = isolated(lambda: _figures(scenario, runs, community), console, "figures")
    if fig_err:
        errors.append(f"figures: {fig_err}")
    return SimulationResult(
        scenario=scenario,
        controllers=results,
        headline=HEADLINE,
        tables=tables,
        figures=figures or {},
        summary=summary,
        errors=errors,
        extra_manifest={
            "milp": milp_info,
            "no_control_cost_usd": c_nc,
            "rule_based_cost_usd": c_rule,
            "milp_cost_usd": c_milp,
        },
    )


def _figures(scenario: Any, runs: list, community: Any) -> dict[str, Any]:
    # figures outside pyplot's registry: they live as long as the result, never accumulate
    from matplotlib.figure import Figure

    runs = [(e, s, r) for e, s, r in runs if "comm" in r]
    shown = [(e, r) for e, s, r in runs if s]
    if not runs:
        return {}
    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    for e, r in shown:
        comm = r["comm"]
        ax.plot(pd.to_datetime(comm["time"]), comm["grid_kw"], label=e.display_name, lw=1.2)
    ax.axhline(community.transformer_kw, color="k", ls=":", lw=0.8, label="transformer limit")
    ax.set_ylabel("community net load G [kW] (+ import)")
    ax2 = ax.twinx()
    comm0 = shown[0][1]["comm"] if shown else runs[0][2]["comm"]
    ax2.step(
        pd.to_datetime(comm0["time"]),
        comm0["price_usd_per_kwh"],
        where="post",
        color="grey",
        alpha=0.5,
        lw=1,
    )
    ax2.set_ylabel("import price [$/kWh]")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    ax.set_title(f"{scenario.name}: community net load vs price")
    fig.autofmt_xdate()

    fig2 = Figure(figsize=(11, 4))
    ax3 = fig2.subplots()
    for e, r in shown:
        rec = r["records"]
        soc = rec.groupby("step")["soc_kwh"].sum()
        ax3.plot(
            np.asarray(pd.to_datetime(rec.groupby("step")["time"].first())),
            soc.values,
            label=e.display_name,
            lw=1.2,
        )
    ax3.set_ylabel("community battery energy [kWh]")
    ax3.set_title(f"{scenario.name}: battery state of charge (sum over prosumers)")
    ax3.legend(fontsize=8, ncol=3)
    fig2.autofmt_xdate()
    return {"net_load_vs_price": fig, "battery_soc": fig2}
