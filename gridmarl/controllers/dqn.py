"""DQN: parameter-shared independent deep Q-learning, each agent on its own observation.

Paper: Mnih et al. 2015, "Human-level control through deep reinforcement learning", Nature 518
(target network, experience replay, ε-greedy); the independent, parameter-shared multi-agent
form is the DQN baseline of the LToS seed (Yi et al., "Learning to Share in Multi-Agent
Reinforcement Learning", §5, Table 5 hyper-parameters).

Network: ``x_i = concat(local_i, flatten(forecast_i))`` (normalised) → encoder (Table 5:
``encoder_layers`` × Linear + ReLU of ``hidden`` units) → Linear → ``Q_i(o_i, ·) [A]`` over the
``DiscretizedAction`` set.  One set of weights for every agent; agent ``i``'s Q-values depend on
its own observation only.  The TD loss, ε-greedy, replay and the soft target update are the
shared skeleton in ``controllers/common/qlearning.py``.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from gridmarl.controllers.common.qlearning import QConfig, QLearner, encoder
from gridmarl.core.errors import ScenarioError

CHECKPOINT_FORMAT = "gridmarl.dqn/1"


class QNet(nn.Module):
    """Encoder + linear Q head, applied to every agent independently."""

    def __init__(self, in_dim: int, n_actions: int, cfg: QConfig) -> None:
        super().__init__()
        self.encoder = encoder(in_dim, cfg.hidden, cfg.encoder_layers)
        self.head = nn.Linear(cfg.hidden, n_actions)

    def forward(self, x: Tensor) -> Tensor:
        """``x [M, N, F]`` -> ``Q [M, N, A]``."""
        return self.head(self.encoder(x))


class DQN(QLearner):
    """Independent parameter-shared DQN (module docstring)."""

    name: ClassVar[str] = "dqn"
    config_class: ClassVar[type] = QConfig
    checkpoint_format: ClassVar[str] = CHECKPOINT_FORMAT
    what: ClassVar[str] = "DQN"

    def build(self) -> nn.Module:
        """The shared Q-network (a table head only: DQN reads no neighbour)."""
        if self.cfg.action_head != "table":
            raise ScenarioError(
                "train.options.action_head: DQN scores actions from the agent's own "
                "observation only; allowed: 'table' ('neighbours' is for dgn and ltos)"
            )
        return QNet(self.in_dim, self.actions.n_actions, self.cfg)

    def q_values(self, net: nn.Module, x: Tensor, extra: dict[str, Tensor]) -> Tensor:
        """``Q [M, N, A]``: each agent from its own features."""
        return net(x)
