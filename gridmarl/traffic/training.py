"""``gridmarl train`` on ``domain: traffic`` (interface: ``gridmarl.core.training``).

Training env: ``TrafficEnv`` with ``num_envs`` worker processes (libsumo runs one simulation
per process, so training never holds a simulation in the driver's process), or as many Ray
actors with ``train.workers: {backend: ray}`` (docs/scaling.md); each reset draws the demand of
the seed the learner passes.

Validation: the deterministic policy runs one episode of held-out demand (seed
``stream_seed(scenario.seed, "validate", 0)``, never a seed ``simulate`` reports on) in a
simulation of the driver's process, next to MaxPressure on the same demand (once per run,
cached).  KPI: average travel time [s] over finished trips and including the vehicles still on
the road (``gridmarl.traffic.kpis``).  Score (picks ``best.pt``, higher is better):
``−avg_travel_time_all_s`` (unfinished trips cannot hide).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gridmarl.core.controller import Controller
from gridmarl.core.io import write_json
from gridmarl.core.seeding import stream_seed
from gridmarl.core.training import ValidationResult, cached_json, meta_score
from gridmarl.traffic.env import TrafficEnv


def train_env_factory(
    scenario: Any, device: torch.device, seed: int
) -> Callable[[int], TrafficEnv]:
    """``num_envs -> TrafficEnv`` with one worker process per env (``seed``: unused, the learner
    passes every reset seed)."""

    def make(num_envs: int) -> TrafficEnv:
        return TrafficEnv(
            scenario,
            num_envs=num_envs,
            device=device,
            in_process=False,
            workers=scenario.train.workers,
        )

    return make


def worker_processes(scenario: Any, num_envs: int) -> int:
    """One SUMO worker process per training env on this machine (none with Ray workers: Ray
    places its actors on the cluster's cores)."""
    w = getattr(getattr(scenario, "train", None), "workers", None)
    return 0 if w is not None and w.backend == "ray" else int(num_envs)


def _kpis(scenario: Any, ctrl: Controller, seed: int) -> dict[str, float]:
    """KPIs of one deterministic episode of ``ctrl`` on demand ``seed`` (in-process SUMO)."""
    env = TrafficEnv(scenario, num_envs=1, in_process=True)
    try:
        obs = env.reset(seed=seed)
        ctrl.reset(env)
        with torch.no_grad():
            for _ in range(env.episode_len):
                obs = env.step(ctrl.act(obs, deterministic=True)).obs
        k = env.episode_kpis()[0]
    finally:
        env.close()
    return {
        "avg_travel_time_s": float(k["avg_travel_time_s"]),
        "avg_travel_time_all_s": float(k["avg_travel_time_all_s"]),
        "throughput_veh": float(k["throughput_veh"]),
        "finished_share": float(k["finished_share"]),
    }


class TrafficValidator:
    """Average travel time of a policy on held-out demand vs MaxPressure (module docstring).

    Args:
        scenario: the traffic scenario.
        cache: JSON file holding MaxPressure's KPIs (reused when it exists).
    """

    label = "val travel time"
    return_unit = "veh·steps"
    score_name = "score"

    def __init__(self, scenario: Any, cache: Path) -> None:
        self.scenario = scenario
        self.seed = stream_seed(scenario.seed, "validate", 0)
        ref = cached_json(cache)
        if ref is None:
            from gridmarl.traffic.rules import MaxPressure

            k = _kpis(scenario, MaxPressure(), self.seed)
            ref = {"validation_seed": self.seed, **{f"max_pressure_{n}": v for n, v in k.items()}}
            write_json(cache, ref)
        self.ref: dict[str, Any] = ref

    def evaluate(self, controller: Controller) -> ValidationResult:
        """Average travel time and throughput of ``controller`` on the validation demand."""
        k = _kpis(self.scenario, controller, self.seed)
        mp = self.ref["max_pressure_avg_travel_time_s"]
        mp_all = self.ref["max_pressure_avg_travel_time_all_s"]
        ratio = k["avg_travel_time_s"] / mp if mp > 0 else math.nan
        # the score and ``best.pt`` use every vehicle's time: a jammed policy finishes few,
        # short trips, and its finished-trip ratio alone reads better than MaxPressure's
        ratio_all = k["avg_travel_time_all_s"] / mp_all if mp_all > 0 else math.nan
        score = -k["avg_travel_time_all_s"]
        extra = {
            "travel_time_vs_max_pressure": ratio,
            "travel_time_all_vs_max_pressure": ratio_all,
        }
        return ValidationResult(
            row={**k, **extra},
            scalars={**k, **extra},
            meta={
                "validation_avg_travel_time_s": k["avg_travel_time_s"],
                "validation_avg_travel_time_all_s": k["avg_travel_time_all_s"],
                "validation_score": score,
            },
            score=score,
            display=(
                f"{k['avg_travel_time_s']:.1f} s ({ratio:.3f} × MP; all vehicles "
                f"{ratio_all:.3f} ×; {k['finished_share']:.0%} finished)"
            ),
        )

    def describe(self) -> str:
        """MaxPressure on the validation demand."""
        r = self.ref
        return (
            f"validation demand (seed {r['validation_seed']}): max_pressure avg travel time "
            f"{r['max_pressure_avg_travel_time_s']:.1f} s (all vehicles "
            f"{r['max_pressure_avg_travel_time_all_s']:.1f} s), throughput "
            f"{r['max_pressure_throughput_veh']:.0f} veh"
        )

    def score_from_meta(self, meta: dict[str, Any]) -> float:
        """``validation_score`` of a sidecar (−inf when absent)."""
        return meta_score(meta, "validation_score")


def make_validator(scenario: Any, run_dir: Path, say: Any = print) -> TrafficValidator:
    """The run's validator (MaxPressure's KPIs cached in ``validation_reference.json``)."""
    return TrafficValidator(scenario, run_dir / "validation_reference.json")


def _rule(name: str) -> Callable[[Any], Controller]:
    def make(scenario: Any) -> Controller:
        from gridmarl.traffic.rules import FixedTime, MaxPressure

        return MaxPressure() if name == "max_pressure" else FixedTime()

    return make


#: rule baselines ``--warm-start`` may clone
TEACHERS: dict[str, Callable[[Any], Controller]] = {
    "max_pressure": _rule("max_pressure"),
    "fixed_time": _rule("fixed_time"),
}
