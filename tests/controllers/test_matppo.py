"""MATPPO on the toy env: decentralised execution, critic symmetry, learning, determinism,
checkpoints."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gridmarl.config import ScenarioError
from gridmarl.controllers import registry
from gridmarl.controllers.common.warm_start import warm_start
from gridmarl.controllers.matppo import MATPPO, MATPPOConfig
from gridmarl.core.controller import Controller
from gridmarl.core.types import Action

from .toy_env import TARGET_U, ToyEnv

torch.set_num_threads(1)

SMALL = MATPPOConfig(
    num_envs=16,
    rollout_steps=8,
    epochs=4,
    minibatches=2,
    lr=3e-3,
    ent_coef=0.0,
    lstm_hidden=8,
    feat_dim=16,
    actor_hidden=32,
    critic_dim=16,
    critic_heads=2,
    critic_layers=1,
    value_target="team",
)


def _random_obs(env: ToyEnv, seed: int):
    obs = env.reset(seed=seed)
    g = torch.Generator().manual_seed(seed)
    return dataclasses.replace(
        obs,
        local=torch.randn(obs.local.shape, generator=g),
        forecast=torch.randn(obs.forecast.shape, generator=g),
        state=torch.randn(obs.state.shape, generator=g),
        global_=torch.randn(obs.global_.shape, generator=g),
    )


def _perturb_agent(obs, j: int):
    local, fc, state = obs.local.clone(), obs.forecast.clone(), obs.state.clone()
    local[:, j] += 5.0
    fc[:, j] -= 3.0
    state[:, j] *= -2.0
    mask = obs.action_mask.clone()
    mask[:, j, 0] = False
    return dataclasses.replace(
        obs, local=local, forecast=fc, state=state, global_=obs.global_ + 1.0, action_mask=mask
    )


def test_registry_lists_matppo_with_capabilities():
    info = registry.get("matppo")
    assert info.load_class() is MATPPO and info.load_config_class() is MATPPOConfig
    assert info.action_kinds == {"discrete", "continuous", "hybrid"}
    assert info.on_policy and not info.off_policy and not info.needs_graph
    assert info.action_mask and info.centralised_critic and info.size_free
    assert info.checkpoint_format == "gridmarl.matppo/1" and MATPPO.config_class is MATPPOConfig
    with pytest.raises(KeyError, match="registered: " + ", ".join(registry.names())):
        registry.get("nope")


def test_other_agents_observation_never_changes_this_agents_action():
    env = ToyEnv(n_agents=5, num_envs=3)
    ctrl = MATPPO(env.spec, SMALL, seed=0)
    # untrained output layers are tiny; make the policy depend strongly on its input
    with torch.no_grad():
        for p in ctrl.actor.parameters():
            p.mul_(20.0)
    obs = _random_obs(env, 1)
    other = _perturb_agent(obs, j=2)
    keep = [0, 1, 3, 4]
    a, b = ctrl.act(obs), ctrl.act(other)
    assert torch.equal(a.discrete[:, keep], b.discrete[:, keep])
    assert torch.equal(a.continuous[:, keep], b.continuous[:, keep])
    assert not torch.equal(a.continuous[:, 2], b.continuous[:, 2])  # the perturbation bites
    sa = ctrl.act(obs, deterministic=False, generator=torch.Generator().manual_seed(9))
    sb = ctrl.act(other, deterministic=False, generator=torch.Generator().manual_seed(9))
    assert torch.equal(sa.discrete[:, keep], sb.discrete[:, keep])
    assert torch.equal(sa.continuous[:, keep], sb.continuous[:, keep])


def test_actor_runs_on_other_numbers_of_agents():
    ctrl = MATPPO(ToyEnv(n_agents=4).spec, SMALL, seed=0)
    for n in (1, 7, 30):
        act = ctrl.act(ToyEnv(n_agents=n, num_envs=2).reset(seed=0))
        assert act.discrete.shape == (2, n) and act.continuous.shape == (2, n, 1)


def test_critic_value_invariant_to_agent_permutation():
    env = ToyEnv(n_agents=6, num_envs=4)
    ctrl = MATPPO(env.spec, SMALL, seed=0)
    obs = _random_obs(env, 2)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        v = ctrl.critic(obs.state, obs.global_)
        v_perm = ctrl.critic(obs.state[:, perm], obs.global_)
        v_other = ctrl.critic(obs.state.flip(-1), obs.global_)
    torch.testing.assert_close(v, v_perm, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(v, v_other)
    per_agent = MATPPO(env.spec, dataclasses.replace(SMALL, value_target="agent"), seed=0)
    with torch.no_grad():
        va = per_agent.critic(obs.state, obs.global_)
        va_perm = per_agent.critic(obs.state[:, perm], obs.global_)
    assert va.shape == (4, 6)
    torch.testing.assert_close(va[:, perm], va_perm, rtol=1e-5, atol=1e-6)


def _train(seed: int, budget: int, cfg: MATPPOConfig = SMALL, **env_kw):
    curve: list[float] = []

    class Log:
        def log(self, step, metrics):
            curve.append(metrics["train/reward_per_step"])

    ctrl = MATPPO(ToyEnv(**env_kw).spec, cfg, seed=seed)
    ctrl.train(lambda b: ToyEnv(num_envs=b, **env_kw), budget, Log())
    return ctrl, curve


@pytest.mark.slow
def test_learns_the_known_best_action():
    ctrl, curve = _train(seed=0, budget=16 * 8 * 2 * 100)
    obs = ToyEnv(num_envs=64).reset(seed=123)
    act = ctrl.act(obs)
    k = obs.local[..., :2].argmax(-1)
    u_star = torch.where(k == 0, TARGET_U[0], TARGET_U[1])
    assert (act.discrete == k).float().mean() >= 0.95
    assert (act.continuous[..., 0] - u_star).abs().mean() <= 0.15
    assert curve[-1] > curve[0] + 0.5  # reward per step per agent rose (max gain ≈ 1.4)


def test_same_seed_same_training_curve():
    _, a = _train(seed=5, budget=16 * 8 * 2 * 4)
    _, b = _train(seed=5, budget=16 * 8 * 2 * 4)
    _, c = _train(seed=6, budget=16 * 8 * 2 * 4)
    assert a == b
    assert a != c


@pytest.mark.parametrize(
    "env_kw",
    [
        {"forecast_len": 0},
        {"n_continuous": 0},
        {"n_discrete": 0},
    ],
)
def test_trains_without_forecast_or_one_action_part(env_kw):
    cfg = dataclasses.replace(SMALL, value_target="agent")
    ctrl, curve = _train(seed=0, budget=16 * 8 * 2 * 2, cfg=cfg, **env_kw)
    assert len(curve) == 2 and all(torch.isfinite(torch.tensor(curve)))
    act = ctrl.act(ToyEnv(**env_kw).reset(seed=0))
    assert act.continuous.shape[-1] == ToyEnv(**env_kw).spec.n_continuous


def test_checkpoint_round_trip_and_refusals(tmp_path):
    ctrl, _ = _train(seed=1, budget=16 * 8 * 2 * 2)
    ctrl.meta = {"policy_hash": "a" * 64}
    path = tmp_path / "ck.pt"
    ctrl.save(path)
    assert path.with_suffix(".json").exists()
    obs = _random_obs(ToyEnv(), 4)
    back = MATPPO.from_checkpoint(path, ToyEnv().spec, scenario_hash="a" * 64)
    assert back.agent_steps == ctrl.agent_steps and back.updates == ctrl.updates
    for x, y in zip(ctrl.act(obs).continuous, back.act(obs).continuous, strict=True):
        assert torch.equal(x, y)
    for k, v in ctrl.actor.state_dict().items():
        assert torch.equal(v, back.actor.state_dict()[k])
    # a checkpoint written before an option existed loads with that option's default
    old = torch.load(path, weights_only=True)
    del old["config"]["bootstrap_time_limit"]
    torch.save(old, tmp_path / "old.pt")
    aged = MATPPO.from_checkpoint(tmp_path / "old.pt", ToyEnv().spec)
    assert aged.cfg == ctrl.cfg
    assert torch.equal(aged.act(obs).continuous, ctrl.act(obs).continuous)
    # resume continues exactly: same next update on both
    _, after = _continue(ctrl), _continue(back)
    assert _ == after
    with pytest.raises(ScenarioError, match="local_dim=3 in the checkpoint but 4"):
        MATPPO.from_checkpoint(path, dataclasses.replace(ToyEnv().spec, local_dim=4))
    trained_len = ToyEnv().spec.forecast_len
    with pytest.raises(ScenarioError, match=f"forecast_len={trained_len} steps in the checkpoint"):
        MATPPO.from_checkpoint(
            path, dataclasses.replace(ToyEnv().spec, forecast_len=trained_len + 1)
        )
    with pytest.raises(ScenarioError, match=r"action_prior=\[\] .* in the checkpoint but \[2\]"):
        MATPPO.from_checkpoint(path, dataclasses.replace(ToyEnv().spec, action_prior=(2,)))
    with pytest.raises(ScenarioError, match="different scenario"):
        MATPPO.from_checkpoint(path, ToyEnv().spec, scenario_hash="b" * 64)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ScenarioError, match="not a readable checkpoint"):
        MATPPO.from_checkpoint(tmp_path / "junk.pt", ToyEnv().spec)


def test_checkpoint_refuses_other_local_features_of_the_same_count(tmp_path):
    """Energy options add one local feature each: a policy trained with one must not run on an
    env with another (same local_dim, other meaning); checkpoints without names still load."""
    from gridmarl.energy.env import CommunityEnv
    from tests.energy.conftest import make_community

    c = make_community(n=4, days=2)
    rate = CommunityEnv(dataclasses.replace(c, ev_rate_feature=True), episode_steps=24).spec
    loading = CommunityEnv(dataclasses.replace(c, broadcast_loading=True), episode_steps=24).spec
    assert rate.local_dim == loading.local_dim and rate.local_features != loading.local_features
    path = tmp_path / "rate.pt"
    MATPPO(rate, SMALL, seed=0).save(path)
    assert MATPPO.from_checkpoint(path, rate).spec.local_features == rate.local_features
    with pytest.raises(
        ScenarioError,
        match=r"local features differ: the env adds \['grid_loading_prev'\] and lacks "
        r"\['ev_rate_needed'\]",
    ):
        MATPPO.from_checkpoint(path, loading)
    old = torch.load(path, weights_only=True)
    del old["local_features"]  # written before the names were recorded
    torch.save(old, tmp_path / "old.pt")
    MATPPO.from_checkpoint(tmp_path / "old.pt", loading)


def _continue(ctrl: MATPPO) -> list[float]:
    out: list[float] = []

    class Log:
        def log(self, step, metrics):
            out.append(metrics["loss/value"])

    ctrl.train(lambda b: ToyEnv(num_envs=b), ctrl.agent_steps + 16 * 8 * 2, Log())
    return out


class _BestAction(Controller):
    """The toy env's known best action (a teacher for the warm start)."""

    def act(self, obs, deterministic=True):
        k = obs.local[..., :2].argmax(-1)
        u = torch.where(k == 0, TARGET_U[0], TARGET_U[1]).unsqueeze(-1)
        return Action(discrete=k, continuous=u)


