"""Run-to-run variance: estimated on the cells with several seeds, borrowed by a fine-tuned cell with one seed."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from langmix.analysis.core import cell_bootstrap
from langmix.analysis.coverage import coverage_curves
from langmix.analysis.fidelity import fidelity_cells, fidelity_pooled
from langmix.analysis.minimal import en_plus_one
from langmix.analysis.resample import replicate_means, run_variance, with_run_draws
from langmix.analysis.stats import summarise

from .hand import hand_table


def test_run_variance_is_the_between_seed_component():
    """Per-item, per-seed means m = item effect + seed effect exactly: the between-seed variance is the seed
    effects' variance (ddof 1), 0.01, with seeds - 1 = 2 degrees of freedom; one seed gives no estimate."""
    item, seed = np.array([0.0, 0.5, 1.0, 0.25]), np.array([0.0, 0.1, 0.2])
    m = (item[:, None] + seed[None, :]) / 2  # within [0, 1]
    sums = np.stack([m, m]) * 2  # two verdicts per (item, seed)
    cnt = np.full(sums.shape, 2.0)
    cnt[1, :, 1:] = 0  # cell 1: one seed only
    sums[1, :, 1:] = 0
    presence = np.ones((2, 4), dtype=bool)
    tau2, df = run_variance(sums, cnt, presence)
    assert tau2[0] == pytest.approx(np.var(seed / 2, ddof=1)) and df[0] == 2
    assert df[1] == 0 and tau2[1] == 0


LANGS = ("sw", "es", "fr", "ja", "bn")


