import pytest
from hypothesis import given
from hypothesis import strategies as st

from langmix.evaluate.math import extract_flexible, extract_strict, parse_number, score_math


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


def test_huge_output_is_wrong_not_a_crash():
    verdict = score_math("The answer is 7. " * 5000, 7, "The answer is")
    assert verdict.reason == "too_long" and not verdict.strict_correct


def test_strict_uses_last_answer_phrase():
    assert extract_strict("The answer is 3. Wait. The answer is 5.", "The answer is") == 5


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
