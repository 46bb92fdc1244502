"""Every gain over English-only that leaves cells out for want of an English-only cell names them (probe D3: with
one model lacking its English-only run, the plateau sentences, resource gains, typology and relative gain dropped it
without a word, while the EN+1 sentence named it)."""

from __future__ import annotations

import pytest

from langmix.analysis import run_all
from langmix.analysis.contrasts import NO_REFERENCE, reference_cells
from langmix.analysis.core import cell_bootstrap
from langmix.analysis.findings import findings
from langmix.analysis.simulate import Effects, StudyShape, simulate

SHAPE = StudyShape(families=("a",), sizes=(100_000_000, 4_000_000_000), tasks=("math",),
                   languages=("en", "es", "sw", "zh", "ja", "de"), seeds=(0, 1), n_items=40)
GONE = ["a-4b/math", "a-0.1b/math/ja (not scored under English-only)"]


def partial_study():
    """a-4b has no English-only run; a-0.1b's English-only run was not scored on Japanese."""
    items = simulate(Effects(coverage_gain=0.06, en_plus_one_unseen=0.03), SHAPE, seed=3)
    eo = items["design"] == "english_only"
    drop = eo & ((items["model"] == "a-4b") | (items["language"] == "ja"))
    return items[~drop].reset_index(drop=True)


@pytest.fixture(scope="module")
def analyses():
    return run_all(partial_study(), n_boot=100)


def test_reference_cells_names_runs_and_languages_without_english_only():
    cb = cell_bootstrap(partial_study(), n_boot=10)
    c = cb.cells
    sel = c[(c["design"] == "en_plus_one") & (c["language"] != "en")]
    ref, gone = reference_cells(cb, sel.index)
    assert gone == GONE
    found = sel[ref >= 0]
    assert set(found["model"]) == {"a-0.1b"} and "ja" not in set(found["language"])
    assert (c.loc[ref[ref >= 0], "mixture"] == "en").all()


@pytest.mark.parametrize("name", ["resource_gains", "plateau", "typology_languages", "typology_regression",
                                  "relative_gain", "en_plus_one"])
def test_every_gain_frame_names_what_it_left_out(analyses, name):
    frame = analyses.frames[name]
    assert frame.attrs[NO_REFERENCE] == GONE
    if "model" in frame and name != "relative_gain":
        assert "a-4b" not in set(frame["model"])  # and the figures are over the rest, as named


def test_every_pooled_gain_sentence_says_what_it_left_out(analyses):
    text = findings(analyses)
    note = "left out for want of an English-only run to compare with: a-4b/math, a-0.1b/math/ja"
    for start in ("High-resource languages' gain", "Low-resource languages' gain", "Zero-shot gain changes",
                  "The median relative gain", "Adding one language to English"):
        lines = [s for s in text if s.startswith(start)]
        assert lines and all(note in s for s in lines), (start, lines)
    # EN+1 on English and on the added language: a language English-only has no cell for (ja) is left out of the
    # 'neither' figure only (it is a gap of the others, named as such), the run without English-only of each
    lines = [s for s in text if s.startswith("EN+1 ")]
    assert len(lines) == 2 and all("compare with: a-4b/math;" in s or "compare with: a-4b/math." in s
                                   for s in lines), lines
    assert not any("a-0.1b/math/ja (not scored" in s for s in lines), lines
