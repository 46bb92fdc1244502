"""The planner: which languages (and how many examples each) should go into my SFT data, given a study's results?

Model. From the item-level table, every (model, task, multilingual mixture, non-English language) cell gives a gain
over the same model's English-only mixture. A linear model explains it by what a candidate mixture controls:

    gain ~ seen + log2(k) + seen_share_family + seen_share_script + distance + low + distance:unseen

seen = the language is trained on; k = training languages; *_share_* = whether another included non-English
language shares its family / script (transfer from a relative); distance = syntactic URIEL+ distance from English;
low = low-resource. Its uncertainty comes from refitting it on each paired-bootstrap replicate of the cell gains
(items and seeds resampled), so predicted gains carry item/seed sampling error; model misspecification is what
`validate_loo` measures. The search enumerates every set of candidates with English plus at most max_languages - 1
others and maximises the mean predicted gain over the targets. Examples are split evenly across the chosen
languages: a study with `fixed_total` budgets does not identify a per-language count effect, so nothing better is
supported by the data (the note says so).
"""

from __future__ import annotations

import copy
import itertools
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from langmix.analysis.findings import count
from langmix.analysis.core import (ZERO_TOLERANCE, AnalysisError, CellBoot, cell_bootstrap,
                                   english_only_mixture, train_set)
from langmix.analysis.typology import distances
from langmix.languages import get, known_codes

log = logging.getLogger(__name__)

TERMS = ("intercept", "seen", "log2_k", "family_included", "script_included", "distance", "low", "distance_unseen")


@dataclass
class Recommendation:
    targets: list[str]
    languages: list[str]  # English first
    examples_per_language: dict[str, int]
    predicted_gain: float  # mean over targets, over English-only, accuracy points as a fraction
    ci_low: float
    ci_high: float
    per_target: dict[str, float]
    runners_up: list[dict] = field(default_factory=list)
    coefficients: pd.DataFrame | None = None
    note: str = ""


def _features(lang: str, mixture: tuple[str, ...] | frozenset[str], dist: dict[str, float]) -> np.ndarray:
    me = get(lang)
    others = [get(c) for c in mixture if c not in ("en", lang)]
    seen = float(lang in mixture)
    d = dist.get(lang, float(np.mean(list(dist.values()))))
    return np.array([1.0, seen, np.log2(max(len(mixture), 1)), float(any(o.family == me.family for o in others)),
                     float(any(o.script == me.script for o in others)), d, float(me.resource == "low"),
                     d * (1.0 - seen)])


def _design(cb: CellBoot) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Rows (cells with gains), X, point gains, replicate gains."""
    c = cb.cells
    dist = distances("syntactic")
    sel = c[(c["language"] != "en") & ~c["design"].isin(["english_only", "base"])]
    rows, xs, pi, pj = [], [], [], []
    feats: dict[tuple[str, str], np.ndarray] = {}
    for i, model, task, mixture, lang, tl in zip(sel.index, sel["model"], sel["task"], sel["mixture"],
                                                  sel["language"], sel["train_languages"]):
        ref = english_only_mixture(cb, model, task)
        j = cb.cell(model, task, ref, lang) if ref else None
        if j is None:
            continue
        if (lang, tl) not in feats:
            feats[(lang, tl)] = _features(lang, train_set(tl), dist)
        xs.append(feats[(lang, tl)])
        pi.append(int(i))
        pj.append(j)
        rows.append((model, task, mixture, lang))
    if not rows:
        raise AnalysisError("no multilingual mixture with an English-only reference to learn gains from")
    pi, pj = np.array(pi), np.array(pj)
    return pd.DataFrame(rows, columns=["model", "task", "mixture", "language"]), np.array(xs), cb.point[pi] - cb.point[pj], cb.boot[pi] - cb.boot[pj]


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares (minimum norm where a feature does not vary); y may be (n,) or (n, B)."""
    return np.linalg.lstsq(x, y, rcond=None)[0]


