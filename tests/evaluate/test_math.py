import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langmix.evaluate.math import MAX_OUTPUT_CHARS, extract_flexible, extract_strict, score_math
from langmix.evaluate.number_reading import parse_number


@pytest.mark.parametrize("output,answer,phrase,strict,flexible,reason", [
    ("3 + 4 = 7. The answer is 7.", 7, "The answer is", True, True, "ok"),
    ("The answer is 7. Also 12.", 7, "The answer is", True, False, "ok"),
    ("La respuesta es 1,234.", 1234, "La respuesta es", True, True, "ok"),
    ("Jibu ni 29.00", 29, "Jibu ni", True, True, "ok"),
    ("উত্তর হল ৪২।", 42, "উত্তর হল", True, True, "ok"),
    ("సమాధానం ౧౯.", 19, "సమాధానం", True, True, "ok"),
    ("答えは１９です。", 19, "答えは", True, True, "ok"),
    ("7 apples", 7, "The answer is", False, True, "no_answer_phrase"),
    ("", 7, "The answer is", False, False, "no_number"),
    ("The answer is", 7, "The answer is", False, False, "no_number"),
    ("The answer is 8.", 7, "The answer is", False, False, "wrong"),
    ("{]\x00\ufffd garbage", 7, "The answer is", False, False, "no_number"),
])
def test_score_table(output, answer, phrase, strict, flexible, reason):
    verdict = score_math(output, answer, phrase)
    assert (verdict.strict_correct, verdict.flexible_correct, verdict.reason) == (strict, flexible, reason)


def test_long_rambling_output_is_scored():
    # ~2,000 tokens of reasoning (tens of thousands of characters), then a correctly phrased answer
    output = "Let me think about the 3 apples and 4 pears again. " * 800 + "The answer is 7."
    assert len(output) > 40_000
    verdict = score_math(output, 7, "The answer is")
    assert (verdict.strict, verdict.reason) == (7, "ok")


def test_one_megabyte_scores_in_well_under_a_second():
    tail = "So the answer is 12. The answer is 12."
    output = ("12 + 3 = 15, then 15 - 3 = 12. " * 40_000)[: MAX_OUTPUT_CHARS - len(tail)] + tail
    assert len(output) == MAX_OUTPUT_CHARS
    start = time.perf_counter()
    verdict = score_math(output, 12, "The answer is")
    assert time.perf_counter() - start < 1.0  # linear extraction: about 0.1 s on an idle core
    assert (verdict.strict, verdict.flexible, verdict.reason) == (12, 12, "ok")


def test_pathological_size_is_refused():
    verdict = score_math("The answer is 7. " * 60_000, 7, "The answer is")  # 1.02 MB
    assert verdict.reason == "too_long" and not verdict.strict_correct and not verdict.flexible_correct


def test_flexible_reads_the_tail_like_a_full_scan():
    # the last number straddles the first 2,000-character window; a number split there must not be read
    assert extract_flexible("x" * 5000 + "1,234,567" + "y" * 1995) == 1234567
    assert extract_flexible("5 " + "x" * 50_000) == 5 and extract_flexible("8万" + "x" * 3000, "zh") == 80000


def test_digit_runs_are_not_numbers():
    assert score_math("1" * 500_000 + " The answer is 3", 3, "The answer is").reason == "ok"
    assert extract_flexible("9" * 101) is None and extract_flexible("9" * 100) == float("9" * 100)


def test_strict_uses_last_answer_phrase():
    assert extract_strict("The answer is 3. Wait. The answer is 5.", "The answer is") == 5
    assert extract_strict("The answer is 3. Wait. Answer: 5. Hmm.", ["The answer is", "Answer:"]) == 5


def test_strict_position_survives_casefold_changes():
    # casefolding "ß" to "ss" lengthens the text; the old rfind-on-casefolded index then read "5" from "15"
    assert extract_strict("Maße: 2 m, Straße: 3 m. Die Antwort ist 15.", "Die Antwort ist", "de") == 15


def test_strict_accepts_the_registry_phrases_of_the_language_only():
    assert score_math("Antwort: 11", 11, "", "de").phrase == "Antwort:"
    assert score_math("Die Antwort lautet 11.", 11, "Die Antwort ist", "de").strict_correct
    assert not score_math("The answer is 11.", 11, "", "de").strict_correct  # English phrase in German
    assert not score_math("Antwort: 11", 11, "", "de", phrases=["Die Antwort lautet"]).strict_correct


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_parse_number_round_trips_integers(n):
    assert parse_number(str(n)) == n
    assert parse_number(f"{n:,}") == n
    assert extract_flexible(f"so it is {n}.") == n


