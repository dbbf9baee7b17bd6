"""The training driver on a tiny energy scenario: run folder, checkpoints, resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

from gridmarl.config import ScenarioError, load_scenario
from gridmarl.controllers.matppo import MATPPO
from gridmarl.controllers.registry import load_policy

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "community_50.yaml"
TINY = [
    "community.prosumers=3",
    "window.train.days=3",
    "window.validate.days=1",
    "train.episode_days=1",
    "train.num_envs=2",
    "train.options={rollout_steps: 6, epochs: 1, minibatches: 1, lstm_hidden: 4, feat_dim: 8,"
    " actor_hidden: 8, critic_dim: 8, critic_heads: 1, critic_layers: 1}",
    "controllers=[{name: milp, time_limit_s: 20}]",
]
PER_UPDATE = 6 * 2 * 3  # rollout_steps × num_envs × prosumers


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    pytest.importorskip("gridmarl.energy.env")
    from gridmarl.train import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs")
    run = train(
        load_scenario(SCENARIO, TINY),
        device="cpu",
        steps=2 * PER_UPDATE,
        out=out,
        validate_every=1,
        console=Console(quiet=True),
    )
    return run


def test_run_folder_has_checkpoints_sidecar_and_logs(tiny_run):
    ck = tiny_run / "checkpoints"
    for name in ("last", "best", f"step_{2 * PER_UPDATE:012d}"):
        assert (ck / f"{name}.pt").exists() and (ck / f"{name}.json").exists()
    side = json.loads((ck / "last.json").read_text())
    assert side["agent_steps"] == 2 * PER_UPDATE and side["seed"] == 7
    assert len(side["policy_hash"]) == 64 and "torch" in side["versions"]
    assert (tiny_run / "validation.csv").read_text().count("\n") == 3  # header + 2 rows
    assert any((tiny_run / "tb").iterdir())


def test_resume_continues_and_refuses_another_scenario(tiny_run):
    from gridmarl.train import train

    quiet = Console(quiet=True)
    train(
        load_scenario(SCENARIO, TINY),
        device="cpu",
        steps=3 * PER_UPDATE,
        resume=tiny_run,
        validate_every=1,
        console=quiet,
    )
    side = json.loads((tiny_run / "checkpoints" / "last.json").read_text())
    assert side["agent_steps"] == 3 * PER_UPDATE and side["updates"] == 3
    other = load_scenario(SCENARIO, [*TINY, "community.battery.soc_init=0.9"])
    with pytest.raises(ScenarioError, match="different scenario"):
        train(other, device="cpu", resume=tiny_run, console=quiet)
    # train settings are outside the policy hash: a forgotten --set must not change the reward
    credit = load_scenario(SCENARIO, [*TINY, "train.credit=share"])
    with pytest.raises(ScenarioError, match="train.credit: run 'marginal', now 'share'"):
        train(credit, device="cpu", resume=tiny_run, console=quiet)
    more = load_scenario(SCENARIO, [*TINY, "train.steps=999"])  # the budget may change
    train(more, device="cpu", steps=3 * PER_UPDATE, resume=tiny_run, console=quiet)


def test_shipped_policy_loads_on_another_community_size(tiny_run):
    from gridmarl.energy.data import build_community
    from gridmarl.energy.env import CommunityEnv

    scenario = load_scenario(SCENARIO, [*TINY, "community.prosumers=5"])
    env = CommunityEnv(build_community(scenario, "validate"), num_envs=1, dtype=torch.float64)
    ctrl = load_policy("matppo", tiny_run / "checkpoints" / "last.pt", env=env)
    assert isinstance(ctrl, MATPPO)
    act = ctrl.act(env.reset(seed=0))
    assert act.continuous.shape == (1, 5, 2) and act.continuous.dtype == torch.float64


def test_threads_leave_the_env_worker_processes_their_cores(monkeypatch):
    """Without ``--threads``, a driver whose env runs worker processes (traffic: one SUMO
    simulation per env) keeps torch to the cores they leave free, at least one; domains
    without workers keep torch's count."""
    import gridmarl.core.training as ct
    from gridmarl.traffic import training as traffic_training

    monkeypatch.setattr(ct, "available_cores", lambda: 8)
    assert ct.threads_beside_workers(traffic_training, None, 3, current=8) == 5
    assert ct.threads_beside_workers(traffic_training, None, 12, current=8) == 1
    assert ct.threads_beside_workers(traffic_training, None, 2, current=4) == 4
    assert ct.threads_beside_workers(object(), None, 64, current=8) == 8


