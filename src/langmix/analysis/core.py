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
number (the fewest and the most of a contrast's cells). A fine-tuned cell with one seed, which seed resampling
cannot vary, borrows the run-to-run variance of the cells with several (`resample.borrowed_run_sd`), drawn on the
logit scale so that its replicates stay proportions (`resample.with_run_draws`: no interval leaves [0, 1]).

The table is read through `table.check_items` (types, canonical language codes, one verdict per item and seed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from langmix.analysis.resample import TaskData, borrowed_run_sd, draw, replicate_means, task_arrays, \
    with_run_draws
from langmix.analysis import stats
from langmix.analysis.stats import ZERO_TOLERANCE, _snap, adjust, holm, summarise
from langmix.analysis.table import AnalysisError, ItemTableError, check_items, listed, train_set, verdicts
from langmix.records import ItemRow

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = tuple(ItemRow.model_fields)
CELL_KEYS: tuple[str, ...] = ("model", "task", "mixture", "language")
N_BOOT = 1000
# the n every contrast reports (`CellBoot._n`)
N_COLUMNS: tuple[str, ...] = ("n_items", "n_seeds", "n_seeds_min", "n_runs", "n_rows", "n_no_verdict")


ALPHA = stats.ALPHA
# re-exported: the analyses and the planner import these from here
__all__ = ["ALPHA", "N_BOOT", "ZERO_TOLERANCE", "AnalysisError", "CellBoot", "ItemTableError", "adjust",
           "bootstrap_checked", "cell_bootstrap", "check_items", "holm", "summarise", "train_set"]


def codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and their labels; fast for categoricals."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        c = col.cat.remove_unused_categories()
        return c.cat.codes.to_numpy(np.int64), pd.Index(c.cat.categories)
    k, labels = pd.factorize(col, sort=True)
    return k.astype(np.int64), pd.Index(labels)


@dataclass
class CellBoot:
    """Bootstrapped cell means. `cells` has one row per cell (keys, design facts, n); `boot` is (cells x B);
    `tasks` keeps each task's verdicts and draws, so a contrast can recompute cells on the items they share."""

    cells: pd.DataFrame
    point: np.ndarray
    boot: np.ndarray
    n_boot: int
    value: str
    tasks: dict[str, TaskData] = field(default_factory=dict)
    seed: int = 0
    index: dict[tuple, int] = field(default_factory=dict)

    english_only: dict[tuple[str, str], str] = field(default_factory=dict)
    # per borrowing cell, the standard normal run-to-run draws that moved its `boot` row (with_run_draws)
    noise: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = list(CELL_KEYS)
        self.index = {tuple(r): i for i, r in enumerate(self.cells[keys].itertuples(index=False, name=None))}
        eo = self.cells[self.cells["design"] == "english_only"]
        for model, task, mixture in eo[["model", "task", "mixture"]].itertuples(index=False, name=None):
            self.english_only.setdefault((model, task), mixture)
        # per cell: its row in its task's arrays, and an id of its item set (equal ids: the same items)
        self._local = np.full(len(self.cells), -1, dtype=np.int64)
        self._sig = np.full(len(self.cells), -1, dtype=np.int64)
        self._n_present = np.zeros(len(self.cells), dtype=np.int64)  # items in every seed of the cell
        self._n_any = np.zeros(len(self.cells), dtype=np.int64)  # items in any seed
        offset = 0
        for td in self.tasks.values():
            self._local[td.cells] = np.arange(len(td.cells))
            presence = td.presence
            _, inv = np.unique(presence, axis=0, return_inverse=True)
            sig = np.asarray(inv).ravel() + offset
            offset += int(np.max(inv)) + 1 if len(td.cells) else 0
            sig[td.ragged] = offset + np.arange(int(td.ragged.sum()))  # seeds on different items: like no other
            offset += int(td.ragged.sum())
            self._sig[td.cells] = sig
            self._n_present[td.cells] = presence.sum(axis=1)
            self._n_any[td.cells] = td.n_any
        self._run_sd = (self.cells["run_sd_logit"].to_numpy(dtype=float) if "run_sd_logit" in self.cells
                        else np.full(len(self.cells), np.nan))  # on the logit scale
        self._masks: dict[tuple, tuple[np.ndarray, int]] = {}
        self._cache: dict[tuple, tuple[float, np.ndarray]] = {}
        self._warned: set[tuple] = set()

    def cell(self, model: str, task: str, mixture: str, language: str) -> int | None:
        return self.index.get((model, task, mixture, language))

    def _matrix(self, rows: list[dict[int, float]]) -> sparse.csr_matrix:
        data, ri, ci = [], [], []
        for r, coefs in enumerate(rows):
            for c, w in coefs.items():
                ri.append(r)
                ci.append(c)
                data.append(w)
        return sparse.csr_matrix((data, (ri, ci)), shape=(len(rows), len(self.cells)))

    def contrast(self, rows: list[dict[int, float]], match: list | None = None
                 ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Point estimates, replicates and n for each contrast (a dict cell index -> coefficient).

        A contrast compares cells on the items they share: within a row, the cells of one task and language are
        restricted to the items every one of them was evaluated on in every one of its seeds (paired by source
        id; a cell whose seeds saw different items is restricted too), and n counts those items. By default a
        row's cells are matched where it compares (coefficients of both signs); a plain mean keeps every item of
        each cell. `match` (per row, the cells to match; they may lie outside the row, e.g.
        the denominator of a ratio) overrides that. Cells with the same items (a normal study) are untouched."""
        a = self._matrix(rows)
        point, boot = a @ self.point, np.asarray(a @ self.boot)
        swaps, n_over = self._matched(rows, match)
        if swaps:
            means = self._restricted({(c, k) for _, c, _, k in swaps})
            point, boot = np.array(point, dtype=float), np.array(boot, dtype=float)
            for r, c, w, k in swaps:
                p, b = means[(c, k)]
                point[r] += w * (p - self.point[c])
                boot[r] += w * (b - self.boot[c])
        return point, boot, self._n(rows, n_over)

    def _matched(self, rows: list[dict[int, float]], match: list | None
                 ) -> tuple[list[tuple[int, int, float, tuple]], list[dict[int, int]]]:
        """(row, cell, coefficient, item-set key) for each cell a row must restrict; per row, cell -> items used."""
        task = self.cells["task"].to_numpy()
        lang = self.cells["language"].to_numpy()
        swaps: list[tuple[int, int, float, tuple]] = []
        n_over: list[dict[int, int]] = [{} for _ in rows]
        dropped: dict[tuple, int] = {}
        for r, coefs in enumerate(rows):
            if match is not None:
                members = list(match[r])
            else:
                members = list(coefs) if (any(w > 0 for w in coefs.values())
                                          and any(w < 0 for w in coefs.values())) else []
            if len(members) < 2 or len({self._sig[c] for c in members}) == len({task[c] for c in members}):
                continue  # one item set per task: nothing to restrict
            groups: dict[tuple, list[int]] = {}
            for c in members:
                groups.setdefault((task[c], lang[c]), []).append(int(c))
            for cs in groups.values():
                if len(cs) < 2 or len({self._sig[c] for c in cs}) == 1:
                    continue
                key, shared = self._shared(cs, dropped)
                for c in cs:
                    n_over[r][c] = shared
                    w = coefs.get(c, 0.0)
                    if w and self._n_any[c] > shared:
                        swaps.append((r, c, w, key))
        if dropped:
            total = sum(dropped.values())
            shown = listed([f"{t}/{lang_}: " + ", ".join(f"{m} {n}" + (f" ({p} in every seed)" if p < n else "")
                                                         for m, n, p in sides) + f" -> {s} shared"
                            for (t, lang_, sides, s) in dropped], sep="; ")
            log.warning("%d comparisons are between cells evaluated on different items (or whose seeds were); each is "
                        "computed over the items both sides share (in every seed), dropping %d item verdicts per "
                        "seed: %s", len(dropped), total, shown)
        return swaps, n_over

    def _shared(self, cs: list[int], dropped: dict[tuple, int]) -> tuple[tuple, int]:
        """The item-set key and count of the items every cell in `cs` (one task and language) was evaluated on."""
        c0 = self.cells.iloc[cs[0]]
        td = self.tasks[c0["task"]]
        mask = td.presence[self._local[cs]].all(axis=0)
        shared = int(mask.sum())
        labels = self.cells.iloc[cs][["model", "mixture"]].agg("/".join, axis=1).tolist()
        sides = tuple(sorted(zip(labels, self._n_any[cs].tolist(), self._n_present[cs].tolist())))
        if shared == 0:
            raise AnalysisError(f"{c0['task']}/{c0['language']}: " + ", ".join(
                f"{m} ({n} items" + (f", {p} in every seed)" if p < n else ")") for m, n, p in sides)
                + " share no item, so they cannot be compared (evaluate them on the same items)")
        key = (c0["task"], mask.tobytes())
        self._masks.setdefault(key, (mask, shared))
        what = (c0["task"], c0["language"], sides, shared)
        if what not in self._warned:
            self._warned.add(what)
            dropped[what] = sum(n - shared for _, n, _ in sides)
        return key, shared

    def _restricted(self, keys: set[tuple[int, tuple]], draws: dict | None = None,
                    noise: dict[int, np.ndarray] | None = None) -> dict[tuple[int, tuple], tuple[float, np.ndarray]]:
        """Point and replicate means of each (cell, item-set key) on that item set, under the main draws (cached)
        or under `draws` (task -> (wi, ws)), with the borrowed run-to-run draws of those draws (`noise`)."""
        noise = self.noise if draws is None else (noise or {})
        out, todo = {}, {}
        for c, k in keys:
            if draws is None and (c, k) in self._cache:
                out[(c, k)] = self._cache[(c, k)]
            else:
                todo.setdefault(k, []).append(c)
        for k, cs in todo.items():
            td = self.tasks[k[0]]
            mask = self._masks[k][0]
            loc = self._local[cs]
            wi, ws = (td.wi, td.ws) if draws is None else draws[k[0]]
            p, b = replicate_means(td.sums[loc] * mask[None, :, None], td.cnt[loc] * mask[None, :, None], wi, ws)
            for i, c in enumerate(cs):
                out[(c, k)] = (float(p[i]), with_run_draws(b[i], noise[c], self._run_sd[c]) if c in noise else b[i])
                if draws is None:
                    self._cache[(c, k)] = out[(c, k)]
        return out

    def sign_counts(self, rows: list[dict[int, float]], n_extra: int, match: list | None = None,
                    chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """Per row, how many of `n_extra` fresh replicates (new draws, independent of `boot`) are <= 0 and >= 0:
        more resolution for p-values than the intervals need (`holm`)."""
        a = self._matrix(rows)
        swaps, _ = self._matched(rows, match)
        needed = np.unique(np.concatenate([a.indices, np.array([c for _, c, _, _ in swaps], dtype=np.int64)]))
        task = self.cells["task"].to_numpy()
        rng = np.random.default_rng([self.seed, 1, n_extra])
        below, above = np.zeros(len(rows)), np.zeros(len(rows))
        done = 0
        while done < n_extra:
            b = min(chunk, n_extra - done)
            full = np.zeros((len(self.cells), b))
            draws = {}
            for t in sorted(set(task[needed])):
                td = self.tasks[t]
                draws[t] = draw(rng, td.wi.shape[0], td.ws.shape[1], b)
                cs = needed[task[needed] == t]
                full[cs] = replicate_means(td.sums[self._local[cs]], td.cnt[self._local[cs]], *draws[t])[1]
            fresh = {int(c): rng.standard_normal(b) for c in needed if self._run_sd[c] > 0}
            for c, z in fresh.items():
                full[c] = with_run_draws(full[c], z, self._run_sd[c])
            rep = np.asarray(a @ full)
            if swaps:
                means = self._restricted({(c, k) for _, c, _, k in swaps}, draws, fresh)
                for r, c, w, k in swaps:
                    rep[r] += w * (means[(c, k)][1] - full[c])
            rep = _snap(rep)
            below += (rep <= 0).sum(axis=1)
            above += (rep >= 0).sum(axis=1)
            done += b
        return below, above

    def _n(self, rows: list[dict[int, float]], n_over: list[dict[int, int]] | None = None) -> pd.DataFrame:
        """Per contrast: items (per task the most any of its cells uses, summed over tasks: the bootstrap resamples
        each task's items; a cell restricted to the items it shares counts those), seeds (the most and, as
        `n_seeds_min`, the fewest of any cell: a side with one seed is not backed by two), runs, and the verdicts
        that enter the estimate: `n_rows`, summed over the row's cells, and `n_no_verdict`, those cells' rows with
        no verdict (unscored, or their language not judged: `cells["n_no_verdict"]`, counted from the rows), which
        are in no mean; an item with no verdict in any seed is in no item count but is in `n_no_verdict`, and an
        answer never made (an item one seed did not evaluate) is in neither. A cell restricted to the items it has
        in every seed has a verdict on each of them in each seed."""
        ni = self.cells["n_items"].to_numpy()
        ns = self.cells["n_seeds"].to_numpy()
        nr = self.cells["n_runs"].to_numpy()
        nv = self.cells["n_rows"].to_numpy()
        nn = self.cells["n_no_verdict"].to_numpy()
        run_key = self.cells.groupby(["model", "task", "mixture"], sort=False).ngroup().to_numpy()
        task_key = self.cells.groupby("task", sort=False).ngroup().to_numpy()
        out = []
        for r, coefs in enumerate(rows):
            idx = np.fromiter(coefs, dtype=np.int64, count=len(coefs))
            if len(idx) == 0:
                out.append((0, 0, 0, 0, 0, 0))
                continue
            over = n_over[r] if n_over else {}
            runs = dict(zip(run_key[idx].tolist(), nr[idx].tolist()))
            items: dict[int, int] = {}  # tasks have their own items: a contrast over two tasks has both sets
            verdicts, missing = 0, 0
            for c, task, n in zip(idx.tolist(), task_key[idx].tolist(), ni[idx].tolist()):
                items[task] = max(items.get(task, 0), over.get(c, n))
                if c in over:
                    verdicts += int(over[c] * ns[c])
                else:
                    verdicts += int(nv[c])
                    missing += int(nn[c])
            out.append((int(sum(items.values())), int(ns[idx].max()), int(ns[idx].min()), int(sum(runs.values())),
                        verdicts, missing))
        return pd.DataFrame(out, columns=list(N_COLUMNS))

    def n_of(self, rows: list[dict[int, float]], match: list | None = None) -> pd.Series:
        """The n of a figure pooled over several contrast rows (`_n`'s columns): its cells counted once each (a
        cell in several rows, such as an English-only cell every gain subtracts, is one cell's verdicts), a cell
        restricted to shared items in some row counted on the fewest it is restricted to."""
        _, n_over = self._matched(rows, match)
        union: dict[int, float] = {}
        over: dict[int, int] = {}
        for coefs, o in zip(rows, n_over):
            for c in coefs:
                union[c] = 1.0
            for c, n in o.items():
                over[c] = min(over.get(c, n), n)
        return self._n([union], [over]).iloc[0]


def per_cell_n(cells: pd.DataFrame) -> dict[str, int]:
    """The n of a figure of cells (`CellBoot.cells`): the most items and the fewest and most seeds of a cell, the
    verdicts of all of them (`n_rows`) and the answers of their items and seeds that have none (`n_no_verdict`)."""
    return {"n_items": int(cells["n_items"].max()), "n_seeds_min": int(cells["n_seeds"].min()),
            "n_seeds": int(cells["n_seeds"].max()), "n_rows": int(cells["n_rows"].sum()),
            "n_no_verdict": int(cells["n_no_verdict"].sum())}


def _rows_without_verdict(cell_all: np.ndarray, y_all: np.ndarray, mask: np.ndarray | None,
                          uniq: np.ndarray) -> np.ndarray:
    """Per cell (`uniq`, the cells with a verdict), its rows without one (a value None: unscored, or a language not
    judged), counted from the rows themselves: an item with no verdict in any seed is in no item count, so items x
    seeds minus verdicts missed it."""
    gone = np.isnan(y_all) if mask is None else (np.asarray(mask, bool) & np.isnan(y_all))
    at = np.searchsorted(uniq, cell_all[gone])
    hit = at < len(uniq)
    hit[hit] = uniq[at[hit]] == cell_all[gone][hit]
    return np.bincount(at[hit], minlength=len(uniq)).astype(np.int64)


def cell_bootstrap(items: pd.DataFrame, value: str = "correct", mask: np.ndarray | None = None,
                   n_boot: int = N_BOOT, seed: int = 0) -> CellBoot:
    """Bootstrap every (model, task, mixture, language) mean of `value` (rows where `mask` is False are dropped)."""
    return bootstrap_checked(check_items(items), value, mask, n_boot, seed)


def bootstrap_checked(items: pd.DataFrame, value: str = "correct", mask: np.ndarray | None = None,
                      n_boot: int = N_BOOT, seed: int = 0) -> CellBoot:
    """`cell_bootstrap` of a table `check_items` returned (callers that checked it once skip the second check:
    0.3 s on a 1M-row table)."""
    y_all = verdicts(items[value], value, items)
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
    cell_all = np.ravel_multi_index(tuple(key_codes), dims)
    cell_full = cell_all[keep]
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
    tasks: dict[str, TaskData] = {}
    for t in np.unique(cell_task):
        sel_cells = np.flatnonzero(cell_task == t)
        rows = np.flatnonzero(task_code == t)
        local = np.searchsorted(sel_cells, cell[rows])
        it, it_inv = np.unique(item_code[rows], return_inverse=True)
        st, st_inv = np.unique(seed_code[rows], return_inverse=True)
        sums, cnt = task_arrays(local, it_inv, st_inv, y[rows], len(sel_cells), len(it), len(st))
        wi, ws = draw(rng, len(it), len(st), n_boot)
        p, b = replicate_means(sums, cnt, wi, ws)
        point[sel_cells] = p
        boot[sel_cells] = b
        tasks[str(key_labels[1][t])] = TaskData(cells=sel_cells, sums=sums, cnt=cnt, wi=wi, ws=ws)
    # per-cell facts and n
    frame = pd.DataFrame({"cell": cell, "item": item_code, "seed": seed_code, "run": run_code})
    n = frame.groupby("cell").agg(n_items=("item", "nunique"), n_seeds=("seed", "nunique"), n_runs=("run", "nunique"),
                                  n_rows=("item", "size"))
    unr = np.unravel_index(uniq, dims)
    cells = pd.DataFrame({k: np.asarray(lab)[u] for k, lab, u in zip(CELL_KEYS, key_labels, unr)})
    for k in CELL_KEYS:
        cells[k] = cells[k].astype(str)
    # a cell's facts are its first row's: check_items refused a table whose mixture's rows disagree on them
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
    cells["n_no_verdict"] = _rows_without_verdict(cell_all, y_all, mask, uniq)
    cells["mean"] = point
    cells["run_sd_borrowed"], cells["run_sd_logit"] = borrowed_run_sd(cells, tasks)
    noise = {}
    logit_sd = cells["run_sd_logit"].to_numpy()
    borrowers = np.flatnonzero(logit_sd > 0)
    if len(borrowers):
        z = np.random.default_rng([seed, 2]).standard_normal((len(borrowers), n_boot))
        boot[borrowers] = with_run_draws(boot[borrowers], z, logit_sd[borrowers, None])
        noise = dict(zip(borrowers.tolist(), z))
    log.debug("bootstrapped %d cells x %d replicates", n_cells, n_boot)
    return CellBoot(cells=cells, point=point, boot=boot, n_boot=n_boot, value=value, tasks=tasks, seed=seed,
                    noise=noise)
