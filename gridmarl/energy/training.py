"""``gridmarl train`` on ``domain: energy``: the training env over the training window and the
validation of a policy on the validation window (cost [$], share of optimal savings vs the
perfect-foresight MILP).  The interface is described in ``gridmarl.core.training``."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gridmarl.config import scenario_hash
from gridmarl.core.controller import ScheduleController
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.io import write_json, write_text
from gridmarl.core.seeding import stream_seed
from gridmarl.core.training import ValidationResult, meta_score

MILP_TIME_LIMIT_S = 300.0  # [s] least time for the once-per-run validation MILP


def _forecast_steps(scenario: Any) -> int:
    return max(1, round(scenario.community.forecast.horizon_h / scenario.window.step_h))


def energy_env_factory(scenario: Any, device: torch.device, seed: int):
    """``num_envs -> CommunityEnv`` over the training window, random episode starts, wrapped
    in the ``train`` block's credit and shaping (``gridmarl.energy.shaping.training_env``)."""
    from gridmarl.controllers.matppo import MATPPOConfig
    from gridmarl.energy.data import build_community
    from gridmarl.energy.env import CommunityEnv
    from gridmarl.energy.shaping import training_env
    from gridmarl.train import train_options

    community = build_community(scenario, "train")
    fc = scenario.community.forecast
    t = scenario.train
    # the shaping's γ is the learner's discount (shaping.py: potential-based shaping): the
    # scenario's default learner's options, read without building its config
    gamma = float(train_options(scenario).get("gamma", MATPPOConfig.gamma))
    steps = round(scenario.train.episode_days * 24 / scenario.window.step_h)
    h = _forecast_steps(scenario)
    max_steps = community.steps - h - 1
    if steps > max_steps:
        raise ScenarioError(
            f"train.episode_days: {scenario.train.episode_days} days do not fit "
            f"the training window ({scenario.window.train.days} days)"
        )

    def make(num_envs: int) -> MultiAgentEnv:
        env = CommunityEnv(
            community,
            num_envs=num_envs,
            device=device,
            dtype=torch.float32,
            episode_steps=steps,
            forecast_steps=h,
            forecast_kind=fc.kind,
            noise_std=fc.noise_std,
            random_start=True,
            seed=seed,
            record=False,
        )
        # training-only credit and shaping over the env's cost accounting (shaping.py)
        return training_env(
            env, t.credit, t.battery_value_usd_per_kwh, t.ev_value_usd_per_kwh, gamma
        )

    return make


