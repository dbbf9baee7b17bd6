"""The congestion signal is recorded in checkpoints' feature names: a policy trained without it
is refused on a scenario that has it, and vice versa, with a message naming the features."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import baselines_opt.community as milp
from gridmarl.config import ScenarioError, load_scenario
from gridmarl.controllers.matppo import MATPPO, MATPPOConfig
from gridmarl.energy.env import CommunityEnv
from gridmarl.energy.simulate import policy_shape, simulate
from tests.energy.conftest import make_community

ROOT = Path(__file__).resolve().parents[2]
SMALL = MATPPOConfig(
    num_envs=2, rollout_steps=4, epochs=1, minibatches=1, lstm_hidden=8, feat_dim=16
)


def test_scenario_key_sets_the_features():
    base = load_scenario(ROOT / "scenarios" / "community_50.yaml")
    for signal, extra in (("headroom", 2), ("envelope", 2), ("price", 1), ("none", 0)):
        sc = load_scenario(
            ROOT / "scenarios" / "community_50.yaml", [f"community.congestion_signal={signal}"]
        )
        assert policy_shape(sc).local_dim == policy_shape(base).local_dim + extra
    off = load_scenario(
        ROOT / "scenarios" / "community_50.yaml", ["community.congestion_signal=none"]
    )
    assert off.community.congestion_signal is None
    assert "congestion_signal" not in off.model_dump()["community"]  # hashes unchanged
    with pytest.raises(ScenarioError, match="congestion_signal"):
        load_scenario(
            ROOT / "scenarios" / "community_50.yaml", ["community.congestion_signal=loud"]
        )


def test_shipped_policy_is_refused_with_the_signal(monkeypatch: pytest.MonkeyPatch):
    def no_solve(*args, **kwargs):
        raise AssertionError("the MILP ran before the checkpoint was checked")

    monkeypatch.setattr(milp, "solve_community_milp", no_solve)
    sc = load_scenario(
        ROOT / "scenarios" / "community_50.yaml",
        [
            "community.prosumers=6",
            "window.evaluate.days=1",
            "community.congestion_signal=headroom",
            "controllers=[{name: no_control}, "
            "{name: matppo, checkpoint: data/checkpoints/community_50_matppo.pt}]",
        ],
    )
    with pytest.raises(
        ScenarioError, match=r"the env adds \['headroom_import', 'headroom_export'\]"
    ):
        simulate(sc)


def test_policy_trained_with_the_signal_is_refused_without_it(tmp_path):
    c = make_community(n=4, days=2)
    price = CommunityEnv(dataclasses.replace(c, congestion_signal="price"), episode_steps=24).spec
    plain = CommunityEnv(c, episode_steps=24).spec
    loading = CommunityEnv(dataclasses.replace(c, broadcast_loading=True), episode_steps=24).spec
    path = tmp_path / "price.pt"
    MATPPO(price, SMALL, seed=0).save(path)
    assert MATPPO.from_checkpoint(path, price).spec.local_features[-1] == "congestion_price"
    with pytest.raises(ScenarioError, match=r"lacks \['congestion_price'\]"):
        MATPPO.from_checkpoint(path, plain)
    # the same number of features, another meaning
    with pytest.raises(
        ScenarioError, match=r"adds \['grid_loading_prev'\] and lacks \['congestion_price'\]"
    ):
        MATPPO.from_checkpoint(path, loading)


@pytest.mark.parametrize(
    "path",
    [
        "data/checkpoints/community_50_matppo_headroom.pt",
        "data/checkpoints/seeds/community_50_matppo_headroom_s7.pt",
        "data/checkpoints/seeds/community_50_matppo_headroom_s9.pt",
    ],
)
def test_shipped_headroom_policies_run_with_the_signal_only(path: str):
    """The policies fine-tuned with the headroom signal (docs/domains/energy.md) act on a
    community of another size with the signal, and are refused without it."""
    from gridmarl.controllers.registry import load_policy

    c = make_community(n=7, days=2)
    env = CommunityEnv(dataclasses.replace(c, congestion_signal="headroom"), episode_steps=12)
    policy = load_policy("matppo", ROOT / path, env)
    act = policy.act(env.reset(seed=0), deterministic=True)
    assert act.discrete.shape == (1, 7) and act.continuous.shape == (1, 7, 2)
    assert torch.all(act.continuous.abs() <= 1)
    with pytest.raises(ScenarioError, match=r"lacks \['headroom_import', 'headroom_export'\]"):
        load_policy("matppo", ROOT / path, CommunityEnv(c, episode_steps=12))
