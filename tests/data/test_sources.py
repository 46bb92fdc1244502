import json

import pytest

from langmix.config import DataConfig
from langmix.data.sources import open_source
from langmix.mixtures import MixtureError
from tests.shared_data import shared


def files_config(tmp_path, train_rows, **eval_extra):
    train = tmp_path / "parallel.jsonl"
    train.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in train_rows) + "\n")
    return DataConfig.model_validate({"source": "files", "math": {
        "train": {"format": "parallel", "path": str(train)},
        "eval": {"format": "mgsm", "path": str(shared("mgsm")), "limit": 3, **eval_extra}}})


ROWS = [{"id": "p1", "language": "en", "question": "Ann has 2 cats and gets 3 more. How many?", "answer": 5},
        {"id": "p1", "language": "sw", "question": "Ann ana paka 2 na anapata 3 zaidi. Ngapi?", "answer": 5},
        {"id": "p2", "language": "en", "question": "Tom has 10 pens and loses 4. How many?",
         "answer": "10 - 4 = 6 pens.\n#### 6"},
        {"id": "p3", "language": "sw", "question": "Juma ana 4. Ngapi?", "answer": "4"}]


def test_parallel_long_pool_and_mgsm_eval(tmp_path):
    source = open_source(files_config(tmp_path, ROWS))
    size, render = source.pool("math", ["en", "sw"])
    assert size == 1  # only p1 exists in both languages
    assert render(0, "sw").target() == "Jibu ni 5." and render(0, "sw").source_id == "p1"
    size_en, render_en = source.pool("math", ["en"])
    assert size_en == 2 and render_en(1, "en").target() == "10 - 4 = 6 pens.\nThe answer is 6."
    ev = source.eval_examples("math", ["en", "sw"])
    assert len(ev) == 6 and {e.language for e in ev} == {"en", "sw"}


def test_missing_languages_are_an_error_not_a_silent_drop(tmp_path):
    source = open_source(files_config(tmp_path, ROWS))
    with pytest.raises(MixtureError, match=r"translate the data first"):
        source.pool("math", ["en", "ja"])


def test_wide_layout(tmp_path):
    path = tmp_path / "wide.jsonl"
    path.write_text(json.dumps({"id": "w1", "question_en": "2+2?", "answer_en": 4, "question_es": "¿2+2?",
                                "answer_es": 4}) + "\n")
    cfg = DataConfig.model_validate({"source": "files", "math": {
        "train": {"format": "parallel", "path": str(path), "layout": "wide"},
        "eval": {"format": "mgsm", "path": str(shared("mgsm")), "limit": 1}}})
    size, render = open_source(cfg).pool("math", ["en", "es"])
    assert size == 1 and render(0, "es").target() == "La respuesta es 4."


def test_malformed_parallel_row(tmp_path):
    source = open_source(files_config(tmp_path, ROWS + [{"id": "p4", "language": "en"}]))
    with pytest.raises(ValueError, match=r"parallel.jsonl:5: missing question"):
        source.pool("math", ["en"])


def test_eval_examples_share_equal_tool_schemas_only():
    from langmix.data.sources import share_tools
    from langmix.records import Example

    source = open_source(DataConfig(eval_items=3))
    ev = source.eval_examples("api", ["en", "sw"])
    assert len({id(ex.tools) for ex in ev}) == 1 and ev[0].tools  # one schema list, validated copies folded
    def api(i, tools):
        return Example(id=f"a{i}", source_id=f"a{i}", task="api", language="en", tools=tools,
                       messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "[]"}])
    # equal under ==, different JSON (True vs 1 vs 1.0, key order): not shared, each keeps its own schemas
    kinds = [[{"name": "f", "x": True}], [{"name": "f", "x": 1}], [{"name": "f", "x": 1.0}],
             [{"x": True, "name": "f"}], [{"name": "f", "x": True}], None]
    examples = share_tools([api(i, t) for i, t in enumerate(kinds)])
    assert examples[0].tools is examples[4].tools
    assert len({id(ex.tools) for ex in examples[:4]}) == 4
    assert [ex.tools for ex in examples] == kinds and examples[5].tools is None
    assert [json.dumps(ex.tools) for ex in examples] == [json.dumps(t) for t in kinds]


