"""MaxPressure on a hand-built state; store-and-forward split against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines_opt.traffic_sf import (
    SFProblem,
    _cyclic_queue,
    coordinate,
    plan_steps,
    slot_splits,
    solve_sf,
)
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


def test_outgoing_term_equals_the_dense_weights_times_the_counts(make_tiny):
    """The outgoing term is a gather over each movement's downstream lanes; it must equal the
    documented dense form ``veh @ move_out.T`` (hand-built model and the tiny grid's)."""
    g = torch.Generator().manual_seed(0)
    models = [_two_nodes()]
    from gridmarl.traffic.env import TrafficEnv

    env = TrafficEnv(make_tiny())
    try:
        models.append(PressureModel.from_layout(env.layout))
    finally:
        env.close()
    for m in models:
        n, lanes = m.move_in.shape[0], m.n_lanes
        veh = torch.randint(0, 20, (3, n, lanes), generator=g).float()
        x_in = torch.gather(veh, 2, m.move_in.clamp(min=0).expand(3, n, -1)) * (m.move_in >= 0)
        x_out = (veh.reshape(3, -1) @ m.move_out.T).reshape(3, n, -1)
        dense = (m.phase_moves.float()[None] * (x_in - x_out)[:, :, None, :]).sum(-1)
        assert torch.equal(m.pressures_of(veh), dense)


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


def test_slot_splits_by_hand():
    # 60 s cycle of 10 s steps, min 2 steps per phase: 36/18 s -> shares 4 / 2 steps;
    # 27/27 -> 3 / 3; 50/4 -> the min-green floor holds phase 1 at 2 steps.
    green = np.array([[[36.0, 27.0, 50.0], [18.0, 27.0, 4.0]]])
    assert slot_splits(green, 6, 2)[0].T.tolist() == [[4, 2], [3, 3], [4, 2]]
    # 40 s cycle: 4 steps, 2 + 2 whatever the split
    assert slot_splits(green, 4, 2)[0].T.tolist() == [[2, 2]] * 3


def test_cyclic_queue_by_hand():
    # 0.25 veh/s arrive every second of a 4 s cycle, green only in the last second (1 veh/s):
    # queue after each second .25, .5, .75, 0 -> mean 0.375 veh; 1 veh leaves in second 3.
    q, dep = _cyclic_queue(np.full((1, 4), 0.25), np.array([[0, 0, 0, 1]], bool), np.ones(1))
    assert q == pytest.approx([0.375])
    assert dep[0].tolist() == pytest.approx([0.0, 0.0, 0.0, 1.0])


def test_offsets_give_progression_by_hand(make_tiny):
    # two intersections in a row, 20 s apart; east-west traffic enters at node 0 (road 0,
    # 0.3 veh/s), crosses to node 1 (road 1); a light north-south entry at node 1 (road 2).
    # 40 s cycle of 10 s steps = 2 + 2 steps; phase 1 (east-west) is green in [23, 40) s of
    # each intersection's cycle.  Platoons leave node 0 in [23, 40) and reach node 1 20 s
    # later, so node 1 must run 20 s = 2 steps after node 0: offsets [0, 2], and then road 1
    # never queues (arrivals <= saturation flow, all in green).
    sc = make_tiny(traffic={"horizon_s": 120, "decision_s": 10, "min_green_s": 10, "yellow_s": 3})
    pb = SFProblem(
        node=np.array([0, 1, 1]),
        serves=np.array([[False, True], [False, True], [True, False]]),
        sat_veh_per_s=np.ones(3),
        demand_veh_per_s=np.array([[0.3], [0.0], [0.1]]),
        turn=np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
        n_nodes=2,
        period_s=120.0,
        cycle_s=40.0,
        lost_s=6.0,
        min_green_s=10.0,
        up_node=np.array([-1, 0, -1]),
        travel_s=np.full(3, 20.0),
    )
    sol = solve_sf(pb, time_limit_s=20)
    co = coordinate(pb, sol, sc, time_limit_s=20)
    assert co.offset_steps.tolist() == [0, 2]
    in_step = coordinate(pb, sol, sc, optimise_offsets=False)
    assert co.delay_veh_s < in_step.delay_veh_s
    steps = plan_steps(sol.green_s, sc, 120.0, 40.0, co.offset_steps)
    assert steps[:, 0].tolist() == [0, 0, 1, 1] * 3
    assert steps[:, 1].tolist() == [1, 1, 0, 0] * 3
