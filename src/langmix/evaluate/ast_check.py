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
And one rule stricter than BFCL's: on an irrelevance item, an output that attempts a call it does not manage to
write (a `parse_error`: cut off, malformed, text after the call) is wrong (`irrelevance_violated`), not an
abstention.
A mismatch where the model wrote an argument in the user's language is listed in `wrong_language_args`.

Schemas and expected calls are validated first (`langmix.evaluate.schema`): one the checker cannot read (`"required":
"number"`, `"properties": "junk"`, ...) raises `SchemaError` (a ValueError) rather than giving a verdict.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import regex
from scipy.optimize import linear_sum_assignment

from langmix.evaluate import call_parse
from langmix.evaluate.call_parse import MAX_OUTPUT_CHARS, ParseError  # noqa: F401  (re-exported)
from langmix.evaluate.schema import check_functions, check_possible_answer

Mode = Literal["bfcl", "multilingual"]
MODES: tuple[str, ...] = ("bfcl", "multilingual")
LENIENCIES: dict[str, tuple[str, ...]] = {
    "bfcl": (),
    "multilingual": ("nfkc", "casefold", "strip_quotes_whitespace", "name_case", "name_separator",
                     "optimal_matching", "user_language_free_text", "leading_text"),
}
# BFCL's Python type names (PYTHON_TYPE_MAPPING), plus aliases in schemas outside BFCL (API-Bank's "str", ...).
TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list,
                          "tuple": list, "dict": dict, "any": str, "str": str, "int": int, "bool": bool,
                          "list": list, "object": dict, "number": float}
_BFCL_STRIP = re.compile(r"[ ,./\-_*^]")
_WIDE_STRIP = re.compile(r"[\s,./\-_*^'\"]+")
_CONSTRAINED_DESCRIPTION = re.compile(r"format|%[YmdHMS]|yyyy|\bdate|\btime|\bcode|\bid\b|token|e-?mail|url|phone|"
                                      r"number", re.IGNORECASE)
_CONSTRAINED_VALUE = re.compile(r"^[\d\s.,:/+\-%]+$|@|://|^\S+$")


@dataclass
class CallVerdict:
    """One output's verdict: `reason` is ok, no_call, irrelevance_violated, parse_error, too_long, wrong_count,
    wrong_name, missing_required, unexpected_arg, wrong_type or wrong_value; `mode` the rule set that gave it;
    `leniencies` the named leniencies that changed how the output was read (`leading_text`; the comparison
    leniencies are not recorded per verdict)."""

    correct: bool
    reason: str
    calls: list[dict[str, Any]] | None = None
    name_correct: bool = False
    args_correct: bool = False
    wrong_language_args: list[str] = field(default_factory=list)
    detail: str = ""
    mode: str = "multilingual"
    leniencies: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Context:
    """What one check needs besides the call: the rule set and the translated request, if any."""

    lenient: bool
    is_wrong_language: Callable[[str, str], bool] | None = None
    request: str | None = None
    verbatim: Collection[str] = ()
    language: str | None = None  # the user's language (the request's); the free-text leniency needs a non-English one


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


def standardise(value: str, lenient: bool) -> str:
    """BFCL's string standardisation, or (lenient) the multilingual one: NFKC, all whitespace and quotes
    removed too, casefold."""
    if lenient:
        return _WIDE_STRIP.sub("", unicodedata.normalize("NFKC", value)).casefold()
    return _BFCL_STRIP.sub("", value).lower().replace("'", '"')


def normalise_string(value: str) -> str:
    return standardise(value, True)


def names_match(got: str, want: str, lenient: bool) -> bool:
    if not lenient:
        return got == want
    return call_parse.normal_name(got) == call_parse.normal_name(want)


def _std(value: Any, lenient: bool) -> Any:
    return standardise(value, lenient) if isinstance(value, str) else value


def _first_type(options: list[Any]) -> type | None:
    return next((type(o) for o in options if o != ""), None)


def _type_ok(value: Any, options: list[Any], want: type, item_type: type | None) -> tuple[bool, bool]:
    """(valid, is_variable) by BFCL's type_checker."""
    answer_type = _first_type(options)
    is_variable = answer_type is not None and answer_type is not want
    if type(value) is want:
        if item_type is None:
            return True, is_variable
        for option in options:  # each element must have the item type (or the option element's own type)
            if not isinstance(option, list) or all(
                    type(v) is item_type or type(v) is _first_type(option) for v in value):
                return True, is_variable
        return False, is_variable
    return answer_type is not None and type(value) is answer_type, True


