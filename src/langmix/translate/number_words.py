"""English numbers written as words, which a translator may legitimately write as digits ("three" -> 3).

`word_numbers` is a multiset: each occurrence allows its own value once ("three cats and three dogs" allows two
3s). Words that are not numbers allow nothing ("a", "per", "each", "every", "hour", "week", "percent"), except
by these narrow rules:
- a run of number words is one number: "twenty-five" -> 25, "three hundred and five" -> 305, "two dozen" -> 24,
  and "a"/"an" before a scale counts one of it: "a dozen" -> 12, "a hundred" -> 100;
- "and a half" adds 0.5 to the number before it ("two and a half" -> 2.5); "half" alone is 0.5 and "quarter"
  0.25, and an ordinal is its number ("third" -> 3, so "one third" -> "1/3" passes);
- "a"/"an"/"per"/"each"/"every" directly before a unit of time or measure allows a 1 ("a day" -> "1日",
  "per hour" -> "1時間あたり"), and before a fraction word ("a third" -> "1/3");
- "once", "single" -> 1; "twice", "double", "pair", "couple" -> 2; "triple" -> 3;
- a fraction word after a number word or "a"/"an" also allows its denominator ("one half" -> "1/2",
  "two-thirds" -> "2/3", "a quarter" -> "1/4");
- into languages that count with classifiers (Japanese, Chinese, Korean: "a vine" -> "1つのつる", "each" ->
  "1人あたり"), "a"/"an"/"per"/"each"/"every" allow a 1 wherever they stand.
Conversions ("an hour" -> "60 minutes", "a week" -> "7 days") are not allowed: they change the numbers.

`standalone_numbers` reads the same runs for the other direction: the numbers two to twelve the source writes as a
word of their own ("She eats three"), which a translation must keep, in digits or in the target language's words
(`NUMBER_WORDS`, stems for the 10 MGSM languages).
"""

from __future__ import annotations

import re
from collections import Counter

_SMALL = {w: float(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: float(10 * i) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(),
                                                 start=2)}
_SCALES = {"dozen": 12.0, "hundred": 100.0, "thousand": 1e3, "million": 1e6, "billion": 1e9}
_ORDINALS = {w: float(i) for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split(), start=1)}
_SINGLE = {"once": 1.0, "single": 1.0, "twice": 2.0, "double": 2.0, "pair": 2.0, "couple": 2.0, "triple": 3.0,
           "half": 0.5, "quarter": 0.25, **_ORDINALS}
_ONE = {"a", "an", "per", "each", "every"}
_UNITS = set(
    "second minute hour day night week month year decade century "
    "dollar cent euro pound penny dime nickel yen rupee "
    "meter metre kilometer kilometre centimeter centimetre millimeter mile foot feet inch yard "
    "gram kilogram kg ounce ton liter litre milliliter gallon quart pint cup tablespoon teaspoon".split())
_DENOMINATORS = {"half": 2.0, "halves": 2.0, "quarter": 4.0, "quarters": 4.0,
                 **{w + plural: v for w, v in _ORDINALS.items() if v >= 3 for plural in ("", "s")}}
_FRACTIONS = set(_DENOMINATORS)
CLASSIFIER_LANGUAGES = {"ja", "zh", "ko"}
_WORD = re.compile(r"[a-z]+")


def _unit(word: str) -> bool:
    return word in _UNITS or (word.endswith("s") and word[:-1] in _UNITS)


def word_numbers(source: str, target_lang: str = "") -> Counter:
    """The numbers an English text writes as words, one entry per occurrence (rounded like number_multiset), that
    a translation into `target_lang` may write as digits."""
    words = _WORD.findall(source.lower())
    out: Counter = Counter()
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in _SMALL or w in _TENS or (w in ("a", "an") and nxt in _SCALES):
            value, i = _run(words, i)
            out[round(value, 6)] += 1
            if i < len(words) and words[i] in _DENOMINATORS:  # "two-thirds" -> 2/3
                out[_DENOMINATORS[words[i]]] += 1
                i += 1
            continue
        if w == "half" and nxt in ("a", "an") and i + 2 < len(words) and words[i + 2] in _SCALES:
            out[round(0.5 * _SCALES[words[i + 2]], 6)] += 1  # "half a dozen" -> 6
            i += 3
            continue
        if w in _SINGLE:
            out[round(_SINGLE[w], 6)] += 1
        elif w in _SCALES:  # "dozens of", "hundreds of": no count of its own
            pass
        elif w in _ONE and (_unit(nxt) or nxt in _FRACTIONS or target_lang in CLASSIFIER_LANGUAGES):
            out[1.0] += 1
            if nxt in _DENOMINATORS and w in ("a", "an"):  # "a quarter" -> 1/4
                out[_DENOMINATORS[nxt]] += 1
                i += 1
        i += 1
    return out


