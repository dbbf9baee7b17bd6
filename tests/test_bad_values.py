"""A corpus of bad values per domain, refused before anything runs (issue 24).

Table-driven: every row is ``(domain, --set mutation, expected fragment of the message)`` and
goes through ``load_scenario`` and ``check_for_simulate``, what ``gridmarl validate`` and
``gridmarl simulate`` run before any controller.  Adding a case is one line in ``ROWS``.

The NaN / ±inf rows are generated from the pydantic models: every ``int`` / ``float`` field of
every scenario model (floats in tuples and lists, fields of list items and of optional blocks
included) gets ``.nan``, ``.inf`` and ``-.inf``, so a new numeric field is covered without
editing this file.  A few command-line cases check exit code 2 end to end.
"""
# ruff: noqa: E501 - the tables keep one case per line

from __future__ import annotations

import copy
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from pydantic import BaseModel

from gridmarl import domains
from gridmarl.config import ScenarioError, check_for_simulate, load_scenario
from gridmarl.controllers import registry
from gridmarl.core.types import PolicyShape

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "energy": ROOT / "scenarios" / "community_50.yaml",
    "traffic": ROOT / "scenarios" / "traffic_grid_6x6.yaml",
    "routing": ROOT / "scenarios" / "routing_ibm.yaml",
}
BASELINES = {
    "energy": "controllers=[{name: no_control}]",
    "traffic": "controllers=[{name: max_pressure}]",
    "routing": "controllers=[{name: shortest_path_hops}]",
}

# (domain, --set mutation, fragment the message must hold): one line per case
# fmt: off
ROWS: list[tuple[str, str, str]] = [
    # the table
    ("energy", "community.battery.capacity_kwh=[nan, 5]", "community.battery.capacity_kwh.0: not a finite number"),
    ("energy", "controllers=[]", "controllers: no controller listed; simulate runs the listed controllers, so list at least one; allowed: no_control, rule_based, milp, mpc; learned, with a checkpoint: " + ", ".join(registry.names())),
    ("energy", "controllers=[{name: nonexistent}]", "controllers: unknown energy controller 'nonexistent'; allowed: no_control, rule_based, milp, mpc"),
    ("energy", "controllers=[{name: matppo, checkpoint: /dev/null}]", "controllers[matppo].checkpoint: /dev/null: not a readable checkpoint"),
    ("traffic", "demand.turning={left: 0.5, straight: 0.7, right: 0.15}", "demand.turning: Value error, left + straight + right = 1.35; they are probabilities and must sum to 1"),
    ("routing", "traffic.profile=[{steps: 300, rate_pkt_per_step: inf}]", "traffic.profile.0.rate_pkt_per_step: not a finite number"),
    ("routing", "traffic.profile=[{steps: 300, rate_pkt_per_step: 1e6}]", "traffic.profile: about 3e+08 packets per episode"),
    # numbers spelled as YAML strings or YAML floats
    ("energy", "community.market.transformer_kw=.inf", "community.market.transformer_kw: not a finite number"),
    ("traffic", "demand.profile=[{duration_s: nan, rate_veh_per_s: 1}]", "demand.profile.0.duration_s: not a finite number"),
    ("routing", "network.km_per_step=-.inf", "network.km_per_step: not a finite number"),
    # free-form options: no NaN or ±inf at any depth
    ("energy", "train.options.lr=.nan", "train.options: Value error, lr is not a finite number"),
    ("traffic", "controllers=[{name: fixed_time, options: {green_s: .inf}}]", "controllers.0.options: Value error, green_s is not a finite number"),
    ("routing", "train.options={schedule: [1, .nan]}", "schedule[1] is not a finite number"),
    # cross-field checks
    ("traffic", "demand.turning={left: 0, straight: 0, right: 0}", "must sum to 1"),
    ("traffic", "demand.turning={left: 0.1, straight: 0.8}", "left + straight + right = 1.05"),
    ("energy", "community.battery.capacity_kwh=[10, 5]", "range lower bound 10.0 is above upper bound 5.0"),
    ("energy", "community.battery.soc_init=0.05", "soc_init 0.05 is below soc_min 0.1"),
    ("traffic", "traffic.yellow_s=10", "must be below traffic.decision_s"),
    ("traffic", "traffic.phases=6", "traffic.phases: Input should be 2, 4 or 8"),
    ("traffic", "traffic.all_red_s=8", "traffic.yellow_s + traffic.all_red_s (3 + 8) must be below traffic.decision_s (10)"),
    # sizes that would not fit in memory, computed from the scenario
    ("routing", "traffic.profile=[{steps: 100, rate_pkt_per_step: 1e5}]", "one env's packet pool holds at most 8388608"),
    ("routing", "traffic.profile=[{steps: 100000000, rate_pkt_per_step: 0}]", "the per-step records (steps x routers x columns) would hold"),
    ("routing", "network.km_per_step=0.001", "network.km_per_step: 0.001 km/step makes the longest link"),
    ("routing", "network={generator: {kind: grid, rows: 100, cols: 100}}", "100 x 100 = 10000 routers; allowed: 2 to 5000 routers"),
    ("routing", "network={generator: {kind: grid, rows: 1, cols: 1}}", "allowed: 2 to 5000 routers"),
    ("traffic", "demand.profile=[{duration_s: 3600, rate_veh_per_s: 1e6}]", "demand.profile: about 3.6e+09 trips per demand seed"),
    # controllers
    ("routing", "controllers=[{name: max_pressure}]", "unknown routing controller 'max_pressure'; allowed: shortest_path_hops, shortest_path_distance, mcf"),
    ("traffic", "controllers=[]", "controllers: no controller listed"),
    ("energy", "controllers=[{name: matppo}]", "controllers[matppo]: a learned controller needs 'checkpoint'"),
    ("energy", "controllers=[{name: matppo, checkpoint: nope.pt}]", "controllers[matppo].checkpoint: file not found: nope.pt"),
    ("energy", "controllers=[{name: matppo, checkpoint: data/checkpoints/routing_ibm_matppo.pt}]", "checkpoint does not fit this env: local_dim=31 in the checkpoint but 24"),
    ("energy", "community.ev.rate_feature=true", "local features differ: the env adds ['ev_rate_needed']"),
    ("energy", "community.forecast.horizon_h=24", "forecast_len=3 steps in the checkpoint but 24"),
    ("traffic", "traffic.pressure_features=false", "the env lacks ['pressure_phase_0', 'pressure_phase_1', 'green_min']"),
    ("traffic", "grid.lanes=3", "local_dim=21 in the checkpoint but 29"),
    ("routing", "env.path_features=false", "local_dim=31 in the checkpoint but 27"),
    ("routing", "network.topology=data/topologies/Abilene.graphml", "n_discrete=4 in the checkpoint but 3"),
]
# fmt: on

