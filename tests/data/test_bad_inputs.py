"""Bad inputs (issue 8): each is a DataFormatError naming the file (and the line where there is one), never a
traceback from deep inside a reader and never a silent drop."""

import json

import pytest

from langmix.config import FileSource
from langmix.data.files import DataFormatError
from langmix.data.sources import load_examples

GOOD_GSM8K = json.dumps({"question": "Ann has 2 cats and gets 3 more. How many?", "answer": "2 + 3 = 5\n#### 5"})
GOOD_EXAMPLE = json.dumps({"id": "a-en", "source_id": "a", "task": "math", "language": "en",
                           "messages": [{"role": "user", "content": "2+2?"},
                                        {"role": "assistant", "content": "The answer is 4."}]})


def load(fmt, path, languages=None, **kw):
    return load_examples(FileSource(format=fmt, path=str(path), **kw), languages)


@pytest.mark.parametrize("fmt,name,lines", [
    ("gsm8k", "train.jsonl", [GOOD_GSM8K.encode(), b'{"question": "caf\xe9", "answer": "#### 1"}']),
    ("examples", "data.jsonl", [GOOD_EXAMPLE.encode(), b"\xff\xfe" + GOOD_EXAMPLE.encode()]),
    ("parallel", "p_sw.tsv", [b"Ana ana 2.\t2", b"Juma ana \x81 7.\t7"]),
])
def test_non_utf8_bytes_name_the_line(tmp_path, fmt, name, lines):
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    target = tmp_path / "p_{lang}.tsv" if fmt == "parallel" else path
    with pytest.raises(DataFormatError, match=rf"{name}:2: not valid UTF-8 \(byte 0x.. at column \d+\)"):
        load(fmt, target, ["sw"])


def test_non_utf8_mgsm_tsv_names_the_line(tmp_path):
    (tmp_path / "mgsm_sw.tsv").write_bytes(b"Swali moja\t3\nSwali \xe9 mbili\t4\n")
    with pytest.raises(DataFormatError, match=r"mgsm_sw.tsv:2: not valid UTF-8"):
        load("mgsm", tmp_path, ["sw"])


def test_example_without_messages_is_refused(tmp_path):
    path = tmp_path / "data.jsonl"
    row = json.loads(GOOD_EXAMPLE) | {"messages": []}
    path.write_text(GOOD_EXAMPLE + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataFormatError, match=r"data.jsonl:2: example has no messages"):
        load("examples", path)


def test_empty_examples_file_is_refused(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n\n")
    with pytest.raises(DataFormatError, match=r"data.jsonl: no examples in file"):
        load("examples", path)


def test_empty_gsm8k_file_is_refused(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("")
    with pytest.raises(DataFormatError, match=r"train.jsonl: no examples in file"):
        load("gsm8k", path)


def test_gsm8k_line_without_final_answer(tmp_path):
    # Already an error before issue 8; pinned here with the other classes of bad input.
    path = tmp_path / "train.jsonl"
    path.write_text(GOOD_GSM8K + "\n" + json.dumps({"question": "q", "answer": "no final line"}) + "\n")
    with pytest.raises(DataFormatError, match=r"train.jsonl:2: answer has no '#### <number>' line"):
        load("gsm8k", path)


@pytest.mark.parametrize("line,got", [('[1, 2]', "list"), ('"text"', "str"), ("7", "int")])
def test_json_that_is_not_an_object(tmp_path, line, got):
    path = tmp_path / "data.jsonl"
    path.write_text(GOOD_EXAMPLE + "\n" + line + "\n")
    with pytest.raises(DataFormatError, match=rf"data.jsonl:2: expected a JSON object, got {got}"):
        load("examples", path)


def test_json_array_with_a_non_object(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('[{"id": "a", "language": "en", "question": "2+2?", "answer": 4},\n 5]')
    with pytest.raises(DataFormatError, match=r"rows.json:2: expected a JSON object, got int"):
        load("parallel", path)


@pytest.mark.parametrize("fmt", ["gsm8k", "examples", "parallel"])
def test_directory_where_a_file_belongs(tmp_path, fmt):
    folder = tmp_path / "data.jsonl"
    folder.mkdir()
    with pytest.raises(DataFormatError, match=r"data.jsonl: is a directory, expected a file"):
        load(fmt, folder)


def test_directory_as_exemplars_file(tmp_path):
    (tmp_path / "mgsm_sw.tsv").write_text("Swali\t3\n")
    (tmp_path / "exemplars.json").mkdir()
    with pytest.raises(DataFormatError, match=r"exemplars.json: is a directory, expected a file"):
        load("mgsm", tmp_path, ["sw"], exemplars=str(tmp_path / "exemplars.json"))


def test_file_where_a_directory_belongs(tmp_path):
    path = tmp_path / "bfcl.json"
    path.write_text("{}")
    with pytest.raises(DataFormatError, match=r"bfcl.json: is a file, expected a directory"):
        load("bfcl", path)


def test_a_leading_byte_order_mark_is_dropped(tmp_path):
    """Every line reader shares `files.iter_raw_lines`: a BOM before line 1 is not part of the first row."""
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_EXAMPLE.encode() + b"\n")
    (example,) = load("examples", path, ["en"])
    assert example.id == "a-en"
