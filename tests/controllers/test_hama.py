"""HAMA and its MADDPG ablation: HGAT properties with known answers, the Gumbel-softmax
straight-through estimator, decentralised execution, a toy with a known optimum, and the
train → checkpoint → simulate round trip."""

from __future__ import annotations

import pytest
import torch

from gridmarl.controllers.common.hgat import HGAT, gumbel_softmax_st, masked_softmax
from gridmarl.controllers.hama import HAMA, HAMAConfig
from gridmarl.controllers.maddpg import MADDPG
from gridmarl.core.errors import ScenarioError
from gridmarl.core.types import AgentSpec, Observation
from gridmarl.games.spread import SpreadEnv, SpreadView
from tests.controllers.toy_env import TARGET_U, ToyEnv

SMALL = HAMAConfig(num_envs=4, hidden=16, batch_size=16, buffer_size=256, update_every=4)


def _hgat_inputs(m: int = 5, e: int = 6, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    own = torch.randn(m, 3, generator=g)
    ent = torch.randn(m, e, 4, generator=g)
    group = torch.tensor([0, 0, 1, 1, 2, 2][:e]).expand(m, e).clone()
    mask = torch.rand(m, e, generator=g) > 0.3
    mask[:, 0] = True
    mask[0, 2:4] = False  # row 0 sees nobody of group 1
    return own, ent, group, mask


def test_attention_weights_are_distributions_and_mask_what_is_out_of_view() -> None:
    torch.manual_seed(0)
    net = HGAT(own_dim=3, ent_dim=4, kinds=1, hidden=16)
    own, ent, group, mask = _hgat_inputs()
    kind = torch.zeros(6, dtype=torch.long)
    _, att = net(own, ent, kind, group, mask, 3)
    alpha, beta = att.inter_agent, att.inter_group  # [M, G, E], [M, G]
    member = (group.unsqueeze(1) == torch.arange(3).view(1, 3, 1)) & mask.unsqueeze(1)
    present = member.any(-1)
    # α: a distribution over the visible members of each non-empty group, exactly 0 elsewhere
    torch.testing.assert_close(alpha.sum(-1)[present], torch.ones(int(present.sum())))
    assert (alpha[~member] == 0).all() and (alpha >= 0).all()
    assert (alpha[0, 1] == 0).all()  # the empty group of row 0
    # β: a distribution over the non-empty groups; an empty group gets 0
    torch.testing.assert_close(beta.sum(-1), torch.ones(5))
    assert beta[0, 1] == 0 and (beta[~present] == 0).all()


def test_masked_softmax_of_an_all_masked_row_is_zero_with_finite_gradient() -> None:
    x = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, False], [False] * 4])
    w = masked_softmax(x, mask)
    assert (w[1] == 0).all() and float(w[0].sum().detach()) == pytest.approx(1.0)
    w.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_embedding_size_does_not_depend_on_the_number_of_agents() -> None:
    torch.manual_seed(0)
    net = HGAT(own_dim=3, ent_dim=4, kinds=1, hidden=16)
    for e in (2, 6, 40):
        own = torch.randn(7, 3)
        out, _ = net(
            own,
            torch.randn(7, e, 4),
            torch.zeros(e, dtype=torch.long),
            torch.zeros(7, e, dtype=torch.long),
            torch.ones(7, e, dtype=torch.bool),
            1,
        )
        assert out.shape == (7, 32)
    # one HAMA actor on 3 and on 50 agents of the game
    cfg = HAMAConfig(hidden=16)
    small = HAMA(SpreadEnv(3).spec, cfg, "cpu", 0, SpreadView(SpreadEnv(3).spec))
    env = SpreadEnv(50, num_envs=2)
    big = HAMA(env.spec, cfg, "cpu", 0, SpreadView(env.spec))
    big.actor.load_state_dict(small.actor.state_dict())
    act = big.act(env.reset(seed=1))
    assert act.discrete.shape == (2, 50)


def test_hgat_is_invariant_to_the_order_of_the_slots_within_a_group() -> None:
    torch.manual_seed(1)
    net = HGAT(own_dim=3, ent_dim=4, kinds=1, hidden=16)
    own, ent, group, mask = _hgat_inputs()
    kind = torch.zeros(6, dtype=torch.long)
    out, _ = net(own, ent, kind, group, mask, 3)
    perm = torch.tensor([1, 0, 3, 2, 5, 4])  # swap the two slots of each group
    out_p, _ = net(own, ent[:, perm], kind, group[:, perm], mask[:, perm], 3)
    torch.testing.assert_close(out, out_p)


