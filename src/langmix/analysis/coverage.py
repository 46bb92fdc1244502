"""Coverage curves (analysis 1), resource groups and the plateau (analysis 2), capacity (analysis 6)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from langmix.analysis.core import AnalysisError, CellBoot, adjust, estimate_frame, group_contrasts

log = logging.getLogger(__name__)

_TUNED = ["english_only", "en_plus_one", "fixed", "growing", "held_out"]


def coverage_curves(cb: CellBoot, pooled: bool = False) -> pd.DataFrame:
    """Headline mean per (model, task, language, n_train_languages, seen) over the mixtures at that coverage.

    `pooled=True` averages over languages instead (per model, task, coverage and seen/unseen; English excluded).
    """
    c = cb.cells
    sel = c["design"].isin(_TUNED)
    if pooled:
        sel &= c["language"] != "en"
        by = ["model", "model_params", "task", "n_train_languages", "seen"]
    else:
        by = ["model", "model_params", "task", "language", "resource", "n_train_languages", "seen"]
    keys, rows = group_contrasts(cb, sel, by)
    out, _ = estimate_frame(cb, keys, rows)
    # n_cells: mixture x language cells averaged; a p-value against 0 means nothing for an accuracy
    return out.drop(columns="p_value").rename(columns={"estimate": "mean"})


def resource_gains(cb: CellBoot) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(gain over English-only per resource group and coverage level, plateau per group).

    Gains average non-English languages of the group over the multilingual mixtures with k training languages,
    per model and task, pooled over models ("all"), and over models and tasks. The plateau is the first coverage
    level whose gain is at least the lower 95% bound of the best level's gain.
    """
    c = cb.cells
    sel = c["design"].isin(_TUNED[1:]) & (c["language"] != "en")
    if not sel.any():
        raise AnalysisError("no multilingual mixtures")
    by = ["model", "task", "resource", "n_train_languages"]
    parts = []
    for pooled in (None, {"model": "all"}, {"model": "all", "task": "all"}):
        keys, rows = group_contrasts(cb, sel, by, gain=True, pooled=pooled)
        parts.append(estimate_frame(cb, keys, rows)[0])
    gains = pd.concat(parts, ignore_index=True)
    if gains.empty:
        raise AnalysisError("no English-only mixture to measure gains against")
    plateaus = []
    for (model, task, res), g in gains.groupby(["model", "task", "resource"], sort=True):
        g = g.sort_values("n_train_languages")
        if g["n_train_languages"].nunique() < 3:
            continue
        best = g.loc[g["estimate"].idxmax()]
        first = g[g["estimate"] >= best["ci_low"]].iloc[0]
        # the best of several levels is picked after seeing them: its p-value is Holm-adjusted over the levels
        best_p_holm = float(pd.Series(adjust(g["p_value"]), index=g.index)[best.name])
        plateaus.append({"model": model, "task": task, "resource": res, "plateau": int(first["n_train_languages"]),
                         "best_level": int(best["n_train_languages"]), "best_gain": best["estimate"],
                         "best_ci_low": best["ci_low"], "best_ci_high": best["ci_high"], "best_p_holm": best_p_holm,
                         "gain_at_plateau": first["estimate"], "plateau_ci_low": first["ci_low"],
                         "plateau_ci_high": first["ci_high"], "levels": int(g["n_train_languages"].nunique()),
                         "n_items": int(g["n_items"].max()), "n_seeds": int(g["n_seeds"].max())})
    return gains, pd.DataFrame(plateaus)


def capacity(cb: CellBoot) -> pd.DataFrame:
    """Slope of the mean non-English score per added training language, per model and task, and the interaction:
    the change of that slope per decade of parameters (least squares over models; all linear in cell means, so the
    paired bootstrap gives its CI). Rows with term 'slope' (per model) and 'interaction' (per task and pooled)."""
    c = cb.cells
    sel = c["design"].isin(_TUNED) & (c["language"] != "en")
    keys, rows = group_contrasts(cb, sel, ["model", "model_params", "task", "n_train_languages"])
    if keys.empty:
        raise AnalysisError("no fine-tuned mixtures")
    slope_keys, slope_rows = [], []
    for (model, params, task), g in keys.groupby(["model", "model_params", "task"], sort=True):
        k = g["n_train_languages"].to_numpy(float)
        if len(np.unique(k)) < 2:
            continue
        w = (k - k.mean()) / np.sum((k - k.mean()) ** 2)
        coefs: dict[int, float] = {}
        for wi, r in zip(w, g.index):
            for cell, v in rows[r].items():
                coefs[cell] = coefs.get(cell, 0.0) + wi * v
        slope_keys.append({"term": "slope", "model": model, "model_params": int(params), "task": task})
        slope_rows.append(coefs)
    if not slope_rows:
        raise AnalysisError("one coverage level only")
    sk = pd.DataFrame(slope_keys)
    inter_keys, inter_rows = [], []
    for task in [*sorted(sk["task"].unique()), "all"]:
        g = sk if task == "all" else sk[sk["task"] == task]
        x = np.log10(g["model_params"].to_numpy(float))
        if len(np.unique(x)) < 2:
            continue
        if task == "all":  # pool tasks: centre within task so task levels do not confound size
            x = x - g.groupby("task")["model_params"].transform(lambda p: np.log10(p.astype(float)).mean()).to_numpy()
        w = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
        coefs = {}
        for wi, r in zip(w, g.index):
            for cell, v in slope_rows[r].items():
                coefs[cell] = coefs.get(cell, 0.0) + wi * v
        inter_keys.append({"term": "interaction", "model": "all", "model_params": 0, "task": task})
        inter_rows.append(coefs)
    out, _ = estimate_frame(cb, pd.DataFrame(slope_keys + inter_keys), slope_rows + inter_rows)
    return out
