import pytest

from langmix import languages as langs
from langmix.data.synth import template_languages


@pytest.mark.parametrize("code,expected", [("sw", "sw"), ("swa", "sw"), ("Swahili", "sw"), ("es-419", "es"),
                                           ("zh-Hans", "zh"), ("EN", "en"), ("ben", "bn"), ("ja-Hira", "ja")])
def test_resolve(code, expected):
    assert langs.resolve(code).code == expected


def test_unknown_code_lists_close_matches():
    with pytest.raises(langs.UnknownLanguageError) as err:
        langs.resolve("spanih")
    assert "es" in str(err.value).split("did you mean")[1]


def test_ambiguous_script_is_refused():
    with pytest.raises(langs.UnknownLanguageError, match="ambiguous"):
        langs.resolve("zh-Hant")


def test_duplicates_refused():
    with pytest.raises(langs.UnknownLanguageError, match="twice"):
        langs.resolve_all(["sw", "swa"])


def test_registry_facts():
    for code in langs.MGSM_LANGUAGES:
        lang = langs.get(code)
        assert lang.resource in {"high", "low"} and len(lang.uriel) == 3
    assert langs.get("sw").uriel == "swh" and langs.get("zh").uriel == "cmn"
    assert {c for c in langs.MGSM_LANGUAGES if langs.get(c).resource == "low"} == {"th", "sw", "bn", "te"}


def test_every_mgsm_language_has_templates():
    assert set(langs.MGSM_LANGUAGES) <= set(template_languages())


def test_answer_phrases_live_in_the_registry():
    assert langs.get("de").answer_phrases[:2] == ("Die Antwort lautet", "Die Antwort ist")
    assert langs.answer_phrase("ru") == "Ответ —" and "Ответ:" in langs.answer_phrases("ru")
    assert langs.answer_phrase("en") == "The answer is" and "Answer:" in langs.answer_phrases("en")
    assert langs.answer_phrases("yo") == () and langs.answer_phrase("yo") == "The answer is"
    for code in langs.MGSM_LANGUAGES:
        phrases = langs.answer_phrases(code)
        # at most: two exemplar phrases, each with "final", and a colon form (de)
        assert phrases[0] == langs.answer_phrase(code) and len(phrases) == len(set(phrases)) <= 5
        for i, phrase in enumerate(phrases):  # no phrase is redundant with an earlier, more general one
            assert not any(other.casefold() in phrase.casefold() for other in phrases[:i]), (code, phrase)


def test_exemplar_phrases_are_those_mgsm_uses():
    from langmix.data.math_data import exemplar_answer_phrases, load_mgsm_exemplars
    from tests.shared_data import shared

    exemplars = load_mgsm_exemplars(shared("mgsm", "exemplars.json"))
    assert set(exemplars) == set(langs.MGSM_LANGUAGES)
    derived = {code: exemplar_answer_phrases([a for _, a in items]) for code, items in exemplars.items()}
    assert derived == langs.MGSM_EXEMPLAR_PHRASES
    assert derived["de"] == ("Die Antwort lautet", "Die Antwort ist")  # 7 x "lautet", 1 x "ist"


@pytest.mark.parametrize("code", langs.MGSM_LANGUAGES)
def test_synthetic_templates_use_the_canonical_phrase(code):
    from langmix.data import synth

    assert synth.answer_phrase(code) == langs.answer_phrase(code)


def test_a_word_is_a_run_of_letters_defined_once():
    """The letters pattern was written out three times (translate/validate.py, translate/structure.py,
    evaluate/langid.py); each now uses languages.WORD."""
    from pathlib import Path

    import langmix

    assert langs.WORD.findall("living_room 3 Lagos東京 café") == ["living", "room", "Lagos東京", "café"]
    root = Path(langmix.__file__).parent
    defined = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py"))
               if r"[^\W\d_]" in p.read_text(encoding="utf-8")]
    assert defined == ["languages.py"]
