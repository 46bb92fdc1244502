"""Contamination checks (issue 8.2): exact, normalised and source-id clashes are refused with their pairs;
n-gram near-duplicates in the same language are reported, not refused."""

import json
import logging
import random

import numpy as np
import pytest

from langmix.data.math_data import math_example
from langmix.lineage import NEAR_DUPLICATE_SHARE, LineageError, LineageReport, NearDuplicate, check_lineage
from langmix.lineage_questions import normalise_question

Q = "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins with four."


def ex(sid, question, lang="en"):
    return math_example(sid, lang, question, 1.0, "The answer is")


def test_normalise_question():
    assert normalise_question("  How MANY\u00a0eggs ,  does she sell？ ") == "how many eggs does she sell"
    assert normalise_question("ＡＢＣ１２") == "abc12"  # NFKC: full-width forms
    assert normalise_question("Straße") == normalise_question("STRASSE")  # casefold, not lower


@pytest.mark.parametrize("variant", [
    Q.replace("per day.", "per  day ."),  # one extra space (and before the full stop)
    Q.upper(),
    Q.replace("'", "’").replace(".", "!"),
    Q.replace("16", "\uff11\uff16"),  # full-width digits (NFKC)
])
def test_normalised_matches_are_refused_with_the_pair(variant):
    with pytest.raises(LineageError, match=r"1 evaluation items .*train-7-en / gsm8k-test-0-en "
                                           r"\(same question after normalising\)"):
        check_lineage([ex("train-7", variant)], [ex("gsm8k-test-0", Q)])


def test_exact_and_source_id_clashes_name_their_pairs():
    evaluation = [ex("e1", "How many cats?"), ex("e1", "Paka wangapi?", "sw"), ex("e2", "How many dogs?")]
    # A Spanish translation of e1 (no Spanish eval item: paired with e1's first eval example), an exact copy of e2.
    with pytest.raises(LineageError, match=r"2 evaluation items .*: e1-es / e1-en \(same source id\); "
                                           r"t2-en / e2-en \(same question\)"):
        check_lineage([ex("e1", "¿Cuántos gatos?", "es"), ex("t2", "How many dogs?"), ex("t3", "Other?")],
                      evaluation)


def test_clean_data_returns_an_empty_report():
    report = check_lineage([ex("t1", "How many cats does Ann have now?")], [ex("e1", Q)])
    assert report == LineageReport(n_train=1, n_eval=1, near_duplicates=[])


def test_near_duplicates_are_reported_not_refused(caplog):
    # 20 normalised words ("janet s ducks ...") -> 13 word 8-grams; changing the last word keeps 12 (92%).
    edited = Q.replace("four.", "five.")
    # Changing words 7 and 15 touches every one of the 13 grams: 0 shared.
    far = Q.replace("per day", "each day").replace("every morning", "each morning")
    other = "Tom has 12 apples and gives away 5 of them to his friends after school. How many are left?"
    evaluation = [ex("gsm8k-test-0", Q), ex("gsm8k-test-1", other)]
    with caplog.at_level(logging.WARNING, logger="langmix.mixtures"):
        report = check_lineage([ex("t1", edited), ex("t2", far), ex("t3", "How many pens?")], evaluation)
    assert report.near_duplicates == [NearDuplicate("t1-en", "gsm8k-test-0-en", "en", 0.923)]
    assert "1 training questions are near-duplicates" in caplog.text and "t1-en / gsm8k-test-0-en (92%)" in caplog.text
    assert NEAR_DUPLICATE_SHARE == 0.5
    # JSON-friendly (manifests store them)
    assert json.loads(json.dumps(report.near_duplicates)) == [["t1-en", "gsm8k-test-0-en", "en", 0.923]]


def test_near_duplicates_only_within_the_same_language():
    report = check_lineage([ex("t1", Q.replace("four.", "five."), "sw")], [ex("e1", Q, "en")])
    assert report.near_duplicates == []


