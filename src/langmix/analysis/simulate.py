"""Simulated item-level tables of a study's shape with planted effects (the analyses' contract; useful for power).

Accuracy is additive on the probability scale, so a planted effect of +0.05 is a +5-point difference in expected
accuracy (probabilities stay inside (0, 1) for the defaults; `simulate` refuses settings that would clip):

    p = base(task) + size_slope * log10(params / 1e8) - 0.04 * [low-resource] - 0.08 * [language != en]
        + item difficulty (uniform +-item_spread, shared by an item's translations)
        + effects(mixture, language) + run noise (normal, run_sd; 0 by default)

`Effects` (all 0 = no effect at all; relative to English-only, non-English languages only):
- en_plus_one_unseen: an EN+1 mixture raises the languages in neither mixture by this much;
- coverage_gain, plateau: languages gain coverage_gain * min(k - 1, plateau - 1) / (plateau - 1) with k training
  languages (k >= 2), i.e. linear growth up to `plateau` languages, then flat;
- distance_intercept, distance_slope: unseen languages in multilingual mixtures gain
  intercept + slope * URIEL distance (`distance_kind`) from English;
- seen_gain: a language in the training mixture gains this much (direct inclusion);
- size_coverage: the coverage gain per added language changes by this much per decade of parameters;
- fidelity_seen / fidelity_unseen: probability that a response is in the prompt's language.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from langmix.analysis.typology import distances
from langmix.languages import MGSM_LANGUAGES, get

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Effects:
    en_plus_one_unseen: float = 0.0
    coverage_gain: float = 0.0
    plateau: int = 4
    distance_intercept: float = 0.0
    distance_slope: float = 0.0
    distance_kind: str = "syntactic"
    seen_gain: float = 0.0
    size_coverage: float = 0.0
    fidelity_seen: float = 0.95
    fidelity_unseen: float = 0.8


@dataclass(frozen=True)
class StudyShape:
    families: tuple[str, ...] = ("fam-a", "fam-b")
    sizes: tuple[int, ...] = (135_000_000, 360_000_000, 1_000_000_000, 1_700_000_000, 4_000_000_000)
    languages: tuple[str, ...] = MGSM_LANGUAGES
    tasks: tuple[str, ...] = ("math", "api")
    seeds: tuple[int, ...] = (0, 1, 2)
    n_items: int = 250
    growing_order: tuple[str, ...] = ("es", "zh", "sw", "ru", "ja", "bn", "fr", "th", "de", "te")
    held_out: tuple[str, ...] = ("sw", "te")
    include_base: bool = False
    extra_mixtures: tuple[tuple[str, str, tuple[str, ...]], ...] = field(default_factory=tuple)


def mixtures(shape: StudyShape) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, design, languages): English-only, EN+1 for each language, growing 3.., held-out (22 for MGSM)."""
    others = [c for c in shape.languages if c != "en"]
    out: list[tuple[str, str, tuple[str, ...]]] = [("en", "english_only", ("en",))]
    out += [(f"en+{c}", "en_plus_one", ("en", c)) for c in others]
    order = [c for c in shape.growing_order if c in others]
    out += [(f"grow-{k + 1}", "growing", ("en", *order[:k])) for k in range(2, len(order) + 1)]
    out += [(f"all-minus-{c}", "held_out", tuple(x for x in shape.languages if x != c)) for c in shape.held_out]
    out += list(shape.extra_mixtures)
    if shape.include_base:
        out.append(("base", "base", ()))
    return out


def _effect(fx: Effects, design: str, train: tuple[str, ...], lang: str, dist: dict[str, float],
            log_size: float) -> float:
    if lang == "en" or design in ("english_only", "base"):
        return 0.0
    k = len(train)
    seen = lang in train
    e = 0.0
    if fx.coverage_gain and k >= 2:
        e += fx.coverage_gain * min(k - 1, fx.plateau - 1) / max(fx.plateau - 1, 1)
    if fx.size_coverage and k >= 2:
        e += fx.size_coverage * log_size * (k - 1)
    if seen:
        e += fx.seen_gain
    elif k >= 2:
        if design == "en_plus_one":
            e += fx.en_plus_one_unseen
        e += fx.distance_intercept + fx.distance_slope * dist.get(lang, 0.0)
    return e


