"""Contrasts over the bootstrapped cells (`core.CellBoot`): group means and gains over English-only
(`group_contrasts`), their estimates with CIs and n (`estimate_frame`), which cell each gain compares with and what
it leaves out for want of one (`reference_cells`), and the reasons and pooled n the analyses' sentences give."""

from __future__ import annotations

import numpy as np
import pandas as pd

from langmix.analysis.core import N_COLUMNS, CellBoot
from langmix.analysis.stats import summarise

# The attrs key under which a gain frame names what it left out for want of an English-only cell (`reference_cells`);
# the findings and the report say it beside every figure from that frame.
NO_REFERENCE = "no_reference"
# EN+1's, per target (english, added, neither): a language English-only has no cell for is left out of 'neither' only
NO_REFERENCE_BY_TARGET = "no_reference_by_target"
# The attrs key of an analysis frame left empty, saying why the table cannot give it (e.g. too few coverage levels
# for a plateau): `run_all` records it as that frame's "Cannot answer", so the findings and the report say it.
CANNOT = "cannot"


def english_only_mixture(cb: CellBoot, model: str, task: str) -> str | None:
    """The English-only mixture of a model and task (design english_only), if any."""
    return cb.english_only.get((model, task))


def why_none(cb: CellBoot, designs, what: str) -> str:
    """Why an analysis over non-English cells of `designs` has none: only English evaluated, no such mixture, or
    none of them evaluated on a non-English language (the reason a reader can act on, not the first guess)."""
    c = cb.cells
    if not (c["language"] != "en").any():
        return "no non-English language evaluated (only English), so there is no other language to measure"
    if not c["design"].isin(list(designs)).any():
        return f"no {what}"
    return f"no {what} evaluated on a non-English language"


def pooled_items(frame: pd.DataFrame) -> int:
    """n items of a figure pooled over rows of several tasks: per task the most any row has, summed over tasks (the
    rule of every pooled contrast: each task's items are resampled on their own)."""
    if frame.empty:
        return 0
    return int(frame.groupby("task")["n_items"].max().sum())


def group_contrasts(cb: CellBoot, sel: pd.Series, by: list[str], gain: bool = False,
                    pooled: dict[str, str] | None = None) -> tuple[pd.DataFrame, list[dict[int, float]]]:
    """Mean over the selected cells of each `by` group (or, with `gain`, of each cell minus the same model, task
    and language under English-only). `pooled` maps `by` columns to the label "all" to average over them too.
    With `gain`, the cells without an English-only cell are left out of every mean and named in the keys'
    `attrs['no_reference']` (`reference_cells`)."""
    c = cb.cells[np.asarray(sel, bool)].copy()
    if pooled:
        for col, label in pooled.items():
            c[col] = label
    ref_cell = np.full(len(cb.cells), -1, dtype=np.int64)
    no_reference: list[str] = []
    if gain:
        ref_cell[c.index.to_numpy()], no_reference = reference_cells(cb, c.index.to_numpy())
    keys, rows = [], []
    for key, pos in c.groupby(by, sort=True, observed=True).indices.items():
        members = c.index.to_numpy()[pos]
        if gain:
            members = members[ref_cell[members] >= 0]
        if len(members) == 0:
            continue
        w = 1.0 / len(members)
        coefs: dict[int, float] = {}
        for i in members.tolist():
            coefs[i] = coefs.get(i, 0.0) + w
            if gain:
                j = int(ref_cell[i])
                coefs[j] = coefs.get(j, 0.0) - w
        keys.append(dict(zip(by, key if isinstance(key, tuple) else (key,))) | {"n_cells": len(members)})
        rows.append(coefs)
    out = pd.DataFrame(keys)
    out.attrs[NO_REFERENCE] = no_reference
    return out, rows


def estimate_frame(cb: CellBoot, keys: pd.DataFrame, rows: list[dict[int, float]]) -> tuple[pd.DataFrame, np.ndarray]:
    """keys + estimate, CI, p, n for each contrast row; also the replicates (rows x B)."""
    if not rows:
        return keys.assign(estimate=[], ci_low=[], ci_high=[], p_value=[], **{k: [] for k in N_COLUMNS}), \
            np.zeros((0, cb.n_boot))
    point, boot, n = cb.contrast(rows)
    return pd.concat([keys.reset_index(drop=True), summarise(point, boot), n], axis=1), boot


def reference_cells(cb: CellBoot, idx) -> tuple[np.ndarray, list[str]]:
    """Per cell index in `idx`, the cell of the same model, task and language under English-only (-1 where there is
    none), and what that leaves out of any gain, named: 'model/task' where the pair has no English-only run,
    'model/task/language (not scored under English-only)' where the run has no cell for the language. The one rule
    of every gain over English-only: a figure that drops these says so (attrs[NO_REFERENCE]), never silently."""
    c = cb.cells
    ref = np.full(len(idx), -1, dtype=np.int64)
    runs: set[str] = set()
    langs: set[str] = set()
    for n, i in enumerate(np.asarray(idx, dtype=np.int64).tolist()):
        model, task, lang = c.at[i, "model"], c.at[i, "task"], c.at[i, "language"]
        mixture = cb.english_only.get((model, task))
        j = cb.cell(model, task, mixture, lang) if mixture is not None else None
        if mixture is None:
            runs.add(f"{model}/{task}")
        elif j is None:
            langs.add(f"{model}/{task}/{lang}")
        else:
            ref[n] = j
    return ref, sorted(runs) + [f"{x} (not scored under English-only)" for x in sorted(langs)]
