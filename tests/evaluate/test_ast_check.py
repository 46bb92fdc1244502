import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langmix.data.api_data import load_bfcl
from langmix.evaluate.ast_check import LENIENCIES, check, gold_call, parse_calls
from tests.shared_data import shared

FN = [{"name": "set_alarm", "parameters": {"type": "dict", "required": ["hour", "minute"], "properties": {
    "hour": {"type": "integer"}, "minute": {"type": "integer"}, "label": {"type": "string"},
    "volume": {"type": "float"}}}}]
WANT = [{"set_alarm": {"hour": [7], "minute": [30], "label": ["wake up", ""], "volume": [0.5, ""]}}]


@pytest.mark.parametrize("output,correct,reason", [
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}', True, "ok"),
    ('set_alarm(hour=7, minute=30, label="Wake-Up")', True, "ok"),
    ('[set_alarm(hour=7, minute=30)]', True, "ok"),
    ('```json\n{"name": "set_alarm", "arguments": {"minute": 30, "hour": 7}}\n```', True, "ok"),
    ('{"set_alarm": {"hour": 7, "minute": 30}}', True, "ok"),
    # fences in any case and with other tags, and Qwen/Hermes <tool_call> elements (were "no_call")
    ('```JSON\n{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}\n```', True, "ok"),
    ('```Python\nset_alarm(hour=7, minute=30)\n```', True, "ok"),
    ('```py\nset_alarm(hour=7, minute=30)\n```', True, "ok"),
    ('<tool_call>\n{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}\n</tool_call>', True, "ok"),
    ('<tool_call>{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}</tool_call>\n'
     '<tool_call>{"name": "set_alarm", "arguments": {"hour": 8, "minute": 0}}</tool_call>', False, "wrong_count"),
    ('<tool_call>{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}</tool_call>', False, "parse_error"),
    ('I will set it.\n<tool_call>{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}</tool_call>', True,
     "ok"),  # a preamble before the element
    ('```tool_calls\n[{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}]\n```', True, "ok"),
    # OpenAI's shapes: a tool_calls entry (arguments a JSON string) and a whole assistant message
    ('[{"id": "call_1", "type": "function", "function": {"name": "set_alarm", '
     '"arguments": "{\\"hour\\": 7, \\"minute\\": 30}"}}]', True, "ok"),
    ('{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": '
     '{"name": "set_alarm", "arguments": "{\\"hour\\": 8, \\"minute\\": 30}"}}]}', False, "wrong_value"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30, "volume": 1}}', False, "wrong_value"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30, "volume": 0.5}}', True, "ok"),
    ('｛"name": "set_alarm", "arguments": {"hour": 7, "minute": 30, "label": "ｗａｋｅ　ｕｐ"}｝', True, "ok"),
    ('{"name": "set_alarm", "arguments": {"hour": 7}}', False, "missing_required"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30, "snooze": 5}}', False, "unexpected_arg"),
    ('{"name": "set_alarm", "arguments": {"hour": "7", "minute": 30}}', False, "wrong_type"),
    ('{"name": "set_alarm", "arguments": {"hour": true, "minute": 30}}', False, "wrong_type"),
    ('{"name": "set_alarm", "arguments": {"hour": 8, "minute": 30}}', False, "wrong_value"),
    ('{"name": "get_time", "arguments": {"hour": 7, "minute": 30}}', False, "wrong_name"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minu', False, "parse_error"),
    ("I can't help with that.", False, "no_call"),
    ('__import__("os").system("touch /tmp/pwned")', False, "parse_error"),
    ('set_alarm(hour=__import__("os").getpid(), minute=30)', False, "parse_error"),
    ('set_alarm(7, 30)', False, "parse_error"),
    ("{" * 30000, False, "too_long"),
    ("[" * 19000, False, "parse_error"),  # used to raise RecursionError
    ('{"name": "set_alarm", "arguments": ' + '{"a": ' * 1500 + "1" + "}" * 1501, False, "parse_error"),
    ('{"name": "set_alarm", "arguments": "' + '[' * 1500 + '"}', False, "parse_error"),  # nested JSON string
    ('[{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}, '
     '{"name": "set_alarm", "arguments": {"hour": 8, "minute": 0}}]', False, "wrong_count"),
])
def test_table(output, correct, reason):
    verdict = check(output, WANT, FN)
    assert (verdict.correct, verdict.reason) == (correct, reason), verdict


