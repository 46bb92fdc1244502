"""The item table as the analyses read it (`check_items`): every column present and of its type, language labels
canonical, and one verdict per (model, task, mixture, language, item, seed).

Language labels are resolved once here, at the entry, with `langmix.languages.resolve` (a code in any case, a
name, a BCP-47 tag: 'EN', 'English', 'en-US' are all 'en'): the analyses compare codes literally (English is
'en'; a language is seen in training when its code is in `train_languages`), so a table labelled otherwise would
give every finding silently wrong. An unknown label is refused, naming it and its column.

A mixture's facts (`design`, `train_languages`, `n_train_languages`) are one per (model, mixture) and
`n_train_languages` counts `train_languages`: every cell takes its facts from its first row, so a mixture whose
rows disagree (another training set in one seed, a count that is not its languages') would be analysed as whichever
row came first, with a language seen or unseen by the row order. Such a table is refused naming the mixture.
Likewise a model's size (`model_params`) is one per model and a language's `resource` group one per language: the
capacity analysis read a model's size, and the resource analyses a language's group, from a cell's first row.

A repeated (model, task, mixture, language, source_id, seed) key is refused, not dropped: the bootstrap would
average the two verdicts and count the second run as one more, and whether the rows are a run stored twice, a
file read twice or two evaluations of one trained model, only the user can say which rows are right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from langmix.errors import UserInputError
from langmix.languages import UnknownLanguageError, resolve

REQUIRED: tuple[str, ...] = ("model", "model_params", "mixture", "design", "train_languages", "n_train_languages",
                             "task", "language", "resource", "seed", "source_id", "correct")
KEYED: tuple[str, ...] = ("model", "task", "mixture", "language", "seed", "source_id", "design", "train_languages")
UNIQUE_KEY: tuple[str, ...] = ("model", "task", "mixture", "language", "source_id", "seed")
INTEGERS: tuple[str, ...] = ("model_params", "n_train_languages")
MIXTURE_FACTS: tuple[str, ...] = ("design", "train_languages", "n_train_languages")


class AnalysisError(ValueError):
    """The table cannot support the requested analysis."""


class ItemTableError(AnalysisError, UserInputError):
    """The item table itself is malformed (a missing column, a wrong type, an unknown language, a repeated verdict):
    a bad input the user fixes, so the CLI prints it as one line."""


def listed(labels: list[str], shown: int = 5, sep: str = ", ") -> str:
    """The first `shown` labels, and how many more there are: "a, b, c, d, e and 3 more" (every name list a
    finding, warning or error gives)."""
    return sep.join(labels[:shown]) + (f" and {len(labels) - shown} more" if len(labels) > shown else "")


def train_set(train_languages: str) -> frozenset[str]:
    return frozenset(x for x in str(train_languages).split(",") if x)


def verdicts(col: pd.Series, column: str, items: pd.DataFrame | None = None) -> np.ndarray:
    """The column as floats (NaN where missing), refused unless it holds verdicts: booleans, or the numbers 0 and 1,
    with None/NaN where unscored. A text 'True'/'False' column would otherwise fail deep in the bootstrap, and a 2
    (or -1, 0.5) would be averaged into an "accuracy" above 1 (or a wrong one): every cell mean is a proportion.
    `items` (the frame `col` is a column of) lets the refusal name a run holding such values."""
    if pd.api.types.is_bool_dtype(col.dtype) or (pd.api.types.is_numeric_dtype(col.dtype)
                                                  and not isinstance(col.dtype, pd.CategoricalDtype)):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        bad = [v for v in pd.unique(col.dropna()) if not isinstance(v, (bool, np.bool_, int, float, np.number))]
        if bad:
            raise ItemTableError(f"the item table's {column!r} column must hold booleans (True/False; None where "
                                 f"unscored), but it holds {type(bad[0]).__name__} values such as {bad[0]!r} "
                                 f"(convert it, e.g. .map({{'True': True, 'False': False}}))")
        values = col.astype(object).to_numpy(dtype=np.float64, na_value=np.nan)
    other = ~np.isnan(values) & (values != 0.0) & (values != 1.0)
    if other.any():
        _refuse_non_verdicts(values, other, column, items)
    return values


def _refuse_non_verdicts(values: np.ndarray, other: np.ndarray, column: str, items: pd.DataFrame | None) -> None:
    at = np.flatnonzero(other)
    where = ""
    if items is not None:
        first = items.iloc[at[0]]
        run_cols = [c for c in ("eval_hash", "model", "mixture", "task", "seed") if c in items.columns]
        in_run = (items.iloc[at][run_cols] == first[run_cols]).all(axis=1).to_numpy()
        what = "/".join(str(first[c]) for c in ("model", "mixture", "task") if c in items.columns)
        name = f"run {first['eval_hash']} ({what} seed {first['seed']})" if "eval_hash" in items.columns else \
            f"run {what} seed {first['seed']}"
        where = f" in {name}, {int(in_run.sum())} of its rows"
    raise ItemTableError(f"the item table's {column!r} column must hold verdicts (True/False or 1/0; None where "
                         f"unscored), but {len(at)} rows hold other values, e.g. {values[at[0]]:g}{where}; they would "
                         f"be averaged into proportions that are no accuracy (fix the scorer's output or map them to "
                         f"True/False)")


def _check_integers(items: pd.DataFrame) -> None:
    for column in INTEGERS:
        col = items[column]
        ok = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
        values = col.to_numpy(dtype=np.float64, na_value=np.nan) if ok else None
        if values is None or np.isnan(values).any() or not np.all(values == np.round(values)):
            raise ItemTableError(f"the item table's {column!r} column must hold whole numbers on every row (it has "
                                 f"dtype {col.dtype})")


def _language(label, column: str, entry=None) -> str:
    try:
        return resolve(label).code
    except UnknownLanguageError as exc:
        within = f" (in {entry!r})" if entry is not None and entry != label else ""
        raise ItemTableError(f"the item table's {column!r} column holds {label!r}{within}, which is not a language "
                             f"langmix knows: {exc}") from None


def _canonical(col: pd.Series, column: str) -> pd.Series | None:
    """`col` with each label replaced by its registry code (each code of a comma-separated `train_languages`, a set
    written in another order written as it was first: "sw,en" as "en,sw"; `response_language` keeps a label the
    registry does not know: a response in some other language); None when every label is already canonical."""
    labels = pd.unique(col.dropna())
    mapping = {}
    first_of_set: dict[frozenset[str], str] = {}
    for label in labels:
        if column == "train_languages":
            codes = ",".join(_language(x, column, label) for x in str(label).split(",") if x.strip())
            mapping[label] = first_of_set.setdefault(frozenset(codes.split(",")), codes)
        elif column == "response_language":
            try:
                mapping[label] = resolve(label).code
            except UnknownLanguageError:
                mapping[label] = label
        else:
            mapping[label] = _language(label, column)
    if all(k == v for k, v in mapping.items()):
        return None
    return col.astype(object).map(mapping)


def _refuse_repeats(items: pd.DataFrame) -> None:
    keys = list(UNIQUE_KEY)
    repeated = items.duplicated(subset=keys, keep=False).to_numpy()
    if not repeated.any():
        return
    rows = items.loc[repeated, keys + (["eval_hash"] if "eval_hash" in items.columns else [])]
    first = rows.iloc[0]
    same = rows[(rows[keys] == first[keys]).all(axis=1)]
    where = "/".join(str(first[k]) for k in ("model", "task", "mixture", "language"))
    n_keys = len(rows.drop_duplicates(subset=keys))
    if "eval_hash" in rows.columns:
        runs = list(dict.fromkeys(same["eval_hash"].astype(str)))
        how = (f"in runs {runs[0]} and {runs[1]}" if len(runs) > 1 else f"twice in run {runs[0]}")
        fix = ("keep one run of each model, mixture and seed" if len(runs) > 1 else "drop the repeated rows")
    else:
        how, fix = f"{len(same)} times", "keep one row per item and seed"
    raise ItemTableError(f"{n_keys} (model, task, mixture, language, source_id, seed) keys of the item table have "
                         f"more than one verdict, e.g. {where} item {first['source_id']} seed {first['seed']} {how}; "
                         f"they would be averaged and counted as more runs: {fix}")


def _distinct(items: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The distinct combinations of `columns` with their rows' count (`n_rows`), from integer codes: 50 ms on a
    1M-row table, where drop_duplicates over text columns takes several times that."""
    codes, sizes = [], []
    for column in columns:
        k, labels = pd.factorize(items[column], sort=False)
        codes.append(k.astype(np.int64))
        sizes.append(max(len(labels), 1))
    if float(np.prod(np.array(sizes, dtype=float))) < 2.0 ** 62:
        flat = np.ravel_multi_index(tuple(codes), tuple(sizes))
    else:  # too many combinations for one integer key: factorise them in two steps
        flat = pd.factorize(pd.MultiIndex.from_arrays(codes))[0]
    _, first, n_rows = np.unique(flat, return_index=True, return_counts=True)
    return items.iloc[first][columns].reset_index(drop=True).assign(n_rows=n_rows)


