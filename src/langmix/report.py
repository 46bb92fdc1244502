"""Study report from the item-level table: findings in words with 95% CIs, a section per analysis (figure + table),
per-language means with CIs and n. One self-contained HTML page (figures embedded as base64 PNG, opens offline),
a Markdown summary, figures as PNG and SVG under plots/, and every analysis frame as CSV under tables/.

Every number in a finding carries its 95% paired-bootstrap interval and its n (items x seeds, runs). Where the
table cannot answer a question (one seed, no held-out design, one model size) the report says so instead.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from langmix.analysis import Analyses, run_all
from langmix.analysis.contrasts import NO_REFERENCE, estimate_frame, group_contrasts
from langmix.analysis.findings import count, findings, no_verdict_note, seed_range
from langmix.analysis.table import listed
from langmix.report_figures import figures

log = logging.getLogger(__name__)

SECTIONS = ("coverage", "resource", "en_plus_one", "zero_shot", "typology", "capacity", "fidelity", "per_language")
TITLES = {
    "coverage": "1. Coverage curves: seen vs unseen languages",
    "resource": "2. Resource groups and the plateau",
    "en_plus_one": "3. Minimal multilinguality: EN+1 vs English-only",
    "zero_shot": "4. Zero-shot (held out of a diverse mixture) vs direct inclusion (in a narrow one)",
    "typology": "5. Typology: gain vs URIEL+ distance from English",
    "capacity": "6. Capacity: model size x coverage",
    "fidelity": "7. Language fidelity: responses in the prompt's language",
    "per_language": "Per-language headline means",
}


# ---------------------------------------------------------------- tables and page

NOTES = {
    "coverage": "Headline accuracy per model and coverage level: the mean over the non-English languages evaluated "
                "at every level (all: the same languages at every level, so its change is the effect of coverage), "
                "and over those of them seen in training and unseen (zero-shot). Which languages are seen changes "
                "with the level by design, so the seen and unseen means average different languages at each level "
                "(n_seen, n_unseen). Each language weighs alike (its mixtures at a level averaged first).",
    "resource": "Gain over the same model's English-only mixture, mean over the group's non-English languages and "
                "the mixtures with that many training languages, pooled over models and tasks. Plateau: the first "
                "level below the largest whose gain is above zero, not clearly exceeded by the later levels' mean "
                "(later_rise) and rising clearly less per added language after it than before (flattening; paired "
                "95% CIs); none where the gain still rises at the last step.",
    "en_plus_one": "Gain of EN+1 over English-only, pooled over models and tasks; p_holm adjusts over the per-model "
                   "mixtures (Holm); p_replicates: the bootstrap replicates behind each p-value (more where the "
                   "family is large).",
    "zero_shot": "A language's score held out of a high-diversity mixture minus its score included in the narrowest "
                 "mixture that trains on it; Holm over languages.",
    "typology": "MixedLM per distance kind on zero-shot gains (cells), language as random intercept, model, task and "
                "mixture as fixed factors (mixture controls for coverage; where it would absorb distance, log2 of "
                "the number of training languages does instead: see the method column). Distances: URIEL+ "
                "(urielplus 1.3.2, Khan et al. 2025).",
    "capacity": "Slope of the mean non-English score per added training language, per model; the interaction row is "
                "the change of that slope per decade of parameters.",
    "fidelity": "Share of language-judged responses in the prompt's language, pooled over models and tasks.",
    "per_language": "Mean headline accuracy with 95% CI, pooled over models, per task, mixture and language.",
}
# The sentences of a note that point to a table: said only where that table was written (a frame the analysis
# left empty is no file), and where it was not, why not (the analysis's "Cannot answer": e.g. too few coverage levels
# for a plateau). No note names a tables/*.csv of its own text.
POINTERS = {"coverage": [("coverage", "Per-language rows in tables/coverage.csv.")],
            "resource": [("plateau", "The plateau per model, task and resource group in tables/plateau.csv.")],
            "en_plus_one": [("en_plus_one", "Per-model rows in tables/en_plus_one.csv.")]}
KEEP = {"coverage": ("coverage_pooled", None), "resource": ("resource_gains", ("model", "all")),
        "en_plus_one": ("en_plus_one", ("model", "all")), "zero_shot": ("zero_shot", ("model", "all")),
        "typology": ("typology_regression", None), "capacity": ("capacity", None),
        "fidelity": ("fidelity", None)}


def section_note(sec: str, a: Analyses) -> str:
    """A section's note with its pointers to the tables that were written, and, for those that were not, why."""
    parts = [NOTES[sec]]
    for name, sentence in POINTERS.get(sec, []):
        if name in a.frames:
            parts.append(sentence)
        elif name in a.missing:
            parts.append(f"No {name.replace('_', ' ')} table: {a.missing[name]}.")
    return " ".join(parts)


