"""Answers without a verdict (an unscored `correct`, an unjudged `response_language`) are in no estimate, so no n
counts them: a cell's n_rows, a contrast's n_rows and n_no_verdict, and the sentences that state them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from langmix.analysis import Analyses, cell_bootstrap
from langmix.analysis.fidelity import fidelity, fidelity_cells, fidelity_pooled
from langmix.analysis.findings import findings
from langmix.analysis.minimal import en_plus_one, trained_set_gain

from .hand import hand_table


def _table() -> pd.DataFrame:
    """40 items, seeds 0 and 1, English-only and EN+sw on en, sw, es."""
    return hand_table(lambda m, lang, i: np.full(len(i), 0.6), n_items=40, seed=5)


def _rows(items: pd.DataFrame, mixture: str, language: str, source: str, seeds: tuple[int, ...]) -> pd.Series:
    return ((items["mixture"] == mixture) & (items["language"] == language) & (items["source_id"] == source)
            & items["seed"].isin(seeds))


def test_unjudged_answers_are_in_no_fidelity_n():
    from langmix.report_figures import n_per_cell  # the figure's n (imported here: a later stage)

    # the probe's study: one answer unjudged in seed 0 of a seen (sw) and an unseen (es) cell of EN+sw
    items = _table().astype({"response_language": object})
    items.loc[_rows(items, "en+sw", "sw", "math-11", (0,)), "response_language"] = None
    items.loc[_rows(items, "en+sw", "es", "math-4", (0,)), "response_language"] = None
    cb = fidelity_cells(items, n_boot=200)
    cells = cb.cells.set_index(["mixture", "language"])
    assert cells.loc[("en+sw", "sw"), ["n_items", "n_seeds", "n_rows"]].tolist() == [40, 2, 79]
    assert cells.loc[("en", "sw"), "n_rows"] == 80

    table = fidelity(cb).set_index(["mixture", "language"])  # report/tables/fidelity.csv
    assert table.loc[("en+sw", "sw"), ["n_rows", "n_no_verdict"]].tolist() == [79, 1]
    assert table.loc[("en", "es"), ["n_rows", "n_no_verdict"]].tolist() == [80, 0]

    pooled = fidelity_pooled(cb).set_index("seen")
    assert pooled.loc[True, ["n_cells", "n_rows", "n_no_verdict"]].tolist() == [1, 79, 1]
    assert pooled.loc[False, ["n_cells", "n_rows", "n_no_verdict"]].tolist() == [3, 239, 1]

    acc = cell_bootstrap(items, n_boot=50)
    said = [s for s in findings(Analyses(cells=acc, frames={"fidelity_pooled": fidelity_pooled(cb)}))
            if "prompt's language" in s]
    assert len(said) == 2
    assert "n=40 items x 2 seeds per cell; 239 of the cells' 240 answers language-judged, the 1 unjudged left out;" \
        in said[0]
    assert "n=40 items x 2 seeds per cell; 79 of the cells' 80 answers language-judged, the 1 unjudged left out;" \
        in said[1]
    assert all("judged items" not in s for s in said)
    assert n_per_cell(fidelity(cb).attrs["per_cell_n"], "language-judged", "unjudged") == \
        "n = up to 40 items x 2 seeds per cell (478 language-judged answers; 2 unjudged, left out)"


def test_every_answer_judged_keeps_the_plain_n():
    from langmix.report_figures import n_per_cell

    cb = fidelity_cells(_table(), n_boot=100)
    pooled = fidelity_pooled(cb)
    assert pooled["n_no_verdict"].tolist() == [0, 0]
    said = [s for s in findings(Analyses(cells=cell_bootstrap(_table(), n_boot=50),
                                         frames={"fidelity_pooled": pooled})) if "prompt's language" in s]
    assert "n=40 judged items x 2 seeds per cell; each cell in section 7" in said[0]
    assert n_per_cell(fidelity(cb).attrs["per_cell_n"]) == "n = up to 40 items x 2 seeds per cell"


def test_unscored_accuracy_rows_are_in_no_n():
    items = _table().astype({"correct": object})
    items.loc[_rows(items, "en+sw", "sw", "math-3", (0,)), "correct"] = None  # one seed only: still an item
    items.loc[_rows(items, "en+sw", "sw", "math-5", (0, 1)), "correct"] = None  # every seed: no item
    cb = cell_bootstrap(items, n_boot=200)
    cells = cb.cells.set_index(["mixture", "language"])
    assert cells.loc[("en+sw", "sw"), ["n_items", "n_seeds", "n_rows"]].tolist() == [39, 2, 77]

    # a plain mean keeps the cell's every verdict; all 3 rows without one are counted, the 2 of the item unscored
    # in every seed too (items x seeds less verdicts said 1: that item is in no item count; review)
    assert cells.loc[("en+sw", "sw"), "n_no_verdict"] == 3
    point, _, n = cb.contrast([{cb.cell("tiny", "math", "en+sw", "sw"): 1.0}])
    assert n.loc[0, ["n_items", "n_seeds", "n_rows", "n_no_verdict"]].tolist() == [39, 2, 77, 3]
    sw = items[(items["mixture"] == "en+sw") & (items["language"] == "sw")].dropna(subset=["correct"])
    assert point[0] == sw.groupby("seed")["correct"].mean().mean()

    # a gain is over the items both cells have in every seed: 38, each with a verdict in both seeds of both
    e = en_plus_one(cb)
    added = e[(e["model"] == "all") & (e["task"] == "all") & (e["mixture"] == "all") & (e["target"] == "added")]
    assert added[["n_items", "n_seeds", "n_rows", "n_no_verdict"]].iloc[0].tolist() == [38, 2, 152, 0]
    neither = e[(e["model"] == "all") & (e["task"] == "all") & (e["mixture"] == "all") & (e["target"] == "neither")]
    assert neither[["n_items", "n_rows", "n_no_verdict"]].iloc[0].tolist() == [40, 160, 0]

    measured = trained_set_gain(cb, ["en", "sw"], ["sw"])
    assert (measured["n_items"], measured["n_rows"], measured["n_no_verdict"]) == (38, 152, 0)

    said = findings(Analyses(cells=cb, frames={"en_plus_one": e}))
    assert any("accuracy on the added language itself" in s and "n=38 items x 2 seeds, 4 runs." in s for s in said)


def test_a_finding_states_the_answers_its_cells_leave_out():
    from langmix.analysis.findings import _n

    row = pd.Series({"n_items": 39, "n_seeds": 2, "n_seeds_min": 2, "n_runs": 2, "n_rows": 77, "n_no_verdict": 1})
    assert _n(row) == "n=39 items x 2 seeds, 2 runs; 77 of the cells' 78 answers scored, the 1 unscored left out"
    assert _n(row.drop(["n_rows", "n_no_verdict"])) == "n=39 items x 2 seeds, 2 runs"
