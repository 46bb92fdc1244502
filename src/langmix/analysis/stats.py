"""Statistics over bootstrap replicates: estimate, percentile CI and p-value per row; multiple-comparison
adjustment, with p-values given enough replicates for the family they are adjusted in (`holm`)."""

from __future__ import annotations

import logging
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control

if TYPE_CHECKING:
    from langmix.analysis.core import CellBoot

log = logging.getLogger(__name__)

ALPHA = 0.05

# Contrasts of equal means come out as +-1e-16 from floating-point sums; below this they are zero.
ZERO_TOLERANCE = 1e-9


def _snap(values: np.ndarray) -> np.ndarray:
    return np.where(np.abs(values) < ZERO_TOLERANCE, 0.0, values)


def summarise(point: np.ndarray, boot: np.ndarray, alpha: float = ALPHA) -> pd.DataFrame:
    """Estimate, percentile CI and a two-sided bootstrap p-value (H0: 0) per row. Values within ZERO_TOLERANCE of
    zero are zero (rounding noise must not decide a sign or a p-value). `degenerate`: every replicate gave the same
    value, so the interval has no width and says nothing about uncertainty (one item, or every answer alike)."""
    boot = _snap(np.asarray(boot, dtype=float))
    if boot.ndim == 1:
        boot = boot[None, :]
    lo, hi = np.nanquantile(boot, [alpha / 2, 1 - alpha / 2], axis=1) if boot.size else (np.array([]), np.array([]))
    b = np.sum(~np.isnan(boot), axis=1)
    below = (np.sum(boot <= 0, axis=1) + 1) / (b + 1)
    above = (np.sum(boot >= 0, axis=1) + 1) / (b + 1)
    p = np.minimum(1.0, 2 * np.minimum(below, above))
    degenerate = np.zeros(len(boot), dtype=bool)
    if boot.shape[1]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row: no spread, not degenerate
            degenerate = (np.nanmax(boot, axis=1) - np.nanmin(boot, axis=1)) <= ZERO_TOLERANCE
    p = np.where(degenerate, np.nan, p)  # no test without variation
    return pd.DataFrame({"estimate": _snap(np.asarray(point, dtype=float)), "ci_low": lo, "ci_high": hi,
                         "p_value": p, "degenerate": degenerate})


def adjust(p: pd.Series, method: str = "holm") -> np.ndarray:
    """Multiple-comparison adjusted p-values: 'holm' (Holm-Bonferroni, family-wise) or 'bh' (Benjamini-Hochberg,
    scipy's `false_discovery_control`). Holm is the step-down formula, written out because statsmodels'
    `multipletests` runs a full garbage collection on every call (slow inside simulation loops)."""
    vals = p.to_numpy(dtype=float)
    out = np.full(len(vals), np.nan)
    ok = ~np.isnan(vals)
    if not ok.any():
        return out
    v = vals[ok]
    if method == "bh":
        out[ok] = false_discovery_control(v, method="bh")
        return out
    order = np.argsort(v)
    m = len(v)
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * v[order]))
    adj = np.empty(m)
    adj[order] = stepped
    out[ok] = adj
    return out


# The most replicates `holm` draws for one family (a family of 5000 tests needs 400,000).
MAX_P_REPLICATES = 400_000


def holm(cb: CellBoot, frame: pd.DataFrame, rows: list[dict[int, float]], boot: np.ndarray, family: np.ndarray,
         alpha: float = ALPHA, match: list | None = None) -> None:
    """Holm-adjust the p-values of the rows in `family` (a boolean mask over `frame`'s rows, which are `rows` and
    `boot`'s, in order) into `frame['p_holm']`, first giving them enough bootstrap replicates for the family.

    A bootstrap p-value cannot go below its floor 2/(B+1) (0.002 with B=1000): every replicate on one side of zero
    says only p <= floor. Holm multiplies the smallest p by the family size m, so once m * floor >= alpha no row can
    ever be significant, however large its effect (m=26 rows at B=1000) - the 'not significant' would come from the
    replicate count, not the data. So where m * floor > alpha / 2, every row of the family with p <= alpha (the only
    ones Holm could reject) gets ceil(4 m / alpha) replicates in all: the main B plus fresh draws
    (`CellBoot.sign_counts`, same resampling and item matching), which puts the floor at alpha / (2 m). The
    intervals stay on the main B; `p_replicates` says how many replicates each p-value is from. (More replicates
    only for the p-values that need them: B for every contrast would cost the whole bootstrap that many times.)"""
    fam = np.flatnonzero(np.asarray(family, bool))
    p = frame["p_value"].to_numpy(dtype=float).copy()
    reps = frame["p_replicates"].to_numpy(dtype=float).copy() if "p_replicates" in frame else \
        np.where(np.isnan(p), 0.0, float(cb.n_boot))
    tested = fam[~np.isnan(p[fam])]
    m = len(tested)
    need = min(MAX_P_REPLICATES, math.ceil(4 * m / alpha))
    refine = tested[(p[tested] <= alpha) & (reps[tested] < need)] if m * 2 / (cb.n_boot + 1) > alpha / 2 else []
    if len(refine):
        b = _snap(np.asarray(boot, dtype=float)[refine])
        below, above = np.sum(b <= 0, axis=1), np.sum(b >= 0, axis=1)
        extra = need - b.shape[1]
        more_below, more_above = cb.sign_counts([rows[i] for i in refine], extra,
                                                None if match is None else [match[i] for i in refine])
        total = b.shape[1] + extra
        p[refine] = np.minimum(1.0, 2 * np.minimum(below + more_below + 1, above + more_above + 1) / (total + 1))
        reps[refine] = total
        log.info("Holm over %d tests: %d p-values from %d bootstrap replicates (the floor of %d replicates, "
                 "%.2g, times %d would reach alpha)", m, len(refine), total, cb.n_boot, 2 / (cb.n_boot + 1), m)
        if m * 2 / (total + 1) > alpha / 2:
            log.warning("Holm over %d tests: even %d replicates leave the p-value floor (%.2g) too coarse for the "
                        "family; a row may read as not significant for want of replicates", m, total,
                        2 / (total + 1))
    frame["p_value"] = p
    frame["p_replicates"] = reps.astype(int)
    if "p_holm" not in frame:
        frame["p_holm"] = np.nan
    frame.loc[frame.index[fam], "p_holm"] = adjust(pd.Series(p[fam]))
