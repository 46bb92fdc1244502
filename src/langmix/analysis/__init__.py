"""The study's questions, answered with paired-bootstrap confidence intervals over the item-level table.

Each analysis is a function over the item-level table (columns of `langmix.records.ItemRow`) or over its
bootstrapped cell means (`core.cell_bootstrap`), returning a tidy pandas frame with estimate, 95% CI, p-value and
n (items, seeds, runs). `run_all` runs every analysis the table supports and records why the others cannot run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from langmix.analysis.contrasts import CANNOT
from langmix.analysis.core import N_BOOT, AnalysisError, CellBoot, bootstrap_checked, cell_bootstrap, check_items
from langmix.analysis.coverage import capacity, coverage_curves, resource_gains
from langmix.analysis.fidelity import fidelity, fidelity_cells, fidelity_checked, fidelity_pooled
from langmix.analysis.minimal import en_plus_one, relative_gain, zero_shot_vs_inclusion
from langmix.analysis.typology import typology

log = logging.getLogger(__name__)


@dataclass
class Analyses:
    """Every analysis's frames (name -> frame) and, for those that could not run, the reason."""

    cells: CellBoot
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def _fidelity(cb: CellBoot) -> dict[str, pd.DataFrame]:
    return {"fidelity": fidelity(cb), "fidelity_pooled": fidelity_pooled(cb)}


def run_all(items: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> Analyses:
    items = check_items(items)  # canonical language codes; a malformed table is refused here, in one line
    cb = bootstrap_checked(items, n_boot=n_boot, seed=seed)
    out = Analyses(cells=cb)
    steps = {
        "coverage": lambda: {"coverage": coverage_curves(cb), "coverage_pooled": coverage_curves(cb, pooled=True)},
        "resource": lambda: dict(zip(("resource_gains", "plateau"), resource_gains(cb))),
        "en_plus_one": lambda: {"en_plus_one": en_plus_one(cb)},
        "relative_gain": lambda: {"relative_gain": relative_gain(cb)},
        "zero_shot": lambda: {"zero_shot": zero_shot_vs_inclusion(cb)},
        "typology": lambda: dict(zip(("typology_languages", "typology_regression"), typology(cb))),
        "capacity": lambda: {"capacity": capacity(cb)},
        "fidelity": lambda: _fidelity(fidelity_checked(items, n_boot=n_boot, seed=seed + 1)),
    }
    for name, step in steps.items():
        try:
            frames = step()
            if all(frame.empty for frame in frames.values()):
                raise AnalysisError("the table has no cells this analysis compares (e.g. no fine-tuned run, or no "
                                    "mixture of the kind it needs)")
        except AnalysisError as err:
            out.missing[name] = str(err)
            log.info("analysis %s skipped: %s", name, err)
            continue
        out.frames.update({key: frame for key, frame in frames.items() if not frame.empty})
        out.missing.update({key: frame.attrs[CANNOT] for key, frame in frames.items()
                            if frame.empty and frame.attrs.get(CANNOT)})
    return out


__all__ = ["Analyses", "AnalysisError", "CellBoot", "run_all", "cell_bootstrap", "coverage_curves", "resource_gains",
           "capacity", "en_plus_one", "relative_gain", "zero_shot_vs_inclusion", "typology", "fidelity",
           "fidelity_cells", "fidelity_pooled"]