NON_FINITE = (".nan", ".inf", "-.inf")


def refusal(domain: str, *mutations: str) -> str:
    """The message ``validate`` / ``simulate`` refuse the mutated shipped scenario with."""
    with pytest.raises(ScenarioError) as err:
        check_for_simulate(load_scenario(SCENARIOS[domain], list(mutations)))
    return str(err.value)


@pytest.mark.parametrize(("domain", "mutation", "expected"), ROWS, ids=lambda x: str(x)[:60])
def test_bad_value_is_refused(domain: str, mutation: str, expected: str) -> None:
    msg = refusal(domain, mutation)
    assert expected in msg
    assert msg.startswith(str(SCENARIOS[domain]) + ": ")  # names the file
    assert "\n" not in msg  # one message


def test_the_rows_cover_every_domain() -> None:
    assert {d for d, _, _ in ROWS} == set(domains.names())


# -- every numeric field, NaN and ±inf, generated from the models --------------------------------
Path_ = tuple[str | int, ...]


def _numeric_paths(ann: Any, path: Path_) -> Iterator[Path_]:
    """Paths (keys, and 0 for an item of a list or the position in a tuple) of every int and
    float inside annotation ``ann``."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if ann in (int, float):
        yield path
    elif isinstance(ann, type) and issubclass(ann, BaseModel):
        for name, field in ann.model_fields.items():
            yield from _numeric_paths(field.annotation, (*path, field.alias or name))
    elif origin in (typing.Union, types.UnionType):
        for a in args:
            yield from _numeric_paths(a, path)
    elif origin is tuple:
        for i, a in enumerate(args):
            yield from _numeric_paths(a, (*path, i))
    elif origin is list:
        yield from _numeric_paths(args[0], (*path, 0))
    elif origin is typing.Literal and all(isinstance(a, float) for a in args):
        yield path  # window.step_h: one of a few floats


def numeric_fields(domain: str) -> list[Path_]:
    """Every numeric field of the domain's scenario model, once each."""
    model = domains.get(domain).scenario_class()
    return list(dict.fromkeys(_numeric_paths(model, ())))


def _get(node: Any, keys: Path_) -> Any:
    for k in keys:
        if isinstance(node, dict):
            node = node.get(k)
        elif isinstance(node, list | tuple) and isinstance(k, int) and k < len(node):
            node = node[k]
        else:
            return None
    return node