def _dict_ok(got: dict, options: list[Any], lenient: bool) -> bool:
    for option in options:
        if option == "" or not isinstance(option, dict):
            continue
        if all(k in option and _std(v, lenient) in [_std(o, lenient) for o in option[k]] for k, v in got.items()) \
                and all(k in got or "" in v for k, v in option.items()):
            return True
    return False


def _list_dict_ok(got: list, options: list[Any], lenient: bool) -> bool:
    return any(isinstance(o, list) and len(o) == len(got) and
               all(isinstance(g, dict) and _dict_ok(g, [w], lenient) for g, w in zip(got, o)) for o in options)


def _free_text_ok(key: str, name: str, value: Any, options: list[Any], prop: dict[str, Any], ctx: _Context) -> bool:
    """The `user_language_free_text` leniency (see the module docstring)."""
    canonical = next((o for o in options if isinstance(o, str) and o), None)
    if not (ctx.lenient and ctx.request and isinstance(value, str) and canonical) or f"{name}.{key}" in ctx.verbatim:
        return False
    if any(k in prop for k in ("enum", "format", "pattern")) or \
            _CONSTRAINED_DESCRIPTION.search(str(prop.get("description", ""))) or \
            _CONSTRAINED_VALUE.search(canonical.strip()) or canonical in ctx.request:
        return False
    got, want = standardise(value, True), standardise(canonical, True)
    if not (ctx.language and ctx.language.split("-")[0].lower() != "en"):
        return False  # an English request has no user-language form of an English value
    shortest = 0.2 if _UNSPACED.search(value) else 0.5  # CJK and Thai take fewer characters than English
    return (shortest * len(want) <= len(got) <= 3 * len(want) and _copied_span(value, ctx.request)
            and _names_agree(value, canonical))


