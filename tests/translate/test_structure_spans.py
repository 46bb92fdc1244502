"""JSON and fenced code inside a translated turn: protected from the translator where it keeps placeholders, and
checked after in every case (the README's promise; `Check.structure` was never set, so no check ran)."""

import json

import pytest

from langmix.records import Example
from langmix.translate.cache import TranslationCache
from langmix.translate.pipeline import translate_examples
from langmix.translate.structure import formulas_preserved, math_spans, protect, restore, structure_preserved
from langmix.translate.validate import Check, validate

FIELDS = '{"status": "closed", "owner": "maria"}'
USER = f"Please update ticket 4821 with these fields: {FIELDS}"


def _ticket() -> Example:
    call = {"name": "update_ticket", "arguments": {"ticket_id": 4821, "fields": json.loads(FIELDS)}}
    return Example(id="t1-en", source_id="t1", task="api", language="en", messages=[
        {"role": "user", "content": USER}, {"role": "assistant", "content": json.dumps(call)}],
        reference={"calls": [{"update_ticket": {"ticket_id": [4821], "fields": [json.loads(FIELDS)]}}]})


class Translator:
    name, model_id, prompt_version = "t", "t", "v1"

    def __init__(self, answer, protects_numbers=False):
        self.answer, self.protects_numbers, self.seen = answer, protects_numbers, []

    def translate(self, requests):
        self.seen += [r.text for r in requests]
        return [self.answer(r.text) for r in requests]


@pytest.mark.parametrize("answer, reasons", [
    ('Actualiza el ticket 4821 con estos campos: {"estado": "cerrado", "propietario": "maria"}',
     {"structure_changed": 1}),  # keys and values translated: the call's `fields` no longer match the turn
    ('Actualiza el ticket 4821 con estos campos: {"status": "cerrado", "owner": "maria"}', {"structure_changed": 1}),
    ('Actualiza el ticket 4821 con estos campos: {"status":"closed","owner":"maria"}', {}),  # spacing is no change
    (f"Actualiza el ticket 4821 con estos campos: {FIELDS}", {}),
])
def test_json_in_a_user_turn_must_come_back_unchanged(tmp_path, answer, reasons):
    out, qa = translate_examples([_ticket()], ["es"], Translator(lambda text: answer),
                                 TranslationCache(tmp_path / "c.sqlite"), ["en", "es"], retries=0, policy="flag")
    assert dict(qa["es"].reasons) == reasons


def test_json_is_hidden_from_a_translator_that_keeps_placeholders(tmp_path):
    translator = Translator(lambda text: text.replace("Please update ticket", "Actualiza el ticket")
                            .replace("with these fields:", "con estos campos:"), protects_numbers=True)
    out, qa = translate_examples([_ticket()], ["es"], translator, TranslationCache(tmp_path / "c.sqlite"),
                                 ["en", "es"], retries=0)
    assert translator.seen == ["Please update ticket ⟦0⟧ with these fields: ⟦1⟧"]
    assert qa["es"].passed == 1 and out[0].messages[0]["content"] == f"Actualiza el ticket 4821 con estos campos: " \
                                                                     f"{FIELDS}"


def test_structured_spans_are_protected_whole():
    text = 'Set {"a": [1, 2], "b": "x"} and run:\n```\nprint(3)\n```\nthen add 5 to {name}.'
    masked, spans = protect(text)
    assert masked == "Set ⟦0⟧ and run:\n⟦1⟧\nthen add ⟦2⟧ to {name}."
    assert spans == ['{"a": [1, 2], "b": "x"}', "```\nprint(3)\n```", "5"] and restore(masked, spans)[0] == text
    assert structure_preserved(text, text.replace("run:", "ejecuta:"))
    assert not structure_preserved(text, text.replace("print(3)", "imprimir(3)"))
    assert not structure_preserved(text, text.replace('"x"', '"equis"'))
    assert "structure_changed" in validate(USER, USER.replace("closed", "cerrado").replace("Please", "Por favor"),
                                           "es", ["en", "es"], Check(structure=True))


def _spans_char_by_char(text):
    """The earlier scan (one step per character), kept as the reference `structured_spans` must equal."""
    import re

    from langmix.translate import structure

    out, fenced, i = [], [m.span() for m in re.finditer(r"```.*?```", text, re.S)], 0
    while i < len(text):
        block = next((span for span in fenced if span[0] == i), None)
        if block:
            out.append(block)
            i = block[1]
            continue
        if text[i] in "{[" and not any(a <= i < b for a, b in fenced):
            try:
                obj, end = structure._DECODER.raw_decode(text, i)
            except ValueError:
                obj, end = None, i
            if (isinstance(obj, dict) and obj) or (isinstance(obj, list) and any(
                    isinstance(v, (dict, list, str)) for v in obj)):
                out.append((i, end))
                i = end
                continue
        i += 1
    return out


