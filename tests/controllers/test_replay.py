"""The [B, N] replay buffer: wraparound, agent alignment, exact resume, seeded sampling, memory."""

from __future__ import annotations

import io

import pytest
import torch

from gridmarl.controllers.common.replay import ReplayBuffer
from gridmarl.core.types import Action, AgentSpec, Observation, Step

N, K = 3, 2


def _spec(n_discrete: int = 3) -> AgentSpec:
    return AgentSpec(
        n_agents=N,
        local_dim=2,
        forecast_len=2,
        forecast_dim=1,
        state_dim=2,
        global_dim=1,
        n_discrete=n_discrete,
        n_continuous=1,
        groups=torch.zeros(N, dtype=torch.long),
        neighbors=torch.full((N, 1), -1, dtype=torch.long),
    )


def _obs(ids: torch.Tensor, masked: bool = True) -> Observation:
    """Env-step ``ids [B]``: agent n of row b carries ``ids[b] * 10 + n`` in every feature."""
    b = ids.shape[0]
    v = ids[:, None].float() * 10 + torch.arange(N).float()  # [B, N]
    mask = None
    if masked:
        mask = torch.ones(b, N, 3, dtype=torch.bool)
        mask[..., 2] = (ids % 2 == 0)[:, None]  # mode 2 allowed on even ids only
    return Observation(
        local=v[..., None].expand(b, N, 2).clone(),
        forecast=v[..., None, None].expand(b, N, 2, 1).clone(),
        state=-v[..., None].expand(b, N, 2).clone(),
        global_=ids[:, None].float(),
        action_mask=mask,
    )


def _transition(ids: torch.Tensor, masked: bool = True):
    """``(obs, action, step, extras)`` of env-steps ``ids [B]``; the next observation is that of
    ``ids + 1000`` and every field is a function of (id, agent)."""
    b = ids.shape[0]
    v = ids[:, None].float() * 10 + torch.arange(N).float()
    obs = _obs(ids, masked)
    action = Action(discrete=(v.long() % 3), continuous=(v / 1e4)[..., None])
    step = Step(
        obs=_obs(ids + 1000, masked),
        reward=v + 0.5,
        team_reward=(v + 0.5).sum(1),
        terminated=ids % 3 == 0,
        truncated=ids % 5 == 0,
    )
    extras = {"share": v[..., None].expand(b, N, K) + torch.arange(K).float() / 10}
    return obs, action, step, extras


def _fill(buf: ReplayBuffer, start: int, adds: int, b: int) -> None:
    for a in range(adds):
        ids = torch.arange(start + a * b, start + (a + 1) * b)
        buf.add(*_transition(ids))


def _ids(buf: ReplayBuffer) -> list[int]:
    """Env-step id of each stored row, in storage order."""
    return buf.rows(torch.arange(len(buf))).obs.global_[:, 0].long().tolist()


def test_ring_wraps_around_and_keeps_the_newest_rows() -> None:
    buf = ReplayBuffer(_spec(), capacity=5, extras={"share": (K,)})
    _fill(buf, 0, 2, 2)  # ids 0-3
    assert len(buf) == 4 and buf.ptr == 4 and _ids(buf) == [0, 1, 2, 3]
    _fill(buf, 4, 1, 2)  # ids 4, 5: id 5 overwrites row 0
    assert len(buf) == 5 and buf.ptr == 1 and _ids(buf) == [5, 1, 2, 3, 4]
    _fill(buf, 6, 2, 2)  # ids 6-9
    assert len(buf) == 5 and buf.ptr == 0 and _ids(buf) == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="capacity"):
        buf.add(*_transition(torch.arange(6)))


