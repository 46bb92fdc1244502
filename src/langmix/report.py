"""Study report: Markdown + static HTML with PNG plots, built from the tidy results table.

Sections: per-language accuracy by mixture (seeds shown as spread), English-only vs EN+1, low- vs high-resource
averages, and fine-tuned vs base on the trained languages.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

log = logging.getLogger(__name__)

HEADLINE = {"math": "accuracy_strict", "api": "call_accuracy"}


def load(results: Path) -> pd.DataFrame:
    return pq.read_table(results).to_pandas()


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of each task's headline metric only."""
    keep = [(df["task"] == task) & (df["metric"] == metric) for task, metric in HEADLINE.items()]
    return df[pd.concat(keep, axis=1).any(axis=1)] if keep else df.iloc[0:0]


def mixture_order(df: pd.DataFrame) -> list[str]:
    """Base first, then by number of training languages, then by name."""
    sizes = df.groupby("mixture")["train_languages"].first().map(lambda s: len(s.split(",")) if s else 0)
    return sorted(sizes.index, key=lambda m: (sizes[m], m))


def per_language_table(df: pd.DataFrame, task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean, std over seeds) of the headline metric, mixtures x languages."""
    sub = headline(df)[lambda d: d["task"] == task]
    grouped = sub.groupby(["mixture", "language"])["value"]
    mean = grouped.mean().unstack("language")
    std = grouped.std(ddof=0).unstack("language")
    order = [m for m in mixture_order(sub) if m in mean.index]
    cols = list(dict.fromkeys(sub["language"]))
    return mean.loc[order, cols], std.loc[order, cols]


def resource_table(df: pd.DataFrame, task: str) -> pd.DataFrame:
    """Mean headline metric over high- and low-resource languages, per mixture (per-seed values kept)."""
    sub = headline(df)[lambda d: d["task"] == task]
    per_seed = sub.groupby(["mixture", "seed", "resource"])["value"].mean().unstack("resource")
    out = per_seed.groupby("mixture").agg(["mean", "std", "count"])
    for col in [c for c in out.columns if c[1] == "count"]:
        out[col] = out[col].astype(int)
    return out.loc[[m for m in mixture_order(sub) if m in out.index]]


def en_plus_one_deltas(df: pd.DataFrame, task: str) -> pd.DataFrame | None:
    """Per-language change of each EN+1 mixture over English-only (mean over seeds); None without both."""
    sub = headline(df)[lambda d: d["task"] == task]
    mean = sub.groupby(["mixture", "design", "language"])["value"].mean().reset_index()
    en_only = mean[mean["design"] == "english_only"]
    plus = mean[mean["design"] == "en_plus_one"]
    if en_only.empty or plus.empty:
        return None
    base = en_only.set_index("language")["value"]
    table = plus.pivot(index="mixture", columns="language", values="value")
    return table.sub(base, axis=1)[list(base.index)]


def trained_vs_base(df: pd.DataFrame) -> pd.DataFrame:
    """For each fine-tuned mixture: mean headline metric on its trained languages, and the base model's there."""
    sub = headline(df)
    rows = []
    for (task, mixture), g in sub[sub["mixture"] != "base"].groupby(["task", "mixture"]):
        trained = g["train_languages"].iloc[0].split(",")
        base = sub[(sub["task"] == task) & (sub["mixture"] == "base") & sub["language"].isin(trained)]["value"]
        tuned = g[g["language"].isin(trained)]["value"]
        rows.append({"task": task, "mixture": mixture, "trained_languages": ",".join(trained),
                     "fine_tuned": tuned.mean(), "base": base.mean() if len(base) else float("nan")})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- plots


def _ymax(values: pd.Series) -> float:
    """Room above the highest point, capped at 1 (all metrics are rates)."""
    top = float(values.max()) if len(values) else 0.0
    return min(1.0, max(0.05, top * 1.2 + 0.02))


