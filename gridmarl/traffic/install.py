"""Where the traffic simulators are installed, checked without importing them.

``gridmarl validate`` (``TrafficScenario.check_resources``) calls :func:`check_installed`, which
finds SUMO's binaries and the ``libsumo`` / ``cityflow`` modules without importing either;
``gridmarl.traffic.engines.check_engine`` imports them (when an engine is built, and for
``gridmarl doctor``).

CityFlow is not on PyPI.  ``CITYFLOW_RECIPE`` is the one command that builds it from its public
source with the fix it needs (``tools/install_cityflow.sh``: upstream ``Engine::~Engine`` can
deadlock when an engine is destroyed); ``cityflow_build`` names the installed build (version and
a hash of the compiled module, since every build calls itself 0.1) for manifests and ``doctor``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from gridmarl.core.errors import ScenarioError

#: how to install CityFlow: from a gridmarl checkout, builds its public source with the
#: destructor fix (or install a wheel built that way, e.g. ../shared/wheels/ in CI)
CITYFLOW_RECIPE = "bash tools/install_cityflow.sh"


def sumo_home() -> Path:
    """The SUMO installation of the ``eclipse-sumo`` wheel; sets ``SUMO_HOME`` if unset.

    Raises:
        ScenarioError: when the ``sumo`` package (eclipse-sumo wheel) is not installed.
    """
    env = os.environ.get("SUMO_HOME")
    if env and (Path(env) / "bin").is_dir():
        return Path(env)
    try:
        import sumo  # the eclipse-sumo wheel
    except ImportError as exc:
        raise ScenarioError(
            "SUMO is not installed: `pip install eclipse-sumo libsumo` "
            "(the traffic domain's default engine)"
        ) from exc
    home = Path(sumo.SUMO_HOME)
    os.environ["SUMO_HOME"] = str(home)  # pip does not set it; SUMO's tools and XML checks need it
    return home


def sumo_binary(name: str) -> Path:
    """Path of a SUMO executable (``sumo``, ``netgenerate``) of the installed wheel.

    Raises:
        ScenarioError: when it is missing.
    """
    path = sumo_home() / "bin" / name
    if not path.exists():
        found = shutil.which(name)
        if found:
            return Path(found)
        raise ScenarioError(
            f"SUMO binary {name!r} not found under {path.parent}; reinstall eclipse-sumo"
        )
    return path


def check_installed(name: str) -> None:
    """Raise ``ScenarioError`` (key ``engine``) when engine ``name`` is not installed here
    (SUMO: its binaries and ``libsumo``; CityFlow: the ``cityflow`` module), importing neither.
    """
    if name == "sumo":
        try:
            sumo_binary("netgenerate")
            sumo_binary("sumo")
            if find_spec("libsumo") is None:
                raise ScenarioError("libsumo is not installed: pip install libsumo")
        except ScenarioError as exc:
            raise ScenarioError(f"engine: 'sumo' is not usable here: {exc}") from None
    elif name == "cityflow":
        if find_spec("cityflow") is None:
            raise ScenarioError(
                "engine: 'cityflow' is not installed (it is not on PyPI); build it from its "
                f"source with `{CITYFLOW_RECIPE}` (docs/domains/traffic.md); or use engine: sumo"
            )
    else:
        raise ScenarioError(f"engine: unknown engine {name!r}; allowed: sumo, cityflow")


def cityflow_build() -> str:
    """The installed CityFlow as ``<version>, module sha256 <first 12 hex>``, found without
    importing it; ``missing`` when it is not installed."""
    spec = find_spec("cityflow")
    if spec is None or spec.origin is None:
        return "missing"
    try:
        version = metadata.version("cityflow")
    except metadata.PackageNotFoundError:
        version = "unknown version"
    digest = hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:12]
    return f"{version}, module sha256 {digest}"
