"""Coverage curves (analysis 1), resource groups and the plateau (analysis 2), capacity (analysis 6)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from langmix.analysis.contrasts import CANNOT, NO_REFERENCE, estimate_frame, group_contrasts, why_none
from langmix.analysis.core import AnalysisError, CellBoot, holm, summarise
from langmix.analysis.table import listed

log = logging.getLogger(__name__)

_TUNED = ["english_only", "en_plus_one", "fixed", "growing", "held_out"]
# the coverage levels above one training language a plateau needs (`plateaus`)
PLATEAU_LEVELS = 3


def coverage_curves(cb: CellBoot, pooled: bool = False) -> pd.DataFrame:
    """Headline mean per (model, task, language, n_train_languages, seen) over the mixtures at that coverage.

    `pooled=True`: per model, task and coverage level, the mean over non-English languages (`_pooled_curves`).
    """
    c = cb.cells
    sel = c["design"].isin(_TUNED)
    if pooled:
        return _pooled_curves(cb, sel & (c["language"] != "en"))
    by = ["model", "model_params", "task", "language", "resource", "n_train_languages", "seen"]
    keys, rows = group_contrasts(cb, sel, by)
    out, _ = estimate_frame(cb, keys, rows)
    # n_cells: mixtures averaged; a p-value against 0 means nothing for an accuracy
    return out.drop(columns="p_value").rename(columns={"estimate": "mean"})


def _pooled_curves(cb: CellBoot, sel: pd.Series) -> pd.DataFrame:
    """Per model, task and coverage level, the mean over non-English languages: `part` 'all' (every language), 'seen'
    (trained on) and 'unseen' (zero-shot), with `n_languages` and `languages`.

    The levels are compared over matched languages, so that a curve shows the effect of coverage and not of which
    languages were evaluated where: only languages with a cell at every level of the model and task are in it (the
    others are named in `attrs['left_out']`), and each level averages its mixtures per language first, then the
    languages with equal weight (a language evaluated in more mixtures of a level does not weigh more). 'all' is then
    the same languages at every level. 'seen' and 'unseen' split them by whether the mixture trains on the language,
    and that split changes with the level by design (a language moves from unseen to seen as coverage grows), so
    their levels average different languages: read them with `n_languages` (the gain over English-only of each
    language is in `resource_gains`)."""
    c = cb.cells[np.asarray(sel, bool)]
    keys, rows, left_out = [], [], []
    for (model, params, task), g in c.groupby(["model", "model_params", "task"], sort=True):
        by_level = g.groupby("n_train_languages")["language"].agg(set)
        matched = set.intersection(*by_level.tolist())
        for lang in sorted(set(g["language"]) - matched):
            gaps = ", ".join(str(k) for k, langs in by_level.items() if lang not in langs)
            left_out.append(f"{model}/{task}/{lang} (no cell at {gaps} training languages)")
        for level, gk in g[g["language"].isin(matched)].groupby("n_train_languages", sort=True):
            for part, gp in (("all", gk), ("seen", gk[gk["seen"]]), ("unseen", gk[~gk["seen"]])):
                if gp.empty:
                    continue
                per_lang = gp["language"].value_counts()  # a language's cells at this level share its weight
                langs = sorted(per_lang.index)
                weights = 1.0 / (len(langs) * gp["language"].map(per_lang).to_numpy(float))
                coefs = dict(zip(gp.index.astype(int).tolist(), weights.tolist()))
                keys.append({"model": model, "model_params": int(params), "task": task,
                             "n_train_languages": int(level), "part": part, "n_languages": len(langs),
                             "languages": ",".join(langs), "n_cells": len(gp)})
                rows.append(coefs)
    if not rows and left_out:
        raise AnalysisError(f"no non-English language was evaluated at every coverage level of a model and task, so "
                            f"the levels cannot be compared over the same languages: {listed(left_out)}")
    if left_out:
        log.warning("coverage curves: left out of the pooled curves, not evaluated at every coverage level (the "
                    "levels would average different languages): %s", listed(left_out))
    out, _ = estimate_frame(cb, pd.DataFrame(keys), rows)
    out = out.drop(columns="p_value").rename(columns={"estimate": "mean"})
    out.attrs["left_out"] = left_out
    return out


def resource_gains(cb: CellBoot) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(gain over English-only per resource group and coverage level, plateau per group).

    Gains average non-English languages of the group over the multilingual mixtures with k training languages,
    per model and task, pooled over models ("all"), and over models and tasks. See `plateaus` for the plateau.
    Cells with no English-only cell to gain over are left out of every row and named in both frames'
    `attrs[NO_REFERENCE]`.
    """
    c = cb.cells
    sel = c["design"].isin(_TUNED[1:]) & (c["language"] != "en")
    if not sel.any():
        raise AnalysisError(why_none(cb, _TUNED[1:], "multilingual mixtures"))
    by = ["model", "task", "resource", "n_train_languages"]
    parts, boots, all_rows, no_reference = [], [], [], []
    for pooled in (None, {"model": "all"}, {"model": "all", "task": "all"}):
        keys, rows = group_contrasts(cb, sel, by, gain=True, pooled=pooled)
        no_reference = keys.attrs[NO_REFERENCE]  # the same cells each time
        frame, boot = estimate_frame(cb, keys, rows)
        parts.append(frame)
        boots.append(boot)
        all_rows += rows
    gains = pd.concat(parts, ignore_index=True)
    if gains.empty:
        raise AnalysisError("no English-only mixture to measure gains against")
    gains.attrs[NO_REFERENCE] = no_reference
    plateau = plateaus(cb, gains, all_rows, np.vstack(boots))
    plateau.attrs[NO_REFERENCE] = no_reference
    return gains, plateau