def _put(node: Any, keys: Path_, value: Any) -> Any:
    """``node`` with ``value`` at ``keys`` (dicts and lists made as needed)."""
    if not keys:
        return value
    k, rest = keys[0], keys[1:]
    if isinstance(k, int):
        items = list(node) if isinstance(node, list | tuple) else []
        while len(items) <= k:
            items.append({} if rest and isinstance(rest[0], str) else 0.0)
        items[k] = _put(items[k], rest, value)
        return items
    out = dict(node) if isinstance(node, dict) else {}
    out[k] = _put(out.get(k), rest, value)
    return out


def mutation(domain: str, path: Path_, value: str) -> str:
    """The ``--set`` item that puts YAML ``value`` at ``path`` of the shipped scenario: a dotted
    key, or the whole list / tuple it lies in (the shipped one, or the validated default)."""
    cut = next((i for i, k in enumerate(path) if isinstance(k, int)), None)
    if cut is None:
        return ".".join(map(str, path)) + "=" + value
    head = path[:cut]
    current = _get(yaml.safe_load(SCENARIOS[domain].read_text()), head)
    if current is None:
        dumped = load_scenario(SCENARIOS[domain]).model_dump(by_alias=True)
        current = _get(dumped, head) or []
    marker = "__NON_FINITE__"
    new = _put(copy.deepcopy(current), path[cut:], marker)
    flow = yaml.safe_dump(new, default_flow_style=True, width=10_000).strip()
    return ".".join(map(str, head)) + "=" + flow.replace(marker, value)


def key_of(path: Path_) -> str:
    """The location the message names: the path, without a trailing list or tuple index (a
    whole-list check names the list)."""
    while path and isinstance(path[-1], int):
        path = path[:-1]
    return ".".join(map(str, path))


NON_FINITE_ROWS = [
    (domain, path, value)
    for domain in SCENARIOS
    for path in numeric_fields(domain)
    for value in NON_FINITE
]


@pytest.mark.parametrize(
    ("domain", "path", "value"),
    NON_FINITE_ROWS,
    ids=[f"{d}-{'.'.join(map(str, p))}={v}" for d, p, v in NON_FINITE_ROWS],
)
def test_every_numeric_field_refuses_nan_and_inf(domain: str, path: Path_, value: str) -> None:
    msg = refusal(domain, mutation(domain, path, value))
    lines = [line for line in msg.splitlines() if f": {key_of(path)}" in line]
    assert lines, msg  # the key is named where the message says what is wrong
    # a finite number is wanted; a list of integer ids or one of a few values (step_h)
    said = ("not a finite number; NaN and ±inf are not allowed", "expected a rule", "should be")
    assert any(s in line for s in said for line in lines), msg


def test_the_generated_rows_reach_nested_lists_and_optional_blocks() -> None:
    """The generator finds what a hand-written table would forget."""
    energy = {".".join(map(str, p)) for p in numeric_fields("energy")}
    routing = {".".join(map(str, p)) for p in numeric_fields("routing")}
    traffic = {".".join(map(str, p)) for p in numeric_fields("traffic")}
    assert {"community.battery.capacity_kwh.0", "community.battery.capacity_kwh.1"} <= energy
    assert {"window.step_h", "window.test.0.days", "controllers.0.mip_gap"} <= energy
    assert {"community.feeders.assignment.0", "train.es.sigma", "graph.groups.0"} <= energy
    assert {"traffic.profile.0.rate_pkt_per_step", "network.generator.side_km"} <= routing
    assert "demand.profile.0.side_weights.north" in traffic
    assert len(NON_FINITE_ROWS) == 3 * (len(energy) + len(routing) + len(traffic))
    # a generated mutation is a plain --set item
    path = ("traffic", "profile", 0, "rate_pkt_per_step")
    assert mutation("routing", path, ".nan") == (
        "traffic.profile=[{rate_pkt_per_step: .nan, steps: 100}, "
        "{rate_pkt_per_step: 3.3333333333333335, steps: 100}, "
        "{rate_pkt_per_step: 1.0, steps: 100}]"
    )


# -- checkpoints that are not policies of the scenario --------------------------------------------
def test_checkpoints_that_do_not_load_or_fit_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"format": "someone.else/1"}, other)
    plain = tmp_path / "list.pt"
    torch.save([1, 2, 3], plain)
    damaged = tmp_path / "damaged.pt"
    torch.save({"format": "gridmarl.matppo/1"}, damaged)
    pickled = tmp_path / "code.pt"
    torch.save({"format": "gridmarl.matppo/1", "x": Path("/")}, pickled)  # needs unpickling
    for path, expected in (
        (other, "not a MATPPO checkpoint (format 'someone.else/1'"),
        (plain, "not a MATPPO checkpoint"),
        (damaged, "damaged checkpoint: it does not record its weight shapes"),
        (pickled, "not a readable checkpoint (UnpicklingError"),
        (tmp_path, "not a readable checkpoint"),
    ):
        msg = refusal("routing", f"controllers=[{{name: matppo, checkpoint: '{path}'}}]")
        assert f"controllers[matppo].checkpoint: {path}: " in msg and expected in msg, msg


