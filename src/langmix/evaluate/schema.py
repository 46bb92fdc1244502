"""The shape of what the AST checker reads, validated once before any call is checked.

Function schemas (BFCL's `function`, an example's `tools`, `langmix score`'s `reference.functions`) follow the
subset of JSON schema that `ast_check` reads: a list of objects, each with a non-empty string `name` and, where
given, `parameters`, a schema object. A schema object may carry `type` (a string, or a list of strings),
`properties` (an object whose values are schema objects), `required` (a list of strings), `items` (a schema
object), `enum` (a list), and `description`, `format`, `pattern` (strings); nested `properties` and `items` are
checked the same way. Other keys (`default`, `optional`, `minItems`, ...) are not read and not checked.

Expected calls follow BFCL's possible-answer shape `[{func_name: {param: [acceptable values]}}]`.

A violation is a `SchemaError` (a `ValueError`) naming where it is: the caller turns it into a refusal
(`bad_input` for `langmix score`, an unscorable reference before evaluation), never into a verdict.
"""

from __future__ import annotations

from typing import Any


class SchemaError(ValueError):
    """A function schema or possible answer that the AST checker cannot read."""


_STRING_KEYS = ("description", "format", "pattern")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_schema(schema: Any, where: str) -> None:
    """Raise SchemaError where `schema` (a function's `parameters`, or a property's schema) breaks the subset."""
    if not isinstance(schema, dict):
        raise SchemaError(f"{where} must be an object, got {_shown(schema)}")
    kind = schema.get("type")
    if "type" in schema and not (isinstance(kind, str) or
                                 (isinstance(kind, list) and kind and all(isinstance(t, str) for t in kind))):
        raise SchemaError(f"{where}.type must be a type name (or a list of them), got {_shown(kind)}")
    for key in _STRING_KEYS:
        if key in schema and not isinstance(schema[key], str):
            raise SchemaError(f"{where}.{key} must be a string, got {_shown(schema[key])}")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise SchemaError(f"{where}.enum must be a list, got {_shown(schema['enum'])}")
    required = schema.get("required")
    if "required" in schema and not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        raise SchemaError(f"{where}.required must be a list of parameter names, got {_shown(required)}")
    if "properties" in schema:
        properties = schema["properties"]
        if not isinstance(properties, dict):
            raise SchemaError(f"{where}.properties must be an object of parameter schemas, got {_shown(properties)}")
        for key, prop in properties.items():
            check_schema(prop, f"{where}.properties.{key}")
    if "items" in schema:
        check_schema(schema["items"], f"{where}.items")


def check_functions(functions: Any) -> None:
    """Raise SchemaError where `functions` is not a list of function schemas the checker can read."""
    if not isinstance(functions, list):
        raise SchemaError(f"functions must be a list of function schemas, got {_shown(functions)}")
    for i, function in enumerate(functions):
        if not isinstance(function, dict):
            raise SchemaError(f"functions[{i}] must be an object, got {_shown(function)}")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise SchemaError(f"functions[{i}].name must be a non-empty string, got {_shown(name)}")
        if "parameters" in function:
            check_schema(function["parameters"], f"functions[{i}] ({name}).parameters")


def check_possible_answer(expected: Any) -> None:
    """Raise SchemaError where `expected` is not `[{func_name: {param: [acceptable values]}}]` (`[]`: no call)."""
    if not isinstance(expected, list):
        raise SchemaError(f"the expected calls must be a list ([] for none), got {_shown(expected)}")
    for item in expected:
        if not (isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item.values())), dict)
                and all(isinstance(v, list) for v in next(iter(item.values())).values())):
            raise SchemaError(f"possible answer {_shown(item)} is not {{func: {{param: [values]}}}}")


def problem(functions: Any, expected: Any) -> str | None:
    """Why the checker cannot score against these schemas and expected calls, or None."""
    try:
        check_functions(functions)
        check_possible_answer(expected)
    except SchemaError as exc:
        return str(exc)
    return None