def recommend(items: pd.DataFrame, targets: list[str], budget: int, max_languages: int,
              candidates: list[str] | None = None, n_runners_up: int = 4, cells: CellBoot | None = None
              ) -> Recommendation:
    """The language set (English + up to max_languages - 1 candidates) and per-language example counts that maximise
    the predicted mean gain on `targets` under `budget` examples, with a 95% CI and the runner-up sets."""
    if budget < 1:
        raise AnalysisError(f"the budget must be at least one example, got {budget}")
    if max_languages < 2:
        raise AnalysisError(f"max_languages must be at least 2 (English and one more), got {max_languages}")
    max_languages = min(max_languages, budget)  # every language in the mixture gets at least one example
    cb = cells or cell_bootstrap(items, n_boot=400)
    frame, x, y, yb = _design(cb)
    beta, beta_b = _fit(x, y), _fit(x, yb)
    cands = [c for c in (candidates or known_codes()) if c != "en"]
    dist = distances("syntactic")
    # English-only gains nothing over itself, by definition: it is not a point the model extrapolates to.
    scored: list[tuple[float, tuple[str, ...], np.ndarray | None]] = [(0.0, ("en",), None)]
    for k in range(1, max(0, max_languages - 1) + 1):
        for combo in itertools.combinations(cands, k):
            mix = ("en", *combo)
            xt = np.array([_features(t, mix, dist) for t in targets])
            scored.append((float((xt @ beta).mean()), mix, xt))
    scored.sort(key=lambda s: -s[0])  # stable: English-only stays first among equal gains

    def summary(entry) -> dict:
        gain, mix, xt = entry
        draws = np.zeros(beta_b.shape[1]) if xt is None else (xt @ beta_b).mean(axis=0)
        lo, hi = np.quantile(draws, [0.025, 0.975])
        return {"languages": list(mix), "predicted_gain": gain, "ci_low": float(lo), "ci_high": float(hi),
                "degenerate": bool(np.ptp(draws) <= ZERO_TOLERANCE)}

    best = summary(scored[0])
    per, extra = divmod(budget, len(best["languages"]))  # the whole budget: the first `extra` get one more
    split = {c: per + (i < extra) for i, c in enumerate(best["languages"])}
    runners_up = [summary(s) for s in scored[1:1 + n_runners_up]]
    ties = [r["languages"] for r in runners_up if abs(r["predicted_gain"] - best["predicted_gain"]) < 1e-9]
    trained = set().union(*(train_set(t) for t in cb.cells["train_languages"].unique()))
    evaluated = set(cb.cells["language"].unique())
    coefs = pd.DataFrame({"term": TERMS, "coef": beta, "ci_low": np.quantile(beta_b, 0.025, axis=1),
                          "ci_high": np.quantile(beta_b, 0.975, axis=1)})
    note = (f"Fitted on {count(len(frame), 'cell gain')} ({count(frame['model'].nunique(), 'model')}, "
            f"{count(frame['task'].nunique(), 'task')}, {count(frame['mixture'].nunique(), 'mixture')}, "
            f"{count(frame['language'].nunique(), 'language')}). Intervals cover "
            f"item/seed sampling only, not model error (see validate_loo). Examples are split evenly: the study does "
            f"not vary per-language counts, so it cannot support an uneven split.")
    if best["languages"] == ["en"]:
        note += (" No set of other languages is predicted to beat English-only for these targets, so the "
                 "recommendation is English-only (a gain of 0 by definition).")
    elif best["degenerate"]:
        note += (" The predicted gain has no interval: every bootstrap replicate gave the same value (too few items, "
                 "or every answer alike), so the data cannot show its uncertainty; treat it as unsupported.")
    elif not best["ci_low"] > 0:
        note += (" The interval of the predicted gain includes zero: the study does not show that this set beats "
                 "English-only for these targets.")
    if ties:
        note += (f" {count(len(ties), 'runner-up set')} tie with the recommendation (the same predicted gain: the "
                 f"fitted model cannot tell them apart), so the choice among them is arbitrary: "
                 f"{'; '.join(', '.join(t) for t in ties)}.")
    for lang in sorted(set(targets) | set(best["languages"])):
        if lang not in evaluated:
            note += f" {lang} was not evaluated in the study: its prediction rests on its distance from English alone."
        elif lang not in trained and lang != "en":
            note += (f" No mixture of the study trains on {lang}: the gain from including it is extrapolated from "
                     f"the other languages.")
    return Recommendation(targets=list(targets), languages=best["languages"],
                          examples_per_language=split,
                          predicted_gain=best["predicted_gain"], ci_low=best["ci_low"], ci_high=best["ci_high"],
                          per_target=(dict.fromkeys(targets, 0.0) if scored[0][2] is None else
                                      {t: float(v) for t, v in zip(targets, scored[0][2] @ beta)}),
                          runners_up=runners_up, coefficients=coefs,
                          note=note)


