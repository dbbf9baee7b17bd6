"""One seed drives numpy, torch and the simulators."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cpu`` / ``cuda`` as given.

    Raises:
        ValueError: for ``cuda`` when no GPU is visible, or an unknown name.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA GPU")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; allowed: auto, cpu, cuda")
    return torch.device(device)


# -- seed streams (docs/protocol.md) ----------------------------------------------------------
#
# Every episode seed gridmarl draws by itself comes from one of these roles.  A derived seed lies
# in [2**30, 2**31) and its residue modulo 4 is the role's code, so two roles can never draw the
# same seed, and no derived seed can equal an operator's evaluation seed (``scenario.seed + i``,
# which the scenario schemas keep below 2**30).  Within a role, the index picks independent
# values through ``numpy.random.SeedSequence(entropy=base, spawn_key=(code, index))``.

ROLES: dict[str, int] = {"train": 0, "warm_start": 1, "validate": 2, "test": 3}
DERIVED_MIN = 2**30  # [-] smallest derived seed; operator seeds stay below it
_ROLE_BITS = 2


def stream_seed(base: int, role: str, index: int) -> int:
    """The ``index``-th episode seed of ``role`` for the run seeded ``base``.

    Args:
        base: the run's seed (``--seed``, ``scenario.seed``), any non-negative int.
        role: one of ``ROLES`` (``train``, ``warm_start``, ``validate``, ``test``).
        index: which seed of the stream (>= 0).

    Returns:
        An int in [2**30, 2**31) with ``seed % 4 == ROLES[role]``.

    Raises:
        ValueError: an unknown role or a negative base or index.
    """
    if role not in ROLES:
        raise ValueError(f"unknown seed role {role!r}; allowed: {', '.join(ROLES)}")
    if base < 0 or index < 0:
        raise ValueError(f"seed base and index must be >= 0, got {base}, {index}")
    ss = np.random.SeedSequence(entropy=int(base), spawn_key=(ROLES[role], int(index)))
    k = int(ss.generate_state(1, np.uint32)[0]) >> (32 - 30 + _ROLE_BITS)  # 28 bits
    return DERIVED_MIN + (k << _ROLE_BITS) + ROLES[role]


def stream_seeds(base: int, role: str, count: int) -> list[int]:
    """The first ``count`` seeds of ``role`` (``stream_seed(base, role, i)``, i = 0 … count-1)."""
    return [stream_seed(base, role, i) for i in range(count)]


def role_of(seed: int) -> str | None:
    """The role a derived seed belongs to, or None for a seed below 2**30 (an operator's)."""
    if not DERIVED_MIN <= seed < 2 * DERIVED_MIN:
        return None
    code = seed % (1 << _ROLE_BITS)
    return next(r for r, c in ROLES.items() if c == code)


def sub_seed(seed: int, index: int) -> int:
    """A seed for parallel episode ``index`` (>= 1) of an env reset with ``seed``, in the same
    role as ``seed``: a derived seed keeps its residue modulo 4 in [2**30, 2**31); an operator's
    seed (below 2**30) maps into [2**29, 2**30), above every seed the scenario schemas allow.
    So a training env's extra episodes never draw a validation, test or evaluation seed."""
    h = int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0])
    if role_of(seed) is not None:
        return DERIVED_MIN + ((h >> 4) << _ROLE_BITS) + seed % (1 << _ROLE_BITS)
    return DERIVED_MIN // 2 + (h >> 3)
