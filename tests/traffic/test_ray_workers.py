"""``train.workers: {backend: ray}``: the SUMO simulations as Ray actors give the same episodes,
and the same MATPPO update, as the local worker processes for the same seeds (bit for bit)."""

from __future__ import annotations

import pytest
import torch

from gridmarl.config import WorkersConfig
from gridmarl.controllers.matppo import MATPPO, MATPPOConfig
from gridmarl.core.errors import ScenarioError
from gridmarl.core.types import Action
from gridmarl.traffic.env import TrafficEnv
from gridmarl.traffic.training import train_env_factory, worker_processes

from .conftest import tiny

RAY = WorkersConfig(backend="ray")


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def episode(env: TrafficEnv, seed: int) -> list[torch.Tensor]:
    """Every observation, reward and info tensor of one episode under seeded random phases."""
    gen = torch.Generator().manual_seed(11)
    obs = env.reset(seed=seed)
    out = [obs.local, obs.action_mask]
    for _ in range(env.episode_len):
        act = torch.randint(0, env.n_phases, (env.num_envs, env.spec.n_agents), generator=gen)
        step = env.step(Action(discrete=act, continuous=torch.zeros(*act.shape, 0)))
        out += [step.obs.local, step.obs.global_, step.reward, *step.info.values()]
    return out


@pytest.mark.slow
def test_ray_workers_match_process_workers_bit_for_bit(ray_local) -> None:
    sc = tiny()
    runs = {}
    for name, workers in (("process", None), ("ray", RAY)):
        env = TrafficEnv(sc, num_envs=2, in_process=False, workers=workers)
        try:
            runs[name] = (episode(env, seed=5), env.episode_kpis(), env.records())
        finally:
            env.close()
    (a, ka, ra), (b, kb, rb) = runs["process"], runs["ray"]
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert ka == kb
    assert ra.equals(rb)


@pytest.mark.slow
def test_matppo_update_same_on_ray_workers(ray_local) -> None:
    """One collect + PPO update through the training env factory: identical parameters."""
    params = {}
    for backend in ("process", "ray"):
        sc = tiny(train={"num_envs": 2, "workers": {"backend": backend, "count": 2}})
        make = train_env_factory(sc, torch.device("cpu"), seed=0)
        env = make(2)
        try:
            cfg = MATPPOConfig(num_envs=2, rollout_steps=6, epochs=2, minibatches=2)
            learner = MATPPO(env.spec, cfg, seed=4)
            learner.update(learner.collect(env, budget=10_000))
        finally:
            env.close()
        params[backend] = [p.detach().clone() for p in learner.params]
    assert all(torch.equal(x, y) for x, y in zip(params["process"], params["ray"], strict=True))


def test_workers_count_must_match_envs() -> None:
    with pytest.raises(ScenarioError, match="train.workers.count"):
        tiny(train={"num_envs": 2, "workers": {"backend": "ray", "count": 3}})
    sc = tiny(train={"num_envs": 2, "workers": {"backend": "ray"}})
    assert worker_processes(sc, 2) == 0  # Ray places the actors; the driver keeps its threads
    assert worker_processes(tiny(), 2) == 2
    # an unset block leaves the scenario's dump (and so its hashes) as before
    assert "workers" not in tiny().model_dump()["train"]
