"""Small hand-built item tables (independent of `langmix.analysis.simulate`): a probability per (mixture, language,
item), seeds per mixture, an optional run-to-run shift per (mixture, seed, language)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

MIXTURES = {"en": ("english_only", "en"), "en+sw": ("en_plus_one", "en,sw"), "base": ("base", "")}


def hand_table(prob: Callable[[str, str, np.ndarray], np.ndarray], seeds: dict[str, tuple[int, ...]] | None = None,
               languages: tuple[str, ...] = ("en", "sw", "es"), n_items: int = 200, seed: int = 0,
               run_sd: float = 0.0, model: str = "tiny", task: str = "math") -> pd.DataFrame:
    """One row per (mixture, seed, language, item); `seeds` maps each mixture to its seeds (default: en and en+sw
    with seeds 0 and 1, no base model)."""
    rng = np.random.default_rng(seed)
    seeds = seeds or {"en": (0, 1), "en+sw": (0, 1)}
    items = np.arange(n_items)
    parts = []
    for mixture, mixture_seeds in seeds.items():
        design, train = MIXTURES[mixture]
        for s in mixture_seeds:
            for lang in languages:
                p = prob(mixture, lang, items) + (rng.normal(0, run_sd) if run_sd else 0.0)
                y = rng.random(n_items) < np.clip(p, 0, 1)
                parts.append(pd.DataFrame({
                    "study": "hand", "eval_hash": f"e-{model}-{mixture}-{task}-{s}", "model": model,
                    "model_params": 10**6, "mixture": mixture, "design": design, "train_languages": train,
                    "n_train_languages": len([x for x in train.split(",") if x]), "task": task,
                    "language": lang, "resource": "low" if lang == "sw" else "high", "seed": s,
                    "item_id": [f"{task}-{i}-{lang}" for i in items], "source_id": [f"{task}-{i}" for i in items],
                    "correct": y, "response_language": lang}))
    return pd.concat(parts, ignore_index=True)


def item_index(items: pd.DataFrame) -> pd.Series:
    return items["source_id"].str.split("-").str[1].astype(int)
