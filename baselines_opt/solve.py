"""HiGHS through Pyomo: solver options, status handling and gap reporting for every baseline.

All optimization baselines solve through :func:`solve_highs` with a persistent
``pyomo.contrib.solver`` HiGHS interface (Pyomo >= 6.7, ``highspy``).  What comes back is a
:class:`SolveReport` or a :class:`SolverError` whose message says what went wrong and what to try:

======================  =====================================================================
``status``              meaning
======================  =====================================================================
``optimal``             proven optimal within the requested relative gap
``time_limit``          the time limit was reached *with* an incumbent: a usable schedule, the
                        report carries its objective, the best bound and the remaining gap
``iteration_limit``     an iteration / solution limit was reached with an incumbent
``interrupted``         stopped (e.g. Ctrl-C) with an incumbent
``objective_limit``     an objective bound / target was reached with an incumbent
``unknown``             HiGHS stopped for another reason but holds an incumbent
======================  =====================================================================

Every other outcome (infeasible, unbounded, time limit without any feasible solution, a solver
error) raises :class:`SolverError`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

# Statuses that come with a usable incumbent (anything else raises SolverError).
USABLE_STATUSES = (
    "optimal",
    "time_limit",
    "iteration_limit",
    "interrupted",
    "objective_limit",
    "unknown",
)

_TERMINATION_TO_STATUS: dict[TerminationCondition, str] = {
    TerminationCondition.convergenceCriteriaSatisfied: "optimal",
    TerminationCondition.maxTimeLimit: "time_limit",
    TerminationCondition.iterationLimit: "iteration_limit",
    TerminationCondition.interrupted: "interrupted",
    TerminationCondition.objectiveLimit: "objective_limit",
    TerminationCondition.provenInfeasible: "infeasible",
    TerminationCondition.infeasibleOrUnbounded: "infeasible_or_unbounded",
    TerminationCondition.unbounded: "unbounded",
    TerminationCondition.error: "error",
    TerminationCondition.unknown: "unknown",
}


_pool_threads: int | None = None  # the explicit thread count of this process's HiGHS pool


def use_threads(threads: int | None) -> None:
    """Make the next HiGHS solve of this process run with ``threads`` threads.

    HiGHS starts one global task scheduler at a process's first solve and then refuses, with
    an error and no solution, any solve whose ``threads`` option differs from it (a MILP
    teacher asking for 1 thread after a validation MILP ran with the default).  When an
    explicit count differs from the last one asked for, the pool is torn down and the next
    solve builds it anew.  ``None`` (HiGHS's automatic choice) runs on whatever pool exists.
    Solves in this package are sequential, so no solve is running when the pool is reset.
    """
    global _pool_threads
    if threads is None or threads == _pool_threads:
        return
    import highspy

    highspy.Highs.resetGlobalScheduler(True)
    _pool_threads = int(threads)


class SolverError(RuntimeError):
    """The solver returned no usable solution; the message is meant for a person."""

    def __init__(self, message: str, status: str = "error") -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SolveOptions:
    """What HiGHS is asked for.

    Attributes:
        time_limit_s: wall-clock limit of one solve [s] (None = no limit).
        mip_gap: relative MIP gap at which to stop, HiGHS ``mip_rel_gap`` [-].
        threads: HiGHS threads (None = HiGHS default).  HiGHS keeps one thread pool per
            process and refuses a solve asking for another count (highspy >= 1.10: "the
            scheduler has already been initialized"); :func:`use_threads` rebuilds the pool
            when the count changes.
        tee: stream the HiGHS log to stdout.
        extra: further raw HiGHS options (name -> value), e.g. ``{"presolve": "off"}``.
    """

    time_limit_s: float | None = 60.0
    mip_gap: float | None = 1e-3
    threads: int | None = None
    tee: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be positive, got {self.time_limit_s}")
        if self.mip_gap is not None and not 0 <= self.mip_gap < 1:
            raise ValueError(f"mip_gap must be in [0, 1), got {self.mip_gap}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


@dataclass(frozen=True)
class SolveReport:
    """Outcome of one solve with a usable incumbent.

    Attributes:
        status: one of :data:`USABLE_STATUSES`.
        objective: incumbent objective (model units, e.g. [$]).
        bound: best proven lower bound (minimisation) (model units).
        gap: relative gap ``(objective − bound) / max(|objective|, 1e-9)`` [-] (0 when equal).
        solve_s: wall time of the solve call, including the model update [s].
        message: one line for logs and reports.
        duals: constraint -> dual value (∂ objective / ∂ right-hand side) for the constraints
            asked for with ``duals_of`` (LPs only), else None.
    """

    status: str
    objective: float
    bound: float
    gap: float
    solve_s: float
    message: str = ""
    duals: dict | None = None


def relative_gap(objective: float, bound: float) -> float:
    """``(objective − bound) / max(|objective|, 1e-9)`` [-], 0 when both agree, inf if unknown."""
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.inf
    diff = objective - bound
    if abs(diff) <= 1e-12 * max(1.0, abs(objective)):
        return 0.0
    return max(0.0, diff) / max(abs(objective), 1e-9)


def make_highs(persistent_updates: bool = False) -> Highs:
    """A persistent HiGHS interface.

    Args:
        persistent_updates: True for a model that is built once and re-solved after changing
            only mutable ``Param`` values (MPC): the automatic scans for new or removed
            components are switched off so each re-solve only pushes the new parameter values.
    """
    solver = Highs()
    if not solver.available():
        raise SolverError(
            "HiGHS is not available: install it with `pip install highspy`", status="unavailable"
        )
    if persistent_updates:
        au = solver.config.auto_updates
        au.check_for_new_or_removed_constraints = False
        au.check_for_new_or_removed_vars = False
        au.check_for_new_or_removed_params = False
        au.check_for_new_objective = False
        au.update_constraints = False
        au.update_vars = False
        au.update_named_expressions = False
        au.update_objective = False
        au.update_parameters = True
    return solver


def solve_highs(
    model: pyo.ConcreteModel,
    options: SolveOptions,
    solver: Highs | None = None,
    what: str = "model",
    duals_of: list | None = None,
) -> SolveReport:
    """Solve ``model`` (minimisation) with HiGHS and load the incumbent into its variables.

    Args:
        model: a Pyomo model with one active objective.
        options: time limit, gap, threads.
        solver: a persistent interface to reuse (its model is updated, not rebuilt); a fresh
            one by default.
        what: name of the model for error messages.
        duals_of: constraints whose duals to return in the report (a pure LP only).

    Returns:
        The report; the model's variables hold the incumbent.

    Raises:
        SolverError: infeasible, unbounded, no incumbent at the time limit, or a solver error.
    """
    solver = solver if solver is not None else make_highs()
    kwargs: dict[str, Any] = {
        "load_solutions": False,
        "raise_exception_on_nonoptimal_result": False,
        "tee": options.tee,
        "time_limit": _run_clock_limit(solver, model, options.time_limit_s),
        "rel_gap": options.mip_gap,
    }
    if options.threads is not None:
        kwargs["threads"] = options.threads
    use_threads(options.threads)
    if options.extra:
        kwargs["solver_options"] = dict(options.extra)
    t0 = time.perf_counter()
    try:
        res = solver.solve(model, **kwargs)
    except Exception as exc:  # a HiGHS / interface failure, not a modelling outcome
        raise SolverError(f"HiGHS failed on the {what}: {exc}", status="error") from exc
    solve_s = time.perf_counter() - t0
    _quiet_between_solves(solver)
    status = _TERMINATION_TO_STATUS.get(res.termination_condition, "unknown")
    has_incumbent = res.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
    if status == "infeasible" or status == "infeasible_or_unbounded":
        raise SolverError(
            f"the {what} is infeasible ({status}); every slack of the model "
            "should be priced, so check the input data for contradictions "
            "(e.g. an initial state outside its bounds)",
            status=status,
        )
    if status == "unbounded":
        raise SolverError(
            f"the {what} is unbounded: some variable has no bound and a "
            "negative cost (check the prices)",
            status=status,
        )
    if not has_incumbent:
        if status == "time_limit":
            raise SolverError(
                f"the time limit of {options.time_limit_s} s was reached before HiGHS found any "
                f"feasible solution of the {what}; raise time_limit_s",
                status=status,
            )
        raise SolverError(
            f"HiGHS returned no solution for the {what} (status {status})", status=status
        )
    res.solution_loader.load_vars()
    objective = float(res.incumbent_objective)
    bound = float(res.objective_bound) if res.objective_bound is not None else -math.inf
    gap = relative_gap(objective, bound)
    msg = (
        f"HiGHS {status}: objective {objective:.6g}, bound {bound:.6g}, gap {gap:.3%}, "
        f"{solve_s:.2f} s"
    )
    duals = None
    if duals_of is not None:
        try:
            duals = res.solution_loader.get_duals(duals_of)
        except Exception:  # noqa: BLE001 - no duals (e.g. a MIP): the caller does without
            duals = None
    return SolveReport(
        status=status,
        objective=objective,
        bound=bound,
        gap=gap,
        solve_s=solve_s,
        message=msg,
        duals=duals,
    )


def _run_clock_limit(
    solver: Highs, model: pyo.ConcreteModel, time_limit_s: float | None
) -> float | None:
    """HiGHS's ``time_limit`` that gives this solve ``time_limit_s`` [s] of its own.

    HiGHS (1.x) compares an LP's ``time_limit`` with the run clock of the ``Highs`` object,
    which adds up every earlier ``run`` of that object (ERGO-Code/HiGHS#1331, #1477; to change
    in 2.0): a persistent interface re-solving an LP would hit the limit at once after
    ``time_limit_s`` seconds in total.  Its MIP solver times each run on its own.  For a model
    without free integer variables the limit is therefore the clock's current reading plus
    ``time_limit_s`` (a MIP whose integers are all fixed may get that longer limit: harmless).
    """
    highs = getattr(solver, "_solver_model", None)
    if time_limit_s is None or highs is None:  # no limit, or no run yet: the clock is at 0
        return time_limit_s
    for v in model.component_data_objects(pyo.Var, active=True):
        if v.is_integer() and not v.fixed:
            return time_limit_s
    return float(highs.getRunTime()) + time_limit_s


def _quiet_between_solves(solver: Highs) -> None:
    """Stop HiGHS logging to the console outside a solve.

    Pyomo turns ``log_to_console`` on for each solve (and captures what HiGHS prints there,
    shown only with ``tee``) but leaves it on.  A persistent model's next update then prints
    straight to the terminal: an MPC horizon that sets a mutable coefficient to 0 printed one
    "|Value| of 0 supplied to Highs::changeCoeff" warning per coefficient, thousands per run.
    """
    try:
        solver._solver_model.setOptionValue("log_to_console", False)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - no model yet or another interface: nothing to silence
        pass


def set_start(solver: Highs, variables: list) -> bool:
    """Hand HiGHS a start solution (a MIP incumbent) from the current values of ``variables``.

    Call it after the last model update and before the next solve.  Uses the persistent
    interface's variable -> column map (not a public Pyomo API in 6.x); returns False and does
    nothing if that is unavailable, so a missing start only costs time, never correctness.
    """
    try:
        import numpy as np

        col = solver._pyomo_var_to_solver_var_map  # noqa: SLF001 - see docstring
        idx, val = [], []
        for v in variables:
            if v.value is not None and id(v) in col:
                idx.append(col[id(v)])
                val.append(float(v.value))
        status = solver._solver_model.setSolution(  # noqa: SLF001
            len(idx), np.asarray(idx, np.int32), np.asarray(val, np.float64)
        )
        return str(status).endswith("kOk")
    except Exception:  # noqa: BLE001 - an optional speed-up
        return False
