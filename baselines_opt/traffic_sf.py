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

Executable plan (``coordinate``, ``plan_steps``, ``sf_controller``).  The env switches phases
only at decision steps (``decision_s``), with a yellow inside the step and min green, so the
splits become whole steps per phase of a common cycle (``slot_splits``: min-green steps first,
then largest remainder).  The store-and-forward model has no offsets and treats every cycle
length alike when under capacity, so a second optimisation picks them: for each candidate
common cycle, a cyclic deterministic queue model of every road (TRANSYT-like: platoons leave
the upstream intersection with the departure profile of its approaches, travel the road at the
speed limit and queue until green; no dispersion) gives the delay of each road as a function
of the offset difference of its two intersections, and a small MILP (Pyomo + HiGHS) chooses
the offsets of least total delay.  The candidate cycle with the least modelled delay (plus
stage-1 queue time) is executed open loop.  On the 6 × 6 grid (200 m roads, ≈ 15 s between
intersections) it picks the shortest executable cycle (40 s) with alternate (checkerboard)
offsets of half a cycle: the classic two-way progression when the link travel time is about
half the cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pe
import torch
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from gridmarl.core.controller import ScheduleController
from gridmarl.core.errors import ScenarioError
from gridmarl.traffic.config import TrafficScenario
from gridmarl.traffic.roadnet import SignalLayout, Vehicle

SAT_FLOW_VEH_PER_S_PER_LANE = 0.5  # 1800 veh/h per lane, the textbook saturation flow


