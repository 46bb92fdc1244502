from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from langmix.analysis.core import AnalysisError, adjust, cell_bootstrap, summarise
from langmix.analysis.minimal import en_plus_one, relative_gain
from langmix.analysis.simulate import Effects, StudyShape, simulate
from langmix.analysis.typology import DISTANCES, URIELPLUS_VERSION, compute_distances

from .hand import hand_table, item_index


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


THREE = StudyShape(families=("a",), sizes=(1_000_000_000,), tasks=("math", "api"), languages=("en", "es", "sw"),
                   seeds=(0, 1), n_items=40, growing_order=(), held_out=())


def _first_half_only(items: pd.DataFrame, mixture: str) -> pd.DataFrame:
    """`mixture` evaluated on items 0-19 only; every other run on items 0-39."""
    idx = items["source_id"].astype(str).str[-5:].astype(int)
    return items[~((items["mixture"] == mixture) & (idx >= 20))].reset_index(drop=True)


def test_a_contrast_is_computed_over_the_items_both_sides_share(caplog):
    """Identical models, items 0-19 always right and 20-39 always wrong, EN+1 evaluated on items 0-19 only: EN+1
    'raised accuracy by +50.0 points [+40.5, +60.0], n=100 items' (its items against all of English-only's), and the
    relative gain read +100%. Over the shared items the difference is 0 and n counts the shared items."""
    items = _first_half_only(simulate(Effects(), THREE, seed=1), "en+sw")
    items["correct"] = items["source_id"].astype(str).str[-5:].astype(int) < 20
    with caplog.at_level("WARNING", logger="langmix.analysis.core"):
        cb = cell_bootstrap(items, n_boot=200)
        out = en_plus_one(cb)
    sw = out[(out["model"] == "all") & (out["task"] == "all") & (out["mixture"] == "en+sw")]
    assert (sw["estimate"] == 0).all() and sw["n_items"].eq(40).all(), sw  # 20 shared items x 2 tasks
    es = out[(out["model"] == "all") & (out["task"] == "all") & (out["mixture"] == "en+es")]
    assert es["n_items"].eq(80).all()  # en+es has every item: untouched
    assert "computed over the items both sides share" in caplog.text
    assert "math/sw: a-1b/en 40, a-1b/en+sw 20 -> 20 shared" in caplog.text
    rel = relative_gain(cb).set_index("task")
    # en+sw's side and English-only's side over items 0-19 are both 1.0; en+es's both 0.5: no relative gain
    assert rel.loc["math", "estimate"] == 0 and rel.loc["math", "n_items"] == 40
    assert rel.loc["all", "n_items"] == 80  # the median over two tasks: items summed over the tasks (README)


def test_a_matched_contrast_equals_the_raw_difference_on_shared_items():
    items = _first_half_only(simulate(Effects(en_plus_one_unseen=0.1), THREE, seed=2), "en+sw")
    cb = cell_bootstrap(items, n_boot=200)
    i, j = cb.cell("a-1b", "math", "en+sw", "es"), cb.cell("a-1b", "math", "en", "es")
    point, boot, n = cb.contrast([{i: 1.0, j: -1.0}])
    sub = items[(items["task"] == "math") & (items["language"] == "es")]
    idx = sub["source_id"].astype(str).str[-5:].astype(int)
    raw = sub[idx < 20].groupby("mixture", observed=True)["correct"].mean()
    assert point[0] == pytest.approx(raw["en+sw"] - raw["en"], abs=1e-12)
    assert n.loc[0, "n_items"] == 20 and boot.shape == (1, 200)
    # a plain mean of one cell keeps all its items
    _, _, n_one = cb.contrast([{j: 1.0}])
    assert n_one.loc[0, "n_items"] == 40


def test_cells_with_no_shared_item_are_refused():
    items = simulate(Effects(), THREE, seed=3)
    idx = items["source_id"].astype(str).str[-5:].astype(int)
    items = items[~((items["mixture"] == "en+sw") & (idx < 20)) & ~((items["mixture"] == "en") & (idx >= 20))]
    cb = cell_bootstrap(items.reset_index(drop=True), n_boot=50)
    with pytest.raises(AnalysisError, match="share no item, so they cannot be compared"):
        en_plus_one(cb)


