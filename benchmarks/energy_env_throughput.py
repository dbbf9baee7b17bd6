"""Throughput of ``CommunityEnv`` in agent-steps per second (B × N × steps / s), against the
pure-Python reference implementation in the same run.

    python benchmarks/energy_env_throughput.py                       # B=256, N=50, CPU float32
    python benchmarks/energy_env_throughput.py --device cuda --num-envs 4096

The community is the synthetic one of ``tests/energy/conftest.py`` (no data files needed).
Actions are drawn once up front so that only the env is timed.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch

from gridmarl.core.types import Action
from gridmarl.energy.env import CommunityEnv
from gridmarl.energy.reference import ReferenceCommunityEnv


def _make_community(n: int, days: int):
    path = Path(__file__).resolve().parents[1] / "tests" / "energy" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_energy_conftest", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_community(n=n, days=days)


def _actions(
    b: int, n: int, m: int, count: int, device: torch.device, dtype: torch.dtype
) -> list[Action]:
    g = torch.Generator().manual_seed(0)
    return [
        Action(
            discrete=torch.randint(0, m, (b, n), generator=g).to(device),
            continuous=(torch.rand(b, n, 2, generator=g) * 2 - 1).to(device, dtype),
        )
        for _ in range(count)
    ]


def bench_env(community, num_envs: int, steps: int, device: str, dtype: torch.dtype) -> float:
    """Agent-steps per second of the batched env over ``steps`` steps (after a warm-up)."""
    env = CommunityEnv(
        community,
        num_envs=num_envs,
        device=device,
        dtype=dtype,
        random_start=True,
        episode_steps=24,
        record=False,
    )
    acts = _actions(num_envs, community.n, community.hp_modes, 8, env.device, dtype)
    env.reset(seed=0)
    for i in range(10):  # warm-up
        env.step(acts[i % 8])
        if env.t >= env.episode_len:
            env.reset()
    sync = torch.cuda.synchronize if env.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for i in range(steps):
        if env.t >= env.episode_len:
            env.reset()
        env.step(acts[i % 8])
    sync()
    return num_envs * community.n * steps / (time.perf_counter() - t0)


def bench_reference(community, num_envs: int, steps: int) -> float:
    """Agent-steps per second of the pure-Python reference."""
    acts = _actions(
        num_envs, community.n, community.hp_modes, 4, torch.device("cpu"), torch.float64
    )
    lists = [(a.discrete.tolist(), a.continuous.tolist()) for a in acts]
    ref = ReferenceCommunityEnv(community, [0] * num_envs, steps)
    t0 = time.perf_counter()
    for i in range(steps):
        ref.step(*lists[i % 4])
    return num_envs * community.n * steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, default=256, help="parallel episodes B")
    p.add_argument("--prosumers", type=int, default=50, help="agents N")
    p.add_argument("--steps", type=int, default=200, help="timed env steps")
    p.add_argument("--ref-steps", type=int, default=4, help="timed reference steps")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    community = _make_community(a.prosumers, days=3)
    dtype = getattr(torch, a.dtype)
    env_rate = bench_env(community, a.num_envs, a.steps, a.device, dtype)
    ref_rate = bench_reference(community, a.num_envs, a.ref_steps)
    print(
        f"CommunityEnv   B={a.num_envs} N={a.prosumers} {a.device} {a.dtype} "
        f"threads={torch.get_num_threads()}: {env_rate:,.0f} agent-steps/s"
    )
    print(
        f"reference      B={a.num_envs} N={a.prosumers} python floats: "
        f"{ref_rate:,.0f} agent-steps/s"
    )
    print(f"speed-up       {env_rate / ref_rate:,.0f}x")


if __name__ == "__main__":
    main()
