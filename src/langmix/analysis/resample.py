"""Replicate arithmetic of the cell bootstrap, kept per task so cell means can be recomputed on a subset of items
(contrasts between cells evaluated on different items, `core.CellBoot.contrast`) or on fresh draws (p-values that
need more replicates than the intervals, `core.holm`).

A task's data are per-(cell, item, seed) sums and counts of the verdicts; a replicate draws multinomial weights over
the task's items (I x B) and over its seeds (B x S). A cell's replicate mean is the seed-weighted mean of its
per-seed, item-weighted means (a cell evaluated with one seed only keeps that seed).

A cell's comparable items (`TaskData.presence`) are those it has a verdict for in every one of its seeds: a cell
whose seeds were evaluated on different items (`ragged`) averages seeds over different items, so a contrast that
takes it as it is would compare, say, one seed's easy items against another cell's whole set.

Every cell mean is a proportion (verdicts are 0/1, `table.verdicts`: accuracy, the share of responses in the prompt's
language), and so is every replicate of it: item and seed resampling keep a mean in [0, 1] by construction, and a
borrowed run-to-run draw moves a replicate on the logit scale (`with_run_draws`), so no interval of a proportion
leaves [0, 1] and a difference is formed from bounded replicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit


@dataclass
class TaskData:
    """One task's verdicts: `cells` are the global cell indices (rows of sums/cnt); `wi`/`ws` the main draws."""

    cells: np.ndarray
    sums: np.ndarray  # cells x items x seeds
    cnt: np.ndarray  # cells x items x seeds
    wi: np.ndarray  # items x B (float32)
    ws: np.ndarray  # B x seeds
    presence: np.ndarray = field(init=False)  # cells x items: a verdict for the item in every seed of the cell
    ragged: np.ndarray = field(init=False)  # cells: some item has a verdict in some of the cell's seeds only
    n_any: np.ndarray = field(init=False)  # cells: items with a verdict in any seed

    def __post_init__(self) -> None:
        has = self.cnt > 0
        seeds = has.any(axis=1)  # cells x seeds: the seeds each cell was evaluated with
        anywhere = has.any(axis=2)
        self.presence = anywhere & (has | ~seeds[:, None, :]).all(axis=2)
        self.ragged = (anywhere != self.presence).any(axis=1)
        self.n_any = anywhere.sum(axis=1)


