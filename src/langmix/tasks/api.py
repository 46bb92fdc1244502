"""API calling (BFCL / API-Bank style): the output's calls are parsed and checked against the reference calls."""

from __future__ import annotations

from typing import Any

from langmix.evaluate import langid
from langmix.evaluate.ast_check import check
from langmix.evaluate.schema import SchemaError, check_functions, check_possible_answer
from langmix.records import Example
from langmix.tasks.base import Task, TaskContext, rate, register


def _request(ex: Example) -> str:
    """The user's words (what argument values may be copied from)."""
    return "\n".join(m["content"] for m in ex.prompt_messages() if m["role"] == "user")


class ApiTask(Task):
    name = "api"
    default_max_new_tokens = 48
    headline_metric = "call_accuracy"
    # score: the checker (ast_check, one call's comparison in call_compare, the rule sets in leniencies), its call
    # parser and schema checks, argument languages (langid, lingua; `regex` reads the words, scipy matches calls),
    # the request it reads copied values from (`Example.prompt_messages`, records); the verdict checks and
    # aggregation (evaluate.run); metrics: `rate` (base). No language registry, no numbers.
    scorer_modules = ("langmix.evaluate.ast_check", "langmix.evaluate.call_compare", "langmix.evaluate.leniencies",
                      "langmix.evaluate.call_parse", "langmix.evaluate.schema", "langmix.evaluate.langid",
                      "langmix.evaluate.run", "langmix.languages", "langmix.records", "langmix.tasks.base")
    scorer_libraries = ("lingua-language-detector", "regex", "scipy")

    def score(self, ex: Example, output: str, ctx: TaskContext) -> dict[str, Any]:
        languages = ctx.study_languages or [ex.language]
        request = _request(ex)
        v = check(output, ex.reference["calls"], ex.tools or [],
                  lambda got, canonical: langid.wrong_language_argument(got, canonical, ex.language, languages,
                                                                        request),
                  mode=ctx.api_mode, request=request, verbatim=ex.reference.get("verbatim_arguments") or (),
                  language=ex.language)
        return {"correct": v.correct, "checker_mode": v.mode, "name_correct": v.name_correct,
                "args_correct": v.args_correct,
                "parsed_calls": v.calls, "reason": v.reason, "wrong_language_args": v.wrong_language_args,
                "leniencies": v.leniencies, **self.item_fields(ex)}

    def item_fields(self, ex: Example) -> dict[str, Any]:
        return {"irrelevance": not ex.reference["calls"]}  # no tool fits: the right output is no call

    def reference_problem(self, ex: Example) -> str | None:
        calls = ex.reference.get("calls")
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            return f"reference.calls must be a list of expected calls ([] for none), got {calls!r}"
        try:  # what the checker would refuse at scoring time, refused before anything is generated
            check_possible_answer(calls)
        except SchemaError as exc:
            return f"reference.calls: {exc}"
        try:
            check_functions(ex.tools or [])
        except SchemaError as exc:
            return f"tools: {exc}"
        return None

    def rescore_fields(self, ex: Example) -> dict[str, Any]:
        return {"reference": {"possible_answer": ex.reference["calls"], "functions": ex.tools or [],
                              "request": _request(ex),
                              "verbatim_arguments": list(ex.reference.get("verbatim_arguments") or ())}}

    def metrics(self, items: list[dict[str, Any]]) -> dict[str, float | tuple[float, int]]:
        """Call accuracy over every item; the call-level rates over the items that expect a call (`_on_calls`:
        a correct abstention has no name or arguments to be right or wrong, and BFCL counts any non-call output
        there as an abstention), irrelevance accuracy over the items that expect none; each with its own n."""
        calls = [p for p in items if not p["irrelevance"]]
        irrelevance = [p for p in items if p["irrelevance"]]
        out: dict[str, float | tuple[float, int]] = {"call_accuracy": rate(items, lambda p: p["correct"])}
        if calls:
            out.update({
                "name_accuracy_on_calls": (rate(calls, lambda p: p["name_correct"]), len(calls)),
                "argument_accuracy_on_calls": (rate(calls, lambda p: p["args_correct"]), len(calls)),
                "wrong_language_argument_rate_on_calls": (rate(calls, lambda p: p["wrong_language_args"]),
                                                          len(calls)),
                "parse_failure_rate_on_calls": (rate(calls, lambda p: p["parsed_calls"] is None), len(calls))})
        if irrelevance:
            out["irrelevance_accuracy"] = (rate(irrelevance, lambda p: p["correct"]), len(irrelevance))
        return out


register(ApiTask())
