"""The study report's figures (`langmix.report`), one per analysis: each states its n and what its intervals are
under it, as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from langmix.analysis import Analyses  # noqa: E402
from langmix.analysis.core import per_cell_n  # noqa: E402
from langmix.analysis.fidelity import PER_CELL_N  # noqa: E402
from langmix.analysis.findings import count, language_name as _name, seed_range  # noqa: E402

# Every label drawn as the literal string: names (mixtures, models) are free strings, and mathtext would render
# 'core$5$' as math and raise on 'core $\\nope{x}$' (an unknown symbol), failing the whole report.
LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}


def _save(fig, plots: Path, stem: str, note: str = "") -> Path:
    """PNG and SVG of `fig`, with `note` (its n and what its intervals are) printed under it."""
    png = plots / f"{stem}.png"
    if note:
        fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7, color="#444", wrap=True)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(png, dpi=100)
    fig.savefig(plots / f"{stem}.svg")
    plt.close(fig)
    return png


def _points(g: pd.DataFrame) -> pd.DataFrame:
    """An estimate and its interval in points (x 100)."""
    return g.assign(estimate=g["estimate"] * 100, ci_low=g["ci_low"] * 100, ci_high=g["ci_high"] * 100)


def _err(ax, x, g, col="estimate", **kw):
    ax.errorbar(x, g[col], yerr=[g[col] - g["ci_low"], g["ci_high"] - g[col]], capsize=2, **kw)


def figures(a: Analyses, plots: Path) -> dict[str, Path]:
    """Each analysis's figure, PNG and SVG under `plots`, by section; every label drawn as the literal string."""
    with plt.rc_context(LITERAL_TEXT):  # mixture and model names are free strings: '$x$' is a name, not math
        return _figures(a, plots)


def n_per_cell(n: dict, judged: str = "scored", unjudged: str = "unscored") -> str:
    """'n = up to 40 items x 2 seeds per cell' (`core.per_cell_n`), with how many answers of those items and seeds
    have no verdict and are left out, where some have none."""
    text = (f"n = up to {count(n['n_items'], 'item')} x "
            f"{seed_range(pd.Series([n['n_seeds_min'], n['n_seeds']]))} per cell")
    missing = int(n["n_no_verdict"])
    return text + (f" ({n['n_rows']} {judged} answers; {missing} {unjudged}, left out)" if missing > 0 else "")