def test_character_ngrams_for_languages_without_spaces():
    q = "珍妮特的鸭子每天下16个蛋。她每天早上吃三个作为早餐，每天用四个蛋为朋友们烤松饼。"
    edited = q.replace("松饼", "蛋糕")  # 2 of ~40 characters changed
    report = check_lineage([ex("t1", edited, "zh")], [ex("e1", q, "zh")])
    assert [(d.train_id, d.eval_id) for d in report.near_duplicates] == [("t1-zh", "e1-zh")]
    assert 0.5 <= report.near_duplicates[0].share < 1
    # Word 8-grams would see a single "word" (no spaces) and miss it: the char n-grams are what catches it.
    unrelated = "汤姆有12个苹果，放学后给了朋友5个。还剩几个？"
    assert check_lineage([ex("t2", unrelated, "zh")], [ex("e1", q, "zh")]).near_duplicates == []


def test_near_duplicate_check_scales():
    """10k train x 2.5k eval questions of ~40 words, 300 of them edited copies of eval questions.
    Measured: about 1.5 s on 2 shared CPU cores (no timed assertion)."""
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]

    def sentence() -> str:
        return " ".join(rng.choice(vocab) for _ in range(40)) + "?"

    evaluation = [ex(f"e{i}", sentence()) for i in range(2500)]
    train = [ex(f"t{i}", sentence()) for i in range(10_000)]
    for i in range(300):
        words = evaluation[i].messages[-1]["content"].split()
        words[-1] = "changed?"
        train[i * 30] = ex(f"t{i * 30}", " ".join(words))
    report = check_lineage(train, evaluation)
    assert len(report.near_duplicates) == 300
    assert report.near_duplicates[1] == NearDuplicate("t30-en", "e1-en", "en", 0.97)


def test_eval_time_recheck_warns_only_about_near_duplicates_not_recorded_at_build(tmp_path, caplog):
    from langmix.mixtures import recheck_lineage, write_mixture

    train = [ex("t1", Q.replace("four.", "five.")), ex("t3", "How many pens?")]
    evaluation = [ex("gsm8k-test-0", Q)]
    report = check_lineage(train, evaluation)
    write_mixture(tmp_path, train, {"near_duplicates_of_eval": [list(d) for d in report.near_duplicates]})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="langmix.mixtures"):
        assert recheck_lineage(tmp_path, evaluation) == report
    assert "near-duplicates" not in caplog.text  # reported when the mixture was built
    newer = evaluation + [ex("gsm8k-test-9", "How many pens?")]
    with pytest.raises(LineageError, match="t3-en / gsm8k-test-9-en"):
        recheck_lineage(tmp_path, newer)
    with caplog.at_level(logging.WARNING, logger="langmix.mixtures"):  # another eval set: a pair not recorded
        assert len(recheck_lineage(tmp_path, [ex("gsm8k-test-7", Q)]).near_duplicates) == 1
    assert "t1-en / gsm8k-test-7-en (92%)" in caplog.text
    assert f"{tmp_path}: 1 training questions are near-duplicates" in caplog.text  # which mixture


def test_a_near_duplicate_of_two_eval_questions_names_the_first_whatever_the_hash_seed():
    import os
    import subprocess
    import sys

    code = ("from tests.test_lineage import ex, Q; from langmix.lineage import check_lineage; "
            "r = check_lineage([ex('t1', Q.replace('four.', 'five.'))], [ex('e2', Q), ex('e1', Q + ' Extra.')]); "
            "print(r.near_duplicates[0].eval_id)")
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout.strip()
            for seed in (0, 1, 2, 3)}
    assert seen == {"e2-en"}


def test_normalised_questions_treat_unicode_punctuation_as_space():
    """Punctuation of any script (ASCII, CJK, Arabic, Devanagari danda, full-width) becomes a space; letters, marks
    and digits stay; NFKC folds full-width forms whether or not the text is ASCII."""
    from langmix.lineage_questions import normalise_question

    assert normalise_question("How  many, apples?!") == "how many apples"
    assert normalise_question("りんごは何個？「合計」。") == "りんごは何個 合計"
    assert normalise_question("كم تفاحة؟") == "كم تفاحة"
    assert normalise_question("कितने सेब हैं।") == "कितने सेब हैं"
    assert normalise_question("ＡＢＣ１２３！") == "abc123"
    assert normalise_question("naïve café—done") == "naïve café done"


