from __future__ import annotations

import numpy as np
import pytest

from langmix import plan
from langmix.analysis.core import AnalysisError, cell_bootstrap
from langmix.analysis.simulate import Effects, StudyShape, simulate

SHAPE = StudyShape(families=("a",), sizes=(100_000_000, 1_000_000_000), seeds=(0, 1), n_items=100)


@pytest.fixture(scope="module")
def inclusion_study():
    # direct inclusion is worth 10 points, zero-shot transfer nothing: the planner must pick the targets
    items = simulate(Effects(seen_gain=0.10), SHAPE, seed=21)
    return items, cell_bootstrap(items, n_boot=300)


def test_recommend_picks_the_targets_when_inclusion_is_what_helps(inclusion_study):
    items, cells = inclusion_study
    rec = plan.recommend(items, ["sw", "bn", "te"], budget=1000, max_languages=4, cells=cells)
    assert rec.languages == ["en", "bn", "sw", "te"] or sorted(rec.languages) == ["bn", "en", "sw", "te"]
    assert rec.examples_per_language == {c: 250 for c in rec.languages}
    assert rec.ci_low <= rec.predicted_gain <= rec.ci_high
    assert rec.predicted_gain == pytest.approx(0.10, abs=0.03)
    assert len(rec.runners_up) == 4 and all(r["predicted_gain"] <= rec.predicted_gain for r in rec.runners_up)
    seen = rec.coefficients.set_index("term").loc["seen"]
    assert seen["ci_low"] > 0


def test_to_study_config_tests_the_recommendation(inclusion_study):
    items, cells = inclusion_study
    rec = plan.recommend(items, ["sw"], budget=300, max_languages=2, cells=cells)
    assert rec.languages == ["en", "sw"]
    cfg = plan.to_study_config(rec, {"name": "q", "languages": ["en", "es"], "budget": {"total": 10}})
    assert cfg["languages"][:3] == ["en", "es", "sw"] and cfg["budget"] == {"total": 300, "mode": "fixed_total"}
    assert cfg["mixtures"][:2] == [{"design": "english_only"},
                                   {"design": "fixed", "name": "planned", "languages": ["en", "sw"]}]
    from langmix.config import StudyConfig

    StudyConfig.model_validate(cfg)


def test_validate_loo_ranks_mixtures(inclusion_study):
    items, cells = inclusion_study
    loo = plan.validate_loo(items, cells=cells)
    assert loo.attrs["n_mixtures"] == 21
    assert loo.attrs["rho_ci_low"] <= loo.attrs["rho"] <= loo.attrs["rho_ci_high"]
    assert loo.attrs["rho"] > 0.5


def test_the_whole_budget_is_split_and_small_budgets_shrink_the_set(inclusion_study):
    items, cells = inclusion_study
    rec = plan.recommend(items, ["sw"], budget=10, max_languages=4, cells=cells)
    assert sum(rec.examples_per_language.values()) == 10  # 4 languages: 3, 3, 2, 2 (none dropped)
    assert max(rec.examples_per_language.values()) - min(rec.examples_per_language.values()) <= 1
    small = plan.recommend(items, ["sw"], budget=2, max_languages=4, cells=cells)
    assert len(small.languages) <= 2 and sum(small.examples_per_language.values()) == 2
    with pytest.raises(AnalysisError, match="at least one example"):
        plan.recommend(items, ["sw"], budget=0, max_languages=4, cells=cells)
    with pytest.raises(AnalysisError, match="at least 2"):
        plan.recommend(items, ["sw"], budget=100, max_languages=1, cells=cells)