class EnergyValidator:
    """Cost of a policy on the validation window, against no_control, rule_based and the MILP.

    Args:
        scenario: the energy scenario.
        cache: JSON file holding the reference costs (reused when it exists).
        say: prints a line for a person.
    """

    def __init__(
        self, scenario: Any, cache: Path, say=print, shared_cache: Path | None = None
    ) -> None:
        from gridmarl.energy.data import build_community

        self.scenario = scenario
        self.community = build_community(scenario, "validate")
        if not cache.exists() and shared_cache is not None and shared_cache.exists():
            write_text(cache, shared_cache.read_text())
        self.ref = self._references(cache, say)
        if shared_cache is not None and math.isfinite(self.ref["milp_usd"]):
            write_json(shared_cache, self.ref)

    def _env(self):
        from gridmarl.energy.env import CommunityEnv

        fc = self.scenario.community.forecast
        steps = round(self.scenario.window.validate_.days * 24 / self.scenario.window.step_h)
        return CommunityEnv(
            self.community,
            num_envs=1,
            device="cpu",
            dtype=torch.float64,
            episode_steps=steps,
            forecast_steps=_forecast_steps(self.scenario),
            forecast_kind=fc.kind,
            noise_std=fc.noise_std,
            random_start=False,
            seed=stream_seed(self.scenario.seed, "validate", 0),
            record=False,
        )

    @torch.no_grad()
    def cost(self, controller: Any) -> float:
        """Community cost [$] of ``controller`` (deterministic) over the validation window."""
        env = self._env()
        obs = env.reset(seed=stream_seed(self.scenario.seed, "validate", 0))
        controller.reset(env)
        total = 0.0
        for _ in range(env.episode_len):
            step = env.step(controller.act(obs, deterministic=True))
            total += float(step.info["cost_usd"].sum())
            obs = step.obs
        return total

    def _references(self, cache: Path, say) -> dict[str, float]:
        if cache.exists():
            return json.loads(cache.read_text())
        from gridmarl.energy.rules import NoControl, RuleBased

        ref: dict[str, float] = {
            "no_control_usd": self.cost(NoControl()),
            "rule_based_usd": self.cost(RuleBased()),
        }
        try:
            from baselines_opt.community import solve_community_milp

            entry = next((c for c in self.scenario.controllers if c.name == "milp"), None)
            say("[dim]solving the MILP on the validation window (once per run) …[/dim]")
            t0 = time.perf_counter()
            res = solve_community_milp(
                self.community,
                start=0,
                steps=self._env().episode_len,
                time_limit_s=max(
                    entry.time_limit_s if entry and entry.time_limit_s else 0.0, MILP_TIME_LIMIT_S
                ),
                mip_gap=(entry.mip_gap if entry and entry.mip_gap is not None else 1e-3),
            )
            ref["milp_usd"] = self.cost(res.to_controller())
            ref["milp_status"] = res.status  # type: ignore[assignment]
            ref["milp_gap"] = res.gap
            ref["milp_wall_s"] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - the run continues with savings in $ only
            say(
                f"[yellow]MILP on the validation window failed ({type(exc).__name__}: {exc}); "
                "reporting savings vs no_control only[/yellow]"
            )
            ref["milp_usd"] = math.nan
        write_json(cache, ref)
        return ref

    label = "val share"
    return_unit = "$"
    score_name = "share"

    def evaluate(self, controller: Any) -> ValidationResult:
        """Cost [$] and share of optimal savings of ``controller`` on the validation window."""
        cost = self.cost(controller)
        share = self.share(cost)
        scalars = {"cost_usd": cost}
        if math.isfinite(share):
            scalars["share_of_optimal_savings"] = share
        return ValidationResult(
            row={
                "cost_usd": cost,
                "savings_vs_no_control_usd": self.ref["no_control_usd"] - cost,
                "share_of_optimal_savings": share,
            },
            scalars=scalars,
            meta={
                "validation_cost_usd": cost,
                "validation_share": share if math.isfinite(share) else None,
            },
            score=share if math.isfinite(share) else -cost,
            display=_pct(share),
        )

    def describe(self) -> str:
        """The reference costs on the validation window."""
        ref = self.ref
        return (
            f"validation window: no_control {ref['no_control_usd']:.2f} $, rule_based "
            f"{ref['rule_based_usd']:.2f} $ (share "
            f"{_pct(self.share(ref['rule_based_usd']))}), MILP "
            f"{ref['milp_usd']:.2f} $"
        )

    def score_from_meta(self, meta: dict[str, Any]) -> float:
        """``validation_share`` of a sidecar (−inf when absent)."""
        return meta_score(meta, "validation_share")

    def share(self, cost: float) -> float:
        """Share of optimal savings captured [-] (NaN without a MILP reference)."""
        den = self.ref["no_control_usd"] - self.ref["milp_usd"]
        if not math.isfinite(den) or abs(den) < 1e-9:
            return math.nan
        return (self.ref["no_control_usd"] - cost) / den


def validation_hash(scenario: Any) -> str:
    """SHA-256 of what the validation references depend on: the scenario without
    ``controllers``, ``train`` and the training and evaluation windows."""
    return scenario_hash(
        scenario,
        exclude=(
            "controllers",
            "train",
            "window.train",
            "window.evaluate",
            "window.dev",
            "window.test",
        ),
    )


def make_validator(scenario: Any, run_dir: Path, say: Any = print) -> EnergyValidator:
    """The validator of a run; the references depend only on the validation window and the
    community, so runs that differ elsewhere (training window, hyper-parameters) share them
    (``.validation_reference_<validation hash>.json`` beside the run folders)."""
    shared = run_dir.parent / f".validation_reference_{validation_hash(scenario)[:16]}.json"
    return EnergyValidator(
        scenario, run_dir / "validation_reference.json", say=say, shared_cache=shared
    )


def narrowed_band(community: Any, margin_c: float) -> Any:
    """``community`` with every comfort band narrowed by ``margin_c`` on both sides [C], at most
    to its midpoint (the community itself when ``margin_c`` is 0)."""
    if margin_c == 0.0:
        return community
    lo, hi = community.theta_lo_c, community.theta_hi_c
    half = np.maximum(hi - lo, 0.0) / 2.0
    m = np.minimum(margin_c, half)
    return replace(community, theta_lo_c=lo + m, theta_hi_c=hi - m)


