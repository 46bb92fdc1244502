"""The planner: which languages (and how many examples each) should go into my SFT data, given a study's results?

Model. From the item-level table, every (model, task, multilingual mixture, non-English language) cell gives a gain
over the same model's English-only mixture. A linear model explains it by what a candidate mixture controls:

    gain ~ seen + log2(k) + seen_share_family + seen_share_script + distance + low + distance:unseen

seen = the language is trained on; k = training languages; *_share_* = whether another included non-English
language shares its family / script (transfer from a relative); distance = syntactic URIEL+ distance from English;
low = low-resource. Its uncertainty comes from refitting it on each paired-bootstrap replicate of the cell gains
(items and seeds resampled), so predicted gains carry item/seed sampling error (item only, with one seed); model
misspecification is what `validate_loo` measures. Only predictions the fitted cells determine are made (see
`recommend`: English as a target, unseparable terms, extrapolated targets). Where the study trained the
recommended set itself, its measured gain is shown beside the prediction (the direct evidence for that set), and so
is a runner-up's. The search enumerates every set of candidates with English plus at most max_languages - 1 others
and maximises the mean predicted gain over the targets. Examples are split evenly across the chosen languages: a
study with `fixed_total` budgets does not identify a per-language count effect, so nothing better is supported by
the data (the note says so).
"""

from __future__ import annotations

import copy
import itertools
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from langmix.analysis.findings import count, no_verdict_note, seed_range, signed
from langmix.analysis.minimal import trained_set_gain
from langmix.analysis.contrasts import NO_REFERENCE, reference_cells
from langmix.analysis.core import ZERO_TOLERANCE, AnalysisError, CellBoot, cell_bootstrap, train_set
from langmix.analysis.table import listed
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
    ci_low: float  # NaN for English-only: its gain is 0 by definition, not an estimate with an interval
    ci_high: float
    per_target: dict[str, float]
    runners_up: list[dict] = field(default_factory=list)
    coefficients: pd.DataFrame | None = None
    note: str = ""
    extrapolated: dict[str, str] = field(default_factory=dict)  # target -> why its prediction is extrapolated
    n_ties: int = 0  # other searched sets with the same predicted gain
    warnings: list[str] = field(default_factory=list)  # caveats to show beside the note: unseparated terms, ...
    n_indistinct: int = 0  # runners-up (not tied) whose difference from the recommendation has an interval with 0
    measured: dict | None = None  # the recommended set's gain where the study trained it

    @property
    def english_only(self) -> bool:
        return self.languages == ["en"]


def _features(lang: str, mixture: tuple[str, ...] | frozenset[str], dist: dict[str, float]) -> np.ndarray:
    me = get(lang)
    others = [get(c) for c in mixture if c not in ("en", lang)]
    seen = float(lang in mixture)
    d = dist.get(lang, float(np.mean(list(dist.values()))))
    return np.array([1.0, seen, np.log2(max(len(mixture), 1)), float(any(o.family == me.family for o in others)),
                     float(any(o.script == me.script for o in others)), d, float(me.resource == "low"),
                     d * (1.0 - seen)])


def _design(cb: CellBoot) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Rows (cells with gains: keys, whether the language is trained on, seeds), X, point gains, replicate gains.
    Cells with no English-only cell to gain over are left out, named in the rows' attrs[NO_REFERENCE]."""
    c = cb.cells
    dist = distances("syntactic")
    sel = c[(c["language"] != "en") & ~c["design"].isin(["english_only", "base"])]
    ref, no_reference = reference_cells(cb, sel.index)
    rows, xs, pi, pj = [], [], [], []
    feats: dict[tuple[str, str], np.ndarray] = {}
    for i, j, model, task, mixture, lang, tl in zip(sel.index, ref.tolist(), sel["model"], sel["task"],
                                                     sel["mixture"], sel["language"], sel["train_languages"]):
        if j < 0:
            continue
        if (lang, tl) not in feats:
            feats[(lang, tl)] = _features(lang, train_set(tl), dist)
        xs.append(feats[(lang, tl)])
        pi.append(int(i))
        pj.append(j)
        rows.append((model, task, mixture, lang, bool(feats[(lang, tl)][1]),
                     int(min(c.at[int(i), "n_seeds"], c.at[j, "n_seeds"]))))
    if not rows:
        raise AnalysisError("no multilingual mixture with an English-only reference to learn gains from")
    frame = pd.DataFrame(rows, columns=["model", "task", "mixture", "language", "seen", "n_seeds"])
    frame.attrs[NO_REFERENCE] = no_reference
    # through cb.contrast: a gain compares the two cells on the items both were evaluated on
    point, boot, _ = cb.contrast([{int(i): 1.0, int(j): -1.0} for i, j in zip(pi, pj)])
    return frame, np.array(xs), point, boot


