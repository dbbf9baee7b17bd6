"""MAgent's Battle as the HMF seed sets it (200 agents against 100 stronger enemies), on the core
env contract, over the ``magent2`` package's grid world (optional extra ``battle``).

Seed (``shared/seeds/003_*``, "MAgent"): 200 learning agents fight 100 enemies whose
observation, movement and attack ranges are twice the agents'; the enemies play MAgent's
pretrained DQN.  ``magent2`` ships no trained model, so the enemies here play a fixed
**uniformly random** policy (a weaker opponent than the seed's; results are not comparable
with the seed's curves in level).  Unit parameters are ``magent2``'s ``battle_v4`` ones.

| item | agents | enemies |
|---|---|---|
| count | ``n_agents`` (200) | ``n_enemies`` (100) |
| hp, damage, step recovery | 10, 2, 0.1 | 10, 2, 0.1 |
| view / attack range [cells] | circle 6 / 1.5 | circle 12 / 3 |
| speed [cells/step] | 2 (21 actions: 13 moves, 8 attacks) | 4 |

Rewards (agents; ``battle_v4``'s): −0.005 per step, +0.2 per attack on an enemy, −0.1 per
attack on nothing, +5 per kill, −0.1 on death.

| field | content |
|---|---|
| local ``[N, 13·13·5 + 32]`` | the agent's view (walls, own and enemy presence and hp), |
| | flattened, then its features (embedding, last action and reward, position); 0 once dead |
| forecast | none (``forecast_len = 0``) |
| state | the local obs; global ``[2]``: share of agents and of enemies alive |
| action | discrete, 21; a dead agent's action is ignored |
| episode | until one side is wiped out (``terminated``) or ``max_steps`` (``truncated``) |
| groups | ``n_groups`` blocks of the starting formation's columns |
| info | ``agents_alive``, ``enemies_alive`` ``[B]`` |

The armies start in two blocks facing each other (spacing 2, as ``battle_v4``'s map); each env
is one ``magent2.GridWorld`` stepped in turn (``B`` Python iterations per step: this is a CPU
simulator).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, AgentSpec, Observation, Step

VIEW = (13, 13, 5)
FEATURES = 32
N_ACTIONS = 21


def _config(map_size: int, seed: int | None):  # noqa: ANN202 - magent2 types
    import magent2.gridworld as gw

    cfg = gw.Config()
    cfg.set({"map_width": map_size, "map_height": map_size, "minimap_mode": False})
    cfg.set({"embedding_size": 10})
    if seed is not None:
        cfg.set({"seed": int(seed)})
    unit = {
        "width": 1,
        "length": 1,
        "hp": 10,
        "speed": 2,
        "view_range": gw.CircleRange(6),
        "attack_range": gw.CircleRange(1.5),
        "damage": 2,
        "kill_reward": 5,
        "step_recover": 0.1,
        "step_reward": -0.005,
        "dead_penalty": -0.1,
        "attack_penalty": -0.1,
    }
    agent = cfg.register_agent_type("agent", unit)
    # the seed: the enemy's observation, movement and attack ranges are twice the agents'
    strong = {**unit, "speed": 4, "view_range": gw.CircleRange(12)}
    enemy = cfg.register_agent_type("enemy", {**strong, "attack_range": gw.CircleRange(3)})
    g0, g1 = cfg.add_group(agent), cfg.add_group(enemy)
    a, b = gw.AgentSymbol(g0, index="any"), gw.AgentSymbol(g1, index="any")
    cfg.add_reward_rule(gw.Event(a, "attack", b), receiver=a, value=0.2)
    cfg.add_reward_rule(gw.Event(b, "attack", a), receiver=b, value=0.2)
    return cfg


def _block(n: int, x0: int, y_mid: int) -> list[list[int]]:
    """``n`` positions in a square block with spacing 2, columns from ``x0`` rightwards."""
    side = math.ceil(math.sqrt(n))
    y0 = y_mid - side
    return [[x0 + 2 * i, y0 + 2 * j, 0] for i in range(side) for j in range(side)][:n]


class BattleEnv(MultiAgentEnv):
    """``B`` Battle games of ``n_agents`` learners against ``n_enemies`` random enemies.

    Args:
        num_envs: parallel games B.
        n_agents: learning agents N.
        n_enemies: enemies.
        map_size: side of the square map [cells]; must hold both blocks.
        max_steps: episode limit [steps].
        n_groups: groups of ``AgentSpec.groups`` (blocks of formation columns).
        device: where the tensors live.
    """

    def __init__(
        self,
        num_envs: int = 1,
        n_agents: int = 200,
        n_enemies: int = 100,
        map_size: int = 80,
        max_steps: int = 200,
        n_groups: int = 4,
        device: torch.device | str = "cpu",
    ) -> None:
        side_a = 2 * math.ceil(math.sqrt(n_agents))
        side_e = 2 * math.ceil(math.sqrt(n_enemies))
        if map_size < side_a + side_e + 10 or map_size < max(side_a, side_e) + 4:
            raise ValueError(f"map_size {map_size} cannot hold the two blocks")
        self.num_envs, self.n, self.n_enemies = int(num_envs), int(n_agents), int(n_enemies)
        self.map_size, self.episode_len = int(map_size), int(max_steps)
        self.device = torch.device(device)
        local = int(np.prod(VIEW)) + FEATURES
        self.spec = AgentSpec(
            n_agents=self.n,
            local_dim=local,
            forecast_len=0,
            forecast_dim=1,
            state_dim=local,
            global_dim=2,
            n_discrete=N_ACTIONS,
            n_continuous=0,
            groups=torch.arange(self.n) * n_groups // self.n,
            neighbors=torch.full((self.n, 1), -1, dtype=torch.long),
        )
        self._worlds: list = [None] * self.num_envs
        self._ids: list[np.ndarray] = [np.zeros(0, np.int64)] * self.num_envs
        self._rng = np.random.default_rng(0)
        self.t = torch.zeros(self.num_envs, dtype=torch.long)
        self._obs_cache = torch.zeros(self.num_envs, self.n, local)
        self._alive = torch.zeros(self.num_envs, self.n, dtype=torch.bool)
        self._enemies = torch.zeros(self.num_envs)

    # -- one world ------------------------------------------------------------------------------
    def _start(self, b: int, seed: int) -> None:
        import magent2.gridworld as gw

        world = gw.GridWorld(_config(self.map_size, seed), map_size=self.map_size)
        world.reset()
        h = world.get_handles()
        mid, gap = self.map_size // 2, 3
        side_a = 2 * math.ceil(math.sqrt(self.n))
        world.add_agents(h[0], method="custom", pos=_block(self.n, mid - gap - side_a, mid))
        world.add_agents(h[1], method="custom", pos=_block(self.n_enemies, mid + gap, mid))
        self._worlds[b] = world
        # slot k = the k-th agent added (formation order): agent ids are fixed for the episode
        self._ids[b] = np.asarray(world.get_agent_id(h[0]), dtype=np.int64)
        self.t[b] = 0
        self._read(b)

    def _read(self, b: int) -> None:
        """Observation, alive flags and enemy count of world ``b`` into the caches."""
        world = self._worlds[b]
        h = world.get_handles()
        obs = torch.zeros(self.n, self.spec.local_dim)
        alive = torch.zeros(self.n, dtype=torch.bool)
        if world.get_num(h[0]):
            view, feat = world.get_observation(h[0])
            slots = np.searchsorted(self._ids[b], np.asarray(world.get_agent_id(h[0])))
            flat = np.concatenate([view.reshape(view.shape[0], -1), feat], axis=1)
            obs[torch.as_tensor(slots)] = torch.as_tensor(flat, dtype=torch.float32)
            alive[torch.as_tensor(slots)] = True
        self._obs_cache[b] = obs
        self._alive[b] = alive
        self._enemies[b] = world.get_num(h[1])

    def _observation(self) -> Observation:
        local = self._obs_cache.to(self.device)
        glob = torch.stack(
            [self._alive.float().mean(1), self._enemies / max(self.n_enemies, 1)], -1
        ).to(self.device)
        return Observation(
            local=local,
            forecast=torch.zeros(self.num_envs, self.n, 0, 1, device=self.device),
            state=local.clone(),
            global_=glob,
            action_mask=None,
        )

    # -- the contract ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Observation:
        return self.reset_envs(torch.ones(self.num_envs, dtype=torch.bool), seed)

    def reset_envs(self, mask: Tensor, seed: int | None = None) -> Observation:
        if seed is not None:
            self._rng = np.random.default_rng(int(seed))
        for b in torch.nonzero(mask.cpu()).flatten().tolist():
            self._start(b, int(self._rng.integers(2**31 - 1)))
        return self._observation()

    def step(self, action: Action) -> Step:
        acts = action.discrete.cpu().numpy().astype(np.int32)
        reward = torch.zeros(self.num_envs, self.n)
        end = torch.zeros(self.num_envs, dtype=torch.bool)
        for b, world in enumerate(self._worlds):
            h = world.get_handles()
            ids = np.asarray(world.get_agent_id(h[0]))
            slots = np.searchsorted(self._ids[b], ids)
            world.set_action(h[0], np.ascontiguousarray(acts[b, slots]))
            n_e = world.get_num(h[1])
            n_act = int(world.get_action_space(h[1])[0])
            world.set_action(h[1], self._rng.integers(0, n_act, n_e).astype(np.int32))
            world.step()
            reward[b, torch.as_tensor(slots)] = torch.as_tensor(
                world.get_reward(h[0]), dtype=torch.float32
            )
            world.clear_dead()
            self.t[b] += 1
            self._read(b)
            end[b] = world.get_num(h[0]) == 0 or world.get_num(h[1]) == 0
        truncated = ~end & (self.t >= self.episode_len)
        return Step(
            obs=self._observation(),
            reward=reward.to(self.device),
            team_reward=reward.sum(1).to(self.device),
            terminated=end.to(self.device),
            truncated=truncated.to(self.device),
            info={
                "agents_alive": self._alive.sum(1).to(self.device),
                "enemies_alive": self._enemies.clone().to(self.device),
            },
        )

    def records(self) -> pd.DataFrame:
        """Alive flags of env 0's agents now (``step``, ``agent``, ``alive``)."""
        return pd.DataFrame(
            {
                "step": int(self.t[0]),
                "agent": range(self.n),
                "alive": self._alive[0].int().tolist(),
            }
        )