def test_eval_time_recheck_trusts_the_recorded_check_only_for_the_same_data_and_eval_set(tmp_path, monkeypatch):
    """A mixture built against an eval set records that check; rechecking against the same eval set and the same
    training data returns the recorded report without parsing the mixture. A changed data file or another eval
    set is checked in full again (and a clash found then is refused)."""
    from langmix import mixtures
    from langmix.config import BudgetConfig
    from langmix.mixtures import MixtureSpec, build_mixture, recheck_lineage

    class Source:
        items = [ex(f"t{i}", f"How many pens does person {i} have in the box?") for i in range(12)]
        items[0] = ex("t0", Q.replace("four.", "five."))  # a near-duplicate of the eval question

        def pool(self, task, languages):
            return len(self.items), lambda i, lang: self.items[i]

    evaluation = [ex("gsm8k-test-0", Q)]
    spec = MixtureSpec("m", "fixed", ("en",))
    examples, manifest = build_mixture(Source(), spec, "math", BudgetConfig(mode="fixed_total", total=12), 0,
                                       evaluation, tmp_path)
    assert manifest["near_duplicates_of_eval"] and manifest["lineage_checked"]["eval_digest"]
    full = check_lineage(examples, evaluation)

    parsed = []
    real_read = mixtures.read_mixture
    monkeypatch.setattr(mixtures, "read_mixture", lambda path: (parsed.append(path), real_read(path))[1])
    assert recheck_lineage(tmp_path, evaluation) == full
    assert parsed == []  # the recorded check held

    newer = evaluation + [ex("gsm8k-test-5", examples[3].messages[0]["content"])]
    with pytest.raises(LineageError, match="gsm8k-test-5"):
        recheck_lineage(tmp_path, newer)  # another eval set: checked in full, the clash refused
    assert len(parsed) == 1

    data = tmp_path / "data.jsonl"
    lines = data.read_text().splitlines()
    leak = json.loads(lines[5])
    leak["messages"][0]["content"] = Q  # training data edited after the build: now it contains the eval question
    data.write_text("\n".join(lines[:5] + [json.dumps(leak)] + lines[6:]) + "\n")
    with pytest.raises(LineageError, match="same question"):
        recheck_lineage(tmp_path, evaluation)
    assert len(parsed) == 2


def test_word_by_word_normalisation_equals_the_whole_text_for_every_code_point():
    """`normalise_question` normalises word by word (split at whitespace) and remembers each word's form; that
    equals normalising the whole text only if no step crosses whitespace. Checked for every code point: next to
    each kind of whitespace on both sides, and through the properties that make it hold."""
    import sys
    import unicodedata

    from langmix import lineage_questions as lineage

    space = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    for s in space:  # combining class 0, and normalises to whitespace only
        assert unicodedata.combining(s) == 0 and all(ch.isspace() for ch in unicodedata.normalize("NFKC", s)), s
    for c in range(sys.maxunicode + 1):  # no canonical pair holds whitespace: nothing composes with it
        decomposition = unicodedata.decomposition(chr(c)).split()
        if len(decomposition) > 1 and not decomposition[0].startswith("<"):
            assert not any(chr(int(x, 16)).isspace() for x in decomposition), hex(c)
    kinds = [" ", "\u3000", "\u00a0", "\n", "\u2028"]  # ASCII space, and spaces NFKC changes or keeps
    everything = [chr(c) for c in range(sys.maxunicode + 1)]
    try:
        for start in range(0, len(everything), 200_000):
            part = everything[start:start + 200_000]
            text = "a" + "".join(c + kinds[i % len(kinds)] for i, c in enumerate(part)) + "b" + "".join(part[:5000])
            got, want = normalise_question(text).split(" "), lineage._normalise_text(text).split(" ")
            first = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
            assert len(got) == len(want) and first == len(got), (hex(start), want[first - 2:first + 3],
                                                                 got[first - 2:first + 3])
    finally:
        lineage._WORD_FORMS.clear()
    # the cache is bounded, and a cleared cache gives the same forms
    lineage._WORD_FORMS_MAX, saved = 3, lineage._WORD_FORMS_MAX
    try:
        assert normalise_question("Ｕｎｏ, DOS;  tres — ¨quatre¨") == lineage._normalise_text("Ｕｎｏ, DOS;  tres — ¨quatre¨")
        assert normalise_question("un dos tres cuatro cinco") == "un dos tres cuatro cinco"
        assert len(lineage._WORD_FORMS) <= 3
        many = " ".join(f"w{i}" for i in range(20))  # one call with more distinct words than the bound
        assert normalise_question(many) == many and len(lineage._WORD_FORMS) <= 3
        lineage._WORD_FORMS.clear()
        sentence = "アンナはりんごを五個持っていて、さらに三個買います。今いくつ持っていますか？"  # one long "word"
        assert normalise_question(sentence) == lineage._normalise_text(sentence) and not lineage._WORD_FORMS
    finally:
        lineage._WORD_FORMS_MAX = saved
        lineage._WORD_FORMS.clear()