@dataclass
class SFProblem:
    """A store-and-forward instance.

    Attributes:
        node: ``[Z]`` intersection index of the end of each road.
        serves: ``[Z, P]`` share of road z's lanes phase j serves [-] (a lane is served when
            every movement leaving it is green; 1 or 0 in the 2-phase design).
        sat_veh_per_s: ``[Z]`` saturation flow S_z [veh/s].
        demand_veh_per_s: ``[Z, K]`` exogenous inflow d_z(k) [veh/s].
        turn: ``[Z, Z]`` β_wz, share of road w's outflow that enters road z [-].
        n_nodes: intersections N.
        period_s: T [s].  cycle_s: C [s].  lost_s: L [s] per cycle.  min_green_s: g_min [s].
        up_node: ``[Z]`` intersection at the start of each road, -1 for an entry road (needed
            only for the coordination stage, ``coordinate``).
        travel_s: ``[Z]`` free-flow travel time of each road [s] (coordination stage).
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
    up_node: np.ndarray | None = None
    travel_s: np.ndarray | None = None


@dataclass
class SFSolution:
    """Optimal green times ``green_s [N, P, K]`` [s], queues ``queue_veh [Z, K+1]`` [veh],
    objective (total time in queues) [veh·s], the solver status, and the fluid inflows
    ``inflow_veh_per_s [Z, K]`` (q*) of the optimum."""

    green_s: np.ndarray
    queue_veh: np.ndarray
    total_time_veh_s: float
    status: str
    inflow_veh_per_s: np.ndarray | None = None


def _highs_solve(
    m: pe.ConcreteModel, time_limit_s: float, what: str, accept_feasible: bool = False
) -> str:
    """Solve ``m`` with HiGHS and load the solution; ``accept_feasible``: a MIP stopped by the
    time limit with an incumbent is accepted."""
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
    if (
        accept_feasible
        and tc == TerminationCondition.maxTimeLimit
        and res.incumbent_objective is not None
    ):
        res.solution_loader.load_vars()
        return tc.name
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
            * sum(float(pb.serves[z, j]) * mm.g[n, j, k] for j in range(p_n) if pb.serves[z, j])
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
    return SFSolution(green, queue, float(pe.value(m.tts)), status, qstar)


def lane_service(layout: SignalLayout) -> np.ndarray:
    """``[Z, P]`` share of each incoming road's lanes that phase j serves [-], roads in the
    order of ``sf_problem`` (intersection by intersection, approaches N, E, S, W): a lane is
    served when every movement leaving it is green (protected or permitted).  A shared
    straight/right lane is not served by a phase that lets only the right turn go."""
    grid = layout.grid
    rows = []
    for i, node in enumerate(layout.tls):
        p = layout.n_phases[i]
        served: dict[int, np.ndarray] = {}
        for m, (slot, _) in enumerate(layout.movements[i]):
            green = layout.phase_movements[i, :p, m]
            served[slot] = served.get(slot, np.ones(p, bool)) & green
        for road in grid.incoming(node):
            slots = [j for j, (rid, _) in enumerate(layout.lanes[i]) if rid == road.id]
            share = np.zeros(layout.max_phases)
            share[:p] = np.mean([served.get(j, np.zeros(p, bool)) for j in slots], axis=0)
            rows.append(share)
    return np.array(rows)


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
    up_node = np.array([node_of.get(grid.roads[r].src, -1) for r in roads], np.int64)
    travel = np.full(len(roads), grid.cfg.road_length_m / grid.cfg.speed_limit_m_per_s)
    tr = scenario.traffic
    k_n = math.ceil(tr.horizon_s / period_s)
    z_n, p_n = len(roads), layout.max_phases
    serves = lane_service(layout)
    node = np.array([node_of[grid.roads[rid].dst] for rid in roads], np.int64)
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
        float(p_n * tr.change_s),
        float(tr.min_green_s),
        up_node,
        travel,
    )


# --------------------------------------------------------------------------------------------
# Executable plan: whole-step splits, common cycle, offsets
# --------------------------------------------------------------------------------------------
def min_slots(scenario: TrafficScenario) -> int:
    """Decision steps a phase needs so that its green (``decision_s − yellow_s − all_red_s`` in
    the first step after a change) lasts ``min_green_s`` (``SignalConfig.min_green_steps``)."""
    return scenario.traffic.min_green_steps


def slot_splits(green_s: np.ndarray, slots: int, min_slot: int) -> np.ndarray:
    """``[N, P, K]`` decision steps per phase and cycle of ``slots`` steps: every phase gets
    ``min_slot``, the free steps go one by one to the phase most short of its share
    ``green_s / Σ green_s`` (largest remainder)."""
    n_n, p_n, k_n = green_s.shape
    min_slot = min(min_slot, slots // p_n) if slots >= p_n else 1
    rest = slots - p_n * min_slot
    out = np.zeros((n_n, p_n, k_n), np.int64)
    for n in range(n_n):
        for k in range(k_n):
            owed = green_s[n, :, k] / green_s[n, :, k].sum() * slots
            extra = np.zeros(p_n, np.int64)
            for _ in range(rest):
                extra[int(np.argmax(owed - min_slot - extra))] += 1
            out[n, :, k] = min_slot + extra
    return out


def _green_seconds(alloc: np.ndarray, decision_s: int, yellow_s: int) -> np.ndarray:
    """``[..., P, C]`` bool: phase j shows green in second t of the cycle (phases in index
    order from t = 0, each block opening with ``yellow_s`` of yellow), ``alloc [..., P]``."""
    p_n = alloc.shape[-1]
    c = int(alloc[(0,) * (alloc.ndim - 1)].sum()) * decision_s
    t = np.arange(c)
    start = np.concatenate([np.zeros_like(alloc[..., :1]), np.cumsum(alloc, -1)[..., :-1]], -1)
    t0 = (start * decision_s + yellow_s)[..., None]
    t1 = ((start + alloc) * decision_s)[..., None]
    g = (t >= t0) & (t < t1)
    return g.reshape(*alloc.shape[:-1], p_n, c)


def _cyclic_queue(
    arrive: np.ndarray, green: np.ndarray, sat: np.ndarray, n_cycles: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic vertical queue over repeated cycles, 1 s bins, starting empty.

    Args:
        arrive: ``[B, C]`` arrivals per second of the cycle [veh/s].
        green: ``[B, C]`` bool, served in that second.
        sat: ``[B]`` saturation flow [veh/s].
    Returns:
        Mean queue over the last cycle ``[B]`` [veh] and departures per second of the last
        cycle ``[B, C]`` [veh/s].
    """
    b, c = arrive.shape
    q = np.zeros(b)
    total = np.zeros(b)
    dep = np.zeros((b, c))
    for cyc in range(n_cycles):
        last = cyc == n_cycles - 1
        for t in range(c):
            q = q + arrive[:, t]
            out = np.minimum(q, sat * green[:, t])
            q = q - out
            if last:
                total += q
                dep[:, t] = out
    return total / c, dep


@dataclass
class Coordination:
    """A common cycle with offsets: ``alloc [N, P, K]`` steps per phase and period,
    ``offset_steps [N]``, the model's delay estimate ``delay_veh_s`` [veh·s] (cyclic queues of
    every road over the horizon), the store-and-forward solution it was built on, and (from
    ``sf_controller``) the score of every candidate cycle [veh·s]."""

    cycle_s: float
    alloc: np.ndarray
    offset_steps: np.ndarray
    delay_veh_s: float
    sf: SFSolution
    scores: dict[float, float] = field(default_factory=dict)


def _pairs(pb: SFProblem) -> list[tuple[int, int]]:
    return sorted(
        {
            (min(int(a), int(b)), max(int(a), int(b)))
            for a, b in zip(pb.up_node, pb.node, strict=True)
            if a >= 0
        }
    )


