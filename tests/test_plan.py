from __future__ import annotations

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


def test_plan_from_a_small_finished_study(tmp_path, tiny_model_path):
    """`langmix plan --from` on a study too small to validate by leave-one-mixture-out: the recommendation and a
    line saying why it was not checked (it crashed on the quickstart's three multilingual mixtures)."""
    import yaml
    from typer.testing import CliRunner

    from langmix.cli import app
    from langmix.config import StudyConfig
    from langmix.study.runner import run_study
    from tests.conftest import small_study_dict

    tree = small_study_dict(tmp_path / "out", include_base=True)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    assert not run_study(StudyConfig.model_validate(tree))["failed"]
    out = tmp_path / "next.yaml"
    result = CliRunner().invoke(app, ["plan", "--from", str(config), "--targets", "sw", "--budget", "100",
                                      "--max-languages", "2", "--write", str(out)])
    assert result.exit_code == 0, result.output
    assert "recommended: en " in result.output
    assert "leave-one-mixture-out ranking: not checked (only 1 multilingual mixture: at least 4" in result.output
    StudyConfig.model_validate(yaml.safe_load(out.read_text()))
