"""Closed-form checks of the shared controller pieces: GAE, the hybrid distribution, the
normalisers."""

from __future__ import annotations

import math

import torch

from gridmarl.controllers.common.distributions import HybridDistribution
from gridmarl.controllers.common.gae import compute_gae
from gridmarl.controllers.common.normalizers import RunningMeanStd


def textbook_gae(rewards, values, dones, last_value, gamma, lam):
    """Â_t = Σ_l (γλ)^l δ_{t+l}, summed explicitly, stopping at an episode end."""
    t_len = len(rewards)
    adv = []
    for t in range(t_len):
        total, discount = 0.0, 1.0
        for k in range(t, t_len):
            next_v = last_value if k == t_len - 1 else values[k + 1]
            delta = rewards[k] + gamma * next_v * (1 - dones[k]) - values[k]
            total += discount * delta
            if dones[k]:
                break
            discount *= gamma * lam
        adv.append(total)
    return adv


def test_gae_matches_textbook_sum():
    g = torch.Generator().manual_seed(0)
    t_len, b = 9, 5
    rewards = torch.randn(t_len, b, generator=g, dtype=torch.float64)
    values = torch.randn(t_len, b, generator=g, dtype=torch.float64)
    dones = torch.rand(t_len, b, generator=g) < 0.2
    last = torch.randn(b, generator=g, dtype=torch.float64)
    adv, ret = compute_gae(rewards, values, dones, last, 0.97, 0.9)
    for j in range(b):
        want = textbook_gae(
            rewards[:, j].tolist(),
            values[:, j].tolist(),
            dones[:, j].int().tolist(),
            float(last[j]),
            0.97,
            0.9,
        )
        torch.testing.assert_close(adv[:, j], torch.tensor(want, dtype=torch.float64))
    torch.testing.assert_close(ret, adv + values)


def test_gae_constant_value_closed_form():
    # r = 1, V = 0 everywhere, no episode end, bootstrap 0: Â_t = Σ_{l<T−t} (γλ)^l
    t_len, gamma, lam = 6, 0.9, 0.8
    adv, _ = compute_gae(
        torch.ones(t_len, 1),
        torch.zeros(t_len, 1),
        torch.zeros(t_len, 1),
        torch.zeros(1),
        gamma,
        lam,
    )
    x = gamma * lam
    want = torch.tensor([(1 - x ** (t_len - t)) / (1 - x) for t in range(t_len)]).unsqueeze(1)
    torch.testing.assert_close(adv, want)


def test_hybrid_log_prob_and_entropy_by_hand():
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    mask = torch.tensor([[True, True, False]])
    mean = torch.tensor([[0.3, -0.2]])
    log_std = torch.tensor([-0.5, 0.1])
    dist = HybridDistribution(logits, mask, mean, log_std)
    k, u = torch.tensor([1]), torch.tensor([[0.1, 0.4]])
    z = math.exp(1.0) + math.exp(2.0)  # the masked logit drops out
    p = [math.exp(1.0) / z, math.exp(2.0) / z]
    lp_cat = math.log(p[1])
    lp_gauss = 0.0
    ent_gauss = 0.0
    for m, ls, x in zip([0.3, -0.2], [-0.5, 0.1], [0.1, 0.4], strict=True):
        s = math.exp(ls)
        lp_gauss += -((x - m) ** 2) / (2 * s * s) - math.log(s) - 0.5 * math.log(2 * math.pi)
        ent_gauss += 0.5 * math.log(2 * math.pi * math.e * s * s)
    ent_cat = -sum(q * math.log(q) for q in p)
    assert math.isclose(float(dist.log_prob(k, u)), lp_cat + lp_gauss, rel_tol=1e-6)
    assert math.isclose(float(dist.entropy()), ent_cat + ent_gauss, rel_tol=1e-6)


