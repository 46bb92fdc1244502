"""The report of a small simulated study: sections, findings with CIs, files; rendered in headless Chromium."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from langmix.analysis.simulate import Effects, StudyShape, simulate
from langmix.report import SECTIONS, build_report, scorer_line

SHAPE = StudyShape(families=("a",), sizes=(100_000_000, 1_000_000_000), seeds=(0, 1), n_items=60)
CHROMIUM = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--virtual-time-budget=5000"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    items = simulate(Effects(en_plus_one_unseen=0.05, coverage_gain=0.06), SHAPE, seed=5)
    items["scorer_digest"] = items["task"].map({"math": "5fc6f437188d7471", "api": "b8b4cee85d93e44a"}).astype(str)
    return build_report(items, tmp_path_factory.mktemp("r") / "report", "simulated study", config_note="note here")


def test_report_files_findings_and_sections(report):
    out = report.parent
    md = (out / "report.md").read_text()
    assert md.startswith("# simulated study") and "note here" in md
    assert re.search(r"Adding one language to English .* raised accuracy on languages in neither mixture by "
                     r"\+\d+\.\d points \[\+\d+\.\d, \+\d+\.\d\], n=120 items x 2 seeds, 88 runs", md)  # 60 per task
    stems = {"coverage", "resource", "en_plus_one", "zero_shot", "typology", "capacity", "fidelity"}
    assert {p.name for p in (out / "plots").iterdir()} == {f"{s}.{e}" for s in stems for e in ("png", "svg")}
    page = report.read_text()
    for sec in SECTIONS:
        assert f"<section id='{sec}'>" in page
    assert "src=\"plots/" not in page  # self-contained
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(stems)
    for i, data in enumerate(images):
        path = out / f"decoded{i}.png"
        path.write_bytes(base64.b64decode(data))
        assert mpimg.imread(path).shape[0] > 100


def test_the_report_names_the_scorer_that_judged_each_task(report):
    judged = "Judged by scorer api=b8b4cee85d93e44a, math=5fc6f437188d7471."
    md = (report.parent / "report.md").read_text().splitlines()
    assert md.index(judged) == 4  # below the title and the facts, above the findings
    assert f"<p class='scorer'>{judged}</p>" in report.read_text()


def test_the_scorer_line_shows_mixed_and_unknown_scorers():
    items = simulate(Effects(), replace(SHAPE, n_items=4), seed=1)
    assert scorer_line(items) == "Judged by scorer: not recorded (the verdicts carry no scorer digest)."
    items["scorer_digest"] = items["task"].map({"math": "aaaa", "api": "cccc"}).astype(str)
    items.loc[items.index[(items["task"] == "math").to_numpy()][:1], "scorer_digest"] = "bbbb"
    items.loc[items.index[(items["task"] == "api").to_numpy()][:1], "scorer_digest"] = ""
    assert scorer_line(items) == ("Judged by scorer api=cccc/unknown (more than one scorer), "
                                  "math=aaaa/bbbb (more than one scorer).")


def test_report_says_what_the_data_cannot_answer(tmp_path):
    shape = replace(SHAPE, sizes=(1_000_000_000,), seeds=(0,), held_out=())
    html = build_report(simulate(Effects(), shape, seed=6), tmp_path / "r", "one seed")
    md = (html.parent / "report.md").read_text()
    assert "Cannot answer (zero_shot): no held-out design" in md
    assert "One seed only: intervals cover item sampling, not run-to-run variance." in md
    assert "Cannot answer: one model size" in md


def test_report_renders_in_headless_chromium(report, tmp_path):
    if not Path(CHROMIUM[0]).exists() or shutil.which(CHROMIUM[0]) is None:
        if os.environ.get("LANGMIX_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is missing (scripts/install-test-deps.sh installs it)")
        print("skipping: /usr/bin/chromium is not installed (scripts/install-test-deps.sh installs it)")
        pytest.skip("chromium not installed")
    profile = tmp_path / "profile"
    url = report.resolve().as_uri()
    dom = subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", "--dump-dom", url], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-loaded="1"' in dom.stdout
    for sec in SECTIONS:
        assert f'id="{sec}"' in dom.stdout
    oks = re.findall(r'data-ok="([01])"', dom.stdout)
    assert len(oks) == 7 and set(oks) == {"1"}, oks
    shot = tmp_path / "shot.png"
    run = subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1200,2400",
                          url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    img = mpimg.imread(shot)
    assert img.shape[:2] == (2400, 1200) and img.std() > 0.05  # not blank
    keep = os.environ.get("LANGMIX_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_a_table_shown_in_part_says_so():
    import pandas as pd

    from langmix.report import md_table

    frame = pd.DataFrame({"x": range(70)})
    md = md_table(frame, max_rows=60, csv="coverage")
    assert md.count("\n| ") == 60 and md.endswith("First 60 of 70 rows; all of them in tables/coverage.csv.")
    assert "First" not in md_table(frame.head(60), max_rows=60, csv="coverage")


def test_every_figure_states_its_n(tmp_path, monkeypatch):
    import langmix.report_figures as rep
    from langmix.analysis import run_all

    notes = {}
    real = rep._save

    def spy(fig, plots, stem, note=""):
        notes[stem] = note
        return real(fig, plots, stem, note)

    monkeypatch.setattr(rep, "_save", spy)
    a = run_all(simulate(Effects(), replace(SHAPE, n_items=30), seed=7), n_boot=100)
    made = rep.figures(a, tmp_path)
    assert made and set(notes) == set(made)
    assert all(n.startswith("n = up to 30 items x 2 seeds per cell; ") for n in notes.values()), notes


@pytest.mark.parametrize("designs", [("base",), ("english_only",), ("base", "english_only")])
def test_report_on_a_study_without_comparisons_says_so(tmp_path, designs):
    """Only the base model (or English-only runs): every analysis that needs a comparison says why it cannot run,
    and the report is still written (a study whose fine-tuning runs all failed ends here)."""
    shape = replace(SHAPE, sizes=(1_000_000_000,), seeds=(0,), n_items=20, include_base=True)
    items = simulate(Effects(), shape, seed=3)
    items = items[items["design"].isin(designs)].reset_index(drop=True)
    md = (build_report(items, tmp_path / "r", "partial").parent / "report.md").read_text()
    findings = md.split("## ")[1]
    assert "Cannot answer (typology): no multilingual mixtures" in findings
    if designs == ("base",):  # nothing fine-tuned: no coverage curve, no fine-tuned fidelity figure
        assert "Cannot answer (coverage)" in findings and "in the prompt's language" not in findings
    else:
        assert "Cannot answer (coverage)" not in findings
        assert re.search(r"answered in the prompt's language \d+\.\d% \[\d+\.\d, \d+\.\d\] of the time \(the mean "
                         r"over 20 cells; n=20 judged items x 1 seed per cell", findings)


def test_report_on_an_english_only_language_set(tmp_path):
    """Every table the report shows may be empty (only English evaluated): it says so instead of failing."""
    shape = replace(SHAPE, sizes=(1_000_000_000,), seeds=(0,), n_items=20, languages=("en",), include_base=True,
                    held_out=(), growing_order=())
    md = (build_report(simulate(Effects(), shape, seed=1), tmp_path / "r", "en").parent / "report.md").read_text()
    coverage = md.split("## 1. Coverage curves")[1].split("## 2.")[0]
    assert "Cannot answer: no rows for this table" in coverage
    # the reason is the missing languages, not missing mixtures (the study has EN+1 and growing mixtures)
    for name in ("resource", "capacity", "typology", "zero_shot"):
        assert f"Cannot answer ({name}): no non-English language evaluated (only English)" in md, name
    assert "no multilingual mixtures" not in md and "no fine-tuned mixtures" not in md


def test_intervals_without_width_are_not_printed_as_certainty(tmp_path):
    """Every answer correct: tables printed '1.000 [1.000, 1.000]', which reads as certainty."""
    shape = replace(SHAPE, sizes=(1_000_000_000,), seeds=(0,), n_items=20, languages=("en", "es", "sw"),
                    growing_order=(), held_out=())
    items = simulate(Effects(), shape, seed=3)
    items["correct"] = True
    md = (build_report(items, tmp_path / "r", "ceiling").parent / "report.md").read_text()
    assert "(no interval)" in md and "[1.000, 1.000]" not in md


def test_a_rebuild_leaves_no_table_or_figure_of_the_earlier_build(tmp_path):
    """Full study, then English-only runs into the same folder: en_plus_one.csv, plateau.csv, capacity.csv ... and
    their figures kept the first build's numbers beside a report that says it cannot answer those questions."""
    shape = replace(SHAPE, sizes=(1_000_000_000,), n_items=20)
    items = simulate(Effects(), shape, seed=4)
    out = tmp_path / "r"
    build_report(items, out, "full")
    first = {p.name for p in (out / "tables").iterdir()} | {p.name for p in (out / "plots").iterdir()}
    assert {"en_plus_one.csv", "plateau.csv", "capacity.csv", "zero_shot.csv", "en_plus_one.png"} <= first
    (out / "tables" / "my_notes.csv").write_text("mine")
    (out / "plots" / "my_plot.png").write_bytes(b"mine")
    build_report(items[items["design"] == "english_only"].reset_index(drop=True), out, "English-only")
    tables = {p.name for p in (out / "tables").iterdir()}
    plots = {p.name for p in (out / "plots").iterdir()}
    assert "en_plus_one.csv" not in tables and "plateau.csv" not in tables and "capacity.csv" not in tables
    assert "en_plus_one.png" not in plots and "resource.svg" not in plots
    assert {"per_language.csv", "coverage.csv", "my_notes.csv"} <= tables and "my_plot.png" in plots
    assert (out / "tables" / "my_notes.csv").read_text() == "mine"