def per_language(a: Analyses) -> pd.DataFrame:
    cb = a.cells
    keys, rows = group_contrasts(cb, cb.cells["language"].notna(), ["task", "mixture", "language"])
    out, _ = estimate_frame(cb, keys, rows)
    return out.drop(columns="p_value").rename(columns={"n_cells": "n_models"})


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        if not pd.isna(v) and abs(v) < 1e-9:  # float noise around zero (-2.3e-10) reads as 0
            return "0"
        return "" if pd.isna(v) else f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def md_text(value) -> str:
    """Free text inline in Markdown (a title, a finding naming a mixture or model: names are free strings): line
    breaks as spaces (one would end the paragraph, list item or table row), '&' and '<' as entities (a name is shown,
    never rendered as HTML)."""
    return " ".join(str(value).splitlines()).replace("&", "&amp;").replace("<", "&lt;")


def md_cell(value) -> str:
    """A Markdown table cell: `md_text` with backslashes and pipes escaped (an unescaped '|' starts a new cell)."""
    return md_text(str(value).replace("\\", "\\\\").replace("|", "\\|"))


def _cut_note(frame: pd.DataFrame, max_rows: int, csv: str | None) -> str:
    """The line under a table shown in part: how many rows are left out and where they all are."""
    if len(frame) <= max_rows:
        return ""
    return f"First {max_rows} of {len(frame)} rows" + (f"; all of them in tables/{csv}.csv." if csv else ".")


def md_table(frame: pd.DataFrame, max_rows: int = 60, csv: str | None = None) -> str:
    note = _cut_note(frame, max_rows, csv)
    frame = frame.head(max_rows)
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(md_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(md_cell(_cell(v)) for v in row) + " |"
              for row in frame.itertuples(index=False, name=None)]
    return "\n".join(lines + (["", note] if note else []))


def _ci_text(frame: pd.DataFrame, col: str = "estimate") -> list[str]:
    """Each row's figure with its interval: '0.412 [0.380, 0.445]'; '1.000 (no interval)' where every bootstrap
    replicate agreed (one item, or every answer alike), since '[1.000, 1.000]' would read as certainty."""
    flat = frame["degenerate"] if "degenerate" in frame else pd.Series(False, index=frame.index)
    return [f"{m:.3f} (no interval)" if bad else f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
            for m, lo, hi, bad in zip(frame[col], frame["ci_low"], frame["ci_high"], flat)]


def _coverage_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model, task and coverage level; all, seen and unseen languages side by side as 'mean [low, high]',
    with how many languages each of seen and unseen averages."""
    by = ["model", "task", "n_train_languages"]
    f = frame.assign(v=_ci_text(frame, "mean"))
    out = f.pivot_table(index=by, columns="part", values="v", aggfunc="first")
    out = out.reindex(columns=[p for p in ("all", "seen", "unseen") if p in out.columns])
    n = f.pivot_table(index=by, columns="part", values="n_languages", aggfunc="first")
    for part in ("seen", "unseen"):
        out[f"n_{part}"] = n[part].fillna(0).astype(int) if part in n.columns else 0
    out = out.join(f.groupby(by)[["n_items", "n_seeds"]].max())
    every = f[f["part"] == "all"].set_index(by)  # every cell of the level: its answers without a verdict
    if "n_no_verdict" in every and (every["n_no_verdict"] > 0).any():
        out["n_no_verdict"] = every["n_no_verdict"].reindex(out.index).fillna(0).astype(int)
    return out.reset_index().rename_axis(columns=None)


def _left_out(sec: str, frame: pd.DataFrame) -> str:
    """The sentence under a section's table naming what its figures leave out, or '': the coverage curves' languages
    not evaluated at every level; a gain's cells with no English-only cell (attrs[NO_REFERENCE])."""
    if sec == "coverage":
        gone = frame.attrs.get("left_out") or []
        why = "Left out of these curves, not evaluated at every coverage level (the levels would average different "\
              "languages)"
    else:
        gone = frame.attrs.get(NO_REFERENCE) or []
        why = "Left out of this section's figures for want of an English-only run to compare with"
    return f"{why}: {listed(gone, 10)}." if gone else ""