def test_parallel_calls_are_order_free():
    want = [{"f": {"x": [1]}}, {"f": {"x": [2]}}]
    fn = [{"name": "f", "parameters": {"required": ["x"], "properties": {"x": {"type": "integer"}}}}]
    assert check('[f(x=2), f(x=1)]', want, fn).correct
    assert not check('[f(x=2), f(x=2)]', want, fn).correct


def test_irrelevance():
    for refusal in ("I can't do that (no tool fits).", "[No suitable function] Sorry.", "Use {city} next time.",
                    "(None of the functions apply.)"):
        for mode in ("bfcl", "multilingual"):  # class 2: a refusal with brackets is a correct abstention
            assert check(refusal, [], FN, mode=mode).correct, (refusal, mode)
    assert check("There is no function for that.", [], FN).correct
    verdict = check('set_alarm(hour=7, minute=30)', [], FN)
    assert not verdict.correct and verdict.reason == "irrelevance_violated"
    for wrapped in ('<tool_call>{"name": "set_alarm", "arguments": {"hour": 7}}</tool_call>',
                    'Setting it.\n<tool_call>{"name": "set_alarm", "arguments": {"hour": 7}}</tool_call>',
                    '```PY\nset_alarm(hour=7, minute=30)\n```'):  # a wrapped call is no abstention
        assert check(wrapped, [], FN).reason == "irrelevance_violated", wrapped


def test_wrong_language_argument_is_flagged():
    fn = [{"name": "get_weather", "parameters": {"required": ["unit"], "properties": {"unit": {"type": "string"}}}}]
    want = [{"get_weather": {"unit": ["celsius"]}}]
    verdict = check('{"name": "get_weather", "arguments": {"unit": "摂氏"}}', want, fn,
                    lambda got, canonical: got == "摂氏")
    assert verdict.reason == "wrong_value" and verdict.wrong_language_args == ["unit"] and verdict.name_correct


@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(text):
    verdict = check(text, WANT, FN)
    assert isinstance(verdict.correct, bool) and verdict.reason


CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"]


def _perturbations(call: dict, schema: dict) -> list[tuple[str, list]]:
    """(kind, perturbed call list) for one gold call."""
    props = schema.get("parameters", {}).get("properties", {})
    required = schema.get("parameters", {}).get("required", [])
    out = [("wrong_name", {**call, "name": call["name"] + "_v2"}),
           ("extra_arg", {**call, "arguments": {**call["arguments"], "zz_unexpected": 1}})]
    present_required = [k for k in required if k in call["arguments"]]
    if present_required:
        args = dict(call["arguments"])
        del args[present_required[0]]
        out.append(("missing_required", {**call, "arguments": args}))
    for key, value in call["arguments"].items():
        kind = props.get(key, {}).get("type")
        wrong = {"integer": "seven", "float": "x", "number": "x", "string": [1], "boolean": "yes",
                 "array": 3, "dict": 3, "tuple": 3}.get(kind)
        if wrong is not None:
            out.append(("wrong_type", {**call, "arguments": {**call["arguments"], key: wrong}}))
            break
    for key, value in call["arguments"].items():
        changed = (not value if isinstance(value, bool) else value + 1000 if isinstance(value, (int, float))
                   else value + " zzq" if isinstance(value, str) else None)
        if changed is not None:
            out.append(("wrong_value", {**call, "arguments": {**call["arguments"], key: changed}}))
            break
    return out


def test_bfcl_gold_calls_pass_and_perturbations_fail():
    directory = shared("bfcl")
    passed = total = 0
    rejected: dict[str, list[int]] = {}
    for category in CATEGORIES + ["irrelevance"]:
        for ex in load_bfcl(directory, category):
            gold = gold_call(ex.reference["calls"], ex.tools)
            total += 1
            verdict = check(json.dumps(gold), ex.reference["calls"], ex.tools)
            assert verdict.correct, (ex.id, verdict.reason, verdict.detail)
            passed += 1
            schemas = {f["name"]: f for f in ex.tools}
            for i, call in enumerate(gold):
                for kind, bad in _perturbations(call, schemas.get(call["name"], {})):
                    calls = copy.deepcopy(gold)
                    calls[i] = bad
                    result = check(json.dumps(calls), ex.reference["calls"], ex.tools)
                    rejected.setdefault(kind, [0, 0])
                    rejected[kind][0] += not result.correct
                    rejected[kind][1] += 1
                    assert not result.correct, (ex.id, kind, bad)
    print(f"gold calls passing: {passed}/{total}; perturbations rejected: {rejected}")
    assert total >= 1400 and set(rejected) == {"wrong_name", "extra_arg", "missing_required", "wrong_type",
                                               "wrong_value"}


