"""Scenario files: YAML read with ``yaml.safe_load``, validated by pydantic v2 models.

The scenario is a discriminated union on ``domain`` over the registered domains
(``gridmarl.domains``: ``energy`` | ``traffic`` | ``routing``).
Every model forbids unknown keys and every number in a scenario is finite: ``StrictModel``
refuses NaN and ±inf for every float field of every model (``allow_inf_nan=False``, which
pydantic applies to the floats inside tuples, lists and dicts of a model's fields too), and the
free-form ``options`` mappings refuse them at any depth (``Options``).  ``load_scenario`` turns
every problem into a ``ScenarioError`` whose message names the file, the key, the value and
what is allowed; the command line prints it and exits with code 2.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from gridmarl.core.errors import ScenarioError

__all__ = ["ScenarioError"]  # re-exported for users; gridmarl's own modules import core.errors

MAX_INPUT_ECHO = 80  # [chars] longest piece of user input repeated in an error message
SEED_LIMIT = 2**28  # seeds of a scenario (and --seed) lie in 0 … SEED_LIMIT - 1 (docs/protocol.md)


# top-level scenario keys a training variant (``train.variants``) may not change: they describe
# the run, not the env it trains on
VARIANT_FORBIDDEN_KEYS = ("name", "domain", "seed", "train", "controllers", "window")


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are validated on assignment,
    and no float is NaN or ±inf (``allow_inf_nan=False``: every float field of every model
    that inherits this, floats in tuples, lists and dicts included).

    Fields named in ``OMIT_WHEN_NONE`` are left out of ``model_dump`` while they are None:
    optional blocks added to the schema later do not change the dump (and so the scenario and
    policy hashes) of a scenario that does not use them.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False
    )
    OMIT_WHEN_NONE: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in self.OMIT_WHEN_NONE:
                if getattr(self, name) is None:
                    data.pop(name, None)
        return data


def non_finite_path(value: Any, path: str = "") -> str | None:
    """The dotted path (``a.b[2]``) of the first NaN or ±inf float inside ``value`` (mappings
    and lists searched in order), or None when every number is finite."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "<value>"
    if isinstance(value, dict):
        for k, v in value.items():
            found = non_finite_path(v, f"{path}.{k}" if path else str(k))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = non_finite_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _finite_options(value: dict[str, Any]) -> dict[str, Any]:
    bad = non_finite_path(value)
    if bad is not None:
        raise ValueError(f"{bad} is not a finite number; NaN and ±inf are not allowed")
    return value


#: a free-form ``options`` mapping (controller settings, hyper-parameters): any keys, checked
#: by whoever reads them, but no NaN or ±inf at any depth (the same rule as every float field)
Options = Annotated[dict[str, Any], AfterValidator(_finite_options)]


