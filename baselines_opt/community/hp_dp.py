"""Integer heat-pump schedules by dynamic programming over the indoor temperature.

One heat pump alone, its power priced at ``λ_t`` [$/kW per step], is the subproblem of the
community MILP's Lagrangian decomposition (:mod:`~baselines_opt.community.column_generation`)::

    min_m  Σ_t  c_t m_t + k_t (max(θ_lo − θ_t, 0) + max(θ_t − θ_hi, 0))
    s.t.   θ_t = a θ_{t−1} + (1 − a) T_out,t + g_t m_t,   m_t ∈ {0 … M−1}

(items 2 to 4 of :mod:`gridmarl.energy.community`; ``c_t = λ_t P_hp / (M − 1)`` plus the mode's
own cost, ``k_t`` the comfort price [$/C per step], ``g_t`` the heating per mode step [C]).  Its
only state is ``θ``, so Bellman's recursion (Bellman 1957, *Dynamic Programming*, ch. III;
Bertsekas 2017, *Dynamic Programming and Optimal Control* I, §1.3)::

    V_T(θ) = 0,   V_t(θ) = min_m  stage_t(θ, m) + V_{t+1}(a θ + (1 − a) T_out,t + g_t m)

is solved backwards on a uniform temperature grid (spacing ``DELTA_C``) with ``V_{t+1}``
linearly interpolated between grid points (the discretised DP of Bertsekas I, §6.6 / "aggregation
by interpolation").  The forward pass then follows the *exact* dynamics from ``θ_0`` and picks at
each step the mode of least stage cost plus interpolated cost-to-go, so the schedule returned is
feasible and its θ path exact; only the choice is approximate (a heuristic for the MIP: HiGHS's
proven bound of the same subproblem remains the bound).  Measured on the 200-prosumer week at the
LP prices: 0.6–1.3 % below the priced cost of rounding the LP's schedule, within 1.2 % of HiGHS's
bound, where HiGHS itself found nothing better than its start in 1 s per heat pump.

All heat pumps of a call are solved at once, vectorised over ``[heat pumps, grid points, modes]``
in chunks that bound the memory of the stored value functions (``MAX_VALUE_ENTRIES``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from baselines_opt.community.column_generation import Block

#: spacing of the temperature grid [C]
DELTA_C = 0.01
#: margin of the grid below / above the free-running temperatures and the comfort band [C]
GRID_MARGIN_C = (1.0, 2.0)
#: at most this many stored values V_t(θ) per chunk of heat pumps (64 MB as float64) [-]
MAX_VALUE_ENTRIES = 8_000_000


def _interp(V: np.ndarray, x0: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``V [H, G]`` on the grids ``x0[h] + DELTA_C · j`` at ``theta [H, ...]``, linear, clamped
    at both ends."""
    H, G = V.shape
    shape = theta.shape
    pos = (theta.reshape(H, -1) - x0[:, None]) / DELTA_C
    pos = np.clip(pos, 0.0, G - 1.000001)
    i0 = pos.astype(np.int64)
    f = pos - i0
    v0 = np.take_along_axis(V, i0, axis=1)
    v1 = np.take_along_axis(V, i0 + 1, axis=1)
    return (v0 + f * (v1 - v0)).reshape(shape)


