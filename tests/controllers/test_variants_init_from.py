"""Training on several community sizes (``train.variants``) and starting from another run's
weights with new observation features (``--init-from``)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

from gridmarl.config import ScenarioError, load_scenario, variant_scenarios
from gridmarl.controllers.matppo import MATPPO, MATPPOConfig
from gridmarl.core.learner import run
from gridmarl.energy.env import CommunityEnv
from tests.energy.conftest import make_community

from .test_train_driver import TINY

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "community_50.yaml"
SMALL = MATPPOConfig(
    num_envs=2, rollout_steps=4, epochs=1, minibatches=1, lstm_hidden=8, feat_dim=16
)


def test_variant_scenarios_apply_their_keys_and_keep_the_rest():
    sc = load_scenario(SCENARIO, ["train.variants=[{community.prosumers: 80}]"])
    [(label, v)] = variant_scenarios(sc)
    assert label == "community.prosumers=80"
    assert v.community.prosumers == 80 and sc.community.prosumers == 50
    assert v.community.market == sc.community.market and v.window == sc.window
    assert v.train.variants is None
    # without variants the dump (and so every hash) is what it was
    assert "variants" not in load_scenario(SCENARIO).model_dump()["train"]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("[{train.steps: 5}]", "cannot vary between training envs"),
        ("[{window.train.days: 5}]", "cannot vary between training envs"),
        ("[{}]", "is empty"),
    ],
)
def test_variants_that_change_the_run_are_refused(value: str, match: str):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(SCENARIO, [f"train.variants={value}"])


def test_a_variant_with_bad_values_names_itself():
    sc = load_scenario(SCENARIO, ["train.variants=[{community.prosumers: -4}]"])
    with pytest.raises(ScenarioError, match=r"train.variants\[0\]: community.prosumers=-4"):
        variant_scenarios(sc)


class _Counting:
    """Wraps an env and counts the steps taken on it."""

    def __init__(self, env):
        self.env, self.steps, self.closed = env, 0, False

    def __getattr__(self, name):
        return getattr(self.env, name)

    def step(self, action):
        self.steps += 1
        return self.env.step(action)

    def close(self):
        self.closed = True


def test_run_alternates_rollouts_over_envs_of_other_sizes():
    small, large = make_community(n=3, days=2), make_community(n=5, days=2)
    envs = [_Counting(CommunityEnv(c, num_envs=2, episode_steps=8, seed=0)) for c in (small, large)]
    learner = MATPPO(envs[0].spec, SMALL, seed=0)
    per_round = 4 * 2 * 3 + 4 * 2 * 5  # rollout_steps × num_envs × agents, both envs
    run(learner, lambda n: envs[0], 2 * per_round, more_envs=[lambda n: envs[1]])
    assert learner.progress().updates == 4
    assert learner.progress().agent_steps == 2 * per_round
    assert [e.steps for e in envs] == [8, 8]  # two rollouts of 4 steps on each
    assert all(e.closed for e in envs)


def test_learners_without_mixing_refuse_variants(tmp_path):
    from gridmarl.train import train

    sc = load_scenario(SCENARIO, [*TINY, "train.variants=[{community.prosumers: 4}]"])
    with pytest.raises(ScenarioError, match="cannot train on several envs"):
        train(
            sc, controller="hmf", device="cpu", steps=1, out=tmp_path, console=Console(quiet=True)
        )


def test_init_from_maps_features_by_name_and_starts_as_the_source(tmp_path):
    c = make_community(n=4, days=2)
    plain = CommunityEnv(c, num_envs=2, episode_steps=8, seed=3)
    signal = CommunityEnv(
        dataclasses.replace(c, congestion_signal="headroom"), num_envs=2, episode_steps=8, seed=3
    )
    src = MATPPO(plain.spec, SMALL, seed=0)
    run(src, lambda n: plain, 2 * 4 * 2 * 4)  # some training, so normalisers are not 0 / 1
    path = tmp_path / "src.pt"
    src.save(path)

    new = MATPPO(signal.spec, SMALL, seed=5)
    added = new.init_from(path)
    assert added == ["headroom_import", "headroom_export"]
    assert new.meta["init_from"]["new_features"] == added
    assert new.progress().agent_steps == 0  # a new run: its own budget and optimiser
    obs_p, obs_s = plain.reset(seed=11), signal.reset(seed=11)
    k = plain.spec.local_dim
    assert torch.equal(obs_s.local[..., :k], obs_p.local)  # the new features come last
    a_src, a_new = src.act(obs_p), new.act(obs_s)
    torch.testing.assert_close(a_new.continuous, a_src.continuous)
    assert torch.equal(a_new.discrete, a_src.discrete)
    torch.testing.assert_close(
        new._value(obs_s), src._value(obs_p), rtol=1e-5, atol=1e-5
    )  # the critic too
    # the first rollout sets the new features' statistics outright
    run(new, lambda n: signal, 4 * 2 * 4)
    local = torch.stack([signal.reset(seed=s).local for s in range(3)])
    mean = new.actor.local_norm.mean[k:]
    assert torch.all(mean != 0) and torch.all(new.actor.local_norm.var[k:] != 1)
    assert mean.abs().max() < 10 * local[..., k:].abs().max()


def test_init_from_refuses_what_does_not_fit(tmp_path):
    c = make_community(n=4, days=2)
    plain = CommunityEnv(c, episode_steps=8).spec
    loading = CommunityEnv(dataclasses.replace(c, broadcast_loading=True), episode_steps=8).spec
    path = tmp_path / "loading.pt"
    MATPPO(loading, SMALL, seed=0).save(path)
    with pytest.raises(ScenarioError, match=r"the env lacks the checkpoint's features"):
        MATPPO(plain, SMALL, seed=0).init_from(path)
    wide = dataclasses.replace(SMALL, feat_dim=32)
    with pytest.raises(ScenarioError, match=r"feat_dim=16 in the checkpoint but 32 here"):
        MATPPO(loading, wide, seed=0).init_from(path)


def test_train_with_variants_and_init_from_writes_a_mixed_validation(tmp_path):
    from gridmarl.train import train

    torch.set_num_threads(1)
    src_run = train(
        load_scenario(SCENARIO, TINY),
        device="cpu",
        steps=36,
        out=tmp_path / "src",
        validate_every=1,
        console=Console(quiet=True),
    )
    sc = load_scenario(
        SCENARIO,
        [
            *TINY,
            "community.congestion_signal=headroom",
            "train.variants=[{community.prosumers: 4}]",
        ],
    )
    run_dir = train(
        sc,
        device="cpu",
        steps=36 + 48,
        out=tmp_path / "new",
        validate_every=1,
        init_from=src_run / "checkpoints" / "last.pt",
        console=Console(quiet=True),
    )
    manifest = json.loads((run_dir / "train_manifest.json").read_text())
    assert manifest["init_from"]["new_features"] == ["headroom_import", "headroom_export"]
    assert manifest["agent_steps"] == 36 + 48  # one rollout at 3 and one at 4 prosumers
    rows = list(csv.DictReader((run_dir / "validation.csv").open()))
    key = "community.prosumers=4/share_of_optimal_savings"
    assert len(rows) == 2 and key in rows[0]
    for r in rows:
        mean = (float(r["share_of_optimal_savings"]) + float(r[key])) / 2
        assert float(r["mixed_score"]) == pytest.approx(mean)
    side = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    best = max(float(r["mixed_score"]) for r in rows)
    assert side["validation_mixed_score"] == pytest.approx(best)
    assert "community.prosumers=4" in side["validation_variants"]
    with pytest.raises(ScenarioError, match="--warm-start and --init-from"):
        train(
            sc,
            device="cpu",
            steps=1,
            out=tmp_path / "both",
            warm_start="rule_based",
            init_from=src_run / "checkpoints" / "last.pt",
            console=Console(quiet=True),
        )
    # a learner that cannot start from other weights says so
    with pytest.raises(ScenarioError, match="cannot start from another checkpoint"):
        train(
            sc.model_copy(update={"train": sc.train.model_copy(update={"variants": None})}),
            controller="hmf",
            device="cpu",
            steps=1,
            out=tmp_path / "hmf",
            init_from=src_run / "checkpoints" / "last.pt",
            console=Console(quiet=True),
        )