def _graph_spec(n: int, groups: list[int], neighbors: list[list[int]]) -> AgentSpec:
    k = max(len(r) for r in neighbors)
    nb = torch.full((n, k), -1, dtype=torch.long)
    for i, r in enumerate(neighbors):
        nb[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return AgentSpec(
        n_agents=n,
        local_dim=3,
        forecast_len=0,
        forecast_dim=0,
        state_dim=1,
        global_dim=1,
        n_discrete=3,
        n_continuous=2,
        groups=torch.tensor(groups),
        neighbors=nb,
    )


def _obs(local: torch.Tensor) -> Observation:
    b, n, _ = local.shape
    return Observation(
        local=local,
        forecast=torch.zeros(b, n, 0, 0),
        state=torch.zeros(b, n, 1),
        global_=torch.zeros(b, 1),
        action_mask=torch.ones(b, n, 3, dtype=torch.bool),
    )


def test_permuting_agents_within_a_group_permutes_the_outputs() -> None:
    # 4 agents, groups [0, 0, 1, 1], everyone sees everyone: swapping agents 0 and 1 (same
    # group, same actor) maps the joint observation to itself with the two relabelled
    spec = _graph_spec(4, [0, 0, 1, 1], [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    ctrl = HAMA(spec, HAMAConfig(hidden=16), "cpu", 0)
    local = torch.randn(2, 4, 3)
    logits, pre, _ = ctrl._policy(_obs(local))
    perm = torch.tensor([1, 0, 2, 3])
    logits_p, pre_p, _ = ctrl._policy(_obs(local[:, perm]))
    torch.testing.assert_close(logits_p, logits[:, perm])
    torch.testing.assert_close(pre_p, pre[:, perm])
    assert not torch.allclose(logits[:, 0], logits[:, 2])  # two groups, two actors


def test_decentralised_execution_ignores_agents_out_of_view() -> None:
    # a path 0 - 1 - 2 - 3: agent 0 sees agent 1 only
    spec = _graph_spec(4, [0, 0, 0, 0], [[1], [0, 2], [1, 3], [2]])
    for cls in (HAMA, MADDPG):
        ctrl = cls(spec, HAMAConfig(hidden=16), "cpu", 0)
        local = torch.randn(1, 4, 3)
        base, pre, _ = ctrl._policy(_obs(local))
        far = local.clone()
        far[0, 3] += 5.0  # agent 3 changes: out of agent 0's view
        b2, p2, _ = ctrl._policy(_obs(far))
        torch.testing.assert_close(b2[:, 0], base[:, 0])
        torch.testing.assert_close(p2[:, :2], pre[:, :2])  # agents 0 and 1 do not see 3
        near = local.clone()
        near[0, 1] += 5.0  # agent 1 changes: in agent 0's view
        b3, _, _ = ctrl._policy(_obs(near))
        assert not torch.allclose(b3[:, 0], base[:, 0])


def test_gumbel_straight_through_gradient_on_a_toy() -> None:
    """Forward: an exact one-hot of the noisy argmax; backward: the soft sample's gradient
    with the same noise (∂(onehot · w)/∂logits = ∂(y · w)/∂logits)."""
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    logits = torch.tensor([0.2, 0.1, -0.3, 0.4], requires_grad=True)
    y_hard, k = gumbel_softmax_st(logits, None, 0.7, torch.Generator().manual_seed(5))
    assert torch.equal(y_hard.detach(), torch.nn.functional.one_hot(k, 4).float())
    (y_hard * w).sum().backward()
    grad_st = logits.grad.clone()
    logits.grad = None
    y_soft, _ = gumbel_softmax_st(logits, None, 0.7, torch.Generator().manual_seed(5), hard=False)
    (y_soft * w).sum().backward()
    torch.testing.assert_close(grad_st, logits.grad)
    assert grad_st.abs().sum() > 0
    # masked choices are never drawn
    mask = torch.tensor([True, False, True, False])
    gen = torch.Generator().manual_seed(0)
    draws = [int(gumbel_softmax_st(logits, mask, 1.0, gen)[1]) for _ in range(200)]
    assert set(draws) == {0, 2}


@pytest.mark.slow  # ~25 s on an idle core
def test_toy_with_a_known_optimum_is_learned() -> None:
    """ToyEnv: best reward 1 per agent-step (discrete k*, continuous ±0.6); γ = 0 (the reward
    does not depend on the future).  Random play earns about 0.5 − 0.67 = −0.2."""
    torch.manual_seed(0)
    cfg = HAMAConfig(
        num_envs=8,
        hidden=32,
        batch_size=64,
        buffer_size=4000,
        update_every=8,
        warmup_frac=0.02,
        lr_actor=3e-3,
        lr_critic=3e-3,
        gamma=0.0,
        tau=0.05,
    )
    env = ToyEnv(n_agents=2, num_envs=8, forecast_len=1)
    ctrl = HAMA(env.spec, cfg, "cpu", 0)
    ctrl.train(lambda b: env, budget=2 * 8 * 700)
    test = ToyEnv(n_agents=2, num_envs=64, forecast_len=1)
    obs = test.reset(seed=99)
    total, steps = 0.0, 0
    for _ in range(test.episode_len):
        step = test.step(ctrl.act(obs))
        total += float(step.reward.mean())
        steps += 1
        obs = step.obs
    assert total / steps > 0.95, f"mean reward {total / steps:.3f}, optimum 1.0"
    assert abs(TARGET_U[0]) == 0.6


def test_checkpoint_round_trip_and_refusals(tmp_path) -> None:
    env = SpreadEnv(3, num_envs=4)
    cfg = HAMAConfig(num_envs=4, hidden=8, batch_size=8, buffer_size=64, update_every=4)
    ctrl = HAMA(env.spec, cfg, "cpu", 3, SpreadView(env.spec))
    ctrl.train(lambda b: env, budget=3 * 4 * 6)
    path = tmp_path / "h.pt"
    ctrl.save(path)
    back = HAMA.from_checkpoint(path, env.spec, view=SpreadView(env.spec))
    obs = SpreadEnv(3, num_envs=2).reset(seed=4)
    torch.testing.assert_close(back.act(obs).discrete, ctrl.act(obs).discrete)
    assert back.progress() == ctrl.progress()
    # the same weights on 50 agents (size-free), not as a MADDPG checkpoint
    big = SpreadEnv(50, num_envs=1).spec
    HAMA.from_checkpoint(path, big, view=SpreadView(big))
    with pytest.raises(ScenarioError, match="not a MADDPG checkpoint"):
        MADDPG.from_checkpoint(path, env.spec, view=SpreadView(env.spec))
    with pytest.raises(ScenarioError, match="checkpoint structure"):
        HAMA.from_checkpoint(path, env.spec)  # the neighbour view, not the game's


@pytest.mark.slow
def test_train_checkpoint_simulate_round_trip_on_routing(tmp_path) -> None:
    from rich.console import Console

    from gridmarl.routing.simulate import simulate
    from gridmarl.train import train
    from tests.controllers.test_train_domains import tiny_routing

    opts = {"hidden": 8, "batch_size": 8, "buffer_size": 200, "update_every": 8}
    sc = tiny_routing(train={"steps": 400, "num_envs": 2, "options": opts})
    run = train(
        sc,
        controller="hama",
        device="cpu",
        steps=400,
        out=tmp_path,
        validate_every=10,
        console=Console(quiet=True),
    )
    ck = run / "checkpoints" / "last.pt"
    assert ck.exists() and ck.with_suffix(".json").exists()
    # resume continues from the checkpoint
    train(
        sc,
        controller="hama",
        device="cpu",
        steps=600,
        resume=run,
        validate_every=10,
        console=Console(quiet=True),
    )
    listed = tiny_routing(
        controllers=[
            {"name": "shortest_path_distance"},
            {"name": "hama", "label": "hama", "checkpoint": str(ck)},
        ]
    )
    from gridmarl.config import check_for_simulate

    check_for_simulate(listed)  # what `gridmarl validate` / `simulate` check first
    wrong = tiny_routing(controllers=[{"name": "maddpg", "checkpoint": str(ck)}])
    with pytest.raises(ScenarioError, match="not a MADDPG checkpoint"):
        check_for_simulate(wrong)
    res = simulate(listed)
    assert [c.name for c in res.controllers] == ["shortest_path_distance", "hama"]
    assert res.controllers[1].kpis["throughput_pkt"] > 0
    # attention export from the run's checkpoint
    from gridmarl.attention import export_attention
    from gridmarl.routing.simulate import load_topology, make_env

    env = make_env(sc, load_topology(sc))
    policy = HAMA.from_checkpoint(ck, env.spec)
    paths = export_attention(policy, env, 3, tmp_path / "att")
    import pandas as pd

    ia = pd.read_csv(paths[0])
    assert (ia.groupby(["agent", "group"])["weight"].sum() - 1).abs().max() < 1e-5
    assert paths[2].stat().st_size > 0
    # the same through the command line; a step past the episode is refused (exit 2)
    import sys

    import yaml

    from gridmarl.cli import main

    yml = tmp_path / "tiny.yaml"
    yml.write_text(yaml.safe_dump(sc.model_dump(mode="json", by_alias=True, exclude_none=True)))
    argv = ["gridmarl", "attention", str(yml), "--checkpoint", str(ck), "--step", "2"]
    sys_argv = sys.argv
    try:
        sys.argv = [*argv, "--out", str(tmp_path / "cli")]
        main()
        assert (tmp_path / "cli" / "attention_inter_group_step2.csv").exists()
        sys.argv = [*argv[:-1], "99", "--out", str(tmp_path / "cli")]
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
    finally:
        sys.argv = sys_argv
