"""How often the findings' 95% intervals cover a planted effect, by number of seeds, with run-to-run noise.

Simulates studies (`langmix.analysis.simulate`: one model, math, six languages, 100 items, a planted +5-point EN+1
gain on languages in neither mixture, run-to-run standard deviation `RUN_SD`) and counts how often the pooled
"neither" interval of `en_plus_one` covers +5 points. The report's caveat for 2-3 seeds quotes these figures.
Not a speed benchmark: it ends with the coverage at the most seeds, as `langmix vs nominal: N.NNx`.

    .venv/bin/python benchmarks/ci_coverage.py [REPS]
"""

from __future__ import annotations

import sys
import warnings

RUN_SD = 0.04
TRUTH = 0.05


def coverage(n_seeds: int, reps: int) -> float:
    from langmix.analysis import cell_bootstrap, en_plus_one
    from langmix.analysis.simulate import Effects, StudyShape, simulate

    shape = StudyShape(families=("a",), sizes=(1_000_000_000,), tasks=("math",),
                       languages=("en", "es", "sw", "zh", "te", "bn"), seeds=tuple(range(n_seeds)), n_items=100,
                       growing_order=(), held_out=())
    covered = 0
    for r in range(reps):
        items = simulate(Effects(en_plus_one_unseen=TRUTH), shape, seed=10_000 + r, run_sd=RUN_SD)
        out = en_plus_one(cell_bootstrap(items, n_boot=400, seed=r))
        row = out[(out["model"] == "all") & (out["task"] == "all") & (out["mixture"] == "all")
                  & (out["target"] == "neither")].iloc[0]
        covered += bool(row["ci_low"] <= TRUTH <= row["ci_high"])
    return covered / reps


def main() -> None:
    warnings.simplefilter("ignore")
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    result = {}
    for n_seeds in (2, 3, 5):
        result[n_seeds] = coverage(n_seeds, reps)
        print(f"{n_seeds} seeds, run-to-run sd {RUN_SD}: 95% interval covered the planted effect in "
              f"{result[n_seeds]:.1%} of {reps} simulated studies")
    print(f"langmix vs nominal: {result[5] / 0.95:.2f}x")


if __name__ == "__main__":
    main()
