"""Math data: GSM8K, MGSM, MGSM exemplars and parallel translated sets, rendered into `Example`s.

One function, `math_messages`, builds the conversation for training and for evaluation (zero- or few-shot with
native-language exemplars), so training and evaluation prompts cannot disagree. Lineage: MGSM's items are the
first 250 GSM8K test items, so MGSM item i carries source id `gsm8k-test-i` in every language.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from langmix import languages as langs
from langmix.data.files import DataFormatError, iter_jsonl
from langmix.evaluate.math import parse_number
from langmix.records import Example

CALCULATOR = re.compile(r"<<[^>]*>>")
ENGLISH_PHRASE = "The answer is"


def math_messages(question: str, solution: str | None = None,
                  exemplars: list[tuple[str, str]] | None = None) -> list[dict[str, str]]:
    """User/assistant turns: the exemplars (if any) as earlier turns, then the question, then the solution."""
    messages: list[dict[str, str]] = []
    for q, a in exemplars or []:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": question})
    if solution is not None:
        messages.append({"role": "assistant", "content": solution})
    return messages


def math_example(source_id: str, lang: str, question: str, answer: float, answer_phrase: str,
                 solution: str | None = None, exemplars: list[tuple[str, str]] | None = None) -> Example:
    """An evaluation example has no solution: its messages end with the question."""
    return Example(id=f"{source_id}-{lang}", source_id=source_id, task="math", language=lang,
                   messages=math_messages(question, solution, exemplars),
                   reference={"answer": answer, "answer_phrase": answer_phrase})


def gsm8k_answer(path: Path, lineno: int, text: str, keep_calculator: bool) -> tuple[str, float]:
    """Split a GSM8K answer into (reasoning, final number)."""
    if "####" not in text:
        raise DataFormatError(path, lineno, "answer has no '#### <number>' line")
    reasoning, final = text.rsplit("####", 1)
    value = parse_number(final)
    if value is None:
        raise DataFormatError(path, lineno, f"final answer {final.strip()!r} is not a number")
    if not keep_calculator:
        reasoning = CALCULATOR.sub("", reasoning)
    return reasoning.strip(), value


def load_gsm8k(path: str | Path, split: str | None = None, keep_calculator: bool = False,
               limit: int | None = None) -> list[Example]:
    """GSM8K JSONL (`question`, `answer` ending in `#### n`) as English training examples with solutions."""
    path = Path(path)
    split = split or path.stem
    out = []
    for lineno, row in iter_jsonl(path):
        if not isinstance(row.get("question"), str) or not isinstance(row.get("answer"), str):
            raise DataFormatError(path, lineno, "expected string fields 'question' and 'answer'")
        reasoning, value = gsm8k_answer(path, lineno, row["answer"], keep_calculator)
        solution = f"{reasoning}\n{ENGLISH_PHRASE} {_fmt(value)}."
        out.append(math_example(f"gsm8k-{split}-{len(out)}", "en", row["question"].strip(), value,
                                ENGLISH_PHRASE, solution))
        if limit and len(out) >= limit:
            break
    return out


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def load_mgsm_exemplars(path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """MGSM few-shot exemplars per language: [(question, step-by-step answer), ...]."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        table = data["MGSM_EXEMPLARS"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataFormatError(path, None, f"expected JSON with an 'MGSM_EXEMPLARS' mapping ({exc})") from None
    out = {}
    for lang, items in table.items():
        try:
            out[langs.resolve(lang).code] = [(items[k]["q"], items[k]["a"]) for k in sorted(items, key=int)]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(path, None, f"exemplars for {lang!r} are malformed ({exc})") from None
    return out


def answer_phrase_from_exemplar(answer: str) -> str:
    """'... 5 + 6 = 11. Jibu ni 11.' -> 'Jibu ni': the text between the last two numbers of the answer."""
    numbers = list(re.finditer(r"\d[\d,.]*", answer))
    if not numbers:
        return ENGLISH_PHRASE
    start = numbers[-2].end() if len(numbers) > 1 else 0
    phrase = answer[start:numbers[-1].start()].strip(" .。।:：=$€£¥₹\n")
    return phrase or ENGLISH_PHRASE


