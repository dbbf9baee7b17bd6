"""Training-only rewards of the energy community: credit assignment and stored-energy shaping.

``CommunityEnv`` accounts cost and nothing else: its per-agent reward is each prosumer's own
share of the community's bill, ``−(bill + own degradation + own comfort + own unmet + share of
transformer and peak costs)`` [$], summing to ``team_reward = −community cost``
(:mod:`gridmarl.energy.community`).  A learner may be trained on another per-agent reward; the
wrappers below compute it from the env's accounting (``Step.info``'s per-prosumer ``net_kw``,
``bill_usd``, ``own_cost_usd``, ``price_usd_per_kwh`` and community totals, ``device_state()``
and ``stored_energy()``).  ``team_reward``, ``info``, ``records()`` and the KPIs are the env's
and never depend on them.  ``gridmarl.energy.training`` wraps the training env as the
scenario's ``train`` block asks (``train.credit``, ``train.battery_value_usd_per_kwh``,
``train.ev_value_usd_per_kwh``); evaluation and validation run the bare env.

``credit`` (``CreditWrapper``) picks how the community-level costs enter the per-agent reward:

* ``"share"`` (default): the env's accounting reward, the P2P bill plus a proportional share of
  the transformer and peak costs; the per-agent rewards sum to the team reward.
* ``"marginal"``: a difference reward (Wolpert & Tumer 2002).  Instead of its bill and shares,
  prosumer n is charged what its own net power changes in the community's grid, transformer
  and peak cost: ``f(G) − f(G − x_n)`` with ``f(G) = (π max(G, 0) − π_fi max(−G, 0)) Δt +
  c_over max(0, |G| − limit) Δt + c_peak · (peak rise)``, plus its own degradation, comfort
  and unmet costs.  A kWh an agent exports while the community imports is then worth the
  import price π to it (the team's saving) rather than the platform's internal price, and a kWh
  it imports during congestion costs it c_over more.  These rewards do not sum to the team's.
* ``"marginal_excess"``: the bill and the peak share as in ``"share"``, but the transformer
  cost charged as the excess the agent causes, ``c_over (over(G) − over(G − x_n)) Δt``.

``PotentialShaping`` with ``battery_value_usd_per_kwh`` = v > 0 adds potential-based shaping
(Ng, Harada & Russell 1999) to every per-agent reward: ``γ Φ(s') − Φ(s)`` with ``Φ = v · e``,
the energy stored in the prosumer's own battery [kWh] before and after the step, and γ the
learner's discount.  A kWh discharged then pays its saving minus v / η_d at once, instead of
through the value of the energy missing many hours later (a battery emptied at 00 h at the
off-peak price is only "punished" at the next evening peak without it).
``ev_value_usd_per_kwh`` = w adds ``w · e_ev`` to Φ while the EV is home (its energy at the
start of the step, after an arrival; 0 while away): a kWh charged into a parked car pays
w · η_ev at once, and the car takes its value with it when it leaves.  Inside an episode the
shaping telescopes, ``Σ_t γ^t (γ Φ(s_{t+1}) − Φ(s_t)) = γ^T Φ(s_T) − Φ(s_0)``, so it changes no
policy's discounted return except through the energy left at the episode's end, which keeps
its value (the end of a training episode is a cut of a process that goes on).

Order: the shaping is added to the credited reward (``PotentialShaping(CreditWrapper(env))``,
as ``training_env`` builds it).
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, Step
from gridmarl.core.wrappers import EnvWrapper
from gridmarl.energy import market
from gridmarl.energy.community import Community

CREDITS: tuple[str, ...] = ("share", "marginal", "marginal_excess")


class CreditWrapper(EnvWrapper):
    """The per-agent reward of a ``train.credit`` rule (module docstring) over a
    ``CommunityEnv`` (or a wrapper of one).

    Args:
        env: the energy env; its ``Step.info`` carries the per-prosumer accounting.
        credit: one of ``CREDITS``; ``"share"`` returns the env's own reward.
    """

    def __init__(self, env: MultiAgentEnv, credit: str = "share") -> None:
        if credit not in CREDITS:
            raise ValueError(f"credit must be one of {', '.join(CREDITS)}, got {credit!r}")
        super().__init__(env)
        self.credit = credit
        self._peak_before: Tensor | None = None

    def step(self, action: Action) -> Step:
        """Step the env; the reward is the credit rule's (needs the running peak before)."""
        # the running peak import [B] [kW] before the step, for f(G − x_n)'s peak rise
        self._peak_before = self.env.device_state()["peak_kw"]
        return super().step(action)

    def reward(self, step: Step) -> Tensor:
        """``−(agent cost)`` ``[B, N]`` [$] under the credit rule."""
        if self.credit == "share":
            return step.reward
        info = step.info
        c = self.community
        dt = float(c.step_h)
        x, grid = info["net_kw"], info["grid_kw"]
        g_wo = grid[:, None] - x  # [B, N] the community net without prosumer n
        if self.credit == "marginal":
            # f(G) is the community cost the env accounted; only f(G − x_n) is new
            f_g = info["grid_cost_usd"] + info["over_usd"] + info["peak_usd"]  # [B]
            price = info["price_usd_per_kwh"][:, None]
            assert self._peak_before is not None
            f_wo = community_cost(c, g_wo, price, self._peak_before[:, None], dt)
            agent_cost = info["own_cost_usd"] + f_g[:, None] - f_wo
        else:  # marginal_excess
            over_kw = market.transformer_excess(grid, c.transformer_kw)
            caused = over_kw[:, None] - market.transformer_excess(g_wo, c.transformer_kw)
            shares = market.cost_shares(x)
            penalty = c.over_limit_usd_per_kwh * caused * dt + shares * info["peak_usd"][:, None]
            agent_cost = info["bill_usd"] + info["own_cost_usd"] + penalty
        return -agent_cost