def test_every_table_and_figure_is_known_to_the_rebuild(report):
    from langmix.report import PLOTS, TABLES

    out = report.parent
    assert {p.stem for p in (out / "tables").iterdir()} <= set(TABLES)
    assert {p.stem for p in (out / "plots").iterdir()} == set(PLOTS)


ODD = {"en+sw": "en+sw|pipe", "grow-3": "grow\nline <b>bold</b>", "all-minus-sw": r"core $\nope{x}$"}


def test_free_names_neither_break_a_table_nor_become_math_or_html(tmp_path):
    """Mixture and model names are free strings: a '|' or a line break split report.md's table rows, '<b>' rendered
    as HTML, and matplotlib parsed '$...$' as math ('core $\\nope{x}$' raised ParseFatalException: no report)."""
    shape = replace(SHAPE, sizes=(1_000_000_000,), n_items=20, tasks=("math",), languages=("en", "es", "sw", "te"),
                    growing_order=("es", "sw", "te"), held_out=("sw",))
    items = simulate(Effects(), shape, seed=8)
    items["mixture"] = items["mixture"].astype(str).replace(ODD)
    items["model"] = items["model"].astype(str) + "|m"
    html_path = build_report(items, tmp_path / "r", "odd | title <i>")
    md = (html_path.parent / "report.md").read_text()
    assert md.startswith("# odd | title &lt;i>\n") and "<b>" not in md and "<i>" not in md
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert any("en+sw\\|pipe" in r for r in rows) and any("grow line &lt;b>bold&lt;/b>" in r for r in rows)
    assert any(r"core $\\nope{x}$" in r for r in rows) and any("1b\\|m" in r for r in rows)
    tables = md.split("\n\n")
    for block in (b for b in tables if b.startswith("|")):
        cells = [len(re.findall(r"(?<!\\)\|", line.replace("\\\\", ""))) for line in block.splitlines()]
        assert len(set(cells)) == 1, block  # every row has the header's cells
    svg = (html_path.parent / "plots" / "fidelity.svg").read_text()
    assert "<!-- core $\\nope{x}$ -->" in svg  # drawn as the literal name
    page = html_path.read_text()
    assert "grow\nline &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page


