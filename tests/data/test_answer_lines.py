"""Answer lines of training targets (probe of the data path): a number is written in its language's convention so
that the language's own strict extraction reads it back exactly ('Die Antwort lautet 1.125.' was read as 1125), and
a language without an answer phrase of its own says so, once, instead of silently getting English's."""

import json
import logging

import pytest

from langmix import languages as langs
from langmix.config import FileSource
from langmix.data import answers
from langmix.data.answers import answer_line, write_number
from langmix.data.sources import load_examples
from langmix.evaluate.math import extract_flexible, extract_strict, score_math
from langmix.records import Example

NUMBERS = [0, 7, 18, -5, 1000, 1234567, 1.125, 0.5, 0.125, -0.25, -1.125, 12.75, 1234.5, 2.05, 0.001, 999.999]
WITH_PHRASES = [code for code in langs.known_codes() if langs.answer_phrases(code)]


@pytest.mark.parametrize("lang", WITH_PHRASES)
def test_every_number_written_in_a_language_reads_back_exactly(lang):
    for value in NUMBERS:
        line = answer_line(value, lang)
        assert line.startswith(langs.answer_phrase(lang) + " ")
        assert extract_strict(line, langs.answer_phrases(lang), lang) == value, (lang, value, line)
        assert extract_flexible(line, lang) == value, (lang, value, line)
        assert score_math(f"Schritt 1.\n{line}", value, langs.answer_phrase(lang), lang).strict_correct


def test_the_language_convention_is_used_and_a_thousands_reading_avoided():
    assert [write_number(v, "en") for v in (1.125, 0.5, 1234567, -5, 7.0)] == ["1.125", "0.5", "1234567", "-5", "7"]
    assert [write_number(v, "de") for v in (0.5, 12.75, -0.25)] == ["0,5", "12,75", "-0,25"]
    # '1,125' and '1.125' both read as 1125 in de (a comma before 3 digits groups thousands): a trailing zero
    assert write_number(1.125, "de") == "1,1250" and write_number(0.125, "fr") == "0,125"
    assert write_number(1e-7, "en") == "0.0000001"  # never scientific notation, which is not read
    with pytest.raises(ValueError):
        write_number(float("nan"), "en")


def test_languages_without_a_phrase_read_back_their_english_line():
    for code in langs.known_codes():
        if langs.answer_phrases(code):
            continue
        for value in NUMBERS:
            line = answer_line(value, code)
            assert line.startswith("The answer is ")
            assert extract_strict(line, "The answer is", code) == value, (code, value, line)


def test_parallel_decimal_answers_are_written_the_language_s_way(tmp_path):
    path = tmp_path / "dec.jsonl"
    rows = [{"id": "d1", "language": lang, "question": f"q {lang}?", "answer": 1.125} for lang in ("en", "de", "es")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = {ex.language: ex for ex in load_examples(FileSource(format="parallel", path=str(path)))}
    assert got["de"].target() == "Die Antwort lautet 1,1250."
    assert got["es"].target() == "La respuesta es 1,1250." and got["en"].target() == "The answer is 1.125."
    for lang, ex in got.items():
        assert extract_strict(ex.target(), langs.answer_phrases(lang), lang) == 1.125


def test_translated_answer_lines_are_written_the_language_s_way():
    from langmix.translate.pipeline import _assemble

    ex = Example(id="s1-en", source_id="s1", task="math", language="en",
                 messages=[{"role": "user", "content": "q?"}, {"role": "assistant", "content": "Work.\nThe answer is "
                                                                                             "0.125."}],
                 reference={"answer": 0.125, "answer_phrase": "The answer is"})
    de = _assemble(ex, "de", [], [], [])
    assert de.messages[-1]["content"].endswith("\nDie Antwort lautet 0,125.")
    assert extract_strict(de.messages[-1]["content"], langs.answer_phrases("de"), "de") == 0.125


def test_english_fallback_phrase_warns_once_per_language_naming_it(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(answers, "_ENGLISH_FALLBACK_WARNED", set())
    path = tmp_path / "p.jsonl"
    rows = [{"id": f"i{i}", "language": lang, "question": f"q{i} {lang}?", "answer": 7}
            for i in range(3) for lang in ("en", "hi", "ar", "sw")]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING, logger="langmix.data.answers"):
        got = {(ex.source_id, ex.language): ex for ex in load_examples(FileSource(format="parallel", path=str(path)))}
        load_examples(FileSource(format="parallel", path=str(path)))  # loaded again: no second warning
    assert got["i0", "hi"].target() == "The answer is 7." and got["i0", "sw"].target() == "Jibu ni 7."
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("hi has no answer phrase in the language registry, so its math targets use the "
                                  "English phrase 'The answer is'") and "ANSWER_PHRASE_VARIANTS" in warnings[0]
    assert warnings[1].startswith("ar has no answer phrase")


def test_a_mixture_manifest_counts_targets_in_the_english_phrase(tmp_path, monkeypatch):
    from langmix.config import BudgetConfig, DataConfig
    from langmix.data.sources import open_source
    from langmix.mixtures import MixtureSpec, build_mixture

    monkeypatch.setattr(answers, "_ENGLISH_FALLBACK_WARNED", set())
    path = tmp_path / "p.jsonl"
    rows = [{"id": f"i{i}", "language": lang, "question": f"Item {i} in {lang}: how many?", "answer": i}
            for i in range(6) for lang in ("hi", "sw")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataConfig(source="files", math={"train": {"format": "parallel", "path": str(path)},
                                           "eval": {"format": "parallel", "path": str(path)}})
    _, manifest = build_mixture(open_source(cfg), MixtureSpec("m", "fixed", ("hi", "sw")), "math",
                                BudgetConfig(mode="fixed_total", total=6), 0, [], tmp_path / "m")
    assert manifest["examples_per_language"] == {"hi": 3, "sw": 3}
    assert manifest["english_answer_phrase_examples"] == {"hi": 3}
