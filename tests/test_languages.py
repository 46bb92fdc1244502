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
