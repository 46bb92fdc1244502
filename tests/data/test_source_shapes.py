"""Parallel sources in the shapes public multilingual sets come in (issue 7), set by config alone."""

import json
import logging

import pytest

from langmix.config import DataConfig, FileSource
from langmix.data.files import DataFormatError
from langmix.data.math_data import load_mgsm
from langmix.data.sources import load_examples, open_source
from tests.shared_data import shared


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def src(path, **kw) -> FileSource:
    return FileSource(format="parallel", path=str(path), **kw)


def by_key(examples):
    return {(e.source_id, e.language): e for e in examples}


def test_lang_pattern_rows_without_id_share_row_numbers(tmp_path, caplog):
    write_jsonl(tmp_path / "set_sw.jsonl", [{"question": "Ana ana 2. Ngapi?", "answer": 2},
                                            {"question": "Juma ana 7. Ngapi?", "answer": "7"}])
    write_jsonl(tmp_path / "set_es.jsonl", [{"question": "Ana tiene 2. ¿Cuántos?", "answer": 2},
                                            {"question": "Juan tiene 7. ¿Cuántos?", "answer": 7}])
    with caplog.at_level(logging.INFO, logger="langmix.data.files"):
        examples = load_examples(src(tmp_path / "set_{lang}.jsonl"), ["en", "es", "sw"])
    got = by_key(examples)
    assert sorted(got) == [("set-0", "es"), ("set-0", "sw"), ("set-1", "es"), ("set-1", "sw")]
    assert got["set-1", "sw"].target() == "Jibu ni 7." and got["set-1", "es"].id == "set-1-es"
    assert "found 2 of 3 languages: es, sw (no file for en)" in caplog.text


def test_language_name_pattern_and_field_map_with_english_original(tmp_path):
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "Swahili.jsonl", [{"q": "Ana ana 2. Ngapi?", "a": "2", "question_en": "Ann has 2."}])
    write_jsonl(tmp_path / "data" / "japanese.jsonl", [{"q": "アンは2個。", "a": 2, "question_en": "Ann has 2."}])
    s = src(tmp_path / "data" / "{language}.jsonl", fields={"question": "q", "answer": "a", "english": "question_en"},
            id_prefix="toy")
    got = by_key(load_examples(s, ["sw", "ja", "de"]))
    assert sorted(got) == [("toy-0", "en"), ("toy-0", "ja"), ("toy-0", "sw")]
    en = got["toy-0", "en"]
    assert en.messages[0]["content"] == "Ann has 2." and en.target() == "The answer is 2."
    assert got["toy-0", "ja"].messages[0]["content"] == "アンは2個。"


def test_no_language_file_found_is_a_clear_error(tmp_path):
    with pytest.raises(DataFormatError, match=r"no file for any of the languages \['ja', 'th'\].*set_ja.jsonl"):
        load_examples(src(tmp_path / "set_{lang}.jsonl"), ["ja", "th"])


def test_misaligned_files_are_refused(tmp_path):
    write_jsonl(tmp_path / "s_en.jsonl", [{"question": "A has 2.", "answer": 2}])
    write_jsonl(tmp_path / "s_sw.jsonl", [{"question": "A ana 3.", "answer": 3}])
    with pytest.raises(DataFormatError, match=r"s_sw.jsonl:1: item 's-0': answer 3 in sw differs from 2"):
        load_examples(src(tmp_path / "s_{lang}.jsonl"), ["en", "sw"])


def test_non_numeric_answer_names_file_and_line(tmp_path):
    write_jsonl(tmp_path / "s_en.jsonl", [{"question": "A has 2.", "answer": 2},
                                          {"question": "How many?", "answer": "several"}])
    with pytest.raises(DataFormatError, match=r"s_en.jsonl:2: answer 'several' is not a number"):
        load_examples(src(tmp_path / "s_{lang}.jsonl"), ["en"])


def test_json_array_file_wide_layout_without_ids(tmp_path):
    path = tmp_path / "wide.json"
    path.write_text(json.dumps([{"question_en": "2+2?", "answer_en": 4, "question_fr": "2+2 ?", "answer_fr": "4"},
                                {"question_en": "3+3?", "answer_en": 6, "question_fr": "3+3 ?", "answer_fr": 6}],
                               indent=1), encoding="utf-8")
    got = by_key(load_examples(src(path, layout="wide")))
    assert sorted(got) == [("wide-0", "en"), ("wide-0", "fr"), ("wide-1", "en"), ("wide-1", "fr")]
    assert got["wide-1", "fr"].target() == "La réponse est 6."