@dataclass
class Identification:
    """What the fitted cells identify. A linear prediction c @ beta is determined by the cells (the same for every
    least-squares solution) iff c lies in the row space of X; with X of full column rank every prediction is."""

    rank: int
    basis: np.ndarray  # (rank, terms): an orthonormal basis of X's row space
    unseparated: list[str]  # terms the cells cannot separate from one another (empty at full rank)

    def identified(self, c: np.ndarray) -> np.ndarray:
        """Whether each row of c (..., terms) is in the row space (a prediction the cells determine)."""
        c = np.atleast_2d(c)
        resid = c - (c @ self.basis.T) @ self.basis
        return np.linalg.norm(resid, axis=-1) <= 1e-7 * np.maximum(1.0, np.linalg.norm(c, axis=-1))


def identification(x: np.ndarray) -> Identification:
    _, s, vt = np.linalg.svd(x, full_matrices=True)
    rank = int((s > 1e-9 * max(float(s[0]) if len(s) else 0.0, 1e-300)).sum())
    null = vt[rank:]
    return Identification(rank, vt[:rank], [t for t, w in zip(TERMS, np.abs(null).max(axis=0, initial=0.0))
                                            if w > 1e-7])


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares (minimum norm where a feature does not vary); y may be (n,) or (n, B)."""
    return np.linalg.lstsq(x, y, rcond=None)[0]


def recommend(items: pd.DataFrame, targets: list[str], budget: int, max_languages: int,
              candidates: list[str] | None = None, n_runners_up: int = 4, cells: CellBoot | None = None
              ) -> Recommendation:
    """The language set (English + up to max_languages - 1 candidates) and per-language example counts that maximise
    the predicted mean gain on `targets` under `budget` examples, with a 95% CI and the runner-up sets.

    What the data cannot support is refused or said, never scored silently:
    - English as a target is refused: the model is fitted on the non-English languages' gains (English is in every
      mixture, at distance 0 from itself), so a prediction for English would be pure extrapolation, whatever its
      interval; the study measures English's change directly (`langmix query`, the report).
    - Where the cells cannot separate the terms (a rank-deficient design: e.g. every mixture trains the same number
      of languages), only the sets whose predicted gain the cells determine (the prediction lies in the row space of
      the design, so it does not depend on how the unseparated terms are split) are searched, and the note names the
      terms; if no set but English-only is determined, it raises. Coefficients of terms the cells do not identify
      are NaN.
    - A target whose cell the fit never saw in the state the recommendation puts it in (not evaluated at all, or
      never trained on while the set includes it) is listed in `extrapolated` with the reason.
    - With one seed the intervals cover item sampling only, and the note says so."""
    if budget < 1:
        raise AnalysisError(f"the budget must be at least one example, got {budget}")
    if max_languages < 2:
        raise AnalysisError(f"max_languages must be at least 2 (English and one more), got {max_languages}")
    if "en" in targets:
        raise AnalysisError("English cannot be a target: the gain model is fitted on the non-English languages' gains "
                            "over English-only (English is in every mixture), so its prediction for English would be "
                            "pure extrapolation; the study's measured English changes are in its report and "
                            "`langmix query` (language = 'en')")
    max_languages = min(max_languages, budget)  # every language in the mixture gets at least one example
    cb = cells or cell_bootstrap(items, n_boot=400)
    frame, x, y, yb = _design(cb)
    ident = identification(x)
    beta, beta_b = _fit(x, y), _fit(x, yb)
    # the targets are candidates too: whether to put a target in the data is the question being asked
    given = list(candidates or known_codes())
    added = [t for t in targets if t not in given]
    cands = [c for c in dict.fromkeys([*given, *targets]) if c != "en"]
    dist = distances("syntactic")
    # English-only gains nothing over itself, by definition: it is not a point the model extrapolates to.
    scored: list[tuple[float, tuple[str, ...], np.ndarray | None]] = [(0.0, ("en",), None)]
    n_sets = 0
    for k in range(1, max(0, max_languages - 1) + 1):
        for combo in itertools.combinations(cands, k):
            mix = ("en", *combo)
            xt = np.array([_features(t, mix, dist) for t in targets])
            n_sets += 1
            if not ident.unseparated or ident.identified(xt).all():  # full rank: every prediction is determined
                scored.append((float((xt @ beta).mean()), mix, xt))
    if len(scored) == 1 and n_sets:
        raise AnalysisError(f"the study's {count(len(frame), 'cell gain')} "
                            f"({count(frame['mixture'].nunique(), 'mixture')}) cannot separate the terms "
                            f"{', '.join(ident.unseparated)} (rank {ident.rank} of {len(TERMS)}), and none of the "
                            f"{n_sets} candidate sets has a predicted gain they determine; finish the study's runs "
                            "or add mixtures that vary the number and kind of training languages")
    scored.sort(key=lambda s: -s[0])  # stable: English-only stays first among equal gains

    def draws_of(entry) -> np.ndarray:
        return np.zeros(beta_b.shape[1]) if entry[2] is None else (entry[2] @ beta_b).mean(axis=0)

    best_draws = draws_of(scored[0])

    def summary(entry) -> dict:
        gain, mix, xt = entry
        draws = draws_of(entry)
        lo, hi = np.quantile(draws, [0.025, 0.975])
        # the recommendation minus this set, on the same replicates (paired): can the data tell them apart?
        diff = best_draws - draws
        d_lo, d_hi = np.quantile(diff, [0.025, 0.975])
        if xt is None:  # English-only: 0 by definition, no interval (a [0, 0] would read as certainty)
            lo = hi = float("nan")
        return {"languages": list(mix), "predicted_gain": gain, "ci_low": float(lo), "ci_high": float(hi),
                "degenerate": bool(np.ptp(draws) <= ZERO_TOLERANCE), "vs_best_ci_low": float(d_lo),
                "vs_best_ci_high": float(d_hi), "tied": bool(np.ptp(diff) <= ZERO_TOLERANCE and abs(d_lo) <= 1e-9)}

    best = summary(scored[0])
    per, extra = divmod(budget, len(best["languages"]))  # the whole budget: the first `extra` get one more
    split = {c: per + (i < extra) for i, c in enumerate(best["languages"])}
    runners_up = [summary(s) for s in scored[1:1 + n_runners_up]]
    ties = [list(s[1]) for s in scored[1:] if abs(s[0] - best["predicted_gain"]) < 1e-9]
    known_terms = ident.identified(np.eye(len(TERMS)))
    coefs = pd.DataFrame({"term": TERMS, "coef": np.where(known_terms, beta, np.nan),
                          "ci_low": np.where(known_terms, np.quantile(beta_b, 0.025, axis=1), np.nan),
                          "ci_high": np.where(known_terms, np.quantile(beta_b, 0.975, axis=1), np.nan)})
    one_seed = int(frame["n_seeds"].max()) == 1
    note = (f"Fitted on {count(len(frame), 'cell gain')} ({count(frame['model'].nunique(), 'model')}, "
            f"{count(frame['task'].nunique(), 'task')}, {count(frame['mixture'].nunique(), 'mixture')}, "
            f"{count(frame['language'].nunique(), 'language')}, {seed_range(frame['n_seeds'])}). Intervals cover "
            + ("item sampling only (one seed: run-to-run variation is not in them, so they are too narrow)"
               if one_seed else "item/seed sampling only") +
            ", not model error (see validate_loo). Examples are split evenly: the study does "
            "not vary per-language counts, so it cannot support an uneven split.")
    warnings: list[str] = []
    if frame.attrs[NO_REFERENCE]:
        gone = frame.attrs[NO_REFERENCE]
        warnings.append(f"left out of the fit for want of an English-only run to compare with: {listed(gone)}")
    if added:
        what = ("was not among the candidate languages; as a target, it was searched as a training language" if
                len(added) == 1 else "were not among the candidate languages; as targets, they were searched as "
                "training languages")
        note += f" {', '.join(added)} {what} too."
    if ident.unseparated:
        warnings.append(f"the cells cannot separate the terms {', '.join(ident.unseparated)} (rank {ident.rank} of "
                        f"{len(TERMS)}): only the {len(scored) - 1} of {n_sets} candidate sets whose predicted gain "
                        "the cells determine were searched; the others cannot be predicted from this study")
    if best["languages"] == ["en"]:
        note += (" No set of other languages is predicted to beat English-only for these targets, so the "
                 "recommendation is English-only (a gain of 0 by definition).")
    elif best["degenerate"]:
        note += (" The predicted gain has no interval: every bootstrap replicate gave the same value (too few items, "
                 "or every answer alike), so the data cannot show its uncertainty; treat it as unsupported.")
    elif not best["ci_low"] > 0:
        note += (" The interval of the predicted gain includes zero: the study does not show that this set beats "
                 "English-only for these targets.")
    elif one_seed:
        note += (" With one seed, an interval above zero does not show that this set beats English-only: a rerun "
                 "with another seed can move every gain.")
    indistinct = [r for r in runners_up if not r["tied"] and r["vs_best_ci_low"] <= 0 <= r["vs_best_ci_high"]]
    vs_english = best["languages"] != ["en"] and not best["degenerate"] and not best["ci_low"] > 0
    if indistinct or vs_english:
        note += _indistinct_note(best, runners_up, indistinct, vs_english, one_seed)
    if ties:
        shown = "; ".join(", ".join(t) for t in ties[:4])
        note += (f" {len(ties)} of the {len(scored) - 1} other sets searched tie with the recommendation (the same "
                 f"predicted gain: the fitted model cannot tell them apart), so the choice among them is arbitrary: "
                 f"{shown}{' ...' if len(ties) > 4 else ''}.")
    evaluated, trained = set(frame["language"]), set(frame.loc[frame["seen"], "language"])
    unseen = set(frame.loc[~frame["seen"], "language"])
    extrapolated: dict[str, str] = {}
    for t in targets if best["languages"] != ["en"] else []:  # English-only's 0 is by definition, not predicted
        if t not in evaluated:
            extrapolated[t] = ("not evaluated in the fitted cells: its prediction rests on its typology "
                               "(distance, family, script, resource) alone")
        elif t in best["languages"] and t not in trained:
            extrapolated[t] = "no fitted mixture trains on it: its gain from being included is extrapolated"
        elif t not in best["languages"] and t not in unseen:
            extrapolated[t] = ("every fitted mixture that evaluates it trains on it: its gain without it is "
                               "extrapolated")
    warnings += [f"extrapolated target {t}: {why}" for t, why in extrapolated.items()]
    for lang in best["languages"][1:]:
        if lang not in targets and lang not in trained:
            note += (f" No mixture of the study trains on {lang}: the gain from including it is extrapolated from "
                     f"the other languages (the interval covers the fit's sampling error only, not the "
                     f"extrapolation).")
    measured = None if best["languages"] == ["en"] else trained_set_gain(cb, best["languages"], targets)
    for r in runners_up:  # a runner-up the study trained shows its measurement too (it may beat the recommendation)
        r["measured"] = None if r["languages"] == ["en"] else trained_set_gain(cb, r["languages"], targets)
    return Recommendation(targets=list(targets), languages=best["languages"],
                          examples_per_language=split,
                          predicted_gain=best["predicted_gain"], ci_low=best["ci_low"], ci_high=best["ci_high"],
                          per_target=(dict.fromkeys(targets, 0.0) if scored[0][2] is None else
                                      {t: float(v) for t, v in zip(targets, scored[0][2] @ beta)}),
                          runners_up=runners_up, coefficients=coefs,
                          note=note, extrapolated=extrapolated, n_ties=len(ties), warnings=warnings,
                          n_indistinct=len(indistinct), measured=measured)


def _indistinct_note(best: dict, runners_up: list[dict], indistinct: list[dict], vs_english: bool,
                     one_seed: bool) -> str:
    """Where the data cannot tell the recommendation from English-only (its interval includes zero) or from
    runners-up (the paired interval of the difference includes zero): say so plainly, with how wide the runners-up's
    intervals are, and what would tell the sets apart."""
    what = "English-only" if best["languages"] == ["en"] else "the recommended set"
    others = (["English-only"] if vs_english else []) + (
        [f"{len(indistinct)} of the {count(len(runners_up), 'runner-up set')} shown"] if indistinct else [])
    span = ""
    if indistinct:
        zero = [0.0] if any(r["languages"] == ["en"] for r in indistinct) else []  # English-only: its 0
        lo = np.nanmin([r["ci_low"] for r in indistinct] + zero) * 100
        hi = np.nanmax([r["ci_high"] for r in indistinct] + zero) * 100
        span = f"; the runners-up's predicted gains have intervals spanning {signed(lo)} to {signed(hi)} points"
    more = ("more seeds (one seed leaves run-to-run variation out of every interval) and more evaluation items per "
            "language" if one_seed else "more seeds and more evaluation items per language")
    return (f" The data cannot tell {what} from {' or from '.join(others)} (the interval of each difference "
            f"includes zero{span}), so it cannot show which of these sets is best: {more} would narrow the "
            f"intervals.")


ENGLISH_ONLY_GAIN = "0 by definition (English-only is what every gain is measured against: no interval)"


def _gain(languages: list[str], gain: float, low: float, high: float, degenerate: bool = False) -> str:
    """'+0.049 [-0.015, +0.126]'; English-only's 0 by definition; a flat interval as no interval, never '[+0.000,
    +0.000]' (that reads as certainty where the data cannot show uncertainty)."""
    if languages == ["en"]:
        return ENGLISH_ONLY_GAIN
    if degenerate or not high - low > 1e-12:
        return f"{signed(gain, 3)} (no interval: every bootstrap replicate gave the same value)"
    return f"{signed(gain, 3)} [{signed(low, 3)}, {signed(high, 3)}]"


