"""The item table at the entry of the analyses: language labels canonical, unknown ones, repeated verdicts and
wrongly typed columns refused in one line naming the column or rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from langmix.analysis import run_all
from langmix.analysis.core import cell_bootstrap, check_items
from langmix.analysis.findings import findings
from langmix.analysis.simulate import Effects, StudyShape, simulate
from langmix.errors import UserInputError
from langmix.plan import _design

from .hand import hand_table

SHAPE = StudyShape(families=("a",), sizes=(1_000_000_000,), tasks=("math",), languages=("en", "es", "sw", "te"),
                   seeds=(0, 1), n_items=40, growing_order=("es", "sw"), held_out=("te",))
NAMES = {"en": "English", "es": "Spanish", "sw": "Swahili", "te": "Telugu"}
BCP47 = {"en": "en-US", "es": "es-419", "sw": "sw-KE", "te": "te-IN"}


def _relabel(items: pd.DataFrame, label) -> pd.DataFrame:
    out = items.copy()
    for column in ("language", "response_language"):
        out[column] = out[column].astype(object).map(label)
    out["train_languages"] = out["train_languages"].astype(object).map(
        lambda tl: ",".join(label(x) for x in tl.split(",") if x))
    return out


@pytest.mark.parametrize("label", [NAMES.get, str.upper, BCP47.get], ids=["names", "upper", "bcp47"])
def test_language_labels_are_canonicalised_so_the_findings_equal_the_canonical_tables(label):
    """'English', 'EN' or 'en-US' in the language column: every literal test against 'en' and every
    train_languages match failed, so English counted as a non-English language and no language as seen (probe
    p4: the EN+1 'added' and 'english' findings vanished, zero-shot could not run)."""
    items = simulate(Effects(en_plus_one_unseen=0.05, seen_gain=0.15, coverage_gain=0.02), SHAPE, seed=4)
    want = findings(run_all(items, n_boot=100))
    got = findings(run_all(_relabel(items, label), n_boot=100))
    assert got == want
    assert any(s.startswith("EN+1 raised accuracy on the added language") for s in want)


def test_the_planner_gets_canonical_codes():
    items = simulate(Effects(seen_gain=0.1), SHAPE, seed=5)
    want = _design(cell_bootstrap(items, n_boot=50))
    got = _design(cell_bootstrap(_relabel(items, NAMES.get), n_boot=50))
    pd.testing.assert_frame_equal(got[0], want[0])
    assert np.array_equal(got[1], want[1])


@pytest.mark.parametrize("column, value, said", [("language", "tlh", "'tlh'"),
                                                ("train_languages", "en,tlh", "'tlh' (in 'en,tlh')")])
def test_an_unknown_language_is_refused_naming_it_and_its_column(column, value, said):
    """'tlh' for Telugu crashed build_report with UnknownLanguageError from typology() (probe p15)."""
    items = simulate(Effects(), SHAPE, seed=6)
    items[column] = items[column].astype(object)
    items.loc[items[column] == ("te" if column == "language" else "en,es,sw"), column] = value
    with pytest.raises(UserInputError, match=re.escape(f"the item table's '{column}' column holds {said}, which is "
                                                       f"not a language langmix knows: unknown language 'tlh'")):
        run_all(items, n_boot=50)


def _table() -> pd.DataFrame:
    return hand_table(lambda mixture, lang, i: np.full(len(i), 0.5), n_items=20, seed=7)


def test_a_run_stored_twice_under_another_hash_is_refused_naming_both_runs():
    """The same run's rows again under another eval_hash were averaged in and counted as a third run (probe p2)."""
    items = _table()
    again = items[(items["mixture"] == "en+sw") & (items["seed"] == 0)].assign(eval_hash="e-again")
    with pytest.raises(UserInputError, match=r"^60 \(model, task, mixture, language, source_id, seed\) keys of the "
                                             r"item table have more than one verdict, e\.g\. tiny/math/en\+sw/en item "
                                             r"math-0 seed 0 in runs e-tiny-en\+sw-math-0 and e-again; .*keep one run"):
        run_all(pd.concat([items, again], ignore_index=True), n_boot=50)


