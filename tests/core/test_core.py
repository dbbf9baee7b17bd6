"""Core contract: types, ScheduleController, atomic writes, run folders."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from gridmarl.core import Action, AgentSpec, Observation, ScheduleController, check_action
from gridmarl.core.io import new_run_dir, write_csv, write_text
from gridmarl.core.seeding import resolve_device


def _spec(n: int = 3) -> AgentSpec:
    return AgentSpec(
        n_agents=n,
        local_dim=4,
        forecast_len=2,
        forecast_dim=3,
        state_dim=5,
        global_dim=2,
        n_discrete=3,
        n_continuous=2,
        groups=torch.zeros(n, dtype=torch.long),
        neighbors=torch.full((n, 1), -1, dtype=torch.long),
    )


def _obs(b: int, n: int) -> Observation:
    return Observation(
        local=torch.zeros(b, n, 4),
        forecast=torch.zeros(b, n, 2, 3),
        state=torch.zeros(b, n, 5),
        global_=torch.zeros(b, 2),
    )


def test_spec_rejects_inconsistent_shapes() -> None:
    with pytest.raises(ValueError, match="groups"):
        AgentSpec(
            2,
            1,
            0,
            0,
            1,
            1,
            2,
            0,
            torch.zeros(3, dtype=torch.long),
            torch.zeros(2, 1, dtype=torch.long),
        )
    with pytest.raises(ValueError, match="discrete or a continuous"):
        AgentSpec(
            2,
            1,
            0,
            0,
            1,
            1,
            0,
            0,
            torch.zeros(2, dtype=torch.long),
            torch.zeros(2, 1, dtype=torch.long),
        )
    assert _spec().agent_names == ("agent_0", "agent_1", "agent_2")


def test_schedule_controller_replays_in_order_and_refuses_overrun() -> None:
    disc = torch.tensor([[0, 1, 2], [2, 1, 0]])
    cont = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2) / 12
    ctrl = ScheduleController("s", disc, cont)
    ctrl.reset(None)  # type: ignore[arg-type]
    a0 = ctrl.act(_obs(4, 3))
    a1 = ctrl.act(_obs(4, 3))
    assert a0.discrete.shape == (4, 3) and torch.equal(a0.discrete[2], disc[0])
    assert torch.equal(a1.discrete[0], disc[1]) and torch.allclose(a1.continuous[3], cont[1])
    check_action(_spec(), a1, 4)
    with pytest.raises(IndexError, match="only 2 steps"):
        ctrl.act(_obs(4, 3))
    ctrl.reset(None)  # type: ignore[arg-type]
    assert torch.equal(ctrl.act(_obs(1, 3)).discrete[0], disc[0])


def test_check_action_names_the_bad_shape() -> None:
    bad = Action(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match=r"action.continuous has shape \(2, 3, 1\)"):
        check_action(_spec(), bad, 2)


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    write_text(target, "old\n")

    class Boom(Exception):
        pass

    class BadFrame(pd.DataFrame):
        def to_csv(self, *a, **k):  # type: ignore[override]
            Path(a[0]).write_text("half")
            raise Boom

    with pytest.raises(Boom):
        write_csv(target, BadFrame({"a": [1]}))
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_atomic_write_gives_normal_permissions(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_run_dirs_are_never_reused(tmp_path: Path) -> None:
    dirs = {new_run_dir(tmp_path, "sc") for _ in range(5)}
    assert len(dirs) == 5 and all(d.is_dir() and d.parent.name == "sc" for d in dirs)


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    # auto picks the GPU exactly when one is present
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="allowed: auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
