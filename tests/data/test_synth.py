import re

import pytest

from langmix.data import synth
from langmix.languages import MGSM_LANGUAGES


def test_items_are_deterministic_and_distinct():
    a = synth.make_items("math", "train", 200, seed=3)
    b = synth.make_items("math", "train", 200, seed=3)
    assert a == b
    assert len({synth.content_key(i) for i in a}) == 200
    assert synth.make_items("math", "train", 50, seed=4) != a[:50]


def test_eval_and_train_never_share_content():
    world = synth.SynthWorld(seed=0, train_pool=500, eval_items=100)
    for task in ("math", "api"):
        ev = {synth.content_key(i) for i in world.eval_source(task)}
        tr = {synth.content_key(i) for i in world.train_source(task)}
        assert not ev & tr
        assert all("-eval-" in i.source_id for i in world.eval_source(task))


@pytest.mark.parametrize("lang", MGSM_LANGUAGES)
def test_math_is_parallel_across_languages(lang):
    for item in synth.make_items("math", "eval", 20, seed=0):
        ex = synth.to_example(item, lang)
        assert ex.reference["answer"] == item.answer
        numbers = [int(n) for n in re.findall(r"\d+", ex.messages[0]["content"])]
        assert item.start in numbers and all(y in numbers for _, y in item.steps)
        solution = ex.messages[-1]["content"]
        assert solution.endswith(synth.load_templates(lang)["math"]["answer"].format(z=item.answer))
        assert synth.answer_phrase(lang) in solution


@pytest.mark.parametrize("lang", MGSM_LANGUAGES)
def test_api_targets_are_language_neutral(lang):
    items = synth.make_items("api", "eval", 30, seed=0)
    for item in items:
        ex = synth.to_example(item, lang)
        en = synth.to_example(item, "en")
        assert ex.messages[-1] == en.messages[-1]  # same JSON call in every language
        assert ex.tools == synth.TOOLS
        for key, value in item.arguments:
            if key in ("city", "source", "target", "amount", "hour"):
                assert str(value) in ex.messages[1]["content"]


def test_arithmetic_is_right():
    for item in synth.make_items("math", "x", 300, seed=1):
        x = item.start
        for op, y in item.steps:
            x = {"add": x + y, "sub": x - y, "mul": x * y}[op]
            assert x >= 0
        assert x == item.answer


def test_pretraining_corpus_is_skewed_and_excludes_eval():
    ev = {"math": {synth.content_key(i) for i in synth.make_items("math", "eval", 50, 0)}}
    corpus = synth.pretraining_corpus({"en": 1.0, "sw": 0.1}, 200, seed=0, exclude=ev)
    assert len(corpus["en"]) == 200 and len(corpus["sw"]) == 20
    eval_questions = {synth.render_math(i, "en")[0] for i in synth.make_items("math", "eval", 50, 0)}
    assert not any(q in doc for doc in corpus["en"] for q in eval_questions)


def test_unknown_task_and_missing_template():
    with pytest.raises(ValueError, match="unknown task"):
        synth.make_items("poetry", "train", 1, 0)
    with pytest.raises(synth.TemplateError, match="no synthetic templates"):
        synth.load_templates("yo")
