"""The value learners' warm start from demonstrations (DQfD's pre-training phase,
``QLearner.warm_start``): the large-margin loss by hand, a teacher cloned exactly, the
demonstrations kept in the replay buffer, and ``gridmarl train --warm-start`` end to end."""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console

from gridmarl.controllers.common.qlearning import QConfig
from gridmarl.controllers.dgn import DGN
from gridmarl.controllers.dqn import DQN
from gridmarl.controllers.ltos import LToS, LToSConfig
from gridmarl.core.errors import ScenarioError
from gridmarl.core.types import Action, Observation
from tests.controllers.test_dqn_dgn_ltos import GAME_OPTS, PairGame, _tiny_routing

QUIET = Console(quiet=True)


class OwnBit:
    """Teacher of the pair game: every agent chooses its own bit (readable from its own
    observation, so a parameter-shared Q-network can clone it exactly)."""

    def reset(self, env: object) -> None:
        pass

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        bits = obs.local[..., 0].long()
        return Action(discrete=bits, continuous=torch.zeros(*bits.shape, 0))


def _learner(cls, **options):
    opts = {**GAME_OPTS, **options}
    if cls is LToS:
        return LToS(PairGame().spec, LToSConfig.from_options(opts), seed=3)
    return cls(PairGame().spec, QConfig.from_options(opts), seed=3)


def test_margin_loss_by_hand() -> None:
    torch.manual_seed(0)
    dqn = _learner(DQN, demo_margin=0.8)
    q = torch.tensor([[[1.0, 0.5], [0.0, 2.0], [3.0, 2.5], [0.0, 0.0]]])  # [M=1, N=4, A=2]
    dqn.q_values = lambda net, x, extra: q  # the values the loss reads
    env = PairGame(num_envs=1)
    obs = env.reset(seed=0)
    a_e = torch.tensor([[0, 0, 1, 1]])
    step = env.step(Action(discrete=a_e, continuous=torch.zeros(1, 4, 0)))
    dqn.replay = None
    from gridmarl.controllers.common.replay import ReplayBuffer

    buf = ReplayBuffer(env.spec, 4)
    buf.add(obs, Action(discrete=a_e, continuous=torch.zeros(1, 4, 0)), step)
    rows = buf.rows(torch.tensor([0]))
    # agent 0: max(1.0, 0.5 + 0.8) − 1.0 = 0.3; agent 1: max(0.0, 2.8) − 0.0 = 2.8;
    # agent 2: max(3.8, 2.5) − 2.5 = 1.3; agent 3: max(0.8, 0.0) − 0.0 = 0.8
    assert float(dqn.margin_loss(rows)) == pytest.approx((0.3 + 2.8 + 1.3 + 0.8) / 4)
    # zero once the demonstrated action leads every other by the margin
    q2 = torch.tensor([[[2.0, 1.0], [1.0, 0.1], [0.0, 0.9], [1.0, 1.8]]])
    dqn.q_values = lambda net, x, extra: q2
    assert float(dqn.margin_loss(rows)) == pytest.approx(0.0)


@pytest.mark.parametrize("cls", [DQN, DGN, LToS])
def test_warm_start_clones_the_teacher_and_keeps_its_rows(cls) -> None:
    torch.set_num_threads(1)
    learner = _learner(cls, lr=0.01)
    env = PairGame(num_envs=64, seed=5)
    out = learner.warm_start(env, OwnBit(), epochs=30, seed=11, keep_prior=False)
    assert out["warm/agreement"] == pytest.approx(1.0)
    assert out["warm/gradient_steps"] == 30 * 2  # 64 rows in minibatches of 32
    assert out["warm/teacher_return"] == pytest.approx(float(env.spec.n_agents) / 2, abs=0.6)
    assert len(learner.replay) == 64  # the demonstrations stay for learning to sample
    assert learner.episodes == 0 and learner.agent_steps == 0  # ε and counters start fresh
    # on observations it never saw, the greedy policy is the teacher's
    fresh = PairGame(num_envs=128, seed=99)
    learner.reset(fresh)
    obs = fresh.reset(seed=1234)
    assert torch.equal(learner.act(obs).discrete, OwnBit().act(obs).discrete)


class PlannedOwnBit(OwnBit):
    """A planning teacher (as the MILP): it reads the episode at ``reset`` and replays it."""

    def reset(self, env: PairGame) -> None:
        self.plan = env.bits.clone()

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        return Action(discrete=self.plan, continuous=torch.zeros(*self.plan.shape, 0))


def test_a_planning_teacher_plans_the_episode_it_demonstrates() -> None:
    learner = _learner(DQN)
    env = PairGame(num_envs=32, seed=5)
    learner.warm_start(env, PlannedOwnBit(), epochs=1, seed=11, keep_prior=False)
    rows = learner.replay.rows(torch.arange(32))
    assert torch.equal(rows.action.discrete, rows.obs.local[..., 0].long())