def test_plan_from_a_small_finished_study(tmp_path, finished_small_study):
    """`langmix plan --from` on a study too small to validate by leave-one-mixture-out: the recommendation and a
    line saying why it was not checked (it crashed on the quickstart's three multilingual mixtures). Its one
    mixture does not separate the terms: only en+sw (measured) is determined, and the output says so."""
    import yaml
    from typer.testing import CliRunner

    from langmix.cli import app
    from langmix.config import StudyConfig

    out = tmp_path / "next.yaml"
    result = CliRunner().invoke(app, ["plan", "--from", str(finished_small_study), "--targets", "sw", "--budget",
                                      "100", "--max-languages", "4", "--write", str(out)])
    assert result.exit_code == 0, result.output
    assert "recommended: en 50, sw 50 examples" in result.output or "recommended: en 100 examples" in result.output
    assert "leave-one-mixture-out ranking: not checked (only 1 multilingual mixture: at least 4" in result.output
    assert "warning: the cells cannot separate the terms" in result.output
    assert "1 seed). Intervals cover item sampling only (one seed" in result.output
    assert "not in this plan" not in result.output  # every run is done
    StudyConfig.model_validate(yaml.safe_load(out.read_text()))


def test_english_is_refused_as_a_target(inclusion_study):
    """The model is fitted on non-English gains only: an English target was pure extrapolation (a probe's planted
    study with no English gain got 'en, zh, ja, th: +21.5 points')."""
    items, cells = inclusion_study
    for targets in (["en"], ["sw", "en"]):
        with pytest.raises(AnalysisError, match="English cannot be a target"):
            plan.recommend(items, targets, budget=100, max_languages=4, cells=cells)


def test_identification_names_the_terms_the_cells_cannot_separate():
    x = np.array([[1.0, 0, 1, 0, 0, 0.3, 0, 0.3], [1.0, 1, 1, 0, 0, 0.5, 1, 0.0], [1.0, 0, 1, 0, 1, 0.4, 0, 0.4]])
    ident = plan.identification(x)
    assert ident.rank == 3
    assert "log2_k" in ident.unseparated and "family_included" in ident.unseparated
    assert ident.identified(x).all() and ident.identified(x.mean(axis=0)).all()  # rows and their combinations
    other_k = x[0].copy()
    other_k[2] = 2.0  # another number of training languages than every fitted mixture
    assert not ident.identified(other_k).any()
    assert plan.identification(np.eye(8)).unseparated == []


def test_a_fit_that_cannot_separate_its_terms_searches_only_the_sets_it_determines(inclusion_study):
    """English-only and en+sw only (a partly finished study): k is the same in every cell, so every set of another
    size was scored by an arbitrary least-squares solution (it recommended 4 languages). Now only determined sets are
    searched (here en+sw), whose predicted gain does not depend on how the unseparated terms are split."""
    items, _ = inclusion_study
    part = items[items["mixture"].isin(["en", "en+sw"])]
    cells = cell_bootstrap(part, n_boot=100)
    rec = plan.recommend(part, ["sw", "te"], budget=400, max_languages=4, candidates=list(SHAPE.languages),
                         cells=cells)
    assert rec.languages == ["en", "sw"]
    acc = part.groupby(["model", "mixture", "language"])["correct"].mean()
    measured_sw = np.mean([acc[m, "en+sw", "sw"] - acc[m, "en", "sw"] for m in part["model"].unique()])
    assert rec.per_target["sw"] == pytest.approx(measured_sw, abs=1e-9)  # the only trained cell: fitted exactly
    _, x, y, _ = plan._design(cells)
    null = np.linalg.svd(x)[2][-1]  # a direction the cells do not see: any multiple of it fits them as well
    xt = np.array([plan._features(t, ("en", "sw"), plan.distances("syntactic")) for t in ("sw", "te")])
    assert (xt @ (plan._fit(x, y) + 5 * null)).mean() == pytest.approx(rec.predicted_gain, abs=1e-9)
    assert any("cannot separate the terms" in w and "log2_k" in w for w in rec.warnings), rec.warnings
    assert np.isnan(rec.coefficients.set_index("term").loc["log2_k", "coef"])
    with pytest.raises(AnalysisError, match="cannot separate the terms"):  # en+te: te never trained, k fixed
        plan.recommend(part, ["te"], budget=100, max_languages=2, candidates=["en", "te"], cells=cells)