def test_repeated_rows_of_one_run_are_refused():
    items = _table()
    with pytest.raises(UserInputError, match=r"math-0 seed 0 twice in run e-tiny-en\+sw-math-0; .*drop the "
                                             r"repeated rows"):
        cell_bootstrap(pd.concat([items, items[items["mixture"] == "en+sw"]], ignore_index=True), n_boot=50)


def test_correct_as_text_is_refused_naming_the_column_and_type():
    """'True'/'False' strings failed deep in the bootstrap: 'could not convert string to float' (probe p5)."""
    items = _table()
    items["correct"] = items["correct"].map({True: "True", False: "False"})
    with pytest.raises(UserInputError, match="the item table's 'correct' column must hold booleans .* it holds str "
                                             "values such as '(True|False)'"):
        run_all(items, n_boot=50)


@pytest.mark.parametrize("value", [2, -1, 0.5])
def test_a_verdict_other_than_0_or_1_is_refused_naming_the_run_and_count(value):
    """correct = 2 on one cell was averaged into an "accuracy" of 0.835, twice the real one (probe D4): a verdict
    is True/False (1/0), None where unscored; anything else is refused naming a run holding it and how many rows."""
    items = _table()
    items["correct"] = items["correct"].astype(type(value))  # int, or float for 0.5
    bad = (items["mixture"] == "en+sw") & (items["language"] == "sw") & (items["seed"] == 1)
    items.loc[bad & items["correct"].eq(1), "correct"] = value
    n = int((bad & items["correct"].eq(value)).sum())
    assert n > 0
    with pytest.raises(UserInputError, match=rf"^the item table's 'correct' column must hold verdicts \(True/False "
                                             rf"or 1/0; None where unscored\), but {n} rows hold other values, e\.g\. "
                                             rf"{value:g} in run e-tiny-en\+sw-math-1 \(tiny/en\+sw/math seed 1\), "
                                             rf"{n} of its rows;"):
        cell_bootstrap(items, n_boot=20)
    ok = items.assign(correct=np.where(bad, 1, items["correct"]).astype(int))  # 0/1 integers pass
    assert cell_bootstrap(ok, n_boot=20).cells["mean"].between(0, 1).all()


def test_a_count_of_training_languages_that_is_not_its_languages_is_refused():
    """n_train_languages 5 on a mixture training 'en,sw' was analysed as a 5-language mixture (probe D5)."""
    items = _table()
    items.loc[items["mixture"] == "en+sw", "n_train_languages"] = 5
    with pytest.raises(UserInputError, match=r"^120 rows of the item table give n_train_languages that is not the "
                                             r"number of their train_languages, e\.g\. mixture tiny/en\+sw: "
                                             r"train_languages 'en,sw' but n_train_languages 5 on 120 rows;"):
        cell_bootstrap(items, n_boot=20)


@pytest.mark.parametrize("column, value, said", [
    ("train_languages", "en,es", "en_plus_one on 'en,sw' (60 rows, seeds 0) vs en_plus_one on 'en,es' (60 rows, "
                                 "seeds 1)"),
    ("design", "held_out", "en_plus_one on 'en,sw' (60 rows, seeds 0) vs held_out on 'en,sw' (60 rows, seeds 1)")])
def test_a_mixture_whose_rows_disagree_on_what_it_trains_is_refused(column, value, said):
    """Seed 1 of en+sw saying it trained on en,es (or was a held-out mixture): each cell took its first row's facts,
    so sw was seen and es unseen, or the other way, by row order (probe D5)."""
    items = _table()
    items[column] = items[column].astype(object)
    items.loc[(items["mixture"] == "en+sw") & (items["seed"] == 1), column] = value
    with pytest.raises(UserInputError, match=r"^1 mixture of the item table has rows that disagree on what the "
                                             r"mixture trains, e\.g\. tiny/en\+sw: " + re.escape(said) + "; each cell "
                                             r"would take its first row's"):
        run_all(items, n_boot=20)