def file_stem(name: str) -> str:
    """``name`` with every character but letters, digits and ``_ . + -`` replaced by ``_``: a
    controller label such as ``matppo[run/best]`` names a file in the run folder, not a folder."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


class ControllerEntry(StrictModel):
    """One controller that ``simulate`` runs, with its options.

    Which names exist depends on the domain (``gridmarl validate`` lists them).
    """

    name: str = Field(description="registered controller name, e.g. matppo, rule_based, milp, mpc")
    label: str | None = Field(
        None,
        description="name used in tables and file names (default: name); distinct per entry; "
        "characters other than letters, digits and _ . + - become _ in file names",
    )
    checkpoint: str | None = Field(
        None, description="policy checkpoint path, relative to the repo or the scenario file"
    )
    time_limit_s: float | None = Field(None, gt=0, description="solver time limit [s]")
    mip_gap: float | None = Field(None, ge=0, lt=1, description="relative MIP gap to stop at [-]")
    threads: int | None = Field(None, ge=1, description="solver threads")
    horizon_h: float | None = Field(None, gt=0, description="MPC look-ahead [h]")
    forecast: Literal["perfect", "noisy"] | None = Field(
        None, description="MPC forecast: the env's own forecast kind by default"
    )
    options: Options = Field(default_factory=dict, description="controller-specific extra options")

    @property
    def display_name(self) -> str:
        """The label used in tables and file names."""
        return self.label or self.name


class ESConfig(StrictModel):
    """``gridmarl finetune``: evolution strategies on a trained actor (``controllers/es.py``)."""

    generations: int = Field(200, ge=0, description="ES generations (one update each)")
    pairs: int = Field(
        24, ge=1, description="antithetic pairs of weight perturbations per generation"
    )
    episodes: int = Field(
        4, ge=1, description="training episodes per generation, the same for every perturbation"
    )
    sigma: float = Field(
        0.01, gt=0, description="standard deviation of the weight perturbations [-]"
    )
    lr: float = Field(0.002, gt=0, description="Adam step size on the actor's weights")


class WorkersConfig(StrictModel):
    """Where a domain's simulator workers run while training (``train.workers``; only domains
    whose training env runs worker processes have the key).  Either backend gives the same
    episodes for the same seeds (docs/scaling.md)."""

    backend: Literal["process", "ray"] = Field(
        "process",
        description="process: local worker processes; ray: Ray actors on any node of the "
        "cluster (needs the cluster extra)",
    )
    count: int | None = Field(
        None,
        ge=1,
        description="simulator workers, one parallel simulation each; default and only allowed "
        "value: train.num_envs",
    )
    address: str | None = Field(
        None,
        description="Ray cluster to join (auto, HOST:6379, ray://HOST:10001); default: "
        "RAY_ADDRESS, else a local Ray",
    )


class TrainBase(StrictModel):
    """Defaults for ``gridmarl train`` shared by every domain (command-line flags override).

    Domains subclass it to set their own defaults and add keys (energy: ``episode_days``).
    """

    OMIT_WHEN_NONE: ClassVar[tuple[str, ...]] = ("controller", "controller_options", "variants")

    steps: int = Field(2_000_000, ge=1, description="agent-steps budget (env steps x agents)")
    num_envs: int = Field(64, ge=1, description="parallel episodes B")
    controller: str | None = Field(
        None,
        description="the learned controller gridmarl train trains without --controller "
        "(default: the registry's default, matppo); train.options are its hyper-parameters",
    )
    options: Options = Field(
        default_factory=dict,
        description="hyper-parameters of train.controller; when that is set, other learners "
        "start from their papers' defaults unless controller_options names them",
    )
    controller_options: dict[str, Options] | None = Field(
        None,
        description="hyper-parameters per learned controller name, for --controller NAME "
        "(an entry for train.controller replaces train.options)",
    )
    es: ESConfig = Field(
        default_factory=ESConfig, description="ES fine-tuning of a trained policy (finetune)"
    )
    variants: list[dict[str, Any]] | None = Field(
        None,
        description="more training envs: each a mapping of dotted scenario keys to values "
        "(as --set; energy: {community.prosumers: 80}); rollouts cycle over the scenario and "
        "each variant, and validation scores the mean over all of them (learners that can "
        "mix envs only: gridmarl/train.py)",
    )

    @field_validator("controller")
    @classmethod
    def _known_controller(cls, v: str | None) -> str | None:
        if v is not None:
            _check_learner_name(v)
        return v

    @field_validator("variants")
    @classmethod
    def _variant_keys(cls, v: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, variant in enumerate(v or []):
            if not variant:
                raise ValueError(f"variants[{i}] is empty: give dotted keys and their values")
            for key in variant:
                top = str(key).split(".", 1)[0]
                if top in VARIANT_FORBIDDEN_KEYS or not str(key).strip("."):
                    raise ValueError(
                        f"variants[{i}]: key {key!r} cannot vary between training envs "
                        f"(not allowed: {', '.join(VARIANT_FORBIDDEN_KEYS)}); a variant "
                        "changes what the env simulates (energy: community.prosumers)"
                    )
        return v

    @field_validator("controller_options")
    @classmethod
    def _known_controllers(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for name in v or {}:
            _check_learner_name(name)
        return v


def _check_learner_name(name: str) -> None:
    """Refuse a name that is not a registered learned controller."""
    from gridmarl.controllers import registry  # torch-free

    if name not in registry.REGISTRY:
        raise ValueError(
            f"unknown learned controller {name!r}; allowed: {', '.join(registry.names())}"
        )


class GraphConfig(StrictModel):
    """The agents' interaction graph and groups (``AgentSpec.neighbors`` / ``groups``), which
    graph-based controllers read; observations, actions, rewards and costs do not depend on
    them.  Each key is a named rule of the domain or an explicit list; unset keys take the
    domain's default rule (docs/architecture.md, "Interaction graph and groups")."""

    groups: list[int] | str | None = Field(
        None,
        description="a named rule of the domain (energy: devices | feeders; routing: "
        "core_edge | single; traffic: boundary | blocks) or one group id per agent, "
        "0 … G-1 with every id used",
    )
    neighbors: list[list[int]] | str | None = Field(
        None,
        description="a named rule of the domain (energy: feeder; routing: links; traffic: "
        "roads) or, per agent, the indices of its neighbours (symmetric, no self-loops; not "
        "for routing, whose neighbours are its action slots)",
    )

    @field_validator("groups", mode="before")
    @classmethod
    def _groups_shape(cls, v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if not isinstance(v, list) or not all(_is_int(x) for x in v):
            raise ValueError("expected a rule name or a list of integer group ids, one per agent")
        return v

    @field_validator("neighbors", mode="before")
    @classmethod
    def _neighbors_shape(cls, v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if not isinstance(v, list) or not all(
            isinstance(row, list) and all(_is_int(x) for x in row) for row in v
        ):
            raise ValueError(
                "expected a rule name or a list of lists of integer agent indices, one per agent"
            )
        return v


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class ScenarioBase(StrictModel):
    """Keys shared by every domain.

    Domains set ``GRAPH_GROUPS`` and ``GRAPH_NEIGHBORS`` (their named rules for ``graph``, the
    default first), ``GRAPH_EXPLICIT_NEIGHBORS`` (whether ``graph.neighbors`` may be a list)
    and implement ``agent_count``.
    """

    OMIT_WHEN_NONE: ClassVar[tuple[str, ...]] = ("graph",)
    GRAPH_GROUPS: ClassVar[tuple[str, ...]] = ()
    GRAPH_NEIGHBORS: ClassVar[tuple[str, ...]] = ()
    GRAPH_EXPLICIT_NEIGHBORS: ClassVar[bool] = True

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$",
        max_length=80,
        description="scenario name; names the run folder",
    )
    seed: int = Field(
        0,
        ge=0,
        lt=SEED_LIMIT,
        description="drives numpy, torch and the simulators; simulate evaluates seed, seed+1, "
        "…, which stay below the seeds gridmarl derives for training, validation and tests "
        "(2**30 and up, docs/protocol.md)",
    )
    description: str = Field("", description="free text")
    controllers: list[ControllerEntry] = Field(
        default_factory=list, description="what simulate runs, in order"
    )
    graph: GraphConfig | None = Field(
        None,
        description="override of the agents' interaction graph and groups (default: the "
        "domain's rules)",
    )
    _source: str = PrivateAttr("<scenario>")
    _base_dir: Path | None = PrivateAttr(None)

    @field_validator("controllers")
    @classmethod
    def _distinct_names(cls, entries: list[ControllerEntry]) -> list[ControllerEntry]:
        # tables and files are named by the label: two entries of one name would share a row
        # name and overwrite each other's schedules
        seen: dict[str, int] = {}
        for i, e in enumerate(entries):
            j = seen.setdefault(file_stem(e.display_name), i)
            if j != i:
                first, this = entries[j].display_name, e.display_name
                raise ValueError(
                    f"entries {j} and {i} are both named {first!r}"
                    + (f" / {this!r}" if this != first else "")
                    + " in tables and file names; give one a distinct 'label'"
                )
        return entries

    @property
    def source(self) -> str:
        """Where the scenario was read from (file path or ``<scenario>``)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the scenario are resolved against."""
        return self._base_dir or Path.cwd()

    def agent_count(self) -> int:
        """Number of agents ``N`` of the domain's env (what ``graph`` lists are checked
        against)."""
        raise NotImplementedError(f"{type(self).__name__} does not count its agents")

    def graph_rule(self, key: Literal["groups", "neighbors"]) -> str | list:
        """``graph.<key>`` of the scenario: a named rule (the domain's default when unset) or
        the explicit list as given (checked by :func:`check_graph`)."""
        value = getattr(self.graph, key) if self.graph is not None else None
        if value is None:
            return (self.GRAPH_GROUPS if key == "groups" else self.GRAPH_NEIGHBORS)[0]
        return value


def scenario_adapter():
    """A pydantic ``TypeAdapter`` for the discriminated union of every registered domain's
    scenario model (``gridmarl.domains``)."""
    from functools import reduce
    from operator import or_

    from pydantic import TypeAdapter

    from gridmarl import domains

    models = [domains.get(n).scenario_class() for n in domains.names()]
    union = Annotated[reduce(or_, models), Field(discriminator="domain")]
    return TypeAdapter(union)


def allowed_controllers(scenario: Any) -> str:
    """The controller names a scenario's domain accepts, for messages: its rule and
    optimisation baselines, then the learned controllers (which need a ``checkpoint``)."""
    from gridmarl import domains
    from gridmarl.controllers import registry

    dom = domains.of(scenario)
    infos = [registry.get(n) for n in registry.names()]
    learned = [i.name for i in infos if dom.refusal(i.name, i.action_kinds, i.needs_graph) is None]
    return ", ".join(dom.baselines) + (
        f"; learned, with a checkpoint: {', '.join(learned)}" if learned else ""
    )


def check_controllers(scenario: Any) -> None:
    """Every ``controllers`` entry names one of the domain's baselines or a learned controller
    that can act in the domain; a learned one has a ``checkpoint`` that exists (whether it
    fits: :func:`check_for_simulate`).

    Raises:
        ScenarioError: naming the entry and what is allowed.
    """
    from gridmarl import domains
    from gridmarl.controllers import registry

    dom = domains.of(scenario)
    learned = registry.names()
    for entry in scenario.controllers:
        if entry.name not in dom.baselines and entry.name not in learned:
            raise ScenarioError(
                f"controllers: unknown {dom.name} controller {entry.name!r}; "
                f"allowed: {allowed_controllers(scenario)}"
            )
        if entry.name in learned:
            info = registry.get(entry.name)
            why = dom.refusal(info.name, info.action_kinds, info.needs_graph)
            if why is not None:
                raise ScenarioError(
                    f"controllers[{entry.name}]: {why}; allowed: {allowed_controllers(scenario)}"
                )
            if entry.checkpoint is None:
                raise ScenarioError(
                    f"controllers[{entry.name}]: a learned controller needs 'checkpoint'"
                )
        if entry.checkpoint is not None and not resolve_path(scenario, entry.checkpoint).exists():
            raise ScenarioError(
                f"controllers[{entry.name}].checkpoint: file not found: {entry.checkpoint}"
            )


def check_for_simulate(scenario: Any) -> None:
    """What ``simulate`` needs beyond a valid scenario (``train`` and ``finetune`` run no
    listed controller and need none of it): at least one controller, and every learned
    controller's checkpoint loads safely (weights only) and fits the scenario's env:
    ``registry.check_policy`` against the domain's ``policy_shape``, the check ``simulate``
    makes when it loads the policy, made without building the env.  ``gridmarl validate``
    and ``gridmarl simulate`` call it after :func:`load_scenario`.

    Raises:
        ScenarioError: naming the source, the key and what is allowed.
    """
    from gridmarl import domains
    from gridmarl.controllers import registry

    if not scenario.controllers:
        raise ScenarioError(
            f"{scenario.source}: controllers: no controller listed; simulate runs the listed "
            f"controllers, so list at least one; allowed: {allowed_controllers(scenario)}"
        )
    dom = domains.of(scenario)
    shape = None
    for entry in scenario.controllers:
        if entry.name not in registry.names() or entry.checkpoint is None:
            continue
        shape = shape or dom.shape_for(scenario)
        try:
            registry.check_policy(entry.name, resolve_path(scenario, entry.checkpoint), shape)
        except ScenarioError as exc:
            raise ScenarioError(
                f"{scenario.source}: controllers[{entry.name}].checkpoint: {exc}"
            ) from None


def check_graph(scenario: Any) -> None:
    """``graph.groups`` and ``graph.neighbors`` name a rule of the domain or list valid entries
    for its ``agent_count()`` agents (``gridmarl.core.graph``).

    Raises:
        ScenarioError: naming the key and what is allowed.
    """
    from gridmarl.core.graph import check_groups, check_neighbors

    graph = getattr(scenario, "graph", None)
    if graph is None:
        return
    cls = type(scenario)
    explicit = cls.GRAPH_EXPLICIT_NEIGHBORS
    for key, rules, lists in (
        ("groups", cls.GRAPH_GROUPS, "a list of one group id per agent"),
        ("neighbors", cls.GRAPH_NEIGHBORS, "a list of neighbour lists, one per agent"),
    ):
        value = getattr(graph, key)
        allowed = ", ".join(rules) + (f" or {lists}" if key == "groups" or explicit else "")
        if isinstance(value, str) and value not in rules:
            raise ScenarioError(f"graph.{key}: unknown rule {_short(value)}; allowed: {allowed}")
        if key == "neighbors" and isinstance(value, list) and not explicit:
            raise ScenarioError(
                f"graph.neighbors: this domain's neighbours are fixed (its action slots); "
                f"allowed: {allowed}"
            )
    if isinstance(graph.groups, list) or isinstance(graph.neighbors, list):
        n = scenario.agent_count()
        if isinstance(graph.groups, list):
            check_groups(graph.groups, n)
        if isinstance(graph.neighbors, list):
            check_neighbors(graph.neighbors, n)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_INPUT_ECHO else text[: MAX_INPUT_ECHO - 3] + "..."


def format_validation_error(err: ValidationError, source: str) -> str:
    """One readable message per problem: ``source: key.path: what is wrong (got VALUE)``."""
    from gridmarl import domains

    known = ", ".join(domains.names())
    lines = []
    for e in err.errors():
        # the first part of a location is the union's tag (the domain); a key of the same name
        # further in (routing's ``traffic`` block) is a key
        parts = e["loc"][1:] if e["loc"] and e["loc"][0] in domains.DOMAINS else e["loc"]
        loc = ".".join(str(p) for p in parts)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here; check the spelling)"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown domain; allowed: {known}"
        elif e["type"] == "union_tag_not_found":
            msg = f"missing key 'domain'; allowed: {known}"
        elif e["type"] == "finite_number":
            msg = "not a finite number; NaN and ±inf are not allowed"
        got = (
            ""
            if e["type"] in ("missing", "union_tag_not_found")
            else f" (got {_short(e.get('input'))})"
        )
        lines.append(f"{source}: {loc or '<top level>'}: {msg}{got}")
    return "\n".join(lines[:20]) + (f"\n... and {len(lines) - 20} more" if len(lines) > 20 else "")


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``dotted.key=value``; the value is read as YAML (``3`` -> int, ``[1,2]`` -> list)."""
    if "=" not in item:
        raise ScenarioError(f"--set {_short(item)}: expected dotted.key=value")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ScenarioError(f"--set {_short(item)}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ScenarioError(f"--set {key}: value is not valid YAML ({_short(raw)})") from exc
    return parts, value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``--set`` overrides to the raw mapping (before validation)."""
    for item in overrides:
        parts, value = parse_override(item)
        node = data
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p) if isinstance(node, dict) else None
            if nxt is None:
                nxt = {}
                node[p] = nxt
            if not isinstance(nxt, dict):
                raise ScenarioError(
                    f"--set {'.'.join(parts)}: {'.'.join(parts[: i + 1])} is not a mapping"
                )
            node = nxt
        node[parts[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict:
    """Read a scenario file into a mapping, with clear errors for a missing file or bad YAML."""
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"{path}: file not found")
    if path.is_dir():
        raise ScenarioError(f"{path}: is a folder, expected a YAML scenario file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not a text file (UTF-8 decoding failed)") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ScenarioError(f"{path}: not valid YAML{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{path}: the top level must be a mapping of keys (name, domain, ...), "
            f"got {type(data).__name__}"
        )
    return data


def validate_scenario(data: dict, source: str = "<scenario>", base_dir: Path | None = None):
    """Validate a raw mapping into a domain scenario model, then run the domain's own checks."""
    try:
        scenario = scenario_adapter().validate_python(data)
    except ValidationError as err:
        raise ScenarioError(format_validation_error(err, source)) from None
    scenario._source = source
    scenario._base_dir = base_dir or Path.cwd()
    check = getattr(scenario, "check_resources", None)
    try:
        if check is not None:
            check()
        check_graph(scenario)
        check_controllers(scenario)
    except ScenarioError as err:
        raise ScenarioError(f"{source}: {err}") from None
    return scenario


def load_scenario(path: str | Path, overrides: list[str] | None = None):
    """Load, override and validate a scenario file.

    Raises:
        ScenarioError: naming the file, key, value and what is allowed.
    """
    data = read_yaml(path)
    data = apply_overrides(data, overrides or [])
    return validate_scenario(data, source=str(path), base_dir=Path(path).resolve().parent)


def variant_label(variant: dict[str, Any]) -> str:
    """``key=value,key=value`` of a training variant (its label in logs and validation)."""
    return ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in variant.items())


