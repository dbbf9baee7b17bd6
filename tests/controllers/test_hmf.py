"""HMF, MFQ and independent Q: the seed's quantities against hand computations, IPC grouping, a
two-group game with a known optimum, checkpoints and ``train`` -> ``simulate`` on routing."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from rich.console import Console

from gridmarl.config import validate_scenario
from gridmarl.controllers import registry
from gridmarl.controllers.hmf import (
    HMF,
    GroupAttention,
    GroupMLP,
    HMFConfig,
    ipc_groups,
    kl_to_group_mean,
    mean_field,
)
from gridmarl.controllers.mfq import MFQ, IndependentQ, MFQConfig, others_mean
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.learner import Learner, run
from gridmarl.core.types import Action, AgentSpec, Observation, Step
from gridmarl.games.bar import BarEnv

QUIET = Console(quiet=True)


def _groups(m: int, n: int, g: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    out = torch.randint(0, g, (m, n), generator=gen)
    out[:, :g] = torch.arange(g)  # every group has a member
    return out


def test_lambda_is_a_distribution_over_each_group() -> None:
    torch.manual_seed(0)
    m, n, g, d = 5, 9, 3, 6
    x, groups = torch.randn(m, n, d), _groups(m, n, g)
    lam = GroupAttention(d, 4)(x, groups, g)
    assert bool((lam >= 0).all()) and bool((lam <= 1).all())
    for b in range(m):
        for i in range(g):
            assert float(lam[b][groups[b] == i].sum().detach()) == pytest.approx(1.0, abs=1e-6)


def test_mean_field_is_the_weighted_mean_by_hand() -> None:
    torch.manual_seed(1)
    m, n, g, d = 3, 7, 2, 4
    x, groups = torch.randn(m, n, d), _groups(m, n, g, seed=1)
    lam = GroupAttention(d, 4)(x, groups, g)
    mu = mean_field(x, lam, groups, g)
    for b in range(m):
        for i in range(g):
            by_hand = sum(lam[b, k] * x[b, k] for k in range(n) if groups[b, k] == i)
            assert torch.allclose(mu[b, i], by_hand, atol=1e-6)


def test_q_tot_is_the_sum_of_the_group_terms() -> None:
    """Eq. 13: Q_TOT = Σ_i Q_GMF^(i)(μ^(i)), each group with its own network φ^(i)."""
    torch.manual_seed(2)
    g, d, h = 3, 5, 8
    net = GroupMLP(g, d, h)
    mu = torch.randn(4, g, d)
    q = net(mu)

    def by_hand(i: int, v: torch.Tensor) -> torch.Tensor:
        z = torch.relu(v @ net.w1[i] + net.b1[i])
        z = torch.relu(z @ net.w2[i] + net.b2[i])
        return (z @ net.w3[i] + net.b3[i]).squeeze(-1)

    total = sum(by_hand(i, mu[:, i]) for i in range(g))
    assert torch.allclose(q.sum(-1), total, atol=1e-5)
    # group j's mean field does not move group i's term
    mu2 = mu.clone()
    mu2[:, 2] += 1.0
    assert torch.allclose(net(mu2)[:, :2], q[:, :2])


def test_ipc_grouping_is_deterministic_and_nearest() -> None:
    gen = torch.Generator().manual_seed(3)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = centres.repeat_interleave(5, 0) + 0.3 * torch.randn(15, 2, generator=gen)
    x = x.unsqueeze(0).repeat(2, 1, 1)  # B = 2
    a, ca = ipc_groups(x, 3, 5, torch.Generator().manual_seed(7))
    b, cb = ipc_groups(x, 3, 5, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and torch.equal(ca, cb)
    # every agent is in the group of its nearest centre
    assert torch.equal(a, torch.cdist(x, ca).argmin(-1))
    # the three clusters are recovered (ids up to a permutation)
    for blk in range(3):
        ids = a[0, 5 * blk : 5 * blk + 5]
        assert bool((ids == ids[0]).all())
    assert len(set(a[0].tolist())) == 3


def test_kl_is_zero_when_the_policy_equals_the_group_mean() -> None:
    m, n, a, g = 2, 4, 3, 2
    groups = torch.tensor([[0, 0, 1, 1]] * m)
    mask = torch.ones(m, n, a, dtype=torch.bool)
    same = torch.tensor([0.5, -1.0, 2.0]).expand(m, n, a)
    kl = kl_to_group_mean(same, same, mask, groups, g)
    assert torch.allclose(kl, torch.zeros(m, n), atol=1e-6)
    # a newcomer unlike the group's mean policy: KL by hand
    mean_logits = same.clone()
    mean_logits[:, 1] = torch.tensor([3.0, 0.0, 0.0])
    kl = kl_to_group_mean(same, mean_logits, mask, groups, g)
    p = torch.softmax(same[0, 0], -1)
    bar = (torch.softmax(mean_logits[0, 0], -1) + torch.softmax(mean_logits[0, 1], -1)) / 2
    assert float(kl[0, 0]) == pytest.approx(float((p * (p.log() - bar.log())).sum()), abs=1e-6)
    assert float(kl[0, 2]) == pytest.approx(0.0, abs=1e-6)
    # a masked action has probability 0 and contributes nothing (finite)
    mask[:, :, 2] = False
    assert bool(torch.isfinite(kl_to_group_mean(same, mean_logits, mask, groups, g)).all())


def test_bar_payoff_by_hand() -> None:
    """The seed's payoff: attending pays +1 up to the capacity, −1 above it; home pays 0."""
    env = BarEnv(num_envs=2, n_agents=100, capacity=60)
    env.reset(seed=0)
    go = torch.zeros(2, 100, dtype=torch.long)
    go[0, :60] = 1  # exactly the capacity
    go[1, :61] = 1  # one too many
    step = env.step(Action(discrete=go, continuous=torch.zeros(2, 100, 0)))
    assert step.reward[0, :60].eq(1).all() and step.reward[0, 60:].eq(0).all()
    assert step.reward[1, :61].eq(-1).all() and step.reward[1, 61:].eq(0).all()
    assert torch.allclose(step.info["attendance"], torch.tensor([0.60, 0.61]))
    assert torch.allclose(step.obs.local[:, 0, 0], torch.tensor([0.60, 0.61]))
    assert step.team_reward.tolist() == [60.0, -61.0]