def test_python_syntax_parsing_uses_literals_only():
    calls, reason = parse_calls('f(a=[1, 2], b={"k": "v"}, c=None, d=-3.5)')
    assert reason == "ok" and calls == [{"name": "f", "arguments": {"a": [1, 2], "b": {"k": "v"}, "c": None,
                                                                     "d": -3.5}}]


UPDATE = [{"name": "update_user_info", "parameters": {"type": "dict", "required": ["user_id", "update_info"],
           "properties": {"user_id": {"type": "integer"}, "update_info": {"type": "dict", "properties": {
               "name": {"type": "string"}, "email": {"type": "string"}}}}}}]
UPDATE_WANT = [{"update_user_info": {"user_id": [1], "update_info": [{"name": ["John"], "email": ["j@x.org", ""]}]}}]
FLOATS = [{"name": "poly", "parameters": {"type": "dict", "required": ["coefficients"], "properties": {
    "coefficients": {"type": "array", "items": {"type": "float"}}, "base": {"type": "integer"},
    "mode": {"type": "string"}}}}]
FLOATS_WANT = [{"poly": {"coefficients": [[3.0, 2.0, -4.0]], "base": [10, ""], "mode": ["fast"]}}]


@pytest.mark.parametrize("mode", ["bfcl", "multilingual"])
@pytest.mark.parametrize("output,correct,reason", [
    # class 1: "mode" is optional in the schema but listed without "" in the possible answer: BFCL requires it
    ("poly(coefficients=[3.0, 2.0, -4.0])", False, "missing_required"),
    ("poly(coefficients=[3.0, 2.0, -4.0], mode='fast')", True, "ok"),
    # class 3: a Python call whose dict argument has a "name" key is still a Python call
    ('update_user_info(user_id=1, update_info={"name": "John", "email": "j@x.org"})', True, "ok"),
    # class 4: element types inside arrays, and a tuple is not an array
    ("poly(coefficients=[3, 2, -4], mode='fast')", False, "wrong_type"),
    ("poly(coefficients=(3.0, 2.0, -4.0), mode='fast')", False, "wrong_type"),
    # class 5: simple arithmetic over literals is folded, as BFCL evaluates it (never with eval)
    ("poly(coefficients=[3.0, 2.0, -4.0], base=10*1, mode='fast')", True, "ok"),
    ("poly(coefficients=[1.5*2, 2.0, -4.0], base=2**3+2, mode='fast')", True, "ok"),
    ("poly(coefficients=[3.0, 2.0, -4.0], base=10**10**10, mode='fast')", False, "parse_error"),
    ("poly(coefficients=[3.0, 2.0, -4.0], base=__import__('os').getpid(), mode='fast')", False, "parse_error"),
])
def test_bfcl_rule_classes(output, correct, reason, mode):
    want, fns = (UPDATE_WANT, UPDATE) if output.startswith("update") else (FLOATS_WANT, FLOATS)
    verdict = check(output, want, fns, mode=mode)
    assert (verdict.correct, verdict.reason, verdict.mode) == (correct, reason, mode), verdict


@pytest.mark.parametrize("leniency,output", [
    ("nfkc", "poly(coefficients=[3.0, 2.0, -4.0], mode='ｆａｓｔ')"),
    ("casefold", "set_city(city='STRASSE')"),
    ("strip_quotes_whitespace", "poly(coefficients=[3.0, 2.0, -4.0], mode='\\tfast\\n')"),
    ("strip_quotes_whitespace", "poly(coefficients=[3.0, 2.0, -4.0], mode='\"fast\"')"),
    ("name_case", "POLY(coefficients=[3.0, 2.0, -4.0], mode='fast')"),
    ("name_separator", "math_poly(coefficients=[3.0, 2.0, -4.0], mode='fast')"),
])
def test_each_multilingual_leniency_is_named_and_bfcl_mode_refuses_it(leniency, output):
    want, fns = FLOATS_WANT, FLOATS
    if leniency == "casefold":
        fns = [{"name": "set_city", "parameters": {"required": ["city"], "properties": {"city": {"type": "string"}}}}]
        want = [{"set_city": {"city": ["Straße"]}}]
    if leniency == "name_separator":
        fns = [{**FLOATS[0], "name": "math.poly"}]
        want = [{"math.poly": FLOATS_WANT[0]["poly"]}]
    assert leniency in LENIENCIES["multilingual"] and not LENIENCIES["bfcl"]
    assert check(output, want, fns, mode="multilingual").correct
    assert not check(output, want, fns, mode="bfcl").correct