def test_warm_start_is_reproducible_for_a_seed() -> None:
    a, b = _learner(DGN), _learner(DGN)
    for learner in (a, b):
        learner.warm_start(PairGame(num_envs=32, seed=5), OwnBit(), 3, seed=11, keep_prior=False)
    for pa, pb in zip(a.qnet.parameters(), b.qnet.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_updates_keep_learning_from_the_demonstrations() -> None:
    torch.set_num_threads(1)
    for share, expected in ((0.25, True), (0.0, False)):
        dqn = _learner(DQN, demo_share=share, learning_starts=1)
        dqn.warm_start(PairGame(num_envs=32, seed=5), OwnBit(), 2, seed=11, keep_prior=False)
        env = PairGame(num_envs=16, seed=6)
        for _ in range(40):  # 640 rows: the ring of 1,968 rows never reaches the kept 32
            metrics = dqn.update(dqn.collect(env, 10**9))
        assert ("loss/demo_margin" in metrics) is expected
        kept = dqn.replay.rows(torch.arange(32))
        assert torch.equal(
            kept.action.discrete, kept.obs.local[..., 0].long()
        )  # still the teacher's


def test_demonstrations_larger_than_the_buffer_are_refused() -> None:
    dqn = _learner(DQN, capacity=16)
    with pytest.raises(ScenarioError, match="capacity"):
        dqn.warm_start(PairGame(num_envs=32), OwnBit(), 1, seed=0, keep_prior=False)


def _train_tiny_routing(controller: str, options: dict | None = None, **kwargs):
    """``gridmarl train`` on the tiny routing scenario (its options, or ``options``)."""
    from gridmarl.train import train

    torch.set_num_threads(1)
    scenario = _tiny_routing([{"name": "shortest_path_distance"}])
    if options is not None:
        scenario.train.options = options
    kwargs.setdefault("console", QUIET)
    return train(scenario, controller=controller, device="cpu", **kwargs)


@pytest.mark.parametrize("name", ["dqn", "ltos"])
def test_train_warm_starts_a_value_learner_from_shortest_path(tmp_path, name) -> None:
    per = 4 * 2 * 5  # steps_per_collect x envs x routers
    folder = _train_tiny_routing(
        name,
        steps=2 * per,
        out=tmp_path,
        validate_every=1,
        warm_start="shortest_path_distance",
        warm_start_epochs=20,
    )
    meta = json.loads((folder / "checkpoints" / "last.json").read_text())
    assert meta["agent_steps"] == 2 * per
    # the clone itself was validated, so best.pt is never worse than the warm start
    first = json.loads((folder / "checkpoints" / "step_000000000000.json").read_text())
    assert first["agent_steps"] == 0
    assert "shortest_path_distance" in json.dumps(meta)
    # --resume shows the learner the same demonstrations again (they are not checkpointed)
    said = Console(record=True, width=200)
    _train_tiny_routing(name, steps=3 * per, resume=folder, validate_every=1, console=said)
    assert "demonstrations of shortest_path_distance stored again: 24 rows" in said.export_text()


@pytest.mark.parametrize("grouping", ["spec", "ipc"])
def test_hmf_and_mfq_warm_start_clone_the_teacher_and_keep_learning_from_it(grouping) -> None:
    from gridmarl.controllers.hmf import HMF, HMFConfig
    from gridmarl.controllers.mfq import MFQ, MFQConfig

    torch.set_num_threads(1)
    common = {"num_envs": 16, "batch_size": 32, "hidden": 16, "lr": 3e-3, "learning_starts": 1}
    learners = [
        HMF(PairGame().spec, HMFConfig(**common, grouping=grouping, n_groups=2), seed=0),
        MFQ(PairGame().spec, MFQConfig(**common), seed=0),
    ]
    for learner in learners:
        out = learner.warm_start(PairGame(num_envs=64, seed=5), OwnBit(), 30, 11, False)
        assert out["warm/agreement"] == pytest.approx(1.0)
        assert out["warm/gradient_steps"] == 30 * 2 and learner.replay.kept == 64
        fresh = PairGame(num_envs=128, seed=99)
        obs = fresh.reset(seed=1234)
        assert torch.equal(learner.act(obs).discrete, OwnBit().act(obs).discrete)
        env = PairGame(num_envs=16, seed=6)
        metrics = learner.update(learner.collect(env, 10**6))
        assert "loss/demo_margin" in metrics  # the kept rows are learned from after it too
        kept = learner.replay.rows(torch.arange(64))
        assert torch.equal(kept.action.discrete, kept.obs.local[..., 0].long())


def test_train_warm_starts_hmf_from_shortest_path(tmp_path) -> None:
    folder = _train_tiny_routing(
        "hmf",
        {"batch_size": 8, "hidden": 8, "learning_starts": 1},
        steps=200,
        out=tmp_path,
        validate_every=5,
        warm_start="shortest_path_distance",
        warm_start_epochs=5,
    )
    assert json.loads((folder / "checkpoints" / "step_000000000000.json").read_text())
    meta = json.loads((folder / "checkpoints" / "last.json").read_text())
    assert "shortest_path_distance" in json.dumps(meta)
