import json

from typer.testing import CliRunner

from langmix.cli import app
from langmix.evaluate.rescore import rescore

runner = CliRunner()


def write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n")


def test_math_rescoring_keeps_every_line(tmp_path):
    preds = tmp_path / "p.jsonl"
    write(preds, [
        {"language": "en", "output": "So $29.00 in total. The answer is $29.00.", "reference": 29},
        {"language": "bn", "output": "উত্তর হল ১৮।", "reference": "18"},
        {"language": "sw", "output": "Jibu ni 7.", "reference": 8},
        "{broken json",
        {"language": "sw", "output": "Jibu ni 7."},
        {"language": "de", "output": "Die Antwort ist 1.500.", "reference": 1500},
    ])
    totals = rescore("math", preds, tmp_path / "v.jsonl")
    verdicts = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [v["line"] for v in verdicts] == [1, 2, 3, 4, 5, 6]
    assert [v["correct"] for v in verdicts] == [True, True, False, False, False, True]
    assert verdicts[3]["reason"] == "bad_input" and "line 4" in verdicts[3]["detail"]
    assert totals["sw"] == {"n": 2, "correct": 0, "bad_input": 1, "accuracy": 0.0}
    assert totals["?"]["bad_input"] == 1


def test_api_rescoring_via_cli(tmp_path):
    fn = [{"name": "get_time", "parameters": {"required": ["city"], "properties": {"city": {"type": "string"}}}}]
    preds = tmp_path / "api.jsonl"
    write(preds, [
        {"language": "ja", "output": '{"name": "get_time", "arguments": {"city": "Tokyo"}}',
         "reference": {"functions": fn, "possible_answer": [{"get_time": {"city": ["Tokyo"]}}]}},
        {"language": "ja", "output": 'get_time(city="東京")',
         "reference": {"functions": fn, "possible_answer": [{"get_time": {"city": ["Tokyo"]}}]}},
        {"language": "en", "output": "No tool fits.", "reference": {"functions": fn, "ground_truth": []}},
    ])
    result = runner.invoke(app, ["score", str(preds), "--task", "api"])
    assert result.exit_code == 0, result.output
    verdicts = [json.loads(x) for x in (tmp_path / "api.verdicts.jsonl").read_text().splitlines()]
    assert [v["correct"] for v in verdicts] == [True, False, True]
    assert verdicts[1]["wrong_language_args"] == ["city"]
    assert "ja" in result.output and "0.500" in result.output
