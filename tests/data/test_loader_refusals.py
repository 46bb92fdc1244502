"""Inputs a probe of the data path found crashing or silently misread: CR line endings, MGSM shots without enough
exemplars, BFCL rows without or with repeated ids and multi-turn questions, a headerless parallel TSV with a third
column, and one gsm8k or MGSM question given twice with two answers. Each is read correctly or refused naming the file
and line, never a traceback or a silent drop."""

import json
import logging

import pytest

from langmix.config import FileSource
from langmix.data.api_data import load_bfcl
from langmix.data.files import DataFormatError
from langmix.data.math_data import load_gsm8k, load_mgsm
from langmix.data.sources import load_examples


def load(fmt, path, languages=None, **kw):
    return load_examples(FileSource(format=fmt, path=str(path), **kw), languages)


# --- line endings -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ending", [b"\r", b"\r\n", b"\n"])
def test_mgsm_tsv_with_any_line_ending_is_read(tmp_path, ending):
    (tmp_path / "mgsm_en.tsv").write_bytes(ending.join([b"Q has 3 cats?\t3", b"Q2 has 4 dogs?\t4"]) + ending)
    got = [(e.source_id, e.messages[-1]["content"], e.reference["answer"]) for e in load_mgsm(tmp_path)]
    assert got == [("gsm8k-test-0", "Q has 3 cats?", 3), ("gsm8k-test-1", "Q2 has 4 dogs?", 4)]


def test_parallel_csv_with_cr_line_endings_is_read(tmp_path):
    (tmp_path / "p.csv").write_bytes(b"id,language,question,answer\ra,es,\"Ana, 2?\",2\rb,es,Juan 3?,3\r")
    assert [(e.source_id, e.reference["answer"]) for e in load("parallel", tmp_path / "p.csv")] == [("a", 2), ("b", 3)]


@pytest.mark.parametrize("fmt,name", [("mgsm", "mgsm_en.tsv"), ("parallel", "p.csv")])
def test_a_stray_carriage_return_names_the_file_and_line(tmp_path, fmt, name):
    sep = b"\t" if name.endswith(".tsv") else b","
    rows = [b"Q has 3 cats?" + sep + b"3", b"Q2 has\r 4 dogs?" + sep + b"4"]
    (tmp_path / name).write_bytes((b"id,language,question,answer\n" if fmt == "parallel" else b"")
                                  + b"\n".join(rows if fmt == "mgsm" else [b"a,es," + r for r in rows]) + b"\n")
    with pytest.raises(DataFormatError, match=rf"{name}:{2 if fmt == 'mgsm' else 3}: a carriage return \(CR\) inside "
                                              r"the line \(a stray CR, or mixed line endings\)"):
        load(fmt, tmp_path if fmt == "mgsm" else tmp_path / name, ["en"])


# --- MGSM shots ---------------------------------------------------------------------------------------------------

def test_more_shots_than_exemplars_names_the_key_the_file_and_the_count(tmp_path):
    (tmp_path / "mgsm_en.tsv").write_text("Q?\t3\n")
    (tmp_path / "mgsm_sw.tsv").write_text("Swali?\t3\n")
    table = {"en": {str(i): {"q": f"q{i}", "a": f"The answer is {i}."} for i in range(3)},
             "sw": {"0": {"q": "s", "a": "Jibu ni 1."}}}
    (tmp_path / "ex.json").write_text(json.dumps({"MGSM_EXEMPLARS": table}))
    with pytest.raises(DataFormatError, match=r"ex.json: `shots: 2` needs 2 exemplars per language; sw has 1"):
        load("mgsm", tmp_path, ["en", "sw"], shots=2, exemplars=str(tmp_path / "ex.json"))
    assert len(load("mgsm", tmp_path, ["en", "sw"], shots=1, exemplars=str(tmp_path / "ex.json"))[0].messages) == 3
    with pytest.raises(DataFormatError, match=r"`shots: 2` needs 2 exemplars per language; no exemplars were given"):
        load_mgsm(tmp_path, ["en"], shots=2)


def test_shots_without_exemplars_is_a_config_error():
    with pytest.raises(ValueError, match=r"`shots: 2` needs `exemplars`"):
        FileSource(format="mgsm", path="d", shots=2)
    with pytest.raises(ValueError, match=r"`shots` is supported for format 'mgsm' only"):
        FileSource(format="gsm8k", path="t.jsonl", shots=2, exemplars="e.json")


