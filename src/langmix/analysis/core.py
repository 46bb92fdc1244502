"""The shared engine: encode the item-level table once, bootstrap every cell mean, take contrasts.

A *cell* is one (model, task, mixture, language): the mean verdict over its items and seeds. Every quantity the
analyses report is a linear combination of cell means (a difference, a mean over languages, a slope over coverage
levels), so one bootstrap of all cell means gives a paired bootstrap of every contrast at once.

The bootstrap resamples items (source ids, shared by the translations of one item, so languages stay paired) and
seeds, with the same draws for every cell of a task: a contrast between two mixtures, languages or models is paired
by (model, task, language, source_id, seed). Replicate b draws multinomial weights over the task's items and over the
seeds; a cell's replicate mean is the seed-weighted mean of its per-seed, item-weighted means (a cell evaluated with
one seed only, such as a base model, keeps that seed). Tasks are resampled independently. All of it is matrix
products in numpy: (cells x items) @ (items x replicates), once per seed.

With few seeds (2-3) the seed resampling understates run-to-run variance; the report says how many seeds back each
number.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import false_discovery_control

from langmix.records import ItemRow

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = tuple(ItemRow.model_fields)
CELL_KEYS: tuple[str, ...] = ("model", "task", "mixture", "language")
N_BOOT = 1000
ALPHA = 0.05


class AnalysisError(ValueError):
    """The table cannot support the requested analysis."""


def check_items(items: pd.DataFrame) -> None:
    missing = [c for c in ("model", "model_params", "mixture", "design", "train_languages", "n_train_languages",
                           "task", "language", "resource", "seed", "source_id", "correct") if c not in items.columns]
    if missing:
        raise AnalysisError(f"the item table lacks columns {missing} (expected the fields of langmix.records.ItemRow)")
    if items.empty:
        raise AnalysisError("the item table is empty")
    for column in ("model", "task", "mixture", "language", "seed", "source_id", "design", "train_languages"):
        blank = int(items[column].isna().sum())
        if blank:  # a blank key would merge rows into a phantom item or seed, or fail deep in the bootstrap
            raise AnalysisError(f"{blank} of {len(items)} rows of the item table have no {column}; every row needs "
                                f"one (drop or fill those rows)")


def codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and their labels; fast for categoricals."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        c = col.cat.remove_unused_categories()
        return c.cat.codes.to_numpy(np.int64), pd.Index(c.cat.categories)
    k, labels = pd.factorize(col, sort=True)
    return k.astype(np.int64), pd.Index(labels)


def train_set(train_languages: str) -> frozenset[str]:
    return frozenset(x for x in str(train_languages).split(",") if x)


@dataclass
class CellBoot:
    """Bootstrapped cell means. `cells` has one row per cell (keys, design facts, n); `boot` is (cells x B)."""

    cells: pd.DataFrame
    point: np.ndarray
    boot: np.ndarray
    n_boot: int
    value: str
    index: dict[tuple, int] = field(default_factory=dict)

    english_only: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = list(CELL_KEYS)
        self.index = {tuple(r): i for i, r in enumerate(self.cells[keys].itertuples(index=False, name=None))}
        eo = self.cells[self.cells["design"] == "english_only"]
        for model, task, mixture in eo[["model", "task", "mixture"]].itertuples(index=False, name=None):
            self.english_only.setdefault((model, task), mixture)

    def cell(self, model: str, task: str, mixture: str, language: str) -> int | None:
        return self.index.get((model, task, mixture, language))

    def contrast(self, rows: list[dict[int, float]]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Point estimates, replicates and n for each contrast (a dict cell index -> coefficient)."""
        data, ri, ci = [], [], []
        for r, coefs in enumerate(rows):
            for c, w in coefs.items():
                ri.append(r)
                ci.append(c)
                data.append(w)
        a = sparse.csr_matrix((data, (ri, ci)), shape=(len(rows), len(self.cells)))
        return a @ self.point, a @ self.boot, self._n(rows)

    def _n(self, rows: list[dict[int, float]]) -> pd.DataFrame:
        """Per contrast: items (per task the most any of its cells has, summed over tasks: the bootstrap resamples
        each task's items), seeds (the most of any cell) and runs."""
        ni = self.cells["n_items"].to_numpy()
        ns = self.cells["n_seeds"].to_numpy()
        nr = self.cells["n_runs"].to_numpy()
        run_key = self.cells.groupby(["model", "task", "mixture"], sort=False).ngroup().to_numpy()
        task_key = self.cells.groupby("task", sort=False).ngroup().to_numpy()
        out = []
        for coefs in rows:
            idx = np.fromiter(coefs, dtype=np.int64, count=len(coefs))
            if len(idx) == 0:
                out.append((0, 0, 0))
                continue
            runs = dict(zip(run_key[idx].tolist(), nr[idx].tolist()))
            items: dict[int, int] = {}  # tasks have their own items: a contrast over two tasks has both sets
            for task, n in zip(task_key[idx].tolist(), ni[idx].tolist()):
                items[task] = max(items.get(task, 0), n)
            out.append((int(sum(items.values())), int(ns[idx].max()), int(sum(runs.values()))))
        return pd.DataFrame(out, columns=["n_items", "n_seeds", "n_runs"])


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