def test_kept_rows_are_never_overwritten() -> None:
    buf = ReplayBuffer(_spec(), capacity=7, extras={"share": (K,)})
    _fill(buf, 0, 1, 3)  # ids 0-2: the kept rows (demonstrations)
    buf.keep_first(3)
    _fill(buf, 3, 2, 2)  # ids 3-6 fill rows 3-6
    assert len(buf) == 7 and buf.ptr == 3 and _ids(buf) == [0, 1, 2, 3, 4, 5, 6]
    _fill(buf, 7, 3, 2)  # ids 7-12 cycle through rows 3-6 only
    assert _ids(buf) == [0, 1, 2, 11, 12, 9, 10] and buf.ptr == 5
    with pytest.raises(ValueError, match="kept"):
        buf.add(*_transition(torch.arange(5)))  # more rows than the ring's 4
    restored = ReplayBuffer(_spec(), capacity=7, extras={"share": (K,)})
    restored.load_state_dict(buf.state_dict())
    _fill(restored, 13, 1, 2)
    assert _ids(restored)[:3] == [0, 1, 2] and restored.kept == 3


def test_keep_first_needs_the_unwrapped_rows_of_an_empty_buffer() -> None:
    buf = ReplayBuffer(_spec(), capacity=4, extras={"share": (K,)})
    _fill(buf, 0, 1, 2)
    with pytest.raises(ValueError, match="exactly 3 rows"):
        buf.keep_first(3)
    _fill(buf, 2, 1, 2)
    with pytest.raises(ValueError, match="no room"):
        buf.keep_first(4)


def test_sampled_rows_hold_every_agent_at_the_same_step() -> None:
    buf = ReplayBuffer(_spec(), capacity=64, extras={"share": (K,)})
    _fill(buf, 0, 30, 4)  # 120 rows through 64 slots
    batch = buf.sample(256, torch.Generator().manual_seed(0))
    ids = batch.obs.global_[:, 0].long()  # [M]
    assert set(ids.tolist()) <= set(range(56, 120))
    # every stored field of every sampled row is its own (id, agent)'s, for all agents together
    obs, action, step, extras = _transition(ids)
    for name in ("local", "forecast", "state", "global_", "action_mask"):
        assert torch.equal(getattr(batch.obs, name), getattr(obs, name)), name
        assert torch.equal(getattr(batch.next_obs, name), getattr(step.obs, name)), name
    assert torch.equal(batch.action.discrete, action.discrete)
    assert torch.equal(batch.action.continuous, action.continuous)
    assert torch.equal(batch.reward, step.reward)
    assert torch.equal(batch.team_reward, step.team_reward)
    assert torch.equal(batch.terminated, step.terminated)
    assert torch.equal(batch.truncated, step.truncated)
    assert torch.equal(batch.done, step.done)
    assert torch.equal(batch.extras["share"], extras["share"])
    assert batch.obs.local.shape == (256, N, 2) and batch.extras["share"].shape == (256, N, K)


def test_missing_mask_is_stored_as_all_allowed_and_extras_are_checked() -> None:
    buf = ReplayBuffer(_spec(), capacity=4, extras={"share": (K,)})
    obs, action, step, extras = _transition(torch.arange(2), masked=False)
    buf.add(obs, action, step, extras)
    assert bool(buf.rows(torch.arange(2)).obs.action_mask.all())
    with pytest.raises(ValueError, match="extras"):
        buf.add(obs, action, step)
    with pytest.raises(ValueError, match="reward"):
        buf.add(obs, action, Step(step.obs, step.reward[:, :2], *_rest(step)), extras)
    no_disc = ReplayBuffer(_spec(n_discrete=0), capacity=4)
    no_disc.add(obs, action, step)
    assert no_disc.rows(torch.arange(1)).obs.action_mask is None


def _rest(step: Step):
    return step.team_reward, step.terminated, step.truncated


def test_seeded_sampling_is_reproducible() -> None:
    buf = ReplayBuffer(_spec(), capacity=100, extras={"share": (K,)})
    _fill(buf, 0, 10, 5)
    a = buf.sample(64, torch.Generator().manual_seed(11)).obs.global_
    b = buf.sample(64, torch.Generator().manual_seed(11)).obs.global_
    c = buf.sample(64, torch.Generator().manual_seed(12)).obs.global_
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(_spec(), capacity=3).sample(1, torch.Generator())