def test_warm_start_clones_the_teacher():
    ctrl = MATPPO(ToyEnv().spec, SMALL, seed=0)
    out = warm_start(
        ctrl, ToyEnv(num_envs=64, episode_len=8), _BestAction(), epochs=30, minibatch=256, lr=3e-3
    )
    obs = ToyEnv(num_envs=64).reset(seed=99)
    act, want = ctrl.act(obs), _BestAction().act(obs)
    assert (act.discrete == want.discrete).float().mean() >= 0.95
    assert (act.continuous - want.continuous).abs().mean() <= 0.1
    assert out["warm/teacher_return"] == pytest.approx(2 * 8 * 1.0)  # N × T × max reward
    assert out["warm/gradient_steps"] == 30 * (64 * 8 * 2 // 256)  # epochs × minibatches


def test_residual_policy_adds_the_envs_default_action_to_its_mean():
    """With ``spec.action_prior`` naming local feature 2, the Gaussian mean is that feature plus
    the head's output, agent by agent; a silent head acts the prior itself (clipped)."""
    env = ToyEnv(n_agents=3)
    spec = dataclasses.replace(env.spec, action_prior=(2,))
    plain, residual = MATPPO(env.spec, SMALL, seed=5), MATPPO(spec, SMALL, seed=5)
    obs = _random_obs(env, 6)
    prior = obs.local[..., 2].reshape(-1, 1)
    assert torch.allclose(residual._dist(obs).mean, plain._dist(obs).mean + prior)
    with torch.no_grad():
        residual.actor.mean.weight.zero_()
        residual.actor.mean.bias.zero_()
    u = residual.act(obs).continuous[..., 0]
    assert torch.equal(u, obs.local[..., 2].clamp(-1, 1))
    with pytest.raises(ValueError, match="action_prior must name a local feature"):
        dataclasses.replace(env.spec, action_prior=(3,))


@pytest.mark.parametrize("keep_prior", [False, True])
def test_warm_start_keeps_the_envs_default_action_when_asked(keep_prior):
    """On an env whose continuous action has a default (local feature 2), the warm start clones
    the teacher, or with ``keep_prior`` that default, on that dimension; the discrete choice is
    the teacher's either way."""

    def prior_env(**kw) -> ToyEnv:
        env = ToyEnv(**kw)
        env.spec = dataclasses.replace(env.spec, action_prior=(2,))
        return env

    ctrl = MATPPO(prior_env().spec, SMALL, seed=0)
    warm_start(
        ctrl,
        prior_env(num_envs=64, episode_len=8),
        _BestAction(),
        epochs=30,
        minibatch=256,
        lr=3e-3,
        keep_prior=keep_prior,
    )
    obs = prior_env(num_envs=64).reset(seed=99)
    act, teacher = ctrl.act(obs), _BestAction().act(obs)
    want = obs.local[..., 2:3] if keep_prior else teacher.continuous
    assert (act.discrete == teacher.discrete).float().mean() >= 0.95
    assert (act.continuous - want).abs().mean() <= 0.05
    assert (teacher.continuous - obs.local[..., 2:3]).abs().mean() >= 0.3  # the two differ


def test_log_std_ceiling_falls_linearly_over_the_budget():
    """``log_std_final`` caps log σ by a ceiling falling from ``init_log_std`` to it: before the
    last of 10 updates the ceiling is init + (final − init) · 9/10, and log σ is at or below it
    (without the option, log σ stays near its start)."""
    per_update, updates = 16 * 8 * 2, 10
    capped = dataclasses.replace(SMALL, init_log_std=-0.5, log_std_final=-2.5)
    free = dataclasses.replace(SMALL, init_log_std=-0.5)
    ctrl, _ = _train(seed=0, budget=per_update * updates, cfg=capped)
    ceiling = -0.5 + (-2.5 + 0.5) * (updates - 1) / updates
    # one update after the last clamp can move it by at most lr × a few Adam steps
    assert float(ctrl.actor.log_std.detach().max()) <= ceiling + 0.05
    ref, _ = _train(seed=0, budget=per_update * updates, cfg=free)
    assert float(ref.actor.log_std.detach().min()) > ceiling + 0.5
