"""Math word problems (GSM8K/MGSM style): the number after the language's answer phrase is the answer."""

from __future__ import annotations

from typing import Any

from langmix.evaluate.math import score_math
from langmix.evaluate.number_reading import reference_number
from langmix.records import Example
from langmix.tasks.base import Task, TaskContext, rate, register


class MathTask(Task):
    name = "math"
    default_max_new_tokens = 72
    headline_metric = "accuracy_strict"
    judge_response_language = True
    # score: the extractor, number reading and the registry's answer phrases and decimal commas; the responses'
    # language (langid, lingua) and the aggregation (evaluate.run); metrics: `rate` (base)
    scorer_modules = ("langmix.evaluate.math", "langmix.evaluate.number_reading", "langmix.languages",
                      "langmix.evaluate.langid", "langmix.evaluate.run", "langmix.tasks.base")
    scorer_libraries = ("lingua-language-detector",)

    def score(self, ex: Example, output: str, ctx: TaskContext) -> dict[str, Any]:
        v = score_math(output, reference_number(ex.reference["answer"]), ex.reference.get("answer_phrase", ""),
                       ex.language)
        return {"correct": v.strict_correct, "correct_strict": v.strict_correct,
                "correct_flexible": v.flexible_correct, "extracted_strict": v.strict,
                "extracted_flexible": v.flexible, "reason": v.reason}

    def reference_problem(self, ex: Example) -> str | None:
        answer = ex.reference.get("answer")
        try:  # what score compares with, read as `langmix score` reads it
            reference_number(answer)
        except ValueError as exc:
            hint = " (scientific notation is not read: write the number)" if "scientific" in str(exc) else ""
            return f"reference.answer must be a number, got {answer!r}{hint}"
        return None

    def metrics(self, items: list[dict[str, Any]]) -> dict[str, float]:
        return {"accuracy_strict": rate(items, lambda p: p["correct_strict"]),
                "accuracy_flexible": rate(items, lambda p: p["correct_flexible"]),
                "unparsed_rate": rate(items, lambda p: p["reason"] == "no_number")}

    def rescore_fields(self, ex: Example) -> dict[str, Any]:
        return {"reference": ex.reference["answer"], "answer_phrase": ex.reference.get("answer_phrase", "")}

    def strict_flexible(self, verdict: dict[str, Any]) -> tuple[bool | None, bool | None]:
        return bool(verdict["correct_strict"]), bool(verdict["correct_flexible"])


register(MathTask())
