"""Language identification: a response's among all of lingua's languages, a text's among given ones (`detect`);
each distinct text judged once."""

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


# "Anna has five apples and buys three more. How many apples does she have now?" in languages outside the study's
OUTSIDE = {
    "it": "Anna ha cinque mele e ne compra altre tre. Quante mele ha adesso?",
    "uk": "Анна має п'ять яблук і купує ще три. Скільки яблук у неї зараз?",
    "zu": "U-Anna unama-apula amahlanu futhi uthenga amanye amathathu. Unama-apula amangaki manje?",
    "nl": "Anna heeft vijf appels en koopt er nog drie. Hoeveel appels heeft ze nu?",
    "hi": "अन्ना के पास पाँच सेब हैं और वह तीन और खरीदती है। अब उसके पास कितने सेब हैं?",
    "ko": "안나는 사과 다섯 개를 가지고 있고 세 개를 더 삽니다. 이제 사과가 몇 개 있나요?",
    "ta": "அன்னாவிடம் ஐந்து ஆப்பிள்கள் உள்ளன, மேலும் மூன்று வாங்குகிறாள். இப்போது அவளிடம் எத்தனை ஆப்பிள்கள் உள்ளன?",
}
LAO = "ອັນນາມີໝາກແອບເປີ້ນຫ້າໜ່ວຍ ແລະ ຊື້ອີກສາມໜ່ວຍ. ຕອນນີ້ນາງມີຈັກໜ່ວຍ?"


def test_a_response_in_a_language_outside_the_study_is_that_language():
    """Language ID chose among the study's languages: Italian was judged Spanish, Ukrainian Russian, Zulu Swahili,
    Dutch German (each counted as faithful to that prompt), and Hindi, Korean, Tamil, Lao were unjudged."""
    langid._DETECTED.clear()
    texts = [*TEXTS.values(), *OUTSIDE.values(), LAO]
    assert langid.response_languages(texts) == [*TEXTS, *OUTSIDE, "und-Lao"]


def test_a_response_with_nothing_to_judge_stays_unjudged():
    """Numbers, formulas, code and LaTeX were unjudged and stay so; a one-word answer, which lingua reads as any
    of several of its 74 languages ("Yes" as Tsonga), is unjudged rather than given one of them."""
    langid._DETECTED.clear()
    texts = ["18", "12 + 7 = 19.", "", "$9 \\times 2 = 18$. \\boxed{18}", "```python\nprint(18)\n```", "`x = 18`",
             "x = 18", "Yes", "Total: 18", "So 18.", "ok"]
    assert langid.response_languages(texts) == [None] * len(texts)
    short = {"en": "The answer is 18.", "sw": "Jibu ni 18.", "ru": "Ответ: 18", "zh": "答案是18", "de": "Antwort: 18"}
    assert langid.response_languages(list(short.values())) == list(short)


def test_every_registry_language_is_judged_under_its_own_code():
    """The fidelity compares a response's code with the prompt's registry code: each registry language must be a
    language of the all-languages detector under that same ISO 639-1 code."""
    from lingua import IsoCode639_1, Language

    from langmix import languages

    spoken = {lang.iso_code_639_1.name.lower() for lang in Language.all_spoken_ones()}
    for code in languages.known_codes():
        assert Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())).iso_code_639_1.name.lower() == code
        assert code in spoken, code


def test_an_answer_in_another_language_counts_against_fidelity(monkeypatch):
    from langmix.config import EvalConfig
    from langmix.evaluate import run
    from langmix.records import Example

    langid._DETECTED.clear()
    examples = [Example(id=f"q{i}-es", source_id=f"q{i}", task="math", language="es", reference={"answer": 8},
                        messages=[{"role": "user", "content": TEXTS["es"]}]) for i in range(2)]
    outputs = ["Ana tiene cinco manzanas y compra tres más, así que tiene ocho. La respuesta es 8.",
               "Anna ha cinque mele e ne compra altre tre, quindi ne ha otto. La risposta è 8."]
    monkeypatch.setattr(run, "generate", lambda model, tok, exs, *a, **k: outputs)
    predictions, rows = run.evaluate(None, None, examples, EvalConfig(), ["en", "es"])
    assert [p["response_language"] for p in predictions] == ["es", "it"]
    values = {metric: (value, n) for _, _, metric, value, n in rows}
    assert values["response_language_fidelity_judged"] == (0.5, 2)