def coordinate(
    pb: SFProblem,
    sol: SFSolution,
    scenario: TrafficScenario,
    optimise_offsets: bool = True,
    time_limit_s: float = 60.0,
) -> Coordination:
    """Whole-step splits of ``sol`` for the cycle ``pb.cycle_s`` and the offsets that minimise
    the total delay of a cyclic deterministic queue model (TRANSYT-like, no dispersion).

    Model, per road z into intersection b and period k: vehicles leave the upstream
    intersection a with the departure profile of its approaches (each approach w a vertical
    queue fed uniformly at q*_w, served at S_w in w's green, a share β_wz of it turning into z),
    arrive at b ``travel_s`` later, and queue there until z's green (served at S_z).  Entry roads
    are fed uniformly at their demand.  The delay of road z is its mean queue × T [veh·s]; it
    depends only on the offset difference δ = o_b − o_a (mod the cycle).  The offsets solve

        min Σ_pairs Σ_δ c_p(δ) w_pδ   s.t.  Σ_δ δ w_pδ = o_b − o_a + S m_p,  Σ_δ w_pδ = 1,
        w, m binary, o_n ∈ {0, …, S − 1} integer, o_0 = 0                      (Pyomo + HiGHS)

    with S steps per cycle.  ``optimise_offsets=False`` (or a problem without ``up_node``)
    keeps every offset at 0 (all intersections in step).
    """
    tr = scenario.traffic
    dec, yel = int(tr.decision_s), int(tr.change_s)
    slots = int(round(pb.cycle_s / dec))
    alloc = slot_splits(sol.green_s, slots, min_slots(scenario))  # [N, P, K]
    n_n, p_n, k_n = alloc.shape
    z_n = pb.serves.shape[0]
    c = slots * dec
    green = _green_seconds(np.moveaxis(alloc, 1, 2), dec, yel)  # [N, K, P, C]
    qstar = sol.inflow_veh_per_s if sol.inflow_veh_per_s is not None else pb.demand_veh_per_s
    # green of each road at its own intersection: [Z, K, C]
    g_road = np.einsum("zp,zkpc->zkc", pb.serves.astype(float), green[pb.node]) > 0
    sat = np.repeat(pb.sat_veh_per_s, k_n)
    # every road fed uniformly at q*: its queue (used for entry roads, and for every road when
    # the problem has no upstream data) and its departure profile [Z, K, C]
    unif_q, dep = _cyclic_queue(
        np.repeat(qstar.reshape(-1, 1), c, 1), g_road.reshape(z_n * k_n, c), sat
    )
    dep = dep.reshape(z_n, k_n, c)
    if pb.up_node is None or pb.travel_s is None:
        inner = np.zeros(z_n, bool)
    else:
        inner = pb.up_node >= 0
    unif_cost = (unif_q.reshape(z_n, k_n) * pb.period_s).sum(1)  # [Z]
    offsets = np.zeros(n_n, np.int64)
    if not inner.any():
        return Coordination(pb.cycle_s, alloc, offsets, float(unif_cost.sum()), sol)
    zi = np.flatnonzero(inner)
    # flow into road z leaving its upstream intersection, a-local time: [Zi, K, C]
    prof = np.einsum("wz,wkc->zkc", pb.turn, dep)[zi]
    cost = np.zeros((len(zi), slots))
    for d in range(slots):
        arr = np.stack(
            [np.roll(prof[i], int(round(pb.travel_s[z])) - d * dec, -1) for i, z in enumerate(zi)]
        )
        qm, _ = _cyclic_queue(
            arr.reshape(-1, c), g_road[zi].reshape(-1, c), np.repeat(pb.sat_veh_per_s[zi], k_n)
        )
        cost[:, d] = (qm.reshape(len(zi), k_n) * pb.period_s).sum(1)
    fixed = float(unif_cost[~inner].sum())
    if not optimise_offsets:
        return Coordination(pb.cycle_s, alloc, offsets, fixed + float(cost[:, 0].sum()), sol)
    pairs = _pairs(pb)
    pidx = {pq: i for i, pq in enumerate(pairs)}
    cp = np.zeros((len(pairs), slots))
    for i, z in enumerate(zi):
        a, b = int(pb.up_node[z]), int(pb.node[z])
        if a < b:
            cp[pidx[(a, b)]] += cost[i]
        else:  # δ_z = o_a' - o_b' for the pair (b, a): the pair's δ negated
            cp[pidx[(b, a)]] += cost[i][(-np.arange(slots)) % slots]
    m = pe.ConcreteModel()
    m.N, m.Pr, m.D = (
        pe.RangeSet(0, n_n - 1),
        pe.RangeSet(0, len(pairs) - 1),
        pe.RangeSet(0, slots - 1),
    )
    m.o = pe.Var(m.N, domain=pe.Integers, bounds=(0, slots - 1))
    m.w = pe.Var(m.Pr, m.D, domain=pe.Binary)
    m.m = pe.Var(m.Pr, domain=pe.Binary)
    m.o[0].fix(0)
    m.one = pe.Constraint(m.Pr, rule=lambda mm, p: sum(mm.w[p, d] for d in mm.D) == 1)
    m.diff = pe.Constraint(
        m.Pr,
        rule=lambda mm, p: (
            sum(d * mm.w[p, d] for d in mm.D)
            == mm.o[pairs[p][1]] - mm.o[pairs[p][0]] + slots * mm.m[p]
        ),
    )
    m.obj = pe.Objective(expr=sum(float(cp[p, d]) * m.w[p, d] for p in m.Pr for d in m.D))
    _highs_solve(m, time_limit_s, "offset plan", accept_feasible=True)
    offsets = np.array([int(round(pe.value(m.o[n]))) for n in m.N], np.int64)
    return Coordination(pb.cycle_s, alloc, offsets, fixed + float(pe.value(m.obj)), sol)