def _ci_pivot(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    f = frame[frame["task"] == task]
    return f.assign(v=_ci_text(f)).pivot(index="mixture", columns="language", values="v").reset_index()


def _html_table(frame: pd.DataFrame, max_rows: int = 60, csv: str | None = None) -> str:
    note = _cut_note(frame, max_rows, csv)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.head(max_rows).itertuples(index=False, name=None))
    return f"<table><tr>{head}</tr>{body}</table>" + (f"<p>{html.escape(note)}</p>" if note else "")


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"></figure>'


STYLE = ("body{font-family:sans-serif;max-width:1150px;margin:auto;padding:0 1em}table{border-collapse:collapse;"
         "font-size:11px;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 5px;text-align:right}"
         "img{max-width:100%}section{margin-bottom:2em}.missing{color:#a33}ol.findings li{margin:.3em 0}")
# marks each image as loaded or broken (read by the headless-browser test; harmless elsewhere)
CHECK = ("<script>window.addEventListener('load',()=>{document.querySelectorAll('img').forEach(i=>"
         "i.setAttribute('data-ok',i.complete&&i.naturalWidth>0?'1':'0'));"
         "document.body.setAttribute('data-loaded','1')});</script>")


# Every table and figure the report can write: a rebuild removes these first, so none is left from an earlier build
# whose table could answer a question this one cannot (other files in tables/ and plots/ are left alone).
TABLES = ("coverage", "coverage_pooled", "resource_gains", "plateau", "en_plus_one", "relative_gain", "zero_shot",
          "typology_languages", "typology_regression", "capacity", "fidelity", "fidelity_pooled", "per_language")
PLOTS = ("coverage", "resource", "en_plus_one", "zero_shot", "typology", "capacity", "fidelity")


def _clear_outputs(tables: Path, plots: Path) -> None:
    gone = [path for path in [tables / f"{name}.csv" for name in TABLES]
            + [plots / f"{stem}.{ext}" for stem in PLOTS for ext in ("png", "svg")] if path.is_file()]
    for path in gone:
        path.unlink(missing_ok=True)  # another build removed it meanwhile (`langmix report` builds under a lock)
    if gone:
        log.info("removed %d tables and figures of an earlier build of this report", len(gone))


def scorer_line(items: pd.DataFrame) -> str:
    """Which scorer judged the verdicts, per task: "Judged by scorer math=<digest>, api=<digest>" (the digests a
    study records with each evaluation, `langmix.tasks.scorer_digest`); every digest where a task's verdicts came
    from more than one scorer, "unknown" for verdicts with none recorded."""
    if "scorer_digest" not in items.columns:
        return "Judged by scorer: not recorded (the verdicts carry no scorer digest)."
    shown = []
    for task, digests in items.groupby("task", sort=True, observed=True)["scorer_digest"]:
        found = sorted({d if isinstance(d, str) and d else "unknown" for d in digests})
        shown.append(f"{task}={'/'.join(found)}" + (" (more than one scorer)" if len(found) > 1 else ""))
    return f"Judged by scorer {', '.join(shown)}."


