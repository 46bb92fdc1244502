import json

import pytest

from langmix.data.files import DataFormatError
from langmix.data.math_data import (MGSM_ANSWER_PHRASES, exemplar_answer_phrases, load_gsm8k, load_mgsm,
                                    load_mgsm_exemplars)
from langmix.languages import MGSM_LANGUAGES
from langmix.lineage import LineageError, check_lineage
from tests.shared_data import shared


def test_gsm8k_real_files():
    test = load_gsm8k(shared("gsm8k", "test.jsonl"))
    assert len(test) == 1319 and test[0].source_id == "gsm8k-test-0"
    assert test[0].reference["answer"] == 18
    assert "<<" not in test[0].target() and test[0].target().endswith("The answer is 18.")
    kept = load_gsm8k(shared("gsm8k", "test.jsonl"), keep_calculator=True, limit=1)
    assert "<<16-3-4=9>>" in kept[0].target()


def test_mgsm_real_files_share_lineage_with_gsm8k():
    mgsm = load_mgsm(shared("mgsm"), exemplars=load_mgsm_exemplars(shared("mgsm", "exemplars.json")))
    assert len(mgsm) == 11 * 250
    assert {ex.language for ex in mgsm} == set(MGSM_LANGUAGES)
    gsm = load_gsm8k(shared("gsm8k", "test.jsonl"), limit=250)
    en = [ex for ex in mgsm if ex.language == "en"]
    assert [e.source_id for e in en] == [g.source_id for g in gsm]
    assert all(e.messages[-1]["content"] == g.messages[0]["content"] for e, g in zip(en, gsm))
    assert {e.reference["answer"] for e in mgsm if e.source_id == "gsm8k-test-0"} == {18}


def test_answer_phrases_come_from_the_exemplars():
    exemplars = load_mgsm_exemplars(shared("mgsm", "exemplars.json"))
    # the most frequent phrase of each language's exemplars (German writes "lautet" 7 times, "ist" once)
    assert {lang: exemplar_answer_phrases([a for _, a in v])[0] for lang, v in exemplars.items()} == \
        MGSM_ANSWER_PHRASES
    assert MGSM_ANSWER_PHRASES["de"] == "Die Antwort lautet"


def test_few_shot_prompts_use_native_exemplars():
    exemplars = load_mgsm_exemplars(shared("mgsm", "exemplars.json"))
    sw = load_mgsm(shared("mgsm"), ["sw"], limit=2, exemplars=exemplars, shots=3)
    assert len(sw) == 2 and len(sw[0].messages) == 7  # 3 x (question, answer) + the question
    assert sw[0].messages[0]["content"].startswith("Swali:")
    assert sw[0].messages[-1]["role"] == "user"


def test_training_on_mgsm_items_is_refused():
    mgsm = load_mgsm(shared("mgsm"), ["en", "sw"], limit=5)
    train = load_gsm8k(shared("gsm8k", "test.jsonl"), split="relabelled", limit=3)  # same questions, other ids
    with pytest.raises(LineageError, match="gsm8k-test-0"):
        check_lineage(train, mgsm)
    sw_translation = [ex for ex in mgsm if ex.language == "sw"][:1]
    with pytest.raises(LineageError, match="1 evaluation items"):
        check_lineage(sw_translation, [ex for ex in mgsm if ex.language == "en"])
    check_lineage(load_gsm8k(shared("gsm8k", "train.jsonl"), limit=50), mgsm)


@pytest.mark.parametrize("line,reason", [
    ("{not json", "not valid JSON"),
    ('["a list"]', "expected a JSON object"),
    ('{"question": "q"}', "expected string fields"),
    ('{"question": "q", "answer": "no final line"}', "no '#### <number>' line"),
    ('{"question": "q", "answer": "x #### many"}', "is not a number"),
])
def test_gsm8k_malformed(tmp_path, line, reason):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"question": "q", "answer": "1 + 1 = 2\n#### 2"})
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(DataFormatError, match=rf"bad.jsonl:2: .*{reason}"):
        load_gsm8k(path)


def test_mgsm_malformed(tmp_path):
    (tmp_path / "mgsm_sw.tsv").write_text("Swali moja\t3\nSwali mbili\t4\textra\n")
    with pytest.raises(DataFormatError, match=r"mgsm_sw.tsv:2: expected question<TAB>answer"):
        load_mgsm(tmp_path)
    (tmp_path / "mgsm_sw.tsv").write_text("Swali moja\tthree\n")
    with pytest.raises(DataFormatError, match=r"mgsm_sw.tsv:1: answer 'three' is not a number"):
        load_mgsm(tmp_path)
    with pytest.raises(DataFormatError, match="no mgsm_ja.tsv"):
        load_mgsm(tmp_path, ["ja"])
    (tmp_path / "ex.json").write_text('{"other": 1}')
    with pytest.raises(DataFormatError, match="MGSM_EXEMPLARS"):
        load_mgsm_exemplars(tmp_path / "ex.json")


def test_mgsm_offset_and_limit_pick_items_150_to_249():
    from langmix.config import FileSource
    from langmix.data.sources import load_examples

    src = FileSource(format="mgsm", path=str(shared("mgsm")), offset=150, limit=100)
    items = load_examples(src, ["en", "sw"])
    for lang in ("en", "sw"):
        ids = [ex.source_id for ex in items if ex.language == lang]
        assert ids == [f"gsm8k-test-{i}" for i in range(150, 250)]
    whole = {ex.id: ex for ex in load_mgsm(shared("mgsm"), ["sw"])}
    assert all(ex == whole[ex.id] for ex in items if ex.language == "sw")
    with pytest.raises(DataFormatError, match="no items in file from item 250 on"):
        load_mgsm(shared("mgsm"), ["en"], offset=250)
    with pytest.raises(ValueError, match="offset` is supported for format 'mgsm' only"):
        FileSource(format="gsm8k", path="x.jsonl", offset=3)
