"""Checks for what a number and placeholder check cannot see (numbers swapped between the things they count, a
dropped question, a translator's chatter), and how often each rejects a good translation: MGSM's human
translations of the same English questions (2,500 pairs in 10 languages) must pass."""

import re
from collections import Counter

import pytest

from langmix.data.math_data import load_mgsm_exemplars
from langmix.records import Example
from langmix.translate.cache import TranslationCache
from langmix.translate.chatter import SENTENCE_END, postscript, preamble
from langmix.translate.pipeline import qa_table, translate_examples
from langmix.translate.structure import number_words_lost
from langmix.translate.validate import notes, number_word_lost, untranslated_part, validate
from tests.shared_data import shared
from tests.translate.conftest import TARGETS

LANGS = ["en", *TARGETS]
QUESTION = "Tom has 3 apples and Mary has 5 apples. Tom gives Mary 2 apples. How many apples does Mary have now?"


def _rate(pairs, reject) -> tuple[float, Counter]:
    by_lang = Counter(lang for src, tgt, lang in pairs if reject(src, tgt, lang))
    return sum(by_lang.values()) / len(pairs), by_lang


class Fixed:
    name, model_id, prompt_version = "t", "t", "v1"

    def __init__(self, answer: str, protects_numbers: bool = True):
        self.answer, self.protects_numbers = answer, protects_numbers

    def translate(self, requests):
        return [self.answer for _ in requests]


def _run(tmp_path, answer, protects=True, text=QUESTION, lang="es"):
    ex = Example(id="q-en", source_id="q", task="math", language="en", reference={"answer": 7},
                 messages=[{"role": "user", "content": text}])
    return translate_examples([ex], [lang], Fixed(answer, protects), TranslationCache(tmp_path / "c.sqlite"),
                              ["en", lang], retries=0, policy="flag")


def test_numbers_swapped_between_the_things_they_count_are_caught(tmp_path):
    """Placeholders returned swapped (⟦1⟧ where ⟦0⟧ was: "Tom tiene 5 ... María tiene 3") kept the multiset of
    numbers and passed."""
    swapped = "Tom tiene ⟦1⟧ manzanas y María tiene ⟦0⟧ manzanas. Tom le da a María ⟦2⟧ manzanas. ¿Cuántas " \
              "manzanas tiene María ahora?"
    out, qa = _run(tmp_path, swapped)
    assert dict(qa["es"].reasons) == {"numbers_swapped": 1} and out[0].messages[0]["content"].startswith(
        "Tom tiene 5 manzanas y María tiene 3")
    same = swapped.replace("⟦1⟧", "#").replace("⟦0⟧", "⟦1⟧").replace("#", "⟦0⟧")
    _, qa = _run(tmp_path / "b", same)
    assert dict(qa["es"].reasons) == {} and qa["es"].passed == 1 and not qa["es"].notes


def test_a_legitimate_reordering_passes_and_is_counted(tmp_path):
    """Word order changes between languages: numbers that count different things may change order (German puts
    the price before the quantity here); such an example passes, with a note counted in qa.md."""
    source = "Terry eats 2 yogurts a day. They are on sale at 4 yogurts for $5.00. How much does he spend?"
    german = "Terry isst 2 Joghurts pro Tag. Sie sind für 5,00 US-Dollar für 4 Joghurts im Angebot. Wie viel " \
             "gibt er aus?"
    assert validate(source, german, "de", LANGS) == [] and notes(source, german, "de") == ["numbers_reordered"]
    out, qa = _run(tmp_path, german, protects=False, text=source, lang="de")
    assert qa["de"].passed == 1 and qa["de"].notes == {"numbers_reordered": 1}
    assert out[0].reference["translation_notes"] == ["numbers_reordered"]
    assert "| numbers_reordered 1 |" in qa_table(qa)


def test_number_order_checks_on_human_translations(mgsm_pairs):
    swapped, by_lang = _rate(mgsm_pairs, lambda s, t, lang: "numbers_swapped" in validate(s, t, lang, LANGS,
                                                                                         detected=lang))
    print(f"numbers_swapped on MGSM human translations: {swapped:.4f} {dict(by_lang)}")
    assert len(mgsm_pairs) == 2500 and sum(by_lang.values()) <= 2  # measured: 1 (fr, a clause moved first)
    reordered, by_lang = _rate(mgsm_pairs, lambda s, t, lang: "numbers_reordered" in notes(s, t, lang))
    print(f"numbers_reordered (a note, not a failure) on MGSM: {reordered:.4f} {dict(sorted(by_lang.items()))}")
    assert 0.03 <= reordered <= 0.08 and by_lang["bn"] > 20 > by_lang["es"]  # measured 0.050 (bn 31, te 30, es 2)