def test_shipped_scenarios_pass_and_keep_their_checkpoints() -> None:
    for path in SCENARIOS.values():
        check_for_simulate(load_scenario(path))


# -- the shape validate checks is the env's ---------------------------------------------------------
def _energy_env() -> tuple[Any, Any]:
    from gridmarl.energy.data import build_community
    from gridmarl.energy.simulate import make_eval_env

    sc = load_scenario(
        SCENARIOS["energy"],
        [
            "community.prosumers=3",
            "window.evaluate.days=1",
            "community.ev.rate_feature=true",
            "community.ev.action_prior=true",
            "community.market.broadcast_loading=true",
            "community.heat_pump.modes=4",
            "community.forecast.horizon_h=5",
            BASELINES["energy"],
        ],
    )
    return sc, make_eval_env(sc, build_community(sc, "evaluate"))


def _routing_env() -> tuple[Any, Any]:
    from gridmarl.routing.simulate import make_env
    from gridmarl.routing.topology import load_topology

    sc = load_scenario(
        SCENARIOS["routing"],
        ["network.topology=data/topologies/Abilene.graphml", BASELINES["routing"]],
    )
    return sc, make_env(sc, load_topology(sc))


def _traffic_env() -> tuple[Any, Any]:
    from gridmarl.traffic.engines import check_engine
    from gridmarl.traffic.env import TrafficEnv

    try:
        check_engine("sumo")
    except ScenarioError as exc:
        pytest.skip(f"SUMO is not usable here: {exc}")
    sc = load_scenario(
        SCENARIOS["traffic"],
        [
            "grid={rows: 2, cols: 3, lanes: 3, road_length_m: 100}",
            "demand.profile=[{duration_s: 60, rate_veh_per_s: 0.5}]",
            "traffic={horizon_s: 60, decision_s: 10, pressure_features: true, "
            "neighbor_features: true}",
            BASELINES["traffic"],
        ],
    )
    return sc, TrafficEnv(sc)


@pytest.mark.parametrize(
    "make", [_energy_env, _routing_env, _traffic_env], ids=lambda f: f.__name__
)
def test_policy_shape_from_the_scenario_is_the_envs(make) -> None:
    sc, env = make()
    try:
        assert domains.of(sc).shape_for(sc) == PolicyShape.of(env.spec)
    finally:
        env.close()


# -- the command line: exit code 2, one message, nothing run ----------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridmarl.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
    )


# fmt: off
@pytest.mark.parametrize(
    ("command", "domain", "mutation", "expected"),
    [
        ("validate", "energy", "community.battery.capacity_kwh=[nan, 5]", "community.battery.capacity_kwh.0"),
        ("validate", "energy", "controllers=[{name: matppo, checkpoint: /dev/null}]", "controllers[matppo].checkpoint: /dev/null"),
        ("simulate", "energy", "controllers=[]", "controllers: no controller listed"),
        ("simulate", "traffic", "demand.turning={left: 0.5, straight: 0.7, right: 0.15}", "must sum to 1"),
        ("simulate", "routing", "traffic.profile=[{steps: 300, rate_pkt_per_step: 1e6}]", "packet pool holds at most"),
        ("train", "energy", "train.options.lr=.nan", "train.options"),
        ("finetune", "energy", "train.es.sigma=.inf", "train.es.sigma"),
    ],
)
# fmt: on
def test_cli_refuses_with_exit_2(
    tmp_path: Path, command: str, domain: str, mutation: str, expected: str
) -> None:
    out = tmp_path / "runs"
    where = [] if command == "validate" else ["--out", str(out)]
    proc = run_cli(command, str(SCENARIOS[domain]), "--set", mutation, *where)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert not out.exists()  # refused before a run folder, let alone a controller


def test_cli_bad_options_exit_2(tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "runs")]
    proc = run_cli("train", str(SCENARIOS["routing"]), "--seed", "-1", *out)
    assert proc.returncode == 2 and "--seed -1: allowed: 0" in proc.stderr, proc.stderr
    proc = run_cli("finetune", str(SCENARIOS["routing"]), "--threads", "0", *out)
    assert proc.returncode == 2 and "--threads 0: allowed: 1 or more" in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists()