def test_the_coverage_table_shows_matched_languages_and_names_those_left_out(tmp_path):
    """The coverage table pooled different language sets per level (composition read as coverage); now its 'all'
    column is over the languages evaluated at every level, and the report names the languages left out."""
    shape = replace(SHAPE, sizes=(1_000_000_000,), n_items=20, tasks=("math",), languages=("en", "es", "sw", "te"),
                    growing_order=("es", "sw", "te"), held_out=())
    items = simulate(Effects(), shape, seed=9)
    items = items[~((items["mixture"] == "grow-3") & (items["language"] == "te"))]  # the only 3-language mixture
    md = (build_report(items, tmp_path / "r", "cov").parent / "report.md").read_text()
    coverage = md.split("## 1. Coverage curves")[1].split("## 2.")[0]
    header = "| model | task | n_train_languages | all | seen | unseen | n_seen | n_unseen | n_items | n_seeds |"
    assert header in coverage
    assert ("Left out of these curves, not evaluated at every coverage level (the levels would average different "
            "languages): a-1b/math/te (no cell at 3 training languages).") in coverage


def test_sections_name_what_their_gains_leave_out_for_want_of_english_only(tmp_path):
    """A model with no English-only run dropped out of the resource and typology sections without a word (probe D3)."""
    from tests.analysis.test_no_reference import partial_study

    md = (build_report(partial_study(), tmp_path / "r", "partial").parent / "report.md").read_text()
    line = ("Left out of this section's figures for want of an English-only run to compare with: a-4b/math, "
            "a-0.1b/math/ja (not scored under English-only).")
    sections = md.split("\n## ")
    for title in ("2. ", "3. ", "5. "):  # resource gains, EN+1, typology
        body = next(s for s in sections if s.startswith(title))
        assert line in body, body
    assert md.count("left out for want of an English-only run to compare with: a-4b/math") >= 4