def test_structured_spans_equal_the_character_by_character_scan_on_random_texts():
    """`structured_spans` visits only fences and brackets (it stepped through every character, and looked every
    fence up at each one); on texts built from JSON, fences, brackets in and around them and prose, it finds the
    same spans."""
    import random

    from langmix.translate.structure import structured_spans

    pieces = ['{"a": 1}', '[1, 2]', '["x"]', '{"k": ["v", {"n": 2}]}', "```", "```py\nx = {'a': 1}\n```", "{", "[",
              "]", "}", "{}", "[]", " text ", "\n", '"', "{\"a\": ```}", "[```]", "ö", "{name}"]
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert structured_spans(text) == _spans_char_by_char(text), text


LATEX = r"Compute $\frac{3}{4} \times 8$ and then add the number of days in a week. What is the result?"


@pytest.mark.parametrize("text, spans", [
    (LATEX, [r"$\frac{3}{4} \times 8$"]),
    (r"Let $x$ be $n + 1 = y$, so $$x^2 = 4$$ and \(a_1\) or \[b\].",
     ["$x$", "$n + 1 = y$", "$$x^2 = 4$$", r"\(a_1\)", r"\[b\]"]),
    ("She sells eggs for $2 per egg. How much $ does she make?", []),  # money, not math
    ("It costs $2 and $3, or $5-$10.", []),
    ("Eliza will receive $12 x 5 =$<<12*5=60>>60 for overtime.", []),  # GSM8K's money arithmetic
    ("```\n$x$\n``` and $y$", ["$y$"]),  # inside fenced code it is code
])
def test_latex_math_spans_are_found_and_money_is_not(text, spans):
    assert [text[a:b] for a, b in math_spans(text)] == spans


def test_latex_formulas_are_protected_whole_and_checked():
    """README promised that formulas are protected, but only their digits were: `$\\frac{3}{4} \\times 8$` came
    back as `$\\frac{3}{4} $ ... suma 8 veces`, every number kept, another question asked of the answer 13."""
    masked, spans = protect(LATEX)
    assert masked.startswith("Compute ⟦0⟧ and then") and spans[0] == r"$\frac{3}{4} \times 8$"
    rewritten = r"Calcula $\frac{3}{4} $ y luego suma 8 veces el número de días de una semana. ¿Cuál es el resultado?"
    assert validate(LATEX, rewritten, "es", ["en", "es"]) == ["formula_changed"]
    good = r"Calcula $\frac{3}{4}\times 8$ y luego suma el número de días de una semana. ¿Cuál es el resultado?"
    assert validate(LATEX, good, "es", ["en", "es"]) == []
    # words in \text{}, the language's decimal separator and the delimiters may change
    assert formulas_preserved(r"\(3.5 \text{ apples}\)", r"$3{,}5 \text{ manzanas}$")
    assert not formulas_preserved(r"$x^2 + y$", r"$x^2 - y$") and not formulas_preserved("$x$ and $x$", "$x$ y x")
    assert validate("Find $x^2 + y$.", "Halla $x^3 + y$.", "es", ["en", "es"]) == ["numbers_changed",
                                                                                  "formula_changed"]
    assert validate(LATEX, good.replace("{3}{4}", "{4}{3}"), "es", ["en", "es"]) == ["formula_changed"]  # same numbers


@pytest.mark.parametrize("answer, reasons", [
    ("Calcula ⟦0⟧ y luego suma el número de días de una semana. ¿Cuál es el resultado?", {}),
    # the probe's answer under the old masking (digits only): the formula's structure rewritten
    (r"Calcula $\frac{⟦0⟧}{⟦1⟧} $ y luego suma ⟦2⟧ veces el número de días de una semana. ¿Cuál es el resultado?",
     {"formula_changed": 1, "numbers_changed": 1, "placeholder_lost": 1}),
])
def test_a_rewritten_formula_is_excluded(tmp_path, answer, reasons):
    ex = Example(id="q-en", source_id="q", task="math", language="en", reference={"answer": 13},
                 messages=[{"role": "user", "content": LATEX}])
    translator = Translator(lambda text: answer, protects_numbers=True)
    out, qa = translate_examples([ex], ["es"], translator, TranslationCache(tmp_path / "c.sqlite"), ["en", "es"],
                                 retries=0)
    assert translator.seen == ["Compute ⟦0⟧ and then add the number of days in a week. What is the result?"]
    assert dict(qa["es"].reasons) == reasons and len(out) == (0 if reasons else 1)
    if not reasons:
        assert out[0].messages[0]["content"].startswith(r"Calcula $\frac{3}{4} \times 8$ y luego")