def test_ten_identical_parallel_calls_are_matched_fast():
    fn = [{"name": "f", "parameters": {"required": ["x"], "properties": {"x": {"type": "integer"}}}}]
    want = [{"f": {"x": [1]}}] * 10
    good = "[" + ", ".join(["f(x=1)"] * 10) + "]"
    bad = "[" + ", ".join(["f(x=1)"] * 9 + ["f(x=2)"]) + "]"
    for mode in ("bfcl", "multilingual"):
        assert check(good, want, fn, mode=mode).correct
        assert check(bad, want, fn, mode=mode).reason == "wrong_value"  # the old backtracking took > 60 s


def test_optimal_matching_finds_the_pairing_greedy_misses():
    fn = [{"name": "f", "parameters": {"required": ["x"], "properties": {"x": {"type": "string"}}}}]
    want = [{"f": {"x": ["a", "b"]}}, {"f": {"x": ["a"]}}]  # greedy gives output 0 ("a") to the first
    assert check('[f(x="a"), f(x="b")]', want, fn, mode="multilingual").correct
    assert not check('[f(x="a"), f(x="b")]', want, fn, mode="bfcl").correct  # BFCL's greedy order


def _one_string(value: str) -> tuple[list, list]:
    fns = [{"name": "f", "parameters": {"required": ["x"], "properties": {"x": {"type": "string"}}}}]
    return [{"f": {"x": [value]}}], fns


@pytest.mark.parametrize("want, got", [
    ("34.0522, -118.2437", "340522, -118.2437"),  # a decimal point dropped
    ("34.0522, -118.2437", "34.0522, 118.2437"),  # a minus sign dropped
    ("-118.2437", "118.2437"),
    ("https://192.168.11.33/", "https://192168.11.33/"),
    ("https://192.168.11.33/", "https://19216811.33/"),
    ("v1.2", "v12"),
    ("0.5", "05"),
    (".5", "5"),
    ("x=-5", "x=5"),
])
def test_multilingual_mode_keeps_the_value_of_numbers_in_strings_and_bfcl_mode_does_not(want, got):
    """Multilingual mode removed every `.` and `-` of a string, as BFCL does: a coordinate with its decimal point
    or minus sign dropped, or an IP address with a dot dropped, passed. `bfcl` mode stays BFCL's rule."""
    expected, fns = _one_string(want)
    output = f"f(x={got!r})"
    verdict = check(output, expected, fns, mode="multilingual")
    assert (verdict.correct, verdict.reason) == (False, "wrong_value")
    assert check(output, expected, fns, mode="bfcl").correct  # BFCL's checker strips `.` and `-` by design
    assert check(f"f(x={want!r})", expected, fns, mode="multilingual").correct


@pytest.mark.parametrize("want, got", [
    ("34.0522, -118.2437", "34.0522,-118.2437"),  # spacing and the comma between the two numbers
    ("34.0522, -118.2437", "34.0522 -118.2437"),
    ("34.0522, -118.2437", "３４．０５２２，　－１１８．２４３７"),  # full width (NFKC)
    ("Jan.1,2022", "Jan 1, 2022"),  # BFCL's dates: an abbreviation's point, the comma before the year
    ("Oct. 15, 2023", "Oct 15 2023"),
    ("2022-08-16", "2022/08/16"),  # a date's separators between digits
    ("16/08/2022", "16.08.2022"),  # a day.month.year date as German or Russian write it
    ("2019-2020", "2019 2020"),
    ("Bob-123", "bob 123"),  # a hyphen after a letter is no minus sign
    ("PEK-ACI", "pek aci"),
])
def test_multilingual_mode_still_reads_separators_as_before(want, got):
    expected, fns = _one_string(want)
    assert check(f"f(x={got!r})", expected, fns, mode="multilingual").correct


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        check("f(x=1)", [{"f": {"x": [1]}}], [], mode="lenient")