# --- BFCL ---------------------------------------------------------------------------------------------------------

def _question(qid, turns=1):
    row = {"question": [[{"role": "user", "content": f"call f {qid}/{t}"}] for t in range(turns)],
           "function": [{"name": "f", "parameters": {"type": "dict", "properties": {}}}]}
    return {"id": qid, **row} if qid is not None else row


def _bfcl(tmp_path, questions, answers):
    (tmp_path / "possible_answer").mkdir(exist_ok=True)
    (tmp_path / "BFCL_v4_simple.json").write_text("".join(json.dumps(q) + "\n" for q in questions))
    (tmp_path / "possible_answer" / "BFCL_v4_simple.json").write_text(
        "".join(json.dumps({"id": a, "ground_truth": [{"f": {"x": [n]}}]}) + "\n" for n, a in enumerate(answers)))


@pytest.mark.parametrize("questions,answers,where,reason", [
    ([_question("a"), _question(None)], ["a"], "BFCL_v4_simple.json:2", "no 'id'"),
    ([_question("a"), _question("b"), _question("a")], ["a", "b"], "BFCL_v4_simple.json:3",
     "id 'a' is given twice (first at line 1)"),
    ([_question("a"), _question("b")], ["a", "b", "a"], "possible_answer/BFCL_v4_simple.json:3",
     "id 'a' is given twice (first at line 1)"),
])
def test_bfcl_missing_or_repeated_ids_name_the_file_and_line(tmp_path, questions, answers, where, reason):
    _bfcl(tmp_path, questions, answers)
    with pytest.raises(DataFormatError, match=f"{where}: " + reason.replace("(", r"\(").replace(")", r"\)")):
        load_bfcl(tmp_path, "simple")


def test_bfcl_answers_without_an_id_name_the_line(tmp_path):
    _bfcl(tmp_path, [_question("a")], ["a"])
    with open(tmp_path / "possible_answer" / "BFCL_v4_simple.json", "a") as f:
        f.write(json.dumps({"ground_truth": []}) + "\n")
    with pytest.raises(DataFormatError, match=r"possible_answer/BFCL_v4_simple.json:2: no 'id'"):
        load_bfcl(tmp_path, "simple")


def test_bfcl_multi_turn_questions_are_skipped_and_counted(tmp_path, caplog):
    _bfcl(tmp_path, [_question("a"), _question("m1", turns=3), _question("b"), _question("m2", turns=2)],
          ["a", "m1", "b", "m2"])
    with caplog.at_level(logging.WARNING, logger="langmix.data.api_data"):
        got = load_bfcl(tmp_path, "simple")
    assert [(e.source_id, e.reference["calls"]) for e in got] == [("bfcl-a", [{"f": {"x": [0]}}]),
                                                                  ("bfcl-b", [{"f": {"x": [2]}}])]
    assert "BFCL_v4_simple.json: 2 multi-turn questions skipped: langmix scores single-turn calls" in caplog.text
    _bfcl(tmp_path, [_question("m1", turns=2)], ["m1"])
    with pytest.raises(DataFormatError, match=r"no single-turn examples in file \(1 multi-turn questions skipped"):
        load_bfcl(tmp_path, "simple")


# --- parallel columns, repeated questions -------------------------------------------------------------------------

def test_headerless_parallel_tsv_with_a_third_column_is_refused_as_mgsm_refuses_it(tmp_path):
    for lang, q in (("en", "Tom has 3 cats?"), ("es", "Tom tiene 3 gatos?")):
        (tmp_path / f"par_{lang}.tsv").write_text(f"{q}\t3\tnote\n{q} 2\t4\tnote\n")
    with pytest.raises(DataFormatError, match=r"par_en.tsv:1: expected question<TAB>answer, got 3 fields"):
        load("parallel", tmp_path / "par_{lang}.tsv", ["en", "es"])
    (tmp_path / "mgsm_en.tsv").write_text("Tom has 3 cats?\t3\tnote\n")
    with pytest.raises(DataFormatError, match=r"mgsm_en.tsv:1: expected question<TAB>answer, got 3 fields"):
        load("mgsm", tmp_path, ["en"])
    # mapped by position, the third column is the user's choice to leave out (or to read)
    got = load("parallel", tmp_path / "par_{lang}.tsv", ["en", "es"], fields={"question": "0", "answer": "1"})
    assert sorted((e.source_id, e.language) for e in got) == [("par-0", "en"), ("par-0", "es"), ("par-1", "en"),
                                                              ("par-1", "es")]