def test_language_id_reads_a_bounded_part_of_a_long_text(monkeypatch):
    """lingua's time grows faster than the length on text without spaces: 512K characters of "x" took 40 s and 1M
    did not finish in 120 s. What reaches lingua is bounded (`MAX_CHARS`), for both detectors."""
    seen: list[int] = []

    class Recording:  # what would reach lingua, without running it
        def detect_languages_in_parallel_of(self, texts):
            seen.extend(len(t) for t in texts)
            return [None] * len(texts)

        def compute_language_confidence_values(self, text):
            seen.append(len(text))
            return []

    monkeypatch.setattr(langid, "_detector", lambda codes: Recording())
    langid._DETECTED.clear()
    long_texts = ["x" * 2_000_000, "```\n" + "y" * 2_000_000, TEXTS["en"] * 30_000, "Jibu ni 18. " + "z" * 2_000_000]
    langid.response_languages(long_texts)
    langid.detect(long_texts, CODES)
    assert len(seen) >= 2 * len(long_texts) and max(seen) <= 10_000  # was over 2,000,000
    assert max(seen) <= langid.MAX_CHARS + 1
    monkeypatch.undo()
    langid._DETECTED.clear()
    assert langid.response_languages([TEXTS["en"] * 30_000]) == ["en"]  # judged on its first and last halves
    assert langid.detect(["y" * 3_000_000 + " " + TEXTS["sw"]], CODES) == ["sw"]


# MGSM questions 0, 6, ..., 54 of each language, whole and their first three words, as lingua judges them among all
# its languages
MGSM_FRAGMENTS = {
    "bn": "bn bn bn bn bn bn bn bn bn bn", "de": "tn - de de - de - - - -", "en": "- - - - en - - - - en",
    "es": "- - - - - es - es pl -", "fr": "- fr - fr fr - - fr fr fr", "ja": "ja ja ja ja ja ja ja ja ja ja",
    "ru": "- mk ru ru - ru ru ru ru mn", "sw": "- - - - sw - - sw sw -", "te": "te te te te te te te te te te",
    "th": "th th th th th th th th th th", "zh": "zh zh zh zh zh zh zh zh zh zh",
}


def test_mgsm_questions_and_their_first_words_are_judged_as_pinned():
    """What a response's language is judged to be, pinned on real questions in the 11 MGSM languages and on their
    three-word beginnings (which lingua reads as Tswana, Polish, Macedonian, Mongolian or no clear language), and
    the same as lingua's own answer: a change to how texts reach lingua (memo, batching, loading) must keep it."""
    from tests.shared_data import shared

    langid._DETECTED.clear()
    questions, fragments, expected = [], [], []
    for lang, codes in MGSM_FRAGMENTS.items():
        rows = shared("mgsm", f"mgsm_{lang}.tsv").read_text(encoding="utf-8").splitlines()
        qs = [line.split("\t")[0] for line in rows[:60:6]]
        questions += qs
        fragments += [" ".join(q.split()[:3]) for q in qs]
        expected += [None if c == "-" else c for c in codes.split()]
    assert langid.response_languages(questions) == [lang for lang in MGSM_FRAGMENTS for _ in range(10)]
    assert langid.response_languages(fragments) == expected
    parallel = langid._detector(langid.ALL_LANGUAGES).detect_languages_in_parallel_of(fragments)
    assert [r.iso_code_639_1.name.lower() if r else None for r in parallel] == expected


def test_each_detector_is_built_once_per_process(monkeypatch):
    """Building the all-languages detector (and, lazily, its 1 GB of models) is done once per process, whatever
    the number of calls and texts; each other set of candidate languages has its own, also built once."""
    import functools

    builds: list[str] = []
    real = langid.LanguageDetectorBuilder

    class CountingBuilder:
        @staticmethod
        def from_all_spoken_languages():
            builds.append("all")
            return real.from_all_spoken_languages()

        @staticmethod
        def from_languages(*languages):
            builds.append(",".join(sorted(lang.iso_code_639_1.name.lower() for lang in languages)))
            return real.from_languages(*languages)

    monkeypatch.setattr(langid, "LanguageDetectorBuilder", CountingBuilder)
    monkeypatch.setattr(langid, "_detector", functools.lru_cache(maxsize=8)(langid._detector.__wrapped__))
    langid._DETECTED.clear()
    for text in (TEXTS["ja"], OUTSIDE["ko"], "สวัสดีครับ ผมมีแอปเปิ้ลห้าลูก", LAO):  # judged by script: no model
        langid.response_languages([text, text + " 1"])
    langid.detect([TEXTS["ja"]], ["ja", "en"])
    langid.detect([OUTSIDE["ko"]], ["en", "ja"])
    assert langid.detect([TEXTS["es"] + " " + TEXTS["ja"]], CODES)[0] is not None
    assert builds == ["all", "en,ja", "de,en,es,ja,sw"]