def _refuse_contradictory_mixtures(items: pd.DataFrame) -> None:
    """One set of mixture facts per (model, mixture), its count its languages' (`MIXTURE_FACTS`)."""
    keys = ["model", "mixture"]
    facts = _distinct(items, keys + list(MIXTURE_FACTS))
    counted = np.array([len([x for x in str(tl).split(",") if x]) for tl in facts["train_languages"]])
    wrong = facts[counted != facts["n_train_languages"].to_numpy(dtype=np.int64)]
    if len(wrong):
        w = wrong.iloc[0]
        example = (f"mixture {w['model']}/{w['mixture']}: train_languages {w['train_languages']!r} but "
                   f"n_train_languages {int(w['n_train_languages'])} on {int(w['n_rows'])} rows")
        raise ItemTableError(
            f"{int(wrong['n_rows'].sum())} rows of the item table give n_train_languages that is not the number of "
            f"their train_languages, e.g. {example}; fix the rows (the analyses read coverage from "
            f"n_train_languages and what is seen from train_languages)")
    versions = facts.groupby(keys, sort=False)["n_rows"].transform("size").to_numpy()
    if (versions > 1).any():
        clash = facts[versions > 1]
        m = clash.iloc[0]
        mine = clash[(clash["model"] == m["model"]) & (clash["mixture"] == m["mixture"])]
        rows = (items["model"] == m["model"]).to_numpy() & (items["mixture"] == m["mixture"]).to_numpy()
        sides = []
        for f in mine.itertuples(index=False):
            these = rows & (items["train_languages"] == f.train_languages).to_numpy() \
                & (items["design"] == f.design).to_numpy()
            seeds = sorted(pd.unique(items["seed"].to_numpy()[these]).tolist())
            sides.append(f"{f.design} on {f.train_languages!r} ({f.n_rows} rows, seeds "
                         f"{', '.join(str(x) for x in seeds)})")
        n_mix = len(clash.drop_duplicates(keys))
        raise ItemTableError(
            f"{n_mix} {'mixture' if n_mix == 1 else 'mixtures'} of the item table {'has' if n_mix == 1 else 'have'} "
            f"rows that disagree on what the mixture trains, e.g. "
            f"{m['model']}/{m['mixture']}: {' vs '.join(sides)}; each cell would take its first row's, so one name "
            f"must mean one training set and design (rename the mixture of the other runs or fix their rows)")


