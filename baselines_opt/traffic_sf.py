"""Store-and-forward green-split optimization of a signalised grid (Pyomo + HiGHS).

Model (Aboudolas, Papageorgiou & Kosmatopoulos 2009, "Store-and-forward based methods for the
signal control problem in large-scale congested urban road networks", Transportation Research
Part C 17(2), Eq. 1-5; linear variant with explicit outflows).  Roads z entering intersections,
periods k of length T [s], cycle C [s], lost time L = P · yellow [s] per cycle:

    x_z(k+1) = x_z(k) + T (q_z(k) − u_z(k)),   x_z(0) = 0,  x_z(k) ≥ 0          queue [veh]
    q_z(k)   = d_z(k) + Σ_w β_wz u_w(k)                                          inflow [veh/s]
    0 ≤ u_z(k) ≤ S_z Σ_{j serves z} g_nj(k) / C                                  outflow [veh/s]
    Σ_j g_nj(k) = C − L,   g_nj(k) ≥ g_min                                      green [s]

    stage 1:  minimise  TTS = Σ_k Σ_z T (x_z(k) + x_z(k+1)) / 2     total time in queues [veh·s]
    stage 2:  keep TTS at its optimum and maximise Σ_k Σ_n ρ_n(k) subject to
              S_z Σ_{j serves z} g_nj(k) / C ≥ q*_z(k) (1 + ρ_n(k))  for every z into n

Stage 1 alone leaves the splits undetermined wherever the network is under capacity (no queue
in the fluid model); stage 2 picks, among the stage-1 optima, the splits with the largest common
reserve factor ρ on the stage-1 inflows q* — Webster's equisaturation (green ∝ flow ratio)
in the uncongested case.  Demand d and turning rates β come from the known trips of the demand
seed (perfect foresight of the demand, not of the traffic).

The splits are executed in the env as a time-varying plan: in period k each intersection runs
cycles of C / decision_s steps, phase j getting a share of the steps proportional to g_nj(k)
(largest remainder, at least enough steps to serve min green after a yellow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pe
import torch
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from gridmarl.config import ScenarioError
from gridmarl.core.controller import ScheduleController
from gridmarl.traffic.config import TrafficScenario
from gridmarl.traffic.roadnet import NORTH, SOUTH, SignalLayout, Vehicle

SAT_FLOW_VEH_PER_S_PER_LANE = 0.5  # 1800 veh/h per lane, the textbook saturation flow


@dataclass
class SFProblem:
    """A store-and-forward instance.

    Attributes:
        node: ``[Z]`` intersection index of the end of each road.
        serves: ``[Z, P]`` bool, phase j gives road z green.
        sat_veh_per_s: ``[Z]`` saturation flow S_z [veh/s].
        demand_veh_per_s: ``[Z, K]`` exogenous inflow d_z(k) [veh/s].
        turn: ``[Z, Z]`` β_wz, share of road w's outflow that enters road z [-].
        n_nodes: intersections N.
        period_s: T [s].  cycle_s: C [s].  lost_s: L [s] per cycle.  min_green_s: g_min [s].
    """

    node: np.ndarray
    serves: np.ndarray
    sat_veh_per_s: np.ndarray
    demand_veh_per_s: np.ndarray
    turn: np.ndarray
    n_nodes: int
    period_s: float
    cycle_s: float
    lost_s: float
    min_green_s: float


@dataclass
class SFSolution:
    """Optimal green times ``green_s [N, P, K]`` [s], queues ``queue_veh [Z, K+1]`` [veh],
    objective (total time in queues) [veh·s], and the solver status."""

    green_s: np.ndarray
    queue_veh: np.ndarray
    total_time_veh_s: float
    status: str


def _highs_solve(m: pe.ConcreteModel, time_limit_s: float, what: str) -> str:
    opt = SolverFactory("highs")
    if not opt.available():
        raise ScenarioError("sf_plan: the HiGHS solver (highspy) is not available")
    res = opt.solve(
        m,
        time_limit=float(time_limit_s),
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
    )
    tc = res.termination_condition
    if tc != TerminationCondition.convergenceCriteriaSatisfied:
        raise ScenarioError(
            f"sf_plan: HiGHS stopped without an optimal {what} ({tc.name}); raise time_limit_s"
        )
    res.solution_loader.load_vars()
    return tc.name


def solve_sf(pb: SFProblem, time_limit_s: float = 60.0) -> SFSolution:
    """Build the two LPs with Pyomo and solve them with HiGHS (``time_limit_s`` each).

    Raises:
        ScenarioError: when HiGHS is missing or returns no optimal solution.
    """
    z_n, p_n = pb.serves.shape
    k_n = pb.demand_veh_per_s.shape[1]
    n_n = pb.n_nodes
    eff = pb.cycle_s - pb.lost_s
    if eff < p_n * pb.min_green_s - 1e-9:
        raise ScenarioError(
            f"sf_plan: cycle {pb.cycle_s} s minus lost time {pb.lost_s} s cannot "
            f"give {p_n} phases {pb.min_green_s} s of green each"
        )
    m = pe.ConcreteModel()
    m.Z, m.K, m.K1 = pe.RangeSet(0, z_n - 1), pe.RangeSet(0, k_n - 1), pe.RangeSet(0, k_n)
    m.N, m.P = pe.RangeSet(0, n_n - 1), pe.RangeSet(0, p_n - 1)
    m.g = pe.Var(m.N, m.P, m.K, bounds=(pb.min_green_s, eff))
    m.u = pe.Var(m.Z, m.K, domain=pe.NonNegativeReals)
    m.x = pe.Var(m.Z, m.K1, domain=pe.NonNegativeReals)
    ups = [np.flatnonzero(pb.turn[:, z] > 0) for z in range(z_n)]

    def q(mm, z, k):
        return float(pb.demand_veh_per_s[z, k]) + sum(
            float(pb.turn[w, z]) * mm.u[w, k] for w in ups[z]
        )

    def cap(mm, z, k):
        n = int(pb.node[z])
        return (
            float(pb.sat_veh_per_s[z])
            / pb.cycle_s
            * sum(mm.g[n, j, k] for j in range(p_n) if pb.serves[z, j])
        )

    m.split = pe.Constraint(m.N, m.K, rule=lambda mm, n, k: sum(mm.g[n, j, k] for j in mm.P) == eff)
    m.init = pe.Constraint(m.Z, rule=lambda mm, z: mm.x[z, 0] == 0)
    m.queue = pe.Constraint(
        m.Z,
        m.K,
        rule=lambda mm, z, k: (
            mm.x[z, k + 1] == mm.x[z, k] + pb.period_s * (q(mm, z, k) - mm.u[z, k])
        ),
    )
    m.outflow = pe.Constraint(m.Z, m.K, rule=lambda mm, z, k: mm.u[z, k] <= cap(mm, z, k))
    m.tts = pe.Expression(
        expr=sum(pb.period_s * (m.x[z, k] + m.x[z, k + 1]) / 2 for z in m.Z for k in m.K)
    )
    # stage 1: least total time in queues
    m.obj = pe.Objective(expr=m.tts)
    _highs_solve(m, time_limit_s, "store-and-forward plan")
    tts = float(pe.value(m.tts))
    qstar = np.array([[pe.value(q(m, z, k)) for k in m.K] for z in m.Z])
    # stage 2: same total time, largest common reserve factor (equisaturation) per node
    m.obj.deactivate()
    m.keep = pe.Constraint(expr=m.tts <= tts * (1 + 1e-7) + 1e-6)
    m.rho = pe.Var(m.N, m.K, bounds=(-1.0, 100.0))
    m.reserve = pe.Constraint(
        m.Z,
        m.K,
        rule=lambda mm, z, k: (
            (cap(mm, z, k) >= float(qstar[z, k]) * (1 + mm.rho[int(pb.node[z]), k]))
            if qstar[z, k] > 1e-9
            else pe.Constraint.Skip
        ),
    )
    m.obj2 = pe.Objective(expr=sum(m.rho[n, k] for n in m.N for k in m.K), sense=pe.maximize)
    status = _highs_solve(m, time_limit_s, "split refinement")
    green = np.array([[[pe.value(m.g[n, j, k]) for k in m.K] for j in m.P] for n in m.N])
    queue = np.array([[pe.value(m.x[z, k]) for k in m.K1] for z in m.Z])
    return SFSolution(green, queue, float(pe.value(m.tts)), status)


def sf_problem(
    layout: SignalLayout,
    scenario: TrafficScenario,
    trips: list[Vehicle],
    period_s: float,
    cycle_s: float,
    sat_per_lane: float = SAT_FLOW_VEH_PER_S_PER_LANE,
) -> SFProblem:
    """The store-and-forward instance of a grid and its known trips."""
    grid = layout.grid
    roads = [r.id for node in layout.tls for r in grid.incoming(node)]
    index = {r: z for z, r in enumerate(roads)}
    node_of = {t: i for i, t in enumerate(layout.tls)}
    tr = scenario.traffic
    k_n = math.ceil(tr.horizon_s / period_s)
    z_n, p_n = len(roads), layout.max_phases
    serves = np.zeros((z_n, p_n), bool)
    node = np.zeros(z_n, np.int64)
    for z, rid in enumerate(roads):
        road = grid.roads[rid]
        node[z] = node_of[road.dst]
        serves[z, 0 if road.heading in (NORTH, SOUTH) else 1] = True
    demand = np.zeros((z_n, k_n))
    counts = np.zeros((z_n, z_n))
    through = np.zeros(z_n)
    for v in trips:
        k = min(int(v.depart_s // period_s), k_n - 1)
        demand[index[v.route[0]], k] += 1.0 / period_s
        for a, b in zip(v.route[:-1], v.route[1:], strict=False):
            through[index[a]] += 1
            if b in index:
                counts[index[a], index[b]] += 1
    turn = counts / np.maximum(through, 1)[:, None]
    sat = np.full(z_n, sat_per_lane * grid.cfg.lanes)
    return SFProblem(
        node,
        serves,
        sat,
        demand,
        turn,
        len(layout.tls),
        float(period_s),
        float(cycle_s),
        float(p_n * tr.yellow_s),
        float(tr.min_green_s),
    )


def plan_steps(
    green_s: np.ndarray, scenario: TrafficScenario, period_s: float, cycle_s: float
) -> np.ndarray:
    """``[T, N]`` phase per env step executing the splits ``green_s [N, P, K]``."""
    tr = scenario.traffic
    slots = int(round(cycle_s / tr.decision_s))
    n_n, p_n, k_n = green_s.shape
    # after a yellow the green lasts decision_s - yellow_s in the first step; min green must fit
    min_slots = 1 + math.ceil(
        max(0, tr.min_green_s - (tr.decision_s - tr.yellow_s)) / tr.decision_s
    )
    min_slots = min(min_slots, slots // p_n) if slots >= p_n else 1
    out = np.zeros((tr.steps, n_n), np.int64)
    rest = slots - p_n * min_slots
    for n in range(n_n):
        owed = np.zeros(p_n)  # slots phase j is owed by its target share so far [-]
        for k in range(k_n):
            frac = green_s[n, :, k] / green_s[n, :, k].sum()
            s0 = int(round(k * period_s / tr.decision_s))
            s1 = min(tr.steps, int(round((k + 1) * period_s / tr.decision_s)))
            for c0 in range(s0, s1, slots):
                owed = frac * slots  # same split in every cycle of the period
                extra = np.zeros(p_n, np.int64)
                for _ in range(rest):  # hand the free slots to the most owed phases
                    j = int(np.argmax(owed - min_slots - extra))
                    extra[j] += 1
                alloc = min_slots + extra
                owed -= alloc
                cycle = np.repeat(np.arange(p_n), alloc)
                for s in range(c0, min(s1, c0 + slots)):
                    out[s, n] = cycle[s - c0]
    return out


def sf_controller(
    layout: SignalLayout,
    scenario: TrafficScenario,
    trips: list[Vehicle],
    name: str = "sf_plan",
    period_s: float = 300.0,
    cycle_s: float = 60.0,
    time_limit_s: float = 60.0,
) -> tuple[ScheduleController, SFSolution]:
    """Solve the store-and-forward plan for ``trips`` and wrap it as an open-loop controller."""
    tr = scenario.traffic
    if cycle_s % tr.decision_s or period_s % cycle_s:
        raise ScenarioError(
            f"sf_plan: cycle_s ({cycle_s}) must be a multiple of "
            f"traffic.decision_s ({tr.decision_s}) and period_s ({period_s}) a "
            "multiple of cycle_s"
        )
    pb = sf_problem(layout, scenario, trips, period_s, cycle_s)
    sol = solve_sf(pb, time_limit_s=time_limit_s)
    steps = plan_steps(sol.green_s, scenario, period_s, cycle_s)
    disc = torch.as_tensor(steps)
    ctrl = ScheduleController(name, disc, torch.zeros(*disc.shape, 0))
    return ctrl, sol
