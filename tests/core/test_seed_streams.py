"""Seed streams (docs/protocol.md): no training or warm-start episode can draw a validation,
test or evaluation seed, in any domain."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from rich.console import Console

from gridmarl.config import ScenarioError, load_scenario, validate_scenario
from gridmarl.core.seeding import DERIVED_MIN, ROLES, role_of, stream_seed, stream_seeds, sub_seed

ROOT = Path(__file__).resolve().parents[2]
QUIET = Console(quiet=True)
MAX_SCENARIO_SEED = 2**28  # ScenarioBase.seed < this
TINY_OPTS = {
    "rollout_steps": 6,
    "epochs": 1,
    "minibatches": 1,
    "feat_dim": 8,
    "actor_hidden": 8,
    "critic_dim": 8,
    "critic_heads": 1,
    "critic_layers": 1,
    "value_target": "team",
}


def test_roles_are_residue_classes_above_every_operator_seed():
    for base, role, index in itertools.product(
        [0, 1, 7, 8, 12345, MAX_SCENARIO_SEED - 1], ROLES, range(300)
    ):
        s = stream_seed(base, role, index)
        assert DERIVED_MIN <= s < 2 * DERIVED_MIN
        assert role_of(s) == role
        assert role_of(sub_seed(s, index + 1)) == role
    # an operator's seed (simulate evaluates seed, seed + 1, ...) is never a derived one
    assert role_of(MAX_SCENARIO_SEED + 1000) is None
    # extra parallel episodes of an operator seed stay between the two ranges
    for seed, b in itertools.product([0, 3, MAX_SCENARIO_SEED - 1], range(1, 50)):
        assert MAX_SCENARIO_SEED + 1000 < DERIVED_MIN // 2 <= sub_seed(seed, b) < DERIVED_MIN


def test_streams_are_reproducible_and_spread():
    assert stream_seeds(7, "test", 5) == stream_seeds(7, "test", 5)
    assert len(set(stream_seeds(7, "train", 2000))) == 2000
    assert stream_seeds(7, "test", 3) != stream_seeds(8, "test", 3)
    with pytest.raises(ValueError, match="unknown seed role"):
        stream_seed(0, "evaluate", 0)


def test_scenario_seed_is_bounded():
    with pytest.raises(ScenarioError, match="seed"):
        load_scenario(ROOT / "scenarios" / "routing_ibm.yaml", [f"seed={2**28}"])


class _Recorder:
    """Wraps an env class's ``reset`` / ``reset_copies`` and records every seed it is given
    (with the per-env seeds a batched reset expands it to, where the domain says how)."""

    def __init__(self, monkeypatch, cls, expand=None) -> None:
        self.seeds: list[int] = []
        rec = self
        reset, copies = cls.reset, getattr(cls, "reset_copies", None)

        def _add(env, seed, n):
            if seed is None:
                rec.seeds.append(-1)  # an unseeded reset is a failure: record it
                return
            rec.seeds.append(int(seed))
            if expand is not None:
                rec.seeds += [expand(int(seed), b) for b in range(1, n)]

        def reset_rec(env, seed=None):
            _add(env, seed, env.num_envs)
            return reset(env, seed=seed)

        monkeypatch.setattr(cls, "reset", reset_rec)
        if copies is not None and "reset_copies" in cls.__dict__:

            def copies_rec(env, seed, c):
                _add(env, seed, env.num_envs // c)
                return copies(env, seed, c)

            monkeypatch.setattr(cls, "reset_copies", copies_rec)


def _check(seeds: list[int], scenario_seed: int, evaluate: int) -> None:
    assert seeds, "no reset was recorded"
    forbidden = {scenario_seed + i for i in range(evaluate)}
    forbidden |= set(stream_seeds(scenario_seed, "test", 200))
    roles = {role_of(s) for s in seeds}
    assert roles <= {"train", "warm_start", "validate"}, roles
    assert "train" in roles and "warm_start" in roles
    assert not forbidden & set(seeds)


def test_energy_training_draws_no_evaluation_seed(monkeypatch, tmp_path):
    from gridmarl.energy.env import CommunityEnv
    from gridmarl.train import train

    rec = _Recorder(monkeypatch, CommunityEnv)
    sc = load_scenario(
        ROOT / "scenarios" / "community_50.yaml",
        [
            "community.prosumers=3",
            "window.train.days=3",
            "window.validate.days=1",
            "train.episode_days=1",
            "train.num_envs=2",
            "train.options={rollout_steps: 6, epochs: 1, minibatches: 1, lstm_hidden: 4,"
            " feat_dim: 8, actor_hidden: 8, critic_dim: 8, critic_heads: 1, critic_layers: 1}",
        ],
    )
    torch.set_num_threads(1)
    train(
        sc,
        device="cpu",
        steps=4 * 6 * 2 * 3,  # 4 updates: more resets than one episode per update
        out=tmp_path,
        validate_every=2,
        console=QUIET,
        warm_start="rule_based",
        warm_start_epochs=1,
    )
    _check(rec.seeds, sc.seed, 1)


def test_routing_training_draws_no_evaluation_seed(monkeypatch, tmp_path):
    from gridmarl.routing.env import RoutingEnv
    from gridmarl.train import train

    rec = _Recorder(monkeypatch, RoutingEnv)
    sc = validate_scenario(
        {
            "name": "tiny_routing",
            "domain": "routing",
            "seed": 0,
            "network": {
                "generator": {"kind": "waxman", "routers": 6, "seed": 1, "side_km": 1500},
                "km_per_step": 500,
            },
            "traffic": {"profile": [{"steps": 8, "rate_pkt_per_step": 1.0}]},
            "evaluation": {"episodes": 3},
            "train": {"steps": 1000, "num_envs": 2, "options": TINY_OPTS},
            "controllers": [{"name": "shortest_path_distance"}],
        }
    )
    torch.set_num_threads(1)
    train(
        sc,
        device="cpu",
        steps=4 * 6 * 2 * 6,
        out=tmp_path,
        validate_every=2,
        console=QUIET,
        warm_start="shortest_path_distance",
        warm_start_epochs=1,
    )
    _check(rec.seeds, sc.seed, sc.evaluation.episodes)


@pytest.mark.slow
def test_traffic_training_draws_no_evaluation_seed(monkeypatch, tmp_path):
    from gridmarl.traffic.engines import check_engine

    try:
        check_engine("sumo")
    except ScenarioError as exc:
        pytest.skip(f"SUMO is not usable here: {exc}")
    from gridmarl.traffic.env import TrafficEnv
    from gridmarl.traffic.sim import demand_seed
    from gridmarl.train import train

    rec = _Recorder(monkeypatch, TrafficEnv, expand=demand_seed)
    sc = validate_scenario(
        {
            "name": "tiny_traffic",
            "domain": "traffic",
            "seed": 0,
            "grid": {"rows": 2, "cols": 2, "lanes": 2, "road_length_m": 100},
            "demand": {"profile": [{"duration_s": 120, "rate_veh_per_s": 0.5}], "seeds": 3},
            "traffic": {"horizon_s": 120, "decision_s": 10},
            "train": {"steps": 48, "num_envs": 2, "options": TINY_OPTS},
            "controllers": [{"name": "max_pressure"}],
        }
    )
    train(
        sc,
        device="cpu",
        steps=2 * 6 * 2 * 4,
        out=tmp_path,
        validate_every=2,
        console=QUIET,
        warm_start="max_pressure",
        warm_start_epochs=1,
    )
    _check(rec.seeds, sc.seed, sc.demand.seeds)
