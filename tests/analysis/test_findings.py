"""Findings sentences: the verb agrees with the interval, and no sentence carries a NaN."""

from __future__ import annotations

import re
from dataclasses import replace

import pandas as pd
import pytest

from langmix.analysis import run_all
from langmix.analysis.findings import _change, findings
from langmix.analysis.simulate import Effects, StudyShape, simulate

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
