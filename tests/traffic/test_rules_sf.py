"""MaxPressure on a hand-built state; store-and-forward split against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines_opt.traffic_sf import SFProblem, plan_steps, solve_sf
from gridmarl.core.types import Observation
from gridmarl.traffic.rules import MaxPressure, PressureModel


def _obs(phase: list[int], veh: list[list[float]], mask=None) -> Observation:
    p = 3
    n, lanes = len(veh), len(veh[0])
    onehot = torch.nn.functional.one_hot(torch.tensor(phase), p).float()
    v = torch.tensor(veh)
    local = torch.cat([onehot, v, torch.zeros(n, lanes)], -1)[None]
    return Observation(
        local=local,
        forecast=torch.zeros(1, n, 0, 0),
        state=local,
        global_=torch.zeros(1, 3),
        action_mask=mask,
    )


def _two_nodes() -> PressureModel:
    # node 0: lanes 0, 1, 2; node 1: lanes 0, 1, 2 (flat index 3..5).  Movements of node 0:
    # m0 lane 0 -> node 1's lane 0 (flat 3); m1 lane 1 -> leaves the grid; m2 lane 2 -> node 1's
    # road with lanes 1 and 2 (flat 4, 5; weight 1/2 each).  Node 1: m0 lane 0 -> exit.
    move_in = torch.tensor([[0, 1, 2], [0, -1, -1]])
    move_out = torch.zeros(6, 6)
    move_out[0, 3] = 1.0
    move_out[2, 4] = move_out[2, 5] = 0.5
    phase_moves = torch.tensor(
        [[[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 0], [0, 0, 0]]], dtype=torch.bool
    )
    return PressureModel(3, 3, move_in, move_out, phase_moves)


def test_max_pressure_picks_highest_pressure_phase():
    mp = MaxPressure(_two_nodes())
    obs = _obs([0, 1], [[5.0, 3.0, 6.0], [4.0, 2.0, 6.0]])
    # node 0: p0 = 5 - 4 = 1, p1 = 3 - 0 = 3, p2 = 6 - (2 + 6) / 2 = 2  -> phase 1
    # node 1: p0 = 4, p1 = p2 = 0 -> phase 0
    pr = mp.model.pressures(obs)
    assert torch.allclose(pr[0], torch.tensor([[1.0, 3.0, 2.0], [4.0, 0.0, 0.0]]))
    assert mp.act(obs).discrete.tolist() == [[1, 0]]
    # masking phase 1 at node 0 leaves phase 2 as the best allowed one
    mask = torch.tensor([[[True, False, True], [True, True, True]]])
    assert mp.act(_obs([0, 1], [[5.0, 3.0, 6.0], [4.0, 2.0, 6.0]], mask)).discrete.tolist() == [
        [2, 0]
    ]


def test_max_pressure_tie_keeps_current_phase():
    mp = MaxPressure(_two_nodes())
    obs = _obs([2, 1], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert mp.act(obs).discrete.tolist() == [[2, 1]]


def test_sf_split_matches_webster_equisaturation_by_hand():
    # one intersection, a north-south road (0.4 veh/s) and an east-west road (0.2 veh/s),
    # saturation 1 veh/s, cycle 60 s, lost 6 s -> 54 s of green.  Under capacity, so the queues
    # stay empty and stage 2 equalises the degree of saturation:
    # g_ns / 60 = 0.4 (1 + r), g_ew / 60 = 0.2 (1 + r), g_ns + g_ew = 54 -> g_ns = 36, g_ew = 18.
    pb = SFProblem(
        node=np.array([0, 0]),
        serves=np.array([[True, False], [False, True]]),
        sat_veh_per_s=np.array([1.0, 1.0]),
        demand_veh_per_s=np.array([[0.4], [0.2]]),
        turn=np.zeros((2, 2)),
        n_nodes=1,
        period_s=300.0,
        cycle_s=60.0,
        lost_s=6.0,
        min_green_s=10.0,
    )
    sol = solve_sf(pb, time_limit_s=20)
    assert sol.green_s[0, :, 0] == pytest.approx([36.0, 18.0], abs=1e-4)
    assert sol.total_time_veh_s == pytest.approx(0.0, abs=1e-5)


def test_sf_oversaturated_serves_at_capacity():
    # demand 0.6 + 0.6 veh/s on 1 veh/s roads cannot be served (54/60 = 0.9 veh/s in total):
    # total time in queues is (1.2 - 0.9) veh/s growing over one 100 s period: 0.3*100*100/2.
    pb = SFProblem(
        node=np.array([0, 0]),
        serves=np.array([[True, False], [False, True]]),
        sat_veh_per_s=np.array([1.0, 1.0]),
        demand_veh_per_s=np.array([[0.6], [0.6]]),
        turn=np.zeros((2, 2)),
        n_nodes=1,
        period_s=100.0,
        cycle_s=60.0,
        lost_s=6.0,
        min_green_s=10.0,
    )
    sol = solve_sf(pb, time_limit_s=20)
    assert sol.total_time_veh_s == pytest.approx(0.3 * 100 * 100 / 2, rel=1e-6)


def test_plan_steps_follow_the_split(make_tiny):
    sc = make_tiny(traffic={"horizon_s": 120, "decision_s": 10})
    green = np.array([[[36.0], [18.0]]])  # 2/3 of the cycle to phase 0
    steps = plan_steps(green, sc, period_s=120.0, cycle_s=60.0)
    assert steps[:, 0].tolist() == [0, 0, 0, 0, 1, 1] * 2