@pytest.mark.parametrize("target, lang, lost", [
    ("Tom tiene 3 manzanas y María tiene 5 manzanas. Tom le da a María 2 manzanas.", "es", True),
    ("Tom tiene 3 manzanas y María tiene 5 manzanas. Tom le da a María 2 manzanas. ¿Cuántas manzanas tiene María "
     "ahora?", "es", False),
    ("トムはリンゴを3個、メアリーは5個持っています。トムはメアリーに2個あげます。", "ja", True),
    ("トムはリンゴを3個、メアリーは5個持っています。トムはメアリーに2個あげます。メアリーは今リンゴを何個持っていますか？",
     "ja", False),
    ("لدى توم 3 تفاحات ولدى ماري 5 تفاحات. يعطي توم ماري تفاحتين 2. كم تفاحة لدى ماري الآن؟", "ar", False),
    ("ทอมมีแอปเปิ้ล 3 ผล และแมรี่มีแอปเปิ้ล 5 ผล ทอมให้แอปเปิ้ลแมรี่ 2 ผล", "th", True),
    ("ทอมมีแอปเปิ้ล 3 ผล และแมรี่มีแอปเปิ้ล 5 ผล ทอมให้แอปเปิ้ลแมรี่ 2 ผล ตอนนี้แมรี่มีแอปเปิ้ลกี่ผล", "th", False),
])
def test_a_dropped_question_is_caught(target, lang, lost):
    """A translation that dropped the question ("How many apples does Mary have now?") passed: only a length
    ratio bounded it. Thai writes no question mark: its question words stand for it."""
    assert ("question_lost" in validate(QUESTION, target, lang, LANGS, detected=lang)) == lost


def test_question_check_on_human_translations(mgsm_pairs):
    rate, by_lang = _rate(mgsm_pairs, lambda s, t, lang: "question_lost" in validate(s, t, lang, LANGS,
                                                                                     detected=lang))
    print(f"question_lost on MGSM human translations: {rate:.4f} {dict(by_lang)}")
    assert sum(by_lang.values()) <= 2  # measured 2: es and fr write "calculate ...?" as "calcule ... ."


SPANISH = "Tom tiene 3 manzanas y María tiene 5 manzanas. Tom le da a María 2 manzanas. ¿Cuántas manzanas tiene " \
          "María ahora?"


@pytest.mark.parametrize("target, lang, reason", [
    (f"Claro, aquí tienes la traducción al español: {SPANISH}", "es", "preamble"),
    (f"{SPANISH}\n\nNota: he conservado los marcadores tal como estaban.", "es", "postscript"),
    (f"{SPANISH} (Nota: he conservado los marcadores.)", "es", "postscript"),
    (f"Voici la traduction : {SPANISH}", "es", "preamble"),
    (f"Bien sûr ! {SPANISH}", "es", "preamble"),
    (f"Natürlich! {SPANISH}", "es", "preamble"),
    (f"Hier ist die Übersetzung:\n{SPANISH}", "es", "preamble"),
    (f"{SPANISH}\n\nIch habe die Platzhalter beibehalten.", "es", "postscript"),
    ("以下是翻译：汤姆有3个苹果，玛丽有5个苹果。汤姆给了玛丽2个苹果。玛丽现在有几个苹果？", "zh", "preamble"),
    ("トムはリンゴを3個、メアリーは5個持っています。トムはメアリーに2個あげます。メアリーは今リンゴを何個持っていますか？\n"
     "（注：プレースホルダーはそのままにしました。）", "ja", "postscript"),
    ("Конечно! Вот перевод на русский: У Тома 3 яблока, а у Мэри 5 яблок. Том даёт Мэри 2 яблока. Сколько яблок "
     "теперь у Мэри?", "ru", "preamble"),
    (f"{SPANISH}\n---\nEspero que te sirva.", "es", "postscript"),  # after a separator line
    (f"{SPANISH}\n***", "es", "postscript"),
    (f"{SPANISH} ¡Espero que te ayude!", "es", "postscript"),  # a closing wish
    (f"{SPANISH}\nHope this helps.", "es", "postscript"),
    ("汤姆有3个苹果，玛丽有5个苹果。汤姆给了玛丽2个苹果。玛丽现在有几个苹果？希望这对你有帮助。", "zh", "postscript"),  # a sentence more
    (f"Español: {SPANISH}", "es", "preamble"),  # a language's name as a label
    (f"**Spanish (Spain):** {SPANISH}", "es", "preamble"),
    (f"ES: {SPANISH}", "es", "preamble"),
    ("日本語：トムはリンゴを3個、メアリーは5個持っています。トムはメアリーに2個あげます。メアリーは今リンゴを何個持っていますか？",
     "ja", "preamble"),
    (SPANISH, "es", None),
])
def test_a_translators_chatter_in_any_language_at_either_end_is_caught(target, lang, reason):
    """Only English chatter at the start was caught: "Claro, aquí tienes la traducción al español: ..." and a
    trailing "\\n\\nNota: he conservado los marcadores..." passed into the training data."""
    reasons = validate(QUESTION, target, lang, LANGS, detected=lang)
    assert [r for r in reasons if r in ("preamble", "postscript")] == ([reason] if reason else [])


