from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from langmix.analysis.core import AnalysisError, adjust, cell_bootstrap, summarise
from langmix.analysis.typology import DISTANCES, URIELPLUS_VERSION, compute_distances


@pytest.mark.parametrize("method, sm", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_matches_statsmodels(method, sm):
    p = np.random.default_rng(0).random(40) ** 3
    np.testing.assert_allclose(adjust(pd.Series(p), method), multipletests(p, method=sm)[1])


def test_summarise_ci_and_p():
    boot = np.random.default_rng(1).normal(0.03, 0.01, size=(1, 4000))
    s = summarise(np.array([0.03]), boot).iloc[0]
    assert s["ci_low"] == pytest.approx(0.03 - 1.96 * 0.01, abs=0.0015)
    assert s["ci_high"] == pytest.approx(0.03 + 1.96 * 0.01, abs=0.0015)
    assert s["p_value"] < 0.01


def test_missing_columns_are_named():
    with pytest.raises(AnalysisError, match="source_id"):
        cell_bootstrap(pd.DataFrame({"model": ["m"], "correct": [True]}))


def test_stored_distances_match_urielplus():
    import importlib.metadata

    assert importlib.metadata.version("urielplus") == URIELPLUS_VERSION
    fresh = compute_distances(["sw", "de", "ar", "ja"])
    for code in fresh:
        assert fresh[code] == DISTANCES[code], code
    assert DISTANCES["ar"]["phonological"] is None  # no shared phonological features in URIEL+
