"""Findings in words: one sentence per question, generated from the analyses' frames, each with its 95% CI and n."""

from __future__ import annotations

import pandas as pd

from langmix.analysis import Analyses
from langmix.analysis.contrasts import NO_REFERENCE, NO_REFERENCE_BY_TARGET
from langmix.analysis.resample import fine_tuned
from langmix.analysis.table import listed
from langmix.languages import get


def language_name(code: str) -> str:
    try:
        return get(code).name
    except ValueError:
        return code


def signed(value: float, digits: int = 1) -> str:
    """A signed figure with `digits` decimals; a value that rounds to zero reads +0.0 (+0.000), never -0.0: the
    one formatter of every signed figure the findings, the report and the planner print."""
    text = f"{value:+.{digits}f}"
    return "+" + text[1:] if text.startswith("-") and float(text) == 0 else text


def _pp(value: float) -> str:
    return signed(value, 1)


NO_INTERVAL = ("no interval: every bootstrap resample gave the same value, so the data (too few items, or every "
               "answer alike) cannot show its uncertainty")


def _bracket(low: float, high: float, flat: bool = False, unit: str = "") -> str:
    """'[+0.8, +5.4]' (fractions shown as points, or as % with unit='%'), or '(no interval: ...)' where the
    interval has no width: `flat` (every bootstrap replicate alike), or equal ends. '[+0.0, +0.0]' would read as
    certainty, where it means the data cannot show uncertainty."""
    if flat or abs(high - low) <= 1e-12:
        return f"({NO_INTERVAL})"
    return f"[{_pp(low * 100)}{unit}, {_pp(high * 100)}{unit}]"


def _pts(row: pd.Series, col: str = "estimate") -> str:
    return f"{_pp(row[col] * 100)} points {_bracket(row['ci_low'], row['ci_high'], _degenerate(row))}"


def _p(value: float, label: str = "p") -> str:
    """'p=0.0123', or 'no p-value' where nothing was tested (an interval without width has no test)."""
    return "no p-value" if pd.isna(value) else f"{label}={value:.3g}"


def count(n, noun: str) -> str:
    """'1 seed', '2 seeds': a count with its noun, plural where it is not one."""
    return f"{int(n)} {noun}{'' if int(n) == 1 else 's'}"


def seed_range(n_seeds: pd.Series) -> str:
    """'2 seeds', or '1-2 seeds' where cells differ (the base model is evaluated once)."""
    low, high = int(n_seeds.min()), int(n_seeds.max())
    return count(high, "seed") if low == high else f"{low}-{high} seeds"


def _seeds(n_seeds, n_seeds_min=None) -> str:
    """'2 seeds', or '1-2 seeds' where the cells of a figure have different seed counts (`n_seeds_min`)."""
    low = n_seeds if n_seeds_min is None or pd.isna(n_seeds_min) else n_seeds_min
    return seed_range(pd.Series([low, n_seeds]))


def _items_seeds(n_items, n_seeds, n_seeds_min=None) -> str:
    return f"n={count(n_items, 'item')} x {_seeds(n_seeds, n_seeds_min)}"


def no_verdict_note(n_rows, n_no_verdict, judged: str = "scored", unjudged: str = "unscored") -> str:
    """'; 317 of the cells' 320 answers scored, the 3 unscored left out' where some answers of a figure's items and
    seeds have no verdict (`core.CellBoot._n`), else '': items x seeds would count them, and they are in no mean."""
    if n_no_verdict is None or pd.isna(n_no_verdict) or int(n_no_verdict) <= 0:
        return ""
    k, n = int(n_no_verdict), int(n_rows)
    return f"; {n} of the cells' {n + k} answers {judged}, the {k} {unjudged} left out"


def _n(row: pd.Series) -> str:
    runs = f", {int(row['n_runs'])} runs" if "n_runs" in row and not pd.isna(row.get("n_runs")) else ""
    return (_items_seeds(row["n_items"], row["n_seeds"], row.get("n_seeds_min")) + runs
            + no_verdict_note(row.get("n_rows"), row.get("n_no_verdict")))


def _degenerate(row: pd.Series) -> bool:
    return bool(row.get("degenerate", False))


def _excludes_zero(row: pd.Series) -> bool:
    """The 95% CI lies on one side of zero (never for a degenerate interval: it has no width to judge by)."""
    return not _degenerate(row) and bool(row["ci_low"] > 0 or row["ci_high"] < 0)


