import json

import pytest

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
    shown = runner.invoke(app, ["score", str(preds), "--task", "math", "--out", str(tmp_path / "v2.jsonl")])
    assert "strict" in shown.output and "flexible" in shown.output  # both accuracies (headers wrap)
    assert [v["line"] for v in verdicts] == [1, 2, 3, 4, 5, 6]
    assert [v["correct"] for v in verdicts] == [True, True, False, False, False, True]
    assert verdicts[3]["reason"] == "bad_input" and "line 4" in verdicts[3]["detail"]
    assert totals["sw"] == {"n": 1, "correct": 0, "correct_flexible": 0, "bad_input": 1, "accuracy": 0.0}  # not in n
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
    verdicts = [json.loads(x) for x in (tmp_path / "api.api.verdicts.jsonl").read_text().splitlines()]
    assert [v["correct"] for v in verdicts] == [True, False, True]
    assert verdicts[1]["wrong_language_args"] == ["city"]
    # 1 of 2: Wilson 95% interval [0.095, 0.905]
    assert "ja" in result.output and "0.500 [0.095, 0.905]" in result.output
    assert "checker mode: multilingual" in result.output



def test_score_reads_a_call_after_leading_text_as_the_checker_does(tmp_path):
    """`langmix score` went through the same parser: a call after leading text was `no_call`, a correct
    abstention on an irrelevance item."""
    fn = [{"name": "get_time", "parameters": {"required": ["city"], "properties": {"city": {"type": "string"}}}}]
    want = {"functions": fn, "possible_answer": [{"get_time": {"city": ["Tokyo"]}}]}
    none = {"functions": fn, "possible_answer": []}
    preds = tmp_path / "api.jsonl"
    write(preds, [
        {"language": "en", "output": 'Sure! {"name": "get_time", "arguments": {"city": "Tokyo"}}', "reference": want},
        {"language": "en", "output": 'Sure: get_time(city="Tokyo")', "reference": none},
        {"language": "en", "output": 'Sure! [{"name": "get_time", "arguments": {"ci', "reference": want},
        {"language": "en", "output": "get_time needs a city.", "reference": none},
    ])
    seen = {}
    for mode in ("multilingual", "bfcl"):
        rescore("api", preds, tmp_path / f"{mode}.jsonl", api_mode=mode)
        seen[mode] = [(v["correct"], v["reason"], v["leniencies"])
                      for v in map(json.loads, (tmp_path / f"{mode}.jsonl").read_text().splitlines())]
    assert seen["multilingual"] == [(True, "ok", ["leading_text"]), (False, "irrelevance_violated", ["leading_text"]),
                                    (False, "parse_error", []), (True, "ok", [])]
    assert seen["bfcl"] == [(False, "parse_error", []), (True, "ok", []), (False, "parse_error", []),
                            (True, "ok", [])]  # BFCL's decoder reads no leading text; its irrelevance rule is lax

