"""Per-language aggregation of scored predictions into result rows."""

from langmix.evaluate.run import aggregate


def _pred(i: int, lang: str, correct: bool, response: str | None) -> dict:
    return {"id": f"m{i}-{lang}", "source_id": f"m{i}", "task": "math", "language": lang, "output": "",
            "correct": correct, "correct_strict": correct, "correct_flexible": correct, "reason": "ok",
            "response_language": response}


def test_fidelity_is_a_share_of_judged_responses_with_the_judged_n():
    preds = [_pred(0, "sw", True, "sw"), _pred(1, "sw", False, "en"), _pred(2, "sw", True, "sw"),
             _pred(3, "sw", True, None), _pred(4, "sw", False, None),
             _pred(0, "te", True, None), _pred(1, "te", True, None)]
    rows = {(lang, metric): (value, n) for _, lang, metric, value, n in aggregate(preds)}
    assert rows[("sw", "response_language_fidelity_judged")] == (2 / 3, 3)  # 2 of the 3 judged, not 2 of 5
    assert rows[("sw", "response_language_unjudged")] == (2 / 5, 5)
    assert ("te", "response_language_fidelity_judged") not in rows  # nothing judged: no figure, rather than 0%
    assert rows[("te", "response_language_unjudged")] == (1.0, 2)
    assert rows[("sw", "accuracy_strict")] == (3 / 5, 5)


def test_unscorable_references_are_refused_before_generation():
    import pytest

    from langmix.config import EvalConfig
    from langmix.evaluate.run import evaluate
    from langmix.records import Example
    from langmix.tasks import UnscorableReferenceError

    def ex(i, task, reference):
        return Example(id=f"x{i}", source_id=f"x{i}", task=task, language="en", reference=reference,
                       messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])

    math = [ex(0, "math", {"answer": 3}), ex(1, "math", {}), ex(2, "math", {"answer": "three"}),
            ex(3, "math", {"answer": True}), ex(4, "math", {"answer": "42"}), ex(5, "math", {"answer": 2.5})]
    # model=None: reaching generation would fail with another error
    with pytest.raises(UnscorableReferenceError, match=r"3 of 6 math evaluation examples cannot be scored: x1: "
                                                       r"reference.answer must be a number, got None; x2: .*'three'; "
                                                       r"x3: .*True$"):
        evaluate(None, None, math, EvalConfig(), ["en"])
    # the rule `langmix score` applies: no scientific notation in text (outputs are not read in it), finite
    math = [ex(0, "math", {"answer": "1,234"}), ex(1, "math", {"answer": "1e3"}), ex(2, "math", {"answer": "inf"}),
            ex(3, "math", {"answer": 1e3})]
    with pytest.raises(UnscorableReferenceError, match=r"2 of 4 math .* x1: reference.answer must be a number, got "
                                                       r"'1e3' \(scientific notation is not read: write the number\); "
                                                       r"x2: .*'inf'$"):
        evaluate(None, None, math, EvalConfig(), ["en"])
    api = [ex(0, "api", {"calls": []}), ex(1, "api", {"calls": {"f": {}}})]
    with pytest.raises(UnscorableReferenceError, match=r"1 of 2 api .* x1: reference.calls must be a list"):
        evaluate(None, None, api, EvalConfig(), ["en"])



def test_api_examples_with_schemas_the_checker_cannot_read_are_refused_before_generation():
    """An eval example's `tools` reach the same checker as `langmix score`'s functions: a schema it cannot read
    (or calls outside BFCL's shape) is refused up front, not met as a crash or a wrong verdict after generation."""
    import pytest

    from langmix.config import EvalConfig
    from langmix.evaluate.run import evaluate
    from langmix.records import Example
    from langmix.tasks import UnscorableReferenceError

    def ex(i, tools, calls):
        return Example(id=f"x{i}", source_id=f"x{i}", task="api", language="en", tools=tools,
                       reference={"calls": calls},
                       messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])

    good = [{"name": "f", "parameters": {"properties": {"n": {"type": "integer"}}, "required": ["n"]}}]
    api = [ex(0, good, [{"f": {"n": [5]}}]), ex(1, [{"name": "f", "parameters": "junk"}], [{"f": {"n": [5]}}]),
           ex(2, [{"name": "f", "parameters": {"required": "n"}}], []), ex(3, good, [{"f": {"n": 5}}])]
    with pytest.raises(UnscorableReferenceError, match=r"3 of 4 api evaluation examples cannot be scored: "
                                                       r"x1: tools: functions\[0\] \(f\).parameters must be an "
                                                       r"object, got 'junk'; x2: tools: .*required must be a list"
                                                       r".*; x3: reference.calls: possible answer"):
        evaluate(None, None, api, EvalConfig(), ["en"])