def build_report(items: pd.DataFrame, out_dir: Path, title: str, config_note: str = "") -> Path:
    """Write report.html (self-contained), report.md, plots/*.{png,svg} and tables/*.csv; returns the HTML path.
    The tables and figures of an earlier build in `out_dir` are removed first (only those the report writes)."""
    out_dir = Path(out_dir)
    plots, tables = out_dir / "plots", out_dir / "tables"
    plots.mkdir(parents=True, exist_ok=True)
    tables.mkdir(parents=True, exist_ok=True)
    a = run_all(items)
    a.frames["per_language"] = per_language(a)
    unknown = sorted(set(a.frames) - set(TABLES))
    if unknown:  # a new analysis frame must be listed, or a rebuild would leave it stale
        raise RuntimeError(f"report.TABLES lacks {unknown}")
    _clear_outputs(tables, plots)
    for name, frame in a.frames.items():
        frame.to_csv(tables / f"{name}.csv", index=False)
    figs = figures(a, plots)
    cells = a.cells.cells
    scored = int(cells["n_rows"].sum())  # the rows with a verdict: a row without one is in no figure
    unscored = (f" ({count(len(items) - scored, 'answer')} without one, unscored, in no figure)"
                if len(items) > scored else "")
    facts = (f"{scored:,} item verdicts{unscored}; {count(cells['model'].nunique(), 'model')}, "
             f"{count(cells['mixture'].nunique(), 'mixture')}, {count(cells['task'].nunique(), 'task')}, "
             f"{count(cells['language'].nunique(), 'language')}, up to {count(cells['n_seeds'].max(), 'seed')} and "
             f"{count(cells['n_items'].max(), 'item')} per cell. Intervals: 95% "
             f"paired bootstrap over items and seeds ({a.cells.n_boot} replicates).")
    found = findings(a)
    judged = scorer_line(items)
    md = [f"# {md_text(title)}", "", facts, "", md_text(judged), ""] + \
        ([md_text(config_note), ""] if config_note else []) + \
        ["## Findings", ""]
    md += [f"{i}. {md_text(s)}" for i, s in enumerate(found, 1)] + [""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(facts)}</p>",
            f"<p class='scorer'>{html.escape(judged)}</p>"]
    if config_note:
        body.append(f"<p>{html.escape(config_note)}</p>")
    body.append("<section id='findings'><h2>Findings</h2><ol class='findings'>"
                + "".join(f"<li>{html.escape(s)}</li>" for s in found) + "</ol></section>")
    for sec in SECTIONS:
        md += [f"## {TITLES[sec]}", ""]
        part = [f"<section id='{sec}'><h2>{html.escape(TITLES[sec])}</h2>"]
        if sec in a.missing:
            md += [f"Cannot answer: {md_text(a.missing[sec])}.", ""]
            part.append(f"<p class='missing'>Cannot answer: {html.escape(a.missing[sec])}.</p></section>")
            body += part
            continue
        note = section_note(sec, a)
        md += [md_text(note), ""]
        part.append(f"<p>{html.escape(note)}</p>")
        if sec in figs:
            md += [f"![{TITLES[sec]}]({figs[sec].relative_to(out_dir).as_posix()})", ""]
            part.append(_img(figs[sec], TITLES[sec]))
        if sec == "per_language":
            shown = [_ci_pivot(a.frames["per_language"], t) for t in sorted(cells["task"].unique())]
            for t, frame in zip(sorted(cells["task"].unique()), shown):
                n = a.frames["per_language"][a.frames["per_language"]["task"] == t]
                seeds = seed_range(n["n_seeds"]) + ("" if n["n_seeds"].nunique() == 1 else " (the base model: one)")
                cap = (f"{t}: n={count(n['n_items'].max(), 'item')} x {seeds} per model, "
                       f"{count(n['n_models'].max(), 'model')}"
                       f"{no_verdict_note(n['n_rows'].sum(), n['n_no_verdict'].sum())}")
                md += [md_text(cap), "", md_table(frame, csv="per_language"), ""]
                part += [f"<p>{html.escape(cap)}</p>", _html_table(frame, csv="per_language")]
        elif KEEP[sec][0] not in a.frames:  # the analysis ran, but this table has no row (e.g. English only)
            msg = "no rows for this table (e.g. no non-English language or no fine-tuned mixture to compare)"
            md += [f"Cannot answer: {msg}.", ""]
            part.append(f"<p class='missing'>Cannot answer: {msg}.</p>")
        else:
            name, filt = KEEP[sec]
            frame = a.frames[name]
            if filt is not None:
                frame = frame[frame[filt[0]] == filt[1]]
            if sec == "capacity" and not (frame["term"] == "interaction").any():
                msg = "one model size: the size x coverage interaction cannot be estimated"
                md += [f"Cannot answer: {msg}.", ""]
                part.append(f"<p class='missing'>Cannot answer: {msg}.</p>")
            gone = _left_out(sec, frame)
            if sec == "coverage":
                frame = _coverage_table(frame)
            md += [md_table(frame, csv=name), ""] + ([md_text(gone), ""] if gone else [])
            part.append(_html_table(frame, csv=name) + (f"<p class='missing'>{html.escape(gone)}</p>" if gone else ""))
        part.append("</section>")
        body += part
    (out_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>" + "\n".join(body) + CHECK + "</body></html>")
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    log.info("report written to %s", out_dir / "report.html")
    return out_dir / "report.html"