def _refuse_contradictory_facts(items: pd.DataFrame, owner: str, fact: str) -> None:
    """One value of `fact` per value of `owner` (a model's size, a language's resource group)."""
    facts = _distinct(items, [owner, fact])
    versions = facts.groupby(owner, sort=False)["n_rows"].transform("size").to_numpy()
    if (versions > 1).any():
        clash = facts[versions > 1]
        first = clash.iloc[0][owner]
        sides = sorted(f"{v!r} on {n} rows" for v, n in clash.loc[clash[owner] == first, [fact, "n_rows"]]
                       .itertuples(index=False))
        n_owner = clash[owner].nunique()
        raise ItemTableError(
            f"{n_owner} {owner}{'' if n_owner == 1 else 's'} of the item table {'has' if n_owner == 1 else 'have'} "
            f"rows that disagree on its {fact}, e.g. {owner} {first}: {' vs '.join(sides)}; each cell would take "
            f"its first row's, so fix the rows (one {fact} per {owner})")


def check_items(items: pd.DataFrame) -> pd.DataFrame:
    """The table the analyses read: checked (columns, types, blank keys, unknown languages, contradictory mixture
    facts and repeated verdicts are refused with an `ItemTableError` naming the column or rows) and with canonical
    language codes in `language`, `train_languages` and `response_language` (the same frame where they already
    are)."""
    missing = [c for c in REQUIRED if c not in items.columns]
    if missing:
        raise ItemTableError(f"the item table lacks columns {missing} (expected the fields of "
                             f"langmix.records.ItemRow)")
    if items.empty:
        raise ItemTableError("the item table is empty")
    for column in KEYED:
        blank = int(items[column].isna().sum())
        if blank:  # a blank key would merge rows into a phantom item or seed, or fail deep in the bootstrap
            raise ItemTableError(f"{blank} of {len(items)} rows of the item table have no {column}; every row needs "
                                 f"one (drop or fill those rows)")
    verdicts(items["correct"], "correct", items)
    _check_integers(items)
    changed = {}
    for column in ("language", "train_languages", "response_language"):
        if column in items.columns:
            new = _canonical(items[column], column)
            if new is not None:
                changed[column] = new
    if changed:
        items = items.assign(**changed)
    _refuse_contradictory_mixtures(items)
    _refuse_contradictory_facts(items, "model", "model_params")
    _refuse_contradictory_facts(items, "language", "resource")
    _refuse_repeats(items)
    return items