def test_a_gsm8k_question_given_twice_with_two_answers_is_refused_naming_both(tmp_path, caplog):
    path = tmp_path / "dupq.jsonl"
    rows = [{"question": "Q0 has 1 cat?", "answer": "#### 1"}, {"question": "Q1 has 3 cats?", "answer": "x\n#### 3"},
            {"question": "Q1  has 3 cats?", "answer": "y\n#### 4"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataFormatError, match=r"dupq.jsonl:3: item 'gsm8k-dupq-2' repeats the en question of "
                                              r"'gsm8k-dupq-1' \(.*dupq.jsonl:2\) with another answer \(4 vs 3\)"):
        load_gsm8k(path)
    rows[2]["answer"] = "y\n#### 3"  # the same answer: loaded, and counted in a warning
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING, logger="langmix.data.answers"):
        assert len(load_gsm8k(path)) == 3
    assert "1 questions repeat an earlier one with the same answer (each copy counts in a mixture): " \
           "gsm8k-dupq-2 = gsm8k-dupq-1" in caplog.text


def test_an_mgsm_row_copied_is_warned_about_as_training_data_is(tmp_path, caplog):
    """A copied MGSM row (an eval set's question twice) was loaded without a word; gsm8k training files warn."""
    (tmp_path / "mgsm_en.tsv").write_text("Q0 has 1 cat?\t1\nQ1 has 3 cats?\t3\nQ1  has 3 cats?\t3\n")
    (tmp_path / "mgsm_sw.tsv").write_text("Q1 has 3 cats?\t3\nQ2 ana paka 2?\t2\n")  # other language: no repeat
    with caplog.at_level(logging.WARNING, logger="langmix.data.answers"):
        assert len(load("mgsm", tmp_path, ["en", "sw"])) == 5
    assert "1 questions repeat an earlier one with the same answer (each copy counts in the scores): " \
           "gsm8k-test-2-en = gsm8k-test-1-en" in caplog.text
    (tmp_path / "mgsm_en.tsv").write_text("Q0 has 1 cat?\t1\nQ1 has 3 cats?\t3\nQ1 has 3 cats?\t4\n")
    with pytest.raises(DataFormatError, match=r"mgsm_en.tsv:3: item 'gsm8k-test-2-en' repeats the en question of "
                                              r"'gsm8k-test-1-en' \(.*mgsm_en.tsv:2\) with another answer \(4 vs 3\)"):
        load("mgsm", tmp_path, ["en"])


def test_a_parallel_question_given_twice_in_one_language_with_two_answers_is_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"id": "a", "language": "es", "question": "¿Ana tiene 2?", "answer": 2},
            {"id": "b", "language": "es", "question": "¿Ana tiene 2?", "answer": 5}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataFormatError, match=r"p.jsonl:2: item 'b' repeats the es question of 'a'"):
        load("parallel", path)


def test_every_line_based_reader_reads_cr_only_line_endings(tmp_path):
    """CR-only endings were split for TSV/CSV rows alone: a CR-only JSONL was one bad line, and API-Bank's schema
    CSV or a TSV translation memory was read as one line. One reader (`iter_lines`) splits them for all."""
    from langmix.data.api_data import load_apibank_schemas
    from langmix.data.files import iter_jsonl
    from langmix.translate.memory import MemoryBackend

    (tmp_path / "rows.jsonl").write_bytes(b'{"a": 1}\r{"a": 2}\r')
    assert [(n, r["a"]) for n, r in iter_jsonl(tmp_path / "rows.jsonl")] == [(1, 1), (2, 2)]
    (tmp_path / "one.jsonl").write_bytes(b'{"a": 1,\r "b": 2}\n')  # one object whose whitespace holds a CR
    assert [r for _, r in iter_jsonl(tmp_path / "one.jsonl")] == [{"a": 1, "b": 2}]
    (tmp_path / "apis.csv").write_bytes(b'class_name,api_info\rAddAlarm,"x = 1"\rGetToday,"y = 2"\r')
    assert sorted(load_apibank_schemas(tmp_path / "apis.csv")) == ["AddAlarm", "GetToday"]
    (tmp_path / "tm.tsv").write_bytes(b"Hello\tes\tHola\rBye\tes\tAdios\r")
    assert sorted(MemoryBackend(str(tmp_path / "tm.tsv")).by_text.values()) == ["Adios", "Hola"]