@given(st.integers(min_value=0, max_value=10**6))
def test_native_digits_parse(n):
    for zero in ("০", "౦", "๐", "０", "٠", "०"):  # Bengali, Telugu, Thai, full-width, Arabic-Indic, Devanagari
        native = "".join(chr(ord(zero) + int(d)) for d in str(n))
        assert parse_number(native) == n


def test_scientific_notation_is_read_neither_in_outputs_nor_in_references():
    """"1e2" in an output is the numbers 1 and 2, as before; a reference "1e3" was read as 1000 (Decimal), so no
    output written like it could match. One rule now: parse_number (references, the loaders' answers) refuses it."""
    from langmix.evaluate.number_reading import reference_number

    verdict = score_math("The answer is 1e2.", 100)
    assert (verdict.strict, verdict.flexible, verdict.strict_correct) == (1.0, 2.0, False)
    for text in ("1e3", "1E-2", "2.5e+3", "1_000", "inf", "-Infinity", "nan", "0x10"):
        assert parse_number(text) is None and parse_number(text, "de") is None, text
    assert [parse_number(t) for t in ("+5", "-5", ".5", "5.", "1,234", "29.00")] == [5, -5, 0.5, 5, 1234, 29]
    assert parse_number("1.234", "de") == 1234 and parse_number("2,5", "fr") == 2.5
    assert reference_number(1e3) == 1000 and reference_number("1,234") == 1234 and reference_number(7) == 7
    with pytest.raises(ValueError, match="scientific notation"):
        reference_number("1e3")
    for bad in ("Infinity", float("inf"), 10**400, True, None, "1/2"):
        with pytest.raises(ValueError, match="is not a"):
            reference_number(bad)


def test_dots_after_a_decimal_comma_are_no_number():
    """In a comma-decimal language, '1,234.5' was read as 1.2345 (its dot dropped as a thousands mark): a dot that
    groups no thousands before the decimal comma leaves the number unreadable, not silently another value. (Commas
    grouping thousands before a decimal point have one reading in every language: '1,234.5' is 1234.5 in de.)"""
    assert parse_number("1.2,5", "fr") is None and parse_number("1,2.5", "de") is None
    assert parse_number("1,234.5", "de") == 1234.5
    assert [parse_number(t, "de") for t in ("1.234,5", "12.345.678,25", "12,5", "-1.000,75", "+1.234,5")] == \
        [1234.5, 12345678.25, 12.5, -1000.75, 1234.5]


def test_an_ambiguous_number_is_no_answer_not_a_skip_to_the_next():
    """Once '2,5' (en) and '1.2,5' (es) stopped parsing, the extractors skipped them and read the next number:
    'The answer is 2,5 kg for 4 boxes.' scored 4 as the strict answer. An ambiguous number where the answer is read
    now gives no answer (and no fallback to an earlier answer phrase)."""
    verdict = score_math("The answer is 2,5 kg for 4 boxes.", 4, "The answer is", "en")
    assert (verdict.strict, verdict.strict_correct, verdict.reason) == (None, False, "no_number")
    assert score_math("La respuesta es 1.2,5 pesos por 3 días.", 3, "La respuesta es", "es").strict is None
    assert score_math("So 5 / 2 = 2,5", 2, "The answer is", "en").flexible is None  # not the 2 before it
    assert extract_strict("The answer is 3. So the answer is 2,5", "The answer is") is None
    assert extract_strict("The answer is 3. So the answer is", "The answer is") == 3  # a cut-off phrase still
    assert [extract_flexible(t) for t in ("I have 1, 2, 3", "costs 1,000 dollars")] == [3, 1000]


@pytest.mark.parametrize(("text", "lang", "expected"), [
    ("0,125", "de", 0.125), ("-0,125", "es", -0.125), ("0,5", "fr", 0.5),
    ("0,125", "en", None), ("0,125,000", "en", None),
    ("1,234", "de", 1234.0), ("1,234", "en", 1234.0), ("1,00,000", "en", 100000.0)])
def test_a_comma_after_a_leading_zero_groups_no_thousands(text, lang, expected):
    """'0,125' was read as 125 in every language: a thousands group never follows a leading 0, so where the comma is
    the decimal mark it is 0.125, and where it is not, the number is ambiguous (no answer), like '2,5'."""
    assert parse_number(text, lang) == expected