def test_hybrid_without_one_part():
    d_only = HybridDistribution(torch.zeros(4, 3), None, torch.zeros(4, 0), torch.zeros(0))
    assert torch.allclose(d_only.entropy(), torch.full((4,), math.log(3)))
    k, u = d_only.sample(torch.Generator().manual_seed(1))
    assert u.shape == (4, 0) and k.shape == (4,)
    assert torch.allclose(d_only.log_prob(k, u), torch.full((4,), -math.log(3)))
    c_only = HybridDistribution(torch.zeros(4, 0), None, torch.zeros(4, 2), torch.zeros(2))
    k, u = c_only.sample(torch.Generator().manual_seed(1))
    assert (k == 0).all() and u.shape == (4, 2)
    assert torch.allclose(c_only.entropy(), torch.full((4,), math.log(2 * math.pi * math.e)))


def test_masked_categorical_never_samples_masked():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(20000, 5, generator=g) * 3
    logits[:, 4] = 50.0  # the favourite is masked
    mask = torch.rand(20000, 5, generator=g) < 0.5
    mask[:, 4] = False
    mask[torch.arange(20000), torch.randint(0, 4, (20000,), generator=g)] = True
    dist = HybridDistribution(logits, mask, torch.zeros(20000, 0), torch.zeros(0))
    for _ in range(5):
        k, _ = dist.sample(g)
        assert mask[torch.arange(20000), k].all()
    assert mask[torch.arange(20000), dist.mode()[0]].all()
    assert torch.isfinite(dist.entropy()).all()


def test_running_mean_std_matches_batch_statistics():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 30, 3, generator=g) * 4 + 2
    rms = RunningMeanStd((3,))
    for chunk in x.chunk(4):
        rms.update(chunk)
    flat = x.reshape(-1, 3).double()
    torch.testing.assert_close(rms.mean, flat.mean(0))
    torch.testing.assert_close(rms.var, flat.var(0, unbiased=False))


def test_time_limit_bootstrap_adds_the_final_value_to_the_last_step_only():
    """collect_rollout's truncation_value: the last step of each episode stores r + γ V(s_T),
    computed on the observation after that step (before the reset); other steps store r."""
    from gridmarl.controllers.common.buffer import RolloutBuffer
    from gridmarl.controllers.common.rollout import collect_rollout
    from gridmarl.core.types import Observation
    from tests.controllers.toy_env import ToyEnv

    def run(truncation_value):
        env = ToyEnv(n_agents=3, num_envs=2, episode_len=4)
        buf = RolloutBuffer(env.spec, 10, 2, 3, torch.device("cpu"))
        zeros = torch.zeros(2, 3)
        seen: list[Observation] = []

        def policy(obs):
            return zeros.long(), zeros.unsqueeze(-1), zeros, zeros

        def tail(obs):
            seen.append(obs)
            return 0.5 * (1.0 + obs.local[..., 0])  # [B, N], depends on the final obs

        seeds = iter(range(100))
        obs = env.reset(seed=3)
        run_ret = torch.zeros(2)
        collect_rollout(
            env,
            obs,
            buf,
            policy,
            False,
            2.0,
            run_ret,
            lambda: next(seeds),
            tail if truncation_value else None,
        )
        return buf.rewards.clone(), buf.dones.clone(), seen

    plain, dones, _ = run(False)
    boot, dones2, seen = run(True)
    assert torch.equal(dones, dones2)
    ends = dones.bool().any(-1) if dones.dim() == 3 else dones.bool()
    assert ends.any(-1).tolist() == [False, False, False, True] * 2 + [False, False]
    assert len(seen) == 2  # once per episode end, on the final observation
    for k, t in enumerate([3, 7]):
        want = plain[t] + 0.5 * (1.0 + seen[k].local[..., 0])
        assert torch.allclose(boot[t], want)
    other = [t for t in range(10) if t not in (3, 7)]
    assert torch.equal(boot[other], plain[other])