def _measured(m: dict, languages: list[str], n_targets: int) -> str:
    """A set's gain as the study measured it (`trained_set_gain`), with its n and interval: 'an interval that
    includes zero' only for an interval that has width (a degenerate one is said to be no interval)."""
    on = "" if len(m["targets"]) == n_targets else f", on {', '.join(m['targets'])} only"
    flat = m["degenerate"] or not m["ci_high"] - m["ci_low"] > 1e-12
    includes_zero = not flat and m["ci_low"] <= 0 <= m["ci_high"]
    return (f"measured ({', '.join(m['mixtures'])}, trained in the study{on}): "
            f"{_gain(languages, m['estimate'], m['ci_low'], m['ci_high'], m['degenerate'])}, "
            f"n={count(m['n_items'], 'item')} x {seed_range(pd.Series([m['n_seeds_min'], m['n_seeds']]))}"
            f"{no_verdict_note(m.get('n_rows'), m.get('n_no_verdict'))}"
            f"{', an interval that includes zero' if includes_zero else ''}")


def _measured_line(rec: Recommendation) -> str:
    """The recommended set's measured gain beside its prediction, and which the recommendation rests on."""
    assert rec.measured is not None
    return (f"{_measured(rec.measured, rec.languages, len(rec.targets))}; the recommendation rests on the model's "
            f"prediction, not on this direct measurement")


