"""An AST checker for function calls with two explicit rule sets: `bfcl` and `multilingual`.

Expected calls follow BFCL's possible-answer shape `[{func_name: {param: [acceptable values]}}]`, where `""`
among the acceptable values marks a parameter that may be omitted; `[]` means no call is wanted. Output is
parsed by `call_parse` (JSON or Python call syntax, never executed).

`bfcl` mode follows BFCL's AST checker (gorilla, `bfcl_eval/eval_checker/ast_eval/ast_checker.py`,
`simple_function_checker` and the parallel/multiple checkers), rule for rule:
- the function name must equal the expected name exactly;
- every parameter the schema requires must be present; a parameter not in the schema or not in the possible
  answer is unexpected; a parameter the possible answer lists without `""` must be present even where the schema
  marks it optional;
- types are exact (`bool` is not `int`; an `int` passes for a `float` parameter and is converted; a tuple passes
  only for a `tuple` parameter): BFCL's type names `string integer float boolean array tuple dict any` (`any` means
  a string); array and tuple elements are type-checked against `items.type` (one level, and skipped when the
  possible answer lists `""` before a list, as BFCL's loop does); a value of the possible answer's own type where
  the schema expects another is a variable reference and is compared as is;
- strings are compared after BFCL's standardisation (spaces and `, . / - _ * ^` removed, `str.lower`, `'` -> `"`);
  list elements and dict values one level down likewise; other values by Python equality (`5 == 5.0`);
- parallel calls: each expected call in turn takes the first unmatched output call that passes (BFCL's greedy
  order-free matching); irrelevance: any output that does not decode to a call is a correct abstention. That is
  BFCL's own rule, lax as it is (`relevance_file_runner` in `bfcl_eval/eval_checker/eval_runner.py`: "No function
  call means either the AST decoding fails ... or the decoded AST does not contain any function call"), so a call
  after leading text (`Sure! {"name": ...}`), which BFCL's decoder does not read, passes as an abstention here too;
  the verdict's `detail` says so where the output attempted a call (`call_parse.find_call`). On an item that
  expects a call such an output is a `parse_error`, not `no_call`.
Remaining differences from BFCL's verdicts come from the decoder only (see `call_parse`).

`multilingual` mode is `bfcl` plus these named leniencies (`LENIENCIES`), all but the last for output in or
translated into other languages:
- `nfkc`: the output and every compared string are NFKC-normalised (full-width `｛` `ｗａｋｅ`, compatibility forms);
- `casefold`: strings compare by `str.casefold` (German `ß` = `ss`, Greek final sigma), not `str.lower`;
- `strip_quotes_whitespace`: quotes and all whitespace (tabs, newlines, no-break spaces) are removed too;
- `name_case`: function names compare case-insensitively;
- `name_separator`: `_` and `.` are interchangeable in function names (OpenAI-style tools rename `a.b` to `a_b`);
- `optimal_matching`: parallel calls match when any one-to-one assignment passes (scipy's
  `linear_sum_assignment` over the pass/fail matrix), not only BFCL's greedy order;
- `user_language_free_text`: with the user's request given in a language other than English, a free-text string
  argument (a message body, a title: several words, no enum, format, date, time, code or number) may be the
  user's-language form copied from the request where the canonical value does not itself appear there
  (`verbatim_arguments` of translated data): whole words of the request, of a length comparable to the canonical
  value's (0.5-3x its characters; 0.2-3x in scripts without spaces). The argument still counts in
  `wrong_language_args`. Constrained values keep requiring the canonical form.
- `leading_text` (small models echo the prompt first): a call after leading text ("Sure! Here is the call:") is
  read from where it begins (`call_parse.find_call`: JSON in a call's shape, a fenced block, or a Python call of
  one of the item's functions or with keyword arguments), when the call ends the output; the verdict lists
  `leading_text` in its `leniencies`. Plain prose that names a function is no call.
And two rules stricter than BFCL's:
- numbers inside strings keep their value: a `.` between digits and a `-` or `.` before a digit that follows no
  letter or digit (a decimal point, an address's dots, a minus sign) are not removed, where BFCL's standardisation
  takes `340522, -118.2437` for `34.0522, -118.2437`, `118.2437` for `-118.2437` and `https://192168.11.33/` for
  `https://192.168.11.33/` (`bfcl` mode keeps BFCL's rule); the dots of a day.month.year date (`16.08.2022`) are
  removed as the `-` and `/` of other dates are; a `,` between a digit and one or two digits is a decimal comma
  (`3,5 km` is `3.5 km`), and any other `,` is removed as before (`1,000`, dates such as `Jan.1,2022`);
- on an irrelevance item, an output that attempts a call it does not manage to write (a `parse_error`: cut off,
  malformed, text after the call) is wrong (`irrelevance_violated`), not an abstention.
A mismatch where the model wrote an argument in the user's language is listed in `wrong_language_args`.

Schemas and expected calls are validated first (`langmix.evaluate.schema`): one the checker cannot read (`"required":
"number"`, `"properties": "junk"`, ...) raises `SchemaError` (a ValueError) rather than giving a verdict.

Where the rules live: this module reads an output into calls, gives an output's verdict and matches parallel calls
(`check`); `call_compare` checks one call against one expected call; `leniencies` holds the rule sets (`MODES`,
`LENIENCIES`) and the multilingual rules.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection
from typing import Any, Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

from langmix.evaluate import call_parse
from langmix.evaluate.call_compare import CallVerdict, _check_one, _schema
from langmix.evaluate.call_parse import MAX_OUTPUT_CHARS, ParseError
from langmix.evaluate.leniencies import LENIENCIES, MODES, Mode, _Context  # noqa: F401  (LENIENCIES re-exported)
from langmix.evaluate.schema import check_functions, check_possible_answer

# Re-exported from their module: the checker's rule sets (`LENIENCIES`, `MODES`), as before it was split.


def parse_calls(output: str, mode: Mode = "multilingual", names: Collection[str] = ()
                ) -> tuple[list[dict[str, Any]] | None, str]:
    """Calls in `output` as [{"name", "arguments"}], [] for plain text, or None with a reason code (parse_error
    for an attempted call that does not parse, too_long). `names` are the item's functions (a Python call of one
    of them after leading text is an attempt)."""
    calls, reason, _ = _read_calls(output, mode, names)
    return calls, reason


def _read_calls(output: str, mode: Mode, names: Collection[str]) -> tuple[list[dict[str, Any]] | None, str, bool]:
    """`parse_calls`, and whether leading text was skipped (the `leading_text` leniency)."""
    if len(output) > MAX_OUTPUT_CHARS:
        return None, "too_long", False
    text = unicodedata.normalize("NFKC", output) if mode == "multilingual" else output
    try:
        return call_parse.parse(text), "ok", False
    except ParseError:
        pass
    start = call_parse.find_call(text, names)
    if start is None:
        return [], "no_call", False
    if start and mode == "multilingual":
        try:
            return call_parse.parse(text[start:]), "ok", True
        except ParseError:
            pass
    return None, "parse_error", False


def check(output: str, expected: list[dict[str, dict[str, list[Any]]]], functions: list[dict[str, Any]],
          is_wrong_language: Callable[[str, str], bool] | None = None, *, mode: Mode = "multilingual",
          request: str | None = None, verbatim: Collection[str] = (), language: str | None = None) -> CallVerdict:
    """Score a model output against BFCL-style possible answers under `mode` ("bfcl" or "multilingual").

    `request` (the user's turns), `verbatim` (translated data's `verbatim_arguments`, "func.param") and a
    non-English `language` (the request's) enable the multilingual `user_language_free_text` leniency.
    SchemaError (a ValueError) where `functions` or `expected` is not in the shape the checker reads.
    """
    if mode not in MODES:
        raise ValueError(f"unknown checker mode {mode!r} (expected one of {MODES})")
    check_functions(functions)
    check_possible_answer(expected)
    ctx = _Context(mode == "multilingual", is_wrong_language, request, verbatim, language)
    names = [f["name"] for f in functions if isinstance(f, dict) and isinstance(f.get("name"), str)]
    calls, reason, skipped = _read_calls(output, mode, names)
    verdict = _judge(calls, reason, expected, functions, ctx)
    verdict.leniencies = ["leading_text"] if skipped else []
    return verdict


def _judge(calls: list[dict[str, Any]] | None, reason: str, expected: list[dict[str, dict[str, list[Any]]]],
           functions: list[dict[str, Any]], ctx: _Context) -> CallVerdict:
    mode = "multilingual" if ctx.lenient else "bfcl"
    if not expected:  # irrelevance: no call is a correct abstention
        if calls:
            return CallVerdict(False, "irrelevance_violated", calls, mode=mode)
        if reason == "parse_error" and ctx.lenient:
            return CallVerdict(False, "irrelevance_violated", calls, detail="a call attempt that does not parse",
                               mode=mode)
        if reason == "parse_error":  # BFCL's rule (module docstring): what does not decode is no call
            return CallVerdict(True, "ok", calls, mode=mode,
                               detail="a call attempt that BFCL's decoder does not read: no call, as BFCL counts it")
        return CallVerdict(True, "ok", calls, mode=mode)
    if calls is None:
        return CallVerdict(False, reason, mode=mode)
    if not calls:
        return CallVerdict(False, "no_call", calls, mode=mode)
    if len(calls) != len(expected):
        return CallVerdict(False, "wrong_count", calls, detail=f"{len(calls)} calls, expected {len(expected)}",
                           mode=mode)
    verdict = (_match_optimal if ctx.lenient else _match_greedy)(calls, expected, functions, ctx)
    verdict.calls = calls
    return verdict


def _verdict(call: dict[str, Any], want: dict[str, dict[str, list[Any]]], functions: list[dict[str, Any]],
             ctx: _Context) -> CallVerdict:
    (name, args), = want.items()
    return _check_one(call, name, args, _schema(functions, name, ctx.lenient), ctx)


def _best_failure(failures: list[CallVerdict]) -> CallVerdict:
    return max(failures, key=lambda v: (v.name_correct, len(v.wrong_language_args)))


def _merge_ok(verdicts: list[CallVerdict], mode: str) -> CallVerdict:
    wrong_lang = sorted({k for v in verdicts for k in v.wrong_language_args})
    return CallVerdict(True, "ok", name_correct=True, args_correct=True, wrong_language_args=wrong_lang, mode=mode)


def _match_greedy(calls: list[dict[str, Any]], expected: list[dict[str, Any]], functions: list[dict[str, Any]],
                  ctx: _Context) -> CallVerdict:
    """BFCL's order-free matching: each expected call takes the first unmatched output call that passes."""
    used: set[int] = set()
    passed: list[CallVerdict] = []
    for want in expected:
        failures = []
        for j, call in enumerate(calls):
            if j in used:
                continue
            v = _verdict(call, want, functions, ctx)
            if v.correct:
                used.add(j)
                passed.append(v)
                break
            failures.append(v)
        else:
            return _best_failure(failures)
    return _merge_ok(passed, "multilingual" if ctx.lenient else "bfcl")


def _match_optimal(calls: list[dict[str, Any]], expected: list[dict[str, Any]], functions: list[dict[str, Any]],
                   ctx: _Context) -> CallVerdict:
    """Order-free matching by assignment: correct when some one-to-one pairing passes everywhere. Greedy first
    (its success is such a pairing); where it fails, `linear_sum_assignment` over the pass/fail matrix, which is
    polynomial (ten identical parallel calls cost 100 checks, not the 10! steps of backtracking)."""
    greedy = _match_greedy(calls, expected, functions, ctx)
    if greedy.correct or len(calls) == 1:
        greedy.mode = "multilingual"
        return greedy
    grid = [[_verdict(call, want, functions, ctx) for call in calls] for want in expected]
    cost = np.array([[0.0 if v.correct else 1.0 for v in row] for row in grid])
    rows, cols = linear_sum_assignment(cost)
    if cost[rows, cols].sum() == 0:
        return _merge_ok([grid[i][j] for i, j in zip(rows, cols)], "multilingual")
    return _best_failure([v for row in grid for v in row if not v.correct])


def gold_call(expected: list[dict[str, dict[str, list[Any]]]], functions: list[dict[str, Any]] | None = None
              ) -> list[dict[str, Any]]:
    """A call list the possible answers accept: the first acceptable value of each parameter (resolved
    recursively inside nested dicts and lists of dicts); parameters that accept "" (omitted) are left out unless
    the schema requires them."""

    def first(options: list[Any]) -> Any:
        return resolve(next(o for o in options if o != ""))

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: first(v) if isinstance(v, list) else resolve(v) for k, v in value.items()
                    if not (isinstance(v, list) and "" in v)}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    out = []
    for item in expected:
        (name, args), = item.items()
        schema = _schema(functions or [], name, False) or {}
        needed = set((schema.get("parameters") or {}).get("required", []))
        out.append({"name": name, "arguments": {k: first(v or [[]]) for k, v in args.items()
                                                if ("" not in v or k in needed) and v != [""]}})
    return out