def test_mfq_mean_action_excludes_the_agent() -> None:
    a = torch.nn.functional.one_hot(torch.tensor([[0, 1, 1]]), 2).float()
    assert torch.allclose(others_mean(a)[0, 0], torch.tensor([0.0, 1.0]))
    assert torch.allclose(others_mean(a)[0, 1], torch.tensor([0.5, 0.5]))


class TwoGroupGame(MultiAgentEnv):
    """Four agents in two groups, one-step episodes: an agent of group g sees ``[g]`` and earns
    1 for action g, else 0.  The optimum: group 0 plays 0, group 1 plays 1."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs, self.device, self.episode_len = num_envs, torch.device("cpu"), 1
        self.g = torch.tensor([0, 0, 1, 1])
        self.spec = AgentSpec(
            n_agents=4,
            local_dim=1,
            forecast_len=0,
            forecast_dim=1,
            state_dim=1,
            global_dim=1,
            n_discrete=2,
            n_continuous=0,
            groups=self.g,
            neighbors=torch.full((4, 1), -1, dtype=torch.long),
        )

    def _obs(self) -> Observation:
        local = self.g.float().expand(self.num_envs, 4).unsqueeze(-1)
        return Observation(
            local=local,
            forecast=torch.zeros(self.num_envs, 4, 0, 1),
            state=local.clone(),
            global_=torch.zeros(self.num_envs, 1),
            action_mask=None,
        )

    def reset(self, seed: int | None = None) -> Observation:
        return self._obs()

    def step(self, action: Action) -> Step:
        r = (action.discrete == self.g).float()
        end = torch.ones(self.num_envs, dtype=torch.bool)
        return Step(self._obs(), r, r.sum(1), end, torch.zeros_like(end))

    def records(self) -> pd.DataFrame:
        return pd.DataFrame({"step": [], "agent": []})


@pytest.mark.parametrize("grouping", ["spec", "ipc"])
def test_hmf_learns_the_two_group_optimum(grouping: str) -> None:
    torch.set_num_threads(1)
    env = TwoGroupGame(8)
    cfg = HMFConfig(
        num_envs=8,
        learning_starts=16,
        batch_size=32,
        hidden=16,
        lr=3e-3,
        grouping=grouping,
        n_groups=2,
        eps_fraction=0.3,
        tau=0.05,
    )
    learner = HMF(env.spec, cfg, seed=0)
    run(learner, lambda b: TwoGroupGame(b), budget=4 * 8 * 150)
    act = learner.act(env.reset(), deterministic=True)
    assert torch.equal(act.discrete, env.g.expand(8, 4))


@pytest.mark.parametrize("cls", [MFQ, IndependentQ])
def test_mfq_and_iql_learn_the_two_group_optimum(cls: type) -> None:
    torch.set_num_threads(1)
    env = TwoGroupGame(8)
    cfg = MFQConfig(num_envs=8, learning_starts=16, batch_size=32, hidden=16, lr=3e-3)
    learner = cls(env.spec, cfg, seed=0)
    run(learner, lambda b: TwoGroupGame(b), budget=4 * 8 * 120)
    assert torch.equal(learner.act(env.reset()).discrete, env.g.expand(8, 4))


def test_same_seed_same_result_and_checkpoint_round_trip(tmp_path) -> None:
    torch.set_num_threads(1)
    cfg = HMFConfig(
        num_envs=2, learning_starts=4, batch_size=8, hidden=8, grouping="ipc", n_groups=3
    )

    def trained() -> HMF:
        env = BarEnv(num_envs=2, n_agents=12, capacity=7, nights=3)
        learner = HMF(env.spec, cfg, seed=5)
        run(learner, lambda b: BarEnv(num_envs=b, n_agents=12, capacity=7, nights=3), 12 * 2 * 20)
        return learner

    a, b = trained(), trained()
    for k, v in a.state()["nets"].items():
        assert torch.equal(v, b.state()["nets"][k]), k
    path = tmp_path / "hmf.pt"
    a.save(path)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["format"] == "gridmarl.hmf/1" and side["config"]["n_groups"] == 3
    # loads on a population of another size (Q_LOC is shared) and acts the same
    big = BarEnv(num_envs=1, n_agents=30, capacity=18)
    loaded = HMF.from_checkpoint(path, big.spec)
    assert isinstance(loaded, Learner)
    obs = big.reset(seed=1)
    assert torch.equal(loaded.act(obs).discrete, a.act(obs).discrete)
    with pytest.raises(ScenarioError, match="not a MFQ checkpoint"):
        MFQ.check_checkpoint(path, big.spec)
    with pytest.raises(ScenarioError, match="unknown HMFConfig option"):
        HMFConfig.from_options({"n_group": 2})
    with pytest.raises(ScenarioError, match="n_groups >= 1"):
        HMFConfig.from_options({"grouping": "ipc"})


def tiny_routing(**over: object) -> object:
    data = {
        "name": "tiny_routing",
        "domain": "routing",
        "seed": 3,
        "network": {"generator": {"kind": "waxman", "routers": 5, "seed": 1, "side_km": 1500}},
        "traffic": {"profile": [{"steps": 20, "rate_pkt_per_step": 1.0}]},
        "evaluation": {"episodes": 1},
        "train": {
            "steps": 5 * 4 * 20,
            "num_envs": 4,
            "options": {"hidden": 8, "attn_dim": 4, "learning_starts": 2, "batch_size": 4},
        },
        "controllers": [{"name": "shortest_path_distance"}],
    }
    data.update(over)
    return validate_scenario(data)


def test_train_checkpoint_simulate_round_trip_on_routing(tmp_path) -> None:
    from gridmarl.routing.simulate import simulate
    from gridmarl.train import train

    torch.set_num_threads(1)
    run_dir = train(
        tiny_routing(),
        controller="hmf",
        device="cpu",
        out=tmp_path,
        validate_every=10,
        console=QUIET,
    )
    last = run_dir / "checkpoints" / "last.pt"
    assert registry.for_checkpoint(last).name == "hmf"
    first = json.loads(last.with_suffix(".json").read_text())
    # --resume continues from the checkpoint's progress with the run's budget and seed
    train(
        tiny_routing(),
        controller="hmf",
        device="cpu",
        steps=2 * 5 * 4 * 20,
        resume=run_dir,
        validate_every=10,
        console=QUIET,
    )
    second = json.loads(last.with_suffix(".json").read_text())
    assert second["agent_steps"] == 2 * first["agent_steps"] == 2 * 5 * 4 * 20
    assert second["seed"] == first["seed"]
    sc = tiny_routing(
        controllers=[
            {"name": "shortest_path_distance"},
            {"name": "hmf", "label": "hmf_learned", "checkpoint": str(last)},
        ]
    )
    res = simulate(sc)
    assert [r.name for r in res.controllers] == ["shortest_path_distance", "hmf_learned"]
    assert res.controllers[1].kpis["throughput_pkt"] >= 0