def test_state_dict_resumes_exactly() -> None:
    """Save mid-run (wrapped), load into a fresh buffer, go on: same rows, same samples."""
    a = ReplayBuffer(_spec(), capacity=16, extras={"share": (K,)})
    _fill(a, 0, 5, 4)  # 20 rows: wrapped, ptr 4
    f = io.BytesIO()
    torch.save(a.state_dict(), f)
    f.seek(0)
    b = ReplayBuffer(_spec(), capacity=16, extras={"share": (K,)})
    b.load_state_dict(torch.load(f, weights_only=True))
    assert (b.ptr, len(b)) == (a.ptr, len(a)) == (4, 16)
    for buf in (a, b):
        _fill(buf, 20, 3, 4)
    ga, gb = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(3):
        sa, sb = a.sample(32, ga), b.sample(32, gb)
        for x, y in zip(_flat(sa), _flat(sb), strict=True):
            assert torch.equal(x, y)
    # a partly filled buffer stores only its rows and resumes as well
    c = ReplayBuffer(_spec(), capacity=16, extras={"share": (K,)})
    _fill(c, 0, 1, 4)
    assert c.state_dict()["rows"]["reward"].shape[0] == 4
    d = ReplayBuffer(_spec(), capacity=16, extras={"share": (K,)})
    d.load_state_dict(c.state_dict())
    assert _ids(d) == [0, 1, 2, 3] and d.ptr == 4
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(_spec(), capacity=8, extras={"share": (K,)}).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="stores"):
        ReplayBuffer(_spec(), capacity=16).load_state_dict(a.state_dict())


def _flat(t) -> list[torch.Tensor]:
    out = [getattr(o, n) for o in (t.obs, t.next_obs) for n in ("local", "forecast", "state")]
    out += [t.action.discrete, t.action.continuous, t.reward, t.team_reward, t.terminated]
    return [*out, t.truncated, t.obs.action_mask, t.extras["share"]]


def test_memory_footprint_matches_the_stated_formula() -> None:
    """Per row: N·(2·(local + H·f + state) + n_continuous + reward + extras) + 2·global_dim
    + team reward floats, N int64 actions, 2·N·n_discrete mask bools and 2 flag bools."""
    cap = 10
    buf = ReplayBuffer(_spec(), capacity=cap, extras={"share": (K,)})
    floats = N * (2 * (2 + 2 * 1 + 2) + 1 + 1 + K) + 2 * 1 + 1  # 3·16 + 3 = 51
    row = floats * 4 + N * 8 + 2 * N * 3 + 2  # 204 + 24 + 18 + 2 = 248 bytes
    assert row == 248
    assert buf.nbytes == cap * row
    assert ReplayBuffer(_spec(), capacity=cap, dtype=torch.float64).nbytes == cap * (
        (floats - N * K) * 8 + N * 8 + 2 * N * 3 + 2
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rows_live_and_are_sampled_on_the_device() -> None:
    buf = ReplayBuffer(_spec(), capacity=32, device="cuda", extras={"share": (K,)})
    _fill(buf, 0, 10, 4)
    g_cpu = torch.Generator().manual_seed(5)
    g_dev = torch.Generator(device="cuda").manual_seed(5)
    for g in (g_cpu, g_dev):
        batch = buf.sample(16, g)
        assert batch.obs.local.is_cuda and batch.extras["share"].is_cuda
        ids = batch.obs.global_[:, 0].long().cpu()
        assert torch.equal(batch.reward.cpu(), _transition(ids)[2].reward)


def test_pair_features_are_stored_with_both_observations() -> None:
    from dataclasses import replace

    spec = replace(_spec(), pair_dim=2)
    buf = ReplayBuffer(spec, capacity=8, extras={"share": (K,)})

    def with_pair(o: Observation) -> Observation:
        ids = o.global_[:, 0]  # [B]
        p = ids[:, None, None, None] + torch.arange(3 * 2).float().view(1, 1, 3, 2) / 10
        return replace(o, pair=p.expand(o.local.shape[0], N, 3, 2).clone())

    ids = torch.arange(3)
    obs, action, step, extras = _transition(ids)
    buf.add(with_pair(obs), action, replace(step, obs=with_pair(step.obs)), extras)
    rows = buf.rows(torch.arange(3))
    assert torch.equal(rows.obs.pair, with_pair(obs).pair)
    assert torch.equal(rows.next_obs.pair, with_pair(step.obs).pair)
    with pytest.raises(ValueError, match="obs.pair is missing"):
        buf.add(obs, action, step, extras)