def recommendation_lines(rec: Recommendation) -> list[str]:
    """The recommendation and its runners-up, one line each (as `langmix plan` prints them); the set's measured gain
    where the study trained it; for extrapolated targets, what the interval leaves out."""
    counts = ", ".join(f"{lang} {n}" for lang, n in rec.examples_per_language.items())
    extra = (f" (extrapolated to {', '.join(rec.extrapolated)}: the intervals cover the fit's sampling error only, "
             f"not the extrapolation)" if rec.extrapolated else "")
    lines = [f"recommended: {counts} examples{' (English-only)' if rec.english_only else ''}; predicted mean target "
             f"gain {_gain(rec.languages, rec.predicted_gain, rec.ci_low, rec.ci_high)}{extra}"]
    lines += [_measured_line(rec)] if rec.measured else []
    lines += [f"runner-up: {', '.join(r['languages'])}: predicted "
              f"{_gain(r['languages'], r['predicted_gain'], r['ci_low'], r['ci_high'], r.get('degenerate', False))}"
              + (f"; {_measured(r['measured'], r['languages'], len(rec.targets))}" if r.get("measured") else "")
              for r in rec.runners_up]
    return lines


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
    mixture; `attrs` holds Spearman rho between predicted and observed, with a CI from resampling mixtures. A mixture
    whose cells the other mixtures' cells do not determine (a rank-deficient fit) is left out (`n_unpredictable`)."""
    cb = cells or cell_bootstrap(items, n_boot=200)
    frame, x, y, _ = _design(cb)
    if frame["mixture"].nunique() < 4:
        raise AnalysisError(f"only {count(frame['mixture'].nunique(), 'multilingual mixture')}: at least 4 are needed "
                            f"to rank them")
    rows = []
    for mixture in sorted(frame["mixture"].unique()):
        out = (frame["mixture"] == mixture).to_numpy()
        if not identification(x[~out]).identified(x[out]).all():  # the rest cannot predict it: not a test
            continue
        beta = _fit(x[~out], y[~out])
        rows.append({"mixture": mixture, "predicted": float((x[out] @ beta).mean()), "observed": float(y[out].mean()),
                     "n_cells": int(out.sum())})
    res = pd.DataFrame(rows, columns=["mixture", "predicted", "observed", "n_cells"])
    skipped = frame["mixture"].nunique() - len(res)
    if len(res) < 4:
        raise AnalysisError(f"only {count(len(res), 'multilingual mixture')} can be predicted from the others' cells "
                            f"({skipped} cannot: those cells do not separate the terms): at least 4 are needed to "
                            f"rank them")
    res.attrs["n_unpredictable"] = skipped
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
