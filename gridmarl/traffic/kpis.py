"""Traffic KPIs of one episode (pure numpy).

Definitions (trip k scheduled to depart at s_k [s], arriving at a_k [s] or not by the horizon T):

* ``avg_travel_time_s``: mean of a_k − s_k over **finished trips only** [s].  The clock starts
  at the scheduled departure, so waiting to enter a full road counts.
* ``avg_travel_time_all_s``: mean over **every trip scheduled before T, including vehicles still
  on the road (or still waiting to enter)** at T, which count T − s_k [s] (CityFlow's
  ``get_average_travel_time`` convention).
* ``finished_share``: trips finished by T over trips scheduled before T [-].  Read it beside
  the travel times: ``avg_travel_time_s`` counts finished trips only, so a jammed run in which
  few trips finish can show a short one (``simulate`` warns below ``MIN_FINISHED_SHARE``).
* ``throughput_veh``: trips finished by T [veh].
* ``mean_queue_veh``: halting vehicles (speed < 0.1 m/s) on an intersection's incoming lanes,
  averaged over decision steps and intersections [veh].
* ``mean_delay_s``: mean over finished trips of travel time minus free-flow time (route length
  / speed limit) [s].
"""

from __future__ import annotations

import numpy as np

#: below this finished share a run is not to be believed (most trips did not finish) [-]
MIN_FINISHED_SHARE = 0.5

KPI_NAMES = (
    "avg_travel_time_s",
    "finished_share",
    "avg_travel_time_all_s",
    "throughput_veh",
    "mean_queue_veh",
    "mean_delay_s",
)


def episode_kpis(
    depart_s: np.ndarray,
    arrive_s: np.ndarray,
    free_flow_s: np.ndarray,
    horizon_s: float,
    halting_veh: np.ndarray,
) -> dict[str, float]:
    """KPIs of one episode.

    Args:
        depart_s: ``[K]`` scheduled departures [s].
        arrive_s: ``[K]`` arrival times [s], NaN for trips not finished.
        free_flow_s: ``[K]`` free-flow travel time of each route [s].
        horizon_s: end of the episode T [s].
        halting_veh: ``[steps, N]`` halting vehicles per intersection after each step [veh].

    Returns:
        ``KPI_NAMES`` in order (NaN where no trip qualifies).
    """
    started = depart_s < horizon_s
    done = started & ~np.isnan(arrive_s)
    tt = arrive_s[done] - depart_s[done]
    tt_all = np.where(done, arrive_s, horizon_s)[started] - depart_s[started]
    delay = tt - free_flow_s[done]
    return {
        "avg_travel_time_s": float(tt.mean()) if tt.size else float("nan"),
        "finished_share": float(done.sum() / started.sum()) if started.any() else float("nan"),
        "avg_travel_time_all_s": float(tt_all.mean()) if tt_all.size else float("nan"),
        "throughput_veh": float(done.sum()),
        "mean_queue_veh": float(halting_veh.mean()) if halting_veh.size else 0.0,
        "mean_delay_s": float(delay.mean()) if delay.size else float("nan"),
    }
