"""One parsed call against one expected call, by BFCL's `simple_function_checker` (rules in `ast_check`'s
docstring): the name, required and unexpected parameters, exact types (a value of the possible answer's own type
is a variable reference), and values compared after the rule set's standardisation (`leniencies`); a mismatch
written in the user's language is flagged. `CallVerdict` is the checker's verdict record.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Callable

from langmix.evaluate.leniencies import Mode, _Context, _free_text_ok, names_match, standardise
from langmix.evaluate.schema import check_functions

# BFCL's Python type names (PYTHON_TYPE_MAPPING), plus aliases in schemas outside BFCL (API-Bank's "str", ...).
TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list,
                          "tuple": list, "dict": dict, "any": str, "str": str, "int": int, "bool": bool,
                          "list": list, "object": dict, "number": float}


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