def test_every_tying_set_is_counted(inclusion_study):
    """All 175 sets tie when no answer is ever right; the note said '4 runner-up sets tie' (the runners-up shown)."""
    items, _ = inclusion_study
    wrong = items.assign(correct=False)
    rec = plan.recommend(wrong, ["sw"], budget=100, max_languages=4, candidates=list(SHAPE.languages),
                         cells=cell_bootstrap(wrong, n_boot=50))
    assert rec.languages == ["en"] and rec.n_ties == 175
    assert "175 of the 175 other sets searched tie with the recommendation" in rec.note


def test_extrapolated_targets_are_flagged(inclusion_study):
    items, cells = inclusion_study
    rec = plan.recommend(items, ["ko"], budget=100, max_languages=2, candidates=list(SHAPE.languages), cells=cells)
    assert set(rec.extrapolated) == {"ko"} and "not evaluated" in rec.extrapolated["ko"]
    no_te = items[~items["train_languages"].str.contains("te")]
    rec = plan.recommend(no_te, ["te"], budget=100, max_languages=2, candidates=["en", "te"],
                         cells=cell_bootstrap(no_te, n_boot=100))
    assert rec.languages == ["en", "te"]
    assert "no fitted mixture trains on it" in rec.extrapolated["te"]
    assert any(w.startswith("extrapolated target te") for w in rec.warnings)
    rec = plan.recommend(items, ["sw"], budget=100, max_languages=2, cells=cells)
    assert rec.extrapolated == {}  # sw is trained on and evaluated in the study


def test_one_seed_intervals_say_they_cover_items_only(inclusion_study):
    items, cells = inclusion_study
    assert "item/seed sampling only" in plan.recommend(items, ["sw"], 100, 2, cells=cells).note
    one = items[items["seed"] == 0]
    rec = plan.recommend(one, ["sw"], 100, 2, cells=cell_bootstrap(one, n_boot=200))
    assert rec.ci_low > 0
    assert "item sampling only (one seed" in rec.note and "1 seed)" in rec.note
    assert "With one seed, an interval above zero does not show that this set beats English-only" in rec.note


def test_a_target_outside_the_candidates_is_searched_as_a_training_language(inclusion_study):
    """`langmix plan --targets yo` passed the study's languages as candidates, so yo (never in the study) was never
    considered for the training data - the user's question - and the pick was en, es (+0.011) where the planted
    +0.10 from training on a language gives en, ..., yo."""
    items, cells = inclusion_study
    rec = plan.recommend(items, ["yo"], budget=480, max_languages=4, candidates=list(SHAPE.languages), cells=cells)
    assert "yo" in rec.languages
    assert rec.predicted_gain == pytest.approx(0.10, abs=0.04)
    assert "not evaluated" in rec.extrapolated["yo"]  # it rests on the fit, and says so
    assert ("yo was not among the candidate languages; as a target, it was searched as a training language too."
            in rec.note)


THIN = StudyShape(families=("a",), sizes=(100_000_000,), seeds=(0,), n_items=20, tasks=("math",))


def test_thin_data_says_english_only_is_0_by_definition_and_that_the_sets_cannot_be_told_apart():
    """1 seed, 20 items: the CLI printed 'predicted mean target gain +0.000 [+0.000, +0.000]' for English-only (a
    zero-width interval reading as certainty) and nothing said the runners-up's intervals spanned about +-17 points."""
    items = simulate(Effects(seen_gain=-0.05), THIN, seed=1)
    rec = plan.recommend(items, ["te"], 1000, 4, candidates=list(THIN.languages),
                         cells=cell_bootstrap(items, n_boot=200))
    assert rec.english_only and np.isnan(rec.ci_low) and np.isnan(rec.ci_high)
    lines = plan.recommendation_lines(rec)
    assert lines[0] == ("recommended: en 1000 examples (English-only); predicted mean target gain 0 by definition "
                        "(English-only is what every gain is measured against: no interval)")
    assert all("[+0.000, +0.000]" not in line for line in lines)
    assert rec.n_indistinct == 4
    assert ("The data cannot tell English-only from 4 of the 4 runner-up sets shown (the interval of each difference "
            "includes zero; the runners-up's predicted gains have intervals spanning -9.") in rec.note
    assert rec.note.endswith("so it cannot show which of these sets is best: more seeds (one seed leaves run-to-run "
                             "variation out of every interval) and more evaluation items per language would narrow "
                             "the intervals.")


