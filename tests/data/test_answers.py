"""Reference answers of user data (probe 2): what cannot be read unambiguously is a DataFormatError naming the file
and line, never a silently wrong number (a NaN target, the year in a note, a denominator, a decimal comma read as
a thousands separator), and an MGSM item's id is its row, so a blank line is refused rather than shifting ids."""

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from langmix.config import FileSource
from langmix.data.answers import read_solution
from langmix.data.files import DataFormatError
from langmix.data.sources import load_examples
from langmix.evaluate.number_reading import parse_number, reference_number


def load(fmt, path, languages=None, **kw):
    return load_examples(FileSource(format=fmt, path=str(path), **kw), languages)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


MGSM = {"en": ["Q zero\t18", "Q one\t3", "Q two\t70000", "Q three\t540"],
        "sw": ["Swali sifuri\t18", "Swali moja\t3", "", "Swali mbili\t70000", "Swali tatu\t540"]}


@pytest.mark.parametrize("kw", [{}, {"offset": 1, "limit": 2}])
def test_blank_line_in_mgsm_tsv_is_refused_naming_it(tmp_path, kw):
    for lang, lines in MGSM.items():
        (tmp_path / f"mgsm_{lang}.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"mgsm_sw.tsv:3: blank line: an MGSM item's id is its row number"):
        load("mgsm", tmp_path, ["en", "sw"], **kw)


def test_mgsm_ids_are_rows_and_trailing_blank_lines_are_harmless(tmp_path):
    (tmp_path / "mgsm_sw.tsv").write_text("\n".join(l for l in MGSM["sw"] if l) + "\n\n\n")
    exs = load("mgsm", tmp_path, ["sw"], offset=1, limit=2)
    assert [(e.source_id, e.reference["answer"]) for e in exs] == [("gsm8k-test-1", 3), ("gsm8k-test-2", 70000)]
    assert len(load("mgsm", tmp_path, ["sw"])) == 4


def test_mgsm_file_names_resolve_through_the_registry(tmp_path):
    (tmp_path / "mgsm_EN.tsv").write_text("Q zero\t18\n")
    (tmp_path / "mgsm_es-ES.tsv").write_text("P cero\t18\n")
    assert sorted(e.id for e in load("mgsm", tmp_path, ["en", "es"])) == ["gsm8k-test-0-en", "gsm8k-test-0-es"]
    assert sorted(e.language for e in load("mgsm", tmp_path)) == ["en", "es"]
    (tmp_path / "mgsm_en.tsv").write_text("Q zero\t18\n")
    with pytest.raises(DataFormatError, match=r"a second file for 'en'"):
        load("mgsm", tmp_path, ["en"])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_parquet_answer_is_refused(tmp_path, value):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["1", "2"], "language": ["es", "es"], "question": ["¿3?", "¿x?"],
                             "answer": [3.0, value]}), path)
    with pytest.raises(DataFormatError, match=r"p.parquet:2: answer -?(nan|inf) is not a finite number"):
        load("parallel", path)


def test_nan_in_jsonl_is_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 1, "language": "en", "question": "Q?", "answer": 3}\n'
                    '{"id": 2, "language": "en", "question": "Q?", "answer": NaN}\n')
    with pytest.raises(DataFormatError, match=r"p.jsonl:2: answer nan is not a finite number"):
        load("parallel", path)


def test_overflowing_gsm8k_answer_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"question": "Q?", "answer": "x\n#### " + "9" * 400}])
    with pytest.raises(DataFormatError, match=r"train.jsonl:1: answer inf is not a finite number"):
        load("gsm8k", path)


def test_a_gsm8k_answer_with_two_final_lines_is_refused_naming_them(tmp_path):
    """'#### 624' then '#### 9': the last was taken (9) without a word."""
    path = write_jsonl(tmp_path / "train.jsonl", [{"question": "Q a?", "answer": "1 + 1 = 2\n#### 2"},
                                                  {"question": "Q b?", "answer": "12*52=624\n#### 624\n#### 9"}])
    with pytest.raises(DataFormatError, match=r"train.jsonl:2: answer has 2 '####' marks \('#### 624', '#### 9'\): "
                                              r"a GSM8K answer ends with one '#### <number>' line"):
        load("gsm8k", path)
    parallel = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "language": "en", "question": "Q a?",
                                                   "answer": "#### 3 #### 4"}])
    with pytest.raises(DataFormatError, match=r"p.jsonl:1: answer has 2 '####' marks \('#### 3 #### 4'\)"):
        load("parallel", parallel)


@pytest.mark.parametrize("answer,lang,value", [
    ("The answer is 8. (Note: 3 + 5 = 8, checked in 2024)", "en", 8),  # the phrase's number, not the year
    ("1,000 + 500 = 1,500", "en", 1500),  # no phrase: the last number, which ends the solution
    ("1.000 + 500 = 1.500", "de", 1500),
    ("Jibu ni 7.", "sw", 7),
    ("1 234", "en", 1234),
    ("1 234,5", "fr", 1234.5),
    ("2,5", "de", 2.5),
    ("3 + 4 = 7\n#### 7", "en", 7),
])
def test_readable_answers(answer, lang, value):
    assert read_solution("f.jsonl", 1, answer, lang)[1] == value


@pytest.mark.parametrize("answer,reason", [
    ("Tom has 3 + 4 = 7 apples, which he shares with his 2 sisters.", "whose last number does not end it"),
    ("1e3", "scientific notation"),
    ("The answer is 1e3.", "scientific notation"),
    ("3/4", "fraction"),
    ("2,5", "comma groups no thousands"),
    ("12,50", "comma groups no thousands"),
    ("3 + 4 = 7\n#### 2,5", "comma groups no thousands"),
])
def test_ambiguous_answers_are_refused_naming_the_line(tmp_path, answer, reason):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "language": "en", "question": "Q a?", "answer": "4"},
                                              {"id": "b", "language": "en", "question": "Q b?", "answer": answer}])
    with pytest.raises(DataFormatError, match=rf"p.jsonl:2: .*{reason}"):
        load("parallel", path)


def test_comma_that_groups_no_thousands_is_no_number():
    assert parse_number("1,5") is None and parse_number("12,50") is None and parse_number("1,2,3") is None
    assert parse_number("1,234") == 1234 and parse_number("1,234,567.5") == 1234567.5
    assert parse_number("1,00,000") == 100000 and parse_number("2,5", "es") == 2.5
    with pytest.raises(ValueError, match="reference '2,5' is not a number as written: its comma groups no"):
        reference_number("2,5")
    assert math.isclose(reference_number("1,234.5"), 1234.5)