def test_clearing_an_earlier_build_tolerates_files_already_gone(tmp_path, monkeypatch):
    """Two builds at once: one saw a table (is_file) that the other then removed, and died in unlink() with
    FileNotFoundError. A file already gone is what the clean-up wanted."""
    from langmix import report as report_module

    tables, plots = tmp_path / "tables", tmp_path / "plots"
    tables.mkdir()
    plots.mkdir()
    (tables / "coverage.csv").write_text("x\n")
    (tmp_path / "notes.txt").write_text("mine\n")
    monkeypatch.setattr(Path, "is_file", lambda self: True)  # every output "seen", then (but one) removed by another
    report_module._clear_outputs(tables, plots)
    assert list(tables.iterdir()) == [] and (tmp_path / "notes.txt").exists()


def _three_mixtures(monkeypatch):
    """English-only, EN+sw and core3 (en, es, sw), 40 items, seeds 0 and 1: coverage levels 2 and 3 above one
    training language (the probe's small study)."""
    import numpy as np

    from tests.analysis import hand

    monkeypatch.setitem(hand.MIXTURES, "core3", ("fixed", "en,es,sw"))
    return hand.hand_table(lambda m, lang, i: np.full(len(i), 0.5 if m == "en" else 0.6), n_items=40, seed=2,
                           seeds={"en": (0, 1), "en+sw": (0, 1), "core3": (0, 1)})


def test_too_few_coverage_levels_for_a_plateau_are_said_and_no_table_is_named_unwritten(tmp_path, monkeypatch):
    html = build_report(_three_mixtures(monkeypatch), tmp_path / "r", "two levels")
    out = html.parent
    md = (out / "report.md").read_text()
    assert not (out / "tables" / "plateau.csv").exists()
    why = ("locating a plateau needs at least 3 coverage levels above one training language, and the most any "
           "model, task and resource group has is 2 (2 and 3 training languages)")
    assert f"Cannot answer (plateau): {why}." in md.split("## ")[1]  # in the findings
    resource = md.split("## 2. Resource groups and the plateau")[1].split("## 3.")[0]
    assert f"No plateau table: {why}." in resource
    for text in (md, html.read_text()):
        named = set(re.findall(r"tables/(\w+)\.csv", text))
        assert named and {n for n in named if not (out / "tables" / f"{n}.csv").exists()} == set()


def test_answers_without_a_verdict_are_in_no_report_n(tmp_path, monkeypatch):
    import pandas as pd

    items = _three_mixtures(monkeypatch).astype({"correct": object, "response_language": object})
    core3 = (items["mixture"] == "core3") & (items["seed"] == 0)
    items.loc[core3 & (items["language"] == "es") & (items["source_id"] == "math-11"), "response_language"] = None
    items.loc[core3 & (items["language"] == "sw") & (items["source_id"] == "math-4"), "response_language"] = None
    items.loc[core3 & (items["language"] == "sw") & (items["source_id"] == "math-7"), "correct"] = None
    md = (build_report(items, tmp_path / "r", "unjudged").parent / "report.md").read_text()
    assert md.splitlines()[2].startswith("719 item verdicts (1 answer without one, unscored, in no figure); ")
    assert ("n=40 items x 2 seeds per cell; 238 of the cells' 240 answers language-judged, the 2 unjudged left "
            "out; each cell in section 7") in md
    assert "math: n=40 items x 2 seeds per model, 1 model; 719 of the cells' 720 answers scored, the 1 unscored " \
           "left out" in md
    fidelity = pd.read_csv(tmp_path / "r" / "tables" / "fidelity.csv").set_index(["mixture", "language"])
    assert fidelity.loc[("core3", "es"), ["n_items", "n_rows", "n_no_verdict"]].tolist() == [40, 79, 1]
