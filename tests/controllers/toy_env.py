"""A tiny batched env with a known best action, for controller tests.

Each step every agent draws a target class ``k* ∈ {0, 1}``; it sees ``local = [onehot(k*),
agent_id_feature]`` and a forecast of the next ``H`` targets (``f = 1``).  Choice 2 of the
discrete head is always masked.  Best action: discrete ``k*``, continuous ``+0.6`` for class 0 and
``−0.6`` for class 1.  Per-agent reward = 1[k = k*] − (clamp(u) − u*)² ∈ [−4, 1]; the team
reward is the sum.  Episodes last ``episode_len`` steps; like ``CommunityEnv`` the caller resets
after ``done``.
"""

from __future__ import annotations

import pandas as pd
import torch

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, AgentSpec, Observation, Step

TARGET_U = (0.6, -0.6)  # best continuous action for class 0 / class 1


class ToyEnv(MultiAgentEnv):
    """Args: n_agents N, num_envs B, episode_len [steps], forecast_len H, device, n_continuous."""

    def __init__(
        self,
        n_agents: int = 2,
        num_envs: int = 8,
        episode_len: int = 4,
        forecast_len: int = 2,
        device: str = "cpu",
        n_continuous: int = 1,
        n_discrete: int = 3,
    ) -> None:
        self.num_envs, self.device, self.episode_len = num_envs, torch.device(device), episode_len
        self.n, self.h = n_agents, forecast_len
        self.spec = AgentSpec(
            n_agents=n_agents,
            local_dim=3,
            forecast_len=forecast_len,
            forecast_dim=1,
            state_dim=3,
            global_dim=2,
            n_discrete=n_discrete,
            n_continuous=n_continuous,
            groups=torch.zeros(n_agents, dtype=torch.long),
            neighbors=torch.full((n_agents, 1), -1, dtype=torch.long),
        )
        self.gen = torch.Generator().manual_seed(0)
        self.t = 0
        self.targets = torch.zeros(
            num_envs, n_agents, episode_len + forecast_len + 1, dtype=torch.long
        )

    def _obs(self) -> Observation:
        k = self.targets[:, :, self.t]
        onehot = torch.nn.functional.one_hot(k, 2).float()
        ident = torch.linspace(0, 1, self.n).expand(self.num_envs, self.n).unsqueeze(-1)
        local = torch.cat([onehot, ident], -1)
        fc = self.targets[:, :, self.t + 1 : self.t + 1 + self.h].float().unsqueeze(-1)
        mask = None
        if self.spec.n_discrete:
            mask = torch.ones(self.num_envs, self.n, self.spec.n_discrete, dtype=torch.bool)
            mask[..., 2:] = False
        return Observation(
            local=local,
            forecast=fc,
            state=local.clone(),
            global_=local[..., :2].mean(1),
            action_mask=mask,
        )

    def reset(self, seed: int | None = None) -> Observation:
        return self.reset_copies(seed, 1)

    def reset_copies(self, seed: int | None, copies: int) -> Observation:
        """Env ``b`` draws episode ``b mod (B / copies)``'s targets."""
        if seed is not None:
            self.gen.manual_seed(seed)
        self.t = 0
        e = self.num_envs // copies
        drawn = torch.randint(0, 2, (e, *self.targets.shape[1:]), generator=self.gen)
        self.targets = drawn.repeat(copies, 1, 1)
        return self._obs()

    def step(self, action: Action) -> Step:
        k = self.targets[:, :, self.t]
        u_star = torch.where(k == 0, TARGET_U[0], TARGET_U[1])
        r = torch.zeros(self.num_envs, self.n)
        if self.spec.n_discrete:
            r = r + (action.discrete == k).float()
        if self.spec.n_continuous:
            r = r - (action.continuous.clamp(-1, 1) - u_star.unsqueeze(-1)).pow(2).sum(-1)
        self.t += 1
        done = self.t >= self.episode_len
        return Step(
            obs=self._obs(),
            reward=r,
            team_reward=r.sum(1),
            done=torch.full((self.num_envs,), done),
            info={},
        )

    def records(self) -> pd.DataFrame:
        return pd.DataFrame({"step": [], "agent": []})