def test_one_training_set_written_in_another_order_is_one_mixture():
    """Rows of one mixture saying 'en,sw' and 'sw,en' were refused as disagreeing on what it trains (review), though
    the analyses read a training set as a set: the second order is written as the first."""
    items = _table()
    items["train_languages"] = items["train_languages"].astype(object)
    items.loc[(items["mixture"] == "en+sw") & (items["seed"] == 1), "train_languages"] = "sw,en"
    checked = check_items(items)
    assert set(checked.loc[checked["mixture"] == "en+sw", "train_languages"]) == {"en,sw"}
    same = cell_bootstrap(_table(), n_boot=20).cells
    assert cell_bootstrap(items, n_boot=20).cells[["mixture", "language", "mean", "seen"]].equals(
        same[["mixture", "language", "mean", "seen"]])


def test_one_mixture_name_may_train_other_languages_for_another_model():
    """Facts are one per (model, mixture): another model's en+sw with another training set is its own mixture."""
    items = _table()
    other = items[items["mixture"] != "en"].assign(model="other", eval_hash=lambda f: f["eval_hash"] + "-other")
    other.loc[other["mixture"] == "en+sw", "train_languages"] = "en,es"
    cb = cell_bootstrap(pd.concat([items, other], ignore_index=True), n_boot=20)
    seen = cb.cells.set_index(["model", "mixture", "language"])["seen"]
    assert seen[("tiny", "en+sw", "sw")] and not seen[("tiny", "en+sw", "es")]
    assert seen[("other", "en+sw", "es")] and not seen[("other", "en+sw", "sw")]


def test_whole_number_columns_are_checked():
    items = _table()
    items["model_params"] = "1B"
    with pytest.raises(UserInputError, match="'model_params' column must hold whole numbers"):
        check_items(items)


def test_booleans_with_gaps_and_canonical_tables_pass_unchanged():
    """None where unscored stays allowed (the row is left out); a canonical table is returned as it is."""
    items = _table()
    assert check_items(items) is items
    gaps = items.assign(correct=items["correct"].astype(object))
    gaps.loc[gaps.index[:5], "correct"] = None
    cb = cell_bootstrap(gaps, n_boot=20)
    assert int(cb.cells["n_rows"].sum()) == len(items) - 5


def test_run_all_checks_the_table_once_and_its_frames_equal_the_checked_paths(monkeypatch):
    """run_all checks the table once (each check is 0.3 s on a 1M-row table; it ran 4 times), and skipping the
    repeated checks changes no number: its cells equal cell_bootstrap's on the same table and seed."""
    import sys

    from langmix.analysis import table

    items = _relabel(simulate(Effects(seen_gain=0.1), SHAPE, seed=3), str.upper)  # labels the check rewrites
    calls = []
    real = table.check_items

    def counted(frame):
        calls.append(len(frame))
        return real(frame)

    for module in ("langmix.analysis", "langmix.analysis.core", "langmix.analysis.fidelity"):
        monkeypatch.setattr(sys.modules[module], "check_items", counted)
    result = run_all(items, n_boot=50)
    assert calls == [len(items)]
    expected = cell_bootstrap(items, n_boot=50)
    pd.testing.assert_frame_equal(result.cells.cells, expected.cells)
    np.testing.assert_array_equal(result.cells.boot, expected.boot)
    assert "fidelity" in result.frames


@pytest.mark.parametrize("owner, fact, value, said", [
    ("model", "model_params", 999, r"model tiny: \d+ on \d+ rows vs 999 on \d+ rows"),
    ("language", "resource", "high", r"language sw: 'high' on 40 rows vs 'low' on 40 rows")])
def test_a_model_size_or_resource_group_that_differs_between_rows_is_refused(owner, fact, value, said):
    """A model's size and a language's resource group were read from each cell's first row: seed 1 saying sw is
    high-resource put sw's en+sw cell in one group and its en cell in the other, by row order (leftover of the
    stop-25 analysis probe)."""
    items = _table()
    if fact == "resource":
        items[fact] = items[fact].astype(object)
    rows = (items["seed"] == 1) & (items["language"] == "sw") if owner == "language" else items["seed"] == 1
    items.loc[rows, fact] = value
    with pytest.raises(UserInputError, match=rf"^1 {owner} of the item table has rows that disagree on its {fact}, "
                                             rf"e\.g\. {said}; each cell would take its first row's"):
        run_all(items, n_boot=20)