def test_train_options_go_to_the_learner_they_are_written_for() -> None:
    """``train.options`` belong to ``train.controller`` when the scenario names it; another
    learner gets its ``controller_options`` entry or none (its own defaults), never them."""
    from gridmarl.train import default_learner, train_options

    sc = load_scenario(SCENARIO)
    assert sc.train.controller == "matppo" and default_learner(sc) == "matppo"
    assert train_options(sc) == {"lr": 0.001, "gae_lambda": 0.99, "minibatches": 8, "num_envs": 64}
    assert train_options(sc, "hmf") == {"num_envs": 64}
    sc = load_scenario(
        SCENARIO,
        ["train.controller_options={hmf: {batch_size: 32, num_envs: 8}}", "train.controller=hmf"],
    )
    assert default_learner(sc) == "hmf"
    assert train_options(sc) == {"batch_size": 32, "num_envs": 8}
    assert train_options(sc, "matppo") == {"num_envs": 64}
    # a scenario that names no learner hands its options to whichever one is trained
    sc = load_scenario(SCENARIO, ["train.controller=null"])
    assert train_options(sc, "dqn")["lr"] == 0.001


def test_a_set_on_options_another_learner_never_reads_is_pointed_out(tmp_path) -> None:
    """``routing_ltos_ibm`` writes ``train.options`` for LToS and gives DQN its own entry: a
    ``--set train.options.…`` for a DQN run changes nothing, and the run says where to set it."""
    from rich.console import Console

    from gridmarl.train import train

    said = Console(record=True, width=200)
    train(
        "scenarios/routing_ltos_ibm.yaml",
        controller="dqn",
        steps=720,  # one update: 10 steps x 4 envs x 18 routers
        out=tmp_path,
        threads=1,
        overrides=["train.options.demo_share=0"],
        console=said,
    )
    text = said.export_text()
    assert "dqn reads train.controller_options.dqn (set that)" in text


class _Counts:
    """A learner stub whose update count the test sets."""

    def __init__(self) -> None:
        self.updates = 0

    def progress(self):
        from types import SimpleNamespace

        return SimpleNamespace(updates=self.updates, agent_steps=0)


class _Bar:
    def update(self, *args, **kwargs) -> None:
        pass


class _Writer:
    def add_scalar(self, *args) -> None:
        pass


@pytest.mark.parametrize(
    ("counts", "every", "validated_at"),
    [
        # warming up: the count stays at 0 for three rounds, then one update a round
        ([0, 0, 0, 1, 2, 3, 4, 5, 6], 3, [3, 6]),
        # several updates a round: every crossing of a multiple validates, once
        ([4, 8, 12, 16, 20], 10, [12, 20]),
        # a count that stays put between log calls is not validated twice
        ([5, 5, 5, 10, 10], 5, [5, 10]),
    ],
)
def test_validation_is_scheduled_on_crossings_of_validate_every(counts, every, validated_at):
    from gridmarl.train import _DriverLogger

    learner = _Counts()
    logger = _DriverLogger(learner, Path("."), None, every, _Bar(), 0, _Writer())
    seen: list[int] = []
    logger.checkpoint = lambda step: seen.append(learner.updates)  # type: ignore[method-assign]
    for c in counts:
        learner.updates = c
        logger.log(c, {})
    assert seen == validated_at
