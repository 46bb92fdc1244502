import json
import re
from collections import Counter

import pytest

from langmix.data import synth
from langmix.evaluate.ast_check import check
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


def test_math_has_one_to_three_steps_of_every_operation():
    items = synth.make_items("math", "eval", 300, seed=0)
    assert {len(i.steps) for i in items} == {1, 2, 3}
    assert {op for i in items for op, _ in i.steps} == {"add", "sub", "mul"}


@pytest.mark.parametrize("lang", MGSM_LANGUAGES)
def test_api_targets_are_language_neutral_and_copied_from_the_request(lang):
    items = synth.make_items("api", "eval", 60, seed=0)
    for item in items:
        ex = synth.to_example(item, lang)
        en = synth.to_example(item, "en")
        assert ex.tools == synth.TOOLS
        request, reply = ex.messages[1]["content"], ex.messages[-1]["content"]
        if not item.relevant:
            assert ex.reference == {"calls": []}
            assert reply == synth.load_templates(lang)["api"]["no_tool"]
            continue
        assert ex.messages[-1] == en.messages[-1]  # same JSON call in every language
        assert json.loads(reply) == item.call
        for key, value in item.arguments:
            if key not in ("unit", "room", "on", "minute"):  # translated or reformatted values
                assert str(value) in request, (key, value, request)


@pytest.mark.parametrize("lang", MGSM_LANGUAGES)
def test_reference_replies_score_correct(lang):
    for item in synth.make_items("api", "eval", 60, seed=1):
        ex = synth.to_example(item, lang)
        verdict = check(ex.messages[-1]["content"], ex.reference["calls"], ex.tools)
        assert verdict.correct, (ex.messages[-1]["content"], verdict)


def test_api_world_cannot_be_gamed_by_one_output():
    items = synth.make_items("api", "eval", 400, seed=0)
    functions = Counter(i.function for i in items)
    assert set(functions) == {t["name"] for t in synth.TOOLS} | {""}
    assert 0.05 < functions[""] / len(items) < 0.16  # irrelevance items
    calls = Counter(json.dumps(i.call, sort_keys=True) for i in items)
    assert calls.most_common(1)[0][1] / len(items) < 0.12  # the best single call (the refusal) scores < 12%
    types = {p["type"] for t in synth.TOOLS for p in t["parameters"]["properties"].values()}
    assert types == {"string", "integer", "number", "boolean"}


@pytest.mark.parametrize("lang", MGSM_LANGUAGES)
def test_templates_cover_every_function_and_slot(lang):
    t = synth.load_templates(lang)["api"]
    for tool in synth.TOOLS:
        keys = ["set_lights_on", "set_lights_off"] if tool["name"] == "set_lights" else [tool["name"]]
        for key in keys:
            assert len(t[key]) == 2
    assert set(t["rooms"]) == set(synth.ROOMS) and set(t["units"]) == {"celsius", "fahrenheit"}
    assert len(t["irrelevant"]) == len(synth.IRRELEVANT_SLOTS)
    for text, slot in zip(t["irrelevant"], synth.IRRELEVANT_SLOTS):
        assert "{" + slot + "}" in text
    assert t["no_tool"] and "{" not in t["no_tool"]


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


def test_parallel_and_code_switched_shares():
    shares = {"en": 1.0, "sw": 1.0}
    english = synth.pretraining_corpus({"en": 1.0}, 1000, seed=0)["en"]
    mono = synth.pretraining_corpus(shares, 1000, seed=0)
    assert not any("\n" in d for docs in mono.values() for d in docs)
    assert not any("The answer is" in d or "Sorry" in d for d in mono["sw"])
    par = synth.pretraining_corpus(shares, 1000, seed=0, parallel_share=0.5)
    assert par["en"] == english  # the pivot's own documents are unchanged
    pairs = [d.split("\n") for d in par["sw"] if "\n" in d]
    expected = 0.5 * (1 - synth.PRETRAIN_MIX["arithmetic"])  # arithmetic documents are language-neutral
    assert abs(len(pairs) / 1000 - expected) < 0.08 and all(len(p) == 2 for p in pairs)
    # the same content twice: the same numbers in both halves, one half English
    assert all(sorted(re.findall(r"\d+", a)) == sorted(re.findall(r"\d+", b)) for a, b in pairs)
    mixed = synth.pretraining_corpus(shares, 200, seed=0, code_switch_share=1.0)
    maths = [d for d in mixed["sw"] if " = " in d]
    assert any("Now " in d and "Sasa " in d for d in maths)  # sentences of both languages in one document
    with pytest.raises(ValueError, match="at most 1"):
        synth.pretraining_corpus(shares, 10, seed=0, parallel_share=0.6, code_switch_share=0.6)


def test_unknown_task_and_missing_template():
    with pytest.raises(ValueError, match="unknown task"):
        synth.make_items("poetry", "train", 1, 0)
    with pytest.raises(synth.TemplateError, match="no synthetic templates"):
        synth.load_templates("yo")


@pytest.mark.parametrize("task", ["math", "api"])
def test_examples_built_without_validation_are_valid_and_serialise_alike(task):
    """to_example skips pydantic's validation for speed: every example it makes must validate to an equal
    example, with the same JSON line, and carry every field a validated one has."""
    from langmix.records import Example

    for item in synth.make_items(task, "train", 40, seed=3):
        for lang in MGSM_LANGUAGES:
            built = synth.to_example(item, lang)
            validated = Example.model_validate(built.model_dump())
            assert validated == built and validated.model_dump_json() == built.model_dump_json()
            assert built.model_fields_set == validated.model_fields_set


def test_math_sentences_equal_the_templates_formatted_with_every_field_at_once():
    """math_sentences formats templates with the name and item bound in advance (`_bind`): the sentences must be
    those of formatting each template with all its fields in one call, in every language."""
    items = synth.make_items("math", "train", 300, seed=11)
    for lang in MGSM_LANGUAGES:
        t = synth.load_templates(lang)["math"]
        for item in items:
            name, obj = t["names"][item.name], t["items"][item.item]
            question = [t["start"].format(name=name, item=obj, a=item.start)]
            solution = []
            for op, x, y, z in item.values():
                question.append(t[op].format(name=name, item=obj, b=y))
                solution.append(f"{x} {synth.OPS[op]} {y} = {z}. " + t["state"].format(name=name, item=obj, z=z))
            question.append(t["question"].format(name=name, item=obj))
            solution.append(t["answer"].format(z=item.answer))
            assert synth.math_sentences(item, lang) == (question, solution)


@pytest.mark.parametrize("template", ["{name} has {a} {item}.", "{{literal}} {name!r:>8} {item:.3} {a:>4}",
                                      "{item}{item} }}{{ {name}", "no fields"])
def test_binding_some_fields_then_the_rest_equals_formatting_all_at_once(template):
    fill = {"name": "Ana {x}", "item": "cups}"}
    assert synth._bind(template, fill).format(a=7) == template.format(**fill, a=7)


def test_trusted_examples_equal_model_construct():
    from langmix.records import Example, trusted_example

    values = {"id": "a-en", "source_id": "a", "task": "math", "language": "en",
              "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "r"}],
              "tools": None, "reference": {"answer": 3}}
    trusted, constructed = trusted_example(**values), Example.model_construct(**values)
    assert trusted == constructed and trusted.model_dump_json() == constructed.model_dump_json()
    for attribute in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
        assert getattr(trusted, attribute) == getattr(constructed, attribute)
    assert list(trusted.__dict__) == list(Example.model_fields)
    trusted.model_fields_set.add("x")  # each example has its own set
    assert "x" not in trusted_example(**values).model_fields_set