def test_every_line_gets_a_verdict(tmp_path):
    fn = [{"name": "f", "parameters": {"required": ["x"], "properties": {"x": {"type": "integer"}}}}]
    ref = {"functions": fn, "possible_answer": [{"f": {"x": [1]}}]}
    good = json.dumps({"language": "en", "output": "f(x=1)", "reference": ref})
    lines = [good,
             json.dumps({"language": "en", "output": "[" * 19_000, "reference": ref}),
             json.dumps({"language": "en", "output": '{"name": "f", "arguments": ' + '{"a": ' * 1500 + "1"
                         + "}" * 1501, "reference": ref}),
             json.dumps({"language": "en", "output": '{"name": "f", "arguments": "' + "[" * 1500 + '"}',
                         "reference": ref}),
             '{"language": "en", "output": "f(x=1)", "reference": ' + "[" * 1500 + "]" * 1500 + "}",
             '{"language": "en", "output": "\\ud800 f(x=1)", "reference": {}}',
             json.dumps({"language": "en", "output": "f(x=1)", "reference": {"functions": fn,
                                                                              "possible_answer": [{"f": {"x": 1}}]}})]
    preds = tmp_path / "p.jsonl"
    preds.write_bytes(("\n".join(lines) + "\n").encode() + b'{"language": "en", "output": "\xff"}\n'
                      + (good + "\n").encode())
    totals = rescore("api", preds, tmp_path / "v.jsonl", api_mode="bfcl")
    verdicts = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [v["line"] for v in verdicts] == list(range(1, 10))
    assert [v["reason"] for v in verdicts] == ["ok", "parse_error", "parse_error", "parse_error", "bad_input",
                                               "bad_input", "bad_input", "bad_input", "ok"]
    assert "line 5: JSON nested too deeply" in verdicts[4]["detail"] and "surrogate" in verdicts[5]["detail"]
    assert "line 8: not UTF-8" in verdicts[7]["detail"] and verdicts[0]["mode"] == "bfcl"
    assert totals["?"]["bad_input"] == 3
    assert totals["en"] == {"n": 5, "correct": 2, "bad_input": 1, "accuracy": pytest.approx(2 / 5)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl", "v.jsonl"]  # no temporary file left


@pytest.mark.parametrize("reference", ["NaN", "Infinity", "-Infinity", "1e309", "true", '"NaN"', '"Infinity"',
                                       '"1e309"', "null", "[7]", '"1e3"', '"7e0"', '"1_000"'])
def test_non_finite_math_reference_is_bad_input(tmp_path, reference):
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"language": "en", "output": "The answer is 7.", "reference": ' + reference + "}\n")
    rescore("math", preds, tmp_path / "v.jsonl")
    (verdict,) = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert verdict["reason"] == "bad_input" and not verdict["correct"], verdict


def test_verdicts_are_written_atomically(tmp_path, monkeypatch):
    from langmix.evaluate import rescore as module

    out = tmp_path / "v.jsonl"
    out.write_text("previous verdicts\n")
    preds = tmp_path / "p.jsonl"
    write(preds, [{"language": "en", "output": "The answer is 7.", "reference": 7}] * 3)

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_score_line", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rescore("math", preds, out)
    assert out.read_text() == "previous verdicts\n" and sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl",
                                                                                                      "v.jsonl"]


def test_verdicts_go_where_asked_and_a_bad_path_is_named(tmp_path):
    """--out in a directory that does not exist yet is made; one that cannot be made is named in the error
    (it named the temporary file, `.v.jsonl.abc123.tmp`)."""
    preds = tmp_path / "p.jsonl"
    write(preds, [{"language": "en", "output": "The answer is 7.", "reference": 7}])
    made = runner.invoke(app, ["score", str(preds), "--task", "math", "--out", str(tmp_path / "new" / "v.jsonl")])
    assert made.exit_code == 0, made.output
    assert json.loads((tmp_path / "new" / "v.jsonl").read_text())["correct"] is True
    (tmp_path / "file").write_text("not a directory")
    bad = runner.invoke(app, ["score", str(preds), "--task", "math", "--out", str(tmp_path / "file" / "v.jsonl")])
    assert bad.exit_code == 2 and f"cannot write {tmp_path / 'file' / 'v.jsonl'}" in " ".join(bad.output.split())
    assert ".tmp" not in bad.output


def test_lines_that_cannot_be_scored_are_not_wrong_answers(tmp_path):
    """An unknown language or a missing reference is a bad input: out of n and the accuracy; a file with nothing
    scorable has no accuracy (n/a) and exits 2, instead of reporting 0.000 on n items."""
    preds = tmp_path / "p.jsonl"
    write(preds, [{"language": "en", "output": "The answer is 3.", "reference": 3},
                  {"language": "en", "output": "The answer is 4."},
                  {"language": "xx", "output": "The answer is 3.", "reference": 3}])
    totals = rescore("math", preds, tmp_path / "v.jsonl")
    assert totals["en"] == {"n": 1, "correct": 1, "correct_flexible": 1, "bad_input": 1, "accuracy": 1.0}
    assert totals["xx"] == {"n": 0, "correct": 0, "correct_flexible": 0, "bad_input": 1, "accuracy": None}
    nothing = tmp_path / "none.jsonl"
    write(nothing, [{"language": "en", "output": "The answer is 4."}])
    result = runner.invoke(app, ["score", str(nothing), "--task", "math"])
    assert result.exit_code == 2 and "n/a" in result.output and "no line could be scored" in result.output


@pytest.mark.parametrize("task", ["math", "api"])
def test_langmix_predictions_rescore_to_the_same_verdicts(tmp_path, tiny_model_path, task):
    """predictions.jsonl from a study carries what `langmix score` needs: re-scoring gives the stored verdicts."""
    from langmix.config import StudyConfig
    from langmix.study.grid import expand
    from langmix.study.runner import eval_dir, run_study
    from tests.conftest import small_study_dict

    cfg = StudyConfig.model_validate(small_study_dict(tmp_path / "out", tasks=[task], include_base=True,
                                                      mixtures=[{"design": "english_only"}]))
    assert not run_study(cfg)["failed"]
    preds = eval_dir(cfg, expand(cfg)[0].evals[0]) / "predictions.jsonl"
    stored = [json.loads(x) for x in preds.read_text().splitlines()]
    totals = rescore(task, preds, tmp_path / "v.jsonl")
    again = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert len(again) == len(stored) > 0 and not any(v["reason"] == "bad_input" for v in again)
    assert [v["correct"] for v in again] == [p["correct"] for p in stored]
    assert sum(t["n"] for t in totals.values()) == len(stored)


