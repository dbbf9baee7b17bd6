"""Key performance indicators of an energy episode, computed from the env's records.

Inputs are the two frames of :class:`gridmarl.energy.env.CommunityEnv`: ``records()`` (one row
per step and prosumer) and ``community_records()`` (one row per step).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

KPI_KEYS: tuple[str, ...] = (
    "cost_usd",
    "grid_cost_usd",
    "peak_import_kw",
    "self_sufficiency_pct",
    "comfort_violation_c_h",
    "ev_unmet_kwh",
    "transformer_excess_kwh",
    "degradation_usd",
    "co2_kg",
    "ramping_kw",
    "daily_peak_kw",
    "load_factor",
)


def community_kpis(
    records: pd.DataFrame, community_records: pd.DataFrame, step_h: float
) -> dict[str, float]:
    """KPIs of one episode, in the order of ``KPI_KEYS``.

    * ``cost_usd`` [$]: Σ community cost (grid + degradation + comfort + EV unmet + transformer
      excess + peak), the negative of the summed team reward.
    * ``grid_cost_usd`` [$]: Σ (π imp − π_fi exp) Δt.
    * ``peak_import_kw`` [kW]: max over the steps of the community import max(G, 0).
    * ``self_sufficiency_pct`` [%]: 100 · (1 − E_imp / E_cons), where
      E_cons = Σ_t Σ_n (load + P_hp + p_ev + p_c) Δt is the community's consumption (battery
      charging included) and E_imp = Σ_t max(G_t, 0) Δt the energy imported through the
      transformer; since G ≤ Σ_n consumption, it lies in [0, 100] (NaN when E_cons = 0).
    * ``comfort_violation_c_h`` [C·h]: Σ degrees outside the comfort band × Δt.
    * ``ev_unmet_kwh`` [kWh]: Σ energy short of the EV targets at departure.
    * ``transformer_excess_kwh`` [kWh]: Σ max(0, |G| − limit) Δt.
    * ``degradation_usd`` [$]: Σ c_deg (p_c + p_d) Δt.
    * ``co2_kg`` [kg CO2]: Σ_t max(G_t, 0) · ci_t · Δt, the emissions of the energy imported
      through the transformer at the dataset's grid carbon intensity ci [kg/kWh] (NaN without a
      carbon file).  Exports earn no credit and energy traded between peers emits nothing.
      CityLearn's ``carbon_emissions`` sums max(net_n, 0) · ci per building (no netting between
      buildings) and reports it relative to no control.
    * ``ramping_kw`` [kW]: Σ_{t≥1} |G_t − G_{t−1}| over the episode, on the community's net
      power G (CityLearn's ``ramping`` is the same sum on the district's net consumption [kWh
      per step]; at Δt = 1 h the numbers agree, and CityLearn reports it relative to no control).
    * ``daily_peak_kw`` [kW]: the mean over the episode's days of each day's maximum import
      max_t max(G_t, 0) (CityLearn's ``daily_peak_average``: the same on the net consumption,
      so a day that only exports counts its largest, negative, value there and 0 here).
    * ``load_factor`` [-]: the mean over the days with any import of (mean import / maximum
      import) of the day, in (0, 1], 1 = flat import (NaN when nothing is imported).  CityLearn
      reports ``1 − load_factor`` with monthly (730 h) periods on the net consumption, as a cost.

    Args:
        records: per (step, prosumer) frame.
        community_records: per step frame.
        step_h: Δt [h].
    """
    cons = (
        records["load_kw"] + records["hp_kw"] + records["ev_kw"] + records["battery_charge_kw"]
    ).sum() * step_h
    imp = community_records["import_kw"].sum() * step_h
    ss = 100.0 * (1.0 - imp / cons) if cons > 0 else math.nan
    peak = float(community_records["import_kw"].max()) if len(community_records) else 0.0
    grid = community_records["grid_kw"].to_numpy(float)
    imp_kw = community_records["import_kw"].to_numpy(float)
    ci = (
        community_records["carbon_kg_per_kwh"].to_numpy(float)
        if "carbon_kg_per_kwh" in community_records
        else np.full(len(grid), np.nan)
    )
    co2 = float(np.sum(imp_kw * ci) * step_h) if len(grid) else math.nan
    ramping = float(np.abs(np.diff(grid)).sum()) if len(grid) else 0.0
    daily_peak, load_factor = _daily(community_records["time"], imp_kw)
    out = {
        "cost_usd": float(community_records["cost_usd"].sum()),
        "grid_cost_usd": float(community_records["grid_cost_usd"].sum()),
        "peak_import_kw": peak,
        "self_sufficiency_pct": float(ss),
        "comfort_violation_c_h": float(records["comfort_c_h"].sum()),
        "ev_unmet_kwh": float(records["ev_unmet_kwh"].sum()),
        "transformer_excess_kwh": float(community_records["over_kwh"].sum()),
        "degradation_usd": float(records["degradation_usd"].sum()),
        "co2_kg": co2,
        "ramping_kw": ramping,
        "daily_peak_kw": daily_peak,
        "load_factor": load_factor,
    }
    return {k: out[k] for k in KPI_KEYS}


def _daily(time: pd.Series, import_kw: np.ndarray) -> tuple[float, float]:
    """(mean daily peak import [kW], mean daily load factor [-]) over the calendar days of
    ``time`` (step starts, local); days without import are left out of the load factor."""
    if len(import_kw) == 0:
        return math.nan, math.nan
    day = pd.DatetimeIndex(time).normalize()
    frame = pd.DataFrame({"day": day, "imp": import_kw})
    g = frame.groupby("day")["imp"]
    peaks, means = g.max().to_numpy(float), g.mean().to_numpy(float)
    has = peaks > 0
    lf = float(np.mean(means[has] / peaks[has])) if has.any() else math.nan
    return float(np.mean(peaks)), lf


def share_of_optimal_savings(c_nc: float, c_ctrl: float, c_milp: float, eps: float = 1e-9) -> float:
    """(C_no_control − C_controller) / (C_no_control − C_MILP) [-]; NaN when the denominator is
    within ``eps`` (relative to max(1, |C_no_control|)) of 0."""
    den = c_nc - c_milp
    if abs(den) <= eps * max(1.0, abs(c_nc)):
        return math.nan
    return (c_nc - c_ctrl) / den