@pytest.mark.parametrize("source, target", [
    ("Note: buy 2 liters of milk. How much?", "Nota: compra 2 litros de leche. ¿Cuánto?"),  # the source's own note
    ("Anna translates 3 pages an hour. How many pages in 2 hours?",
     "Anna traduce 3 páginas por hora. ¿Cuántas páginas en 2 horas?"),  # the source's own "translate"
    ("Sure, Tom has 3 apples.", "Claro, Tom tiene 3 manzanas."),  # the source's own opener
    ("A box (the big one) holds 3 pens.", "Una caja contiene 3 bolígrafos (la grande)."),  # a parenthesis moved
    ("Step 1: add 2 and 3.\n\nStep 2: double it.", "Paso 1: suma 2 y 3.\n\nPaso 2: duplícalo."),  # its paragraphs
    ("Tom has 2 + 3 = 5 pens.\nHe buys 4.", "Tom tiene 2 + 3 = 5 bolígrafos.\n\nCompra 4."),  # lines spaced out
    ("Spanish: spoken by 500 million people.", "Español: lo hablan 500 millones de personas."),  # its own label
    ("Yes: Tom has 3 apples.", "Sí: Tom tiene 3 manzanas."),
    ("I hope it rains: Tom has 3 umbrellas.", "Espero que llueva: Tom tiene 3 paraguas."),  # its own wish
    ("Step 1: add 2 and 3.\n---\nStep 2: double it.", "Paso 1: suma 2 y 3.\n---\nPaso 2: duplícalo."),
])
def test_what_the_source_says_itself_is_no_chatter(source, target):
    assert not {"preamble", "postscript"} & set(validate(source, target, "es", LANGS, detected="es"))


@pytest.mark.parametrize("source, target, lang", [
    ("Jan wants to save $500 in 5 weeks. How much must she save each week?", "简希望能在5周内存下500美元。她每周必须存多少钱？",
     "zh"),
    ("Maria wishes to buy 3 dresses at $20 each. How much will she pay?", "玛丽亚希望能买3件连衣裙，每件20美元。她要付多少钱？",
     "zh"),
    ("The shop expects to sell 40 cakes a day. How many cakes does it sell in 7 days?",
     "दुकान को एक दिन में 40 केक बेचने की उम्मीद है। 7 दिनों में वह कितने केक बेचती है?", "hi"),
    ("The team expects to win 5 of its 8 games. How many games does it expect to lose?",
     "টিমটি তার 8টি খেলার মধ্যে 5টি জিতবে বলে আশা করি। কতগুলি খেলা হারবে বলে আশা করা হচ্ছে?", "bn"),
    ("Jan wants to save $500 in 5 weeks.", "简希望能在5周内存下500美元。", "zh"),  # one line: its last line is all
])
def test_a_wish_the_source_states_in_other_words_is_no_closing_wish(source, target, lang):
    """The closing-wish check searched the whole last line, which in a one-line translation is the whole text:
    "简希望能在5周内存下500美元。" (for "Jan wants to save ...") and "...बेचने की उम्मीद है।" (for "The shop expects to
    sell ...") were refused as postscript. A closing wish is the last sentence, one the source has no match for."""
    assert not postscript(source, target) and "postscript" not in validate(source, target, lang, [*LANGS, lang],
                                                                           detected=lang)


