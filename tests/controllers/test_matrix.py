"""Every registered learned controller x every registered domain (BenchMARL-style matrix, built
from the registries): a supported pair trains a few updates through the ``Learner`` protocol on
the domain's own training env; an unsupported pair is refused by ``train`` (exit 2)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from rich.console import Console

from gridmarl import domains
from gridmarl.config import load_scenario, validate_scenario
from gridmarl.controllers import registry
from gridmarl.core.controller import check_action
from gridmarl.core.errors import ScenarioError
from gridmarl.core.learner import Learner, run

ROOT = Path(__file__).resolve().parents[2]

#: per controller: the smallest hyper-parameters that still exercise every part of it
TINY_OPTIONS: dict[str, dict[str, object]] = {
    "matppo": {
        "rollout_steps": 4,
        "epochs": 1,
        "minibatches": 1,
        "lstm_hidden": 4,
        "feat_dim": 8,
        "actor_hidden": 8,
        "critic_dim": 8,
        "critic_heads": 1,
        "critic_layers": 1,
    },
    "hama": {"hidden": 8, "batch_size": 4, "buffer_size": 64, "update_every": 2},
    "maddpg": {"hidden": 8, "batch_size": 4, "buffer_size": 64, "update_every": 2},
}

#: the value learners' smallest settings: one update round after one collect
_TINY_Q: dict[str, object] = {
    "steps_per_collect": 2,
    "learning_starts": 1,
    "sample_size": 4,
    "batch_size": 2,
    "hidden": 8,
    "heads": 2,
    "action_levels": 2,
}
TINY_OPTIONS.update({"dqn": _TINY_Q, "dgn": _TINY_Q})
# high_update_episodes=0: the high level updates in the first round too
_TINY_LTOS = {**_TINY_Q, "high_update_episodes": 0, "high_sample_size": 4, "high_batch_size": 2}
TINY_OPTIONS.update({"ltos": _TINY_LTOS, "ltos_fixed": _TINY_LTOS})


def _energy() -> object:
    overrides = [
        "community.prosumers=3",
        "window.train.days=2",
        "train.episode_days=1",
        "controllers=[]",
    ]
    return load_scenario(ROOT / "scenarios" / "community_50.yaml", overrides)


def _traffic() -> object:
    from gridmarl.traffic.engines import check_engine

    try:
        check_engine("sumo")
    except ScenarioError as exc:
        pytest.skip(f"SUMO is not usable here: {exc}")
    return validate_scenario(
        {
            "name": "tiny_traffic",
            "domain": "traffic",
            "seed": 3,
            "grid": {"rows": 2, "cols": 2, "lanes": 2, "road_length_m": 100},
            "demand": {"profile": [{"duration_s": 60, "rate_veh_per_s": 0.5}]},
            "traffic": {"horizon_s": 60, "decision_s": 10},
        }
    )


def _routing() -> object:
    return validate_scenario(
        {
            "name": "tiny_routing",
            "domain": "routing",
            "seed": 3,
            "network": {"generator": {"kind": "waxman", "routers": 5, "seed": 1}},
            "traffic": {"profile": [{"steps": 12, "rate_pkt_per_step": 1.0}]},
        }
    )


#: per domain: a small scenario of it (a new domain needs an entry: the matrix test fails)
TINY_SCENARIOS = {"energy": _energy, "traffic": _traffic, "routing": _routing}

PAIRS = [(c, d) for c in registry.names() for d in domains.names()]
SLOW_DOMAINS = {"traffic"}  # a SUMO process per env: tens of seconds per pair


def test_matrix_covers_the_registries() -> None:
    assert set(TINY_OPTIONS) == set(registry.names())
    assert set(TINY_SCENARIOS) == set(domains.names())


@pytest.mark.parametrize(
    ("controller", "domain"),
    [
        pytest.param(c, d, id=f"{c}-{d}", marks=[pytest.mark.slow] if d in SLOW_DOMAINS else [])
        for c, d in PAIRS
    ],
)
def test_controller_trains_on_domain(controller: str, domain: str) -> None:
    info, dom = registry.get(controller), domains.get(domain)
    scenario = TINY_SCENARIOS[domain]()
    why = dom.refusal(info.name, info.action_kinds, info.needs_graph)
    if why is not None:
        from gridmarl.train import train

        with pytest.raises(ScenarioError, match=f"{controller} cannot train on the {domain}"):
            train(scenario, controller=controller, device="cpu", console=Console(quiet=True))
        return
    torch.set_num_threads(1)
    cls = info.load_class()
    make_env = dom.train_env_factory(scenario, torch.device("cpu"), 3)
    cfg = cls.config_class.from_options({**TINY_OPTIONS[controller], "num_envs": 2})
    probe = make_env(1)
    spec = probe.spec
    probe.close()
    learner = cls(spec, cfg, device="cpu", seed=3)
    assert isinstance(learner, Learner)
    before = {k: v.clone() for k, v in learner.state()["actor"].items()}
    metrics = run(learner, make_env, budget=1)  # one round: collect + update
    p = learner.progress()
    assert p.updates == 1 and p.agent_steps > 0
    assert metrics and all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))
    after = learner.state()["actor"]
    assert any(not torch.equal(before[k], after[k]) for k in before), "the update moved nothing"
    env = make_env(2)
    try:
        obs = env.reset(seed=11)
        check_action(spec, learner.act(obs, deterministic=True), 2)
    finally:
        env.close()


def test_train_refuses_an_unsupported_pair_with_exit_2(monkeypatch, capsys, tmp_path) -> None:
    """A controller that handles only continuous actions, on routing (discrete next hops)."""
    from gridmarl.cli import main

    fake = replace(registry.get("matppo"), name="contonly", action_kinds=frozenset({"continuous"}))
    monkeypatch.setitem(registry.REGISTRY, "contonly", fake)
    argv = ["gridmarl", "train", str(ROOT / "scenarios" / "routing_ibm.yaml")]
    flags = ["--controller", "contonly", "--device", "cpu", "--out", str(tmp_path)]
    monkeypatch.setattr("sys.argv", [*argv, *flags])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "contonly cannot train on the routing domain" in err
    assert "discrete" in err
    assert not any(tmp_path.rglob("*.pt"))  # refused before any run folder or checkpoint


def test_domain_refusal_names_what_is_missing() -> None:
    dom = replace(domains.get("energy"), graph=False)
    assert dom.refusal("x", {"discrete", "continuous", "hybrid"}, needs_graph=False) is None
    assert "hybrid" in (dom.refusal("x", {"discrete"}, needs_graph=False) or "")
    assert "agent graph" in (dom.refusal("x", {"hybrid"}, needs_graph=True) or "")


def test_for_checkpoint_finds_the_controller_by_format(tmp_path) -> None:
    info = registry.for_checkpoint(ROOT / "data" / "checkpoints" / "routing_ibm_matppo.pt")
    assert info.name == "matppo" and info.load_finetuner() is not None
    other = tmp_path / "other.pt"
    torch.save({"format": "someone.else/1"}, other)
    with pytest.raises(ScenarioError, match="format 'someone.else/1' is not one of"):
        registry.for_checkpoint(other)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ScenarioError, match="not a readable checkpoint"):
        registry.for_checkpoint(junk)
