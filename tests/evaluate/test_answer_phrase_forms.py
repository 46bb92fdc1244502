"""Strict scoring accepts the same kinds of answer statements in every MGSM language: English's "Final answer: 18"
matched (through "Answer:") while es "Respuesta final: 18", fr "Réponse finale : 18", th "คำตอบสุดท้าย: 18" and
sw "Jibu la mwisho: 18" never did (0 of 250 MGSM golds each), nor zh "答案为18" or te "జవాబు 18"."""

import pytest

from langmix import languages as langs
from langmix.evaluate.math import score_math

# Per MGSM language, the kinds of forms English accepts: the exemplar phrase, the phrase with "final", the colon
# form, and the colon form with "final" (as a model writes them, with the language's own word order).
FORMS = {
    "en": ("The answer is {}.", "The final answer is {}.", "Answer: {}", "Final answer: {}"),
    "es": ("La respuesta es {}.", "La respuesta final es {}.", "Respuesta: {}", "Respuesta final: {}"),
    "fr": ("La réponse est {}.", "La réponse finale est {}.", "Réponse : {}", "Réponse finale : {}"),
    "de": ("Die Antwort lautet {}.", "Die endgültige Antwort lautet {}.", "Antwort: {}", "Endgültige Antwort: {}"),
    "ru": ("Ответ — {}.", "Окончательный ответ — {}.", "Ответ: {}", "Окончательный ответ: {}"),
    "zh": ("答案是{}。", "最终答案是{}。", "答案：{}", "最终答案：{}"),
    "ja": ("答えは{}です。", "最終的な答えは{}です。", "答え：{}", "最終的な答え：{}"),
    "th": ("คำตอบคือ {}", "คำตอบสุดท้ายคือ {}", "คำตอบ: {}", "คำตอบสุดท้าย: {}"),
    "sw": ("Jibu ni {}.", "Jibu la mwisho ni {}.", "Jibu: {}", "Jibu la mwisho: {}"),
    "bn": ("উত্তর হল {}।", "চূড়ান্ত উত্তর হল {}।", "উত্তর: {}", "চূড়ান্ত উত্তর: {}"),
    "te": ("సమాధానం {}.", "తుది సమాధానం {}.", "జవాబు: {}", "తుది జవాబు: {}"),
}
# Other ways of saying "the answer is" that the language's speakers write as often as its exemplar phrase
OTHER_FORMS = {"zh": ("答案为{}。", "最终答案为{}元。"), "te": ("జవాబు {}.",), "de": ("Die endgültige Antwort ist {}.",)}


def test_every_mgsm_language_has_the_forms():
    assert set(FORMS) == set(langs.MGSM_LANGUAGES)


@pytest.mark.parametrize("lang", langs.MGSM_LANGUAGES)
def test_each_kind_of_answer_statement_is_strict(lang):
    for form in FORMS[lang] + OTHER_FORMS.get(lang, ()):
        output = "3 + 15 = 18. " + form.format(18)
        verdict = score_math(output, 18, "", lang)
        assert (verdict.strict, verdict.reason) == (18, "ok"), (lang, output)
        bold = form.replace(":", ":**").replace("：", "：**")
        if bold != form:  # Markdown emphasis around a colon form: "**Final answer:** 18"
            assert score_math("**" + bold.format(18), 18, "", lang).strict == 18, (lang, bold)


@pytest.mark.parametrize("lang", langs.MGSM_LANGUAGES)
def test_a_form_of_another_language_is_not_strict(lang):
    """The forms are the language's own: a French final answer is no answer phrase in Swahili, and so on."""
    other = langs.MGSM_LANGUAGES[(langs.MGSM_LANGUAGES.index(lang) + 1) % len(langs.MGSM_LANGUAGES)]
    for form in FORMS[other][1:]:
        assert score_math(form.format(18), 18, "", lang).strict is None, (lang, form)


def test_every_form_on_every_mgsm_gold():
    """On the real MGSM golds: each language's four forms with the gold score right strict (the final colon form was
    0 of 250 in es, fr, th and sw, 250 of 250 in the other seven)."""
    from langmix.data.math_data import load_mgsm
    from tests.shared_data import shared

    examples = load_mgsm(shared("mgsm"))
    wrong = [(ex.language, form) for ex in examples for form in FORMS[ex.language]
             if not score_math(form.format(int(ex.reference["answer"])), ex.reference["answer"],
                               ex.reference["answer_phrase"], ex.language).strict_correct]
    assert len(examples) == 250 * 11 and wrong == []