def _fold(word: str) -> str:
    """A word without accents, casefolded (Ángeles -> angeles)."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch)).casefold()


def _names_agree(value: str, canonical: str) -> bool:
    """A canonical value that reads as a name (a capitalised word past the first: "Los Angeles, CA", "Conference
    Room A") keeps one of its words, accents aside, in a user-language form written in the same script
    ("Los Ángeles"; not "comida vegana"). Free text (a message body) and a form in another script pass."""
    from langmix.evaluate.langid import script_of  # lingua loads with langid: only where a name is checked

    words = regex.findall(r"\p{L}[\p{L}\p{M}]*", canonical)
    if not any(w[:1].isupper() for w in words[1:]) or script_of(value) != script_of(canonical):
        return True
    mine = {_fold(w) for w in regex.findall(r"\p{L}[\p{L}\p{M}]*", value)}
    return any(_fold(w) in mine for w in words)


# Scripts written without spaces between words: a copied span may begin or end next to a letter of them.
_UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]")


def _spaced_letter(ch: str) -> bool:
    """A letter (or a combining mark: Bengali and Telugu vowel signs are marks) of a script with spaces."""
    return (ch.isalpha() or unicodedata.category(ch).startswith("M")) and not _UNSPACED.match(ch)


def _copied_span(value: str, request: str) -> bool:
    """Whether `value` occurs in `request` as whole words, punctuation and spacing aside (both NFKC, casefolded,
    punctuation dropped, whitespace collapsed): no letter or mark of a spaced script directly before or after it,
    so "Find" is not a span of "Finding ...", nor "of" of "office"."""
    def prepare(text: str) -> str:
        return " ".join(_PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())

    want, text = prepare(value), prepare(request)
    start = text.find(want) if want else -1
    while start != -1:
        before = text[start - 1] if start else " "
        end = start + len(want)
        after = text[end] if end < len(text) else " "
        if not (_spaced_letter(want[0]) and _spaced_letter(before)) and \
                not (_spaced_letter(want[-1]) and _spaced_letter(after)):
            return True
        start = text.find(want, start + 1)
    return False


_PUNCTUATION = regex.compile(r"[\p{P}\p{S}]+")


def _flag_language(key: str, value: Any, options: list[Any], ctx: _Context) -> list[str]:
    canonical = next((o for o in options if o != ""), None)
    if ctx.is_wrong_language and isinstance(value, str) and isinstance(canonical, str) \
            and ctx.is_wrong_language(value, canonical):
        return [key]
    return []


def check_one(call: dict[str, Any], name: str, expected_args: dict[str, list[Any]], schema: dict[str, Any] | None,
              is_wrong_language: Callable[[str, str], bool] | None = None, *, mode: Mode = "multilingual",
              request: str | None = None, verbatim: Collection[str] = (), language: str | None = None
              ) -> CallVerdict:
    """Check one parsed call against one expected call and the function's schema (when known); SchemaError for
    a schema the checker cannot read."""
    if schema is not None:
        check_functions([schema])
    ctx = _Context(mode == "multilingual", is_wrong_language, request, verbatim, language)
    return _check_one(call, name, expected_args, schema, ctx)


def _check_one(call: dict[str, Any], name: str, expected_args: dict[str, list[Any]], schema: dict[str, Any] | None,
               ctx: _Context) -> CallVerdict:
    mode = "multilingual" if ctx.lenient else "bfcl"
    if not names_match(call["name"], name, ctx.lenient):
        return CallVerdict(False, "wrong_name", detail=f"{call['name']} != {name}", mode=mode)
    args = call["arguments"]
    params = (schema or {}).get("parameters") or {}
    properties = params.get("properties") or {}
    required = params.get("required", []) if schema else [k for k, v in expected_args.items() if "" not in v]

    def fail(reason: str, detail: str, wrong_lang: list[str] | None = None) -> CallVerdict:
        return CallVerdict(False, reason, name_correct=True, wrong_language_args=wrong_lang or [], detail=detail,
                           mode=mode)

    missing = [k for k in required if k not in args]
    if missing:
        return fail("missing_required", f"missing {missing}")
    accepted_wrong_lang: list[str] = []
    for key, value in args.items():
        if key not in expected_args or (properties and key not in properties):
            return fail("unexpected_arg", f"unexpected {key!r}")
        options = expected_args[key] or [[]]  # BFCL writes an empty array answer as `[]`; read it as `[[]]`
        prop = properties.get(key) or {}
        type_name = str(prop.get("type", "")).lower()
        want = TYPES.get(type_name)
        if want is None:  # no schema (or an unknown type name): compare values only
            want = _first_type(options) or type(value)
        item_type = TYPES.get(str((prop.get("items") or {}).get("type", "")).lower()) \
            if type_name in ("array", "tuple", "list") else None
        if type_name == "tuple" and isinstance(value, tuple):
            value = list(value)
        if want is float and type(value) is int:
            value = float(value)
        valid, is_variable = _type_ok(value, options, want, item_type)
        if not valid:
            return fail("wrong_type", f"{key}={value!r}", _flag_language(key, value, options, ctx))
        if is_variable:
            ok = value in options
        elif want is dict:
            ok = _dict_ok(value, options, ctx.lenient)
        elif want is list and item_type is dict:
            ok = _list_dict_ok(value, options, ctx.lenient)
        elif want is str:
            ok = standardise(value, ctx.lenient) in [standardise(o, ctx.lenient) for o in options
                                                     if isinstance(o, str)]
        elif want is list:  # BFCL reads an optional "" among list answers as the empty list
            got = [_std(v, ctx.lenient) for v in value]
            ok = any(got == [_std(v, ctx.lenient) for v in (o if isinstance(o, list) else [])]
                     for o in options if isinstance(o, list) or o == "")
        else:
            ok = value in options
        if not ok and _free_text_ok(key, name, value, options, prop, ctx):
            accepted_wrong_lang.append(key)  # accepted, and still counted as a user-language argument
            continue
        if not ok:
            return fail("wrong_value", f"{key}={value!r}", _flag_language(key, value, options, ctx))
    unsent = [k for k, v in expected_args.items() if k not in args and "" not in v]
    if unsent:
        return fail("missing_required", f"missing {unsent} (listed in the possible answer without \"\")")
    return CallVerdict(True, "ok", name_correct=True, args_correct=True, wrong_language_args=accepted_wrong_lang,
                       mode=mode)


def _schema(functions: list[dict[str, Any]], name: str, lenient: bool) -> dict[str, Any] | None:
    return next((f for f in functions if isinstance(f, dict) and names_match(str(f.get("name", "")), name, lenient)),
                None)


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