def _translated_agenda(tmp_path):
    """API-Bank's AddAgenda item (content, location, time, token), its user turns translated into Spanish by a
    stand-in translator that knows these phrases (placeholders for numbers kept), through the real pipeline."""
    from langmix.data.api_data import load_apibank, load_apibank_schemas
    from langmix.translate.cache import TranslationCache
    from langmix.translate.pipeline import translate_examples

    schemas = load_apibank_schemas(shared("api-bank", "all_apis.csv"))
    examples = [ex for ex in load_apibank(shared("api-bank", "lv1-lv2-samples", "level-1-given-desc"), schemas)
                if ex.id == "apibank-ModifyReminder-AddAgenda-GetUserToken-level-2-3-11-en"]
    phrases = {"The agenda is": "La agenda es", "Meeting with project team": "Reunión con el equipo del proyecto",
               "location is": "el lugar es", "Conference Room A": "Sala de conferencias A", "and time is": "y la hora es"}

    class Phrasebook:
        name, model_id, prompt_version, protects_numbers = "phrasebook", "phrasebook", "v1", True

        def translate(self, requests):
            out = []
            for r in requests:
                text = r.text
                for en, es in phrases.items():
                    text = text.replace(en, es)
                out.append(text)
            return out

    (ex,), _ = translate_examples(examples, ["es"], Phrasebook(), TranslationCache(tmp_path / "c.sqlite"),
                                 ["en", "es"], policy="flag")
    return ex


def test_translated_free_text_arguments(tmp_path):
    ex = _translated_agenda(tmp_path)
    request = " ".join(m["content"] for m in ex.messages if m["role"] == "user")
    verbatim = ex.reference["verbatim_arguments"]
    assert "Sala de conferencias A" in request and "AddAgenda.time" in verbatim and "AddAgenda.content" not in verbatim
    token = ex.reference["calls"][0]["AddAgenda"]["token"][0]

    def score(content, location, time="2023-03-25 10:00:00", mode="multilingual", with_request=True, language="es"):
        out = json.dumps({"name": "AddAgenda", "arguments": {"token": token, "content": content, "time": time,
                                                             "location": location}}, ensure_ascii=False)
        return check(out, ex.reference["calls"], ex.tools, mode=mode, request=request if with_request else None,
                     verbatim=verbatim, language=language)

    spanish = score("Reunión con el equipo del proyecto", "Sala de conferencias A")
    assert (spanish.correct, spanish.wrong_language_args) == (True, ["content", "location"])  # counted still
    assert score("Meeting with project team", "Conference Room A").wrong_language_args == []
    assert not score("Reunión con el equipo del proyecto", "Sala de conferencias A", mode="bfcl").correct
    assert not score("Reunión con el equipo del proyecto", "Conference Room A", with_request=False).correct
    assert not score("Reunión del equipo", "Conference Room A").correct  # not copied from the request
    # a fragment of the request is not the user's-language form of the value: too short, or not whole words
    assert score("Reunión con el equipo del proyecto", "Sala").reason == "wrong_value"
    assert score("Reunión con el equipo del proyecto", "ala de conferencias A").reason == "wrong_value"
    # the request's language must be known and not English (there is no other form of an English value then)
    assert not score("Reunión con el equipo del proyecto", "Sala de conferencias A", language=None).correct
    assert not score("Reunión con el equipo del proyecto", "Sala de conferencias A", language="en").correct
    # a constrained value (a date/time format) keeps requiring the canonical form
    assert score("Meeting with project team", "Conference Room A", time="25 de marzo 10:00").reason == "wrong_value"


