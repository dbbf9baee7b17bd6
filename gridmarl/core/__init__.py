"""The core contract every domain and controller speaks (DESIGN §3).

The names below are imported on first use, so ``gridmarl.core.errors`` or ``gridmarl.core.domain``
(what validating a scenario needs) do not import torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Action": "gridmarl.core.types",
    "AgentSpec": "gridmarl.core.types",
    "Controller": "gridmarl.core.controller",
    "EnvWrapper": "gridmarl.core.wrappers",
    "MultiAgentEnv": "gridmarl.core.env",
    "Observation": "gridmarl.core.types",
    "PolicyShape": "gridmarl.core.types",
    "ScheduleController": "gridmarl.core.controller",
    "Step": "gridmarl.core.types",
    "Trainable": "gridmarl.core.controller",
    "check_action": "gridmarl.core.controller",
    "make_generator": "gridmarl.core.seeding",
    "resolve_device": "gridmarl.core.seeding",
    "seed_everything": "gridmarl.core.seeding",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gridmarl.core' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