def test_api_call_level_rates_cover_the_items_that_expect_a_call():
    def api(i, irrelevance, correct, name, args, parsed):
        return {"id": f"a{i}", "source_id": f"a{i}", "task": "api", "language": "sw", "output": "",
                "correct": correct, "name_correct": name, "args_correct": args, "irrelevance": irrelevance,
                "parsed_calls": parsed, "wrong_language_args": [], "reason": "ok"}

    preds = [api(0, False, True, True, True, [{}]), api(1, False, False, True, False, [{}]),
             api(2, False, False, False, False, None), api(3, True, True, False, False, None)]  # 3: abstained
    rows = {metric: (value, n) for _, _, metric, value, n in aggregate(preds)}
    assert rows["call_accuracy"] == (2 / 4, 4)
    assert rows["name_accuracy_on_calls"] == (2 / 3, 3) and rows["argument_accuracy_on_calls"] == (1 / 3, 3)
    assert rows["parse_failure_rate_on_calls"] == (1 / 3, 3)  # the abstention is not a parse failure
    assert rows["irrelevance_accuracy"] == (1.0, 1)  # over the one irrelevance item, not n=4



from langmix.tasks.base import Task  # noqa: E402


class _Faulty(Task):
    """A task module's bugs, item by item: raising, a str verdict, a missing `correct`; other items score."""

    name, headline_metric, judge_response_language, default_max_new_tokens = "faulty", "accuracy", False, 8

    def score(self, ex, output, ctx):
        kind = ex.reference["kind"]
        if kind == "raise":
            raise RuntimeError("no capital for this item")
        if kind == "str":
            return {"correct": "no", "reason": "wrong"}  # bool("no") is True
        if kind == "missing":
            return {"reason": "ok"}
        return {"correct": output == "yes", "reason": "ok", "exact": output == "yes"}

    def rescore_fields(self, ex):
        return {}

    def metrics(self, items):
        return {"accuracy": sum(p["correct"] for p in items) / len(items),
                "exact_rate": (sum(1 for p in items if p["exact"]) / len(items), len(items)),
                "empty_subset": (0.0, 0)}


def test_a_scorer_that_fails_on_an_item_counts_it_wrong_and_keeps_the_run(monkeypatch, caplog):
    """A scorer raising on one item ended the evaluation and lost every generation; a str verdict ('no') was
    stored as correct (bool('no') is True); a metric over no items was reported with n=0."""
    import logging

    from langmix.config import EvalConfig
    from langmix.evaluate import run
    from langmix.records import Example

    monkeypatch.setattr(run.tasks, "get", lambda name: _Faulty())
    monkeypatch.setattr(run.tasks, "check_references", lambda task, examples: None)
    kinds = ["ok", "raise", "str", "missing", "ok"]
    examples = [Example(id=f"c{i}-en", source_id=f"c{i}", task="faulty", language="en", reference={"kind": kind},
                        messages=[{"role": "user", "content": "Capital?"}]) for i, kind in enumerate(kinds)]
    monkeypatch.setattr(run, "generate", lambda model, tok, exs, *a, **k: ["yes"] * len(exs))
    with caplog.at_level(logging.WARNING, logger="langmix.evaluate.run"):
        predictions, rows = run.evaluate(None, None, examples, EvalConfig(language_id=False), ["en"])
    assert [p["reason"] for p in predictions] == ["ok", "scorer_error", "scorer_error", "scorer_error", "ok"]
    assert [p["correct"] for p in predictions] == [True, False, False, False, True]
    assert "RuntimeError: no capital for this item" in predictions[1]["scorer_error"]
    assert predictions[2]["exact"] is False  # the task's own fields, as a wrong verdict has them
    assert "3 of 5 faulty items could not be scored" in caplog.text
    values = {metric: (value, n) for _, _, metric, value, n in rows}
    assert values == {"accuracy": (0.4, 5), "exact_rate": (0.4, 5)}  # no 'empty_subset' row with n=0
    monkeypatch.setattr(_Faulty, "metrics", lambda self, items: {"accuracy": (0.5, len(items) + 1)})
    import pytest

    with pytest.raises(ValueError, match="n=6, but a metric's n counts items, here 0 to 5"):
        run.aggregate(predictions)