def _oracle_near_duplicates(train, evaluation):
    """The near-duplicate rule written plainly, with Python sets of n-gram tuples / strings: each train question's
    best eval question of its language (most shared grams, the first on ties) where the share is reached."""
    from langmix.lineage import CHAR_NGRAM_LANGUAGES, NGRAM_CHARS, NGRAM_WORDS

    def grams(ex):
        text = normalise_question(ex.last_user_turn())
        if ex.language in CHAR_NGRAM_LANGUAGES:
            chars = text.replace(" ", "")
            return {chars[i:i + NGRAM_CHARS] for i in range(max(1, len(chars) - NGRAM_CHARS + 1))} if chars else set()
        words = text.split()
        if len(words) <= NGRAM_WORDS:
            return {tuple(words)} if words else set()
        return {tuple(words[i:i + NGRAM_WORDS]) for i in range(len(words) - NGRAM_WORDS + 1)}

    eval_grams = [(e, grams(e)) for e in evaluation]
    found = []
    for t in train:
        mine = grams(t)
        best = max(((len(mine & g), -j, e) for j, (e, g) in enumerate(eval_grams) if e.language == t.language),
                   default=None, key=lambda x: x[:2])
        if mine and best and best[0] and best[0] >= NEAR_DUPLICATE_SHARE * len(mine):
            found.append(NearDuplicate(t.id, best[2].id, t.language, round(best[0] / len(mine), 3)))
    return found


@pytest.mark.parametrize("seed", range(6))
def test_near_duplicates_equal_the_plain_rule(seed):
    """The array implementation (ngram_index) against the rule written with Python sets: short questions (one
    gram), repeated grams, ties between eval questions, words and characters, several languages, empty text."""
    rng = random.Random(seed)
    words = ["a", "b", "c", "d", "e", "f", "g"]  # a small vocabulary: many shared and repeated grams
    hanzi = "的一是不了人我在有他这"

    def question(lang):
        if lang == "zh":
            return "".join(rng.choice(hanzi) for _ in range(rng.choice([0, 3, 8, 9, 20, 40])))
        return " ".join(rng.choice(words) for _ in range(rng.choice([0, 1, 7, 8, 9, 16, 30])))

    def edited(q):
        parts = list(q)
        for _ in range(rng.randrange(3)):
            if parts:
                parts[rng.randrange(len(parts))] = rng.choice("xyz")
        return "".join(parts)

    langs = ["en", "sw", "zh"]
    evaluation = [ex(f"e{i}", question(lang), lang) for i, lang in enumerate(rng.choices(langs, k=60))]
    train = []
    for i in range(400):
        lang = rng.choice(langs)
        pool = [e for e in evaluation if e.language == lang]
        text = edited(rng.choice(pool).messages[-1]["content"]) if pool and rng.random() < 0.6 else question(lang)
        train.append(ex(f"t{i}", text + " ?", lang))
    train = [t for t in train if normalise_question(t.messages[-1]["content"]) not in
             {normalise_question(e.messages[-1]["content"]) for e in evaluation}]  # exact copies would clash
    expected = _oracle_near_duplicates(train, evaluation)
    assert len(expected) > 20  # the data exercises the rule
    assert check_lineage(train, evaluation).near_duplicates == expected


