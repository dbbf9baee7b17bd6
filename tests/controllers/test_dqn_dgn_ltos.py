"""DQN, DGN and LToS against known answers: a graph game only neighbour communication solves,
sharing weights that are distributions, the high-level gradient against finite differences,
aligned replay, the soft target update by hand, decentralised execution, and a
train → checkpoint → simulate round trip."""

from __future__ import annotations

import copy
from dataclasses import replace

import pandas as pd
import pytest
import torch
from rich.console import Console

from gridmarl.config import validate_scenario
from gridmarl.controllers.common.neighbourhood import Neighbourhood
from gridmarl.controllers.common.qlearning import QConfig, soft_update
from gridmarl.controllers.dgn import DGN
from gridmarl.controllers.dqn import DQN
from gridmarl.controllers.ltos import LToS, LToSConfig, LToSFixed, LToSFixedConfig, shaped_reward
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.learner import run
from gridmarl.core.types import Action, AgentSpec, Observation, Step

QUIET = Console(quiet=True)


def _graph(edges: list[tuple[int, int]], n: int) -> torch.Tensor:
    rows: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        rows[a].append(b)
        rows[b].append(a)
    k = max(1, *(len(r) for r in rows))
    out = torch.full((n, k), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(sorted(r), dtype=torch.long)
    return out


class PairGame(MultiAgentEnv):
    """Agents in pairs (0-1, 2-3, …); each sees a private random bit and is rewarded 1 for
    choosing its partner's bit, else 0.  One-step episodes (truncated).  Optimum: reward 1 per
    agent, reachable only by reading the partner (1-hop); on its own observation an agent gets
    0.5 in expectation whatever it does."""

    def __init__(self, n_agents: int = 4, num_envs: int = 16, seed: int = 0) -> None:
        self.num_envs, self.device, self.episode_len = num_envs, torch.device("cpu"), 1
        self.n = n_agents
        self.spec = AgentSpec(
            n_agents=n_agents,
            local_dim=2,
            forecast_len=0,
            forecast_dim=0,
            state_dim=2,
            global_dim=1,
            n_discrete=2,
            n_continuous=0,
            groups=torch.zeros(n_agents, dtype=torch.long),
            neighbors=_graph([(i, i + 1) for i in range(0, n_agents, 2)], n_agents),
        )
        self.gen = torch.Generator().manual_seed(seed)
        self.bits = torch.zeros(num_envs, n_agents, dtype=torch.long)

    def _obs(self) -> Observation:
        local = torch.stack([self.bits.float(), torch.ones_like(self.bits, dtype=torch.float)], -1)
        return Observation(
            local=local,
            forecast=torch.zeros(self.num_envs, self.n, 0, 0),
            state=local.clone(),
            global_=torch.zeros(self.num_envs, 1),
            action_mask=torch.ones(self.num_envs, self.n, 2, dtype=torch.bool),
        )

    def reset(self, seed: int | None = None) -> Observation:
        if seed is not None:
            self.gen.manual_seed(seed)
        self.bits = torch.randint(0, 2, (self.num_envs, self.n), generator=self.gen)
        return self._obs()

    def reset_envs(self, mask: torch.Tensor, seed: int | None = None) -> Observation:
        return self.reset(seed)

    def step(self, action: Action) -> Step:
        partner = self.spec.neighbors[:, 0]
        r = (action.discrete == self.bits[:, partner]).float()
        done = torch.ones(self.num_envs, dtype=torch.bool)
        return Step(self._obs(), r, r.sum(1), torch.zeros_like(done), done, {})

    def records(self) -> pd.DataFrame:
        return pd.DataFrame()


GAME_OPTS = {
    "num_envs": 16,
    "steps_per_collect": 1,
    "capacity": 2_000,
    "learning_starts": 64,
    "sample_size": 64,
    "batch_size": 32,
    "lr": 0.01,
    "gamma": 0.0,
    "tau": 0.2,
    "eps_start": 1.0,
    "eps_decay": 0.995,
    "eps_min": 0.1,
    "hidden": 16,
    "heads": 2,
    "norm_rows": 64,
}


def _greedy_reward(learner, env: PairGame, seed: int = 99) -> float:
    learner.reset(env)
    obs = env.reset(seed=seed)
    return float(env.step(learner.act(obs, deterministic=True)).reward.mean())


def test_dgn_learns_the_pair_game_optimum_that_dqn_cannot_reach() -> None:
    torch.set_num_threads(1)
    budget = 250 * 16 * 4  # update rounds x envs x agents
    dgn = DGN(PairGame().spec, QConfig.from_options(GAME_OPTS), seed=1)
    run(dgn, lambda b: PairGame(num_envs=b, seed=5), budget)
    dqn = DQN(PairGame().spec, QConfig.from_options(GAME_OPTS), seed=1)
    run(dqn, lambda b: PairGame(num_envs=b, seed=5), budget)
    env = PairGame(num_envs=256, seed=7)
    assert _greedy_reward(dgn, env) == pytest.approx(1.0)  # the known optimum
    assert _greedy_reward(dqn, env) < 0.65  # its own bit says nothing: 0.5 ± noise


# -- LToS's sharing weights ----------------------------------------------------------------------
PATH6 = _graph([(i, i + 1) for i in range(5)], 6)  # a path 0-1-2-3-4-5


def _spec(neighbors: torch.Tensor, local_dim: int = 3, n_discrete: int = 3) -> AgentSpec:
    n = neighbors.shape[0]
    return AgentSpec(
        n_agents=n,
        local_dim=local_dim,
        forecast_len=0,
        forecast_dim=0,
        state_dim=local_dim,
        global_dim=1,
        n_discrete=n_discrete,
        n_continuous=0,
        groups=torch.zeros(n, dtype=torch.long),
        neighbors=neighbors,
    )


def _obs(local: torch.Tensor, n_discrete: int = 3) -> Observation:
    b, n, _ = local.shape
    return Observation(
        local=local,
        forecast=torch.zeros(b, n, 0, 0),
        state=local.clone(),
        global_=torch.zeros(b, 1),
        action_mask=torch.ones(b, n, n_discrete, dtype=torch.bool),
    )


def _randomised(learner: LToS, seed: int = 0) -> LToS:
    """Non-zero output layers (the initializer starts them at 0) and a non-trivial normaliser."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in learner.phi.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return learner


def test_initial_weights_follow_the_selfishness_initializer() -> None:
    nb = _graph([(0, 1), (0, 2), (0, 3)], 5)  # a star and an isolated agent 4
    ltos = LToS(_spec(nb), LToSConfig(initial_selfishness=0.8), seed=0)
    w = ltos.sharing_weights(torch.randn(2, 5, 3))
    assert torch.allclose(w[:, 0, :4], torch.tensor([0.8, 0.2 / 3, 0.2 / 3, 0.2 / 3]))
    assert torch.allclose(w[:, 1, :2], torch.tensor([0.8, 0.2]))
    assert torch.allclose(w[:, 4, 0], torch.ones(2))  # no neighbour: keeps everything
    assert float(w[:, 1, 2:].detach().abs().sum()) == 0.0  # padded slots


@pytest.mark.parametrize("cls", [LToS, LToSFixed])
def test_sharing_weights_are_a_distribution_for_every_agent_and_step(cls) -> None:
    nb = _graph([(0, 1), (1, 2), (1, 3), (3, 4)], 6)  # agent 5 isolated
    cfg = (LToSConfig if cls is LToS else LToSFixedConfig)(action_interval=2, ou_sigma=5.0)
    ltos = _randomised(cls(_spec(nb), cfg, seed=0))
    hood = Neighbourhood(nb)
    g = torch.Generator().manual_seed(1)
    total_in = []
    for t in range(7):  # exploring (OU noise on the logits) and greedy
        obs = _obs(torch.randn(4, 6, 3, generator=g) * 3)
        w_in = ltos.extras_for_step(obs, torch.full((4,), t), explore=t % 2 == 0)["w_in"]
        w_out = ltos._held
        assert bool((w_out >= 0).all()) and bool((w_out[:, ~hood.mask] == 0).all())
        assert torch.allclose(w_out.sum(-1), torch.ones(4, 6))
        # every agent's reward is given out entirely: Σ_i Σ_j w_ji = N (seed Eqs. 14-15)
        total_in.append(w_in.sum((1, 2)))
        r = torch.randn(4, 6, generator=g)
        assert torch.allclose(shaped_reward(r, w_in, hood).sum(1), r.sum(1), atol=1e-5)
    assert torch.allclose(torch.stack(total_in), torch.full((7, 4), 6.0))


def test_weights_are_held_over_the_action_interval() -> None:
    ltos = _randomised(LToS(_spec(PATH6), LToSConfig(action_interval=3), seed=0))
    g = torch.Generator().manual_seed(2)
    held = []
    for t in range(6):
        ltos.extras_for_step(_obs(torch.randn(2, 6, 3, generator=g)), torch.full((2,), t), False)
        held.append(ltos._held.clone())
    assert torch.equal(held[0], held[1]) and torch.equal(held[1], held[2])
    assert not torch.equal(held[2], held[3]) and torch.equal(held[3], held[5])


def test_incoming_routes_each_weight_to_its_receiver() -> None:
    hood = Neighbourhood(PATH6)
    w_out = torch.rand(1, 6, hood.slots)
    w_in = hood.incoming(w_out)
    for i in range(6):
        for k in range(hood.slots):
            j = int(hood.index[i, k])
            if not hood.mask[i, k]:
                assert float(w_in[0, i, k]) == 0.0
                continue
            slot_of_i_in_j = [int(x) for x in hood.index[j]].index(i) if j != i else 0
            assert float(w_in[0, i, k]) == float(w_out[0, j, slot_of_i_in_j])


def test_high_level_gradient_matches_finite_differences() -> None:
    """Prop. 4.1 / Alg. 1 lines 20-22: ∂(−mean_i max_a q_i)/∂θ through the low-level Q-network
    and the exchange of weights; and its part in each agent's w_out (what the neighbours send
    back) against central differences, in float64."""
    torch.manual_seed(0)
    ltos = _randomised(LToS(_spec(PATH6), LToSConfig(hidden=8, heads=2), seed=0))
    ltos.qnet.double()
    ltos.phi.double()
    ltos.prior = ltos.prior.double()
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    mask = torch.ones(3, 6, 3, dtype=torch.bool)
    # in the high level's parameters
    param = ltos.phi.pair_out.weight
    loss = ltos.high_loss(x, mask)
    (grad,) = torch.autograd.grad(loss, param)
    h = 1e-6
    for idx in [(0, 0), (0, 3), (0, 7)]:
        with torch.no_grad():
            param[idx] += h
            up = float(ltos.high_loss(x, mask))
            param[idx] -= 2 * h
            down = float(ltos.high_loss(x, mask))
            param[idx] += h
        assert float(grad[idx]) == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)

    # in w_out: agent j's gradient collects the receivers' ∂q_i/∂w_ji (g_j^out, line 21)
    def f(w_out: torch.Tensor) -> torch.Tensor:
        q = ltos.q_values(ltos.qnet, x, {"w_in": ltos.hood.incoming(w_out)})
        return -q.max(-1).values.mean()

    w_out = ltos.phi(x, ltos.hood, ltos.prior).detach().requires_grad_(True)
    (g_out,) = torch.autograd.grad(f(w_out), w_out)
    for b, j, k in [(0, 2, 1), (1, 2, 2), (2, 0, 1), (0, 5, 0)]:
        e = torch.zeros_like(w_out)
        e[b, j, k] = h
        fd = (float(f(w_out.detach() + e)) - float(f(w_out.detach() - e))) / (2 * h)
        assert float(g_out[b, j, k]) == pytest.approx(fd, rel=1e-5, abs=1e-9)
    assert float(g_out[0, 2, 1]) != 0.0  # agent 2's share to agent 1 moves agent 1's value


def test_high_update_moves_only_the_high_level() -> None:
    cfg = LToSConfig(
        num_envs=2, steps_per_collect=3, learning_starts=1, sample_size=4, batch_size=2,
        hidden=8, heads=2, high_update_episodes=0, high_sample_size=4, high_batch_size=2,
    )  # fmt: skip
    ltos = LToS(PairGame().spec, cfg, seed=0)
    env = PairGame(num_envs=2)
    batch = ltos.collect(env, 100)
    q_before = copy.deepcopy(ltos.qnet.state_dict())
    phi_before = copy.deepcopy(ltos.phi.state_dict())
    ltos.after_update(batch)
    assert all(torch.equal(q_before[k], v) for k, v in ltos.qnet.state_dict().items())
    assert any(not torch.equal(phi_before[k], v) for k, v in ltos.phi.state_dict().items())


# -- replay and targets -------------------------------------------------------------------------
def test_an_update_draws_one_index_set_for_all_agents() -> None:
    cfg = LToSConfig(
        num_envs=4, steps_per_collect=5, learning_starts=1, sample_size=8, batch_size=4,
        hidden=8, heads=2, high_update_episodes=10**9,
    )  # fmt: skip
    ltos = LToS(PairGame().spec, cfg, seed=0)
    env = PairGame(num_envs=4)
    batch = ltos.collect(env, 10**6)
    # tag each stored row: every agent's reward = the row's index
    store = ltos.replay._storage
    store["reward"][:] = torch.arange(ltos.replay.capacity, dtype=torch.float).unsqueeze(1)
    seen = []
    real = ltos.replay.sample

    def spy(size, gen):
        rows = real(size, gen)
        seen.append(rows)
        return rows

    ltos.replay.sample = spy  # type: ignore[method-assign]
    ltos.update(batch)
    assert len(seen) == 1  # one draw per update round, shared by all agents
    r = seen[0].reward
    assert r.shape == (8, 4) and bool((r == r[:, :1]).all())  # each row: one timestep


def test_soft_target_update_by_hand() -> None:
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    w0, b0 = target.weight.detach().clone(), target.bias.detach().clone()
    soft_update(target, online, tau=0.1)
    assert torch.allclose(target.weight, 0.1 * online.weight + 0.9 * w0)
    assert torch.allclose(target.bias, 0.1 * online.bias + 0.9 * b0)
    # and inside an update round of a learner
    opts = {**GAME_OPTS, "learning_starts": 16, "sample_size": 16, "batch_size": 16, "tau": 0.3}
    dgn = DGN(PairGame().spec, QConfig.from_options(opts), seed=0)
    env = PairGame(num_envs=16)
    batch = dgn.collect(env, 10**6)
    old_target = copy.deepcopy(dgn.target.state_dict())
    dgn.update(batch)
    for k, v in dgn.target.state_dict().items():
        assert torch.allclose(v, 0.3 * dgn.qnet.state_dict()[k] + 0.7 * old_target[k], atol=1e-7)


# -- decentralised execution --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "hops"),
    [(DQN, 0), (DGN, 1), (LToS, 2)],  # LToS: q_i reads w_ji, and φ_j reads j's neighbours
)
def test_an_observation_outside_the_neighbourhood_never_changes_an_action(cls, hops) -> None:
    cfg_cls = LToSConfig if cls is LToS else QConfig
    learner = cls(_spec(PATH6), cfg_cls(hidden=8, heads=2), seed=0)
    if cls is LToS:
        _randomised(learner)
    g = torch.Generator().manual_seed(3)
    local = torch.randn(8, 6, 3, generator=g)
    moved = local.clone()
    moved[:, 5] = torch.randn(8, 3, generator=g) * 10  # only agent 5's observation changes
    extra = {}

    def q(loc: torch.Tensor) -> torch.Tensor:
        obs = _obs(loc)
        learner._held = None
        e = learner.extras_for_step(obs, torch.zeros(8), explore=False)
        extra.update(e)
        with torch.no_grad():
            return learner.q_values(learner.qnet, learner._x(obs), e)

    q0, q1 = q(local), q(moved)
    far = 5 - hops - 1  # agents 0 … far are more than `hops` hops from agent 5
    assert torch.equal(q0[:, : far + 1], q1[:, : far + 1])
    assert not torch.equal(q0[:, far + 1], q1[:, far + 1])  # the receptive field is exact


# -- train → checkpoint → simulate ----------------------------------------------------------------
def _tiny_routing(controllers: list[dict]) -> object:
    return validate_scenario(
        {
            "name": "tiny_routing",
            "domain": "routing",
            "seed": 3,
            "network": {"generator": {"kind": "waxman", "routers": 5, "seed": 1}},
            "traffic": {"profile": [{"steps": 12, "rate_pkt_per_step": 1.0}]},
            "evaluation": {"episodes": 1},
            "train": {
                "steps": 2_000,
                "num_envs": 2,
                "options": {
                    "steps_per_collect": 4,
                    "learning_starts": 4,
                    "sample_size": 4,
                    "batch_size": 2,
                    "hidden": 8,
                    "heads": 2,
                },
            },
            "controllers": controllers,
        }
    )


@pytest.mark.parametrize("name", ["dqn", "dgn", "ltos", "ltos_fixed"])
def test_train_checkpoint_simulate_round_trip(tmp_path, name) -> None:
    from gridmarl.routing.simulate import simulate
    from gridmarl.train import train

    torch.set_num_threads(1)
    per = 4 * 2 * 5  # steps_per_collect x envs x routers
    folder = train(
        _tiny_routing([{"name": "shortest_path_distance"}]),
        controller=name,
        device="cpu",
        steps=3 * per,
        out=tmp_path,
        validate_every=1,
        console=QUIET,
    )
    last = folder / "checkpoints" / "last.pt"
    assert last.exists() and (folder / "checkpoints" / "best.pt").exists()
    if name.startswith("ltos"):  # selfishness over a greedy episode (seed Figs. 5-6)
        frame = pd.read_csv(folder / "selfishness.csv")
        values = frame.iloc[:, 1:].to_numpy()
        assert frame.columns[0] == "step" and values.shape == (12, 5)  # steps x routers
        assert bool(((values >= 0) & (values <= 1)).all())
        assert (folder / "selfishness_time.png").stat().st_size > 0
        assert (folder / "selfishness_network.png").stat().st_size > 0
        if name == "ltos_fixed":  # held at the initializer's s0 = 0.9 for every connected agent
            assert values == pytest.approx(0.9)
    # resume continues where the run stopped
    train(
        _tiny_routing([{"name": "shortest_path_distance"}]),
        controller=name,
        device="cpu",
        steps=4 * per,
        resume=folder,
        validate_every=1,
        console=QUIET,
    )
    import json

    assert json.loads((folder / "checkpoints" / "last.json").read_text())["agent_steps"] == 4 * per
    res = simulate(_tiny_routing([{"name": name, "label": "learned", "checkpoint": str(last)}]))
    assert res.controllers[0].name == "learned"
    assert res.controllers[0].kpis["throughput_pkt"] > 0


# -- any topology ---------------------------------------------------------------------------------
def _ltos_ibm(extra: list[str]) -> object:
    from pathlib import Path

    from gridmarl.config import load_scenario

    root = Path(__file__).resolve().parents[2]
    return load_scenario(
        root / "scenarios" / "routing_ltos_ibm.yaml",
        [
            "traffic.profile=[{steps: 20, rate_pkt_per_step: 2.0}]",
            "network.km_per_step=500",  # short links: packets arrive within 20 steps
            "evaluation.episodes=1",
            "env.observation=neighbourhood",
            "train.num_envs=2",
            # these options go to whichever learner the test trains
            "train.controller=null",
            "train.controller_options=null",
            "train.options={steps_per_collect: 4, learning_starts: 4, sample_size: 4, "
            "batch_size: 2, hidden: 8, heads: 2, action_head: neighbours}",
            *extra,
        ],
    )


@pytest.mark.parametrize("name", ["dgn", "ltos"])
def test_a_policy_trained_on_ibm_runs_on_abilene_and_geant(tmp_path, name) -> None:
    from gridmarl.routing.simulate import simulate
    from gridmarl.train import train

    torch.set_num_threads(1)
    folder = train(
        _ltos_ibm(["controllers=[]"]),
        controller=name,
        device="cpu",
        steps=2 * 4 * 2 * 18,
        out=tmp_path,
        validate_every=10**6,
        console=QUIET,
    )
    ck = str(folder / "checkpoints" / "last.pt")
    for topo in ("Abilene", "Geant2012"):  # 11 and 40 routers (IBM: 18)
        entry = f"controllers=[{{name: {name}, label: learned, checkpoint: {ck}}}]"
        sc = _ltos_ibm([f"network.topology=data/topologies/{topo}.graphml", entry])
        learned = simulate(sc).controllers[0]
        assert learned.name == "learned" and learned.kpis["throughput_pkt"] > 0


def test_the_slot_layout_policy_is_refused_on_another_topology(tmp_path) -> None:
    """The contrast: without the neighbourhood observation the sizes follow the topology."""
    from gridmarl.config import ScenarioError
    from gridmarl.routing.simulate import simulate
    from gridmarl.train import train

    torch.set_num_threads(1)
    slots = [
        "env.observation=null",
        "train.options={steps_per_collect: 4, learning_starts: 4, sample_size: 4, "
        "batch_size: 2, hidden: 8, heads: 2}",
    ]
    folder = train(
        _ltos_ibm([*slots, "controllers=[]"]),
        controller="dgn",
        device="cpu",
        steps=4 * 2 * 18,
        out=tmp_path,
        validate_every=10**6,
        console=QUIET,
    )
    ck = str(folder / "checkpoints" / "last.pt")
    entry = f"controllers=[{{name: dgn, checkpoint: {ck}}}]"
    with pytest.raises(ScenarioError, match="local_dim=31 in the checkpoint but 71"):
        simulate(_ltos_ibm([*slots, "network.topology=data/topologies/Geant2012.graphml", entry]))


def test_neighbourhood_observation_features() -> None:
    """Size-free routing features against the slot layout kept in ``state``."""
    from gridmarl.routing.env import NEIGHBOURHOOD_FEATURES, head_destination
    from gridmarl.routing.simulate import load_topology, make_env

    for path_features in (False, True):
        sc = _ltos_ibm([f"env.path_features={str(path_features).lower()}", "controllers=[]"])
        topo = load_topology(sc)
        env = make_env(sc, topo, num_envs=2, seed=4)
        obs = env.reset(seed=4)
        for _ in range(6):
            obs = env.step(Action(obs.action_mask.float().argmax(-1), obs.local[..., :0])).obs
        n, k = topo.n_routers, topo.max_degree
        names = NEIGHBOURHOOD_FEATURES + (("sp_delay_steps",) if path_features else ())
        assert env.spec.local_features == names and obs.local.shape == (2, n, len(names))
        assert obs.state.shape[-1] == 1 + n + (3 if path_features else 2) * k
        dst, has = head_destination(obs, n)
        assert bool(has.any()) and not bool(has.all())  # both kinds of router present
        loc = obs.local
        assert torch.equal(loc[..., 0], obs.state[..., 0])  # own queue
        assert torch.equal(loc[..., 1].bool(), has)
        assert bool(((loc[..., 2:4] >= 0) & (loc[..., 2:4] <= 1)).all())
        assert torch.equal(loc[..., 4:6], env.uv[dst] * has[..., None])
        assert torch.equal(loc[..., 6], torch.as_tensor(topo.degree).float().expand(2, n))
        assert torch.equal(loc[..., 7], obs.state[..., 1 + n + k : 1 + n + 2 * k].sum(-1))
        if path_features:
            sp = torch.as_tensor(topo.delay_matrix(), dtype=torch.float32)
            assert torch.equal(loc[..., 8], sp[torch.arange(n), dst] * has)
        # pair features of neighbour slot kk, by hand from the slot layout and the topology
        p = 3 if path_features else 2
        assert env.spec.pair_dim == p and obs.pair.shape == (2, n, k, p)
        nb = env.spec.neighbors
        sp = torch.as_tensor(topo.delay_matrix(), dtype=torch.float32)
        for b in range(2):
            for i in range(n):
                for kk in range(k):
                    row = obs.pair[b, i, kk]
                    assert row[0] == obs.state[b, i, 1 + n + kk]  # the neighbour's queue
                    assert row[1] == obs.state[b, i, 1 + n + k + kk]  # in flight on the link
                    j = int(nb[i, kk])
                    if path_features and j >= 0 and has[b, i]:
                        links = zip(topo.link_src, topo.link_dst, topo.delay_steps, strict=True)
                        link = next(int(d) for a, c, d in links if (a, c) == (i, j))
                        assert row[2] == link + sp[j, dst[b, i]]
                    elif path_features:
                        assert row[2] == 0
                    if j < 0:
                        assert not bool(row.any())  # padded slot


def test_the_pointer_head_scores_each_choice_from_its_own_pair_features() -> None:
    """Q_i(k) moves with p_ik and with no other choice's pair features; a checkpoint that read
    pair features is refused where the env gives none."""
    from gridmarl.controllers.common.qlearning import QConfig
    from gridmarl.controllers.dgn import DGN

    sc = _ltos_ibm(["env.path_features=true", "controllers=[]"])
    from gridmarl.routing.simulate import load_topology, make_env

    env = make_env(sc, load_topology(sc), num_envs=1, seed=3)
    obs = env.reset(seed=3)
    cfg = QConfig.from_options({"hidden": 8, "heads": 2, "action_head": "neighbours"})
    learner = DGN(env.spec, cfg, device="cpu", seed=0)
    assert learner.pair_dim == 3
    x = learner._x(obs)
    i, kk = 0, 1
    q = learner.q_values(learner.qnet, x, {})
    moved = replace(obs, pair=obs.pair.clone())
    moved.pair[0, i, kk] += 50.0
    q2 = learner.q_values(learner.qnet, learner._x(moved), {})
    assert q2[0, i, kk] != q[0, i, kk]
    others = [c for c in range(env.spec.n_discrete) if c != kk]
    assert torch.equal(q2[0, i, others], q[0, i, others])
    assert torch.equal(q2[0, 1:], q[0, 1:])  # another agent's Q does not read agent 0's pairs


def test_a_checkpoint_with_pair_features_is_refused_without_them(tmp_path) -> None:
    from gridmarl.config import ScenarioError
    from gridmarl.controllers.common.qlearning import QConfig
    from gridmarl.controllers.dgn import DGN
    from gridmarl.routing.simulate import load_topology, make_env

    sc = _ltos_ibm(["controllers=[]"])
    env = make_env(sc, load_topology(sc), num_envs=1, seed=3)
    cfg = QConfig.from_options({"hidden": 8, "heads": 2, "action_head": "neighbours"})
    DGN(env.spec, cfg, device="cpu", seed=0).save(tmp_path / "pair.pt")
    without = replace(env.spec, pair_dim=0)
    with pytest.raises(ScenarioError, match="pair_dim=3 in the checkpoint but 0 in the env"):
        DGN(without, cfg, device="cpu", seed=0).load(tmp_path / "pair.pt")


def test_loop_mask_hides_the_neighbours_the_head_packet_visited() -> None:
    """Differential: the mask against each head packet's visited routers, decoded bit by bit
    from the env's packet state (seed §5.3, loopback detection)."""
    from gridmarl.routing.simulate import load_topology, make_env

    sc = _ltos_ibm(["env.loop_mask=true", "env.observation=null", "controllers=[]"])
    topo = load_topology(sc)
    env = make_env(sc, topo, num_envs=2, seed=5)
    obs = env.reset(seed=5)
    g = torch.Generator().manual_seed(0)
    checked = hidden = 0
    for _ in range(8):
        pick = torch.multinomial(obs.action_mask.float().view(-1, env.k), 1, generator=g)
        obs = env.step(Action(pick.view(2, env.n), obs.local[..., :0])).obs
        for b in range(2):
            for r in range(env.n):
                real = [int(j) for j in topo.neighbors[r] if j >= 0]
                got = obs.action_mask[b, r, : len(real)].tolist()
                assert not any(obs.action_mask[b, r, len(real) :].tolist())
                if not bool(env.has_head[b, r]):
                    assert all(got)
                    continue
                slot = int(env.head_slot[b, r])
                words = env.visited.view(2, env.pool + 1, env.words)[b, slot].tolist()
                seen = [(words[j // 64] >> (j % 64)) & 1 == 1 for j in real]
                want = [not s for s in seen] if not all(seen) else [True] * len(real)
                assert got == want
                checked += 1
                hidden += sum(not x for x in got)
    assert checked > 10 and hidden > 0  # the mask did hide visited neighbours


def test_bad_options_are_refused_with_the_key() -> None:
    from gridmarl.core.errors import ScenarioError

    with pytest.raises(ScenarioError, match="unknown QConfig option.*high_lr"):
        QConfig.from_options({"high_lr": 0.1})
    with pytest.raises(ScenarioError, match="initial_selfishness must be in"):
        LToSConfig.from_options({"initial_selfishness": 0.0})
    with pytest.raises(ScenarioError, match="batch_size .* must be ≤ sample_size"):
        QConfig.from_options({"batch_size": 20, "sample_size": 10})
    # the pointer head needs one discrete choice per neighbour slot (K = 2 on the path)
    with pytest.raises(ScenarioError, match="action_head: 'neighbours' needs"):
        DGN(_spec(PATH6, n_discrete=3), QConfig(action_head="neighbours"))
    with pytest.raises(ScenarioError, match="DQN scores actions from the agent's own"):
        DQN(_spec(PATH6, n_discrete=2), QConfig(action_head="neighbours"))
    with pytest.raises(ValueError, match="not symmetric"):
        Neighbourhood(torch.tensor([[1], [-1]]))