def test_chatter_checks_on_human_translations(mgsm_pairs):
    rate, by_lang = _rate(mgsm_pairs, lambda s, t, lang: {"preamble", "postscript"} & set(
        validate(s, t, lang, LANGS, detected=lang)))
    print(f"preamble/postscript on MGSM human translations: {rate:.4f} {dict(by_lang)}")
    assert sum(by_lang.values()) == 0  # measured 0; a parenthesis moved to the end (10 pairs) is allowed
    exemplars = load_mgsm_exemplars(shared("mgsm", "exemplars.json"))
    pairs = [(source, target) for lang in TARGETS for english, translated in zip(exemplars["en"], exemplars[lang])
             for source, target in zip(english, translated)]  # each exemplar's question and step-by-step answer
    assert len(pairs) == 160 and [p for p in pairs if preamble(*p) or postscript(*p)] == []  # measured 0


JANET = "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her " \
        "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck " \
        "egg. How much in dollars does she make every day at the farmers' market?"
JANET_ES = "Los patos de Janet ponen ⟦0⟧ huevos por día. Ella come tres en el desayuno todas las mañanas y usa " \
           "cuatro para hornear magdalenas para sus amigos todos los días. Vende lo que sobra en el mercado de " \
           "productores diariamente a ⟦1⟧ el huevo fresco de pato. ¿Cuánto gana en dólares todos los días en el " \
           "mercado de productores?"


@pytest.mark.parametrize("answer, reason", [
    (JANET_ES, None),
    ("<think>The user wants Spanish, keep placeholders. " + JANET_ES, "reasoning_left"),
    (JANET_ES.split("¿")[0] + "How much in dollars does she make every day at the farmers' market?",
     "untranslated_part"),  # the whole text reads as Spanish
    (JANET_ES.replace("Ella come tres en el desayuno todas las mañanas y usa cuatro para hornear magdalenas para sus "
                      "amigos todos los días. ", ""), "number_word_lost"),  # a sentence dropped, length in bounds
    ("Español: " + JANET_ES, "preamble"),
    (JANET_ES + "\n---\nEspero que te sirva.", "postscript"),
])
def test_bad_translations_that_passed_every_check_are_excluded(tmp_path, answer, reason):
    """Each bad answer (the placeholders as the pipeline sent them) was kept; each is excluded with its reason,
    counted in qa.md, while the good one passes."""
    ex = Example(id="q-en", source_id="q", task="math", language="en", reference={"answer": 18},
                 messages=[{"role": "user", "content": JANET}])
    out, qa = translate_examples([ex], ["es"], Fixed(answer), TranslationCache(tmp_path / "c.sqlite"), ["en", "es"],
                                 retries=0)
    assert (qa["es"].passed, qa["es"].excluded, len(out)) == ((1, 0, 1) if reason is None else (0, 1, 0))
    assert dict(qa["es"].reasons) == ({reason: 1} if reason else {})
    if reason:
        assert f"| {reason} 1 |" in qa_table(qa)


@pytest.mark.parametrize("source, target, lang, left", [
    ("Raymond and Samantha are cousins. Raymond was born 6 years before Samantha.",
     "Raymond y Samantha son primos. Raymond nació 6 años antes que Samantha.", "es", False),  # names read as English
    ("Book a meeting called 'Quarterly budget review with the team' for 3 pm.",
     "Reserva una reunión llamada 'Quarterly budget review with the team' a las 15 h.", "es", False),  # quoted as is
    ("Tom has 3 apples. How many apples does Tom have now?", "トムはリンゴを3個持っています。How many apples does Tom have now?",
     "ja", True),
    ("Tom has 3 apples and 5 pears. He eats 2 pears every morning.",
     "Tom tiene 3 manzanas y 5 peras.\nHe eats 2 pears every morning.", "es", True),
    ("Tom has 3 apples and 5 pears. He eats 2 pears.", "Tom tiene 3 manzanas y 5 peras. He eats 2 pears.", "es",
     False),  # too few letters to judge ("eats pears": the source's capitalised words are left out)
])
def test_a_sentence_left_in_english_is_caught(source, target, lang, left):
    assert untranslated_part(source, target, lang) == left


