"""Coverage curves compare levels over the same languages (a probe: they pooled different language sets)."""

from __future__ import annotations

import numpy as np
import pytest

from langmix.analysis import cell_bootstrap, coverage_curves
from langmix.analysis.simulate import StudyShape, simulate

LANGS = ("en", "es", "fr", "ja", "sw", "bn", "te")
SHAPE = StudyShape(families=("a",), sizes=(1_000_000_000,), tasks=("math",), seeds=(0, 1), n_items=200,
                   languages=LANGS, growing_order=(), held_out=(),
                   extra_mixtures=(("core5", "fixed", ("en", "es", "ja", "bn", "sw")),
                                   ("all-minus-sw-te", "held_out", ("en", "es", "fr", "ja", "bn"))))


def _probe_study():
    """The probe's planted study: every language at 0.5 except Japanese at 0.9 in every mixture (coverage does
    nothing), and core5 evaluated only on English and Japanese."""
    items = simulate(shape=SHAPE, seed=3)
    items = items[items["mixture"].isin(["en", "en+sw", "core5", "all-minus-sw-te"])].reset_index(drop=True)
    rng = np.random.default_rng(3)
    items["correct"] = rng.random(len(items)) < np.where(items["language"] == "ja", 0.9, 0.5)
    return items[~((items["mixture"] == "core5") & ~items["language"].isin(["en", "ja"]))].reset_index(drop=True)


def test_pooled_curves_compare_the_same_languages_at_every_level():
    """The table showed seen accuracy 0.455 at k=2 and 0.666 at k=5 where coverage did nothing: k=5 pooled core5's
    Japanese cell (0.9) with held-out's, Japanese counting twice. Now 'all' averages the same six languages at every
    level, each language once per level, and stays flat; seen/unseen say how many languages they average."""
    curves = coverage_curves(cell_bootstrap(_probe_study(), n_boot=200), pooled=True).set_index(
        ["n_train_languages", "part"])
    every = curves.xs("all", level="part")
    assert list(every.index) == [1, 2, 5] and set(every["n_languages"]) == {6}
    assert set(every["languages"]) == {"bn,es,fr,ja,sw,te"}
    assert np.ptp(every["mean"]) < 0.03  # planted: 0.9 for ja and 0.5 for five: (0.9 + 2.5) / 6 = 0.567 each
    assert every["mean"].to_numpy() == pytest.approx((0.9 + 5 * 0.5) / 6, abs=0.02)
    seen5 = curves.loc[(5, "seen")]
    assert seen5["languages"] == "bn,es,fr,ja" and seen5["n_cells"] == 5  # ja in two mixtures, weighed once
    assert seen5["mean"] == pytest.approx((0.9 + 3 * 0.5) / 4, abs=0.02)  # 0.6, not 0.666
    assert curves.loc[(2, "seen"), "languages"] == "sw" and curves.attrs["left_out"] == []


def test_a_language_missing_at_a_level_is_left_out_and_named():
    items = _probe_study()
    items = items[~((items["mixture"] == "en+sw") & (items["language"] == "te"))]
    curves = coverage_curves(cell_bootstrap(items, n_boot=100), pooled=True)
    assert curves.attrs["left_out"] == ["a-1b/math/te (no cell at 2 training languages)"]
    assert set(curves[curves["part"] == "all"]["n_languages"]) == {5}
    assert not curves["languages"].str.contains("te").any()