def _example_file(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _row(i, lang="en", task="math", last="assistant", answer=5):
    return {"id": f"q{i}-{lang}", "source_id": f"q{i}", "task": task, "language": lang, "reference": {"answer": answer},
            "messages": [{"role": "user", "content": f"What is {i} + 1?"}, {"role": last, "content": "The answer is 5."}]}


@pytest.mark.parametrize("rows, split, message", [
    ([_row(1), _row(2, task="api")], "train", r"'q2-en' is a 'api' example"),
    ([_row(1), _row(1, "sw"), dict(_row(1), id="again")], "eval", r"source 'q1' repeats in 'en' \('again'\)"),
    ([_row(1), _row(2, last="user")], "train", r"'q2-en' ends with a 'user' message, not the assistant's answer"),
    ([_row(1), {**_row(2), "messages": [{"role": "user", "content": "What is 2 + 1?"},
                                        {"role": "assistant", "content": ""}]}, {**_row(3), "messages": [
        {"role": "user", "content": "What is 3 + 1?"}, {"role": "assistant", "content": " \n"}]}], "train",
     r"2 problem\(s\) in data.math.train: 'q2-en' has an empty answer \(its last, assistant message\); 'q3-en'"),
])
def test_files_of_the_wrong_task_repeated_ids_or_no_answer_are_refused(tmp_path, rows, split, message):
    from langmix.data.files import DataFormatError

    other = [_row(k, lang) for k in (7, 8) for lang in ("en", "sw")]
    paths = {split: _example_file(tmp_path, f"{split}.jsonl", rows),
             ("eval" if split == "train" else "train"): _example_file(tmp_path, "other.jsonl", other)}
    cfg = DataConfig.model_validate({"source": "files", "math": {s: {"format": "examples", "path": p}
                                                                 for s, p in paths.items()}})
    source = open_source(cfg)
    with pytest.raises(DataFormatError, match=message):
        source.pool("math", ["en"]) if split == "train" else source.eval_examples("math", ["en"])


def test_eval_rows_outside_the_study_languages_are_counted_not_silently_dropped(tmp_path, caplog):
    rows = [_row(1), _row(1, "sw"), _row(2, "ja"), _row(3, "ja"), _row(4, "th")]
    cfg = DataConfig.model_validate({"source": "files", "math": {
        "train": {"format": "examples", "path": _example_file(tmp_path, "t.jsonl", [_row(9)])},
        "eval": {"format": "examples", "path": _example_file(tmp_path, "e.jsonl", rows)}}})
    ev = open_source(cfg).eval_examples("math", ["en", "sw"])
    assert [e.id for e in ev] == ["q1-en", "q1-sw"]  # one id per language, or ids shared across languages: fine
    assert "3 evaluation examples are in languages outside the study and are not used (ja: 2, th: 1)" in caplog.text


def test_example_files_resolve_language_codes_and_refuse_unknown_ones_and_repeated_ids(tmp_path):
    """An eval row labelled 'EN' was dropped as a language outside the study, one labelled 'xx' was only warned
    about (a train row not even that), and an id given twice in one language passed."""
    from langmix.data.files import DataFormatError, load_example_file

    upper = [dict(_row(1), language="EN"), dict(_row(1, "sw"), language="Swahili")]
    assert [e.language for e in load_example_file(_example_file(tmp_path, "u.jsonl", upper))] == ["en", "sw"]
    with pytest.raises(DataFormatError, match=r"x.jsonl:2: unknown language 'xx'"):
        load_example_file(_example_file(tmp_path, "x.jsonl", [_row(1), _row(2, "xx")]))
    with pytest.raises(DataFormatError, match=r"d.jsonl:3: id 'q1-en' in en is given twice \(first at line 1\)"):
        load_example_file(_example_file(tmp_path, "d.jsonl", [_row(1), _row(2), dict(_row(3), id="q1-en")]))


def test_ids_shared_across_languages_are_fine(tmp_path):
    rows = [dict(_row(1), id="q1"), dict(_row(1, "sw"), id="q1")]
    cfg = DataConfig.model_validate({"source": "files", "math": {
        "train": {"format": "examples", "path": _example_file(tmp_path, "t.jsonl", [_row(9)])},
        "eval": {"format": "examples", "path": _example_file(tmp_path, "e.jsonl", rows)}}})
    assert [e.language for e in open_source(cfg).eval_examples("math", ["en", "sw"])] == ["en", "sw"]


def test_an_empty_question_is_refused_in_every_format(tmp_path):
    """A gsm8k row with an empty question became a training example whose user turn was ''."""
    from langmix.data.files import DataFormatError
    from langmix.data.math_data import load_gsm8k

    gsm = tmp_path / "g.jsonl"
    gsm.write_text('{"question": "Ann has 2.", "answer": "#### 2"}\n{"question": " ", "answer": "#### 5"}\n')
    with pytest.raises(DataFormatError, match=r"g.jsonl:2: empty question"):
        load_gsm8k(gsm)
    empty = [{"role": "user", "content": "  "}, {"role": "assistant", "content": "5"}]
    rows = [_row(1), {**_row(2), "messages": empty}]
    cfg = DataConfig.model_validate({"source": "files", "math": {
        "train": {"format": "examples", "path": _example_file(tmp_path, "t.jsonl", rows)},
        "eval": {"format": "examples", "path": _example_file(tmp_path, "e.jsonl", [_row(1)])}}})
    with pytest.raises(DataFormatError, match=r"'q2-en' has no question"):
        open_source(cfg).pool("math", ["en"])


def test_an_evaluation_format_as_training_data_is_a_config_error():
    from langmix.config import ConfigError

    with pytest.raises((ConfigError, ValueError), match="'mgsm' is an evaluation set"):
        DataConfig.model_validate({"source": "files", "math": {"train": {"format": "mgsm", "path": "m"},
                                                               "eval": {"format": "mgsm", "path": "m"}}})


def test_a_question_repeated_in_an_examples_eval_set_is_warned_or_refused(tmp_path, caplog):
    """An `examples`-format eval set giving one question twice (under two source ids) counted it twice in the scores
    in silence; the MGSM, GSM8K and parallel loaders check this (data probe): a warning with the same answer, a
    refusal naming both with another."""
    from langmix.data.files import DataFormatError

    same = {**_row(2), "id": "copy-en", "source_id": "copy", "messages": _row(1)["messages"]}
    train = _example_file(tmp_path, "t.jsonl", [_row(9)])

    def eval_of(rows):
        return open_source(DataConfig.model_validate({"source": "files", "math": {
            "train": {"format": "examples", "path": train},
            "eval": {"format": "examples", "path": _example_file(tmp_path, "e.jsonl", rows)}}})).eval_examples(
            "math", ["en"])

    assert len(eval_of([_row(1), same])) == 2
    assert "1 questions repeat an earlier one with the same answer (each copy counts in the scores): copy-en = q1-en" \
        in caplog.text
    with pytest.raises(DataFormatError, match=r"item 'copy-en' repeats the en question of 'q1-en' \(\S+e\.jsonl\) "
                                              r"with another answer \(6 vs 5\)"):
        eval_of([_row(1), {**same, "reference": {"answer": 6}}])
