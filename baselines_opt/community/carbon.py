"""A carbon price in the objective of the community MILP and MPC (an option, default 0).

With a carbon price c_CO2 [$/kg] the optimisers minimise the env's community cost plus
``c_CO2 · Σ_t ci_t · imp_t · Δt``: the emissions of the energy imported through the transformer
(the ``co2_kg`` KPI of :mod:`gridmarl.energy.kpis`) priced at c_CO2, with ci_t the dataset's
grid carbon intensity [kg CO2/kWh].  The term is linear in ``imp_t`` with the same shape as the
import cost ``π_t · imp_t · Δt`` (item 7 of :mod:`gridmarl.energy.community`), so it enters the
model (:mod:`~baselines_opt.community.model`) as the import price π_t + c_CO2 · ci_t: every
part of a solve (the decomposition start, the MIP, the polish, :func:`schedule_cost`) then
prices it alike.  The env never charges it: replaying the schedule in ``CommunityEnv`` costs
the objective minus :func:`carbon_charge_usd` of the schedule's imports.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gridmarl.energy.community import Community


def carbon_priced(c: Community, usd_per_kg: float) -> Community:
    """``c`` with the import price π + c_CO2 · ci [$/kWh] (``c`` itself when the price is 0).

    Raises:
        ValueError: a negative price, or a positive one on a community without carbon data.
    """
    if not np.isfinite(usd_per_kg) or usd_per_kg < 0:
        raise ValueError(f"carbon_usd_per_kg must be finite and >= 0, got {usd_per_kg}")
    if usd_per_kg == 0:
        return c
    if c.carbon_kg_per_kwh is None:
        raise ValueError(
            "carbon_usd_per_kg > 0 needs the dataset's carbon intensity "
            "(carbon_intensity.csv); this dataset has none"
        )
    return replace(c, price_usd_per_kwh=c.price_usd_per_kwh + usd_per_kg * c.carbon_kg_per_kwh)


def carbon_charge_usd(c: Community, start: int, import_kw: np.ndarray, usd_per_kg: float) -> float:
    """c_CO2 · Σ_t ci[start + t] · imp_t · Δt [$] for community imports ``import_kw [T]`` [kW]."""
    if usd_per_kg == 0:
        return 0.0
    imp = np.asarray(import_kw, float)
    ci = np.asarray(c.carbon_kg_per_kwh, float)[start : start + len(imp)]
    return float(usd_per_kg * np.sum(ci * imp) * c.step_h)