def variant_scenarios(scenario: Any) -> list[tuple[str, Any]]:
    """The scenarios of ``scenario.train.variants``: the scenario with each variant's keys
    applied (as ``--set``) and validated again, labelled by :func:`variant_label`.

    Raises:
        ScenarioError: a variant whose keys do not validate, naming the variant.
    """
    out = []
    for i, variant in enumerate(scenario.train.variants or []):
        label = variant_label(variant)
        data = scenario.model_dump(mode="json")
        data["train"].pop("variants", None)
        items = [f"{k}={json.dumps(v)}" for k, v in variant.items()]
        source = f"{scenario.source} (train.variants[{i}]: {label})"
        out.append(
            (label, validate_scenario(apply_overrides(data, items), source, scenario._base_dir))
        )
    return out


def scenario_hash(scenario: BaseModel, exclude: tuple[str, ...] = ()) -> str:
    """A stable SHA-256 of the validated scenario (for checkpoints and manifests).

    Args:
        scenario: a validated scenario.
        exclude: dotted keys left out of the hash (``"train"``, ``"window.evaluate"``), for
            hashes of only what something depends on; a missing key is ignored.
    """
    data = scenario.model_dump(mode="json")
    for dotted in exclude:
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_path(scenario: BaseModel, path: str | Path) -> Path:
    """Resolve a path from a scenario: absolute, relative to the cwd, or to the scenario file."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    base = getattr(scenario, "base_dir", None)
    if base is not None:
        for cand in (Path(base) / p, Path(base).parent / p):
            if cand.exists():
                return cand
    return p
