"""Planted-effect tests: the analyses' contract. Each analysis recovers a planted effect's sign and size within its
95% CI, and reports no effect where there is none at about the nominal rate."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from langmix.analysis import (capacity, cell_bootstrap, coverage_curves, en_plus_one, fidelity, fidelity_cells,
                              fidelity_pooled, relative_gain, resource_gains, typology, zero_shot_vs_inclusion)
from langmix.analysis.simulate import Effects, StudyShape, simulate

from .conftest import SMALL


def _covers(row: pd.Series, value: float) -> bool:
    return bool(row["ci_low"] <= value <= row["ci_high"])


def _pooled(frame: pd.DataFrame, target: str) -> pd.Series:
    return frame[(frame["model"] == "all") & (frame["task"] == "all") & (frame["mixture"] == "all")
                 & (frame["target"] == target)].iloc[0]


def test_cell_means_match_the_raw_table_and_bootstrap_se_matches_binomial():
    items = simulate(Effects(), replace(SMALL, seeds=(0,), sizes=(100_000_000,)), seed=3)
    cb = cell_bootstrap(items, n_boot=2000, seed=1)
    keys = ["model", "task", "mixture", "language"]
    raw = items.astype({k: str for k in keys}).groupby(keys)["correct"].mean().sort_index()
    got = cb.cells.set_index(keys)["mean"].sort_index()
    assert list(got.index) == list(raw.index)
    np.testing.assert_allclose(got.to_numpy(), raw.to_numpy(), atol=1e-12)
    # an item bootstrap SE of one cell mean is not the binomial SE (items differ in difficulty), but close:
    # p(1-p)/n minus the item-difficulty variance share; check it sits within 25% of binomial
    se = cb.boot.std(axis=1)
    binom = np.sqrt(cb.point * (1 - cb.point) / cb.cells["n_items"].to_numpy())
    assert 0.75 < float(np.median(se / binom)) < 1.05
    assert cb.cells["n_items"].eq(120).all() and cb.cells["n_seeds"].eq(1).all()


def test_en_plus_one_recovers_five_points_on_languages_in_neither():
    items = simulate(Effects(en_plus_one_unseen=0.05), SMALL, seed=11)
    out = en_plus_one(cell_bootstrap(items, seed=2))
    neither = _pooled(out, "neither")
    assert neither["ci_low"] > 0 and _covers(neither, 0.05), neither.to_dict()
    assert _covers(_pooled(out, "english"), 0.0) and _covers(_pooled(out, "added"), 0.0)
    # pooled over the two tasks: 120 items each, resampled separately (the max over cells said 120)
    assert neither["n_items"] == 240 and neither["n_seeds"] == 2 and neither["n_runs"] == 2 * 2 * (10 + 1) * 2  # EN+1 runs and the English-only runs
    assert round(float(neither["estimate"]), 3) == pytest.approx(0.05, abs=0.01)
    per_task = out[(out["model"] == "all") & (out["task"] != "all") & (out["mixture"] == "all")]
    assert per_task["n_items"].eq(120).all() and len(per_task) == 2 * 3


def test_relative_gain_is_the_ratio_of_raw_means():
    items = simulate(Effects(en_plus_one_unseen=0.05), SMALL, seed=12)
    rel = relative_gain(cell_bootstrap(items, seed=2))
    sub = items[(items["model"] == "a-0.1b") & (items["task"] == "math")]
    plus = sub[sub["design"] == "en_plus_one"].groupby(["mixture", "language"], observed=True)["correct"].mean()
    base = sub[sub["design"] == "english_only"].groupby("language", observed=True)["correct"].mean()
    expected = plus.mean() / base.mean() - 1
    row = rel[(rel["model"] == "a-0.1b") & (rel["task"] == "math")].iloc[0]
    assert row["estimate"] == pytest.approx(expected, abs=1e-9)
    med = rel[rel["model"] == "median"].iloc[0]
    assert med["ci_low"] < med["estimate"] < med["ci_high"] and med["ci_low"] > 0
    # pooled over two tasks of 120 items: n sums over the tasks, as for every pooled figure (it said 120)
    assert row["n_items"] == 120 and med["n_items"] == 240


def test_relative_gain_compares_the_same_languages_on_both_sides():
    """EN+1 mixtures evaluated only on English and their added language, no planted effect: the numerator averaged
    those cells while the denominator averaged English-only over every language, so English's higher accuracy
    weighed more on one side (+7.6% [-0.5, +16.9] where the truth is 0)."""
    items = simulate(Effects(), SMALL, seed=21)
    added = items["train_languages"].astype(str).str.split(",").map(lambda ls: [x for x in ls if x != "en"])
    plus = items["design"] == "en_plus_one"
    keep = ~plus | (items["language"] == "en") | np.array([lang in a for lang, a in zip(items["language"], added)])
    items = items[np.asarray(keep, bool)].reset_index(drop=True)
    rel = relative_gain(cell_bootstrap(items, seed=4))
    sub = items[(items["model"] == "a-0.1b") & (items["task"] == "math")]
    per_mixture = []
    for _, g in sub[sub["design"] == "en_plus_one"].groupby("mixture", observed=True):
        langs = set(g["language"].astype(str))
        base = sub[(sub["design"] == "english_only") & sub["language"].astype(str).isin(langs)]
        per_mixture.append((g.groupby("language", observed=True)["correct"].mean().mean(),
                            base.groupby("language", observed=True)["correct"].mean().mean()))
    expected = np.mean([p for p, _ in per_mixture]) / np.mean([b for _, b in per_mixture]) - 1
    row = rel[(rel["model"] == "a-0.1b") & (rel["task"] == "math")].iloc[0]
    assert row["estimate"] == pytest.approx(expected, abs=1e-9)
    med = rel[rel["model"] == "median"].iloc[0]
    assert _covers(med, 0.0) and abs(med["estimate"]) < 0.03, med.to_dict()


def test_distance_slope_is_recovered_by_the_regression():
    items = simulate(Effects(distance_intercept=0.25, distance_slope=-0.3), SMALL, seed=13)
    per_lang, coefs = typology(cell_bootstrap(items, seed=2))
    row = coefs[(coefs["kind"] == "syntactic") & (coefs["term"] == "distance")].iloc[0]
    assert row["ci_high"] < 0 and _covers(row, -0.3), row.to_dict()
    assert row["n_languages"] == 10
    sw = per_lang[(per_lang["language"] == "sw") & ~per_lang["seen"]].iloc[0]
    assert _covers(sw, 0.25 - 0.3 * 0.693)
    assert sw["n_items"] == 240  # pooled over two tasks of 120 items


def test_plateau_at_four_languages():
    items = simulate(Effects(coverage_gain=0.10, plateau=4), SMALL, seed=14)
    gains, plateau = resource_gains(cell_bootstrap(items, seed=2))
    pooled = plateau[(plateau["model"] == "all") & (plateau["task"] == "all")].set_index("resource")
    assert pooled.loc["high", "plateau"] == 4 and pooled.loc["low", "plateau"] == 4
    g = gains[(gains["model"] == "all") & (gains["task"] == "all")].set_index(["resource", "n_train_languages"])
    assert _covers(g.loc[("low", 3)], 0.10 * 2 / 3) and _covers(g.loc[("low", 4)], 0.10)
    assert g.loc[("high", 3), "ci_high"] < 0.10
    # the rise after the plateau, with its interval: flat in truth
    assert pooled.loc["high", "later_rise_ci_low"] < 0 < pooled.loc["high", "later_rise_ci_high"]
    assert pooled.loc["high", "flattening_ci_low"] > 0 and _covers(pooled.loc["high"].rename(
        {"flattening_ci_low": "ci_low", "flattening_ci_high": "ci_high"}), 0.10 / 3)  # 3.3 points per language
    assert not pooled["rising_at_last_step"].any() and pooled["max_level"].eq(11).all()


@pytest.mark.parametrize("order, per_language, n_items, rising", [
    (("es", "zh", "sw", "ru", "ja", "bn", "fr"), 0.02, 120, False),
    (("es", "zh", "sw"), 0.08, 1000, True),
])
def test_no_plateau_while_the_gain_still_rises(order, per_language, n_items, rising):
    """Gains planted linear in the number of training languages up to the largest level tested: the plateau was
    put at the largest level ('reaches its plateau at 8 training languages'), the only one nothing follows, or at
    a level whose later rise the intervals could not tell from zero."""
    from langmix.analysis import run_all
    from langmix.analysis.findings import findings

    shape = replace(SMALL, languages=("en", *order), growing_order=order, held_out=(), sizes=(1_000_000_000,),
                    n_items=n_items)
    items = simulate(Effects(coverage_gain=per_language * len(order), plateau=len(order) + 1), shape, seed=14,
                     item_spread=0.05)
    a = run_all(items, n_boot=300)
    plateau = a.frames["plateau"]
    pooled = plateau[(plateau["model"] == "all") & (plateau["task"] == "all")]
    assert len(pooled) == 2 and pooled["plateau"].isna().all(), pooled
    assert pooled["rising_at_last_step"].eq(rising).all() and (pooled["best_p_holm"] < 0.05).all()
    text = [s for s in findings(a) if "resource languages' gain" in s]
    assert len(text) == 2 and not any("reaches its plateau" in s for s in text), text
    why = "the gain is still rising at the last step" if rising else "does the gain clearly flatten"
    assert all(f"shows no plateau within the levels tested (2-{len(order) + 1} training languages): " in s
               and why in s for s in text), text


def test_zero_shot_vs_inclusion_recovers_the_inclusion_advantage():
    items = simulate(Effects(seen_gain=0.12), SMALL, seed=15)
    out = zero_shot_vs_inclusion(cell_bootstrap(items, seed=2))
    pooled = out[out["model"] == "all"].set_index("language")
    assert set(pooled.index) == {"sw", "te"}
    for lang in ("sw", "te"):
        assert pooled.loc[lang, "ci_high"] < 0 and _covers(pooled.loc[lang], -0.12)


def test_capacity_interaction_and_coverage_curves():
    items = simulate(Effects(size_coverage=0.01), SMALL, seed=16)
    cb = cell_bootstrap(items, seed=2)
    cap = capacity(cb)
    inter = cap[(cap["term"] == "interaction") & (cap["task"] == "all")].iloc[0]
    assert inter["ci_low"] > 0 and _covers(inter, 0.01), inter.to_dict()
    curves = coverage_curves(cb, pooled=True)
    small = curves[(curves["model"] == "a-0.1b") & (curves["task"] == "math")]
    assert small["n_train_languages"].min() == 1 and small["n_train_languages"].max() == 11
    assert {"mean", "ci_low", "ci_high", "n_items", "n_seeds", "n_runs"} <= set(curves.columns)


def test_fidelity_recovers_the_planted_shares():
    items = simulate(Effects(fidelity_seen=0.95, fidelity_unseen=0.7), SMALL, seed=17)
    out = fidelity(fidelity_cells(items))
    unseen = out[(out["mixture"] == "en") & (out["language"] == "sw")].iloc[0]
    seen = out[(out["mixture"] == "en+sw") & (out["language"] == "sw")].iloc[0]
    assert _covers(unseen, 0.7) and _covers(seen, 0.95) and seen["ci_low"] > unseen["ci_high"]


def test_pooled_fidelity_leaves_out_the_base_model_and_counts_judged_items():
    """The finding's figure: the mean share over fine-tuned non-English cells, seen vs unseen, with a CI; the base
    model (planted at 0% in the prompt's language) is not in it; unjudged responses are in no n."""
    from dataclasses import replace

    items = simulate(Effects(fidelity_seen=0.95, fidelity_unseen=0.7), replace(SMALL, include_base=True), seed=17)
    base = items["design"] == "base"
    items["response_language"] = items["response_language"].astype(object)
    items.loc[base, "response_language"] = "en"  # the base model never answers in the prompt's language
    unjudged = (items["language"] == "sw") & items["source_id"].astype(str).str.endswith(("1", "3"))
    items.loc[unjudged, "response_language"] = None
    out = fidelity_pooled(fidelity_cells(items)).set_index("seen")
    assert _covers(out.loc[False], 0.7) and _covers(out.loc[True], 0.95), out
    assert out.loc[False, "n_items_min"] < out.loc[False, "n_items"]  # sw cells lost their unjudged items
    cells = fidelity_cells(items).cells
    fine_tuned = cells[(cells["language"] != "en") & (cells["n_train_languages"] > 0)]
    assert out["n_cells"].sum() == len(fine_tuned) and not fine_tuned["mixture"].eq("base").any()


@pytest.mark.parametrize("seeds, low, high", [((0,), 0.03, 0.08), ((0, 1), 0.0, 0.05)])
def test_no_effect_false_positive_rate(seeds, low, high):
    """Per-mixture EN+1 tests on 'neither' over 30 null tables. One seed: ~5% reject at 0.05 (nominal). Two seeds
    without run-to-run variance: below 5%, because resampling seeds as well as items counts item noise twice (the
    price of covering run-to-run variance when it exists). Holm keeps the family-wise rate."""
    shape = StudyShape(families=("a",), sizes=(1_000_000_000,), tasks=("math",), seeds=seeds, n_items=80,
                       growing_order=(), held_out=())
    rejected, tested, family_hits, covered = 0, 0, 0, 0
    for s in range(30):
        out = en_plus_one(cell_bootstrap(simulate(Effects(), shape, seed=1000 + s), n_boot=500, seed=s))
        per = out[(out["model"] != "all") & (out["target"] == "neither")]
        rejected += int((per["p_value"] < 0.05).sum())
        tested += len(per)
        family_hits += int((per["p_holm"] < 0.05).any())
        covered += int(_covers(_pooled(out, "neither"), 0.0))
    rate = rejected / tested
    assert tested == 300
    print(f"false-positive rate {rate:.3f} ({rejected}/{tested}), Holm family hits {family_hits}/30, pooled CI covers 0 in {covered}/30")
    assert low <= rate <= high, rate
    assert family_hits <= 4 and covered >= 26


def test_a_one_language_mixture_is_no_level_of_the_plateau_search():
    """A non-English language trained alone (1 training language, as many as English-only) divided the gain per
    added language by zero: infinite `flattening` values."""
    import warnings

    import pandas as pd

    from langmix.analysis import run_all

    order = ("es", "zh", "sw", "ru")
    shape = replace(SMALL, languages=("en", *order), growing_order=order, held_out=(), sizes=(1_000_000_000,),
                    n_items=120)
    items = simulate(Effects(coverage_gain=0.08, plateau=3), shape, seed=14, item_spread=0.05)
    alone = items[items["mixture"] == "en+sw"].assign(mixture="sw-only", design="fixed", train_languages="sw",
                                                       n_train_languages=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a division by zero is an error here
        plateau = run_all(pd.concat([items, alone], ignore_index=True), n_boot=200).frames["plateau"]
    assert len(plateau) and (plateau["min_level"] == 2).all()
    assert np.isfinite(plateau["flattening"].dropna()).all()
