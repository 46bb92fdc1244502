"""Translate English task examples into parallel examples in other languages, with QA.

Only natural language is translated: for math the question and the worked solution (numbers protected by
placeholders, the final answer line rebuilt in the target language's phrase); for API calling the user turns
(schemas, function names, argument keys, JSON and canonical values stay as they are, and arguments that appear
verbatim in the user text are recorded). Every segment is validated; a failing segment is retried with the reason
(LLM backends), then the example is flagged or excluded by policy, and every outcome is counted.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable

from langmix import languages as langs
from langmix.data.answers import answer_line, target_answer_phrase
from langmix.data.api_data import is_tool_result
from langmix.records import Example
from langmix.translate.api_arguments import api_notes, api_reasons, assistant_text_turns, verbatim_arguments
from langmix.translate.backends import Request
from langmix.translate.cache import TranslationCache, segment_key
from langmix.translate.structure import prose, protect, restore, spans_present, structured_spans
from langmix.evaluate import langid
from langmix.translate.validate import Check, detection_languages, notes, validate

log = logging.getLogger(__name__)


@dataclass
class Segment:
    example: int
    message: int
    source: str  # what the backend sees (masked when the backend protects numbers)
    original: str
    spans: list[str]
    check: Check
    translation: str | None = None
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # counted, not refused (validate.notes)
    attempts: int = 0
    from_cache: bool = False  # the latest answer came from the cache
    asked: bool = False  # the backend was asked for it (in any attempt)


@dataclass
class LanguageQA:
    n: int = 0
    passed: int = 0
    passed_after_retry: int = 0
    flagged: int = 0
    excluded: int = 0
    backend_misses: int = 0
    reasons: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # kept examples with a note (e.g. numbers_reordered)
    # API dialogues: only user turns are translated; the assistant's plain-language turns (API-Bank has them)
    # stay in English inside the kept examples labelled with the target language
    assistant_english_turns: int = 0
    assistant_english_examples: int = 0
    cached_rejections: int = 0  # segments whose final answer came from the cache and failed validation
    segments: int = 0  # segments translated (texts sent or looked up)
    segments_from_cache: int = 0  # of them, those the cache answered in every attempt (no request sent)


def _math_parts(ex: Example) -> tuple[str, str | None]:
    """The question, and the solution without its final answer line (rebuilt per language)."""
    question = ex.messages[-2]["content"] if ex.messages[-1]["role"] == "assistant" else ex.messages[-1]["content"]
    if ex.messages[-1]["role"] != "assistant":
        return question, None
    solution = ex.messages[-1]["content"]
    phrase = ex.reference.get("answer_phrase", langs.answer_phrase("en"))
    head = solution.rsplit(phrase, 1)[0].rstrip() if phrase in solution else solution
    return question, head


def _segments(ex_index: int, ex: Example, protect_numbers: bool) -> list[Segment]:
    out = []
    last = len(ex.messages) - 1
    for m, msg in enumerate(ex.messages):
        if msg["role"] != "user" and not (ex.task == "math" and msg["role"] == "assistant"):
            continue
        text = msg["content"]
        if msg["role"] == "user" and is_tool_result(text):
            continue
        if ex.task == "math" and msg["role"] == "assistant" and m == last:
            text = _math_parts(ex)[1] or ""  # the final solution: its answer line is rebuilt per language
        if not text.strip():
            continue
        masked, spans = protect(text) if protect_numbers else (text, [])
        check = Check(numbers=True, structure=bool(structured_spans(text)))  # numbers: times and dates too
        out.append(Segment(ex_index, m, masked, text, spans, check))
    return out


def count_segments(examples: list[Example], protect_numbers: bool = False) -> int:
    """How many segments one target language takes (for progress bars)."""
    return sum(len(_segments(i, ex, protect_numbers)) for i, ex in enumerate(examples))


def translate_examples(examples: list[Example], targets: list[str], backend, cache: TranslationCache,
                       languages: list[str], policy: str = "exclude", retries: int = 1, batch_size: int = 64,
                       progress: Callable[[int], None] | None = None, retranslate_rejected: bool = False,
                       retrying: Callable[[int], None] | None = None
                       ) -> tuple[list[Example], dict[str, LanguageQA]]:
    """Translate English `examples` into each of `targets`; returns (translated examples, QA per language).
    `retranslate_rejected`: a cached translation that fails validation (a first answer or a retry's) is asked for
    again (once, replacing it in the cache), e.g. after the server that gave it was fixed; otherwise the cache
    answers it again.
    `progress(k)`: k segments had their first answer; `retrying(k)`: k segments are asked again (a rejected
    translation, with the reasons), extra work the first count does not show."""
    if policy not in ("exclude", "flag"):
        raise ValueError(f"policy must be 'exclude' or 'flag', got {policy!r}")
    not_english = sorted({ex.language for ex in examples} - {"en"})
    if not_english:
        raise ValueError(f"translation sources must be English; found {not_english}")
    seen: set[str] = set()
    repeated = sorted({ex.source_id for ex in examples if ex.source_id in seen or seen.add(ex.source_id)})
    if repeated:  # each would be translated (paid for) and written under one id twice
        raise ValueError(f"{len(repeated)} source id(s) given twice: " + ", ".join(
            f"source {sid!r} repeats" for sid in repeated[:5]) + (" ..." if len(repeated) > 5 else ""))
    qa: dict[str, LanguageQA] = defaultdict(LanguageQA)
    out: list[Example] = []
    can_retry = backend.name in ("openai", "causal")
    for lang in targets:
        segments = [s for i, ex in enumerate(examples) for s in _segments(i, ex, backend.protects_numbers)]
        pending = segments
        for attempt in range(1 + (retries if can_retry else 0)):
            if attempt and retrying:
                retrying(len(pending))
            asked_with = {id(s): s.reasons for s in pending}  # a retry's request (and cache key) carries them
            _translate(pending, examples, lang, backend, cache, batch_size, attempt, progress)
            _check_all(pending, lang, languages)
            stale = [s for s in pending if s.reasons and s.from_cache] if retranslate_rejected else []
            if stale:  # a first answer or a retry's: each is asked again as it was asked (same cache key)
                for seg in stale:
                    seg.reasons = asked_with[id(seg)]
                if retrying:
                    retrying(len(stale))
                _translate(stale, examples, lang, backend, cache, batch_size, attempt, None, use_cache=False)
                _check_all(stale, lang, languages)
            pending = [s for s in pending if s.reasons and s.translation is not None]
            if not pending:
                break
        if not retranslate_rejected:  # final answers the cache gave that fail validation (a passing retry is not)
            qa[lang].cached_rejections += sum(1 for s in segments if s.reasons and s.from_cache)
        qa[lang].segments += len(segments)
        qa[lang].segments_from_cache += sum(1 for s in segments if not s.asked)  # no request sent in any attempt
        by_example: dict[int, list[Segment]] = defaultdict(list)
        for seg in segments:
            by_example[seg.example].append(seg)
        for i, ex in enumerate(examples):
            segs = by_example.get(i, [])
            q = qa[lang]
            q.n += 1
            reasons = sorted({r for s in segs for r in s.reasons})
            originals, translations = [s.original for s in segs], [s.translation for s in segs]
            if not reasons:
                reasons = api_reasons(ex, originals, translations, lang)
            q.backend_misses += any(s.translation is None for s in segs)
            q.reasons.update(reasons)
            if not reasons:
                q.passed += 1
                q.passed_after_retry += any(s.attempts > 1 for s in segs)
            elif policy == "flag" and all(s.translation is not None and s.translation.strip() for s in segs):
                # a miss or an empty translation is excluded under every policy: there is nothing to keep
                q.flagged += 1
            else:
                q.excluded += 1
                continue
            english = assistant_text_turns(ex)
            q.assistant_english_turns += english
            q.assistant_english_examples += english > 0
            noted = sorted({n for s in segs for n in s.notes} | set(api_notes(ex, originals, translations)))
            q.notes.update(noted)
            out.append(_assemble(ex, lang, segs, reasons, noted))
    log.info("the cache answered %d of %d segments (%s)", sum(q.segments_from_cache for q in qa.values()),
             sum(q.segments for q in qa.values()), ", ".join(f"{k} {q.segments_from_cache}" for k, q in qa.items()))
    return out, dict(qa)


def _translate(segments: list[Segment], examples: list[Example], lang: str, backend, cache: TranslationCache,
               batch_size: int, attempt: int, progress, use_cache: bool = True) -> None:
    def version(seg: Segment) -> str:  # a retry's prompt carries the rejection reasons, so its key does too
        return backend.prompt_version + (f"-retry{attempt}:{','.join(seg.reasons)}" if attempt else "")

    keys = [segment_key(backend.name, backend.model_id, "en", lang, version(s), s.source) for s in segments]
    cached = cache.get_many(keys) if use_cache else {}
    same: dict[str, list[Segment]] = defaultdict(list)  # dialogues repeat turns: translate each text once
    for s, k in zip(segments, keys):
        if k in cached:
            s.translation, s.attempts, s.from_cache = cached[k], s.attempts + 1, True
        else:
            same[k].append(s)
    todo = [(group[0], k) for k, group in same.items()]
    if progress and attempt == 0:
        progress(len(segments) - sum(len(g) for g in same.values()))
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        requests = [Request(s.source, "en", lang, f"{examples[s.example].source_id}#{_index(s, examples)}",
                            ", ".join(s.reasons) or None) for s, _ in batch]
        if getattr(backend, "reports_each", False):  # a remote backend: each translation is cached as it comes
            def keep(i: int, text: str | None, batch=batch) -> None:
                if text is not None:
                    cache.put_many({batch[i][1]: text})

            results = backend.translate(requests, done=keep)  # an interrupt loses only the requests in flight
        else:
            results = backend.translate(requests)
            cache.put_many({key: text for (_, key), text in zip(batch, results) if text is not None})
        for (_, key), text in zip(batch, results):
            for seg in same[key]:
                seg.translation, seg.attempts, seg.from_cache, seg.asked = text, seg.attempts + 1, False, True
        if progress and attempt == 0:  # retries are extra work, not progress
            progress(sum(len(same[k]) for _, k in batch))


def _index(seg: Segment, examples: list[Example]) -> int:
    """Position of the segment among its example's translatable turns (0 = the first user turn)."""
    ex = examples[seg.example]
    return sum(1 for m in ex.messages[:seg.message] if m["role"] == "user" or ex.task == "math")


def _check_all(segments: list[Segment], lang: str, languages: list[str]) -> None:
    """Validate every translated segment; language identification runs once for the whole list."""
    restored: list[tuple[Segment, str, list[int]]] = []
    for seg in segments:
        if seg.translation is None:
            seg.reasons = ["backend_miss"]
            continue
        text, lost = restore(seg.translation, seg.spans) if seg.spans else (seg.translation, [])
        restored.append((seg, text, spans_present(seg.spans, lost, text, lang)))  # reformatted != lost
    detected = langid.detect([prose(text) for _, text, _ in restored], detection_languages(languages, lang))
    for (seg, text, lost), found in zip(restored, detected):
        seg.reasons = validate(seg.original, text, lang, languages, seg.check, lost, detected=found)
        seg.notes = notes(seg.original, text, lang)
        if not seg.reasons:
            seg.translation = text


def _assemble(ex: Example, lang: str, segs: list[Segment], reasons: list[str], noted: list[str]) -> Example:
    messages = [dict(m) for m in ex.messages]
    for seg in segs:
        if seg.translation is not None:
            text = restore(seg.translation, seg.spans)[0] if seg.spans else seg.translation
            messages[seg.message]["content"] = text
    reference = dict(ex.reference)
    if ex.task == "math":
        phrase = target_answer_phrase(lang)  # the registry's canonical phrase (English's, with a warning)
        reference["answer_phrase"] = phrase
        if messages[-1]["role"] == "assistant":  # the number as the language's scorer reads it back
            line = answer_line(reference["answer"], lang, phrase)
            messages[-1]["content"] = f"{messages[-1]['content'].rstrip()}\n{line}".lstrip()
    if ex.task == "api":
        user_text = " ".join(m["content"] for m in messages if m["role"] == "user")
        reference["verbatim_arguments"] = verbatim_arguments(reference, user_text)
    if reasons:
        reference["translation_flags"] = reasons
    if noted:
        reference["translation_notes"] = noted
    return Example(id=f"{ex.source_id}-{lang}", source_id=ex.source_id, task=ex.task, language=lang,
                   messages=messages, tools=ex.tools, reference=reference)


def qa_table(qa: dict[str, LanguageQA]) -> str:
    """Markdown QA table, one row per language."""
    lines = ["| language | n | passed | passed after retry | flagged | excluded | backend misses | "
             "segments from cache | reasons | notes (kept) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for lang, q in qa.items():
        reasons = ", ".join(f"{k} {v}" for k, v in q.reasons.most_common())
        noted = ", ".join(f"{k} {v}" for k, v in q.notes.most_common())
        lines.append(f"| {lang} | {q.n} | {q.passed} | {q.passed_after_retry} | {q.flagged} | {q.excluded} | "
                     f"{q.backend_misses} | {q.segments_from_cache} of {q.segments} | {reasons} | {noted} |")
    english = [f"{lang} {q.assistant_english_turns} turns in {q.assistant_english_examples} of "
               f"{q.passed + q.flagged} kept examples" for lang, q in qa.items() if q.assistant_english_turns]
    if english:
        lines += ["", "Assistant plain-language turns left in English (API dialogues: only the user's turns are "
                  "translated): " + "; ".join(english) + "."]
    return "\n".join(lines)


def qa_json(qa: dict[str, LanguageQA]) -> str:
    return json.dumps({lang: {**q.__dict__, "reasons": dict(q.reasons), "notes": dict(q.notes)}
                       for lang, q in qa.items()}, indent=2)