def simulate(effects: Effects = Effects(), shape: StudyShape = StudyShape(), seed: int = 0, base: float = 0.55,
             size_slope: float = 0.03, item_spread: float = 0.2, run_sd: float = 0.0,
             study: str = "simulated") -> pd.DataFrame:
    """An item-level table (columns of `langmix.records.ItemRow`; strings as categoricals) with planted effects."""
    rng = np.random.default_rng(seed)
    dist = distances(effects.distance_kind)
    mixes = mixtures(shape)
    models = [(f"{fam}-{size / 1e9:g}b", size) for fam in shape.families for size in shape.sizes]
    langs = list(shape.languages)
    n_l, n_i = len(langs), shape.n_items
    runs = [(mi, xi, ti, s) for mi in range(len(models)) for xi in range(len(mixes)) for ti in range(len(shape.tasks))
            for s in shape.seeds if not (mixes[xi][1] == "base" and s != shape.seeds[0])]
    run_arr = np.array([(m, x, t, s) for m, x, t, s in runs], dtype=np.int64)
    n_runs = len(runs)
    # cell probabilities (run x language)
    task_base = {t: base + (0.05 if i == 0 else -0.05) for i, t in enumerate(shape.tasks)}
    p_cell = np.zeros((n_runs, n_l))
    fid = np.zeros((n_runs, n_l))
    noise = rng.normal(0, run_sd, size=n_runs) if run_sd else np.zeros(n_runs)
    for r, (mi, xi, ti, _s) in enumerate(runs):
        name, design, train = mixes[xi]
        log_size = np.log10(models[mi][1] / 1e8)
        for li, lang in enumerate(langs):
            low = get(lang).resource == "low"
            p_cell[r, li] = (task_base[shape.tasks[ti]] + size_slope * log_size - 0.04 * low - 0.08 * (lang != "en")
                             + _effect(effects, design, train, lang, dist, log_size) + noise[r])
            fid[r, li] = 1.0 if lang == "en" else (effects.fidelity_seen if lang in train else effects.fidelity_unseen)
    difficulty = rng.uniform(-item_spread, item_spread, size=(len(shape.tasks), n_i))
    lo = p_cell.min() - item_spread
    hi = p_cell.max() + item_spread
    if lo <= 0 or hi >= 1:
        raise ValueError(f"planted probabilities leave (0, 1): [{lo:.2f}, {hi:.2f}]; use smaller effects or spread")
    # rows: run x language x item
    r_idx = np.repeat(np.arange(n_runs), n_l * n_i)
    l_idx = np.tile(np.repeat(np.arange(n_l), n_i), n_runs)
    i_idx = np.tile(np.arange(n_i), n_runs * n_l)
    t_idx = run_arr[r_idx, 2]
    p = p_cell[r_idx, l_idx] + difficulty[t_idx, i_idx]
    correct = rng.random(len(p)) < p
    in_lang = rng.random(len(p)) < fid[r_idx, l_idx]

    def cat(codes: np.ndarray, labels: list[str]) -> pd.Categorical:
        uniq, inv = np.unique(np.array(labels, dtype=object), return_inverse=True)
        return pd.Categorical.from_codes(inv[codes], categories=pd.Index(list(uniq), dtype=object))

    m_idx, x_idx = run_arr[r_idx, 0], run_arr[r_idx, 1]
    src_labels = [f"{t}-{i:05d}" for t in shape.tasks for i in range(n_i)]
    item_labels = [f"{t}-{i:05d}-{lang}" for t in shape.tasks for lang in langs for i in range(n_i)]
    resp_labels = langs + (["en"] if "en" not in langs else [])
    resp_codes = np.where(in_lang, l_idx, resp_labels.index("en"))
    headline = {"math": "accuracy_strict", "api": "call_accuracy"}
    frame = pd.DataFrame({
        "study": cat(np.zeros(len(p), dtype=np.int64), [study]),
        "eval_hash": cat(r_idx, [f"e{h:06d}" for h in range(n_runs)]),
        "train_hash": cat(r_idx, [f"t{h:06d}" if mixes[runs[h][1]][1] != "base" else "" for h in range(n_runs)]),
        "model": cat(m_idx, [m for m, _ in models]),
        "model_params": np.array([s for _, s in models], dtype=np.int64)[m_idx],
        "mixture": cat(x_idx, [x[0] for x in mixes]),
        "design": cat(x_idx, [x[1] for x in mixes]),
        "train_languages": cat(x_idx, [",".join(x[2]) for x in mixes]),
        "n_train_languages": np.array([len(x[2]) for x in mixes], dtype=np.int64)[x_idx],
        "task": cat(t_idx, list(shape.tasks)),
        "headline_metric": cat(t_idx, [headline.get(t, "accuracy") for t in shape.tasks]),
        "language": cat(l_idx, langs),
        "resource": cat(l_idx, [get(c).resource for c in langs]),
        "seed": run_arr[r_idx, 3],
        "item_id": cat((t_idx * n_l + l_idx) * n_i + i_idx, item_labels),
        "source_id": cat(t_idx * n_i + i_idx, src_labels),
        "correct": correct,
        "correct_strict": pd.array(correct, dtype="boolean"),
        "correct_flexible": pd.array(correct | (rng.random(len(p)) < 0.05), dtype="boolean"),
        "reason": cat(np.where(correct, 0, 1), ["ok", "wrong_answer"]),
        "response_language": cat(resp_codes, resp_labels),
    })
    log.info("simulated %d rows (%d runs x %d languages x %d items)", len(frame), n_runs, n_l, n_i)
    return frame