def load_mgsm(directory: str | Path, languages: list[str] | None = None, limit: int | None = None,
              exemplars: dict[str, list[tuple[str, str]]] | None = None, shots: int = 0) -> list[Example]:
    """MGSM TSVs (`mgsm_<lang>.tsv`: question<TAB>answer) as evaluation examples.

    With `shots` > 0, the language's own exemplars come first as earlier turns. The strict answer phrase of a
    language comes from its exemplars when given, else from the MGSM convention table in this module.
    """
    directory = Path(directory)
    files = {p.stem.split("_", 1)[1]: p for p in directory.glob("mgsm_*.tsv")}
    if not files:
        raise DataFormatError(directory, None, "no mgsm_<lang>.tsv files")
    wanted = langs.resolve_all(languages) if languages else [langs.resolve(c).code for c in sorted(files)]
    out = []
    for lang in wanted:
        if lang not in files:
            raise DataFormatError(directory, None, f"no mgsm_{lang}.tsv for language {lang!r}")
        lang_shots = (exemplars or {}).get(lang, [])[:shots]
        if shots and len(lang_shots) < shots:
            raise ValueError(f"{shots}-shot prompting needs {shots} exemplars for {lang!r}, found {len(lang_shots)}")
        phrase = answer_phrase_from_exemplar(exemplars[lang][0][1]) if exemplars and lang in exemplars \
            else MGSM_ANSWER_PHRASES.get(lang, ENGLISH_PHRASE)
        with open(files[lang], encoding="utf-8", newline="") as f:
            for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if len(row) != 2:
                    raise DataFormatError(files[lang], lineno, f"expected question<TAB>answer, got {len(row)} fields")
                value = parse_number(row[1])
                if value is None:
                    raise DataFormatError(files[lang], lineno, f"answer {row[1]!r} is not a number")
                out.append(math_example(f"gsm8k-test-{lineno - 1}", lang, row[0].strip(), value, phrase,
                                        exemplars=lang_shots))
                if limit and lineno >= limit:
                    break
    return out


# The answer phrases of the MGSM exemplars (Shi et al., 2022), used when no exemplar file is given.
MGSM_ANSWER_PHRASES = {"en": "The answer is", "es": "La respuesta es", "fr": "La réponse est",
                       "de": "Die Antwort ist", "ru": "Ответ —", "zh": "答案是", "ja": "答えは",
                       "th": "คำตอบคือ", "sw": "Jibu ni", "bn": "উত্তর হল", "te": "సమాధానం"}


def _rows(src) -> list[dict[str, Any]]:
    """Rows of a local JSONL/JSON/CSV/Parquet file, or of a Hugging Face dataset id (users with internet)."""
    path = Path(src.path)
    if path.suffix == ".jsonl":
        return [row for _, row in iter_jsonl(path)]
    from datasets import load_dataset

    if path.exists():
        kind = {".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(path.suffix)
        if kind is None:
            raise DataFormatError(path, None, "parallel data must be .jsonl, .json, .csv or .parquet")
        return list(load_dataset(kind, data_files=str(path), split="train"))
    return list(load_dataset(src.path, split=src.split))


def _solution(path, lineno: int, answer: Any, lang: str) -> tuple[str | None, float]:
    """A number, a GSM8K-style answer (`#### n`) or a worked solution ending in the answer."""
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return None, float(answer)
    if not isinstance(answer, str):
        raise DataFormatError(path, lineno, f"answer {answer!r} is neither a number nor text")
    if "####" in answer:
        reasoning, value = gsm8k_answer(path, lineno, answer, keep_calculator=False)
    else:
        value = parse_number(answer)
        reasoning = None if value is not None else answer.strip()
        if value is None:
            from langmix.evaluate.math import extract_flexible

            value = extract_flexible(answer, lang)
    if value is None:
        raise DataFormatError(path, lineno, "answer has no number")
    return reasoning, value


def load_parallel(src) -> list[Example]:
    """A parallel translated math training set: `long` (a row per language sharing an id) or `wide` (one row,
    columns `<field>_<lang>`). Each example's target is the worked solution (if given) ending with the
    language's answer phrase."""
    rows = _rows(src)
    out: list[Example] = []
    for lineno, row in enumerate(rows, 1):
        if src.layout == "long":
            cells = [(row.get(src.language_field), row.get(src.question_field), row.get(src.answer_field))]
        else:
            suffixes = [k[len(src.question_field) + 1:] for k in row if k.startswith(src.question_field + "_")]
            cells = [(s, row.get(f"{src.question_field}_{s}"), row.get(f"{src.answer_field}_{s}")) for s in suffixes]
        if src.id_field not in row or not cells:
            raise DataFormatError(src.path, lineno, f"expected an {src.id_field!r} field and question/answer fields")
        for lang_code, question, answer in cells:
            if not isinstance(question, str) or answer is None or not isinstance(lang_code, str):
                raise DataFormatError(src.path, lineno, f"missing {src.question_field}/{src.answer_field}/"
                                      f"{src.language_field}")
            lang = langs.resolve(lang_code).code
            reasoning, value = _solution(src.path, lineno, answer, lang)
            phrase = MGSM_ANSWER_PHRASES.get(lang, ENGLISH_PHRASE)
            tail = f"{phrase} {_fmt(value)}."
            solution = tail if reasoning is None else (reasoning if phrase in reasoning else f"{reasoning}\n{tail}")
            out.append(math_example(str(row[src.id_field]), lang, question.strip(), value, phrase, solution))
            if src.limit and len(out) >= src.limit * max(1, len(cells)):
                return out
    return out
