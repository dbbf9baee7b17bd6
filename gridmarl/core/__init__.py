"""The core contract every domain and controller speaks (DESIGN §3)."""

from gridmarl.core.controller import Controller, ScheduleController, Trainable, check_action
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.seeding import make_generator, resolve_device, seed_everything
from gridmarl.core.types import Action, AgentSpec, Observation, Step

__all__ = [
    "Action",
    "AgentSpec",
    "Controller",
    "MultiAgentEnv",
    "Observation",
    "ScheduleController",
    "Step",
    "Trainable",
    "check_action",
    "make_generator",
    "resolve_device",
    "seed_everything",
]
