"""Number forms a probe of the math scorer on MGSM answers found unread or misread: both separators in one number,
and the Arabic thousands and decimal separators."""

import pytest

from langmix import languages as langs
from langmix.evaluate.math import extract_flexible, score_math
from langmix.evaluate.number_reading import number_problem, parse_number


@pytest.mark.parametrize(("text", "lang", "expected"), [
    # commas grouping thousands before a decimal point: one reading, in every language
    ("70,000.00", "es", 70000.0), ("70,000.00", "de", 70000.0), ("1,000.00", "fr", 1000.0), ("1,000.00", "ru", 1000.0),
    ("-1,234,567.25", "de", -1234567.25), ("1,00,000.50", "es", 100000.5), ("70,000.00", "en", 70000.0),
    # dots grouping thousands before a decimal comma: one reading, in every language
    ("1.234,5", "en", 1234.5), ("12.345.678,25", "sw", 12345678.25), ("1.234,5", "de", 1234.5),
    # no reading: the separators' order or grouping admits none
    ("1.2,5", "en", None), ("1.2,5", "fr", None), ("1,2.5", "de", None), ("1,2.5", "en", None),
    ("12.34,5", "en", None), ("1,234.5,6", "es", None), ("1.234,5.6", "en", None), ("0.123,5", "de", None),
    ("0,123.5", "en", None),
    # several commas in a comma-decimal language: thousands ('1,234,567') or a list ('1,2,3'), never 123
    ("1,234,567", "es", 1234567.0), ("1,2,3", "es", None), ("12,50,1", "de", None),
])
def test_both_separators_are_read_where_their_order_allows_one_reading(text, lang, expected):
    assert parse_number(text, lang) == expected


@pytest.mark.parametrize("lang", ["de", "es", "fr", "ru"])
def test_us_style_amounts_score_in_comma_decimal_languages(lang):
    """`$70,000.00` was no number at all in de/es/fr/ru (23 of 23 MGSM items with gold >= 1000 answered so were
    scored wrong there, right in the other 7 languages)."""
    phrase = langs.answer_phrase(lang)
    for output, gold in ((f"{phrase} $70,000.00.", 70000), (f"{phrase} 1,000.00 $.", 1000),
                         (f"{phrase} 1,234,567.50 €", 1234567.5)):
        verdict = score_math(output, gold, "", lang)
        assert (verdict.strict, verdict.flexible) == (gold, gold), (lang, output)
    # a number of no reading is still no answer (not a skip to the next number)
    assert score_math(f"{phrase} 1.2,5 en 3 días", 3, "", lang).strict is None


def test_the_same_number_reads_the_same_in_a_reference_check():
    """number_problem (the loaders' check of a final number) agrees with parse_number on both separators."""
    assert number_problem("The answer is 1.234,5", "en") is None and number_problem("Es 70,000.00", "es") is None
    assert "no single reading" in number_problem("Es 1.2,5", "es")
    assert "comma groups no thousands" in number_problem("It is 2,5", "en")
    assert "no single reading" in number_problem("It is 1.2,5", "en")


def test_us_amounts_on_every_mgsm_gold_of_four_digits_or_more():
    """On the real MGSM golds: every item with gold >= 1000, answered `<phrase> $X,XXX.00.`, scores right strict
    and flexible in all 11 languages (was 0 of 23 in each of de/es/fr/ru)."""
    from langmix.data.math_data import load_mgsm
    from tests.shared_data import shared

    examples = [ex for ex in load_mgsm(shared("mgsm")) if ex.reference["answer"] >= 1000]
    wrong = [(ex.language, ex.reference["answer"]) for ex in examples
             if not (v := score_math(f"{langs.answer_phrase(ex.language)} ${int(ex.reference['answer']):,}.00.",
                                     ex.reference["answer"], "", ex.language)).strict_correct
             or not v.flexible_correct]
    assert len(examples) == 23 * 11 and wrong == []


@pytest.mark.parametrize(("output", "gold"), [
    ("الإجابة هي ٧٠٬٠٠٠ دولار.", 70000), ("الإجابة هي ١٨٫٥", 18.5), ("الإجابة هي ١٬٢٣٤٫٥", 1234.5),
    ("The answer is 70٬000", 70000), ("النتيجة ٫٥", 0.5),
])
def test_arabic_thousands_and_decimal_separators(output, gold):
    """U+066C (thousands) and U+066B (decimal) split numbers: `٧٠٬٠٠٠` was read as 0, `١٨٫٥` as 5."""
    assert extract_flexible(output, "ar") == gold
    assert score_math(output, gold, "", "ar").flexible == gold


@pytest.mark.parametrize("lang", ["ar", "en", "de", "fr"])
def test_arabic_separators_mean_the_same_in_every_language(lang):
    assert parse_number("٧٠٬٠٠٠", lang) == 70000 and parse_number("١٨٫٥", lang) == 18.5
    assert parse_number("1٫234", lang) == 1.234  # a decimal separator, never thousands (as `1.234` is in de)
    for text in ("١٬٢", "1٬234.5", "1,234٫5", "12٬34"):  # groups of three only, and no mix with `.` or `,`
        assert parse_number(text, lang) is None, text
    assert extract_flexible("الإجابة ٣ و ١٬٢", lang) is None  # unreadable where the answer is: no answer
