"""``gridmarl train`` on ``domain: routing`` (interface: ``gridmarl.core.training``).

Training env: the scenario's ``RoutingEnv`` (its rate profile, buffer and ``env`` options) with
``num_envs`` parallel episodes on the training device; every episode draws fresh arrivals from
the reset seed the learner passes.

Validation: the deterministic policy runs ``evaluation.episodes`` episodes of held-out traffic
(one batched env, reset seed ``stream_seed(scenario.seed, "validate", 0)``, so never the traffic
seeds ``simulate`` reports on) next to ``shortest_path_distance`` and ``shortest_path_hops`` on
the same packets.  KPI: average delay of the delivered packets [steps] (mean over the episodes)
and throughput [pkt].  Score (picks ``best.pt``, higher is better):
``−avg_delay × max(1, throughput_SP / throughput)``, i.e. a policy that delivers fewer packets
than shortest path by distance has its delay inflated by the deficit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gridmarl.core.controller import Controller
from gridmarl.core.io import write_json
from gridmarl.core.seeding import stream_seed
from gridmarl.core.training import ValidationResult, cached_json, meta_score
from gridmarl.routing.env import RoutingEnv


def train_env_factory(
    scenario: Any, device: torch.device, seed: int
) -> Callable[[int], RoutingEnv]:
    """``num_envs -> RoutingEnv`` of the scenario on ``device`` (first reset seed ``seed``)."""
    from gridmarl.routing.simulate import load_topology, make_env

    topo = load_topology(scenario)

    def make(num_envs: int) -> RoutingEnv:
        return make_env(scenario, topo, num_envs=num_envs, seed=seed, device=device)

    return make


def _kpis(env: RoutingEnv, ctrl: Controller, seed: int) -> dict[str, float]:
    """Mean avg delay [steps], throughput [pkt] and in-network packets over the env's batch."""
    obs = env.reset(seed=seed)
    ctrl.reset(env)
    with torch.no_grad():
        for _ in range(env.episode_len):
            obs = env.step(ctrl.act(obs, deterministic=True)).obs
    k = {name: v.detach().double().cpu().numpy() for name, v in env.kpis().items()}
    return {
        "avg_delay_steps": float(np.mean(k["avg_delay_steps"])),
        "throughput_pkt": float(np.mean(k["delivered_pkt"])),
        "in_network_pkt": float(np.mean(k["in_network_pkt"])),
    }


class RoutingValidator:
    """Average delay of a policy on held-out traffic vs shortest path (module docstring).

    Args:
        scenario: the routing scenario.
        cache: JSON file holding the shortest-path references (reused when it exists).
    """

    label = "val delay"
    return_unit = "pkt·steps"
    score_name = "score"

    def __init__(self, scenario: Any, cache: Path) -> None:
        from gridmarl.routing.simulate import load_topology

        self.scenario = scenario
        self.topology = load_topology(scenario)
        self.seed = stream_seed(scenario.seed, "validate", 0)
        ref = cached_json(cache)
        if ref is None:
            from gridmarl.routing.rules import shortest_path_controller

            ref = {"validation_seed": self.seed, "episodes": scenario.evaluation.episodes}
            for weight in ("distance", "hops"):
                k = _kpis(self._env(), shortest_path_controller(self.topology, weight), self.seed)
                ref[f"shortest_path_{weight}_avg_delay_steps"] = k["avg_delay_steps"]
                ref[f"shortest_path_{weight}_throughput_pkt"] = k["throughput_pkt"]
            write_json(cache, ref)
        self.ref: dict[str, Any] = ref

    def _env(self) -> RoutingEnv:
        from gridmarl.routing.simulate import make_env

        return make_env(
            self.scenario, self.topology, num_envs=self.scenario.evaluation.episodes, seed=self.seed
        )

    def evaluate(self, controller: Controller) -> ValidationResult:
        """Average delay and throughput of ``controller`` on the validation traffic."""
        k = _kpis(self._env(), controller, self.seed)
        sp_d = self.ref["shortest_path_distance_avg_delay_steps"]
        sp_t = self.ref["shortest_path_distance_throughput_pkt"]
        ratio = k["avg_delay_steps"] / sp_d if sp_d > 0 else math.nan
        score = -k["avg_delay_steps"] * max(1.0, sp_t / max(k["throughput_pkt"], 1e-9))
        return ValidationResult(
            row={**k, "delay_vs_shortest_path_distance": ratio},
            scalars={**k, "delay_vs_shortest_path_distance": ratio},
            meta={
                "validation_avg_delay_steps": k["avg_delay_steps"],
                "validation_throughput_pkt": k["throughput_pkt"],
                "validation_score": score,
            },
            score=score,
            display=f"{k['avg_delay_steps']:.2f} steps ({ratio:.3f} × SP)",
        )

    def describe(self) -> str:
        """The shortest-path references on the validation traffic."""
        r = self.ref
        return (
            f"validation traffic (seed {r['validation_seed']}, {r['episodes']} episodes): "
            f"shortest_path_distance {r['shortest_path_distance_avg_delay_steps']:.2f} steps, "
            f"{r['shortest_path_distance_throughput_pkt']:.1f} pkt; shortest_path_hops "
            f"{r['shortest_path_hops_avg_delay_steps']:.2f} steps, "
            f"{r['shortest_path_hops_throughput_pkt']:.1f} pkt"
        )

    def score_from_meta(self, meta: dict[str, Any]) -> float:
        """``validation_score`` of a sidecar (−inf when absent)."""
        return meta_score(meta, "validation_score")


def make_validator(scenario: Any, run_dir: Path, say: Any = print) -> RoutingValidator:
    """The run's validator (references cached in ``validation_reference.json``)."""
    return RoutingValidator(scenario, run_dir / "validation_reference.json")


def _shortest(weight: str) -> Callable[[Any], Controller]:
    def make(scenario: Any) -> Controller:
        from gridmarl.routing.rules import shortest_path_controller
        from gridmarl.routing.simulate import load_topology

        return shortest_path_controller(load_topology(scenario), weight)  # type: ignore[arg-type]

    return make


def _mcf(scenario: Any) -> Controller:
    """The multicommodity-flow split tables (one per rate segment, the ``simulate`` default)."""
    from gridmarl.config import ControllerEntry
    from gridmarl.routing.simulate import load_topology, mcf_controller

    ctrl, _, _ = mcf_controller(ControllerEntry(name="mcf"), load_topology(scenario), scenario)
    return ctrl


#: baselines ``--warm-start`` may clone (``mcf`` samples its split shares: the clone learns the
#: shares of the segment it sees, pooled over the segments since the actor does not see time)
TEACHERS: dict[str, Callable[[Any], Controller]] = {
    "shortest_path_distance": _shortest("distance"),
    "shortest_path_hops": _shortest("hops"),
    "mcf": _mcf,
}
