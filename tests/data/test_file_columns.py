"""Columns of user files (probe 2): a wide layout read from CSV/TSV as from JSONL, headers matched whatever their
case, one shared answer column in a wide file, ids with surrounding spaces as one item, and errors that name the
missing field and the columns there are."""

import json

import pytest

from langmix.config import FileSource
from langmix.data.files import DataFormatError
from langmix.data.sources import load_examples

WIDE = [{"question_en": "Tom has 3 and 4 more?", "question_es": "¿Tom tiene 3 y 4 más?", "answer_en": "7",
         "answer_es": "7"},
        {"question_en": "Ann has 5 and 5 more?", "question_es": "", "answer_en": "10", "answer_es": ""}]


def load(path, **kw):
    return load_examples(FileSource(format="parallel", path=str(path), **kw))


def got(examples):
    return sorted((e.source_id, e.language, e.reference["answer"]) for e in examples)


@pytest.mark.parametrize("name,sep", [("w.csv", ","), ("w.tsv", "\t")])
def test_wide_layout_reads_from_csv_and_tsv_as_from_jsonl(tmp_path, name, sep):
    lines = [sep.join(WIDE[0])] + [sep.join(r.values()) for r in WIDE]
    (tmp_path / name).write_text("\n".join(lines) + "\n")
    (tmp_path / "w.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if v}) + "\n" for r in WIDE))
    expected = [("w-0", "en", 7), ("w-0", "es", 7), ("w-1", "en", 10)]
    assert got(load(tmp_path / name, layout="wide")) == got(load(tmp_path / "w.jsonl", layout="wide")) == expected


def test_header_matches_fields_in_any_case(tmp_path):
    path = tmp_path / "caps.tsv"
    path.write_text("ID\tLANGUAGE\tQuestion\tAnswer\n1\ten\tTom has 3 and 4 more?\t7\n1\tes\t¿Tom tiene 3 y 4?\t7\n")
    assert got(load(path)) == [("1", "en", 7), ("1", "es", 7)]


def test_missing_field_names_it_and_the_columns(tmp_path):
    path = tmp_path / "caps.tsv"
    path.write_text("ID\tLang\tQuestion\tAnswer\n1\ten\tTom has 3 and 4 more?\t7\n")
    with pytest.raises(DataFormatError, match=r"caps.tsv:2: missing language \(or empty; columns: id, Lang, "
                                              r"question, answer; `fields` maps"):
        load(path)
    assert got(load(path, fields={"language": "Lang"})) == [("1", "en", 7)]


def test_wide_file_with_one_shared_answer_column(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({"question_en": "Tom has 3 and 4 more?", "question_es": "¿Tom tiene 3 y 4?",
                                "answer": "7"}) + "\n")
    assert got(load(path, layout="wide")) == [("w-0", "en", 7), ("w-0", "es", 7)]
    with pytest.raises(DataFormatError, match=r"w.jsonl:1: expected an 'id' field.*look like a wide file: set "
                                              r"layout: wide"):
        load(path)


def test_wide_row_missing_one_answer_names_the_language(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("question_en,answer_en,question_sw,answer_sw\nTom has 3 and 4?,7,Tom ana 3 na 4?,\n")
    with pytest.raises(DataFormatError, match=r"w.csv:2: missing answer for 'sw'"):
        load(path, layout="wide")


def test_ids_with_surrounding_spaces_are_one_item(tmp_path):
    path = tmp_path / "ws.jsonl"
    path.write_text('{"id": "1 ", "language": "en", "question": "Q1 about 3?", "answer": 3}\n'
                    '{"id": "1", "language": " es", "question": "Q1 es sobre 3?", "answer": 3}\n'
                    '{"id": " 1", "language": "es", "question": "Q1 again?", "answer": 3}\n')
    with pytest.raises(DataFormatError, match=r"ws.jsonl:3: item '1' in es is given twice \(first at .*ws.jsonl:2\)"):
        load(path)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))
    assert [e.id for e in load(path)] == ["1-en", "1-es"]
