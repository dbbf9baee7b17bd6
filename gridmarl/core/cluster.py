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


class Served:
    """The body of a worker actor: holds ``factory(*args)`` and runs its methods by name."""

    def __init__(self, factory: Any, *args: Any) -> None:
        self.obj = factory(*args)

    def ready(self) -> None:
        """Returns once the object is built (its errors surface here)."""

    def call(self, cmd: str, arg: Any = None) -> Any:
        """``obj.cmd(arg)`` (``obj.cmd()`` when ``arg`` is None)."""
        fn = getattr(self.obj, cmd)
        return fn() if arg is None else fn(arg)


class RayWorker:
    """An object built by ``factory(*args)`` inside a Ray actor (one CPU), driven like a pipe
    worker: ``send`` a command, then ``result``; ``call`` does both.  The actor may run on any
    node of the cluster, so the factory must build everything it needs there (files included).

    Args:
        factory: a picklable callable (a module-level function or class).
        args: its arguments (pickled to the actor).
        address: the cluster (``connect``); None: the session this process has, ``RAY_ADDRESS``
            or a new local Ray.
        what: names the worker in errors (``traffic worker``).

    Raises:
        RuntimeError: the factory failed in the actor (``<what> failed: <error>``).
    """

    def __init__(
        self, factory: Any, *args: Any, address: str | None = None, what: str = "worker"
    ) -> None:
        ray = connect(address)
        self._ray, self.what = ray, what
        self.actor = ray.remote(num_cpus=1, max_restarts=0)(Served).remote(factory, *args)
        self._ref: Any = None
        self._get(self.actor.ready.remote())

    def _get(self, ref: Any) -> Any:
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None) or exc
            raise RuntimeError(f"{self.what} failed: {type(cause).__name__}: {cause}") from None

    def send(self, cmd: str, arg: Any = None) -> None:
        """Start ``cmd(arg)`` in the actor without waiting."""
        self._ref = self.actor.call.remote(cmd, arg)

    def result(self) -> Any:
        """The result of the last ``send``."""
        ref, self._ref = self._ref, None
        return self._get(ref)

    def call(self, cmd: str, arg: Any = None) -> Any:
        """``cmd(arg)`` in the actor, waited for."""
        self.send(cmd, arg)
        return self.result()

    def close(self) -> None:
        """``close()`` the object (best effort), then end the actor."""
        try:
            self.call("close")
        except Exception:  # noqa: BLE001 - the actor may be gone already
            pass
        self._ray.kill(self.actor)
