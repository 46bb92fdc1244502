"""Language fidelity (analysis 7): the share of responses in the prompt's language, per mixture and language."""

from __future__ import annotations

import numpy as np
import pandas as pd

from langmix.analysis.contrasts import estimate_frame, group_contrasts
from langmix.analysis.core import N_BOOT, AnalysisError, CellBoot, bootstrap_checked, check_items, per_cell_n

# the attrs key of `fidelity`'s frame holding the n of its cells (`core.per_cell_n`)
PER_CELL_N = "per_cell_n"


def fidelity_cells(items: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 1) -> CellBoot:
    """Bootstrap of per-cell shares of judged responses whose language is the prompt's (both compared as
    canonical codes, `check_items`)."""
    return fidelity_checked(check_items(items), n_boot, seed)


def fidelity_checked(items: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 1) -> CellBoot:
    """`fidelity_cells` of a table `check_items` returned."""
    if "response_language" not in items.columns:
        raise AnalysisError("no response_language column")
    judged = items["response_language"].notna().to_numpy()
    if not judged.any():
        raise AnalysisError("no response was language-judged")
    resp = items["response_language"].astype(object).to_numpy()
    lang = items["language"].astype(object).to_numpy()
    same = np.full(len(items), np.nan)  # an unjudged response has no verdict: in no mean, counted in n_no_verdict
    same[judged] = resp[judged] == lang[judged]
    return bootstrap_checked(items.assign(_same=same), value="_same", n_boot=n_boot, seed=seed)


def fidelity(cb: CellBoot) -> pd.DataFrame:
    """Share in the prompt's language per (mixture, design, language, seen), pooled over models and tasks."""
    keys, rows = group_contrasts(cb, cb.cells["language"].notna(), ["mixture", "design", "n_train_languages",
                                                                    "language", "seen"])
    out, _ = estimate_frame(cb, keys, rows)
    out = out.drop(columns="p_value").rename(columns={"estimate": "share", "n_cells": "n_model_tasks"})
    out.attrs[PER_CELL_N] = per_cell_n(cb.cells)  # its figure's n: a row pools models and tasks, a cell does not
    return out


def fidelity_pooled(cb: CellBoot) -> pd.DataFrame:
    """The fine-tuned runs' share in the prompt's language on non-English languages, unseen vs seen in training:
    the mean of the (model, task, mixture, language) cell shares, with its paired-bootstrap CI. The base model
    (trained on no language) is left out. `n_cells` counts the cells; `n_items_min`/`n_items` the fewest and most
    language-judged items in one cell (a response whose language could not be judged is in no cell's n)."""
    cells = cb.cells
    sel = (cells["language"] != "en") & (cells["n_train_languages"] > 0)
    keys, rows = group_contrasts(cb, sel, ["seen"])
    out, _ = estimate_frame(cb, keys, rows)
    n_items = cells["n_items"].to_numpy()
    out["n_cells"] = [len(r) for r in rows]
    out["n_items_min"] = [int(n_items[list(r)].min()) for r in rows]
    out["n_items"] = [int(n_items[list(r)].max()) for r in rows]  # per cell, not summed over tasks
    return out.drop(columns="p_value").rename(columns={"estimate": "share"})