def _hash_with(monkeypatch, fake):
    """Both ways grams are hashed (table rows, and a chunk's grams from their tokens) replaced by `fake`."""
    from langmix import ngram_index

    monkeypatch.setattr(ngram_index, "row_hashes", fake)
    monkeypatch.setattr(ngram_index.Grams, "hashes", lambda self, seed: fake(self.rows(), seed))


def test_gram_hashes_from_tokens_equal_the_row_hashes():
    from langmix.ngram_index import Grams, row_hashes

    vocab: dict = {}
    for chars, questions in ((False, ["a b c d e f g h i j", "x y", "", "a b c d e f g h"]),
                             (True, ["一二三四五六七八九十", "一二", "十九八七六五四三二一"])):
        grams = Grams.of(questions, chars, 8, vocab)
        assert grams.owner.tolist() == ([0, 0, 0, 1, 2, 2, 2] if chars else [0, 0, 0, 1, 3])
        assert grams.rows()[3].tolist()[:3] == ([ord("一"), ord("二"), -1] if chars
                                                                  else [vocab["x"], vocab["y"], -1])
        for seed in (0, 5):
            assert np.array_equal(grams.hashes(seed), row_hashes(grams.rows(), seed))


def test_near_duplicates_do_not_depend_on_hash_collisions(monkeypatch):
    """Every gram hashing alike (a worst case): rows are still compared exactly, and the answer is the same."""
    from langmix import lineage, ngram_index

    train = [ex("t1", Q.replace("four.", "five.")), ex("t2", "How many pens does Ann have now?")]
    evaluation = [ex("e1", Q), ex("e2", "Tom has 12 apples and gives away 5 of them. How many are left now?")]
    expected = check_lineage(train, evaluation).near_duplicates
    real = ngram_index.row_hashes
    _hash_with(monkeypatch, lambda rows, seed: real(rows, seed) if seed >= 3 else real(rows, seed) * 0)
    lineage._EVAL_INDEXES.clear()
    assert check_lineage(train, evaluation).near_duplicates == expected
    assert [t.seed for t in lineage._eval_index(evaluation).tables.values()] == [3]
    # train grams collide from now on; the table keeps seed 3
    _hash_with(monkeypatch, lambda rows, seed: real(rows, seed) if seed >= 4 else real(rows, seed) * 0)
    assert check_lineage(train, evaluation).near_duplicates == expected


def test_a_hash_match_counts_only_when_the_gram_itself_matches(monkeypatch):
    """Hashes that see only a gram's first character: the train grams hash like the eval grams but differ, so
    nothing is shared (without the row comparison all three would be, and t1 reported)."""
    from langmix import lineage

    _hash_with(monkeypatch, lambda rows, seed: rows[:, 0].astype(np.uint64))
    lineage._EVAL_INDEXES.clear()
    assert check_lineage([ex("t1", "abcdefgxij", "zh")], [ex("e1", "abcdefghij", "zh")]).near_duplicates == []
    copy = check_lineage([ex("t2", "abcdefghiz", "zh")], [ex("e1", "abcdefghij", "zh")]).near_duplicates
    assert copy == [NearDuplicate("t2-zh", "e1-zh", "zh", 0.667)]  # 2 of its 3 grams are the eval question's


def test_broken_text_with_a_lone_surrogate_is_checked_not_a_crash():
    """Character n-grams encode text as code points: a lone surrogate (text cut mid-pair) raised
    UnicodeEncodeError, where the set-based rule reported the near-duplicate."""
    q = "珍妮特的鸭子每天下16个蛋。她每天早上吃三个作为早餐，每天用四个蛋为朋友们烤松饼。"
    broken = q.replace("松饼", "松\ud83d")
    report = check_lineage([ex("t1", broken, "zh")], [ex("e1", q, "zh")])
    assert report.near_duplicates == _oracle_near_duplicates([ex("t1", broken, "zh")], [ex("e1", q, "zh")])
    assert len(report.near_duplicates) == 1


