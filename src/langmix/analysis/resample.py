"""Replicate arithmetic of the cell bootstrap, kept per task so cell means can be recomputed on a subset of items
(contrasts between cells evaluated on different items, `core.CellBoot.contrast`) or on fresh draws (p-values that
need more replicates than the intervals, `core.holm`).

A task's data are per-(cell, item, seed) sums and counts of the verdicts; a replicate draws multinomial weights over
the task's items (I x B) and over its seeds (B x S). A cell's replicate mean is the seed-weighted mean of its
per-seed, item-weighted means (a cell evaluated with one seed only keeps that seed).

A cell's comparable items (`TaskData.presence`) are those it has a verdict for in every one of its seeds: a cell
whose seeds were evaluated on different items (`ragged`) averages seeds over different items, so a contrast that
takes it as it is would compare, say, one seed's easy items against another cell's whole set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
    return point_num / np.maximum(point_den, 1), boot

