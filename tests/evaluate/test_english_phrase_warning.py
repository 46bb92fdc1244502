"""A registry language with no answer phrase of its own (ar, hi, ko, id, yo) is scored strict against English's
phrase. A study run said so only where it wrote training targets (`data.answers`); `langmix score` said nothing.
The one place that scores (`evaluate.math.accepted_phrases`) now says it, once per language, on every path."""

import json
import logging

import pytest

from langmix import languages as langs
from langmix import tasks
from langmix.config import EvalConfig
from langmix.data.math_data import math_example
from langmix.evaluate import math as scorer
from langmix.evaluate.rescore import rescore
from langmix.evaluate.run import score_outputs
from langmix.tasks.base import TaskContext


@pytest.fixture
def warnings(monkeypatch, caplog):
    monkeypatch.setattr(scorer, "_ENGLISH_FALLBACK_WARNED", set(), raising=False)
    caplog.set_level(logging.WARNING, logger="langmix.evaluate.math")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "langmix.evaluate.math"]


def _says(messages, lang):
    return [m for m in messages if m.startswith(f"{lang} has no answer phrase in the language registry, so strict "
                                                "math scoring accepts only English's phrases in its outputs ('The answer is', ")]


def test_langmix_score_warns_once_per_language_and_scores_as_before(tmp_path, warnings):
    preds = tmp_path / "p.jsonl"
    rows = [{"language": lang, "output": f"The answer is {i}.", "reference": i}
            for i in range(3) for lang in ("hi", "ar", "sw", "en")]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    totals = rescore("math", preds, tmp_path / "v.jsonl")
    assert [totals[lang]["correct"] for lang in ("hi", "ar", "sw", "en")] == [3, 3, 0, 3]
    said = warnings()
    assert len(said) == 2 and len(_says(said, "hi")) == 1 and len(_says(said, "ar")) == 1, said
    assert "ANSWER_PHRASE_VARIANTS" in said[0]


def test_a_study_evaluation_and_its_re_scoring_warn_once_per_language(warnings):
    examples = [math_example(f"s{i}", lang, "q?", i, langs.answer_phrase(lang))  # ko, yo: English's (the loaders')
                for i in range(3) for lang in ("ko", "yo", "de")]
    outputs = [f"The answer is {i}." for i in range(3) for _ in range(3)]
    for _ in range(2):  # a fresh evaluation, then re-scoring of its stored outputs (the same `score_outputs`)
        predictions, _ = score_outputs(examples, outputs, EvalConfig(language_id=False), ["ko", "yo", "de"])
        assert [p["correct_strict"] for p in predictions] == [True, True, False] * 3
    said = warnings()
    assert len(said) == 2 and len(_says(said, "ko")) == 1 and len(_says(said, "yo")) == 1, said


def test_an_item_without_a_phrase_is_scored_against_english_as_langmix_score_does(warnings):
    """`score_math` and the task fall back to English's phrase where `langmix score` did (it alone did, silently)."""
    verdict = scorer.score_math("The answer is 18.", 18, "", "id")
    assert (verdict.strict, verdict.strict_correct) == (18, True)
    ex = math_example("s", "id", "q?", 18, "")
    assert tasks.get("math").score(ex, "Jawabannya 5. The answer is 18.", TaskContext())["correct_strict"] is True
    assert len(_says(warnings(), "id")) == 1


def test_no_warning_where_the_language_has_phrases_or_the_item_its_own(warnings):
    assert scorer.score_math("Jibu ni 18.", 18, "", "sw").strict == 18
    assert scorer.score_math("उत्तर है 18.", 18, "उत्तर है", "hi").strict == 18  # the item's own phrase
    assert scorer.score_math("The answer is 18.", 18, "", "hi", phrases=["The answer is"]).strict == 18  # chosen
    assert warnings() == []
    # no phrase is invented for hi: English's, every form English itself is scored with (review: "Answer: 18" in a
    # hi output was wrong where "The answer is 18" was right)
    assert scorer.accepted_phrases("", "hi") == ("The answer is", "The final answer is", "Answer:")
    assert scorer.score_math("Answer: 18", 18, "", "hi").strict_correct