def test_json_array_non_object_names_its_line(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('[\n  {"id": "a", "language": "en", "question": "q", "answer": 1},\n  "oops"\n]\n')
    with pytest.raises(DataFormatError, match=r"rows.json:3: expected a JSON object, got str"):
        load_examples(src(path))


def test_long_layout_needs_ids(tmp_path):
    path = write_jsonl(tmp_path / "long.jsonl", [{"language": "en", "question": "q", "answer": 1}])
    with pytest.raises(DataFormatError, match=r"long.jsonl:1: expected an 'id' field"):
        load_examples(src(path))


def test_item_given_twice_is_refused(tmp_path):
    row = {"id": "x", "language": "en", "question": "q", "answer": 1}
    path = write_jsonl(tmp_path / "long.jsonl", [row, row])
    with pytest.raises(DataFormatError, match=r"long.jsonl:2: item 'x' in en is given twice"):
        load_examples(src(path))


def test_tsv_with_header_and_field_map(tmp_path):
    (tmp_path / "t_de.tsv").write_text("frage\tantwort\nAnna hat 2.\t2\nBen hat 1.000 Euro.\t1.000\n",
                                       encoding="utf-8")
    got = by_key(load_examples(src(tmp_path / "t_{lang}.tsv", fields={"question": "frage", "answer": "antwort"}),
                               ["de"]))
    assert got["t-1", "de"].reference["answer"] == 1000  # the number normaliser reads German thousands marks


def test_pattern_needs_the_parallel_format():
    with pytest.raises(ValueError, match="needs format 'parallel'"):
        FileSource(format="mgsm", path="d/mgsm_{lang}.tsv")
    with pytest.raises(ValueError, match=r"unknown field role\(s\) \['prompt'\]"):
        FileSource(format="parallel", path="x.jsonl", fields={"prompt": "p"})


def test_pattern_source_feeds_the_training_pool(tmp_path):
    write_jsonl(tmp_path / "p_en.jsonl", [{"question": "A has 2.", "answer": 2}, {"question": "B has 3.", "answer": 3}])
    write_jsonl(tmp_path / "p_sw.jsonl", [{"question": "A ana 2.", "answer": 2}])
    cfg = DataConfig.model_validate({"source": "files", "math": {
        "train": {"format": "parallel", "path": str(tmp_path / "p_{lang}.jsonl")},
        "eval": {"format": "mgsm", "path": str(shared("mgsm")), "limit": 1}}})
    size, render = open_source(cfg).pool("math", ["en", "sw"])
    assert size == 1 and render(0, "sw").source_id == render(0, "en").source_id == "p-0"


def test_real_mgsm_tsvs_through_a_lang_pattern():
    pattern = str(shared("mgsm")) + "/mgsm_{lang}.tsv"
    examples = load_examples(src(pattern, id_prefix="gsm8k-test"), ["en", "sw", "zh", "te"])
    assert len(examples) == 4 * 250
    reference = load_mgsm(shared("mgsm"), ["en", "sw", "zh", "te"])
    assert [(e.source_id, e.language, e.reference["answer"], e.messages[0]["content"]) for e in examples] == \
        [(e.source_id, e.language, e.reference["answer"], e.messages[-1]["content"]) for e in reference]
    got = by_key(examples)
    assert got["gsm8k-test-0", "sw"].target() == "Jibu ni 18."
    assert got["gsm8k-test-2", "en"].reference["answer"] == 70000


@pytest.mark.parametrize("order", ["interleaved", "by language"])
def test_limit_counts_items_per_language_not_rows(tmp_path, order):
    """`limit: 2` on a long-layout file of 5 items in 3 languages gave 2 en, 0 sw rows (interleaved) or only en
    (sorted by language): a language silently lost its data. It is the first 2 items of each language."""
    rows = [{"id": f"i{i}", "language": lang, "question": f"{lang} question {i}?", "answer": i}
            for i in range(5) for lang in ("en", "es", "sw")]
    if order == "by language":
        rows.sort(key=lambda r: r["language"])
    examples = load_examples(src(write_jsonl(tmp_path / "p.jsonl", rows), limit=2))
    assert sorted(by_key(examples)) == [(f"i{i}", lang) for i in range(2) for lang in ("en", "es", "sw")]
    examples_file = write_jsonl(tmp_path / "e.jsonl", [json.loads(e.model_dump_json()) for e in
                                                       load_examples(src(tmp_path / "p.jsonl"))])
    kept = load_examples(FileSource(format="examples", path=str(examples_file), limit=2))
    assert sorted(by_key(kept)) == [(f"i{i}", lang) for i in range(2) for lang in ("en", "es", "sw")]


def test_limit_counts_an_english_original_column_as_an_english_item(tmp_path):
    rows = [{"id": f"i{i}", "question_sw": f"swali {i}?", "answer_sw": i, "question_en": f"question {i}?"}
            for i in range(4)]
    s = src(write_jsonl(tmp_path / "w.jsonl", rows), layout="wide", limit=3,
            fields={"english": "question_en"})
    assert sorted(by_key(load_examples(s))) == [(f"i{i}", lang) for i in range(3) for lang in ("en", "sw")]
