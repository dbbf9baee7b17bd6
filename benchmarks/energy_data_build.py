"""Time of the energy data layer: the cached dataset span and a 200-prosumer community build.

    python benchmarks/energy_data_build.py

Prints the time of 100 cached ``dataset_span`` calls against one uncached parse of the time
base in the same run (the ratio says what the cache buys), and the time to build the training
window of community_50.yaml with 200 prosumers from the shipped CityLearn 2022 data (first build,
which parses the data, and a second build that reuses the parsed dataset).
"""

from __future__ import annotations

import time
from pathlib import Path

from gridmarl.config import load_scenario
from gridmarl.energy import citylearn as cl
from gridmarl.energy import data as d

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "citylearn_2022"


def main() -> None:
    cl._reading_cached.cache_clear()
    t0 = time.perf_counter()
    cl.dataset_span(SHIPPED)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(100):
        cl.dataset_span(SHIPPED)
    cached = (time.perf_counter() - t0) / 100
    print(
        f"dataset_span: first call {first * 1e3:.2f} ms, cached call {cached * 1e6:.1f} µs "
        f"(ratio first / cached {first / cached:.0f})"
    )

    scenario = load_scenario(ROOT / "scenarios" / "community_50.yaml", ["community.prosumers=200"])
    for label in ("first build (parses the data)", "second build (dataset cached)"):
        t0 = time.perf_counter()
        c = d.build_community(scenario, "train")
        print(
            f"build_community 200 prosumers, train window: {label} "
            f"{time.perf_counter() - t0:.2f} s, shape {tuple(c.pv_kw.shape)}"
        )


if __name__ == "__main__":
    main()
