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
    api = [ex(0, "api", {"calls": []}), ex(1, "api", {"calls": {"f": {}}})]
    with pytest.raises(UnscorableReferenceError, match=r"1 of 2 api .* x1: reference.calls must be a list"):
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