def test_request_fragments_are_not_accepted_as_arguments():
    """BFCL simple_python_77: the free-text leniency accepted any 2+ character fragment of the request ("Find",
    "in") for an English item. Now only a non-English request's whole words of comparable length count."""
    functions = [{"name": "restaurant.find_nearby", "parameters": {"type": "dict", "required": ["location"],
                  "properties": {"location": {"type": "string", "description": "The city and state, e.g. Los "
                                              "Angeles, CA"},
                                 "dietary_preference": {"type": "array", "items": {"type": "string"}}}}}]
    expected = [{"restaurant.find_nearby": {"location": ["Los Angeles, CA"], "dietary_preference": [["Vegan"]]}}]

    def verdict(location, request, language):
        call = f'restaurant.find_nearby(location="{location}", dietary_preference=["Vegan"])'
        return check(call, expected, functions, request=request, language=language)

    english = "Find a nearby restaurant that serves vegan food in Los Angeles."
    for location in ("Find", "in", "Los Angeles"):
        for language in ("en", None):
            assert verdict(location, english, language).reason == "wrong_value", (location, language)
    spanish = "Busca un restaurante cercano que sirva comida vegana en Los Ángeles."
    assert verdict("Busca", spanish, "es").reason == "wrong_value"  # 5 characters for 13
    assert verdict("Los Ángel", spanish, "es").reason == "wrong_value"  # not whole words
    assert verdict("Los Ángeles", spanish, "es").correct  # the user's-language form, copied whole
    # whole words of comparable length that are not the name (the review's cases): a name keeps one of its words
    assert verdict("comida vegana", spanish, "es").reason == "wrong_value"
    assert verdict("Busca un restaurante", spanish, "es").reason == "wrong_value"


def test_free_text_spans_ignore_punctuation_and_respect_vowel_signs():
    """A message body copied without the request's comma is the copied span; a Bengali fragment that starts
    after a vowel sign (a mark, mid-word) is not whole words."""
    from langmix.evaluate.leniencies import _copied_span

    assert _copied_span("Nos vemos mañana a las cinco", "Escribe: nos vemos mañana, a las cinco.")
    request = "বার্তা পাঠাও: কাল পাঁচটায় দেখা হবে"
    assert _copied_span("কাল পাঁচটায় দেখা হবে", request)
    assert not _copied_span("াল পাঁচটায় দেখা হবে", request)


