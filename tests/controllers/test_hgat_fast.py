"""The HGAT forward against a literal per-agent, per-slot evaluation of the seed's equations
([HAMA] Ryu et al. 2020, "State Representation Using HGAT"), with the same weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gridmarl.controllers.common.hgat import HGAT, kind_runs
from gridmarl.controllers.hama import HAMA, HAMAConfig
from gridmarl.core.types import AgentSpec, Observation


def reference_hgat(
    net: HGAT,
    own: torch.Tensor,
    ent: torch.Tensor,
    kind: torch.Tensor,
    group: torch.Tensor,
    mask: torch.Tensor,
    n_groups: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[s_i, h_i]``, α and β, one agent, one group and one slot at a time, each MLP fed the
    concatenated input as the seed writes it."""
    m, e = ent.shape[:2]
    out, alphas, betas = [], [], []
    for i in range(m):
        s = F.relu(net.f_self(own[i]))
        emb = [F.relu(net.f_emb[int(kind[j])](torch.cat([own[i], ent[i, j]]))) for j in range(e)]
        logit = [net.f_att[int(kind[j])](torch.cat([s, emb[j]]))[0] for j in range(e)]
        h_g, alpha = [], torch.zeros(n_groups, e, dtype=own.dtype)
        for g in range(n_groups):
            seen = [j for j in range(e) if int(group[i, j]) == g and bool(mask[i, j])]
            if not seen:
                h_g.append(None)
                continue
            w = torch.softmax(torch.stack([logit[j] for j in seen]), 0)
            alpha[g, seen] = w
            h_g.append(sum(w[n] * emb[j] for n, j in enumerate(seen)))
        groups = [g for g in range(n_groups) if h_g[g] is not None]
        b = torch.softmax(torch.stack([net.f_gatt(torch.cat([s, h_g[g]]))[0] for g in groups]), 0)
        beta = torch.zeros(n_groups, dtype=own.dtype)
        beta[groups] = b
        h = sum(b[n] * h_g[g] for n, g in enumerate(groups))
        out.append(torch.cat([s, h]))
        alphas.append(alpha)
        betas.append(beta)
    return torch.stack(out), torch.stack(alphas), torch.stack(betas)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind_list", [[0] * 7, [0, 0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 0, 1, 1]])
def test_hgat_equals_the_per_agent_reference(dtype: torch.dtype, kind_list: list[int]) -> None:
    torch.manual_seed(0)
    kinds = max(kind_list) + 1
    net = HGAT(own_dim=5, ent_dim=3, kinds=kinds, hidden=64).to(dtype)
    g = torch.Generator().manual_seed(1)
    m, e, n_groups = 9, len(kind_list), 3
    own = torch.randn(m, 5, generator=g, dtype=dtype)
    ent = torch.randn(m, e, 3, generator=g, dtype=dtype)
    kind = torch.tensor(kind_list)
    group = torch.randint(0, n_groups, (m, e), generator=g)
    mask = torch.rand(m, e, generator=g) > 0.3
    mask[:, 0] = True
    mask[2] = False
    mask[2, 0] = True  # row 2 sees only slot 0
    with torch.no_grad():
        out, att = net(own, ent, kind, group, mask, n_groups)
        ref, alpha, beta = reference_hgat(net, own, ent, kind, group, mask, n_groups)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, ref, atol=tol, rtol=0)
    torch.testing.assert_close(att.inter_agent, alpha, atol=tol, rtol=0)
    torch.testing.assert_close(att.inter_group, beta, atol=tol, rtol=0)


def test_kind_runs_are_the_slices_of_equal_kinds() -> None:
    assert kind_runs(torch.tensor([0, 0, 1, 1, 1])) == [(0, 0, 2), (1, 2, 5)]
    assert kind_runs(torch.tensor([1, 0, 0, 1])) == [(1, 0, 1), (0, 1, 3), (1, 3, 4)]
    assert kind_runs(torch.tensor([2])) == [(2, 0, 1)]