def test_language_names_and_regions_score_as_their_language(tmp_path):
    """'de-DE' and 'German' were accepted but their raw text drove number parsing (German '1.000' read as 1.0) and
    split the table into rows per spelling; an API line with one crashed the language judge."""
    preds = tmp_path / "p.jsonl"
    write(preds, [{"language": "de-DE", "output": "Die Antwort lautet 1.000.", "reference": 1000},
                  {"language": "German", "output": "Die Antwort lautet 2.500.", "reference": 2500},
                  {"language": "fr-FR", "output": "La réponse est 2,5.", "reference": 2.5}])
    totals = rescore("math", preds, tmp_path / "v.jsonl")
    assert totals == {"de": {"n": 2, "correct": 2, "correct_flexible": 2, "bad_input": 0, "accuracy": 1.0},
                      "fr": {"n": 1, "correct": 1, "correct_flexible": 1, "bad_input": 0, "accuracy": 1.0}}
    fn = [{"name": "find", "parameters": {"required": ["city"], "properties": {"city": {"type": "string"}}}}]
    api = tmp_path / "api.jsonl"
    write(api, [{"language": "de-DE", "output": 'find(city="Los Ángeles, Kalifornien")',
                 "reference": {"functions": fn, "possible_answer": [{"find": {"city": ["Los Angeles, CA"]}}]}}])
    assert rescore("api", api, tmp_path / "va.jsonl")["de"] == {"n": 1, "correct": 0, "bad_input": 0,
                                                                  "accuracy": 0.0}


def _schema_line(parameters, output="[math.factorial(number=5)]"):
    fn = {"name": "math.factorial"} | ({} if parameters is ... else {"parameters": parameters})
    return {"language": "en", "output": output,
            "reference": {"functions": [fn], "possible_answer": [{"math.factorial": {"number": [5]}}]}}


def test_malformed_function_schemas_are_bad_input_naming_the_fault(tmp_path):
    """A schema the checker cannot read crashed the whole file (AttributeError on `"parameters": "junk"`, no
    verdicts written) or gave a wrong verdict (`"required": "number"` read as its letters, `"properties": "junk"`
    as none): each is now a bad_input line naming what is wrong, and the lines around it are scored."""
    number = {"type": "integer"}
    bad = [("junk", "parameters must be an object, got 'junk'"),
           (5, "parameters must be an object, got 5"),
           (None, "parameters must be an object, got None"),
           ({"properties": "junk"}, "parameters.properties must be an object of parameter schemas, got 'junk'"),
           ({"properties": {"number": "junk"}}, "parameters.properties.number must be an object, got 'junk'"),
           ({"properties": {"number": {"type": "array", "items": "junk"}}},
            "parameters.properties.number.items must be an object, got 'junk'"),
           ({"properties": {"number": number}, "required": "number"},
            "parameters.required must be a list of parameter names, got 'number'"),
           ({"properties": {"number": number}, "required": [["x"]]}, "parameters.required must be a list"),
           ({"properties": {"number": {"type": 5}}}, "parameters.properties.number.type must be a type name"),
           ({"properties": {"number": {"type": "integer", "enum": 5}}}, "parameters.properties.number.enum must be"),
           ({"properties": {"number": {"type": "dict", "properties": "junk"}}},
            "parameters.properties.number.properties must be an object")]
    preds = tmp_path / "p.jsonl"
    good = _schema_line({"type": "dict", "properties": {"number": number}, "required": ["number"]})
    write(preds, [good, *[_schema_line(p) for p, _ in bad], _schema_line(...), good])
    totals = rescore("api", preds, tmp_path / "v.jsonl")
    verdicts = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [v["line"] for v in verdicts] == list(range(1, len(bad) + 4))
    for (_, why), v in zip(bad, verdicts[1:]):
        assert v["reason"] == "bad_input" and f"functions[0] (math.factorial).{why}" in v["detail"], (why, v)
    assert verdicts[1]["detail"].startswith("line 2: ")
    assert [v["reason"] for v in verdicts[-2:]] == ["ok", "ok"]  # a function without parameters is valid
    assert totals["en"] == {"n": 3, "correct": 3, "bad_input": len(bad), "accuracy": 1.0}