def hp_schedules(blocks: list[Block], lam: np.ndarray) -> list[np.ndarray]:
    """Integer schedules of the heat-pump ``blocks`` (``column_generation.hp_block``) at the
    prices ``lam [T]`` [$/kW per step] by the discretised DP of the module docstring.

    Returns:
        Per block its solution vector ``[mode [T], θ [T], v_lo [T], v_hi [T]]`` (modes [-],
        temperatures after each step [C], comfort slacks [C]) in the block's column order, with
        the θ path of the exact dynamics.
    """
    if not blocks:
        return []
    T = len(blocks[0].meta["t_out"])
    spans = [_grid(b) for b in blocks]
    chunk = max(1, MAX_VALUE_ENTRIES // ((T + 1) * max(g for _, g in spans)))
    out: list[np.ndarray] = []
    for i in range(0, len(blocks), chunk):
        out += _solve_chunk(blocks[i : i + chunk], lam, spans[i : i + chunk])
    return out


def _grid(blk: Block) -> tuple[float, int]:
    """(lowest grid temperature [C], grid points) of one heat pump: the span of its free-running
    temperatures (every mode 0), its start and its comfort band, with ``GRID_MARGIN_C``."""
    q = blk.meta
    a, th = q["a"], q["theta0"]
    lo_t = hi_t = th
    for t_out in q["t_out"]:
        th = a * th + (1.0 - a) * t_out
        lo_t, hi_t = min(lo_t, th), max(hi_t, th)
    x0 = min(lo_t, q["lo"]) - GRID_MARGIN_C[0]
    x1 = max(hi_t, q["hi"]) + GRID_MARGIN_C[1]
    return x0, int(math.ceil((x1 - x0) / DELTA_C)) + 2


def _solve_chunk(
    blocks: list[Block], lam: np.ndarray, spans: list[tuple[float, int]]
) -> list[np.ndarray]:
    H = len(blocks)
    q0 = blocks[0].meta
    T, m1 = len(q0["t_out"]), int(q0["m1"])
    G = max(g for _, g in spans)
    x0 = np.array([s[0] for s in spans])
    a = np.array([b.meta["a"] for b in blocks])
    th0 = np.array([b.meta["theta0"] for b in blocks])
    lo = np.array([b.meta["lo"] for b in blocks])
    hi = np.array([b.meta["hi"] for b in blocks])
    free = (1.0 - a)[None, :] * np.asarray(q0["t_out"], np.float64)[:, None]  # [T, H] [C]
    gain = np.stack([b.meta["gain"] for b in blocks], axis=1)  # [T, H] [C per mode step]
    base = np.stack([np.asarray(b.lp.col_cost_, np.float64) for b in blocks], axis=1)
    # mode price c_t: own cost + λ_t · (power per mode step); comfort price k_t [$/C]
    c_mode = base[:T] + lam[:, None] * np.stack([b.d_vals for b in blocks], axis=1)
    k = base[2 * T : 3 * T]
    ms = np.arange(m1 + 1, dtype=np.float64)
    grid = x0[:, None] + DELTA_C * np.arange(G)[None, :]  # [H, G]

    def stage(t: int, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """θ' and stage cost of every mode from ``theta [H, K]``: ``[H, K, M]`` each."""
        nxt = (
            a[:, None, None] * theta[:, :, None]
            + free[t][:, None, None]
            + gain[t][:, None, None] * ms
        )
        below = np.maximum(lo[:, None, None] - nxt, 0.0)
        comfort = below + np.maximum(nxt - hi[:, None, None], 0.0)
        return nxt, c_mode[t][:, None, None] * ms + k[t][:, None, None] * comfort

    V = np.zeros((T + 1, H, G))
    for t in range(T - 1, -1, -1):  # backward: V_t on the grid
        nxt, cost = stage(t, grid)
        V[t] = (cost + _interp(V[t + 1], x0, nxt)).min(axis=2)
    modes, theta = np.zeros((T, H)), np.zeros((T, H))
    th = th0
    for t in range(T):  # forward: exact dynamics, interpolated cost-to-go
        nxt, cost = stage(t, th[:, None])
        j = np.argmin(cost + _interp(V[t + 1], x0, nxt), axis=2)[:, 0]
        modes[t] = ms[j]
        th = np.take_along_axis(nxt[:, 0, :], j[:, None], axis=1)[:, 0]
        theta[t] = th
    return [
        np.concatenate(
            [
                modes[:, h],
                theta[:, h],
                np.maximum(lo[h] - theta[:, h], 0.0),
                np.maximum(theta[:, h] - hi[h], 0.0),
            ]
        )
        for h in range(H)
    ]


#: spacing of the cells of :func:`hp_lower_bounds` [C]
BOUND_DELTA_C = 0.002


def hp_lower_bounds(
    blocks: list[Block], lam: np.ndarray, delta_c: float = BOUND_DELTA_C
) -> np.ndarray:
    """Proven lower bounds on the priced optimum of each heat-pump block at ``lam [T]``.

    The DP of :func:`hp_schedules` interpolates its cost-to-go, so its value is not a bound.
    Here the temperature axis is cut into cells of width ``delta_c`` spanning every reachable
    temperature (between the free-running path, all modes 0, and the all-modes-maximal path:
    the dynamics are increasing in θ and in the mode), and the recursion is taken over cells
    with the least value in each (a relaxation of Bellman's equation by state aggregation,
    Bertsekas 2017, *Dynamic Programming and Optimal Control* I, §6.5)::

        W_T = 0,   W_t(cell) = min_m [ min_{θ ∈ cell} stage_t(θ, m)
                                      + min over the cells meeting the image of the cell W_{t+1} ]

    Each term is at most its value at any θ of the cell, so by induction ``W_t(cell) <= V_t(θ)``
    for every reachable θ in it, and the bound is the first step's exact minimum over the modes
    from ``θ_0`` with ``W_1``.  The image of a cell is an interval of width ``a · delta_c``, so
    it meets at most two cells.  Valid for any prices (it enters the Lagrangian bound L(λ)).

    Returns:
        ``[len(blocks)]`` bounds [$], in the blocks' order.
    """
    if not blocks:
        return np.zeros(0)
    return np.array([_lower_bound(b, lam, delta_c) for b in blocks])


def _lower_bound(blk: Block, lam: np.ndarray, delta_c: float) -> float:
    q = blk.meta
    a, th0, lo, hi = float(q["a"]), float(q["theta0"]), float(q["lo"]), float(q["hi"])
    t_out = np.asarray(q["t_out"], np.float64)
    T, m1 = len(t_out), int(q["m1"])
    free = (1.0 - a) * t_out  # [T] [C]
    gain = np.asarray(q["gain"], np.float64)  # [T] [C per mode step]
    base = np.asarray(blk.lp.col_cost_, np.float64)
    c_mode = base[:T] + lam * blk.d_vals  # [T] [$ per mode step]
    k = base[2 * T : 3 * T]  # [T] [$/C]
    ms = np.arange(m1 + 1, dtype=np.float64)
    # reachable span [x0, x1] over the whole horizon
    th_min = th_max = th0
    x0 = x1 = th0
    for t in range(T):
        th_min = a * th_min + free[t]
        th_max = a * th_max + free[t] + gain[t] * m1
        x0, x1 = min(x0, th_min), max(x1, th_max)
    G = int(math.ceil((x1 - x0) / delta_c)) + 1
    left = x0 + delta_c * np.arange(G)  # [G] cell j = [left_j, left_j + delta_c]

    def terms(t: int, lo_th: np.ndarray, hi_th: np.ndarray, W: np.ndarray | None) -> np.ndarray:
        """min over the modes of the cell terms, ``lo_th``/``hi_th [K]`` the cells' ends."""
        n_lo = a * lo_th[:, None] + free[t] + gain[t] * ms  # [K, M]
        n_hi = a * hi_th[:, None] + free[t] + gain[t] * ms
        comfort = np.maximum(lo - n_hi, 0.0) + np.maximum(n_lo - hi, 0.0)
        val = c_mode[t] * ms + k[t] * comfort
        if W is not None:
            j0 = np.clip(np.floor((n_lo - x0) / delta_c).astype(np.int64), 0, G - 1)
            j1 = np.clip(np.floor((n_hi - x0) / delta_c).astype(np.int64), 0, G - 1)
            val = val + np.minimum(W[j0], W[j1])
        return val.min(axis=1)

    W: np.ndarray | None = None
    for t in range(T - 1, 0, -1):
        W = terms(t, left, left + delta_c, W)
    return float(terms(0, np.array([th0]), np.array([th0]), W)[0])