def _run(words: list[str], i: int) -> tuple[float, int]:
    """Parse the number-word run starting at words[i]; returns (value, index after the run)."""
    total = current = 0.0
    start = i
    while i < len(words):
        w, nxt = words[i], words[i + 1] if i + 1 < len(words) else ""
        if i == start and w in ("a", "an"):
            current = 1.0
        elif w in _TENS and current % 100 == 0:
            current += _TENS[w]
        elif w in _SMALL and (current % 100 == 0 or (current % 100 >= 20 and current % 10 == 0 and _SMALL[w] < 10)):
            current += _SMALL[w]
        elif w in _SCALES:
            if _SCALES[w] >= 1000:
                total, current = total + (current or 1.0) * _SCALES[w], 0.0
            else:
                current = (current or 1.0) * _SCALES[w]
        elif w == "and" and nxt == "a" and i + 2 < len(words) and words[i + 2] == "half":
            return total + current + 0.5, i + 3  # "two and a half"
        elif w == "and" and words[i - 1] in _SCALES and (nxt in _SMALL or nxt in _TENS):
            pass  # "three hundred and five"
        else:
            break
        i += 1
    return total + current, i


def standalone_numbers(source: str) -> set[float]:
    """The numbers two to twelve an English text writes as one word standing alone as a number ("She eats three
    for breakfast"): not a part of a longer run ("one hundred and twelve" is 112, "twenty-two" 22, "two dozen" 24,
    "two and a half" 2.5) nor a fraction's numerator ("two-thirds"), nor before "hundreds"/"dozens"."""
    words = _WORD.findall(source.lower())
    out: set[float] = set()
    i = 0
    while i < len(words):
        w, nxt = words[i], words[i + 1] if i + 1 < len(words) else ""
        if w in _SMALL or w in _TENS or (w in ("a", "an") and nxt in _SCALES):
            value, end = _run(words, i)
            after = words[end] if end < len(words) else ""
            if end == i + 1 and 2 <= value <= 12 and after not in _DENOMINATORS and \
                    not (after.endswith("s") and after[:-1] in _SCALES):
                out.add(value)
            i = end
        else:
            i += 1
    return out


# The numbers two to twelve as each language writes them as words, as stems (inflected and counted forms:
# Russian двух/двое/вдвое, Swahili mbili/miwili/wawili, Telugu ఇద్దరు, Japanese ふたつ; "pair" and "double" for two).
# "One" is left out (it is also an article); languages not listed are not checked. Measured on MGSM's human
# translations: a source's number word is missing from them 6 times in 2,500 (omitted or reworded), never two of
# them, never one with a sentence fewer (Thai, which marks no sentence end, aside).
NUMBER_STEMS: dict[str, list[str]] = {
    "es": ["dos|ambos|ambas|doble|par", "tres|triple", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez",
           "once", "doce"],
    "fr": ["deux|double|paire|couple", "trois|triple", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
           "douze"],
    "de": ["zwei|beide|doppel|paar", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf",
           "zwölf"],
    "ru": ["два|две|двух|двум|двое|вдвое|дважды|пар|оба|обе", "три|трех|трёх|тремя|трое|трои|втрое", "четыр|четвер",
           "пят", "шест", "сем", "восем|восьм", "девят", "десят", "одиннадцат", "двенадцат"],
    "zh": ["二|两|俩|双|对", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"],
    "ja": ["二|両|ふた|双|ペア", "三|みっ", "四|よっ|よん", "五|いつ", "六|むっ", "七|なな", "八|やっ", "九|ここの",
           "十|とお", "十一", "十二"],
    "th": ["สอง|คู่", "สาม", "สี่", "ห้า", "หก", "เจ็ด", "แปด", "เก้า", "สิบ", "สิบเอ็ด", "สิบสอง"],
    "sw": ["bili|wili|pili|jozi", "tatu", "nne", "tano", "sita", "saba", "nane", "tisa", "kumi", "kumi na moja",
           "kumi na mbili"],
    "bn": ["দুই|দুটি|দুটো|দু|জোড়া|দ্বিগুণ", "তিন", "চার", "পাঁচ", "ছয়|ছয়|ছ", "সাত", "আট", "নয়|নয়", "দশ",
           "এগারো", "বারো"],
    "te": ["రెండు|ఇద్దరు|ఇద్దరి|జత|రెట్టింపు|రెం", "మూడు|ముగ్గురు|మూడ", "నాలుగు|నలుగురు|నాలుగ",
           "ఐదు|అయిదు|ఐదుగురు", "ఆరు", "ఏడు", "ఎనిమిది", "తొమ్మిది", "పది", "పదకొండు", "పన్నెండు"],
}
NUMBER_WORDS: dict[str, dict[float, re.Pattern]] = {
    lang: {float(i): re.compile(stem, re.I) for i, stem in enumerate(stems, start=2)}
    for lang, stems in NUMBER_STEMS.items()}
