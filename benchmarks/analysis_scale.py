"""Time all analyses, the report and the planner on a planted table of the full study's shape.

2 families x 5 sizes x 22 mixtures x 2 tasks x 11 languages x 3 seeds x 250 items (3.63M rows). No arguments:
    .venv/bin/python benchmarks/analysis_scale.py
Prints the table-building time (not counted) and the analysis + report + planner time (the <= 60 s target).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from langmix import plan
from langmix.analysis.core import cell_bootstrap
from langmix.analysis.simulate import Effects, StudyShape, simulate
from langmix.report import build_report

log = logging.getLogger("analysis_scale")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.perf_counter()
    items = simulate(Effects(en_plus_one_unseen=0.05, coverage_gain=0.08, plateau=4, distance_intercept=0.1,
                             distance_slope=-0.1, seen_gain=0.04, size_coverage=-0.002), StudyShape(), seed=0)
    built = time.perf_counter() - t0
    log.info("built %d rows in %.1f s", len(items), built)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        html = build_report(items, Path(tmp) / "report", "planted full-shape study")
        t2 = time.perf_counter()
        cells = cell_bootstrap(items, n_boot=400)  # one bootstrap shared by recommend and validate_loo
        rec = plan.recommend(items, ["sw", "bn", "te"], budget=4000, max_languages=5, cells=cells)
        loo = plan.validate_loo(items, cells=cells)
        t3 = time.perf_counter()
        size = html.stat().st_size
    log.info("report %.1f s (%d KB), planner %.1f s: recommend %s, LOO rho %.2f [%.2f, %.2f]", t2 - t1,
             size // 1024, t3 - t2, rec.languages, loo.attrs["rho"], loo.attrs["rho_ci_low"], loo.attrs["rho_ci_high"])
    print(f"analysis+report+planner on {len(items):,} rows: {t3 - t1:.1f} s (table built in {built:.1f} s)")


if __name__ == "__main__":
    main()
