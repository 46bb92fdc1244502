"""A translator's chatter around the translation, in any language: "Sure! Here is the translation:", "Claro, aquí
tienes la traducción al español: ...", "以下是翻译：" before it; "Nota: he conservado los marcadores.", "(Note: I
kept the placeholders.)" after it. The source is the reference: what it says itself (a heading ending with a
colon, an opening "Sure, ...", a note, the word "translation") is no chatter in its translation.

Each rule was run on MGSM's 2,500 human translations of the same English questions (tests/translate), which
must pass: a word for "translation" the source lacks, a paragraph the source lacks, a note, a separator line, a
closing wish or a parenthesis added at the end, a chat opener, a "here is ...:" or a language's name as a label
("Español: ...") at the start.
"""

from __future__ import annotations

import re
from functools import lru_cache

import langcodes

from langmix import languages as langs

# "translation", "translated", "translate" in the registry's languages and a few more. Stems that also mean
# something else are written out (Russian "перевод" is also a money transfer: only "перевод" + "на"/"текста" and
# the adjective; Thai "แปล" is in "แปลก" strange and "แปลง" plot: only its noun and verb phrases).
_TRANSLATION_WORD = re.compile(
    r"translat|traduc|traduz|tradot|traduit|traduire|übersetz|vertaal|vertaling|terjemah|tafsiri|çevir|tłumacz"
    r"|перевод (?:на|текста)|переводе на|переведённ|переведен|翻訳|翻译|翻譯|訳文|译文|번역|অনুবাদ|अनुवाद|అనువాద"
    r"|คำแปล|การแปล|แปลเป็น|ترجم", re.I)
# A chat opener at the very start, followed by punctuation: "Sure,", "Claro,", "Bien sûr !", "Конечно,", "好的，".
_OPENER = re.compile(
    r"^\W*(?:sure|certainly|of course|absolutely|okay|ok|claro|por supuesto|desde luego|bien sûr|certainement"
    r"|d'accord|natürlich|klar|gerne|selbstverständlich|конечно|разумеется|хорошо|当然|好的|もちろん|承知しました"
    r"|かしこまりました|물론|tentu|baiklah|bila shaka|hakika|sawa|অবশ্যই|निश्चित रूप से|ज़रूर|जरूर|బిల్కుల్"
    r"|తప్పకుండా|แน่นอน|ได้เลย|بالتأكيد|بالطبع|حسنًا|حسنا)\s*[,，、!！.。:：]", re.I)
# "Here is ...:" in the first line: the line up to a colon opens with a presenting phrase.
_HERE_IS = re.compile(
    r"^\W*(?:here(?:'s| is| are)|below is|aquí (?:tienes|está|va)|he aquí|a continuación|voici|voilà|hier (?:ist|sind)"
    r"|вот|ниже|以下是|以下为|这是|以下は|これは|berikut|hii ni|ifuatayo|إليك|فيما يلي)[^\n:：]{0,80}[:：]", re.I)
# A note: "Nota:", "(Note: ...", "注：", "Примечание:".
_NOTE = re.compile(
    r"(?:^|[\s(（\[*])(?:note|nota|notes|remarque|anmerkung|hinweis|примечание|замечание|注|注意|备注|備考|참고"
    r"|catatan|kumbuka|ملاحظة|नोट|टिप्पणी|টীকা|দ্রষ্টব্য|গমনিক|గమనిక|หมายเหตุ|n\.b\.)\s*[:：]", re.I)
# What the source may say itself, so its translation may too.
_SOURCE_OPENER = re.compile(r"^\W*(?:sure|certainly|of course|absolutely|okay|ok|yes|well|alright|fine|right|here)\b",
                            re.I)
# A separator line (---, ***, ___, ===, ~~~) with the chatter after it: "...\n---\nEspero que te sirva."
_SEPARATOR = re.compile(r"^[ \t]*(?:[-*_=~][ \t]*){3,}$", re.M)
# A closing wish, as the last sentence: "Hope this helps!", "Espero que te sirva.", "Let me know if ...".
_CLOSING = re.compile(
    r"hope (?:this|it|that) helps|let me know|espero que (?:te|le|os|les) (?:sirva|ayude|guste)|j'espère que (?:cela"
    r"|ça|c'est)|ich hoffe,? (?:das|es|ich)|надеюсь,? (?:это|что)|希望(?:这|這|对|對|能)|お役に立て|도움이 되"
    r"|semoga (?:membantu|bermanfaat)|natumaini (?:hii|hili|kwamba)|আশা করি|उम्मीद है|आशा है|ఆశిస్తున్నా"
    r"|หวังว่า|أتمنى أن|آمل أن", re.I)