def test_a_best_set_whose_interval_includes_zero_is_not_told_from_english_only():
    items = simulate(Effects(seen_gain=-0.05), THIN, seed=2)
    rec = plan.recommend(items, ["te"], 1000, 4, candidates=list(THIN.languages),
                         cells=cell_bootstrap(items, n_boot=200))
    assert not rec.english_only and rec.ci_low < 0 < rec.ci_high
    assert "The data cannot tell the recommended set from English-only (the interval of each difference" in rec.note
    assert plan.recommendation_lines(rec)[0].startswith(f"recommended: {', '.join(f'{c} 500' for c in rec.languages)}"
                                                        f" examples; predicted mean target gain +0.0")


def test_cells_without_english_only_are_named_beside_the_recommendation():
    """The fit dropped a model with no English-only run (and languages its English-only run was not scored on)
    without a word (probe D3)."""
    from tests.analysis.test_no_reference import partial_study

    items = partial_study()
    rec = plan.recommend(items, ["sw"], 100, 2, cells=cell_bootstrap(items, n_boot=100))
    assert ("left out of the fit for want of an English-only run to compare with: a-4b/math, a-0.1b/math/ja (not "
            "scored under English-only)") in rec.warnings


def test_a_set_the_study_trained_shows_its_measured_gain_beside_the_prediction(inclusion_study):
    """The planner printed '+0.051 [+0.016, +0.081]' for en+sw with no word that the study measured en+sw itself at
    +4.3 points [-1.0, +9.0] (probe D6): the measurement is now shown, and what the recommendation rests on."""
    items, cells = inclusion_study
    rec = plan.recommend(items, ["sw"], 100, 2, cells=cells)
    assert rec.languages == ["en", "sw"]
    c = cells.cells.set_index(["model", "task", "mixture", "language"])["mean"]
    pairs = {(m, t) for m, t, _, _ in c.index}
    expected = np.mean([c[(m, t, "en+sw", "sw")] - c[(m, t, "en", "sw")] for m, t in pairs])  # 4 model-task pairs
    m = rec.measured
    assert m["estimate"] == pytest.approx(expected, abs=1e-12) and m["ci_low"] > 0
    assert m["mixtures"] == ["en+sw"] and m["targets"] == ["sw"] and m["n_items"] == 200
    assert plan.recommendation_lines(rec)[1] == (
        f"measured (en+sw, trained in the study): {m['estimate']:+.3f} [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}], "
        f"n=200 items x 2 seeds; the recommendation rests on the model's prediction, not on this direct measurement")


def test_a_measured_interval_that_includes_zero_says_so():
    shape = StudyShape(families=("a",), sizes=(1_000_000_000,), tasks=("math",), seeds=(0, 1), n_items=40,
                       languages=("en", "es", "sw", "zh", "ja", "de"))
    items = simulate(Effects(seen_gain=0.03), shape, seed=2)
    rec = plan.recommend(items, ["sw"], 100, 2, cells=cell_bootstrap(items, n_boot=200))
    assert rec.languages == ["en", "sw"] and rec.measured["ci_low"] < 0 < rec.measured["ci_high"]
    assert plan.recommendation_lines(rec)[1].startswith("measured (en+sw, trained in the study): +0.012 [")
    assert "n=40 items x 2 seeds, an interval that includes zero; the recommendation rests on the model's prediction"\
        in plan.recommendation_lines(rec)[1]