def _boot_task(cell_local: np.ndarray, item: np.ndarray, seed: np.ndarray, y: np.ndarray, n_cells: int,
               n_items: int, n_seeds: int, rng: np.random.Generator, n_boot: int) -> tuple[np.ndarray, np.ndarray]:
    flat = (cell_local * n_items + item) * n_seeds + seed
    size = n_cells * n_items * n_seeds
    sums = np.bincount(flat, weights=y, minlength=size).reshape(n_cells, n_items, n_seeds)
    cnt = np.bincount(flat, minlength=size).reshape(n_cells, n_items, n_seeds).astype(np.float64)
    wi = rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_boot).astype(np.float32).T  # I x B
    ws = (rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot).astype(np.float64)
          if n_seeds > 1 else np.ones((n_boot, 1)))  # B x S
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


def cell_bootstrap(items: pd.DataFrame, value: str = "correct", mask: np.ndarray | None = None,
                   n_boot: int = N_BOOT, seed: int = 0) -> CellBoot:
    """Bootstrap every (model, task, mixture, language) mean of `value` (rows where `mask` is False are dropped)."""
    check_items(items)
    y_all = items[value].to_numpy(dtype=np.float64, na_value=np.nan)
    keep = ~np.isnan(y_all) if mask is None else (np.asarray(mask, bool) & ~np.isnan(y_all))
    if not keep.any():
        raise AnalysisError(f"no rows with a value for {value!r}")
    rng = np.random.default_rng(seed)
    key_codes, key_labels = [], []
    for k in CELL_KEYS:
        c, lab = codes(items[k])
        key_codes.append(c)
        key_labels.append(lab)
    dims = tuple(len(lab) for lab in key_labels)
    cell_full = np.ravel_multi_index(tuple(key_codes), dims)[keep]
    uniq, cell = np.unique(cell_full, return_inverse=True)
    task_code = key_codes[1][keep]
    item_code, _ = codes(items["source_id"])
    item_code = item_code[keep]
    seed_code, seed_labels = codes(items["seed"])
    seed_code = seed_code[keep]
    run_code, _ = codes(items["eval_hash"] if "eval_hash" in items.columns else items["seed"].astype(str))
    run_code = run_code[keep]
    y = y_all[keep]
    n_cells = len(uniq)
    point = np.zeros(n_cells)
    boot = np.zeros((n_cells, n_boot))
    cell_task = np.unravel_index(uniq, dims)[1]
    for t in np.unique(cell_task):
        sel_cells = np.flatnonzero(cell_task == t)
        rows = np.flatnonzero(task_code == t)
        local = np.searchsorted(sel_cells, cell[rows])
        it, it_inv = np.unique(item_code[rows], return_inverse=True)
        st, st_inv = np.unique(seed_code[rows], return_inverse=True)
        p, b = _boot_task(local, it_inv, st_inv, y[rows], len(sel_cells), len(it), len(st), rng, n_boot)
        point[sel_cells] = p
        boot[sel_cells] = b
    # per-cell facts and n
    frame = pd.DataFrame({"cell": cell, "item": item_code, "seed": seed_code, "run": run_code})
    n = frame.groupby("cell").agg(n_items=("item", "nunique"), n_seeds=("seed", "nunique"), n_runs=("run", "nunique"),
                                  n_rows=("item", "size"))
    unr = np.unravel_index(uniq, dims)
    cells = pd.DataFrame({k: np.asarray(lab)[u] for k, lab, u in zip(CELL_KEYS, key_labels, unr)})
    for k in CELL_KEYS:
        cells[k] = cells[k].astype(str)
    first = np.zeros(n_cells, dtype=np.int64)
    first[cell[::-1]] = np.arange(len(cell))[::-1]
    src = np.flatnonzero(keep)[first]
    for k in ("design", "train_languages", "n_train_languages", "model_params", "resource"):
        cells[k] = items[k].to_numpy()[src]
    cells["train_languages"] = cells["train_languages"].astype(str)
    cells["design"] = cells["design"].astype(str)
    cells["resource"] = cells["resource"].astype(str)
    cells["n_train_languages"] = cells["n_train_languages"].astype(int)
    cells["model_params"] = cells["model_params"].astype(np.int64)
    cells["seen"] = [lang in train_set(tl) for lang, tl in zip(cells["language"], cells["train_languages"])]
    cells = pd.concat([cells, n.reset_index(drop=True)], axis=1)
    cells["mean"] = point
    log.debug("bootstrapped %d cells x %d replicates", n_cells, n_boot)
    return CellBoot(cells=cells, point=point, boot=boot, n_boot=n_boot, value=value)


