"""The typology regression recovers a planted distance slope whatever the coverage gain (probe D2: without a coverage
term, distance absorbed part of it, because the languages a mixture leaves unseen differ with its coverage)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from langmix.analysis import cell_bootstrap, typology
from langmix.analysis.simulate import Effects, _effect, mixtures, simulate
from langmix.analysis.typology import _regress, distances, language_gains

from .conftest import SMALL

DIST = distances("syntactic")


@pytest.fixture(scope="module")
def gains_frame() -> pd.DataFrame:
    """The full design's gain cells (which model, task, mixture, language), estimates to be planted."""
    shape = replace(SMALL, seeds=(0,), n_items=10)
    g, _, _ = language_gains(cell_bootstrap(simulate(Effects(), shape, seed=0), n_boot=10))
    return g


@pytest.mark.parametrize("fx", [
    Effects(coverage_gain=0.10, plateau=11),  # linear in k over the whole design
    Effects(coverage_gain=0.10, plateau=4),  # linear to 4 languages, then flat
    Effects(coverage_gain=0.05, plateau=4, size_coverage=0.01),  # and growing with model size
], ids=["linear", "plateau", "size"])
def test_planted_slope_is_recovered_exactly_from_noise_free_gains_with_coverage_gains(gains_frame, fx):
    fx = replace(fx, distance_intercept=0.1, distance_slope=-0.3)
    mix = {name: (design, train) for name, design, train in mixtures(SMALL)}
    g = gains_frame.copy()
    g["estimate"] = [_effect(fx, *mix[m], lang, DIST, float(np.log10(p / 1e8)))
                     for m, lang, p in zip(g["mixture"], g["language"], g["model_params"])]
    row = _regress(g, "syntactic")[0]
    assert row["coef"] == pytest.approx(-0.3, abs=1e-6)  # was -0.319 (linear), -0.333 (plateau), -0.326 (size)
    assert "C(mixture)" in row["formula"] and "mixture fixed effects" in row["method"]


def test_noisy_slope_interval_covers_the_planted_slope_with_a_coverage_gain():
    """Seed 0 of the probe's t5: the interval was [-4.95, -3.17] points per 0.1 around a planted -3.00."""
    shape = replace(SMALL, families=("a",), seeds=(0, 1, 2), n_items=150)
    items = simulate(Effects(coverage_gain=0.10, plateau=4, distance_slope=-0.3, distance_intercept=0.1), shape, seed=0)
    _, coefs = typology(cell_bootstrap(items, n_boot=200, seed=0), kinds=("syntactic",))
    row = coefs[coefs["term"] == "distance"].iloc[0]
    assert row["ci_low"] <= -0.3 <= row["ci_high"] < 0, row.to_dict()


def test_log2_k_controls_coverage_where_no_mixture_leaves_two_distances_unseen():
    """Each mixture leaves one language unseen: mixture fixed effects would absorb distance, so log2(k) is the
    control (and says so); a coverage gain linear in log2(k) is then separated exactly."""
    langs = ["es", "fr", "de", "ja", "sw", "ru", "zh", "bn"]
    rows = []
    for i, lang in enumerate(langs):
        for model in ("m1", "m2"):
            k = 2 + i % 5
            rows.append({"model": model, "task": "math", "mixture": f"mix-{lang}", "language": lang,
                         "n_train_languages": k, "resource": "low" if lang in ("sw", "bn") else "high",
                         "seen": False, "estimate": 0.1 - 0.3 * DIST[lang] + 0.05 * np.log2(k)
                         + (0.01 if model == "m2" else 0.0)})
    row = _regress(pd.DataFrame(rows), "syntactic")[0]
    assert row["coef"] == pytest.approx(-0.3, abs=1e-6)
    assert "log2_k" in row["formula"] and "C(mixture)" not in row["formula"]
    assert "log2(training languages)" in row["method"]
