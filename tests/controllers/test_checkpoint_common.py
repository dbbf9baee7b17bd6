"""The learners' shared checkpoint pieces (``controllers/common/checkpoint.py``) and the
unknown-option check (``controllers/common/options.py``), on a tiny dataclass config."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from gridmarl.controllers.common.checkpoint import (
    CheckpointedLearner,
    check_learner_checkpoint,
    check_same_config,
    learner_state,
    restore_progress,
    save_learner,
)
from gridmarl.controllers.common.options import reject_unknown_options
from gridmarl.core.errors import ScenarioError

from .toy_env import ToyEnv

FIELDS = ("local_dim", "n_discrete")


@dataclass
class Cfg:
    hidden: int = 4
    head: str = "table"

    def check(self) -> None:
        if self.hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {self.hidden}")


def _state(**structure: int) -> dict:
    spec = ToyEnv(n_agents=2, num_envs=1).spec
    state = learner_state("toy/1", Cfg(), spec, FIELDS, 7, 40, 3, structure=structure or None)
    return {**state, "weights": torch.arange(3.0), "meta": {"scenario": "s"}}


def test_save_learner_writes_the_file_and_its_sidecar(tmp_path: Path) -> None:
    state = _state(groups=2)
    save_learner(
        tmp_path / "c.pt", state, "toy", {"scenario": "s", "when": Path("/x")}, ("structure",)
    )
    back = torch.load(tmp_path / "c.pt", weights_only=True)
    assert list(back)[:4] == ["format", "config", "shapes", "structure"]
    assert torch.equal(back["weights"], torch.arange(3.0)) and back["seed"] == 7
    sidecar = json.loads((tmp_path / "c.json").read_text())
    assert list(sidecar) == [
        "format", "controller", "file", "seed", "agent_steps", "updates", "shapes",
        "structure", "forecast_len", "n_agents", "config", "scenario", "when",
    ]  # fmt: skip
    assert sidecar["file"] == "c.pt" and sidecar["controller"] == "toy"
    assert sidecar["shapes"] == {"local_dim": 3, "n_discrete": 3} and sidecar["when"] == "/x"
    assert sidecar["agent_steps"] == 40 and sidecar["updates"] == 3


def test_check_learner_checkpoint_reads_and_refuses(tmp_path: Path) -> None:
    spec = ToyEnv(n_agents=2, num_envs=1).spec
    good = tmp_path / "good.pt"
    torch.save(_state(), good)
    kw = {"fmt": "toy/1", "what": "Toy", "config_class": Cfg, "shape_fields": FIELDS}
    assert check_learner_checkpoint(good, spec, None, **kw)["seed"] == 7

    bad_cfg = {**_state(), "config": {"hidden": 0, "bogus": 1}}
    wrong_shape = {**bad_cfg, "shapes": {"local_dim": 9, "n_discrete": 3}}
    for name, state in (("cfg", bad_cfg), ("both", wrong_shape)):
        torch.save(state, tmp_path / f"{name}.pt")
    with pytest.raises(ScenarioError, match=r"damaged Toy checkpoint: its hyper-parameters or"):
        check_learner_checkpoint(tmp_path / "cfg.pt", spec, None, **kw)
    # fixed shape fields: the shapes are compared before the hyper-parameters are read ...
    with pytest.raises(ScenarioError, match="local_dim=9 in the checkpoint but 3 in the env"):
        check_learner_checkpoint(tmp_path / "both.pt", spec, None, **kw)
    # ... shape fields that depend on the hyper-parameters: those are read first
    with pytest.raises(ScenarioError, match=r"damaged Toy checkpoint \(TypeError"):
        check_learner_checkpoint(
            tmp_path / "both.pt", spec, None, **{**kw, "shape_fields": lambda c: FIELDS},
            unreadable="",
        )  # fmt: skip

    torch.save({**_state(), "config": {"hidden": 0}}, tmp_path / "zero.pt")
    check_learner_checkpoint(tmp_path / "zero.pt", spec, None, **kw)  # check() not asked for
    with pytest.raises(ScenarioError, match="ValueError: hidden must be >= 1"):
        check_learner_checkpoint(tmp_path / "zero.pt", spec, None, **kw, check_config=True)
    with pytest.raises(ScenarioError, match="KeyError: 'nets'"):
        check_learner_checkpoint(good, spec, None, **kw, required_keys=("nets",))
    torch.save({**_state(), "structure": 3}, tmp_path / "flat.pt")
    with pytest.raises(ScenarioError, match="TypeError"):
        check_learner_checkpoint(tmp_path / "flat.pt", spec, None, **kw, dict_keys=("structure",))
    with pytest.raises(ScenarioError, match="not a Other checkpoint"):
        check_learner_checkpoint(good, spec, None, **{**kw, "fmt": "other/1", "what": "Other"})


class Toy(CheckpointedLearner):
    config_class = Cfg

    def __init__(self, spec, config, device="cpu", seed=0, tag: str = "") -> None:
        self.spec, self.cfg, self.seed, self.tag = spec, config, seed, tag
        self.agent_steps, self.updates, self.meta = 0, 0, {}

    @classmethod
    def checkpoint_checks(cls) -> dict:
        return {"fmt": "toy/1", "what": "Toy", "config_class": Cfg, "shape_fields": FIELDS}

    def load(self, path, scenario_hash=None) -> None:
        state = self.check_checkpoint(path, self.spec, scenario_hash)
        check_same_config(path, state, self)
        restore_progress(self, state)


def test_checkpointed_learner_builds_from_a_checkpoint(tmp_path: Path) -> None:
    spec = ToyEnv(n_agents=2, num_envs=1).spec
    torch.save({**_state(), "config": {"hidden": 5, "head": "x"}}, tmp_path / "c.pt")
    learner = Toy.from_checkpoint(tmp_path / "c.pt", spec, tag="t")
    assert learner.cfg == Cfg(hidden=5, head="x") and learner.seed == 7 and learner.tag == "t"
    assert (learner.progress().agent_steps, learner.progress().updates) == (40, 3)
    assert learner.meta == {"scenario": "s"}
    other = Toy(spec, Cfg())
    with pytest.raises(ScenarioError, match="differ from this controller's; build it with Toy"):
        other.load(tmp_path / "c.pt")


def test_unknown_options_are_named_with_the_allowed_ones() -> None:
    reject_unknown_options(Cfg, {"hidden": 3}, "Toy")
    with pytest.raises(ScenarioError) as err:
        reject_unknown_options(Cfg, {"zz": 1, "aa": 2}, "Toy")
    assert str(err.value) == "train.options: unknown Toy option(s) aa, zz; allowed: head, hidden"


def test_load_parts_restores_modules_generators_and_progress(tmp_path: Path) -> None:
    from gridmarl.controllers.common.checkpoint import load_parts

    class Holder:
        agent_steps = updates = 0
        meta: dict = {}

    net, gen = torch.nn.Linear(3, 2), torch.Generator().manual_seed(5)
    state = {
        "net": torch.nn.Linear(3, 2).state_dict(),
        "rng": {"g": torch.Generator().manual_seed(9).get_state()},
        "agent_steps": 12,
        "updates": 3,
        "meta": {"a": 1},
    }
    holder = Holder()
    load_parts(tmp_path / "ck.pt", state, holder, {"net": net}, {"g": gen})
    assert torch.equal(net.weight, state["net"]["weight"])
    assert torch.equal(gen.get_state(), state["rng"]["g"])
    assert (holder.agent_steps, holder.updates, holder.meta) == (12, 3, {"a": 1})
    # weights of another size: the file is named, not a bare RuntimeError
    state["net"] = torch.nn.Linear(4, 2).state_dict()
    with pytest.raises(ScenarioError, match=r"ck\.pt: weights do not fit this env"):
        load_parts(tmp_path / "ck.pt", state, holder, {"net": net}, {"g": gen})


def test_every_learner_names_the_file_when_its_weights_do_not_fit(tmp_path: Path) -> None:
    """A checkpoint whose recorded shapes fit but whose weights do not (edited, or written by
    another version) is refused with the file named, by every learner family."""
    from gridmarl.controllers.dqn import DQN
    from gridmarl.controllers.matppo import MATPPO, MATPPOConfig

    spec = ToyEnv(n_agents=2, num_envs=1).spec
    for cls, cfg, key in (
        (MATPPO, MATPPOConfig(num_envs=1, lstm_hidden=4, feat_dim=8), "actor"),
        (DQN, DQN.config_class(), "actor"),
    ):
        path = tmp_path / f"{cls.__name__}.pt"
        learner = cls(spec, cfg, seed=0)
        learner.save(path)
        state = torch.load(path, weights_only=True)
        first = next(iter(state[key]))
        state[key][first] = torch.zeros(7, 7, 7)
        torch.save(state, path)
        with pytest.raises(ScenarioError, match=rf"{cls.__name__}\.pt: weights do not fit"):
            cls.from_checkpoint(path, spec)
