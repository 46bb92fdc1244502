import json

import pytest

from langmix.evaluate.ast_check import check
from langmix.evaluate.schema import SchemaError, check_functions, check_possible_answer, problem
from tests.shared_data import shared


def test_the_subset_the_checker_reads_is_accepted():
    check_functions([
        {"name": "f"},  # no parameters (API-Bank schemas whose api_info could not be read)
        {"name": "g", "description": "d", "parameters": {}},
        {"name": "h", "parameters": {"type": "dict", "required": ["a"], "optional": ["b"], "properties": {
            "a": {"type": "array", "items": {"type": "dict", "properties": {"x": {"type": "integer"}}}},
            "b": {"type": ["string", "null"], "enum": ["x", None], "default": None, "format": "date",
                  "pattern": "^x$", "description": "free"}}}}])
    check_possible_answer([])
    check_possible_answer([{"f": {"x": [1, ""]}}])


@pytest.mark.parametrize("functions, message", [
    ("f", "functions must be a list"),
    ([[]], r"functions\[0\] must be an object"),
    ([{"name": ""}], r"functions\[0\].name must be a non-empty string"),
    ([{"name": "f", "parameters": []}], r"functions\[0\] \(f\).parameters must be an object, got \[\]"),
    ([{"name": "f", "parameters": {"type": []}}], r"parameters.type must be a type name"),
    ([{"name": "f", "parameters": {"type": ["string", 1]}}], r"parameters.type must be a type name"),
    ([{"name": "f", "parameters": {"required": ["a", 1]}}], r"parameters.required must be a list of parameter names"),
    ([{"name": "f", "parameters": {"properties": {"a": {"description": 5}}}}],
     r"parameters.properties.a.description must be a string, got 5"),
    ([{"name": "f", "parameters": {"properties": {"a": {"type": "array", "items": {"type": "array", "items": 1}}}}}],
     r"parameters.properties.a.items.items must be an object, got 1"),
    ([{"name": "f", "parameters": {"properties": {"a": {"type": "string"}}}}, {"name": "f", "parameters": "x"}],
     r"functions\[1\] \(f\).parameters must be an object"),
])
def test_schemas_outside_the_subset_are_refused_by_where(functions, message):
    with pytest.raises(SchemaError, match=message):
        check_functions(functions)
    assert problem(functions, []) is not None


@pytest.mark.parametrize("expected", [{"f": {}}, [3], [{"f": {"x": 1}}], [{"f": {}, "g": {}}], [{"f": []}]])
def test_possible_answers_outside_bfcl_shape_are_refused(expected):
    with pytest.raises(SchemaError):
        check_possible_answer(expected)


def test_the_checker_refuses_instead_of_judging():
    """`"required": "number"` was read as the letters n, u, m, ... ("missing ['n', 'u', ...]"), and
    `"properties": "junk"` as no properties ("unexpected 'number'"); `"parameters": "junk"` raised
    AttributeError. SchemaError is a ValueError: callers that refuse bad input catch it."""
    for parameters in ({"properties": {"number": {"type": "integer"}}, "required": "number"},
                       {"properties": "junk"}, "junk"):
        functions = [{"name": "math.factorial", "parameters": parameters}]
        with pytest.raises(ValueError) as info:
            check("[math.factorial(number=5)]", [{"math.factorial": {"number": [5]}}], functions)
        assert isinstance(info.value, SchemaError)


def test_published_bfcl_schemas_and_answers_are_all_accepted():
    directory = shared("bfcl")
    n = 0
    for path in sorted(directory.glob("BFCL_v4_*.json")) + sorted((directory / "possible_answer").glob("*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert problem(row.get("function", []), row.get("ground_truth", [])) is None, row["id"]
            n += 1
    assert n > 2000
