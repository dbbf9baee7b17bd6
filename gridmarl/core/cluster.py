"""Joining or starting a Ray cluster (the optional ``cluster`` extra: ``pip install
"gridmarl[cluster]"``).

Ray runs ``gridmarl sweep`` cells as tasks and a domain's simulator workers as actors
(``train.workers: {backend: ray}``).  Nothing else imports Ray: the core install, ``simulate``
and a ``train`` with process workers never need it.

``connect(address)``: with no address (and no ``RAY_ADDRESS`` in the environment) Ray starts
locally with the cores this process may use; with one (``auto``, ``HOST:6379`` or
``ray://HOST:10001``) it joins the cluster started with ``ray start --head`` (docs/scaling.md).
A session this process already has is reused.
"""

from __future__ import annotations

import os
from typing import Any

from gridmarl.core.errors import ScenarioError
from gridmarl.core.training import available_cores

INSTALL_HINT = 'Ray is not installed; install the cluster extra: pip install "gridmarl[cluster]"'


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ScenarioError: Ray is missing (exit code 2 at the command line), with the install line.
    """
    try:
        import ray
    except ModuleNotFoundError:
        raise ScenarioError(INSTALL_HINT) from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Join the Ray cluster at ``address`` or start a local one; returns the ``ray`` module.

    Args:
        address: a cluster address (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``); None: the
            ``RAY_ADDRESS`` environment variable when set, else a new local Ray.
        num_cpus: CPUs a new local Ray offers (default: the cores this process may run on);
            ignored when joining a cluster (its nodes declare their own).

    Raises:
        ScenarioError: Ray is missing, or the cluster cannot be reached (naming the address).
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    # Ray's workers would each start one OpenMP / MKL thread per core; cells and simulator
    # workers run one thread each (a core per task, as Ray schedules them).
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "ERROR",
        "runtime_env": {"env_vars": env},
    }
    try:
        if address is None:
            ray.init(num_cpus=num_cpus or available_cores(), **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise ScenarioError(f"--address {address}: cannot join the Ray cluster ({exc})") from None
    return ray


def cluster_cpus(ray: Any) -> int:
    """CPUs the connected cluster offers in all (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