def draw(rng: np.random.Generator, n_items: int, n_seeds: int, n_boot: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial item weights (items x B, float32) and seed weights (B x seeds)."""
    wi = rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_boot).astype(np.float32).T
    ws = (rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot).astype(np.float64)
          if n_seeds > 1 else np.ones((n_boot, 1)))
    return wi, ws


def task_arrays(cell_local: np.ndarray, item: np.ndarray, seed: np.ndarray, y: np.ndarray, n_cells: int,
                n_items: int, n_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-(cell, item, seed) sums and counts of `y`."""
    flat = (cell_local * n_items + item) * n_seeds + seed
    size = n_cells * n_items * n_seeds
    sums = np.bincount(flat, weights=y, minlength=size).reshape(n_cells, n_items, n_seeds)
    cnt = np.bincount(flat, minlength=size).reshape(n_cells, n_items, n_seeds).astype(np.float64)
    return sums, cnt


def replicate_means(sums: np.ndarray, cnt: np.ndarray, wi: np.ndarray, ws: np.ndarray) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """(point means, replicate means: cells x B) of the cells in sums/cnt under the draws wi/ws."""
    n_cells, _, n_seeds = sums.shape
    n_boot = wi.shape[1]
    num_b = np.zeros((n_cells, n_boot))
    den_b = np.zeros((n_cells, n_boot))
    plain_num = np.zeros((n_cells, n_boot))
    plain_den = np.zeros((n_cells, 1))
    point_num = np.zeros(n_cells)
    point_den = np.zeros(n_cells)
    for s in range(n_seeds):
        c_s = cnt[:, :, s]
        present = c_s.sum(axis=1) > 0
        if not present.any():
            continue
        m_s = np.divide(sums[:, :, s], c_s, out=np.zeros_like(c_s), where=c_s > 0)  # per-item mean
        hit = (c_s > 0).astype(np.float32)
        num = m_s.astype(np.float32) @ wi
        den = hit @ wi
        mean_s = np.divide(num, den, out=np.full(num.shape, np.nan, dtype=np.float32), where=den > 0)
        ok = ~np.isnan(mean_s)
        mean_s = np.where(ok, mean_s, 0.0)
        num_b += ws[:, s][None, :] * mean_s * ok
        den_b += ws[:, s][None, :] * ok
        plain_num += mean_s * ok
        plain_den += present[:, None]
        point_num += np.where(present, m_s.sum(axis=1) / np.maximum(hit.sum(axis=1), 1), 0.0)
        point_den += present
    boot = np.where(den_b > 0, num_b / np.where(den_b > 0, den_b, 1), plain_num / np.maximum(plain_den, 1))
    return point_num / np.maximum(point_den, 1), np.clip(boot, 0.0, 1.0)  # float32 sums may round past a bound


def run_variance(sums: np.ndarray, cnt: np.ndarray, presence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the run-to-run variance of one seed's mean (the between-seed component of a two-way
    item x seed ANOVA on the items present in all its seeds: (MS_seed - MS_residual) / n_items, unclamped so
    that pooling stays unbiased) and its degrees of freedom (seeds - 1; 0 where there is no estimate: one seed,
    or fewer than two items)."""
    n_cells = sums.shape[0]
    tau2, df = np.zeros(n_cells), np.zeros(n_cells)
    seeds = (cnt > 0).any(axis=1)
    for c in np.flatnonzero(seeds.sum(axis=1) >= 2):
        items = presence[c]
        k, n = int(seeds[c].sum()), int(items.sum())
        if n < 2:
            continue
        m = sums[c][items][:, seeds[c]] / cnt[c][items][:, seeds[c]]  # n x k per-item, per-seed means
        col, row, grand = m.mean(axis=0), m.mean(axis=1), m.mean()
        ms_seed = n * np.sum((col - grand) ** 2) / (k - 1)
        ms_resid = np.sum((m - row[:, None] - col[None, :] + grand) ** 2) / ((n - 1) * (k - 1))
        tau2[c], df[c] = (ms_seed - ms_resid) / n, k - 1
    return tau2, df


def fine_tuned(cells: pd.DataFrame) -> np.ndarray:
    """Which cells are of fine-tuned runs (not the base model, some training language): the runs whose seeds vary
    them, so one seed alone borrows the others' run-to-run variance (`borrowed_run_sd`)."""
    return ((cells["design"] != "base") & (cells["n_train_languages"] > 0)).to_numpy()


def with_run_draws(replicates: np.ndarray, z: np.ndarray, logit_sd: np.ndarray | float) -> np.ndarray:
    """A one-seed cell's replicate means moved by its borrowed run-to-run draws `z` (standard normal, one per
    replicate), kept in [0, 1]: another run shifts a proportion by `logit_sd` * z on the logit scale (a run is
    abler or less able on every item, the item-response view), less the second-order term that keeps the mean of
    the moved replicates at the replicate (the shift changes no estimate). On the proportion scale that is a spread
    of about logit_sd * p (1 - p): the borrowed standard deviation at the accuracy it was measured at
    (`borrowed_run_sd`), less towards 0% and 100%, none at them.

    An all-wrong (or all-right) one-seed cell therefore gets no run-to-run width: its interval is item resampling's,
    [0, 0], which the report shows as no interval (`stats.summarise`: degenerate), and so does the same cell with
    two seeds that both scored 0. Run-to-run variance could only raise an all-wrong cell, and any draw that only
    raises is biased: added and clipped at 0 (the first fix tried), the cell read [0, 1.96 sd], but its replicates
    never fell below the estimate, so a mean of several such cells had an interval above its own estimate, and in a
    quickstart study whose every cell is 0 in every run, EN+1 on languages in neither mixture read +0.0 points
    [+0.1, +1.4] (every replicate above zero: a finding where there is none). A percentile bootstrap cannot say how
    far above 0/n a cell's accuracy may be; where it matters, read the cell's n (a Wilson interval for 0 of n
    correct is [0, 3.8/n])."""
    b = np.clip(replicates, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        logit = np.log(b) - np.log1p(-b)  # -inf at 0, +inf at 1: a shift leaves the bounds where they are
    sd = np.asarray(logit_sd, dtype=float)
    return expit(logit + sd * z - 0.5 * sd ** 2 * (1.0 - 2.0 * b))


def borrowed_run_sd(cells: pd.DataFrame, tasks: dict[str, TaskData]) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the run-to-run standard deviation its replicates borrow (NaN: none borrowed), on the proportion
    scale (at the accuracy of the cells it is measured on) and on the logit scale (`with_run_draws` draws on it).

    Resampling seeds gives a cell with one seed no run-to-run variance at all, so a contrast of a 2-seed side with
    a 1-seed side had the intervals of a study whose second side never varies between runs. A fine-tuned cell with
    one seed therefore borrows the run-to-run variance measured on the cells with several seeds: the between-seed
    variance component of one seed's mean (`run_variance`), pooled over the same model's multi-seed cells of the
    task (over the task's where the model has none), drawn for each replicate as a normal shift of mean 0 on the
    logit scale (estimates are unchanged; the replicates stay in [0, 1]). The logit sd s is fitted to the pooled
    cells by least squares on the delta method's variance tau2 = s^2 (p (1 - p))^2 (sums of df * tau2 over sums of
    df * (p (1 - p))^2: cells near 0% or 100%, which vary little between runs, weigh little). The base model (one
    evaluation of a fixed model) has no run-to-run variance and borrows none; nor does a study with one seed only
    (nothing to borrow from: the findings say its intervals cover item sampling only). Simulated (run sd 4 points,
    planted +10, 1000 contrasts each), a 2-seed vs 1-seed contrast covered the effect 88% of the time before and
    93.5% after where five cells of the task had several seeds (3 vs 1: 86% -> 93%; 2 vs 2: 94%), and 86% -> 89%
    where only the compared cell had (one degree of freedom to borrow from; measured with the draws added on the
    proportion scale, the same to first order at the accuracies simulated)."""
    out, logit = np.full(len(cells), np.nan), np.full(len(cells), np.nan)
    tuned = fine_tuned(cells)
    single = tuned & (cells["n_seeds"].to_numpy() == 1)
    if not single.any():
        return out, logit
    model = cells["model"].to_numpy()
    spread = (cells["mean"] * (1.0 - cells["mean"])).to_numpy(dtype=float) ** 2
    for td in tasks.values():
        tau2, df = run_variance(td.sums, td.cnt, td.presence)
        ok = tuned[td.cells] & (df > 0)
        if not ok.any():
            continue
        w = spread[td.cells]

        def pooled(sel: np.ndarray) -> tuple[float, float]:
            var = max(0.0, float(np.sum(tau2[sel] * df[sel])))
            at = float(np.sum(w[sel] * df[sel]))
            return float(np.sqrt(var / np.sum(df[sel]))), float(np.sqrt(var / at)) if at > 0 else 0.0

        whole = pooled(ok)
        for i in np.flatnonzero(single[td.cells]):
            same = ok & (model[td.cells] == model[td.cells[i]])
            out[td.cells[i]], logit[td.cells[i]] = pooled(same) if same.any() else whole
    return out, logit