def _holm_verdict(row: pd.Series, family: int) -> str:
    """'better' / 'worse' where the Holm-adjusted test rejects (p_holm < 0.05), else 'not clearly different' - with,
    where the unadjusted interval alone excludes zero, why that is not a verdict: the word follows the adjusted test
    that the line's p-value states, never the unadjusted interval."""
    if row["p_holm"] < 0.05:
        side = row["ci_low"] > 0 if _excludes_zero(row) else row["estimate"] > 0
        return "better" if side else "worse"
    if _excludes_zero(row):
        return (f"not clearly different after Holm adjustment over the {count(family, 'language')} tested, though "
                f"the unadjusted interval excludes zero")
    return "not clearly different"


def _gap_note(gap: list[str]) -> str:
    return (f"; left out: {count(len(gap), 'EN+1 mixture')} with no cell scored on it in both the mixture and "
            f"English-only ({listed(gap)})" if gap else "")


def no_reference_note(frame: pd.DataFrame, target: str | None = None) -> str:
    """'; left out for want of an English-only run to compare with: m2/math, ...' for a gain frame that left cells
    out (`contrasts.reference_cells`, attrs[NO_REFERENCE]; EN+1's for one `target`), or ''. Every sentence from a
    gain frame carries it."""
    gone = (frame.attrs.get(NO_REFERENCE) if target is None else frame.attrs[NO_REFERENCE_BY_TARGET][target]) or []
    return f"; left out for want of an English-only run to compare with: {listed(gone)}" if gone else ""


def _cannot(label: str, gap: list[str]) -> str:
    return (f"Cannot answer (EN+1 on {label}): no EN+1 mixture has a cell scored on it (at least one verdict) in "
            f"both the mixture and English-only: not evaluated there, or every verdict missing ({listed(gap)}).")


def _change(row: pd.Series, what: str) -> str:
    """'raised <what> by +3.1 points [+0.8, +5.4]' when the 95% CI is above zero, 'lowered ...' when below,
    'did not clearly change <what> (+0.6 points [-0.2, +1.7], an interval that includes zero)' otherwise, and for a
    degenerate interval 'changed <what> by +100.0 points (no interval: ...)'."""
    if _degenerate(row):
        return f"changed {what} by {_pp(row['estimate'] * 100)} points ({NO_INTERVAL})"
    if _excludes_zero(row):
        return f"{'raised' if row['ci_low'] > 0 else 'lowered'} {what} by {_pts(row)}"
    return f"did not clearly change {what} ({_pts(row)}, an interval that includes zero)"


# The distance kind the typology finding states, fixed before seeing the data (the planner's too); the others are
# in the report's typology table. Picking the kind with the smallest p among four would overstate the evidence.
TYPOLOGY_KIND = "syntactic"


def _single_seed(cells: pd.DataFrame) -> list[str]:
    """The caveat for fine-tuned runs with one seed beside runs with several: seed resampling cannot vary them, so
    their intervals borrow the others' run-to-run variance (`resample.borrowed_run_sd`), or, with none to borrow,
    cover item sampling only."""
    if not {"model", "mixture", "design", "n_train_languages"} <= set(cells.columns):
        return []  # not the cells of a bootstrap (a stub holding seed counts only)
    one = cells[fine_tuned(cells) & (cells["n_seeds"] == 1).to_numpy()]
    if one.empty:
        return []
    runs = sorted({f"{m}/{x}" for m, x in zip(one["model"], one["mixture"])})
    names = listed(runs)
    sd = one["run_sd_borrowed"].dropna() if "run_sd_borrowed" in one else pd.Series(dtype=float)
    how = (f"their intervals borrow the run-to-run variance measured on the runs with several seeds (a standard "
           f"deviation of {sd.min() * 100:.1f}" + (f"-{sd.max() * 100:.1f}" if sd.max() > sd.min() else "")
           + " points per run, less towards 0% and 100%) rather than measure their own" if len(sd) == len(one) else
           "their intervals cover item sampling only, not run-to-run variance")
    return [f"One seed only for {count(len(runs), 'fine-tuned run')} ({names}), beside runs with several: {how}."]