def _spec_and_obs(
    groups: list[int], nb: torch.Tensor, forecast: tuple[int, int], b: int
) -> tuple[AgentSpec, Observation]:
    """A spec with 4 local features, 3 modes and 2 continuous actions over ``groups`` and the
    neighbour table ``nb``, and a random observation of ``b`` envs (``forecast``: length, dim)."""
    n, (h, f) = len(groups), forecast
    spec = AgentSpec(
        n_agents=n,
        local_dim=4,
        forecast_len=h,
        forecast_dim=f,
        state_dim=1,
        global_dim=1,
        n_discrete=3,
        n_continuous=2,
        groups=torch.tensor(groups),
        neighbors=nb,
    )
    obs = Observation(
        local=torch.randn(b, n, 4),
        forecast=torch.randn(b, n, h, f),
        state=torch.zeros(b, n, 1),
        global_=torch.zeros(b, 1),
        action_mask=torch.ones(b, n, 3, dtype=torch.bool),
    )
    return spec, obs


def test_grouped_actor_equals_each_group_on_its_own_agents() -> None:
    """``GroupNets`` with agents of three policy groups interleaved: each agent's output is
    its own group's encoder and head applied to its view alone."""
    n = 7
    nb = torch.tensor([[(i + 1) % n, (i + 3) % n, -1] for i in range(n)])
    spec, obs = _spec_and_obs([2, 0, 1, 0, 2, 1, 0], nb, forecast=(0, 0), b=3)
    ctrl = HAMA(spec, HAMAConfig(hidden=16), "cpu", 0)
    with torch.no_grad():
        view = ctrl.view(obs)
        out, att = ctrl.actor(view, ctrl.view.policy_groups)
        for i in range(n):
            gi = int(spec.groups[i])
            z, a = ctrl.actor.encoders[gi](
                view.own[:, i],
                view.entities[:, i],
                view.kind,
                view.group[:, i],
                view.mask[:, i],
                view.n_groups,
            )
            torch.testing.assert_close(out[:, i], ctrl.actor.heads[gi](z), atol=1e-6, rtol=0)
            torch.testing.assert_close(att.inter_agent[:, i], a.inter_agent, atol=1e-6, rtol=0)
            torch.testing.assert_close(att.inter_group[:, i], a.inter_group, atol=1e-6, rtol=0)


def test_decision_time_stacks_the_groups_with_the_same_result() -> None:
    """At decision time (inference mode) the three groups' actors run as one batched matmul
    per layer over agents padded to the largest group; outputs equal the per-group loop."""
    n = 8
    nb = torch.tensor([[(i + 1) % n, (i + 2) % n, (i + 5) % n] for i in range(n)])
    nb[3, 2] = -1  # one agent sees fewer
    # group sizes 3, 3, 2: padded to 3
    spec, obs = _spec_and_obs([1, 0, 2, 0, 1, 2, 0, 1], nb, forecast=(2, 1), b=2)
    ctrl = HAMA(spec, HAMAConfig(hidden=32), "cpu", 0)
    assert ctrl.actor._can_stack(ctrl.view.policy_groups)
    with torch.no_grad():
        ref, ref_att = ctrl.actor(ctrl.view(obs), ctrl.view.policy_groups)
    with torch.inference_mode():
        out, att = ctrl.actor(ctrl.view(obs), ctrl.view.policy_groups)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(att.inter_agent, ref_att.inter_agent, atol=1e-6, rtol=0)
    torch.testing.assert_close(att.inter_group, ref_att.inter_group, atol=1e-6, rtol=0)
    # the stacked weights follow a weight update
    with torch.no_grad():
        ctrl.actor.heads[2][0].bias.add_(1.0)
        ref2, _ = ctrl.actor(ctrl.view(obs), ctrl.view.policy_groups)
    with torch.inference_mode():
        out2, _ = ctrl.actor(ctrl.view(obs), ctrl.view.policy_groups)
    torch.testing.assert_close(out2, ref2, atol=1e-6, rtol=0)
    assert not torch.allclose(out2, out)