_HOPE = re.compile(r"\bhop(?:e|ed|es|ing)\b|\blet me know\b", re.I)  # the source's own wish
# A sentence ends at . ! ? ; : (and their CJK, Arabic and Devanagari forms) or a line break.
SENTENCE_END = re.compile(r"(?<=[.!?;:。？！؟।])\s+|(?<=[。？！；：])|\n+")
# A reasoning model's thinking tags (an unclosed `<think>` block before the translation).
_THINK_TAG = re.compile(r"</?think>", re.I)
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_END = " \t\n.?!。？！؟।"


def sentences(text: str) -> list[str]:
    """A text's sentences that hold a word (a number or a mark alone is none)."""
    return [part for part in SENTENCE_END.split(text.strip()) if langs.WORD.search(part)]


def _paragraphs(text: str) -> list[str]:
    return [p for p in _PARAGRAPH.split(text.strip()) if p.strip()]


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


@lru_cache(maxsize=1)
def _language_label() -> re.Pattern:
    """A language's name or code as a label opening a text: "Español: ...", "Spanish (Spain): ...", "ES:",
    "**Deutsch:**", "スペイン語：". Names of every registry language in each registry language (246 names; the
    label is the target's name, or English's, or the one the prompt said, in any of them)."""
    codes = langs.known_codes()
    names = {langcodes.Language.get(c).display_name(d) for c in codes for d in codes}
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    tags = "|".join(sorted({c for c in codes} | {c.upper() for c in codes}))  # "ES:", "es:", not "Yo:" or "Ja:"
    return re.compile(rf"^[\W_]*(?:{alternatives}|(?-i:{tags}))(?:\s*\([^()\n]{{1,30}}\))?[*_]*\s*[:：]", re.I)


def preamble(source: str, target: str) -> bool:
    """Chatter before the translation: a first line ending with a colon that the source lacks (with the text after
    it), "Here is ...:" / "Aquí tienes ...:" / "以下是...：", a word for "translation" in the first line, a language's
    name as a label ("Español: ", "Spanish:") or a chat opener ("Sure,", "Claro,", "Конечно,") the source does not
    open with."""
    source_lines = [line for line in source.splitlines() if line.strip()]
    target_lines = [line for line in target.splitlines() if line.strip()]
    if len(target_lines) > len(source_lines) and target_lines[0].rstrip().endswith((":", "：")) and \
            not (source_lines and source_lines[0].rstrip().endswith((":", "："))):
        return True
    first = _first_line(target)
    if not _TRANSLATION_WORD.search(source) and _TRANSLATION_WORD.search(first[:120]):
        return True
    if _language_label().match(target) and not _language_label().match(source):
        return True
    if _SOURCE_OPENER.match(source):
        return False
    return bool(_OPENER.match(target) or _HERE_IS.match(first))


def postscript(source: str, target: str) -> bool:
    """Chatter after the translation (after a preamble's line, where there is one): a paragraph more than the
    source has, a note ("Nota:", "(Note: ...") or a separator line ("---") the source lacks, a closing wish as an
    added last sentence ("Espero que te sirva.", "Hope this helps": the translation has more sentences than the
    source) the source makes none of, a word for "translation" the
    source lacks, or a closing parenthesis where the source has none."""
    target = target.strip()
    if preamble(source, target):
        target = target.split("\n", 1)[1] if "\n" in target else ""
        if not target.strip():
            return False
    if len(_paragraphs(target)) > len(_paragraphs(source)) and _lines(target) > _lines(source):
        return True  # a paragraph added (lines spaced out by a blank line between them are the same lines)
    if not _NOTE.search(source) and _NOTE.search(target):
        return True
    if _SEPARATOR.search(target) and not _SEPARATOR.search(source):
        return True
    said = sentences(target)  # not the whole last line: that is the whole text of a one-line translation ("简希望能...")
    if not _HOPE.search(source) and len(said) > len(sentences(source)) and _CLOSING.search(said[-1]):
        return True
    if not _TRANSLATION_WORD.search(source) and _TRANSLATION_WORD.search(target):
        return True
    return target.rstrip(_END).endswith((")", "）")) and "(" not in source  # a parenthesis may move to the end


def reasoning(source: str, target: str) -> bool:
    """A reasoning model's `<think>` or `</think>` tag the source lacks: "<think>The user wants Spanish, keep the
    placeholders. Los patos ..." (the backend strips closed blocks; an unclosed one cannot be told from the
    translation after it)."""
    return bool(_THINK_TAG.search(target)) and not _THINK_TAG.search(source)