WEATHER = [{"name": "get_weather", "description": "The weather of a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
WEATHER_WANT = [{"get_weather": {"city": ["Paris"]}}]


def _echo() -> str:
    """What a small model (Gemma-3-270M on BFCL) writes before its call: the prompt again."""
    from langmix.data.api_data import tool_system_prompt

    return tool_system_prompt(WEATHER) + "\nWhat is the weather in Paris?\n"


@pytest.mark.parametrize("output", [
    'Sure! {"name": "get_weather", "arguments": {"city": "Paris"}}',
    'Here is the call:\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
    'Sure: get_weather(city="Paris")',
    'Sure: [get_weather(city="Paris")]',
    'Sure: Get_Weather(city="Paris")',  # name_case, as at the start
    'Here you go:\n```python\nget_weather(city="Paris")\n```',
    "ECHO" + '[{"name": "get_weather", "arguments": {"city": "Paris"}}]',  # past the echoed schemas and template
    'The tool is get_weather() (weather only).\nget_weather(city="Paris")',  # past a mention
])
def test_a_call_after_leading_text_is_read_and_judged(output):
    """A call after leading text was `no_call`: on an irrelevance item a correct abstention, on any other item a
    miss that parse_failure_rate did not count. The multilingual mode reads it (the `leading_text` leniency);
    on an irrelevance item it is a call."""
    output = output.replace("ECHO", _echo())
    verdict = check(output, WEATHER_WANT, WEATHER)
    assert (verdict.correct, verdict.reason, verdict.leniencies) == (True, "ok", ["leading_text"]), verdict
    assert verdict.calls == [{"name": verdict.calls[0]["name"], "arguments": {"city": "Paris"}}]
    wrong = check(output.replace("Paris", "Lyon"), WEATHER_WANT, WEATHER)
    assert (wrong.correct, wrong.reason) == (False, "wrong_value")
    abstained = check(output, [], WEATHER)
    assert (abstained.correct, abstained.reason) == (False, "irrelevance_violated")
    assert check(output, [], WEATHER, mode="multilingual").calls == verdict.calls
    assert "leading_text" in LENIENCIES["multilingual"]


@pytest.mark.parametrize("output", [
    'Sure! {"name": "get_weather", "arguments": {"city": "Paris"}}',
    'Here is the call:\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
    'Sure: get_weather(city="Paris")',
])
def test_bfcl_mode_keeps_bfcl_s_lax_irrelevance_rule_and_says_so(output):
    """BFCL's decoder reads no leading text, and BFCL counts an output it cannot decode as no call on an
    irrelevance item (`relevance_file_runner`); bfcl mode keeps that, with a detail naming the attempt, and
    calls the output a parse error, not `no_call`, on an item that expects a call."""
    verdict = check(output, WEATHER_WANT, WEATHER, mode="bfcl")
    assert (verdict.correct, verdict.reason, verdict.leniencies) == (False, "parse_error", [])
    abstained = check(output, [], WEATHER, mode="bfcl")
    assert (abstained.correct, abstained.reason) == (True, "ok") and "BFCL" in abstained.detail


@pytest.mark.parametrize("output", [
    'Sure! [{"name": "get_weather", "arguments": {"city": "Pa',  # cut off by max_new_tokens
    "ECHO" + '[{"name": "get_weather", "arguments": {"city": "Pa',
    'Sure! {"name": "get_weather", "arguments": {"city": "Paris"}} Hope this helps!',  # text after the call
    'Sure:\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n{"name": "get_weather", "arguments": '
    '{"city": "Lyon"}}',  # two calls on separate lines without a list, as at the start
    'Sure: get_weather("Paris")',  # positional
    'Sure: get_weather(city="Par',
    'Here:\n```python\nweather(Paris)\n```',
    'I would call get_weather(city="Paris") for that.',  # keyword arguments: written as a call
])
def test_a_call_attempt_that_does_not_parse_is_a_parse_error_and_no_abstention(output):
    output = output.replace("ECHO", _echo())
    for mode in ("multilingual", "bfcl"):
        verdict = check(output, WEATHER_WANT, WEATHER, mode=mode)
        assert (verdict.correct, verdict.reason, verdict.calls) == (False, "parse_error", None), (mode, verdict)
    verdict = check(output, [], WEATHER)
    assert (verdict.correct, verdict.reason) == (False, "irrelevance_violated"), verdict


@pytest.mark.parametrize("output", [
    "You can use get_weather for that, but I need a city.",
    "I can't: get_weather() only covers the weather [no match] {sorry}.",
    "The function get_weather (for weather) does not fit.",
    "None of the functions (get_weather) fits.",
    "ECHO" + "I don't know.",  # the prompt's schemas and its `{"name": ..., "arguments": {...}}` template
    "Sorry (no tool fits).",
    "[No suitable function] Sorry.",
    "Results: [1, 2, 3] and {\"a\": 1}.",
])
def test_prose_that_names_a_function_is_no_call(output):
    output = output.replace("ECHO", _echo())
    for mode in ("multilingual", "bfcl"):
        assert check(output, WEATHER_WANT, WEATHER, mode=mode).reason == "no_call", mode
        assert check(output, [], WEATHER, mode=mode).correct, mode


def test_parse_failures_after_leading_text_count_in_the_parse_failure_rate():
    from langmix import tasks

    items = [{"irrelevance": False, "name_correct": False, "args_correct": False, "wrong_language_args": [],
              "correct": v.correct, "parsed_calls": v.calls}
             for v in (check(o, WEATHER_WANT, WEATHER) for o in (
                 'Sure! [{"name": "get_weather", "arguments": {"city": "Pa', 'Sure: get_weather(city="Paris")'))]
    assert tasks.get("api").metrics(items)["parse_failure_rate_on_calls"] == (0.5, 2)


@pytest.mark.parametrize("want, got, same", [
    ("3.5 km", "3,5 km", True),  # a decimal comma (de, es, fr, ru) is the decimal point
    ("2.5 kg of flour", "2,5 kg of flour", True),
    ("1000 people", "1,000 people", True),  # a comma before three digits groups thousands
    ("Jan.1,2022", "Jan 1 2022", True),  # BFCL's dates: a comma before four digits separates
    ("3.5 km", "35 km", False)])
def test_a_decimal_comma_inside_a_string_keeps_its_value(want, got, same):
    """Keeping the decimal point while removing every comma read "3,5 km" as 35km against "3.5 km" (review of the
    change that keeps numbers' points): the multilingual rule reads a decimal comma as the point."""
    from langmix.evaluate.leniencies import standardise

    assert (standardise(got, True) == standardise(want, True)) is same
    assert standardise("3,5 km", False) == standardise("35 km", False)  # bfcl mode: BFCL's own rule, unchanged