def test_a_one_seed_side_borrows_run_to_run_variance_and_its_intervals_cover_more():
    """EN+1 with 2 seeds against English-only with 1 (planted +10 points on sw, run-to-run sd 8 points per run):
    seed resampling never varies the one-seed side, so its intervals covered the effect in 118 of 150 simulated
    studies (78.7%). Borrowing the run-to-run variance of the cells with two seeds: 131 (87.3%; the rest of the gap
    is the 2-seed side's own seed resampling, which understates with so few seeds). Fixed seeds: deterministic."""
    rng = np.random.default_rng(11)
    before = after = 0
    sds = []
    sims, n_items, n_boot = 150, 100, 300
    for k in range(sims):
        diff = rng.uniform(-0.2, 0.2, n_items)

        def prob(mixture: str, lang: str, i: np.ndarray) -> np.ndarray:
            return 0.5 + diff[i] + (0.1 if (mixture == "en+sw" and lang == "sw") else 0.0)

        items = hand_table(prob, seeds={"en+sw": (0, 1), "en": (0,)}, languages=LANGS, n_items=n_items, seed=k,
                           run_sd=0.08)
        cb = cell_bootstrap(items, n_boot=n_boot, seed=k)
        i, j = cb.cell("tiny", "math", "en+sw", "sw"), cb.cell("tiny", "math", "en", "sw")
        sds.append(cb.cells.at[j, "run_sd_borrowed"])
        point, boot, n = cb.contrast([{i: 1.0, j: -1.0}])
        td = cb.tasks["math"]
        unmoved = replicate_means(td.sums, td.cnt, td.wi, td.ws)[1][np.flatnonzero(td.cells == j)[0]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            now = summarise(point, boot).iloc[0]
            old = summarise(point, boot + (cb.boot[j] - unmoved)[None, :]).iloc[0]  # without borrowing
        after += now["ci_low"] <= 0.1 <= now["ci_high"]
        before += old["ci_low"] <= 0.1 <= old["ci_high"]
    assert before / sims <= 0.80 and after / sims >= 0.85 and after - before >= 8, (before, after)
    assert 0.06 <= np.mean(sds) <= 0.10  # the planted 0.08, estimated from the five 2-seed cells
    assert n.loc[0, "n_seeds"] == 2 and n.loc[0, "n_seeds_min"] == 1


def test_the_base_model_and_a_one_seed_study_borrow_nothing():
    """The base model is one evaluation of a fixed model (no run-to-run variance); a study with one seed has no
    cell to borrow from. Neither changes a replicate."""
    items = hand_table(lambda m, lang, i: np.full(len(i), 0.5), seeds={"en+sw": (0, 1), "en": (0, 1), "base": (0,)},
                       run_sd=0.05, seed=1)
    cb = cell_bootstrap(items, n_boot=100)
    base = cb.cells["mixture"] == "base"
    assert cb.cells.loc[base, "run_sd_borrowed"].isna().all() and not cb.noise
    one = cell_bootstrap(items[items["seed"] == 0], n_boot=100)
    assert one.cells["run_sd_borrowed"].isna().all() and not one.noise
    mixed = cell_bootstrap(pd.concat([items[items["mixture"] != "en"], items[(items["mixture"] == "en")
                                                                              & (items["seed"] == 0)]]), n_boot=100)
    en = (mixed.cells["mixture"] == "en").to_numpy()
    assert (mixed.cells.loc[en, "run_sd_borrowed"] >= 0).all() and set(mixed.noise) <= set(np.flatnonzero(en))
    assert mixed.cells.loc[~en, "run_sd_borrowed"].isna().all()


def _all_wrong_beside_two_seeds(**kw) -> pd.DataFrame:
    """English-only with 2 seeds (40% right, varying by run), EN+1 with 1 seed that gets every `es` answer wrong."""
    items = hand_table(lambda m, lang, i: np.full(len(i), 0.0 if (m == "en+sw" and lang == "es") else 0.4),
                       run_sd=0.05, seed=1, **kw)
    return items[~((items["mixture"] == "en+sw") & (items["seed"] == 1))]


def test_the_borrowed_run_to_run_draws_keep_every_replicate_of_a_proportion_in_0_1():
    """The run-to-run draws of a one-seed cell were added on the proportion scale: its all-wrong `es` cell read
    0.000 [-0.044, +0.043] on the coverage curve (probe D1). A draw now shifts the logit, so every replicate stays a
    proportion, and an all-wrong cell stays at 0: its interval has no width (reported as none), as it would with
    two all-wrong seeds, instead of an invented one. On the items both cells share and on fresh replicates for
    p-values the same holds."""
    items = _all_wrong_beside_two_seeds()
    cb = cell_bootstrap(items, n_boot=500)
    j, i = cb.cell("tiny", "math", "en+sw", "es"), cb.cell("tiny", "math", "en", "es")
    assert cb.cells.at[j, "run_sd_borrowed"] > 0.01 and j in cb.noise  # it borrows
    assert cb.boot.min() >= 0 and cb.boot.max() <= 1 and not cb.boot[j].any()
    _, diff, _ = cb.contrast([{j: 1.0, i: -1.0}])  # a difference of bounded replicates: 0 minus English-only's
    np.testing.assert_allclose(diff[0], -cb.boot[i])
    curve = coverage_curves(cb).set_index(["language", "n_train_languages"])
    assert tuple(curve.loc[("es", 2), ["mean", "ci_low", "ci_high", "degenerate"]]) == (0.0, 0.0, 0.0, True)
    assert (curve["ci_low"] >= 0).all() and (curve["ci_high"] <= 1).all()
    assert not (curve["degenerate"] & (curve.index.get_level_values("language") != "es")).any()
    # fresh replicates (Holm's p-values): the all-wrong cell is 0 in every one, never below
    below, above = cb.sign_counts([{j: 1.0}], 300)
    assert below[0] == above[0] == 300
    # the items both cells share: English-only has es verdicts on 150 items only, so EN+1 is recomputed on those
    fewer = items[~((items["mixture"] == "en") & (items["language"] == "es")
                    & (items["source_id"].str.split("-").str[1].astype(int) >= 150))]
    cb2 = cell_bootstrap(fewer, n_boot=300)
    j2, i2 = cb2.cell("tiny", "math", "en+sw", "es"), cb2.cell("tiny", "math", "en+sw", "sw")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, restricted, n = cb2.contrast([{j2: 1.0}, {i2: 1.0}], match=[[j2, cb2.cell("tiny", "math", "en", "es")],
                                                                       [i2]])
    assert n.loc[0, "n_items"] == 150 and not restricted[0].any()
    assert restricted[1].min() > 0.25 and restricted[1].max() < 0.55 and restricted[1].std() > 0.02


def test_a_mean_of_all_wrong_one_seed_cells_is_no_finding():
    """Every non-English answer wrong in every run of both mixtures; EN+1 has one seed, English-only two (whose
    English cells vary by run, so EN+1 borrows). Any bounded draw that can only raise an all-wrong cell biases a mean
    of such cells upward: added and clipped at 0, EN+1's gain on the languages in neither mixture read +0.0 points
    with an interval above zero in every replicate. Drawn on the logit scale it is 0 with no interval and no test."""
    langs = ("en", "sw", "es", "fr", "ja", "bn", "te")
    items = hand_table(lambda m, lang, i: np.full(len(i), 0.4), languages=langs, run_sd=0.1, seed=3)
    items = items[~((items["mixture"] == "en+sw") & (items["seed"] == 1))].copy()
    items.loc[items["language"] != "en", "correct"] = False
    cb = cell_bootstrap(items, n_boot=400)
    assert (cb.cells.loc[cb.cells["mixture"] == "en+sw", "run_sd_borrowed"] > 0).all()
    e = en_plus_one(cb).set_index(["model", "task", "mixture", "target"])
    neither = e.loc[("all", "all", "all", "neither")]
    assert neither["estimate"] == 0.0 and neither["ci_low"] == neither["ci_high"] == 0.0 and neither["degenerate"]
    assert np.isnan(neither["p_value"])


def test_a_share_of_100_percent_in_one_seed_stays_at_most_100_percent():
    """Fidelity: English-only (2 seeds) answers in the prompt's language 80-95% of the time, varying by run;
    EN+1 (1 seed) always on the language it trains on. The seen share read 100.0% [99.6, 100.4] (probe D1)."""
    items = hand_table(lambda m, lang, i: np.full(len(i), 0.4), run_sd=0.05, seed=4)
    items = items[~((items["mixture"] == "en+sw") & (items["seed"] == 1))].copy()
    rng = np.random.default_rng(4)
    rate = items["seed"].map({0: 0.8, 1: 0.95}).to_numpy()
    drift = (items["mixture"] == "en").to_numpy() & (items["language"] != "en").to_numpy()
    items.loc[drift & (rng.random(len(items)) > rate), "response_language"] = "en"
    cb = fidelity_cells(items, n_boot=400)
    assert (cb.cells.loc[cb.cells["mixture"] == "en+sw", "run_sd_borrowed"] > 0).all()
    assert cb.boot.min() >= 0 and cb.boot.max() <= 1
    pooled = fidelity_pooled(cb).set_index("seen")
    assert tuple(pooled.loc[True, ["share", "ci_low", "ci_high"]]) == (1.0, 1.0, 1.0)
    assert 0 <= pooled.loc[False, "ci_low"] < pooled.loc[False, "share"] < pooled.loc[False, "ci_high"] <= 1


def test_a_logit_draw_keeps_the_mean_and_the_borrowed_spread_where_it_was_measured():
    """The shift changes no estimate (mean within 1e-3 of the replicate, the second-order term), gives about the
    borrowed sd at the accuracy it was measured at (logit sd s: s p (1 - p) on the proportion scale), less towards
    the bounds and nothing at them."""
    z = np.random.default_rng(0).standard_normal(200_000)
    for p, s in ((0.4, 0.2), (0.05, 0.3), (0.97, 0.3)):
        moved = with_run_draws(np.full(z.shape, p), z, s)
        assert abs(moved.mean() - p) < 1e-3 and moved.std() == pytest.approx(s * p * (1 - p), rel=0.05)
        assert 0 < moved.min() and moved.max() < 1
    assert not with_run_draws(np.zeros(5), z[:5], 0.3).any() and (with_run_draws(np.ones(5), z[:5], 0.3) == 1).all()