def plot_per_language(df: pd.DataFrame, task: str, path: Path) -> Path:
    sub = headline(df)[lambda d: d["task"] == task]
    mixtures = mixture_order(sub)
    languages = list(dict.fromkeys(sub["language"]))
    width = 0.8 / max(1, len(mixtures))
    fig, ax = plt.subplots(figsize=(max(8, len(languages) * 0.9), 4))
    for k, mix in enumerate(mixtures):
        g = sub[sub["mixture"] == mix]
        xs = [languages.index(lang) + (k - len(mixtures) / 2 + 0.5) * width for lang in languages]
        means = [g[g["language"] == lang]["value"].mean() for lang in languages]
        ax.bar(xs, means, width, label=mix)
        for x, lang in zip(xs, languages):
            seeds = g[g["language"] == lang]["value"]
            ax.scatter([x] * len(seeds), seeds, color="black", s=6, zorder=3)
    ax.set_xticks(range(len(languages)), languages)
    ax.set_ylabel(HEADLINE[task])
    ax.set_ylim(0, _ymax(sub["value"]))
    ax.set_title(f"{task}: {HEADLINE[task]} per language (bars: mean over seeds; dots: seeds)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_resource(df: pd.DataFrame, task: str, path: Path) -> Path:
    sub = headline(df)[lambda d: d["task"] == task]
    per_seed = sub.groupby(["mixture", "seed", "resource"])["value"].mean().reset_index()
    mixtures = mixture_order(sub)
    fig, ax = plt.subplots(figsize=(max(6, len(mixtures) * 1.1), 3.6))
    for k, group in enumerate(["high", "low"]):
        g = per_seed[per_seed["resource"] == group]
        xs = [i + (k - 0.5) * 0.38 for i in range(len(mixtures))]
        ax.bar(xs, [g[g["mixture"] == m]["value"].mean() for m in mixtures], 0.38, label=f"{group}-resource")
        for x, m in zip(xs, mixtures):
            vals = g[g["mixture"] == m]["value"]
            ax.scatter([x] * len(vals), vals, color="black", s=6, zorder=3)
    ax.set_xticks(range(len(mixtures)), mixtures, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, _ymax(per_seed["value"]))
    ax.set_title(f"{task}: mean {HEADLINE[task]} by resource group")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_deltas(deltas: pd.DataFrame, task: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(max(6, deltas.shape[1] * 0.8), 0.5 * len(deltas) + 1.5))
    im = ax.imshow(deltas.values, cmap="RdBu", vmin=-0.5, vmax=0.5, aspect="auto")
    ax.set_xticks(range(deltas.shape[1]), deltas.columns)
    ax.set_yticks(range(len(deltas)), deltas.index)
    for i in range(deltas.shape[0]):
        for j in range(deltas.shape[1]):
            ax.text(j, i, f"{deltas.values[i, j]:+.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="change vs English-only")
    ax.set_title(f"{task}: EN+1 minus English-only ({HEADLINE[task]})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- rendering


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if pd.isna(v) else f"{v:.3f}"
    return str(v)


def md_table(frame: pd.DataFrame, index_name: str = "") -> str:
    frame = frame.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" ".join(str(c) for c in col) for col in frame.columns]
    header = [index_name] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for idx, *values in frame.itertuples(name=None):  # keeps each column's dtype (counts stay ints)
        label = " / ".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
        lines.append("| " + " | ".join([label] + [_fmt(v) for v in values]) + " |")
    return "\n".join(lines)


def _md_to_html(markdown: str) -> str:
    """Enough Markdown for this report: headings, paragraphs, pipe tables, images."""
    out, table = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                table.append([html.escape(c.strip()) for c in line.strip("|").split("|")])
            continue
        if table:
            head, *body = table
            out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>" + "".join(
                "<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body) + "</table>")
            table = []
        if line.startswith("!["):
            alt, src = line[2:].split("](")
            out.append(f'<p><img src="{html.escape(src.rstrip(")"))}" alt="{html.escape(alt)}"></p>')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}")
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head><body>" + \
        "\n".join(out) + "</body></html>"


def build_report(results: Path, out_dir: Path, title: str = "langmix study") -> Path:
    """Write report.md, report.html and plots/ into `out_dir`; returns the HTML path."""
    df = load(results)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", "", f"{df['run_hash'].nunique()} runs, {df['language'].nunique()} languages, "
          f"seeds {sorted(df['seed'].unique().tolist())}. Headline metrics: "
          + ", ".join(f"{t}: {m}" for t, m in HEADLINE.items()) + ". Values are means over seeds.", ""]
    if df.empty:
        md.append("No finished runs yet.")
    tvb = trained_vs_base(df)
    if not tvb.empty:
        md += ["## Fine-tuned vs base model on the trained languages", "",
               md_table(tvb.set_index(["task", "mixture"]), "task / mixture"), ""]
    for task in [t for t in HEADLINE if t in set(df["task"])]:
        mean, std = per_language_table(df, task)
        md += [f"## {task}: {HEADLINE[task]} per language", "", md_table(mean, "mixture"), "",
               "Standard deviation over seeds:", "", md_table(std, "mixture"), "",
               f"![{task} per language]({plot_per_language(df, task, plots / f'{task}_per_language.png').relative_to(out_dir)})",
               "", f"## {task}: high- vs low-resource languages", "", md_table(resource_table(df, task), "mixture"),
               "", f"![{task} by resource]({plot_resource(df, task, plots / f'{task}_resource.png').relative_to(out_dir)})",
               ""]
        deltas = en_plus_one_deltas(df, task)
        if deltas is not None:
            md += [f"## {task}: English-only vs EN+1", "", md_table(deltas, "mixture"), "",
                   f"![{task} EN+1]({plot_deltas(deltas, task, plots / f'{task}_en_plus_one.png').relative_to(out_dir)})",
                   ""]
    text = "\n".join(md)
    (out_dir / "report.md").write_text(text, encoding="utf-8")
    (out_dir / "report.html").write_text(_md_to_html(text), encoding="utf-8")
    return out_dir / "report.html"