def english_only_mixture(cb: CellBoot, model: str, task: str) -> str | None:
    """The English-only mixture of a model and task (design english_only), if any."""
    return cb.english_only.get((model, task))


def fmt_ci(est: float, lo: float, hi: float, scale: float = 100.0, unit: str = " points") -> str:
    return f"{est * scale:+.1f}{unit} [{lo * scale:+.1f}, {hi * scale:+.1f}]"


def group_contrasts(cb: CellBoot, sel: pd.Series, by: list[str], gain: bool = False,
                    pooled: dict[str, str] | None = None) -> tuple[pd.DataFrame, list[dict[int, float]]]:
    """Mean over the selected cells of each `by` group (or, with `gain`, of each cell minus the same model, task
    and language under English-only). `pooled` maps `by` columns to the label "all" to average over them too."""
    c = cb.cells[np.asarray(sel, bool)].copy()
    if pooled:
        for col, label in pooled.items():
            c[col] = label
    model = cb.cells["model"].to_numpy()
    task = cb.cells["task"].to_numpy()
    lang = cb.cells["language"].to_numpy()
    ref_cell = np.full(len(cb.cells), -1, dtype=np.int64)
    if gain:
        for i in c.index.to_numpy():
            ref = cb.english_only.get((model[i], task[i]))
            j = cb.cell(model[i], task[i], ref, lang[i]) if ref else None
            ref_cell[i] = -1 if j is None else j
    keys, rows = [], []
    for key, pos in c.groupby(by, sort=True, observed=True).indices.items():
        members = c.index.to_numpy()[pos]
        if gain:
            members = members[ref_cell[members] >= 0]
        if len(members) == 0:
            continue
        w = 1.0 / len(members)
        coefs: dict[int, float] = {}
        for i in members.tolist():
            coefs[i] = coefs.get(i, 0.0) + w
            if gain:
                j = int(ref_cell[i])
                coefs[j] = coefs.get(j, 0.0) - w
        keys.append(dict(zip(by, key if isinstance(key, tuple) else (key,))) | {"n_cells": len(members)})
        rows.append(coefs)
    return pd.DataFrame(keys), rows


def estimate_frame(cb: CellBoot, keys: pd.DataFrame, rows: list[dict[int, float]]) -> tuple[pd.DataFrame, np.ndarray]:
    """keys + estimate, CI, p, n for each contrast row; also the replicates (rows x B)."""
    if not rows:
        return keys.assign(estimate=[], ci_low=[], ci_high=[], p_value=[], n_items=[], n_seeds=[], n_runs=[]), \
            np.zeros((0, cb.n_boot))
    point, boot, n = cb.contrast(rows)
    return pd.concat([keys.reset_index(drop=True), summarise(point, boot), n], axis=1), boot