def test_large_inputs_are_checked_in_blocks_with_the_same_answer(monkeypatch):
    from langmix import lineage

    rng = random.Random(5)
    words = [f"w{i}" for i in range(30)]
    evaluation = [ex(f"e{i}", " ".join(rng.choice(words) for _ in range(12))) for i in range(20)]
    train = [ex(f"t{i}", " ".join(rng.choice(words) for _ in range(12)) + " x") for i in range(300)]
    for i in range(0, 300, 3):  # edited copies of eval questions: near-duplicates spread over every block
        train[i] = ex(f"t{i}", evaluation[i % 20].messages[-1]["content"] + " changed")
    whole = check_lineage(train, evaluation).near_duplicates
    assert len(whole) >= 100
    monkeypatch.setattr(lineage, "_BLOCK", 7)
    assert check_lineage(train, evaluation).near_duplicates == whole == _oracle_near_duplicates(train, evaluation)


@pytest.mark.parametrize("spread", ["random", "one prefix", "few prefixes", "empty"])
def test_gram_table_lookup_equals_a_binary_search(spread):
    """GramTable.find (hash-prefix buckets, or a binary search where one prefix holds many hashes) against
    np.searchsorted: the same position for every hash in the table, and no hash outside it found."""
    from scipy.sparse import csr_matrix

    from langmix.ngram_index import GramTable

    rng = np.random.default_rng(3)
    size = 0 if spread == "empty" else 3000
    table_hashes = rng.integers(0, 2**63, size=size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    if spread == "one prefix":  # every hash under one 16-bit prefix: the binary-search path
        table_hashes >>= np.uint64(20)
    if spread == "few prefixes":  # a handful per prefix: several probes
        table_hashes = (np.arange(size, dtype=np.uint64) // np.uint64(3)) << np.uint64(48) | table_hashes % 7
    table_hashes = np.unique(table_hashes)
    table = GramTable(0, table_hashes, np.zeros((len(table_hashes), 8), dtype=np.int64),
                      csr_matrix((len(table_hashes), 1)))
    outside = table_hashes[rng.integers(0, max(1, len(table_hashes)), size=len(table_hashes))] + np.uint64(2)
    queries = np.concatenate([table_hashes, outside[~np.isin(outside, table_hashes)]])
    rng.shuffle(queries)
    spot, found = table.find(queries)
    assert np.array_equal(found, np.isin(queries, table_hashes))
    assert np.array_equal(spot[found], np.searchsorted(table_hashes, queries[found]))
    assert found.sum() == len(table_hashes)


def test_a_built_mixture_s_near_duplicate_warning_names_the_mixture_and_where_every_pair_is(tmp_path, caplog):
    """A study printed one 'N training questions are near-duplicates ...' warning per mixture and task without
    saying which mixture it was about."""
    from langmix.config import BudgetConfig, DataConfig
    from langmix.data.sources import SynthSource
    from langmix.mixtures import MixtureSpec, build_mixture_streaming

    source = SynthSource(DataConfig(train_pool=1200, eval_items=100))
    with caplog.at_level(logging.WARNING, logger="langmix.lineage"):
        manifest = build_mixture_streaming(source, MixtureSpec("en-only", "english_only", ("en",)), "math",
                                           BudgetConfig(mode="fixed_total", total=480), 0,
                                           source.eval_examples("math", ["en"]), tmp_path / "m")
    near = manifest["near_duplicates_of_eval"]
    assert near and f"mixture en-only (math): {len(near)} training questions are near-duplicates" in caplog.text
    assert f"(all {len(near)} in {tmp_path / 'm' / 'manifest.json'}: near_duplicates_of_eval)" in caplog.text


def _mgsm_dir(tmp_path, questions):
    mgsm = tmp_path / "mgsm"
    mgsm.mkdir()
    for lang, rows in questions.items():
        (mgsm / f"mgsm_{lang}.tsv").write_text("".join(f"{q}\t{i + 1}\n" for i, q in enumerate(rows)))
    return mgsm


EVAL_EN = ["Janet's ducks lay 16 eggs per day and she eats three of them for breakfast every single morning. How "
           "many are left?", "A robe takes 2 bolts of blue fiber and half that much white fiber in total. How many "
           "bolts does it take?", "Josh buys a house for 80000 dollars and puts in 50000 dollars in repairs to it. "
           "What did he spend?"]
EVAL_ES = ["Los patos de Janet ponen 16 huevos por día y ella come tres en el desayuno cada mañana. ¿Cuántos "
           "quedan?", "Una bata lleva 2 rollos de tela azul y la mitad de esa cantidad de tela blanca en total. "
           "¿Cuántos rollos?", "Josh compra una casa por 80000 dólares y pone 50000 dólares en reparaciones. ¿Cuánto "
           "gastó?"]


def _files_source(tmp_path, train_cfg, eval_languages=("en", "es")):
    from langmix.config import DataConfig
    from langmix.data.sources import open_source

    mgsm = _mgsm_dir(tmp_path, {lang: {"en": EVAL_EN, "es": EVAL_ES}[lang] for lang in eval_languages})
    return open_source(DataConfig(source="files", math={"train": train_cfg, "eval": {"format": "mgsm",
                                                                                        "path": str(mgsm)}}))


def test_a_user_file_named_test_is_not_mgsm_because_its_positional_ids_coincide(tmp_path):
    """`own/test.jsonl` (gsm8k) gets the ids gsm8k-test-0, -1 (from its file name and rows), MGSM's ids for its
    first items: the mix was refused as two evaluation items trained on. The questions differ: nothing clashes."""
    from langmix.config import BudgetConfig
    from langmix.mixtures import MixtureSpec, build_mixture

    own = tmp_path / "own" / "test.jsonl"
    own.parent.mkdir()
    own.write_text(json.dumps({"question": "A farmer has 12 cows and buys 7 more. How many cows now?",
                               "answer": "12+7=19\n#### 19"}) + "\n" + json.dumps(
        {"question": "A shop sells 5 pens a day for 6 days. How many pens?", "answer": "5*6=30\n#### 30"}) + "\n")
    source = _files_source(tmp_path, {"format": "gsm8k", "path": str(own)})
    evaluation = source.eval_examples("math", ["en", "es"])
    examples, manifest = build_mixture(source, MixtureSpec("en", "english_only", ("en",)), "math",
                                       BudgetConfig(mode="fixed_total", total=2), 0, evaluation, tmp_path / "m")
    assert sorted(ex.source_id for ex in examples) == ["gsm8k-test-0", "gsm8k-test-1"]  # the ids MGSM uses
    assert "near_duplicates_of_eval" not in manifest
    # the same with check_lineage: a shared id where the items share a language whose questions differ
    assert check_lineage(examples, evaluation).near_duplicates == []


def test_a_shared_source_id_still_clashes_where_no_language_can_be_compared():
    evaluation = [ex("e1", "How many cats?"), ex("e2", "How many dogs?")]
    with pytest.raises(LineageError, match=r"e1-sw / e1-en \(same source id\)"):
        check_lineage([ex("e1", "Paka wangapi?", "sw")], evaluation)  # a translation given without its original
    with pytest.raises(LineageError, match=r"e1-sw / e1-en \(same question, in its en row\)"):
        check_lineage([ex("e1", "Paka wangapi?", "sw")], evaluation, [[ex("e1", "How many cats?")]])
    assert check_lineage([ex("e1", "Paka wangapi?", "sw")], evaluation, [[ex("e1", "How many cows?")]]) \
        .near_duplicates == []  # the item's English row shows it is another item


def _parallel(tmp_path, en_questions):
    rows = []
    for i, (en, es) in enumerate(zip(en_questions, EVAL_ES)):
        rows += [{"id": f"mytest-{i}", "language": "en", "question": en, "answer": i + 1},
                 {"id": f"mytest-{i}", "language": "es", "question": es.replace("¿", "¿Y ").replace(" y ", " e "),
                  "answer": i + 1}]
    path = tmp_path / "contam.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {"format": "parallel", "path": str(path)}


def test_an_es_only_mixture_of_items_whose_english_rows_are_eval_questions_is_refused(tmp_path):
    """The same evaluation items under other ids (`mytest-i`), Spanish lightly edited, English copied: an es-only
    mixture was built (some es rows reported as near-duplicates), the English rows never consulted."""
    from langmix.config import BudgetConfig
    from langmix.mixtures import MixtureSpec, build_mixture

    source = _files_source(tmp_path, _parallel(tmp_path, EVAL_EN))
    evaluation = source.eval_examples("math", ["en", "es"])
    with pytest.raises(LineageError, match=r"3 evaluation items .* mytest-\d-es / gsm8k-test-\d-en \(same question, "
                                           r"in its en row\)"):
        build_mixture(source, MixtureSpec("es-only", "fixed", ("es",)), "math",
                      BudgetConfig(mode="fixed_total", total=3), 0, evaluation, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_an_item_s_english_near_copy_is_reported_for_its_es_row(tmp_path):
    from langmix.config import BudgetConfig
    from langmix.mixtures import MixtureSpec, build_mixture

    edited = [q.replace("How many", "Tell me how many").replace("What", "Tell me what") for q in EVAL_EN]
    source = _files_source(tmp_path, _parallel(tmp_path, edited), eval_languages=("en",))
    evaluation = source.eval_examples("math", ["en"])  # an English-only eval set: the es rows have nothing to match
    _, manifest = build_mixture(source, MixtureSpec("es-only", "fixed", ("es",)), "math",
                                BudgetConfig(mode="fixed_total", total=3), 0, evaluation, tmp_path / "m")
    near = sorted(manifest["near_duplicates_of_eval"])
    assert [(d[0], d[1], d[2]) for d in near] == [(f"mytest-{i}-es", f"gsm8k-test-{i}-en", "en") for i in range(3)]
    assert all(0.5 <= d[3] < 1 for d in near)


def test_eval_time_recheck_checks_the_other_language_rows_of_each_item_as_the_build_did(tmp_path):
    """An es-only mixture whose items' English rows are questions of a newer eval set (under other source ids) holds
    copies of them: the build-time check compares those rows (`item_rows`), and the recheck at evaluation time
    must too (it compared only the es rows, so it passed)."""
    from langmix.mixtures import recheck_lineage, write_mixture

    english = {"t1": ex("t1", Q), "t2": ex("t2", "How many pens are in the red box on the shelf?")}
    train = [ex("t1", "Los patos de Janet ponen 16 huevos al día.", "es"),
             ex("t2", "¿Cuántos bolígrafos hay en la caja roja?", "es")]
    write_mixture(tmp_path, train, {"near_duplicates_of_eval": []})
    newer = [ex("mgsm-en-4", Q)]  # another file: positional source ids do not match
    assert recheck_lineage(tmp_path, newer).near_duplicates == []  # the es rows alone pass
    with pytest.raises(LineageError, match=r"t1-\w+ / mgsm-en-4-en"):
        recheck_lineage(tmp_path, newer, lambda row: [english[row.source_id]])


def test_item_rows_reads_the_training_data_only_when_a_row_is_asked_for(tmp_path, monkeypatch):
    """Every evaluation of a trained model built the item rows (parsing the whole training file) before its
    recheck, which the manifest's recorded check answers in the common case without asking for any row."""
    from langmix.config import DataConfig
    from langmix.data import sources
    from langmix.mixtures import item_rows

    train = tmp_path / "train.jsonl"
    answered = [e.model_copy(update={"messages": [*e.messages, {"role": "assistant", "content": "The answer is 1"}]})
                for e in [ex("t1", Q), ex("t1", "¿Cuántos?", "es")]]
    train.write_text("".join(e.model_dump_json() + "\n" for e in answered))
    cfg = DataConfig(source="files", math={"train": {"format": "examples", "path": str(train)},
                                           "eval": {"format": "examples", "path": str(train)}})
    loads = []
    real_load = sources.load_examples
    monkeypatch.setattr(sources, "load_examples", lambda *a, **k: loads.append(a[0].path) or real_load(*a, **k))
    related = item_rows(sources.FileDataSource(cfg), "math")
    assert loads == []
    assert [r.language for r in related(ex("t1", Q))] == ["es"] and related(ex("t2", Q)) == []
    assert loads == [str(train)]  # once
    assert item_rows(object(), "math") is None