def test_an_item_whose_scorer_fails_keeps_the_fields_of_its_example(monkeypatch):
    """A failed verdict took every task field as False, so an API item expecting no call (irrelevance) whose
    scoring failed was counted among the items expecting a call: wrong n for the call-level rates and for
    irrelevance accuracy."""
    from langmix.config import EvalConfig
    from langmix.evaluate import run
    from langmix.records import Example
    from langmix.tasks import api

    real_check = api.check

    def check(output, calls, *args, **kwargs):
        if output == "boom":
            raise RuntimeError("checker bug")
        return real_check(output, calls, *args, **kwargs)

    monkeypatch.setattr(api, "check", check)
    tool = {"name": "get_weather", "description": "Weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    calls = [[{"get_weather": {"city": ["Paris"]}}], [], [], [{"get_weather": {"city": ["Rome"]}}]]
    examples = [Example(id=f"a{i}-en", source_id=f"a{i}", task="api", language="en", tools=[tool],
                        reference={"calls": c}, messages=[{"role": "user", "content": "Weather in Rome or Paris?"}])
                for i, c in enumerate(calls)]
    outputs = ["boom", "boom", "No tool fits.", '[get_weather(city="Rome")]']
    monkeypatch.setattr(run, "generate", lambda model, tok, exs, *a, **k: outputs)
    predictions, rows = run.evaluate(None, None, examples, EvalConfig(language_id=False), ["en"])
    assert [p["reason"] for p in predictions][:2] == ["scorer_error", "scorer_error"]
    assert [p["irrelevance"] for p in predictions] == [False, True, True, False]
    values = {metric: (value, n) for _, _, metric, value, n in rows}
    assert values["irrelevance_accuracy"] == (0.5, 2)  # a1 (failed, counted wrong) and a2 (abstained)
    assert values["name_accuracy_on_calls"] == (0.5, 2)  # a0 (failed) and a3
    assert values["call_accuracy"] == (0.5, 4)


def test_a_task_name_taken_by_another_task_is_refused():
    """register() silently replaced the built-in math task with any other class named 'math'."""
    import pytest

    from langmix import tasks
    from langmix.tasks.base import Task

    class OtherMath(Task):
        name, headline_metric = "math", "accuracy_flexible"

    with pytest.raises(ValueError, match="task name 'math' is taken by langmix.tasks.math.MathTask"):
        tasks.register(OtherMath())
    assert type(tasks.get("math")).__name__ == "MathTask"
    tasks.register(type(tasks.get("math"))())  # the same class again (a module reloaded) is fine


def test_a_scorer_that_fails_on_every_item_is_one_clear_error(monkeypatch):
    """With no item scored there is no verdict to take the task's fields from, and its metrics raised KeyError."""
    import pytest

    from langmix.config import EvalConfig
    from langmix.evaluate import run
    from langmix.records import Example

    monkeypatch.setattr(run.tasks, "get", lambda name: _Faulty())
    monkeypatch.setattr(run.tasks, "check_references", lambda task, examples: None)
    monkeypatch.setattr(run, "generate", lambda model, tok, exs, *a, **k: ["yes"] * len(exs))
    examples = [Example(id=f"c{i}-en", source_id=f"c{i}", task="faulty", language="en", reference={"kind": "raise"},
                        messages=[{"role": "user", "content": "Capital?"}]) for i in range(3)]
    with pytest.raises(RuntimeError, match="the faulty scorer failed on all 3 items .first: RuntimeError: no capital"):
        run.evaluate(None, None, examples, EvalConfig(language_id=False), ["en"])


def test_items_past_the_models_context_are_counted_per_language_and_named_once(tiny_model_cfg, tiny_model_path,
                                                                               caplog):
    """MGSM Telugu prompts (279 tokens) + the 72-token cap ran past the tiny model's 256 positions without a word:
    each item now says whether it fit, each language counts those that did not, and one warning names them."""
    import copy
    import logging

    from langmix.config import DataConfig, EvalConfig
    from langmix.data.sources import SynthSource
    from langmix.evaluate.generate import render_prompts
    from langmix.evaluate.run import evaluate
    from langmix.models import load_model, load_tokenizer

    examples = SynthSource(DataConfig(train_pool=20, eval_items=6)).eval_examples("math", ["en", "sw"])
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    model = copy.deepcopy(load_model(tiny_model_cfg, tiny_model_path))
    lengths = [len(r) for r in tok(render_prompts(tok, examples), add_special_tokens=False)["input_ids"]]
    cap = 8
    n_ctx = sorted(lengths)[len(lengths) // 2] + cap // 2  # about half the items do not fit with their cap
    model.config.max_position_embeddings = n_ctx
    over = [n + cap > n_ctx for n in lengths]
    cfg = EvalConfig(max_new_tokens={"math": cap}, batch_size=4, language_id=False)
    with caplog.at_level(logging.WARNING):
        predictions, rows = evaluate(model, tok, examples, cfg, ["en", "sw"])
    assert [p["context_exceeded"] for p in predictions] == over
    values = {(lang, metric): (value, n) for _, lang, metric, value, n in rows}
    for lang in ("en", "sw"):
        flags = [o for o, ex in zip(over, examples) if ex.language == lang]
        assert values[(lang, "context_exceeded")] == (sum(flags) / len(flags), len(flags))
    assert 0 < sum(over) < len(over)
    (warning,) = [r.getMessage() for r in caplog.records if "context" in r.getMessage()]
    assert warning.startswith(f"{sum(over)} of {len(examples)} math items do not fit the model's context of "
                              f"{n_ctx} positions")