def _figures(a: Analyses, plots: Path) -> dict[str, Path]:
    fr, out = a.frames, {}
    cells = a.cells.cells
    n_text = n_per_cell(per_cell_n(cells))

    def save(fig, stem: str, what: str = "bars and bands: 95% paired-bootstrap intervals", n: str = n_text) -> Path:
        return _save(fig, plots, stem, f"{n}; {what}")

    if "coverage_pooled" in fr:
        c = fr["coverage_pooled"]
        tasks = sorted(c["task"].unique())
        fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.8), squeeze=False)
        cmap = plt.get_cmap("viridis")
        models = sorted(c["model"].unique(), key=lambda m: (c[c["model"] == m]["model_params"].iloc[0], m))
        for ax, task in zip(axes[0], tasks):
            for i, m in enumerate(models):
                for part, ls in (("all", "-"), ("seen", "--"), ("unseen", ":")):
                    g = c[(c["task"] == task) & (c["model"] == m) & (c["part"] == part)].sort_values(
                        "n_train_languages")
                    if len(g):
                        _err(ax, g["n_train_languages"], g, col="mean", ls=ls, color=cmap(i / max(1, len(models) - 1)),
                             label=f"{m} {part}", lw=1, ms=3, marker="o")
            ax.set_title(f"{task}: mean over the non-English languages\nevaluated at every level (solid: all of them)",
                         fontsize=9)
            ax.set_xlabel("training languages")
            ax.set_ylabel("headline accuracy")
        axes[0][0].legend(fontsize=6, ncol=2)
        out["coverage"] = save(fig, "coverage")
    if "resource_gains" in fr:
        g = fr["resource_gains"]
        g = g[(g["model"] == "all") & (g["task"] == "all")]
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for res, color in (("high", "tab:blue"), ("low", "tab:orange")):
            s = g[g["resource"] == res].sort_values("n_train_languages")
            ax.plot(s["n_train_languages"], s["estimate"] * 100, marker="o", color=color, label=f"{res}-resource")
            ax.fill_between(s["n_train_languages"], s["ci_low"] * 100, s["ci_high"] * 100, color=color, alpha=0.2)
        if "plateau" in fr and not fr["plateau"].empty:
            for _, r in fr["plateau"][(fr["plateau"]["model"] == "all") & (fr["plateau"]["task"] == "all")].iterrows():
                if pd.isna(r["plateau"]):  # no plateau within the levels tested: no line
                    continue
                ax.axvline(r["plateau"], ls=":", color="tab:blue" if r["resource"] == "high" else "tab:orange")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("training languages")
        ax.set_ylabel("gain over English-only (points)")
        ax.set_title("Gain by resource group (dotted: plateau)")
        ax.legend(fontsize=8)
        out["resource"] = save(fig, "resource")
    if "en_plus_one" in fr:
        e = fr["en_plus_one"]
        e = e[(e["model"] == "all") & (e["task"] == "all") & (e["mixture"] != "all")]
        added = sorted(e["added"].unique())
        fig, ax = plt.subplots(figsize=(max(6, len(added) * 0.8), 3.8))
        for k, target in enumerate(("english", "added", "neither")):
            s = e[e["target"] == target].set_index("added").reindex(added)
            x = np.arange(len(added)) + (k - 1) * 0.25
            ax.bar(x, s["estimate"] * 100, 0.25, label=target)
            ax.errorbar(x, s["estimate"] * 100, yerr=[(s["estimate"] - s["ci_low"]) * 100,
                                                      (s["ci_high"] - s["estimate"]) * 100], fmt="none", color="k",
                        capsize=2, lw=0.8)
        ax.set_xticks(range(len(added)), [f"en+{x}" for x in added])
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel("gain over English-only (points)")
        ax.set_title("EN+1: gain on English, on the added language\nand on languages in neither mixture")
        ax.legend(fontsize=8)
        out["en_plus_one"] = save(fig, "en_plus_one")
    if "zero_shot" in fr:
        z = fr["zero_shot"]
        z = z[z["model"] == "all"]
        fig, ax = plt.subplots(figsize=(6, 0.5 * len(z) + 1.6))
        y = np.arange(len(z))
        ax.errorbar(z["estimate"] * 100, y, xerr=[(z["estimate"] - z["ci_low"]) * 100,
                                                  (z["ci_high"] - z["estimate"]) * 100], fmt="o", capsize=3)
        ax.set_yticks(y, [_name(x) for x in z["language"]])
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("held out of diverse mixture minus included in narrow one (points)")
        out["zero_shot"] = save(fig, "zero_shot")
    if "typology_languages" in fr:
        t = fr["typology_languages"]
        t = t[~t["seen"]].dropna(subset=["d_syntactic"])
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for res, color in (("high", "tab:blue"), ("low", "tab:orange")):
            s = t[t["resource"] == res]
            _err(ax, s["d_syntactic"], _points(s), fmt="o", color=color, label=f"{res}-resource")
            for _, r in s.iterrows():
                ax.annotate(r["language"], (r["d_syntactic"], r["estimate"] * 100), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xlabel("syntactic URIEL+ distance from English")
        ax.set_ylabel("zero-shot gain over English-only (points)")
        ax.legend(fontsize=8)
        out["typology"] = save(fig, "typology")
    if "capacity" in fr:
        c = fr["capacity"]
        c = c[c["term"] == "slope"]
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for task, s in c.groupby("task"):
            s = s.sort_values("model_params")
            _err(ax, s["model_params"], _points(s), marker="o", label=task)
        ax.set_xscale("log")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("parameters")
        ax.set_ylabel("points per added training language")
        ax.legend(fontsize=8)
        out["capacity"] = save(fig, "capacity")
    if "fidelity" in fr:
        d = fr["fidelity"]
        order = d.drop_duplicates("mixture").sort_values(["n_train_languages", "mixture"])["mixture"].tolist()
        piv = d.pivot_table(index="mixture", columns="language", values="share").reindex(order)
        fig, ax = plt.subplots(figsize=(max(6, piv.shape[1] * 0.6), 0.3 * len(piv) + 1.5))
        im = ax.imshow(piv.values * 100, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set_xticks(range(piv.shape[1]), piv.columns)
        ax.set_yticks(range(len(piv)), piv.index, fontsize=7)
        fig.colorbar(im, ax=ax, label="% responses in prompt language")
        out["fidelity"] = save(fig, "fidelity", "each cell's 95% interval is in the table of section 7",
                               n_per_cell(d.attrs[PER_CELL_N], "language-judged", "unjudged"))
    return out
