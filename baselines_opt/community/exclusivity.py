"""The exclusivity binaries of the community MILP: which are relaxed up front, and the battery
binaries added lazily where a solution charges and discharges at once (then re-solved).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from baselines_opt.community.horizon import Horizon
from baselines_opt.community.model import Model, var_values
from baselines_opt.solve import SolveOptions, SolveReport, solve_highs

LAZY_TOL_KW = 1e-7  # [kW] charge and discharge both above this at one step: add its binary


def relax_exclusivity(mod: Model, h: Horizon) -> list:
    """Relax the exclusivity binaries that are not needed up front; returns the changed vars.

    * Grid ``z_t`` on every step with ``π_fi <= π``: reducing imp and exp by the same amount
      keeps G, never raises the cost (``−(π − π_fi) Δt <= 0``) and only loosens the over and
      peak rows, so the relaxation has an exclusive optimum with the same cost, and the cost of
      any solution is at least the env's cost of its G.  Only steps with ``π_fi > π`` (where
      exporting and importing at once would earn money) keep a binary.
    * Battery ``yb``: all relaxed to [0, 1] (``p_c + p_d <= P_max`` remains, a valid
      relaxation).  Simultaneous charge and discharge only pays in corner cases (e.g. burning
      PV surplus above the transformer limit); :func:`lazy_battery` makes ``yb`` binary where
      a solution uses it and the caller re-solves.
    """
    m, changed = mod.m, []
    for t, v in m.z.items():
        if h.feed_in[t] <= h.price[t]:
            v.domain = pyo.UnitInterval
            changed.append(v)
    for v in m.yb.values():
        v.domain = pyo.UnitInterval
        changed.append(v)
    return changed


def lazy_battery(mod: Model) -> list:
    """Make ``yb`` binary where the loaded solution charges and discharges at once."""
    m = mod.m
    if len(m.pc) == 0:
        return []
    both = np.minimum(var_values(m.pc), var_values(m.pd)) > LAZY_TOL_KW
    out = []
    for (idx, v), hit in zip(m.yb.items(), both, strict=True):
        if hit and v.domain is not pyo.Binary:
            v.domain = pyo.Binary
            v.set_value(float(m.pc[idx].value >= m.pd[idx].value))
            out.append(v)
    return out


def solve_lazy(
    mod: Model, solver: Any, options: SolveOptions, what: str, stats: dict[str, Any]
) -> SolveReport:
    """Solve; while the battery charges and discharges at once somewhere, add those binaries
    and re-solve (each round only adds binaries, so it ends)."""
    while True:
        rep = solve_highs(mod.m, options, solver=solver, what=what)
        added = lazy_battery(mod)
        if not added:
            return rep
        stats["lazy_battery_binaries"] = stats.get("lazy_battery_binaries", 0) + len(added)
        stats["lazy_rounds"] = stats.get("lazy_rounds", 0) + 1
        solver.update_variables(added)