def findings(a: Analyses) -> list[str]:
    """One sentence per question, generated from the numbers."""
    f, fr = [], a.frames
    if "en_plus_one" in fr:
        e = fr["en_plus_one"]
        pooled = e[(e["model"] == "all") & (e["task"] == "all") & (e["mixture"] == "all")].set_index("target")
        gaps = e.attrs["gaps"]  # the mixtures with no figure for a target (`minimal.en_plus_one`)
        gone = no_reference_note(e, "neither")
        if "neither" in pooled.index:
            r = pooled.loc["neither"]
            f.append(f"Adding one language to English (EN+1, mean over the EN+1 mixtures, models and tasks{gone}) "
                     f"{_change(r, 'accuracy on languages in neither mixture')}, {_n(r)}{_gap_note(gaps['neither'])}.")
        elif gaps["neither"]:
            f.append(_cannot("languages in neither mixture", gaps["neither"]))
        per = e[(e["model"] == "all") & (e["task"] == "all") & (e["mixture"] != "all") & (e["target"] == "neither")]
        if len(per) > 1:  # with one EN+1 mixture this is the pooled sentence above (p_holm: over these rows)
            family = int(per["p_value"].notna().sum())  # rows without a test (no interval) are not in the family
            r = per.loc[per["estimate"].idxmax()]
            held = ("holds" if r["estimate"] > 0 and r["p_holm"] < 0.05 else
                    "is no gain" if r["estimate"] <= 0 else "does not hold")
            head = (f"The largest gain of {len(per)} EN+1 mixtures on languages in neither mixture is from adding "
                    f"{language_name(r['added'])}: {_pp(r['estimate'] * 100)} points")
            if pd.isna(r["p_holm"]):  # no interval, so no test: nothing to adjust
                f.append(f"{head} {_bracket(r['ci_low'], r['ci_high'], True)}, {_n(r)}{gone}; it has no test, so "
                         f"it is not judged.")
            else:
                f.append(f"{head} (unadjusted 95% CI {_bracket(r['ci_low'], r['ci_high'])}), {_n(r)}{gone}; picked as "
                         f"the largest, it {held} after Holm adjustment over the {family} tested "
                         f"({_p(r['p_holm'])}).")
        for target, label in (("added", "the added language itself"), ("english", "English")):
            if target in pooled.index:
                r = pooled.loc[target]
                f.append(f"EN+1 {_change(r, 'accuracy on ' + label)}, {_n(r)}{no_reference_note(e, target)}"
                         f"{_gap_note(gaps[target])}.")
            elif gaps[target]:
                f.append(_cannot(label, gaps[target]))
    if "relative_gain" in fr:
        r = fr["relative_gain"].iloc[-1]
        k = len(fr["relative_gain"]) - 1
        undefined = int(fr["relative_gain"]["undefined_replicates"].max())
        caveat = (f"; in {undefined} of {a.cells.n_boot} bootstrap replicates an English-only mean resampled to 0, "
                  f"where the ratio is undefined, so the interval is over the others" if undefined else "")
        interval = _bracket(r["ci_low"], r["ci_high"], _degenerate(r), unit="%")
        f.append(f"The median relative gain of EN+1 over English-only (mean over the languages both were evaluated "
                 f"on) across {k} model-task pair{'s' if k != 1 else ''} is {_pp(r['estimate'] * 100)}% {interval} "
                 f"(published headline: +8-9%), {_n(r)}{caveat}{no_reference_note(fr['relative_gain'])}.")
    if "plateau" in fr and len(fr["plateau"]):
        p = fr["plateau"]
        gone = no_reference_note(p)
        p = p[(p["model"] == "all") & (p["task"] == "all")]
        for _, r in p.iterrows():
            group = f"{r['resource'].capitalize()}-resource languages' gain over English-only"
            best = (f"best {_pp(r['best_gain'] * 100)} points {_bracket(r['best_ci_low'], r['best_ci_high'])} "
                    f"at {r['best_level']} training languages")
            if not (r["best_gain"] > 0 and r["best_p_holm"] < 0.05):  # picked from several: judged after Holm
                f.append(f"{group} is not clearly above zero at any coverage level ({best}; Holm-adjusted over "
                         f"{count(r['levels'], 'level')}, {_p(r['best_p_holm'])}), so there is no plateau to "
                         f"locate, {_n(r)}{gone}.")
                continue
            tested = f"{r['min_level']}-{r['max_level']} training languages"
            if pd.isna(r["plateau"]):
                step = (f"{_pp(r['last_step'] * 100)} points {_bracket(r['last_step_ci_low'], r['last_step_ci_high'])}"
                        f" from {r['last_step_from']} to {r['max_level']} training languages")
                why = (f"the gain is still rising at the last step ({step})" if r["rising_at_last_step"] else
                       f"at no level below the largest does the gain clearly flatten (above zero, not clearly "
                       f"exceeded later, and rising clearly less per added language after it than before; last "
                       f"step: {step})")
                f.append(f"{group} shows no plateau within the levels tested ({tested}): {why}; {best}, "
                         f"{_n(r)}{gone}.")
                continue
            f.append(f"{group} reaches its plateau at {r['plateau']} training languages "
                     f"({_pp(r['gain_at_plateau'] * 100)} points "
                     f"{_bracket(r['plateau_ci_low'], r['plateau_ci_high'])}): the first level whose gain is above "
                     f"zero, not clearly exceeded by the later levels (their mean is "
                     f"{_pp(r['later_rise'] * 100)} points {_bracket(r['later_rise_ci_low'], r['later_rise_ci_high'])}"
                     f" above it: the interval bounds any further rise) and rising clearly less per added language "
                     f"after it than before (by {_pp(r['flattening'] * 100)} points per language "
                     f"{_bracket(r['flattening_ci_low'], r['flattening_ci_high'])}); {best}; levels tested: {tested}, "
                     f"{_n(r)}{gone}.")
    if "zero_shot" in fr:
        z = fr["zero_shot"]
        family = int(z.loc[z["model"] == "all", "p_holm"].notna().sum())  # Holm is over these languages
        for _, r in z[z["model"] == "all"].iterrows():
            scored = (f"{language_name(r['language'])} held out of a {r['held_out_k']}-language mixture scored "
                      f"{_pts(r)} relative to being trained on in {r['included_mixture']}")
            if _degenerate(r) or pd.isna(r["p_holm"]):
                f.append(f"{scored}, {_n(r)}.")
                continue
            f.append(f"{scored} ({_holm_verdict(r, family)}), {_n(r)}, {_p(r['p_holm'], 'Holm p')}.")
        gone = z.attrs.get("left_out") or []
        if gone:
            names = ", ".join(language_name(lang) for lang in gone)
            f.append(f"Left out of the zero-shot comparison: {names} - held out of a diverse mixture but trained on "
                     f"in no EN+1, fixed or growing mixture, so there is no direct-inclusion score to compare with.")
    if "typology_regression" in fr and "coef" in fr["typology_regression"]:
        t = fr["typology_regression"]
        gone = no_reference_note(t)
        t = t[t["term"] == "distance"].dropna(subset=["coef", "ci_low", "ci_high"])
        declared = t[t["kind"] == TYPOLOGY_KIND]
        if len(declared):
            r = declared.iloc[0]
            slope = (f"{_pp(r['coef'] * 10)} points [{_pp(r['ci_low'] * 10)}, {_pp(r['ci_high'] * 10)}] per 0.1 of "
                     f"{r['kind']} URIEL+ distance from English")
            clear = "a clear" if _excludes_zero(r) else "no clear (the interval includes zero)"
            f.append(f"Zero-shot gain changes by {slope}: {clear} relation ({r['kind']} distance, stated in advance; "
                     f"the other distance kinds are in the typology table; {r['method']}, "
                     f"{int(r['n_languages'])} languages, {int(r['n_cells'])} cells{gone}).")
        else:
            f.append(f"Cannot answer (typology): the regression on {TYPOLOGY_KIND} distance could not be fitted (no "
                     f"variation, or too few languages).")
    if "capacity" in fr:
        c = fr["capacity"]
        inter = c[(c["term"] == "interaction") & (c["task"] == "all")]
        if len(inter):
            r = inter.iloc[0]
            f.append(f"Per decade of parameters, the effect of each added training language on the mean "
                     f"non-English score changes by {_pts(r)} "
                     f"({'a clear' if _excludes_zero(r) else 'no clear'} interaction), "
                     f"{_n(r)}.")
    if "fidelity_pooled" in fr:
        for _, r in fr["fidelity_pooled"].sort_values("seen").iterrows():
            missing = no_verdict_note(r.get("n_rows"), r.get("n_no_verdict"), "language-judged", "unjudged")
            noun = "item" if missing else "judged item"  # items: some of their answers are not judged
            items = (count(r["n_items"], noun) if r["n_items_min"] == r["n_items"]
                     else f"{int(r['n_items_min'])}-{int(r['n_items'])} {noun}s")
            interval = (f"({NO_INTERVAL})" if _degenerate(r) or abs(r["ci_high"] - r["ci_low"]) <= 1e-12
                        else f"[{r['ci_low'] * 100:.1f}, {r['ci_high'] * 100:.1f}]")
            f.append(f"On non-English languages {'seen' if r['seen'] else 'not seen'} in training, fine-tuned models "
                     f"answered in the prompt's language {r['share'] * 100:.1f}% {interval} "
                     f"of the time (the mean over {count(r['n_cells'], 'cell')}; "
                     f"n={items} x {_seeds(r['n_seeds'], r.get('n_seeds_min'))} per cell{missing}; each cell in "
                     f"section 7).")
    for name, why in a.missing.items():
        f.append(f"Cannot answer ({name}): {why}.")
    seeds = int(a.cells.cells["n_seeds"].max())
    f += _single_seed(a.cells.cells) if seeds > 1 else []
    if seeds == 1:
        f.append("One seed only: intervals cover item sampling, not run-to-run variance.")
    elif seeds < 5:
        f.append(f"{seeds} seeds: resampling so few seeds understates run-to-run variance, so the 95% intervals "
                 f"are narrower than they should be where runs vary (in simulated studies with a run-to-run "
                 f"standard deviation of 4 points they covered a planted effect 86% of the time with 2 seeds, 89% "
                 f"with 3 and 93% with 5; benchmarks/ci_coverage.py, 200 studies each).")
    return f
