"""The Bar game's observation options and the Bar benchmark's per-night figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from gridmarl.core.types import Action
from gridmarl.games.bar import BarEnv

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("hmf_bar", ROOT / "benchmarks" / "hmf_bar.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(("identity", "dim"), [("index", 2), ("onehot", 6), ("none", 1)])
def test_identity_features(identity: str, dim: int) -> None:
    env = BarEnv(num_envs=2, n_agents=5, capacity=3, identity=identity)
    obs = env.reset(seed=1)
    assert obs.local.shape == (2, 5, dim) and env.spec.local_dim == dim
    assert len(env.spec.local_features) == dim
    # column 0 is last night's attendance, the same for every agent
    assert torch.equal(obs.local[:, :, 0], obs.local[:, :1, 0].expand(2, 5))
    if identity == "onehot":
        assert torch.equal(obs.local[0, :, 1:], torch.eye(5))
    if identity == "index":
        assert torch.allclose(obs.local[1, :, 1], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))


def test_unknown_identity_names_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="index, onehot, none"):
        BarEnv(identity="id")


class _Alternate:
    """A fixed policy: everyone on even nights, no one on odd nights."""

    def __init__(self) -> None:
        self.t = 0

    def reset(self, env: BarEnv) -> None:
        self.t = 0

    def act(self, obs, deterministic: bool = True) -> Action:
        b, n = obs.batch_shape
        go = torch.full((b, n), 1 - self.t % 2, dtype=torch.long)
        self.t += 1
        return Action(discrete=go, continuous=torch.zeros(b, n, 0))


class _Sixty:
    """A fixed policy: agents 0 … 59 go every night."""

    def reset(self, env: BarEnv) -> None:
        pass

    def act(self, obs, deterministic: bool = True) -> Action:
        b, n = obs.batch_shape
        go = (torch.arange(n) < 60).long().expand(b, n)
        return Action(discrete=go, continuous=torch.zeros(b, n, 0))


def test_play_figures_by_hand() -> None:
    """Alternating full and empty nights: mean attendance 0.5 but 0.5 off the optimum every
    night and reward −0.5; sixty attendees every night: the optimum 0.6 exactly."""
    bench = _bench()
    alt = bench.play(_Alternate(), [0, 1])
    assert alt["attendance"] == pytest.approx(0.5)
    assert alt["abs_dev"] == pytest.approx(0.5)
    assert alt["reward"] == pytest.approx(-0.5)
    best = bench.play(_Sixty(), [0])
    assert best == pytest.approx({"attendance": 0.6, "abs_dev": 0.0, "reward": 0.6}, abs=1e-6)


def test_option_overrides_are_checked() -> None:
    bench = _bench()
    assert bench.parse_options(["gamma=0.5", "batch_size=64"]) == {
        "gamma": 0.5,
        "batch_size": 64,
    }
    with pytest.raises(SystemExit) as exc:
        bench.parse_options(["gama=0.5"])
    assert exc.value.code == 2


def test_best_under_exploration_by_hand() -> None:
    """No exploration: the capacity; ε = 0.05 (each agent flips with probability 0.025): 57
    agents meaning to go, 0.558 per agent-night."""
    bench = _bench()
    assert bench.best_under_exploration(100, 60, 0.0) == (60, pytest.approx(0.6))
    m, value = bench.best_under_exploration(100, 60, 0.05)
    assert m == 57 and value == pytest.approx(0.558, abs=5e-4)
    # two agents, capacity 1, no exploration: one goes, 0.5 per agent-night
    assert bench.best_under_exploration(2, 1, 0.0) == (1, pytest.approx(0.5))
