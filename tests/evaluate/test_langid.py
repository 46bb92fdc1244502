"""Response-language identification: lingua restricted to the study's languages, each distinct text judged once."""

from langmix.evaluate import langid

TEXTS = {
    "en": "Anna has five apples and buys three more. How many apples does she have now?",
    "es": "Ana tiene cinco manzanas y compra tres más. ¿Cuántas manzanas tiene ahora?",
    "de": "Anna hat fünf Äpfel und kauft drei weitere. Wie viele Äpfel hat sie jetzt?",
    "sw": "Anna ana matofaa matano na ananunua matatu zaidi. Ana matofaa mangapi sasa?",
    "ja": "アンナはりんごを5個持っていて、さらに3個買います。今いくつ持っていますか？",
}
CODES = ["en", "es", "de", "sw", "ja"]


def test_detect_names_each_language_and_none_without_letters():
    langid._DETECTED.clear()
    texts = [*TEXTS.values(), "12 + 7 = 19.", ""]
    assert langid.detect(texts, CODES) == [*TEXTS, None, None]


def test_code_and_latex_are_in_no_language():
    """A LaTeX-only or code-only answer was judged English ("boxed", "print"), which counted it against the
    response-language fidelity of every other language."""
    langid._DETECTED.clear()
    texts = ["$9 \\times 2 = 18$. \\boxed{18}", "```python\nprint(sum([9, 9]))\n```", "`x = 18`",
             "```python\nx = 9 * 2\n```\n" + TEXTS["es"]]
    assert langid.detect(texts, CODES) == [None, None, None, "es"]


def test_repeated_texts_are_judged_once_and_agree_with_lingua(monkeypatch):
    langid._DETECTED.clear()
    calls: list[int] = []
    real = langid._detector

    class Counting:
        def __init__(self, detector):
            self.detector = detector

        def detect_languages_in_parallel_of(self, texts):
            calls.append(len(texts))
            return self.detector.detect_languages_in_parallel_of(texts)

    monkeypatch.setattr(langid, "_detector", lambda codes: Counting(real(codes)))
    # the same words with other numbers are the same text once digits and punctuation are stripped
    texts = [TEXTS["es"], TEXTS["es"].replace("cinco", "5"), TEXTS["es"] + " 42", TEXTS["en"], TEXTS["en"]]
    first = langid.detect(texts, CODES)
    assert first == ["es", "es", "es", "en", "en"]
    assert calls == [3]  # es, es with a digit where a word was, en
    assert langid.detect(list(reversed(texts)), list(reversed(CODES))) == list(reversed(first))
    assert calls == [3]  # all known: the order of the languages does not matter
    direct = real(tuple(sorted(CODES))).detect_languages_in_parallel_of(["sw text " + TEXTS["sw"]])
    assert langid.detect(["sw text " + TEXTS["sw"]], CODES) == [direct[0].iso_code_639_1.name.lower()]
    # another set of languages is another question: judged again
    assert langid.detect([TEXTS["es"]], ["en", "es"]) == ["es"] and calls[-1] == 1


def test_the_memo_is_bounded(monkeypatch):
    langid._DETECTED.clear()
    monkeypatch.setattr(langid, "_DETECTED_MAX", 4)
    texts = [f"{w} apples and pears" for w in ("red", "green", "blue", "yellow", "black", "white")]
    assert langid.detect(texts[:3], CODES) == ["en"] * 3
    assert langid.detect(texts[3:], CODES) == ["en"] * 3  # 3 + 3 > 4: cleared first, then filled
    assert len(langid._DETECTED) == 3



def test_one_call_larger_than_the_memo_is_answered_and_not_remembered(monkeypatch):
    langid._DETECTED.clear()
    monkeypatch.setattr(langid, "_DETECTED_MAX", 4)
    texts = [f"{w} apples and pears" for w in ("red", "green", "blue", "yellow", "black", "white")]
    assert langid.detect(texts, CODES) == ["en"] * 6
    assert len(langid._DETECTED) == 0


def test_wrong_language_arguments_are_not_guessed_from_one_word_or_the_request_s_own_words():
    """A Swahili request "...kutoka Dakar hadi Lagos" with origin and destination swapped listed `origin` (Lagos) as
    written in Swahili; so were "Tafadhali" ("please"), "dola", "hoteli": lingua guesses a language for any single
    word. One-word values and values copied verbatim from the request are not judged by lingua; a script other
    than the canonical value's still is (東京 for Tokyo), copied or not."""
    sw = ["en", "sw"]
    flight = "Nahitaji tiketi 4 za ndege kutoka Dakar hadi Lagos."
    assert not langid.wrong_language_argument("Lagos", "Dakar", "sw", sw, flight)
    assert not langid.wrong_language_argument("Lagos", "Dakar", "sw", sw)  # one word: no request needed
    for got, canonical in [("Tafadhali", "Amina"), ("dola", "Ines"), ("hoteli", "Nairobi"), ("sebule", "kitchen")]:
        assert not langid.wrong_language_argument(got, canonical, "sw", sw), got
    assert not langid.wrong_language_argument("kutoka Dakar", "Dakar", "sw", sw, flight)  # the request's words
    assert langid.wrong_language_argument("chumba cha kulala", "bedroom", "sw", sw, "Zima taa ya chumba.")
    assert langid.wrong_language_argument("chumba cha kulala", "bedroom", "sw", sw)
    assert langid.wrong_language_argument("東京", "Tokyo", "ja", ["en", "ja"], "東京の天気を教えて")
    assert not langid.wrong_language_argument("Tokyo Japan", "Tokyo", "en", ["en", "ja"])


def test_rescored_wrong_language_arguments_do_not_depend_on_the_rest_of_the_file(tmp_path):
    """The candidate languages came from the languages present in the file: one line's verdict changed with the
    others. They are now fixed (the registry's study languages)."""
    import json

    from langmix.evaluate.rescore import rescore

    fn = [{"name": "set_lights", "parameters": {"required": ["room"], "properties": {"room": {"type": "string"}}}}]
    # Spanish, not Swahili: lingua says sw where sw and en are the only candidates, es once an es line joined them
    line = {"language": "sw", "output": 'set_lights(room="sala de estar")', "reference": {
        "functions": fn, "possible_answer": [{"set_lights": {"room": ["living_room"]}}], "request": "Zima taa."}}
    other = {"language": "es", "output": "The answer", "reference": {"functions": fn, "possible_answer": []}}
    verdicts = []
    for rows in ([line], [line, other]):
        (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        rescore("api", tmp_path / "p.jsonl", tmp_path / "v.jsonl")
        verdicts.append(json.loads((tmp_path / "v.jsonl").read_text().splitlines()[0]))
    assert verdicts[0] == verdicts[1] and verdicts[0]["wrong_language_args"] == []
