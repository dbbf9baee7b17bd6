"""The CityLearn dataset styles: how each sample folder is read, and the PV of the 2022 data.

    python benchmarks/energy_dataset_styles.py [SHARED_DATA]

SHARED_DATA (default ``../shared/data`` next to the repository) holds
``citylearn_2022_phase_all`` (CityLearn's copy of the shipped data) and ``citylearn_datasets``
(the other styles).  Prints, per folder: rows, start, where the start and the irradiance reading
came from, whether it has prices and carbon data; then the PV and load energy of community_50's
evaluation week built on the shipped data, on CityLearn's copy, and on that copy with its
irradiance column read as labelled (diffuse), the reading issue 22 reported (1.37 × the PV).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from gridmarl.config import load_scenario
from gridmarl.energy import citylearn as cl
from gridmarl.energy.data import build_community

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    logging.disable(logging.WARNING)  # the defaults' warnings are the tests' business here
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    phase_all = shared / "citylearn_2022_phase_all"
    folders = [cl.SHIPPED_DATASETS["citylearn_2022"], phase_all]
    folders += sorted(p for p in (shared / "citylearn_datasets").iterdir() if p.is_dir())
    print("| folder | rows | start | start from | irradiance (from) | prices | carbon |")
    print("|---|---|---|---|---|---|---|")
    for f in folders:
        data = cl.load_dataset(f)
        r = data.reading
        print(
            f"| {f.name} | {data.rows} | {r.start} | {r.start_from} | "
            f"{r.horizontal_irradiance} ({r.irradiance_from}) | "
            f"{'yes' if data.price_usd_per_kwh is not None else 'no'} | "
            f"{'yes' if data.carbon_kg_per_kwh is not None else 'no'} |"
        )
    with tempfile.TemporaryDirectory() as tmp:
        diffuse = Path(tmp) / "phase_all_as_diffuse"
        shutil.copytree(phase_all, diffuse)
        schema = json.loads((diffuse / "schema.json").read_text())
        schema["gridmarl"] = {
            "start_time": "2016-07-31T23:00:00",
            "horizontal_irradiance": "diffuse",
        }
        (diffuse / "schema.json").write_text(json.dumps(schema))
        pv = {}
        for label, ds in (
            ("shipped", "citylearn_2022"),
            ("CityLearn's copy", str(phase_all)),
            ("CityLearn's copy read as diffuse", str(diffuse)),
        ):
            sc = load_scenario(
                ROOT / "scenarios" / "community_50.yaml", [f"community.dataset={ds}"]
            )
            c = build_community(sc)
            steps = round(sc.window.evaluate.days * 24 / sc.window.step_h)
            pv[label] = c.pv_kw[:steps].sum() * c.step_h
            load = c.load_kw[:steps].sum() * c.step_h
            print(
                f"{label}: evaluation week PV {pv[label]:.1f} kWh "
                f"({pv[label] / pv['shipped']:.3f} x shipped), load {load:.1f} kWh"
            )


if __name__ == "__main__":
    main()
