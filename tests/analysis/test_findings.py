"""Findings sentences: the verb agrees with the interval, and no sentence carries a NaN."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from langmix.analysis import run_all
from langmix.analysis.findings import _change, findings
from langmix.analysis.simulate import Effects, StudyShape, simulate

from .hand import hand_table

SHAPE = StudyShape(families=("a",), sizes=(100_000_000, 1_000_000_000), seeds=(0,), n_items=40)


@pytest.mark.parametrize("low, high, want", [
    (0.01, 0.05, "raised accuracy on English by +3.0 points [+1.0, +5.0]"),
    (-0.05, -0.01, "lowered accuracy on English by +3.0 points [-5.0, -1.0]"),
    (-0.01, 0.05, "did not clearly change accuracy on English (+3.0 points [-1.0, +5.0], an interval that "
                  "includes zero)"),
])
def test_change_verb_follows_the_interval(low, high, want):
    row = pd.Series({"estimate": 0.03, "ci_low": low, "ci_high": high})
    assert _change(row, "accuracy on English") == want


def test_a_figure_that_rounds_to_zero_has_no_minus_sign():
    row = pd.Series({"estimate": -0.0001, "ci_low": -0.0002, "ci_high": 0.05})
    assert _change(row, "x") == "did not clearly change x (+0.0 points [+0.0, +5.0], an interval that includes zero)"


def _sentences(items: pd.DataFrame) -> list[str]:
    out = findings(run_all(items, n_boot=200))
    assert out
    return out


def test_no_effect_sentences_read_as_no_clear_change():
    for s in _sentences(simulate(Effects(), SHAPE, seed=3)):
        assert not re.search(r"did not clearly change [^(]* by ", s), s
        assert "nan" not in s.lower() and "inf" not in s.replace("information", ""), s


def test_relative_gain_over_a_zero_english_only_score_is_named_not_nan():
    items = simulate(Effects(en_plus_one_unseen=0.05), SHAPE, seed=4)
    en_only = items["design"] == "english_only"
    assert en_only.any()
    items.loc[en_only, "correct"] = False
    items.loc[en_only, "correct_strict"] = False
    a = run_all(items, n_boot=200)
    assert "relative_gain" not in a.frames and "en_plus_one" in a.frames
    assert "relative gain is undefined" in a.missing["relative_gain"]
    for s in findings(a):
        assert "nan" not in s.lower(), s


def test_relative_gain_skips_only_the_pairs_at_zero():
    items = simulate(Effects(en_plus_one_unseen=0.05), replace(SHAPE, tasks=("math", "api")), seed=5)
    zero = (items["design"] == "english_only") & (items["task"] == "api")
    items.loc[zero, "correct"] = False
    frame = run_all(items, n_boot=200).frames["relative_gain"]
    assert set(frame["task"]) == {"math", "all"}
    assert frame[["estimate", "ci_low", "ci_high"]].notna().all().all()


def _stub(frames: dict[str, pd.DataFrame], n_seeds: int = 2):
    """An Analyses holding only `frames` (findings reads cells for the seed count and nothing else of them)."""
    from types import SimpleNamespace

    from langmix.analysis import Analyses

    return Analyses(cells=SimpleNamespace(cells=pd.DataFrame({"n_seeds": [n_seeds]}), n_boot=1000), frames=frames)


def test_the_zero_shot_verdict_follows_the_holm_test_it_prints():
    """A probe's French line: '-12.5 points [-22.7, -3.0] ... (worse), ..., Holm p=0.0959' - the word came from the
    unadjusted interval while the line states a Holm p above 0.05 (zero-shot is judged with Holm over languages)."""
    rows = [("fr", -0.125, -0.227, -0.030, 0.0959), ("sw", -0.122, -0.193, -0.043, 0.012),
            ("de", 0.010, -0.050, 0.070, 1.0)]
    z = pd.DataFrame([{"model": "all", "task": "all", "language": lang, "held_out_k": 10, "included_mixture":
                       f"en+{lang}", "estimate": est, "ci_low": lo, "ci_high": hi, "p_value": p / 3, "p_holm": p,
                       "degenerate": False, "n_items": 300, "n_seeds": 2, "n_runs": 4}
                      for lang, est, lo, hi, p in rows])
    out = {s.split(" held out")[0]: s for s in findings(_stub({"zero_shot": z})) if " held out of " in s}
    assert out["French"] == ("French held out of a 10-language mixture scored -12.5 points [-22.7, -3.0] relative to "
                             "being trained on in en+fr (not clearly different after Holm adjustment over the 3 "
                             "languages tested, though the unadjusted interval excludes zero), n=300 items x 2 seeds, "
                             "4 runs, Holm p=0.0959.")
    assert "(worse), n=300 items x 2 seeds, 4 runs, Holm p=0.012." in out["Swahili"]
    assert "(not clearly different), n=300" in out["German"]


EN1_SHAPE = replace(SHAPE, sizes=(100_000_000,), tasks=("math",), growing_order=(), held_out=())


def _en_plus_one_lines(items: pd.DataFrame) -> list[str]:
    return [s for s in findings(run_all(items, n_boot=100)) if "EN+1" in s]


def test_an_en_plus_one_finding_without_a_scored_cell_is_said_not_dropped():
    """A probe: en+sw's sw cell had no verdict, and the sentence on the added language was gone with nothing in its
    place (no 'Cannot answer', `missing` empty). Here en+sw is not evaluated on sw at all (the same gap)."""
    items = simulate(Effects(seen_gain=0.1), EN1_SHAPE, seed=7)
    one = items[items["mixture"].isin(["en", "en+sw"]) & ~((items["mixture"] == "en+sw") & (items["language"] == "sw"))]
    lines = _en_plus_one_lines(one)
    assert ("Cannot answer (EN+1 on the added language itself): no EN+1 mixture has a cell scored on it (at least one "
            "verdict) in both the mixture and English-only: not evaluated there, or every verdict missing (en+sw "
            "(a-0.1b/math)).") in lines
    assert any(s.startswith("EN+1 ") and "accuracy on English" in s for s in lines)
    # with other EN+1 mixtures, the pooled figure is over those that have the cell, and says which one is not in it
    part = items[~((items["mixture"] == "en+sw") & (items["language"] == "sw"))]
    added = [s for s in _en_plus_one_lines(part) if "on the added language itself" in s]
    assert len(added) == 1 and added[0].startswith("EN+1 raised accuracy on the added language itself"), added
    assert added[0].endswith("; left out: 1 EN+1 mixture with no cell scored on it in both the mixture and "
                             "English-only (en+sw (a-0.1b/math)).")


def test_a_side_with_one_seed_is_said_in_n_and_in_the_caveat():
    """English-only's seed 1 missing: the EN+1 contrasts were reported 'n=200 items x 2 seeds' (the larger side)
    and the caveat keyed on the study's most seeds, so nothing said one side had a single run. Now the n reads
    '1-2 seeds' and a caveat names the run and what its intervals borrow."""
    items = hand_table(lambda mixture, lang, i: np.full(len(i), 0.5), run_sd=0.04, seed=2)
    items = items[~((items["mixture"] == "en") & (items["seed"] == 1))]
    out = findings(run_all(items, n_boot=200))
    en1 = [s for s in out if s.startswith("EN+1 ") and "added language" in s]
    assert len(en1) == 1 and "n=200 items x 1-2 seeds, 3 runs." in en1[0], en1
    unseen = [s for s in out if s.startswith("On non-English languages not seen in training")]
    assert len(unseen) == 1 and "n=200 judged items x 1-2 seeds per cell" in unseen[0], unseen
    caveat = [s for s in out if s.startswith("One seed only for")]
    assert caveat == [caveat[0]] and caveat[0].startswith(
        "One seed only for 1 fine-tuned run (tiny/en), beside runs with several: their intervals borrow the "
        "run-to-run variance measured on the runs with several seeds"), out


@pytest.mark.parametrize("value, digits, want", [(-0.04, 1, "+0.0"), (-0.0, 1, "+0.0"), (-0.06, 1, "-0.1"),
                                                 (-0.0004, 3, "+0.000"), (0.0004, 3, "+0.000"),
                                                 (-0.0006, 3, "-0.001"), (2.5, 1, "+2.5")])
def test_every_signed_figure_that_rounds_to_zero_reads_plus_zero(value, digits, want):
    from langmix.analysis.findings import signed

    assert signed(value, digits) == want
