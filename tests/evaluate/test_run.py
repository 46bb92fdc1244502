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
    assert rows[("sw", "response_language_fidelity")] == (2 / 3, 3)  # 2 of the 3 judged, not 2 of 5
    assert rows[("sw", "response_language_unjudged")] == (2 / 5, 5)
    assert ("te", "response_language_fidelity") not in rows  # nothing judged: no figure, rather than 0%
    assert rows[("te", "response_language_unjudged")] == (1.0, 2)
    assert rows[("sw", "accuracy_strict")] == (3 / 5, 5)
