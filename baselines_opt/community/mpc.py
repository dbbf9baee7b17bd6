"""Rolling-horizon MPC on the community MILP: :class:`MPCController`.

:class:`MPCController` re-solves the same model over a receding horizon from the env's current
device state, with the env's forecasts, and applies the first step (closed loop).  Its Pyomo
model is built once with mutable parameters and only the parameter values change between
solves.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from baselines_opt.community.carbon import carbon_priced
from baselines_opt.community.horizon import build_horizon
from baselines_opt.community.model import Model, Plan, build_model, decode_plan, param_values
from baselines_opt.solve import SolveOptions, SolverError, make_highs, solve_highs
from gridmarl.core.controller import Controller
from gridmarl.core.types import Action, Observation
from gridmarl.energy.community import Community


def _np(x: Any) -> np.ndarray:
    """A tensor or array as float64 numpy."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, np.float64)


class MPCController(Controller):
    """Closed-loop rolling-horizon MPC on the community MILP.

    At each decision step it reads the env's device state (``env.device_state()``) and
    forecasts (``env.forecast_tensors(steps)``: load, PV, price; exact at lead 0, noisy later
    when the env's forecast is noisy), solves the MILP over the next ``horizon_h`` (cut at the
    episode end; no terminal value, like the env), and applies the first step.  COP, EV
    presence / arrival energy and outdoor temperature come from ``env.community`` (known
    schedules).

    The Pyomo model is built once per env (fixed horizon length; steps beyond the episode end
    get zero weight) with mutable parameters, and a persistent HiGHS interface re-solves it
    after pushing only the new parameter values.

    Args:
        horizon_h: look-ahead [h].
        forecast: ``None`` or ``"noisy"``: the env's forecasts (noisy exactly when the env's
            forecast kind is noisy); ``"perfect"``: the true series from ``env.community``.
        time_limit_s: HiGHS time limit per solve [s].
        mip_gap: relative MIP gap per solve [-].
        threads: HiGHS threads (None = HiGHS default).
        replan_every: decision interval k [steps]: re-solve every k steps and apply the plan
            open loop in between (1 = re-solve at every step, the default).
        relax_tail: keep the integer decisions integer only on the k applied steps of each
            plan and relax them on the rest of the horizon (default True: the applied actions
            are exact, the look-ahead is the LP relaxation, and a 24 h solve takes a fraction
            of a second); False solves the full MILP every time (much slower).
        name: label of the controller.

    Only ``B = 1`` envs are supported (one MILP per step).  If a solve finds no feasible
    schedule in time, the controller continues the previous plan (or a safe default: battery
    idle, EV charging, heat-pump thermostat) and counts it in ``stats["fallbacks"]``.
    """

    def __init__(
        self,
        horizon_h: float = 24.0,
        forecast: str | None = None,
        time_limit_s: float = 2.0,
        mip_gap: float = 0.01,
        threads: int | None = None,
        replan_every: int = 1,
        relax_tail: bool = True,
        name: str = "mpc",
        carbon_usd_per_kg: float = 0.0,
    ) -> None:
        if forecast not in (None, "perfect", "noisy"):
            raise ValueError(f"forecast must be 'perfect', 'noisy' or None, got {forecast!r}")
        if replan_every < 1:
            raise ValueError(f"replan_every must be >= 1, got {replan_every}")
        if horizon_h <= 0:
            raise ValueError(f"horizon_h must be positive, got {horizon_h}")
        self.name = name
        self.horizon_h = float(horizon_h)
        self.forecast = forecast
        self.options = SolveOptions(time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads)
        self.replan_every = int(replan_every)
        self.relax_tail = bool(relax_tail)
        self.carbon_usd_per_kg = float(carbon_usd_per_kg)  # objective term, carbon.py
        self._priced: Community | None = None  # env.community with the carbon price
        self._env: Any = None
        self._mod: Model | None = None
        self._solver: Any = None
        self._plan: Plan | None = None
        self._plan_t0 = 0
        self.stats: dict[str, Any] = {}

    def describe(self) -> str:
        """One line for reports."""
        return (
            f"horizon {self.horizon_h:g} h, forecast {self.forecast or 'env'}, gap "
            f"{self.options.mip_gap:.2%}, limit {self.options.time_limit_s:g} s per solve, "
            f"re-plan every {self.replan_every} step(s)"
            + (", integers on the applied steps only" if self.relax_tail else "")
        )

    def reset(self, env: Any) -> None:
        """Store the env; build the model template (once per community and horizon)."""
        if int(getattr(env, "num_envs", 1)) != 1:
            raise ValueError(
                f"MPCController supports B = 1 envs only, got num_envs = "
                f"{env.num_envs}; evaluate with one environment"
            )
        c: Community = env.community
        H = max(1, round(self.horizon_h / c.step_h))
        if (
            self._mod is None
            or self._env is None
            or self._env.community is not c
            or self._mod.T != H
        ):
            self._priced = carbon_priced(c, self.carbon_usd_per_kg)
            c = self._priced
            s0 = int(_np(env.start)[0])
            T = max(1, min(H, c.steps - s0 - 1))
            t0 = time.perf_counter()
            h = build_horizon(c, s0, T, None, True, pad_to=H)
            self._mod = build_model(
                c, h, dense=True, integer_steps=self.replan_every if self.relax_tail else None
            )
            self._solver = make_highs(persistent_updates=True)
            build_s = time.perf_counter() - t0
        else:
            build_s = 0.0
        self._env = env
        self._plan = None
        self.stats = {
            "build_s": build_s,
            "solve_s": [],
            "status": [],
            "gap": [],
            "fallbacks": 0,
            "solves": 0,
            "step_s": [],
        }

    def _solve_from(self, t: int) -> None:
        """Solve the horizon starting at episode step ``t`` from the env's current state."""
        t_step = time.perf_counter()
        try:
            self._solve_at(t)
        finally:
            self.stats["step_s"].append(time.perf_counter() - t_step)

    def timing(self) -> str:
        """Time per re-plan (parameter update, solve and decoding) for reports [s]."""
        step = np.asarray(self.stats.get("step_s", []), np.float64)
        if step.size == 0:
            return "no re-plan timed"
        solve = np.asarray(self.stats.get("solve_s", []), np.float64)
        fell = int(self.stats.get("fallbacks", 0))
        return (
            f"time per re-plan {step.mean():.3f} s mean, {step.max():.3f} s max over "
            f"{step.size} re-plans (HiGHS {solve.mean() if solve.size else math.nan:.3f} s "
            f"mean), model build {self.stats.get('build_s', 0.0):.1f} s"
            + (
                f"; **{fell} of {step.size} re-plans found no schedule within "
                f"{self.options.time_limit_s:g} s and kept the previous plan or the fallback "
                "(battery idle, EV charging, heat-pump thermostat)**"
                if fell
                else ""
            )
        )

    def _solve_at(self, t: int) -> None:
        env, mod = self._env, self._mod
        assert mod is not None
        c: Community = self._priced if self._priced is not None else env.community
        s0 = int(_np(env.start)[0]) + t
        T = max(1, min(mod.T, int(env.episode_len) - t))
        raw = env.device_state()
        state = {k: _np(raw[k])[0] for k in ("battery_kwh", "ev_kwh", "theta_c")}
        state["peak_kw"] = float(_np(raw["peak_kw"]).reshape(-1)[0])
        if self.forecast == "perfect":
            net = price = None
        else:
            fc = env.forecast_tensors(T)
            net = (_np(fc["load_kw"])[0] - _np(fc["pv_kw"])[0]).sum(axis=0)  # [T]
            price = _np(fc["price_usd_per_kwh"])[0]
            if self.carbon_usd_per_kg:
                ci = np.asarray(c.carbon_kg_per_kwh)[s0 : s0 + len(price)]
                price = price + self.carbon_usd_per_kg * ci
        h = build_horizon(
            c, s0, T, state, episode_start=(t == 0), pad_to=mod.T, net_kw=net, price=price
        )
        for name, vals in param_values(c, h, mod.bat, mod.hp, mod.ev, dense=True).items():
            mod.data.set(name, vals)
        try:
            rep = solve_highs(mod.m, self.options, solver=self._solver, what="MPC horizon")
        except SolverError:
            self.stats["fallbacks"] += 1
            if self._plan is None or t - self._plan_t0 + 1 >= self._plan.discrete.shape[0]:
                self._plan = self._safe_plan(state)
                self._plan_t0 = t
            return
        self.stats["solves"] += 1
        self.stats["solve_s"].append(rep.solve_s)
        self.stats["status"].append(rep.status)
        self.stats["gap"].append(rep.gap)
        e0_all = state["battery_kwh"]
        self._plan = decode_plan(c, mod, e0_all, state["theta_c"])
        self._plan_t0 = t

    def _safe_plan(self, state: dict[str, Any]) -> Plan:
        """One step: battery idle, EV charging at full power, heat pump as a thermostat."""
        c: Community = self._env.community
        N = c.n
        disc = np.where(c.has_hp & (state["theta_c"] < c.theta_lo_c), c.hp_modes - 1, 0)
        cont = np.zeros((1, N, 2))
        cont[:, :, 1] = 1.0
        z = np.zeros((1, N))
        return Plan(
            discrete=disc[None].astype(np.int64),
            continuous=cont,
            battery_kw=z,
            battery_kwh=z,
            ev_kw=z,
            ev_kwh=z,
            hp_kw=z,
            theta_c=z,
            import_kw=z[0, :1],
            export_kw=z[0, :1],
            over_kw=z[0, :1],
            peak_kw=0.0,
        )

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """The plan's action for the env's current step (re-solving when due)."""
        if self._env is None:
            raise RuntimeError("MPCController.reset(env) must be called before act()")
        b, n = obs.batch_shape
        if b != 1:
            raise ValueError(f"MPCController supports B = 1 only, got B = {b}")
        t = int(self._env.t)
        k = t - self._plan_t0
        if (
            self._plan is None
            or k < 0
            or k >= self.replan_every
            or k >= self._plan.discrete.shape[0]
        ):
            self._solve_from(t)
            k = t - self._plan_t0
        assert self._plan is not None
        k = min(k, self._plan.discrete.shape[0] - 1)
        dev, dtype = obs.local.device, obs.local.dtype
        return Action(
            discrete=torch.as_tensor(self._plan.discrete[k], device=dev).long().view(1, n),
            continuous=torch.as_tensor(self._plan.continuous[k], device=dev, dtype=dtype).view(
                1, n, 2
            ),
        )
