"""The argument checks of a translated API dialogue (`langmix.translate.api_arguments`)."""

import pytest

from langmix.records import Example
from langmix.translate.api_arguments import api_notes, occurs, verbatim_arguments
from langmix.translate.cache import TranslationCache
from langmix.translate.pipeline import qa_table, translate_examples


@pytest.mark.parametrize("value, text, found", [
    ("bar", "Llama a fulano y barra", False),  # inside a longer word: not the user's value
    ("Ann", "Annual report for Ann.", True),
    ("Ann", "Annual report", False),
    ("New York", "vuelos a New York, mañana", True),
    ("東京", "東京に行きたい", True),  # no spaces between Japanese words: any occurrence counts
    ("กรุงเทพ", "ไปกรุงเทพพรุ่งนี้", True),
    ("foo", "", False)])
def test_a_value_occurs_as_whole_words(value, text, found):
    assert occurs(value, text) is found


def test_verbatim_arguments_are_whole_words_of_the_request():
    """`verbatim_arguments` tested substrings: "bar" counted as written by the user in "barra" (stop-25 probe)."""
    reference = {"calls": [{"greet": {"name": ["bar"], "city": ["Lima"]}}]}
    assert verbatim_arguments(reference, "Saluda a barra en Lima") == ["greet.city"]
    assert verbatim_arguments(reference, "Saluda a bar en Lima") == ["greet.city", "greet.name"]


def _api_example(user: str, calls: dict) -> Example:
    return Example(id="k-en", source_id="k", task="api", language="en", messages=[
        {"role": "user", "content": user}, {"role": "assistant", "content": '{"name": "book"}'}],
        reference={"calls": [calls]})


@pytest.mark.parametrize("translation, noted", [
    ("Reserva una mesa para Kwame a las 7.", []),
    ("Reserva una mesa para Juan a las 7.", ["argument_not_in_request"]),  # the name localised
    ("予約してください、Kwameさんのために7時に。", [])])  # in a script without spaces
def test_an_argument_the_translated_request_no_longer_writes_is_noted(translation, noted):
    """"Kwame" -> "Juan" in the request while the call keeps "Kwame" was neither refused nor counted (stop-25
    translate probe D2): trained on, the call uses a value the request no longer states. Counted, not refused (a
    plain value may be translated on purpose)."""
    ex = _api_example("Book a table for Kwame at 7.", {"book": {"guest": ["Kwame"], "time": [7]}})
    assert api_notes(ex, [ex.messages[0]["content"]], [translation]) == noted


def test_the_note_is_counted_in_qa_and_kept_on_the_example(tmp_path):
    ex = _api_example("Book a table for Kwame at 7.", {"book": {"guest": ["Kwame"], "time": [7]}})

    class Localiser:
        name, model_id, prompt_version, protects_numbers = "t", "localiser", "v1", False

        def translate(self, requests):
            return ["Reserva una mesa para Juan a las 7." for _ in requests]

    out, qa = translate_examples([ex], ["es"], Localiser(), TranslationCache(tmp_path / "c.sqlite"), ["en", "es"],
                                 retries=0)
    assert qa["es"].passed == 1 and qa["es"].notes == {"argument_not_in_request": 1}
    assert out[0].reference["translation_notes"] == ["argument_not_in_request"]
    assert "argument_not_in_request 1" in qa_table(qa)