def to_study_config(rec: Recommendation, base_config: dict) -> dict:
    """A study config that tests the recommendation: English-only vs the recommended set, evaluated on every
    language of the base config plus the targets, with the recommended budget (fixed total)."""
    cfg = copy.deepcopy(base_config)
    runners = [r["languages"] for r in rec.runners_up[:2] if len(r["languages"]) > 1]
    langs = list(dict.fromkeys([*cfg.get("languages", []), *rec.languages, *rec.targets,
                                *[c for r in runners for c in r]]))
    cfg["languages"] = ["en", *[c for c in langs if c != "en"]]
    mixtures = [{"design": "english_only"}]
    if len(rec.languages) > 1:
        mixtures.append({"design": "fixed", "name": "planned", "languages": list(rec.languages)})
    for i, r in enumerate(runners, 1):
        mixtures.append({"design": "fixed", "name": f"runner-up-{i}", "languages": list(r)})
    cfg["mixtures"] = mixtures
    budget = dict(cfg.get("budget", {}))
    budget.update({"mode": "fixed_total", "total": int(sum(rec.examples_per_language.values()))})
    cfg["budget"] = budget
    cfg["name"] = f"{cfg.get('name', 'study')}-plan-{'-'.join(rec.targets)}"
    return cfg


def validate_loo(items: pd.DataFrame, n_boot: int = 1000, seed: int = 0, cells: CellBoot | None = None
                 ) -> pd.DataFrame:
    """Leave one mixture out: fit on the other mixtures' cells, predict the held-out mixture's mean gain over its
    non-English languages (mean over models and tasks), and compare with the observed gain. Returns one row per
    mixture; `attrs` holds Spearman rho between predicted and observed, with a CI from resampling mixtures."""
    cb = cells or cell_bootstrap(items, n_boot=200)
    frame, x, y, _ = _design(cb)
    rows = []
    for mixture in sorted(frame["mixture"].unique()):
        out = (frame["mixture"] == mixture).to_numpy()
        beta = _fit(x[~out], y[~out])
        rows.append({"mixture": mixture, "predicted": float((x[out] @ beta).mean()), "observed": float(y[out].mean()),
                     "n_cells": int(out.sum())})
    res = pd.DataFrame(rows)
    if len(res) < 4:
        raise AnalysisError(f"only {count(len(res), 'multilingual mixture')}: at least 4 are needed to rank them")
    rho = float(spearmanr(res["predicted"], res["observed"]).statistic)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(res), len(res))
        if len(np.unique(idx)) > 2:
            draws.append(spearmanr(res["predicted"].to_numpy()[idx], res["observed"].to_numpy()[idx]).statistic)
    lo, hi = np.nanquantile(draws, [0.025, 0.975])
    res.attrs.update({"rho": rho, "rho_ci_low": float(lo), "rho_ci_high": float(hi), "n_mixtures": len(res)})
    return res