def community_cost(c: Community, g: Tensor, price: Tensor, peak_kw: Tensor, dt: float) -> Tensor:
    """Grid bill + transformer cost + peak-charge rise this step [$] of community nets ``g``
    [kW] (here the counterfactual nets ``[B, N]``), at import price ``price`` [$/kWh] and
    running peak ``peak_kw`` [kW] before the step, both broadcast to ``g``; ``c`` gives the
    market parameters."""
    imp, exp = g.clamp_min(0.0), (-g).clamp_min(0.0)
    cost = market.grid_cost(imp, exp, price, c.feed_in_usd_per_kwh, dt)
    cost = cost + c.over_limit_usd_per_kwh * market.transformer_excess(g, c.transformer_kw) * dt
    if c.peak_usd_per_kw:
        cost = cost + c.peak_usd_per_kw * market.peak_increment(imp, peak_kw)[0]
    return cost


class PotentialShaping(EnvWrapper):
    """Adds ``γ Φ(s') − Φ(s)``, ``Φ = v · battery energy + w · parked-EV energy`` [$], to every
    per-agent reward (module docstring).

    Args:
        env: the energy env (or a wrapper of one); it provides ``stored_energy()``.
        battery_value_usd_per_kwh: v [$/kWh], >= 0.
        ev_value_usd_per_kwh: w [$/kWh], >= 0.
        gamma: γ, the learner's discount [-], in (0, 1].
    """

    def __init__(
        self,
        env: MultiAgentEnv,
        battery_value_usd_per_kwh: float = 0.0,
        ev_value_usd_per_kwh: float = 0.0,
        gamma: float = 0.99,
    ) -> None:
        if min(battery_value_usd_per_kwh, ev_value_usd_per_kwh) < 0 or not 0 < gamma <= 1:
            raise ValueError(
                "battery_value_usd_per_kwh and ev_value_usd_per_kwh must be >= 0 and "
                f"gamma in (0, 1], got {battery_value_usd_per_kwh}, "
                f"{ev_value_usd_per_kwh} and {gamma}"
            )
        super().__init__(env)
        self.battery_value = float(battery_value_usd_per_kwh)
        self.ev_value = float(ev_value_usd_per_kwh)
        self.gamma = float(gamma)

    def potential(self) -> Tensor:
        """Φ ``[B, N]`` [$] of the env's current state."""
        st = self.env.stored_energy()
        return self.battery_value * st["battery_kwh"] + self.ev_value * st["ev_kwh"]

    def step(self, action: Action) -> Step:
        """Step the env and add ``γ Φ(s') − Φ(s)`` to its per-agent reward."""
        phi = self.potential()
        step = self.env.step(action)
        phi_next = self.potential()
        return replace(step, reward=step.reward + self.gamma * phi_next - phi)


def training_env(
    env: MultiAgentEnv,
    credit: str = "share",
    battery_value_usd_per_kwh: float = 0.0,
    ev_value_usd_per_kwh: float = 0.0,
    gamma: float = 0.99,
) -> MultiAgentEnv:
    """``env`` wrapped for training: ``CreditWrapper`` unless ``credit`` is ``"share"`` (the
    env's own reward), then ``PotentialShaping`` unless both values are 0 (shaping off)."""
    if credit != "share":
        env = CreditWrapper(env, credit)
    if battery_value_usd_per_kwh or ev_value_usd_per_kwh:
        env = PotentialShaping(env, battery_value_usd_per_kwh, ev_value_usd_per_kwh, gamma)
    return env
