"""Typology: gain over English-only vs URIEL distance from English, and a regression with CIs.

Distances are URIEL+ (urielplus 1.3.2; Khan et al., 2025, "URIEL+: Enhancing Linguistic Inclusion and Usability in a
Typological and Multilingual Knowledge Base", COLING 2025, https://aclanthology.org/2025.coling-main.463/; built on
Littell et al., 2017, "URIEL and lang2vec", EACL 2017) angular distances between English (eng) and each registry
language's URIEL code, with urielplus's default configuration. urielplus ships its data in its wheel (no download at
run time); the table below was computed with it once so the analysis needs no urielplus at run time, and
`compute_distances()` recomputes it when urielplus is installed (a test checks the two agree). Missing values (no
shared features, e.g. phonological for Arabic) are None.

The regression (statsmodels MixedLM, one per distance kind) is fitted on cell-level zero-shot gains (one per model,
task, multilingual mixture and non-English language the mixture does not train on; transfer is what distance is
about): gain ~ distance + resource + model + task + coverage, with language as a random
intercept (language is a factor, but distance and resource are per-language constants, so a fixed language effect
would absorb them; its random intercept keeps the distance CI honest about having few languages).

Coverage is controlled because the languages left unseen differ by design with the number of training languages k
(a wide mixture leaves few, and which ones depends on the growing order), so without it distance absorbs the
coverage gain: on the simulator's noise-free planted gains (slope -3.00 points per 0.1, coverage gain 0.1) the fit
without a coverage term gives -3.19 (coverage linear in k) and -3.33 (plateau at 4); with log2(k), as the planner
uses, -2.97 and -3.03; with mixture fixed effects exactly -3.00 for both (and with a size-dependent coverage gain).
So the control is a fixed effect per mixture where the design identifies the slope within mixtures (some mixture
leaves languages at different distances unseen, e.g. EN+1): it compares languages only within a mixture, whatever
the shape of the coverage curve. Where it does not (every mixture leaves one language, or one distance, unseen),
log2(k) is the control (a shape assumption: the method column says which), and none where every mixture trains the
same number of languages (coverage then cannot differ between the cells).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from langmix.analysis.contrasts import NO_REFERENCE, pooled_items, reference_cells, why_none
from langmix.analysis.core import AnalysisError, CellBoot, summarise
from langmix.languages import get

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("genetic", "syntactic", "phonological", "geographic")
URIELPLUS_VERSION = "1.3.2"
CITATION = ("Khan et al. (2025), URIEL+, COLING 2025, https://aclanthology.org/2025.coling-main.463/ "
            "(urielplus 1.3.2, angular distances, default configuration); Littell et al. (2017), URIEL and lang2vec")

# URIEL+ distance from English, computed with urielplus 1.3.2 (see the module docstring).
DISTANCES: dict[str, dict[str, float | None]] = {
    "es": {"genetic": 0.9386, "syntactic": 0.3936, "phonological": 0.2804, "geographic": 0.0575},
    "fr": {"genetic": 0.9386, "syntactic": 0.4204, "phonological": 0.4576, "geographic": 0.0246},
    "de": {"genetic": 0.6336, "syntactic": 0.3582, "phonological": 0.3695, "geographic": 0.0437},
    "ru": {"genetic": 0.8934, "syntactic": 0.4525, "phonological": 0.2804, "geographic": 0.1849},
    "zh": {"genetic": 1.0, "syntactic": 0.5275, "phonological": 0.39, "geographic": 0.3047},
    "ja": {"genetic": 1.0, "syntactic": 0.6287, "phonological": 0.5348, "geographic": 0.3453},
    "th": {"genetic": 1.0, "syntactic": 0.5325, "phonological": 0.39, "geographic": 0.3501},
    "sw": {"genetic": 1.0, "syntactic": 0.693, "phonological": 0.2736, "geographic": 0.294},
    "bn": {"genetic": 0.9196, "syntactic": 0.5936, "phonological": 0.3613, "geographic": 0.3019},
    "te": {"genetic": 1.0, "syntactic": 0.6726, "phonological": 0.2952, "geographic": 0.2989},
    "ar": {"genetic": 1.0, "syntactic": 0.5681, "phonological": None, "geographic": 0.1832},
    "hi": {"genetic": 0.9196, "syntactic": 0.5508, "phonological": 0.3433, "geographic": 0.2707},
    "ko": {"genetic": 1.0, "syntactic": 0.587, "phonological": 0.4638, "geographic": 0.3292},
    "id": {"genetic": 1.0, "syntactic": 0.4995, "phonological": 0.2736, "geographic": 0.4185},
    "yo": {"genetic": 1.0, "syntactic": 0.5903, "phonological": 0.5348, "geographic": 0.2026},
}


def distances(kind: str = "syntactic") -> dict[str, float]:
    """Distance from English of each registry language (en = 0) for one kind; languages without a value omitted."""
    if kind not in KINDS:
        raise AnalysisError(f"unknown distance kind {kind!r} (known: {', '.join(KINDS)})")
    out = {"en": 0.0}
    out.update({code: d[kind] for code, d in DISTANCES.items() if d.get(kind) is not None})
    return out


def compute_distances(codes: list[str], kinds: tuple[str, ...] = KINDS) -> dict[str, dict[str, float | None]]:
    """Recompute URIEL+ distances from English with urielplus (installed; its data ships in the wheel)."""
    try:
        from urielplus import urielplus
    except ImportError as err:  # pragma: no cover - urielplus is in requirements.txt
        raise AnalysisError("urielplus is not installed; use the stored `DISTANCES`") from err
    root = logging.getLogger()
    level = root.level
    u = urielplus.URIELPlus()
    root.setLevel(level)  # urielplus configures the root logger at INFO on import
    out: dict[str, dict[str, float | None]] = {}
    for code in codes:
        out[code] = {}
        for kind in kinds:
            try:
                out[code][kind] = round(float(u.new_distance(kind, ["eng", get(code).uriel])), 4)
            except ValueError:
                out[code][kind] = None
    return out


def language_gains(cb: CellBoot) -> tuple[pd.DataFrame, list[dict[int, float]], np.ndarray]:
    """Per (model, task, mixture, non-English language): gain over the same model's English-only, with CI. Cells
    with no English-only cell to compare with are left out and named in `attrs[NO_REFERENCE]`."""
    c = cb.cells
    multilingual = c[(c["language"] != "en") & ~c["design"].isin(["english_only", "base"])]
    if multilingual.empty:
        raise AnalysisError(why_none(cb, set(c["design"]) - {"english_only", "base"}, "multilingual mixtures"))
    multilingual = multilingual.sort_values(["model", "task"], kind="stable")
    ref, no_reference = reference_cells(cb, multilingual.index)
    has = ref >= 0
    if not has.any():
        raise AnalysisError("no English-only mixture to measure gains against")
    rows = [{int(i): 1.0, int(j): -1.0} for i, j in zip(multilingual.index[has], ref[has])]
    meta = multilingual.loc[has, ["model", "model_params", "task", "mixture", "design", "n_train_languages",
                                  "language", "resource", "seen"]].reset_index(drop=True)
    point, boot, n = cb.contrast(rows)
    out = pd.concat([meta, summarise(point, boot), n], axis=1)
    out.attrs[NO_REFERENCE] = no_reference
    return out, rows, boot


def typology(cb: CellBoot, kinds: tuple[str, ...] = KINDS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-language mean gain with distances, regression coefficients): tidy frames.

    Per-language gains average the language's gains over multilingual mixtures and models (bootstrap CI);
    the regression rows give, per distance kind, the coefficient of each term with its 95% CI.
    """
    gains, rows, boot = language_gains(cb)
    per_lang = []
    for (lang, seen), g in gains.groupby(["language", "seen"]):
        idx = g.index.to_numpy()
        est = gains.loc[idx, "estimate"].mean()
        s = summarise(np.array([est]), boot[idx].mean(axis=0)[None, :]).iloc[0]
        n = cb.n_of([rows[i] for i in idx])  # the verdicts of its cells, each once
        per_lang.append({"language": lang, "seen": bool(seen), "resource": get(lang).resource,
                         "estimate": s["estimate"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                         "n_cells": len(idx), "n_items": pooled_items(g), "n_seeds": int(g["n_seeds"].max()),
                         "n_rows": int(n["n_rows"]), "n_no_verdict": int(n["n_no_verdict"]),
                         **{f"d_{k}": distances(k).get(lang, np.nan) for k in kinds}})
    per_lang = pd.DataFrame(per_lang)
    coefs = []
    for kind in kinds:
        coefs += _regress(gains, kind)
    coefs = pd.DataFrame(coefs)
    # what each frame leaves out for want of an English-only cell: the regression is on the unseen cells only
    c = cb.cells
    unseen = c[(c["language"] != "en") & ~c["design"].isin(["english_only", "base"]) & ~c["seen"]]
    per_lang.attrs[NO_REFERENCE] = gains.attrs[NO_REFERENCE]
    coefs.attrs[NO_REFERENCE] = reference_cells(cb, unseen.index)[1]
    return per_lang, coefs


def _regress(gains: pd.DataFrame, kind: str) -> list[dict]:
    import statsmodels.formula.api as smf

    z = gains[~gains["seen"].astype(bool)]
    d = z.assign(distance=z["language"].map(distances(kind)), gain=z["estimate"],
                 low=(z["resource"] == "low").astype(int),
                 log2_k=np.log2(z["n_train_languages"].astype(float))).dropna(subset=["distance"])
    n_lang = d["language"].nunique()
    if n_lang < 4:
        return [{"kind": kind, "term": "distance", "note": f"only {n_lang} languages with a {kind} distance"}]
    terms, control = _terms(d)
    if "distance" not in terms:
        return [{"kind": kind, "term": "distance", "note": f"the {kind} distance is not separable from the "
                 f"coverage control ({control})"}]
    formula = "gain ~ " + " + ".join(terms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = smf.mixedlm(formula, d, groups=d["language"]).fit(reml=True)
            method = f"MixedLM (language random intercept; {control})"
        except (np.linalg.LinAlgError, ValueError) as err:
            log.warning("MixedLM failed for %s (%s); OLS with language-clustered errors", kind, err)
            fit = smf.ols(formula, d).fit(cov_type="cluster", cov_kwds={"groups": d["language"].astype("category")
                                                                         .cat.codes})
            method = f"OLS (language-clustered SE; {control})"
    ci = fit.conf_int()
    out = []
    for term in ["distance", "low"]:
        if term in fit.params.index:
            out.append({"kind": kind, "term": term, "coef": float(fit.params[term]),
                        "ci_low": float(ci.loc[term, 0]), "ci_high": float(ci.loc[term, 1]),
                        "p_value": float(fit.pvalues[term]), "n_cells": len(d), "n_languages": n_lang,
                        "method": method, "formula": formula})
    return out


def _terms(d: pd.DataFrame) -> tuple[list[str], str]:
    """The regression's terms and how it controls for coverage (see the module docstring): mixture fixed effects
    where distance is still identified with them, else log2(k) where k varies, else none. A term is kept only if the
    terms before it do not determine it (a rank check on the design), so no slope is an artefact of collinearity."""
    base = [f"C({f})" for f in ("model", "task") if d[f].nunique() > 1]
    if d["mixture"].nunique() > 1 and _adds_rank(d, "distance", [*base, "C(mixture)"]):
        rest, what = [*base, "C(mixture)"], "coverage: mixture fixed effects"
    elif d["n_train_languages"].nunique() > 1:
        rest, what = [*base, "log2_k"], ("coverage: log2(training languages), as no mixture leaves languages at "
                                         "different distances unseen")
    else:
        rest, what = base, "no coverage term: every mixture trains the same number of languages"
    terms = []
    for t in ("distance", "low"):
        if _adds_rank(d, t, [*terms, *rest]):
            terms.append(t)
    return [*terms, *rest], what


def _adds_rank(d: pd.DataFrame, term: str, rest: list[str]) -> bool:
    """Whether `term` is not determined by the intercept and `rest` in d (the design's rank grows with it)."""
    import patsy

    def rank(ts: list[str]) -> int:
        return int(np.linalg.matrix_rank(np.asarray(patsy.dmatrix(" + ".join(["1", *ts]), d))))

    return rank([*rest, term]) > rank(rest)