def test_untranslated_part_on_human_translations(mgsm_pairs):
    """No sentence of MGSM's human translations reads as left in English; with each final question replaced by the
    English one, nearly all are caught (the rest are short questions: "How much will she spend?")."""
    rate, by_lang = _rate(mgsm_pairs, lambda s, t, lang: "untranslated_part" in validate(s, t, lang, LANGS,
                                                                                         detected=lang))
    print(f"untranslated_part on MGSM human translations: {rate:.4f} {dict(by_lang)}")
    assert sum(by_lang.values()) == 0  # measured 0
    planted = []
    for src, tgt, lang in mgsm_pairs:
        question = re.split(r"(?<=[.!?])\s+", src.strip())
        parts = [p for p in re.split(r"(?<=[.!?。？！।])\s*", tgt.strip()) if p]
        if len(question) > 1 and len(parts) > 1:
            planted.append((src, " ".join(parts[:-1]) + " " + question[-1], lang))
    caught, _ = _rate(planted, untranslated_part)
    print(f"final question left in English caught: {caught:.4f} of {len(planted)}")
    assert len(planted) == 2263 and caught >= 0.98  # measured 0.988 (2,236)


@pytest.mark.parametrize("source, target, lang, lost, refused", [
    ("Tom has two cats. He buys three more.", "Tom tiene dos gatos. Compra tres más.", "es", [], False),
    ("Tom has two cats. He buys three more.", "Tom tiene 2 gatos. Compra 3 más.", "es", [], False),  # as digits
    ("Tom has two cats. He buys three more.", "Tom tiene gatos.", "es", [2.0, 3.0], True),
    ("Tom has two cats. He buys three more.", "Tom tiene dos gatos. Compra más.", "es", [3.0], False),  # reworded
    ("Tom has two cats. He buys three more.", "Tom tiene dos gatos.", "es", [3.0], True),  # a sentence fewer
    ("Tom has 3 cats. Twenty-two mice and two-thirds of a cheese.", "Tom tiene 3 gatos. 22 ratones y 2/3 de un "
     "queso.", "es", [], False),  # parts of other numbers
    ("У Тома два кота.", "У Тома двое котов.", "ru", [], False),
    ("Mary has two cats and three dogs.", "メアリーは猫を二匹と犬を三匹飼っています。", "ja", [], False),
    ("Tom has two cats. He buys three more.", "لدى توم قطط.", "ar", [], False),  # no words for Arabic here
    ("He read one hundred and twelve pages. Then he read three more.", "Leyó 112 páginas y luego 3 más.", "es", [],
     False),  # "twelve" is part of 112, not a 12 of its own
    ("It costs two hundred and two dollars. She pays with bills.", "Cuesta 202 dólares y paga con billetes.", "es",
     [], False),
    ("A hundred and two birds, two dozen eggs and two and a half pies.", "102 pájaros, 24 huevos y 2,5 tartas.", "es",
     [], False),
    ("It costs two hundred and two dollars. She pays with three bills.", "Cuesta 202 dólares.", "es", [3.0], True),
])
def test_a_dropped_sentence_with_number_words_is_caught(source, target, lang, lost, refused):
    assert number_words_lost(source, target, lang) == lost and number_word_lost(source, target, lang) == refused


def test_number_word_check_on_human_translations(mgsm_pairs):
    """MGSM's human translations lose a number word 6 times (reworded, omitted), never two and never one with a
    sentence fewer (Thai aside); with one sentence dropped (one that writes a number word), a drop is caught where
    its number's value is nowhere else in the translation."""
    rate, by_lang = _rate(mgsm_pairs, lambda s, t, lang: "number_word_lost" in validate(s, t, lang, LANGS,
                                                                                        detected=lang))
    print(f"number_word_lost on MGSM human translations: {rate:.4f} {dict(by_lang)}")
    assert sum(by_lang.values()) == 0  # measured 0

    def sentences(text):
        return [p for p in SENTENCE_END.split(text.strip()) if p.strip()]

    planted = []
    for src, tgt, lang in mgsm_pairs:
        ss, ts = sentences(src), sentences(tgt)
        if len(ss) == len(ts) and lang != "th":  # sentence i translates sentence i
            planted += [(src, " ".join(ts[:i] + ts[i + 1:]), lang) for i in range(len(ss) - 1)
                        if number_words_lost(ss[i], "", lang)]
    caught, _ = _rate(planted, number_word_lost)
    print(f"a sentence with a number word dropped, caught: {caught:.4f} of {len(planted)}")
    assert len(planted) > 600 and caught >= 0.55  # measured 0.59 of 682
