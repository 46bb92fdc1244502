"""Arabic digits with the CJK multipliers 千 and 百 (and 万M千), which a probe of the math scorer on MGSM answers
found misread: `8千` strict 8 and flexible 1000, `1万8千` flexible 1000, `3百` strict 3."""

import pytest

from langmix.evaluate.math import extract_flexible, extract_strict, score_math


@pytest.mark.parametrize(("output", "lang", "gold"), [
    ("答案是8千元。", "zh", 8000), ("答えは8千円です。", "ja", 8000), ("答案是3百", "zh", 300),
    ("答えは1万8千円です。", "ja", 18000), ("答案是1万8千元", "zh", 18000), ("答案是2千5百", "zh", 2500),
    ("答案是1.5千", "zh", 1500), ("答案是 7 千 元", "zh", 7000), ("答案是2千5", "zh", 2500), ("答案是3百5", "zh", 350),
    ("答案是3百万", "zh", 3_000_000), ("答案是1亿2千万", "zh", 120_000_000), ("答えは８千円", "ja", 8000),
    ("答案是1万2000", "zh", 12000), ("答案是3万5", "zh", 35000),  # as before
])
def test_arabic_digits_with_cjk_thousands_and_hundreds(output, lang, gold):
    """`8千` was read as 8 (strict) and 1000 (flexible: the 千 alone), `1万8千` as 1000, `3百` as 3."""
    verdict = score_math(output, gold, "", lang)
    assert (verdict.strict, verdict.flexible) == (gold, gold), output


def test_the_kilo_of_a_metric_unit_is_no_multiplier():
    """千克 is a kilogram, 千米 a kilometre, 百分 percent: `5千克` is 5 (its 千 is neither 5000 nor, flexibly, 1000)."""
    for output, gold in (("答案是5千克。", 5), ("答案是 5 千米", 5), ("答案是3百分点", 3), ("答案是12千瓦", 12)):
        verdict = score_math(output, gold, "", "zh")
        assert (verdict.strict, verdict.flexible) == (gold, gold), output
    assert score_math("答案是二千。", 2000, "", "zh").flexible == 2000  # a numeral of its own is still read


def test_multipliers_out_of_order_are_no_answer():
    assert extract_strict("答案是5百3千，共2个", "答案是", "zh") is None
    assert extract_flexible("共2个，5百3千", "zh") is None


def test_cjk_multipliers_on_every_mgsm_gold_they_can_write():
    """On the real MGSM golds (zh, ja): N千, N百 and N万M千 forms of the gold score right strict and flexible (were
    32 of 32 wrong in one mode or both)."""
    from langmix.data.math_data import load_mgsm
    from tests.shared_data import shared

    wrong, n = [], 0
    for ex in load_mgsm(shared("mgsm"), languages=["zh", "ja"]):
        g, phrase = int(ex.reference["answer"]), ex.reference["answer_phrase"]
        unit = "元" if ex.language == "zh" else "円"
        forms = []
        if 1000 <= g < 10000 and g % 1000 == 0:
            forms.append(f"{phrase}{g // 1000}千{unit}。")
        if 100 <= g < 1000 and g % 100 == 0:
            forms.append(f"{phrase}{g // 100}百{unit}。")
        if g >= 10000 and g % 1000 == 0 and g % 10000:
            forms.append(f"{phrase}{g // 10000}万{(g % 10000) // 1000}千{unit}。")
        for output in forms:
            n += 1
            v = score_math(output, g, "", ex.language)
            if not (v.strict_correct and v.flexible_correct):
                wrong.append(output)
    assert n == 32 and wrong == []