class MilpTeacher(ScheduleController):
    """The perfect-foresight MILP's schedule of each training episode, replayed open loop.

    A *privileged* teacher for the behaviour-cloning warm start (``--warm-start milp``): at
    ``reset`` it solves the community MILP (``baselines_opt.community``) over every env's
    episode of the training window (the env's own random start, ``env.episode_len`` steps), then
    replays those schedules (one per env).  It sees the whole episode and every prosumer; the
    student it teaches still acts on its own local observation.  Only the training window is
    solved, never the validation or evaluation weeks.

    Args:
        episodes: training episodes to solve (the warm start runs this many envs) [-].
        time_limit_s: HiGHS limit per episode [s]; a demonstration need not be proven optimal.
        mip_gap: relative gap to stop at [-].
        say: prints one line per solved episode.
        comfort_margin_c: the MILP plans with every comfort band ``[θ_lo, θ_hi]`` narrowed to
            ``[θ_lo + m, θ_hi − m]`` [C] (at most to its midpoint).  The optimum rides the band's
            edge, so a clone that copies its heating energy a few hours late leaves the band;
            a margin gives the clone room.  The demonstration then costs a little more than the
            optimum.
    """

    def __init__(
        self,
        episodes: int = 16,
        time_limit_s: float = 20.0,
        mip_gap: float = 0.01,
        say=None,
        comfort_margin_c: float = 0.0,
    ) -> None:
        super().__init__("milp", torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, 0, 0))
        if comfort_margin_c < 0:
            raise ValueError(f"comfort_margin_c = {comfort_margin_c}; allowed: ≥ 0 [C]")
        self.episodes = int(episodes)
        self.time_limit_s = float(time_limit_s)
        self.mip_gap = float(mip_gap)
        self.say = say
        self.comfort_margin_c = float(comfort_margin_c)
        self.gaps: list[float] = []

    def reset(self, env: Any) -> None:
        """Solve the MILP of every env's current episode (after ``env.reset``)."""
        from baselines_opt.community import solve_community_milp

        community = narrowed_band(env.community, self.comfort_margin_c)
        disc, cont = [], []
        for b, start in enumerate(env.start.tolist()):
            t0 = time.perf_counter()
            res = solve_community_milp(
                community,
                start=int(start),
                steps=env.episode_len,
                time_limit_s=self.time_limit_s,
                mip_gap=self.mip_gap,
                threads=1,
            )
            self.gaps.append(res.gap)
            if self.say is not None:
                self.say(
                    f"MILP demonstration {b + 1}/{env.num_envs}: start step {start}, "
                    f"{res.objective_usd:.1f} $, gap {100 * res.gap:.2f} %, "
                    f"{time.perf_counter() - t0:.1f} s"
                )
            disc.append(torch.from_numpy(res.discrete.copy()))
            cont.append(torch.from_numpy(res.continuous.copy()))
        # one schedule per env, replayed by ScheduleController.act
        self.discrete = torch.stack(disc, 1).long()  # [T, B, N]
        self.continuous = torch.stack(cont, 1)  # [T, B, N, 2]
        self._t = 0

    def act(self, obs: Any, deterministic: bool = True) -> Any:
        """The MILP's action of every env at the current step."""
        if self.discrete.numel() == 0:
            raise RuntimeError("MilpTeacher: call reset(env) after env.reset() first")
        return super().act(obs, deterministic)


def _teacher(name: str):
    def make(scenario: Any) -> Any:
        from gridmarl.energy import rules

        if name == "milp":
            t = scenario.train
            return MilpTeacher(
                t.demo_episodes,
                t.demo_time_limit_s,
                say=print,
                comfort_margin_c=t.demo_comfort_margin_c,
            )
        return {"rule_based": rules.RuleBased, "no_control": rules.NoControl}[name]()

    return make


#: what ``--warm-start`` may clone: the rule baselines (local observations, like the student)
#: and the perfect-foresight MILP of the training episodes (privileged; see ``MilpTeacher``)
TEACHERS = {name: _teacher(name) for name in ("rule_based", "no_control", "milp")}
train_env_factory = energy_env_factory


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if math.isfinite(x) else "—"