def plateaus(cb: CellBoot, gains: pd.DataFrame, rows: list[dict[int, float]], boot: np.ndarray) -> pd.DataFrame:
    """Per (model, task, resource group) with 3+ coverage levels above one training language (`PLATEAU_LEVELS`):
    where the gain stops rising, if it does; where no group has that many, an empty frame whose `attrs[CANNOT]`
    says how many levels it needs and how many the study has.

    The plateau is the first level k below the largest tested where (paired bootstrap, 95% CIs) the gain is above
    zero, the mean gain of the levels after k is not clearly above it (`later_rise`), and the gain per added
    language after k is clearly smaller than before it (`flattening`: gain(k) / (k - 1) minus later_rise / (mean
    later level - k); English-only, one language, is the gain's zero). No plateau is stated (`plateau` missing)
    when no level qualifies: the largest level tested never does (nothing after it shows the gain flatten), and
    where intervals cannot tell a flat stretch from a steady rise none does; nor when the gain still rises clearly
    at the last step (largest level minus the one before). The best level is picked after seeing the levels, so
    its p-value is Holm-adjusted over them (`best_p_holm`, and `p_holm` in the gains of the group)."""
    out = []
    most: list[int] = []  # the coverage levels of the group with the most (said where none has enough)
    for (model, task, res), g in gains.groupby(["model", "task", "resource"], sort=True):
        # a one-language mixture (a non-English language alone) trains as many languages as English-only: it adds
        # none, so it has no gain per added language and is no level of the curve
        g = g[g["n_train_languages"] > 1].sort_values("n_train_languages")
        levels_here = sorted(int(k) for k in g["n_train_languages"].unique())
        most = max(most, levels_here, key=len)
        if len(levels_here) < PLATEAU_LEVELS:
            continue
        holm(cb, gains, rows, boot, gains.index.isin(g.index))
        rep, est = boot[g.index.to_numpy()], g["estimate"].to_numpy()
        levels = g["n_train_languages"].to_numpy(dtype=float)
        points, reps = [], []
        for i in range(len(g) - 1):
            span = levels[i + 1:].mean() - levels[i]
            rise_p, rise_b = est[i + 1:].mean() - est[i], rep[i + 1:].mean(axis=0) - rep[i]
            points += [rise_p, est[i] / (levels[i] - 1) - rise_p / span]
            reps += [rise_b, rep[i] / (levels[i] - 1) - rise_b / span]
        points.append(est[-1] - est[-2])
        reps.append(rep[-1] - rep[-2])
        d = summarise(np.array(points), np.array(reps))
        last = d.iloc[-1]
        rising_at_end = bool(not last["degenerate"] and last["ci_low"] > 0)
        best = g.loc[g["estimate"].idxmax()]
        rec = {"model": model, "task": task, "resource": res, "levels": len(g), "min_level": int(levels[0]),
               "max_level": int(levels[-1]), "best_level": int(best["n_train_languages"]),
               "best_gain": best["estimate"], "best_ci_low": best["ci_low"], "best_ci_high": best["ci_high"],
               "best_p_holm": float(gains.loc[best.name, "p_holm"]), "last_step_from": int(levels[-2]),
               "last_step": last["estimate"], "last_step_ci_low": last["ci_low"],
               "last_step_ci_high": last["ci_high"], "rising_at_last_step": rising_at_end, "plateau": pd.NA}
        for col in ("gain_at_plateau", "plateau_ci_low", "plateau_ci_high", "later_rise", "later_rise_ci_low",
                    "later_rise_ci_high", "flattening", "flattening_ci_low", "flattening_ci_high"):
            rec[col] = np.nan
        for i in range(len(g) - 1 if not rising_at_end else 0):
            level, rise, flat = g.iloc[i], d.iloc[2 * i], d.iloc[2 * i + 1]
            if level["degenerate"] or rise["degenerate"] or flat["degenerate"]:
                continue
            if level["ci_low"] > 0 and not rise["ci_low"] > 0 and flat["ci_low"] > 0:
                rec |= {"plateau": int(levels[i]), "gain_at_plateau": level["estimate"],
                        "plateau_ci_low": level["ci_low"], "plateau_ci_high": level["ci_high"],
                        "later_rise": rise["estimate"], "later_rise_ci_low": rise["ci_low"],
                        "later_rise_ci_high": rise["ci_high"], "flattening": flat["estimate"],
                        "flattening_ci_low": flat["ci_low"], "flattening_ci_high": flat["ci_high"]}
                break
        n = cb.n_of([rows[i] for i in g.index])  # the verdicts of the group's cells, each cell once
        out.append(rec | {"n_items": int(g["n_items"].max()), "n_seeds": int(g["n_seeds"].max()),
                          "n_rows": int(n["n_rows"]), "n_no_verdict": int(n["n_no_verdict"])})
    frame = pd.DataFrame(out)
    if len(frame):
        frame["plateau"] = frame["plateau"].astype("Int64")
    else:
        frame.attrs[CANNOT] = too_few_levels(most)
    return frame


def too_few_levels(levels: list[int]) -> str:
    """Why there is no plateau analysis: the levels above one training language that the best-covered group has."""
    have = (f"the most any model, task and resource group has is {len(levels)} "
            f"({' and '.join(str(k) for k in levels)} training languages)" if levels else
            "no model, task and resource group has any")
    return (f"locating a plateau needs at least {PLATEAU_LEVELS} coverage levels above one "
            f"training language, and {have}")


def capacity(cb: CellBoot) -> pd.DataFrame:
    """Slope of the mean non-English score per added training language, per model and task, and the interaction:
    the change of that slope per decade of parameters (least squares over models; all linear in cell means, so the
    paired bootstrap gives its CI). Rows with term 'slope' (per model) and 'interaction' (per task and pooled)."""
    c = cb.cells
    sel = c["design"].isin(_TUNED) & (c["language"] != "en")
    keys, rows = group_contrasts(cb, sel, ["model", "model_params", "task", "n_train_languages"])
    if keys.empty:
        raise AnalysisError(why_none(cb, _TUNED, "fine-tuned mixtures"))
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
