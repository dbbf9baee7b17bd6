"""Write the small CityFlow-format example shipped in ``scenarios/data/cityflow_2x2/``.

    python tools/make_cityflow_example.py

A 2 x 2 grid (2 lanes, 150 m roads, 4 phases with protected left turns) as a CityFlow roadnet
(``gridmarl.traffic.cityflow_files.cityflow_roadnet``) and a flow file in CityFlow's documented
format, the way the public benchmarks ship their demand: one flow per route, a vehicle every
``interval`` seconds from ``startTime`` to ``endTime``.  Generated here, so free to ship.
"""

from __future__ import annotations

from pathlib import Path

from gridmarl.core.io import write_json
from gridmarl.traffic.cityflow_files import cityflow_roadnet, vehicle_params
from gridmarl.traffic.config import GridConfig
from gridmarl.traffic.roadnet import Grid, phase_design

OUT = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "cityflow_2x2"

#: (route of road ids, interval [s]): straight through both rows and columns, and turns
ROUTES = [
    (("left0A0", "A0B0", "B0right0"), 12.0),
    (("right1B1", "B1A1", "A1left1"), 12.0),
    (("bottom0A0", "A0A1", "A1top0"), 15.0),
    (("top1B1", "B1B0", "B0bottom1"), 15.0),
    (("left1A1", "A1B1", "B1B0", "B0bottom1"), 30.0),  # straight, then right
    (("bottom1B0", "B0B1", "B1A1", "A1left1"), 30.0),  # straight, then left
    (("right0B0", "B0A0", "A0A1", "A1top0"), 40.0),  # straight, then right
    (("top0A1", "A1A0", "A0B0", "B0right0"), 40.0),  # straight, then left
]


def main() -> None:
    """Write ``roadnet.json`` and ``flow.json``."""
    cfg = GridConfig(rows=2, cols=2, lanes=2, road_length_m=150)
    grid = Grid.build(cfg)
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(OUT / "roadnet.json", cityflow_roadnet(grid, design=phase_design(4)))
    veh = vehicle_params(cfg.speed_limit_m_per_s)
    flows = [
        {"vehicle": dict(veh), "route": list(r), "interval": dt, "startTime": 0, "endTime": 900}
        for r, dt in ROUTES
    ]
    write_json(OUT / "flow.json", flows)


if __name__ == "__main__":
    main()
