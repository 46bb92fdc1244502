"""Minimal multilinguality: EN+1 vs English-only (analysis 3); zero-shot vs direct inclusion (analysis 4); the
measured gain of a trained language set on given targets (shown beside the planner's prediction for that set)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from langmix.analysis.contrasts import (NO_REFERENCE, NO_REFERENCE_BY_TARGET, english_only_mixture, estimate_frame,
                                        pooled_items, reference_cells, why_none)
from langmix.analysis.core import AnalysisError, CellBoot, holm, summarise, train_set

log = logging.getLogger(__name__)

TARGETS = ("english", "added", "neither")


def _en_plus_one_rows(cb: CellBoot) -> tuple[list[dict], list[dict[int, float]], dict[str, list[str]],
                                              dict[str, list[str]]]:
    """(keys, contrast rows, per target what is left out for want of an English-only cell
    (`contrasts.reference_cells`: model/task pairs with no English-only run, for every target; the languages in
    neither mixture that English-only has no cell for, for the 'neither' target only: a missing English or added
    language is a gap), and per target the EN+1 mixtures ('en+sw (model/task)') with no figure for it: none of its
    languages has a scored cell in both the mixture and English-only)."""
    c = cb.cells
    keys, rows = [], []
    gaps: dict[str, list[str]] = {t: [] for t in TARGETS}
    plus = c[c["design"] == "en_plus_one"]
    added_of = {tl: sorted(train_set(tl) - {"en"}) for tl in plus["train_languages"].unique()}
    neither = [lang not in ("en", *added_of[tl]) for lang, tl in zip(plus["language"], plus["train_languages"])]
    runs = [f"{m}/{t}" for m, t in sorted(set(zip(plus["model"], plus["task"])))
            if english_only_mixture(cb, m, t) is None]
    languages = [x for x in reference_cells(cb, plus.index[neither])[1] if x not in runs]
    left_out = {t: runs + (languages if t == "neither" else []) for t in TARGETS}
    for (model, task, mixture), g in plus.groupby(["model", "task", "mixture"], sort=True):
        ref = english_only_mixture(cb, model, task)
        if ref is None:
            continue
        added = added_of[g["train_languages"].iloc[0]]
        if len(added) != 1:
            continue
        for target in TARGETS:
            langs = ["en"] if target == "english" else added if target == "added" else \
                [lang for lang in g["language"] if lang not in ("en", added[0])]
            pairs = [(cb.cell(model, task, mixture, lang), cb.cell(model, task, ref, lang)) for lang in langs]
            pairs = [(i, j) for i, j in pairs if i is not None and j is not None]
            if not pairs:
                gaps[target].append(f"{mixture} ({model}/{task})")
                continue
            w = 1.0 / len(pairs)
            coefs: dict[int, float] = {}
            for i, j in pairs:
                coefs[i] = coefs.get(i, 0.0) + w
                coefs[j] = coefs.get(j, 0.0) - w
            keys.append({"model": model, "task": task, "mixture": mixture, "added": added[0], "target": target,
                         "n_languages": len(pairs)})
            rows.append(coefs)
    return keys, rows, left_out, gaps


def en_plus_one(cb: CellBoot) -> pd.DataFrame:
    """Gain of each EN+1 mixture over English-only on English, on the added language and on the languages in
    neither; per model and task, then pooled over models ('all') and over models and tasks. Holm-adjusted p-values
    within each target over the per-model rows (many EN+1 mixtures are tested at once), and over the per-mixture
    rows pooled over models and tasks (the finding names the largest of them); `core.holm` gives the p-values of a
    large family enough bootstrap replicates that the adjustment can reach significance."""
    keys, rows, left_out, gaps = _en_plus_one_rows(cb)
    if not rows:
        raise AnalysisError("no EN+1 and English-only mixtures of the same model and task")
    if left_out["neither"]:  # every target's, and the languages of the 'neither' target
        log.warning("EN+1: left out of the means for want of an English-only run to compare with: %s",
                    ", ".join(left_out["neither"]))
    k = pd.DataFrame(keys)
    pooled_keys, pooled_rows = [], []
    for spec in (("task", "added", "target"), ("added", "target"), ("task", "target"), ("target",)):
        for key, g in k.groupby(list(spec), sort=True):
            key = key if isinstance(key, tuple) else (key,)
            coefs: dict[int, float] = {}
            for r in g.index:
                for cell, v in rows[r].items():
                    coefs[cell] = coefs.get(cell, 0.0) + v / len(g)
            rec = {"model": "all", "task": "all", "mixture": "all", "added": "all"} | dict(zip(spec, key))
            if "added" in spec:
                rec["mixture"] = f"en+{rec['added']}"
            pooled_keys.append(rec | {"n_languages": int(g["n_languages"].max())})
            pooled_rows.append(coefs)
    all_rows = rows + pooled_rows
    out, boot = estimate_frame(cb, pd.DataFrame(keys + pooled_keys), all_rows)
    per = out["model"] != "all"
    # the per-mixture rows pooled over models and tasks: the family the finding picks its largest gain from
    per_mixture = (out["model"] == "all") & (out["task"] == "all") & (out["mixture"] != "all")
    for target in TARGETS:
        for family in (per, per_mixture):
            holm(cb, out, all_rows, boot, family & (out["target"] == target))
    out.attrs[NO_REFERENCE] = left_out["neither"]  # all that is left out (report); per target, for the findings:
    out.attrs[NO_REFERENCE_BY_TARGET] = left_out
    out.attrs["gaps"] = gaps  # likewise: the mixtures with no figure for a target
    return out


def relative_gain(cb: CellBoot) -> pd.DataFrame:
    """Relative gain of EN+1 over English-only in the mean over the evaluated languages, per model and task, and
    its median across models and tasks (CI from the same replicates). Each EN+1 mixture is compared with
    English-only on the languages both were evaluated on, with the same weights on both sides (mixtures weigh
    alike), so mixtures evaluated on different languages do not compare different language sets. Cells with no
    English-only cell to compare with are left out and named in `attrs[NO_REFERENCE]`."""
    c = cb.cells
    recs, num_b, den_b, zero = [], [], [], []
    all_rows: list[dict[int, float]] = []  # the rows of the pairs the median is over (its n)
    all_match: list = []
    plus = c[c["design"] == "en_plus_one"]
    ref_of, no_reference = reference_cells(cb, plus.index)
    ref_of = dict(zip(plus.index.tolist(), ref_of.tolist()))
    for (model, task), g in plus.groupby(["model", "task"], sort=True):
        pairs_by_mixture = {}
        for mixture, m in g.groupby("mixture", sort=True):
            pairs = [(int(i), ref_of[i]) for i in m.index if ref_of[i] >= 0]
            if pairs:
                pairs_by_mixture[mixture] = pairs
        if not pairs_by_mixture:
            continue
        # per mixture, numerator and denominator over the items both sides share (per language), then averaged
        m_rows, m_match = [], []
        for pairs in pairs_by_mixture.values():
            w = 1.0 / (len(pairs_by_mixture) * len(pairs))
            num_m, den_m = {i: w for i, _ in pairs}, {}
            for _, j in pairs:
                den_m[j] = den_m.get(j, 0.0) + w
            both = set(num_m) | set(den_m)
            m_rows += [num_m, den_m]
            m_match += [both, both]
        point, rep, n = cb.contrast(m_rows, match=m_match)
        verdicts = cb.n_of(m_rows, m_match)  # each cell once: the English-only cells are in every mixture's rows
        num_p, den_p = point[0::2].sum(), point[1::2].sum()
        num_rep, den_rep = rep[0::2].sum(axis=0), rep[1::2].sum(axis=0)
        if den_p == 0:  # a relative gain over a score of 0 is undefined: name the pair instead of a NaN
            zero.append(f"{model}/{task}")
            continue
        num_b.append(num_rep)
        den_b.append(den_rep)
        recs.append({"model": model, "task": task, "en_only": float(den_p), "en_plus_one": float(num_p),
                     "n_mixtures": len(pairs_by_mixture), "n_items": int(n["n_items"].max()),
                     "n_seeds": int(n["n_seeds"].max()), "n_seeds_min": int(n["n_seeds_min"].min()),
                     "n_rows": int(verdicts["n_rows"]), "n_no_verdict": int(verdicts["n_no_verdict"])})
        all_rows += m_rows
        all_match += m_match
    if zero:
        log.info("relative gain left out for %d model-task pairs whose English-only score is 0: %s", len(zero),
                 ", ".join(zero))
    if not recs:
        why = (f"English-only scores 0 in every model-task pair ({', '.join(zero)}), so a relative gain is undefined"
               if zero else "no EN+1 and English-only mixtures of the same model and task")
        raise AnalysisError(why)
    num_b, den_b = np.array(num_b), np.array(den_b)
    point = np.array([r["en_plus_one"] / r["en_only"] - 1 for r in recs])
    with np.errstate(divide="ignore", invalid="ignore"):  # a replicate whose English-only mean is 0 -> NaN
        boot = np.where(den_b > 0, num_b / np.where(den_b > 0, den_b, 1.0) - 1, np.nan)
    out = pd.concat([pd.DataFrame(recs), summarise(point, boot)], axis=1)
    # replicates whose English-only mean resampled to 0: no ratio; the CI is over the others, and says how many
    out["undefined_replicates"] = np.isnan(boot).sum(axis=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all pairs undefined in a replicate: NaN, counted below
        med_boot = np.nanmedian(boot, axis=0)
    med = summarise(np.array([np.median(point)]), med_boot[None, :])
    pooled = cb.n_of(all_rows, all_match)
    row = {"model": "median", "task": "all", "en_only": np.nan, "en_plus_one": np.nan,
           "n_mixtures": int(out["n_mixtures"].max()), "n_items": pooled_items(out),
           "n_seeds": int(out["n_seeds"].max()), "n_seeds_min": int(out["n_seeds_min"].min()),
           "n_rows": int(pooled["n_rows"]), "n_no_verdict": int(pooled["n_no_verdict"]),
           "undefined_replicates": int(np.isnan(med_boot).sum())} \
        | med.iloc[0].to_dict()
    out = pd.concat([out, pd.DataFrame([row])], ignore_index=True)
    out.attrs[NO_REFERENCE] = no_reference  # said beside the median (findings, report)
    return out


def zero_shot_vs_inclusion(cb: CellBoot) -> pd.DataFrame:
    """For each language held out of a high-diversity mixture: its score there minus its score when included in
    the lowest-diversity mixture that trains on it (EN+1 where present). Positive: zero-shot from a diverse
    mixture beats direct inclusion in a narrow one. Per model and task, pooled per language; Holm over languages.
    A held-out language no EN+1, fixed or growing mixture trains on has nothing to compare with: it is left out and
    named in `attrs['left_out']`."""
    c = cb.cells
    held = c[(c["design"] == "held_out") & ~c["seen"] & (c["language"] != "en")]
    if held.empty:
        if not (c["language"] != "en").any():
            raise AnalysisError(why_none(cb, ["held_out"], "held-out design"))
        raise AnalysisError("no held-out design: no language was left out of a multilingual mixture")
    keys, rows, never = [], [], {}
    for i, r in held.iterrows():
        inc = c[(c["model"] == r["model"]) & (c["task"] == r["task"]) & (c["language"] == r["language"]) & c["seen"]
                & c["design"].isin(["en_plus_one", "fixed", "growing"])]
        if inc.empty:
            never.setdefault(r["language"], set()).add(r["mixture"])
            continue
        low = inc.sort_values(["n_train_languages", "design"], key=lambda s: s if s.name != "design" else
                              s.map({"en_plus_one": 0, "growing": 1, "fixed": 2})).iloc[0]
        keys.append({"model": r["model"], "task": r["task"], "language": r["language"], "resource": r["resource"],
                     "held_out_mixture": r["mixture"], "held_out_k": int(r["n_train_languages"]),
                     "included_mixture": low["mixture"], "included_k": int(low["n_train_languages"])})
        rows.append({int(i): 1.0, int(low.name): -1.0})
    left_out = [f"{lang} (held out of {', '.join(sorted(m))})" for lang, m in sorted(never.items())
                if lang not in {key["language"] for key in keys}]
    if not rows:
        raise AnalysisError("no held-out language is also trained on in an EN+1, fixed or growing mixture, so none "
                            "has a direct-inclusion score to compare with: " + ", ".join(left_out))
    if left_out:
        log.info("zero-shot: held-out languages trained on in no EN+1, fixed or growing mixture are left out: %s",
                 ", ".join(left_out))
    k = pd.DataFrame(keys)
    pk, pr = [], []
    for lang, g in k.groupby("language", sort=True):
        coefs: dict[int, float] = {}
        for r in g.index:
            for cell, v in rows[r].items():
                coefs[cell] = coefs.get(cell, 0.0) + v / len(g)
        pk.append({"model": "all", "task": "all", "language": lang, "resource": g["resource"].iloc[0],
                   "held_out_mixture": ",".join(sorted(set(g["held_out_mixture"]))),
                   "held_out_k": int(g["held_out_k"].max()),
                   "included_mixture": ",".join(sorted(set(g["included_mixture"]))),
                   "included_k": int(g["included_k"].min())})
        pr.append(coefs)
    out, boot = estimate_frame(cb, pd.DataFrame(keys + pk), rows + pr)
    pooled = out["model"] == "all"
    for family in (pooled, ~pooled):
        holm(cb, out, rows + pr, boot, family)
    out.attrs["left_out"] = sorted(lang for lang in never if lang not in set(k["language"]))  # said in findings
    return out


def trained_set_gain(cb: CellBoot, languages: list[str], targets: list[str]) -> dict | None:
    """The gain the study measured for a set it trained (a mixture with exactly these languages) on the targets it
    evaluated there, over English-only: the mean over targets of each target's mean over models, tasks and such
    mixtures, with its 95% CI and n; None where no mixture trains exactly this set or none of its cells has an
    English-only cell to compare with."""
    c = cb.cells
    tuned = ~c["design"].isin(["english_only", "base"])
    sel = c[tuned & (c["train_languages"].map(train_set) == frozenset(languages)) & c["language"].isin(targets)]
    ref, _ = reference_cells(cb, sel.index)
    sel = sel[ref >= 0].assign(ref=ref[ref >= 0])
    if sel.empty:
        return None
    coefs: dict[int, float] = {}
    per_target = sel.groupby("language")
    for _, g in per_target:
        w = 1.0 / (len(g) * per_target.ngroups)
        for i, j in zip(g.index.tolist(), g["ref"].tolist()):
            coefs[i] = coefs.get(i, 0.0) + w
            coefs[j] = coefs.get(j, 0.0) - w
    point, boot, n = cb.contrast([coefs])
    s = summarise(point, boot).iloc[0]
    return {"mixtures": sorted(set(sel["mixture"])), "targets": sorted(per_target.groups),
            "estimate": float(s["estimate"]), "ci_low": float(s["ci_low"]), "ci_high": float(s["ci_high"]),
            "degenerate": bool(s["degenerate"]), "n_items": int(n.at[0, "n_items"]),
            "n_seeds": int(n.at[0, "n_seeds"]), "n_seeds_min": int(n.at[0, "n_seeds_min"]),
            "n_rows": int(n.at[0, "n_rows"]), "n_no_verdict": int(n.at[0, "n_no_verdict"])}
