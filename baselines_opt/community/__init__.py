"""Optimization baselines of the energy community: the perfect-foresight MILP and rolling MPC.

One concern per module, in the order a solve uses them:

- :mod:`~baselines_opt.community.horizon`: the numbers of one optimisation horizon (series,
  initial device state clamped to its bounds, EV arrivals), the device sets.
- :mod:`~baselines_opt.community.model`: the MILP itself (its docstring holds the variables,
  constraints and objective), built as a Pyomo model, and the decoding of a solution to env
  actions.
- :mod:`~baselines_opt.community.exclusivity`: which exclusivity binaries are relaxed up front,
  and the lazily added battery binaries.
- :mod:`~baselines_opt.community.decomposition`: warm start and lower bound by Lagrangian
  decomposition per heat pump.
- :mod:`~baselines_opt.community.perfect_foresight`: :func:`solve_community_milp` (the solve
  strategy that combines the above) and :class:`CommunityMilpResult`.
- :mod:`~baselines_opt.community.accounting`: :func:`schedule_cost`, an independent numpy
  replay of a schedule through the env's equations.
- :mod:`~baselines_opt.community.mpc`: :class:`MPCController`, closed-loop rolling-horizon MPC
  on the same model.

Generic HiGHS helpers (options, reports, persistent solver) live in :mod:`baselines_opt.solve`.
"""

from baselines_opt.community.accounting import schedule_cost
from baselines_opt.community.mpc import MPCController
from baselines_opt.community.perfect_foresight import CommunityMilpResult, solve_community_milp

__all__ = ["CommunityMilpResult", "MPCController", "schedule_cost", "solve_community_milp"]