def plan_steps(
    green_s: np.ndarray,
    scenario: TrafficScenario,
    period_s: float,
    cycle_s: float,
    offset_steps: np.ndarray | None = None,
) -> np.ndarray:
    """``[T, N]`` phase per env step executing the splits ``green_s [N, P, K]``: intersection n
    runs a common cycle of ``cycle_s / decision_s`` steps shifted by ``offset_steps[n]`` (0
    when None), phases in index order, the steps of each phase from ``slot_splits`` of the
    period the step falls in.  The env's min-green mask keeps a phase whose block was cut short
    at a period boundary."""
    tr = scenario.traffic
    slots = int(round(cycle_s / tr.decision_s))
    n_n = green_s.shape[0]
    k_n = green_s.shape[2]
    alloc = slot_splits(green_s, slots, min_slots(scenario))
    offs = np.zeros(n_n, np.int64) if offset_steps is None else np.asarray(offset_steps)
    out = np.zeros((tr.steps, n_n), np.int64)
    for s in range(tr.steps):
        k = min(int(s * tr.decision_s // period_s), k_n - 1)
        for n in range(n_n):
            cyc = np.repeat(np.arange(alloc.shape[1]), alloc[n, :, k])
            out[s, n] = cyc[(s - offs[n]) % slots]
    return out


def sf_controller(
    layout: SignalLayout,
    scenario: TrafficScenario,
    trips: list[Vehicle],
    name: str = "sf_plan",
    period_s: float = 300.0,
    cycle_s: float | list[float] = 60.0,
    time_limit_s: float = 60.0,
    offsets: bool = True,
) -> tuple[ScheduleController, Coordination]:
    """Solve the store-and-forward plan for ``trips`` and wrap it as an open-loop controller.

    For every candidate common cycle in ``cycle_s`` (one value or a list; each a multiple of
    ``traffic.decision_s`` long enough for min green in every phase): the store-and-forward
    splits, their whole-step version and the optimal offsets (``coordinate``); the plan with the
    least modelled delay plus store-and-forward queue time is executed.
    """
    tr = scenario.traffic
    cycles = [float(x) for x in (cycle_s if isinstance(cycle_s, list | tuple) else [cycle_s])]
    if not cycles:
        raise ScenarioError("sf_plan: cycle_s must list at least one cycle length")
    need = layout.max_phases * min_slots(scenario) * tr.decision_s
    for cy in cycles:
        if cy % tr.decision_s or cy < need:
            raise ScenarioError(
                f"sf_plan: cycle_s ({cy}) must be a multiple of traffic.decision_s "
                f"({tr.decision_s}) and at least {need} s (min green for every phase)"
            )
    if period_s % tr.decision_s:
        raise ScenarioError(
            f"sf_plan: period_s ({period_s}) must be a multiple of traffic.decision_s "
            f"({tr.decision_s})"
        )
    best: tuple[float, Coordination] | None = None
    scores: dict[float, float] = {}
    for cy in cycles:
        pb = sf_problem(layout, scenario, trips, period_s, cy)
        sol = solve_sf(pb, time_limit_s=time_limit_s)
        co = coordinate(pb, sol, scenario, optimise_offsets=offsets, time_limit_s=time_limit_s)
        scores[cy] = co.delay_veh_s + sol.total_time_veh_s
        if best is None or scores[cy] < best[0]:
            best = (scores[cy], co)
    assert best is not None
    co = best[1]
    co.scores = scores
    steps = plan_steps(co.sf.green_s, scenario, period_s, co.cycle_s, co.offset_steps)
    disc = torch.as_tensor(steps)
    ctrl = ScheduleController(name, disc, torch.zeros(*disc.shape, 0))
    return ctrl, co