def test_an_extrapolated_target_says_its_interval_leaves_the_extrapolation_out(inclusion_study):
    """'+0.048 [+0.022, +0.071]' for yo, never evaluated, read as evidence (probe D6)."""
    items, cells = inclusion_study
    rec = plan.recommend(items, ["ko"], budget=100, max_languages=2, candidates=list(SHAPE.languages), cells=cells)
    assert rec.measured is None  # no mixture trains ko
    assert plan.recommendation_lines(rec)[0].endswith(
        "(extrapolated to ko: the intervals cover the fit's sampling error only, not the extrapolation)")
    rec = plan.recommend(items, ["sw"], 100, 2, cells=cells)
    assert "extrapolated" not in plan.recommendation_lines(rec)[0]


def test_a_runner_up_the_study_trained_shows_its_measured_gain_too(inclusion_study):
    """Only the recommended set showed what the study measured for it; a runner-up the study trained (en+es for
    target sw) showed its prediction alone, though its measurement may beat the recommendation's (stop-25 leftover)."""
    items, cells = inclusion_study
    rec = plan.recommend(items, ["sw"], 100, 2, cells=cells)
    by_set = {tuple(r["languages"]): r for r in rec.runners_up}
    c = cells.cells.set_index(["model", "task", "mixture", "language"])["mean"]
    pairs = {(m, t) for m, t, _, _ in c.index}
    expected = np.mean([c[(m, t, "en+es", "sw")] - c[(m, t, "en", "sw")] for m, t in pairs])
    es = by_set[("en", "es")]["measured"]
    assert es["estimate"] == pytest.approx(expected, abs=1e-12) and es["mixtures"] == ["en+es"]
    line = next(x for x in plan.recommendation_lines(rec) if x.startswith("runner-up: en, es: "))
    assert line.endswith(f"; measured (en+es, trained in the study): {es['estimate']:+.3f} [{es['ci_low']:+.3f}, "
                         f"{es['ci_high']:+.3f}], n=200 items x 2 seeds, an interval that includes zero")
    assert by_set[("en", "yo")]["measured"] is None  # never trained: a prediction only
    assert next(x for x in plan.recommendation_lines(rec) if x.startswith("runner-up: en, yo: ")).count(";") == 0


def test_a_measured_gain_without_an_interval_does_not_also_say_its_interval_includes_zero():
    """'+0.000 (no interval: ...), n=40 items x 2 seeds, an interval that includes zero' contradicted itself."""
    m = {"mixtures": ["en+sw"], "targets": ["sw"], "estimate": -0.00001, "ci_low": -0.00001, "ci_high": -0.00001,
         "degenerate": True, "n_items": 40, "n_seeds": 2, "n_seeds_min": 2, "n_rows": 160, "n_no_verdict": 0}
    assert plan._measured(m, ["en", "sw"], 1) == ("measured (en+sw, trained in the study): +0.000 (no interval: every "
                                                  "bootstrap replicate gave the same value), n=40 items x 2 seeds")
    m |= {"estimate": 0.01, "ci_low": -0.0002, "ci_high": 0.03, "degenerate": False, "n_rows": 157,
          "n_no_verdict": 3}
    assert plan._measured(m, ["en", "sw"], 1) == (
        "measured (en+sw, trained in the study): +0.010 [+0.000, +0.030], n=40 items x 2 seeds; 157 of the cells' "
        "160 answers scored, the 3 unscored left out, an interval that includes zero")


def test_a_gain_that_rounds_to_zero_has_no_minus_sign():
    assert plan._gain(["en", "sw"], -0.0004, -0.0003, 0.0125) == "+0.000 [+0.000, +0.013]"
    assert plan._gain(["en", "sw"], -0.0006, -0.02, 0.01) == "-0.001 [-0.020, +0.010]"
    assert plan._gain(["en", "sw"], -0.0004, 0.0, 0.0, degenerate=True).startswith("+0.000 (no interval")
