"""The validators measured on real human translations (MGSM) and on planted corruptions of them."""

import random

import pytest

from langmix.data.math_data import load_mgsm
from langmix.translate.structure import numbers_preserved, protect, restore
from langmix.translate.validate import validate
from tests.shared_data import shared
from tests.translate.conftest import TARGETS

LANGS = ["en", *TARGETS]


def _pairs():
    mgsm = load_mgsm(shared("mgsm"))
    english = {ex.source_id: ex.messages[-1]["content"] for ex in mgsm if ex.language == "en"}
    return [(english[ex.source_id], ex.messages[-1]["content"], ex.language) for ex in mgsm if ex.language != "en"]


def test_number_check_passes_human_translations():
    pairs = _pairs()
    failures = [(lang, why) for src, tgt, lang in pairs for ok, why in [numbers_preserved(src, tgt, lang)] if not ok]
    rate = 1 - len(failures) / len(pairs)
    print(f"number check on MGSM human translations: {len(pairs) - len(failures)}/{len(pairs)} = {rate:.3f}")
    assert len(pairs) == 2500 and rate >= 0.95


def corrupt(src: str, tgt: str, lang: str, kind: str, rng: random.Random) -> str:
    if kind == "drop_number":
        _, spans = protect(tgt)
        return tgt.replace(rng.choice(spans), "", 1) if spans else tgt[: len(tgt) // 2]
    if kind == "change_number":
        masked, spans = protect(tgt)
        if not spans:
            return tgt + " 7"
        i = rng.randrange(len(spans))
        spans[i] = str(int("".join(ch for ch in spans[i] if ch.isdigit())[:6] or 0) + 1)
        return restore(masked, spans)[0]
    if kind == "wrong_language":
        return src if lang != "en" else tgt
    if kind == "truncated":
        return tgt[: max(1, len(tgt) // 4)]
    if kind == "untranslated":
        return src
    raise ValueError(kind)


def test_planted_corruptions_are_caught():
    rng = random.Random(0)
    pairs = _pairs()
    kinds = ["drop_number", "change_number", "wrong_language", "truncated", "untranslated"]
    caught = total = 0
    by_kind = {k: [0, 0] for k in kinds}
    clean = [(s, t, lang) for s, t, lang in pairs if not validate(s, t, lang, LANGS)]
    for src, tgt, lang in rng.sample(clean, 500):
        for kind in kinds:
            bad = corrupt(src, tgt, lang, kind, rng)
            if bad == tgt:
                continue
            hit = bool(validate(src, bad, lang, LANGS))
            caught += hit
            total += 1
            by_kind[kind][0] += hit
            by_kind[kind][1] += 1
    print(f"planted corruptions caught: {caught}/{total} = {caught / total:.3f}; by kind {by_kind}")
    assert caught / total >= 0.95
    print(f"human translations passing every validator: {len(clean)}/{len(pairs)}")


def test_validator_reason_codes():
    src = "Tom has 3 apples and buys 4 more. How many apples does he have?"
    assert validate(src, "Tom tiene 3 manzanas y compra 4 más. ¿Cuántas manzanas tiene?", "es", LANGS) == []
    assert "numbers_changed" in validate(src, "Tom tiene 3 manzanas y compra 5 más. ¿Cuántas tiene?", "es", LANGS)
    assert "copied_source" in validate(src, src, "es", LANGS)
    assert "length_ratio" in validate(src, "Tom 3 4", "es", LANGS)
    assert validate(src, "   ", "es", LANGS) == ["empty"]
    assert "wrong_language" in validate(src, "Tom a 3 pommes et en achète 4 de plus. Combien de pommes a-t-il ?",
                                        "es", LANGS)
    assert "placeholder_lost" in validate(src, "Tom tiene ⟦0⟧ manzanas y compra 4 más. ¿Cuántas tiene?", "es", LANGS)


def test_template_placeholders_and_code_must_survive():
    src = "Hi {user_name}, your order {order_id} ships today. Run `pip install shop` and print %s for 50% off."
    good = "Hola {user_name}, tu pedido {order_id} sale hoy. Ejecuta `pip install shop` e imprime %s con 50% menos."
    assert "placeholder_lost" not in validate(src, good, "es", LANGS)
    for bad in (good.replace("{user_name}", "{nombre}"), good.replace(" {order_id}", ""),
                good.replace("`pip install shop`", "`pip instalar tienda`"), good.replace("%s", "")):
        assert "placeholder_lost" in validate(src, bad, "es", LANGS), bad
    # percentages and hyphenated words are not printf placeholders
    assert validate("A 50% discount on a 20%-fat milk.", "Un descuento del 50 % en leche al 20 %.", "es",
                    LANGS) == []


@pytest.mark.parametrize("source, target, chatter", [
    ("Tom has 3 apples.", "Sure! Here is the Spanish translation:\n\nTom tiene 3 manzanas.", True),
    ("Tom has 3 apples.", "Here is the translation: Tom tiene 3 manzanas.", True),
    ("Tom has 3 apples.", "Aquí está la traducción:\nTom tiene 3 manzanas.", True),
    ("Tom has 3 apples.", "Tom tiene 3 manzanas.", False),
    ("Ingredients:\nflour and 2 eggs", "Ingredientes:\nharina y 2 huevos", False),  # the source's own heading
    ("Note: buy 2 liters of milk", "Nota: compra 2 litros de leche", False),
    ("Okay, so Tom has 3 apples: how many?", "Bien, Tom tiene 3 manzanas: ¿cuántas?", False),
    ("Tom has 3 apples.", "Sure, Tom tiene 3 manzanas.", True),  # no colon: passed
    ("Tom has 3 apples.", "Certainly! Tom tiene 3 manzanas.", True),
    ("Tom has 3 apples.", "Here is the Spanish translation of the text Tom tiene 3 manzanas.", True),
    ("Sure, Tom has 3 apples.", "Sure, Tom tiene 3 manzanas.", False),  # the source's own opener
    ("Surely Tom has 3 apples.", "Sure Tom tiene 3 manzanas.", False),  # a word, not an opener
    ("Here is the bakery: it sells 3 cakes.", "Aquí está la panadería: vende 3 pasteles.", False),
])
def test_a_translators_chatter_before_the_translation_is_a_preamble(source, target, chatter):
    """'Sure! Here is the translation:' passed every check, since the rest was in the target language, and went
    into the training data."""
    assert ("preamble" in validate(source, target, "es", LANGS)) == chatter


@pytest.mark.parametrize("source, target, lang, ok", [
    # words that are not numbers allowed any 1, 7, 60 or 100 the translation added
    ("Buy a dozen eggs.", "Compra 1 huevos.", "es", False),
    ("Buy a dozen eggs.", "Compra 12 huevos.", "es", True),
    ("She has three cats and a dog.", "Tiene 1 gatos y 3 perros.", "es", False),
    ("She has three cats and a dog.", "Tiene 3 gatos y un perro.", "es", True),
    ("He ran for an hour every week and 2 miles per day.", "Corrió 7 horas cada 60 semanas y 2 millas por 1 día.",
     "es", False),
    ("He ran for an hour every week.", "Corrió 60 minutos cada semana.", "es", False),  # a conversion
    ("A 50 percent discount.", "Un descuento del 50 por ciento, 100 veces.", "es", False),
    # a multiset: each number word allows its value once
    ("She has three cats and three dogs.", "Tiene 3 gatos y 3 perros.", "es", True),
    ("She has three cats and a dog.", "Tiene 3 gatos y 3 perros.", "es", False),
    # the narrow rules
    ("Twenty-five cats, three hundred and five dogs.", "25 gatos, 305 perros.", "es", True),
    ("Two and a half hours, half a dozen eggs.", "2,5 horas, 6 huevos.", "es", True),
    ("He works 3 hours a day.", "彼は1日3時間働きます。", "ja", True),
    ("One third walk and two-thirds run.", "1/3 camina y 2/3 corre.", "es", True),
    ("A vine gives 3 tomatoes.", "1つのつるから3つのトマト。", "ja", True),  # counted with a classifier
    ("A vine gives 3 tomatoes.", "Una vid da 3 tomates y 1 más.", "es", False),
])
def test_number_words_allow_only_their_own_values(source, target, lang, ok):
    """Any added number equal to any number word's value passed, and `a`, `per`, `week`, `hour`, `percent` were
    number words: "a dozen eggs" -> "1 huevos" passed."""
    assert numbers_preserved(source, target, lang)[0] == ok


def test_leading_dot_decimals_are_protected():
    """`.5` (GSM8K's `18*.5`) was left unprotected, so a translator could drop or rewrite it."""
    masked, spans = protect("Each dog takes .5 hours, so 18*.5 = 9 hours; v2.5 costs $.75.")
    assert spans == [".5", "18*.5 = 9", "2.5", "$.75"] and ".5" not in masked


def test_a_word_in_a_formulas_text_may_change_and_is_no_placeholder():
    """`$\\text{apples} \\times 4$` -> `$\\text{manzanas} \\times 4$` was refused as placeholder_lost: the template
    check read `{apples}` inside `\\text{}` as a placeholder, though formulas are checked on their own and the README
    says the words in `\\text{}` may change (docs probe). A real placeholder outside a formula is still checked."""
    from langmix.translate.structure import templates_preserved

    assert templates_preserved(r"Ana has $\text{apples} \times 4$.", r"Ana tiene $\text{manzanas} \times 4$.")
    assert not templates_preserved(r"Send {name} $\text{x} + 1$.", r"Envía {nombre} $\text{x} + 1$.")