def test_holm_over_many_rows_gets_enough_replicates_to_reach_significance():
    """10 EN+1 mixtures x 2 tasks, +30 points on the added language, every interval far above zero: with 300
    replicates each p-value sat at its floor 2/301 = 0.0066 and Holm over 20 rows gave p_holm >= 0.13 for all of
    them. Rows that could be significant now get ceil(4 m / alpha) replicates, so Holm can reject."""
    shape = StudyShape(families=("a",), sizes=(1_000_000_000,), seeds=(0,), n_items=150, growing_order=(),
                       held_out=())
    out = en_plus_one(cell_bootstrap(simulate(Effects(seen_gain=0.3), shape, seed=8, item_spread=0.05), n_boot=300))
    added = out[(out["model"] != "all") & (out["target"] == "added")]
    assert len(added) == 20 and (added["ci_low"] > 0.05).all()
    assert (added["p_holm"] < 0.05).all() and added["p_replicates"].eq(1600).all(), added[["p_value", "p_holm"]]
    assert added["p_value"].max() == pytest.approx(2 / 1601)
    # the families with no row near the floor keep their 300 replicates
    english = out[(out["model"] != "all") & (out["target"] == "english")]
    assert english["p_replicates"].isin([300, 1600]).all() and (english["p_holm"] > 0.05).all()



def _easy_first(seed: int) -> pd.DataFrame:
    """No effect anywhere; items 0-49 easy (0.9), 50-199 hard (0.3)."""
    return hand_table(lambda mixture, lang, i: np.where(i < 50, 0.9, 0.3), seed=seed)


def test_a_cell_missing_items_in_one_seed_is_compared_on_the_items_of_every_seed(caplog):
    """No true effect; EN+1's seed 1 evaluated on the easy items 0-49 only. Item sets were matched on presence in
    any seed, so EN+1 looked complete and was compared unpaired, its seed 1 on easy items: '+31.8 points [+7.0,
    +57.0], p=0.004, n=200 items x 2 seeds', no warning (probe p3). The comparison is now over the items both sides
    have in every seed, said in the warning, and n counts them."""
    items = _easy_first(0)
    idx = item_index(items)
    ragged = items[~((items["mixture"] == "en+sw") & (items["seed"] == 1) & (idx >= 50))]
    with caplog.at_level("WARNING", logger="langmix.analysis.core"):
        out = en_plus_one(cell_bootstrap(ragged, n_boot=500))
    added = out[(out["model"] == "tiny") & (out["target"] == "added")].iloc[0]
    sw = ragged[(ragged["language"] == "sw") & (item_index(ragged) < 50)]
    raw = sw.groupby(["mixture", "seed"])["correct"].mean().groupby("mixture").mean()
    assert added["estimate"] == pytest.approx(raw["en+sw"] - raw["en"], abs=1e-12)
    assert added["ci_low"] <= 0 <= added["ci_high"] and added["n_items"] == 50, added
    assert "computed over the items both sides share (in every seed)" in caplog.text
    assert "math/sw: tiny/en 200, tiny/en+sw 200 (50 in every seed) -> 50 shared" in caplog.text


def test_a_ragged_cell_is_restricted_even_where_its_complete_items_equal_the_other_side():
    """EN+1 has items 0-199 in seed 0 and 0-49 in seed 1; English-only 0-49 in both seeds. Both have the same
    items in every seed (0-49), but EN+1's seed 0 would still be averaged over all 200: it is restricted too (a
    cell whose seeds saw different items matches no other cell's item set)."""
    items = _easy_first(1)
    idx = item_index(items)
    items = items[~(((items["mixture"] == "en+sw") & (items["seed"] == 1) | (items["mixture"] == "en"))
                    & (idx >= 50))]
    cb = cell_bootstrap(items, n_boot=200)
    i, j = cb.cell("tiny", "math", "en+sw", "sw"), cb.cell("tiny", "math", "en", "sw")
    point, _, n = cb.contrast([{i: 1.0, j: -1.0}])
    sw = items[(items["language"] == "sw") & (item_index(items) < 50)]
    raw = sw.groupby(["mixture", "seed"])["correct"].mean().groupby("mixture").mean()
    assert point[0] == pytest.approx(raw["en+sw"] - raw["en"], abs=1e-12) and n.loc[0, "n_items"] == 50