def test_malformed_function_list_entries_are_bad_input(tmp_path):
    """A function that is not an object or has no string name was skipped, so the call was checked without its
    schema (required parameters and types unchecked)."""
    def line(functions):
        return {"language": "en", "output": "f(x=1)", "reference": {"functions": functions,
                                                                      "possible_answer": [{"f": {"x": [1]}}]}}

    preds = tmp_path / "p.jsonl"
    write(preds, [line({"name": "f"}), line([None]), line([{"name": 3}]), line([{"parameters": {}}])])
    rescore("api", preds, tmp_path / "v.jsonl")
    details = [json.loads(x)["detail"] for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert details == ["line 1: functions must be a list of function schemas, got {'name': 'f'}",
                       "line 2: functions[0] must be an object, got None",
                       "line 3: functions[0].name must be a non-empty string, got 3",
                       "line 4: functions[0].name must be a non-empty string, got None"]


def test_a_checker_bug_is_not_turned_into_bad_input(tmp_path, monkeypatch):
    """Only input faults (ValueError and the like) become bad_input: an error inside the checker stays visible."""
    from langmix.evaluate import rescore as module

    def broken(*args, **kwargs):
        raise AttributeError("a bug in the checker")

    monkeypatch.setattr(module, "check", broken)
    preds = tmp_path / "p.jsonl"
    write(preds, [_schema_line({"properties": {"number": {"type": "integer"}}})])
    with pytest.raises(AttributeError, match="a bug in the checker"):
        rescore("api", preds, tmp_path / "v.jsonl")


def test_out_that_is_the_predictions_file_is_refused(tmp_path, monkeypatch):
    """`score p.jsonl --out p.jsonl` replaced the outputs with the verdicts; so did a relative spelling, a symlink
    or a hard link to it."""
    preds = tmp_path / "p.jsonl"
    write(preds, [{"language": "en", "output": "The answer is 7.", "reference": 7}])
    before = preds.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(preds)
    (tmp_path / "hard.jsonl").hardlink_to(preds)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    for given, out in [("p.jsonl", "p.jsonl"), ("p.jsonl", "./sub/../p.jsonl"), ("p.jsonl", str(preds)),
                       ("p.jsonl", "link.jsonl"), ("link.jsonl", "p.jsonl"), ("hard.jsonl", "p.jsonl")]:
        result = runner.invoke(app, ["score", given, "--task", "math", "--out", out])
        assert result.exit_code == 2, (given, out, result.output)
        assert "is the predictions file" in result.output and len(result.output.strip().splitlines()) == 1
    assert preds.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "hard.jsonl", "link.jsonl", "p.jsonl", "sub"]
    assert runner.invoke(app, ["score", "p.jsonl", "--task", "math", "--out", "v.jsonl"]).exit_code == 0


def test_a_byte_order_mark_on_line_1_is_not_bad_input(tmp_path):
    """A file saved with a UTF-8 BOM (Windows editors) made line 1 `bad_input` ("Unexpected UTF-8 BOM"); the loaders
    (`data.files`) dropped it already. Only a leading BOM is dropped: one inside a later line stays an error."""
    line = json.dumps({"language": "en", "output": "The answer is 5.", "reference": 5})
    preds = tmp_path / "p.jsonl"
    preds.write_bytes(b"\xef\xbb\xbf" + (line + "\n" + line + "\n").encode() + b"\xef\xbb\xbf" + line.encode())
    totals = rescore("math", preds, tmp_path / "v.jsonl")
    verdicts = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [v["reason"] for v in verdicts] == ["ok", "ok", "bad_input"] and verdicts[0]["correct"] is True
    assert totals["en"]["n"] == 2 and totals["?"]["bad_input"] == 1


def test_references_in_scientific_notation(tmp_path):
    """A JSON number is a number whatever its notation (1e3 is 1000); a string "1e3" is refused, as outputs in
    scientific notation are not read (it was accepted as 1000, which "The answer is 1e3." could never match)."""
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"language": "en", "output": "The answer is 1000.", "reference": 1e3}\n'
                     '{"language": "en", "output": "The answer is 1000.", "reference": "1e3"}\n')
    rescore("math", preds, tmp_path / "v.jsonl")
    verdicts = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert verdicts[0]["correct"] is True
    assert verdicts[1]["reason"] == "bad_input" and "'1e3' is in scientific notation" in verdicts[1]["detail"]
