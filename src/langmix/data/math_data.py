"""Math data: GSM8K, MGSM, MGSM exemplars and parallel translated sets, rendered into `Example`s.

One function, `math_messages`, builds the conversation for training and for evaluation (zero- or few-shot with
native-language exemplars), so training and evaluation prompts cannot disagree. Lineage: MGSM's items are the
first 250 GSM8K test items, so MGSM item i carries source id `gsm8k-test-i` in every language.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from langmix import languages as langs
from langmix.data.answers import (answer_line, check_repeated_questions, gsm8k_answer, read_number, read_solution,
                                  target_answer_phrase, write_number)
from langmix.data.files import (DataFormatError, is_pattern, iter_delimited, iter_jsonl, language_files, read_rows,
                                read_text, require_dir)
from langmix.records import Example

ENGLISH_PHRASE = langs.answer_phrase("en")  # answer phrases live in the language registry only


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
    """An evaluation example has no solution: its messages end with the question. With exemplars, its reference
    counts them (`shots`: the lineage check leaves them out of the question)."""
    reference: dict[str, Any] = {"answer": answer, "answer_phrase": answer_phrase}
    if exemplars:
        reference["shots"] = len(exemplars)
    return Example(id=f"{source_id}-{lang}", source_id=source_id, task="math", language=lang,
                   messages=math_messages(question, solution, exemplars), reference=reference)


def load_gsm8k(path: str | Path, split: str | None = None, keep_calculator: bool = False,
               limit: int | None = None) -> list[Example]:
    """GSM8K JSONL (`question`, `answer` ending in `#### n`) as English training examples with solutions."""
    path = Path(path)
    split = split or path.stem
    out = []
    seen = []
    for lineno, row in iter_jsonl(path):
        if not isinstance(row.get("question"), str) or not isinstance(row.get("answer"), str):
            raise DataFormatError(path, lineno, "expected string fields 'question' and 'answer'")
        if not row["question"].strip():
            raise DataFormatError(path, lineno, "empty question")
        reasoning, value = gsm8k_answer(path, lineno, row["answer"], keep_calculator)
        solution = f"{reasoning}\n{answer_line(value, 'en')}"
        out.append(math_example(f"gsm8k-{split}-{len(out)}", "en", row["question"].strip(), value,
                                ENGLISH_PHRASE, solution))
        seen.append((path, lineno, out[-1].source_id, "en", row["question"], value))
        if limit and len(out) >= limit:
            break
    if not out:
        raise DataFormatError(path, None, "no examples in file")
    check_repeated_questions(seen)
    return out


def load_mgsm_exemplars(path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """MGSM few-shot exemplars per language: [(question, step-by-step answer), ...]."""
    path = Path(path)
    text = read_text(path)
    try:
        data = json.loads(text)
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


_SENTENCE_END = re.compile(r"[.。।!?！？\n]")


def exemplar_answer_phrases(answers: list[str]) -> tuple[str, ...]:
    """The answer phrases a language's few-shot answers use before their final number, most frequent first.

    Each answer's phrase is the longest word-suffix of its last sentence before the final number that is as
    common among the answers as any of its suffixes ("Die Antwort lautet" 7 times and "Die Antwort ist" once in
    MGSM's German exemplars; Thai "คำตอบคือ", not "ชิ้น คำตอบคือ"). The registry's MGSM phrases are checked
    against this derivation in the tests.
    """
    segments = []
    for answer in answers:
        numbers = list(re.finditer(r"\d[\d,.]*", answer))
        if numbers:
            before = answer[:numbers[-1].start()].rstrip(" :：=$€£¥₹\n")
            words = _SENTENCE_END.split(before)[-1].split()
            if words:
                segments.append(words)
    suffixes: Counter[str] = Counter()
    for words in segments:
        suffixes.update({" ".join(words[i:]) for i in range(len(words))})
    phrases: Counter[str] = Counter()
    for words in segments:
        options = [" ".join(words[i:]) for i in range(len(words))]  # longest first
        best = max(suffixes[o] for o in options)
        phrases[next(o for o in options if suffixes[o] == best)] += 1
    return tuple(p for p, _ in phrases.most_common())


def load_mgsm(directory: str | Path, languages: list[str] | None = None, limit: int | None = None,
              exemplars: dict[str, list[tuple[str, str]]] | None = None, shots: int = 0,
              offset: int = 0, exemplars_file: str | Path = "exemplars") -> list[Example]:
    """MGSM TSVs (`mgsm_<lang>.tsv`: question<TAB>answer) as evaluation examples: per language, `limit` items
    from item `offset` on (item i is `gsm8k-test-<i>`, counted from 0).

    With `shots` > 0, the language's own exemplars come first as earlier turns; fewer than `shots` exemplars for a
    language (or none given) is a DataFormatError naming `exemplars_file`, before any file is read. The answer
    phrase recorded on each item is the language's canonical phrase in the registry (`langmix.languages`); a
    language without one takes the phrase its exemplars use most, else English's. A question given twice in one
    language is refused with two answers, else counted in a warning (`answers.check_repeated_questions`).
    """
    directory = require_dir(directory)
    files = _mgsm_files(directory)
    wanted = langs.resolve_all(languages) if languages else sorted(files)
    short = {lang: len((exemplars or {}).get(lang, [])) for lang in wanted
             if shots and len((exemplars or {}).get(lang, [])) < shots}
    if short:
        raise DataFormatError(exemplars_file, None, f"`shots: {shots}` needs {shots} exemplars per language; " + (
            ", ".join(f"{lang} has {n}" for lang, n in short.items()) if exemplars is not None
            else "no exemplars were given (set `exemplars`)"))
    out = []
    seen: list[tuple[Path, int, str, str, str, float]] = []
    for lang in wanted:
        if lang not in files:
            raise DataFormatError(directory, None, f"no mgsm_{lang}.tsv for language {lang!r}")
        lang_shots = (exemplars or {}).get(lang, [])[:shots]
        derived = exemplar_answer_phrases([a for _, a in exemplars[lang]]) if exemplars and lang in exemplars \
            else ()
        phrase = langs.get(lang).answer_phrase or (derived[0] if derived else ENGLISH_PHRASE)
        n_before = len(out)
        for index, (lineno, cells) in enumerate(iter_delimited(files[lang], "\t", header=False)):
            if lineno != index + 1:  # a TSV row is one line: only blank lines are skipped
                raise DataFormatError(files[lang], index + 1, "blank line: an MGSM item's id is its row number, so "
                                      "a blank line leaves every later item's id ambiguous (remove it, or put the "
                                      "missing item there)")
            if index < offset:
                continue
            row = list(cells.values())
            if len(row) != 2:
                raise DataFormatError(files[lang], lineno, f"expected question<TAB>answer, got {len(row)} fields")
            value = read_number(files[lang], lineno, row[1])
            out.append(math_example(f"gsm8k-test-{index}", lang, row[0].strip(), value, phrase,
                                    exemplars=lang_shots))
            seen.append((files[lang], lineno, out[-1].id, lang, row[0], value))
            if limit and index + 1 >= offset + limit:
                break
        if len(out) == n_before:
            raise DataFormatError(files[lang], None, f"no items in file from item {offset} on" if offset
                                  else "no items in file")
    check_repeated_questions(seen, "the scores")
    return out


def _mgsm_files(directory: Path) -> dict[str, Path]:
    """{code: file} of a directory's `mgsm_<lang>.tsv` files, the language part read through the registry
    (`mgsm_EN.tsv`, `mgsm_es-ES.tsv`); an unknown language or two files for one language is an error."""
    files: dict[str, Path] = {}
    for p in sorted(directory.glob("mgsm_*.tsv")):
        try:
            code = langs.resolve(p.stem.split("_", 1)[1]).code
        except langs.UnknownLanguageError as exc:
            raise DataFormatError(p, None, f"the file name's language: {exc}") from None
        if code in files:
            raise DataFormatError(p, None, f"a second file for {code!r} (the first is {files[code].name})")
        files[code] = p
    if not files:
        raise DataFormatError(directory, None, "no mgsm_<lang>.tsv files")
    return files


# A view of the registry's canonical phrases, kept for importers; the phrases themselves live in languages.py.
MGSM_ANSWER_PHRASES = {code: langs.answer_phrase(code) for code in langs.MGSM_LANGUAGES}


ROLES = ("id", "language", "question", "answer", "english")


def _is_field(src, name: str) -> bool:
    """Whether a column name is a configured field, or `<question|answer>_<lang>` of a wide file (any case)."""
    name = str(name).strip().lower()
    fields = {src.field(r).lower() for r in ROLES if src.field(r)}
    return name in fields or any(name.startswith(src.field(r).lower() + "_") for r in ("question", "answer"))


def _match_case(src, rows: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """Rows with columns named as the configured fields in another case (`Question`, `QUESTION_ES`) renamed to
    them; a column whose exact name is also present is left alone."""
    if not rows:
        return rows
    names = list(rows[0][1])
    wanted = {src.field(r).lower(): src.field(r) for r in ROLES if src.field(r)}
    rename = {}
    for name in names:
        base, sep, suffix = str(name).partition("_")
        target = wanted.get(str(name).lower()) or (wanted.get(base.lower(), "") + sep + suffix
                                                   if sep and base.lower() in wanted else None)
        if target and target != name and target not in names:
            rename[name] = target
    if not rename:
        return rows
    return [(lineno, {rename.get(k, k): v for k, v in row.items()}) for lineno, row in rows]


def _local_rows(src, path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of one local file. A `.tsv`/`.csv` whose first row names a configured field (or `<field>_<lang>`
    columns, in any case) has a header; otherwise its columns are positional ("0", "1", ...), and question/answer
    default to the first two (MGSM's TSVs). Column names match the configured fields case-insensitively."""
    if path.suffix.lower() not in (".tsv", ".csv"):
        return _match_case(src, list(read_rows(path)))
    rows = list(read_rows(path, header=False))
    if rows and any(_is_field(src, v) for v in rows[0][1].values()):
        return _match_case(src, list(read_rows(path, header=True)))
    return rows


def _rows(src) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of a local JSONL/JSON/TSV/CSV/Parquet file, or of a Hugging Face dataset id (users with
    internet; the row number stands for the line)."""
    path = Path(src.path)
    if path.exists():
        return _local_rows(src, path)
    if path.suffix.lower() in (".jsonl", ".json", ".tsv", ".csv", ".parquet") or path.is_absolute():
        raise DataFormatError(path, None, "no such file")
    from datasets import load_dataset

    return list(enumerate(load_dataset(src.path, split=src.split), 1))


def _columns(src, row: dict[str, Any]) -> dict[str, str]:
    """Column name per role; a headerless TSV/CSV row (columns "0", "1", ...) reads question and answer from its
    first two columns unless `fields` names positions."""
    cols = {role: src.field(role) for role in ROLES}
    if row and all(str(k).isdigit() for k in row):
        for role, default in (("question", "0"), ("answer", "1")):
            if not cols[role].isdigit():
                cols[role] = default
    return cols


def default_id_prefix(path: str) -> str:
    """`data/mgsm_{lang}.tsv` -> `mgsm`; `data/{language}.jsonl` -> `data`; `train.jsonl` -> `train`."""
    stem = Path(path).name.split(".")[0]
    for placeholder in ("{lang}", "{language}"):
        stem = stem.replace(placeholder, "")
    return stem.strip("_-. ") or Path(path).parent.name or "row"


def _cells(src, path, lineno: int, row: dict[str, Any], cols: dict[str, str], file_lang: str | None
           ) -> list[tuple[Any, Any, Any]]:
    """(language, question, answer) of one row: the file's language, the row's language column, or every
    `<question>_<lang>` column of a wide row."""
    if file_lang is not None:
        return [(file_lang, row.get(cols["question"]), row.get(cols["answer"]))]
    if src.layout == "long":
        return [(row.get(cols["language"]), row.get(cols["question"]), row.get(cols["answer"]))]
    q, a = cols["question"], cols["answer"]
    suffixes = [k[len(q) + 1:] for k in row if k.startswith(q + "_") and k != cols["english"]]
    shared = a in row and not any(f"{a}_{s}" in row for s in suffixes)  # one answer column for every language
    cells = [(s, row.get(f"{q}_{s}"), row.get(a if shared else f"{a}_{s}")) for s in suffixes]
    return [c for c in cells if c[1] not in (None, "") or c[2] not in (None, "")]  # both empty: not in this item


def _shown_columns(row: dict[str, Any]) -> str:
    names = [str(k) for k in row]
    return ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")


def _row_id(src, path, lineno: int, row: dict[str, Any], cols: dict[str, str], index: int, has_ids: bool,
            prefix: str) -> str:
    if not has_ids:
        return f"{prefix}-{index}"
    if row.get(cols["id"]) is None or not str(row[cols["id"]]).strip():
        raise DataFormatError(path, lineno, f"no {cols['id']!r} field (the first row has one)")
    return str(row[cols["id"]]).strip()  # '1 ' and '1' are one item


_SEP = {".tsv": "<TAB>", ".csv": ","}


def load_parallel(src, languages: list[str] | None = None) -> list[Example]:
    """A parallel translated math training set, in any of the shapes public multilingual sets come in:

    - `long`: a row per language sharing an id; `wide`: one row per item, columns `<field>_<lang>`;
    - a per-language file set: `path` with `{lang}` or `{language}`, looked up for `languages` (default: every
      registry language); item i of every file is the same item;
    - rows without an id column: the row number (from 0, per file) is the id, `<id_prefix>-<i>`;
    - `fields` maps roles to columns; an `english` column becomes the `en` example of the same source id.

    Each example's target is the worked solution (if given) ending with the language's answer phrase. A missing
    field, a non-numeric answer, an unknown language or an item given twice is a DataFormatError naming the line.
    """
    if is_pattern(src.path):
        if src.layout == "wide":
            raise DataFormatError(src.path, None, "a per-language file set has a row per item; layout 'wide' "
                                  "does not apply")
        tables = [(path, lang, _local_rows(src, path)) for lang, path in language_files(src.path, languages).items()]
    else:
        tables = [(Path(src.path), None, _rows(src))]
    prefix = src.id_prefix or default_id_prefix(src.path)
    out: list[Example] = []
    seen: dict[tuple[str, str], str] = {}
    values: dict[str, tuple[float, str]] = {}
    english: dict[str, tuple[str, float, str]] = {}
    taken: Counter = Counter()  # items kept per language (`limit` counts items per language, not rows)
    kept: list[tuple[Path, int, str, str, str, float]] = []
    for path, file_lang, rows in tables:
        if not rows:
            raise DataFormatError(path, None, "no rows in file")
        cols = _columns(src, rows[0][1])
        positional = all(str(k).isdigit() for k in rows[0][1]) \
            and not any(str(c).isdigit() for c in src.fields.values())  # headerless, no column mapped by position
        has_ids = cols["id"] in rows[0][1]
        if not has_ids and file_lang is None and src.layout == "long":
            wide = any(str(k).startswith(cols["question"] + "_") for k in rows[0][1])
            raise DataFormatError(path, rows[0][0], f"expected an {cols['id']!r} field: a long layout needs ids "
                                  "shared by the languages (or use one file per language)" + (
                                      f"; its {cols['question']}_<lang> columns look like a wide file: set "
                                      "layout: wide" if wide else f" (columns: {_shown_columns(rows[0][1])})"))
        for index, (lineno, row) in enumerate(rows):
            if positional and len(row) > 2:  # as MGSM's loader: a third column is no part of question<TAB>answer
                raise DataFormatError(path, lineno, f"expected question{_SEP[path.suffix.lower()]}answer, got "
                                      f"{len(row)} fields (name the columns in a header row, or map them with "
                                      "`fields`)")
            sid = _row_id(src, path, lineno, row, cols, index, has_ids, prefix)
            cells = _cells(src, path, lineno, row, cols, file_lang)
            if not cells:
                raise DataFormatError(path, lineno, f"expected {cols['question']}_<lang> and {cols['answer']}_<lang> "
                                      f"fields (columns: {_shown_columns(row)})")
            for lang_code, question, answer in cells:
                missing = [name for name, bad in ((cols["language"], not isinstance(lang_code, str)),
                                                  (cols["question"], not isinstance(question, str)
                                                   or not question.strip()),
                                                  (cols["answer"], answer in (None, ""))) if bad]
                if missing:
                    where_lang = f" for {lang_code!r}" if file_lang is None and src.layout == "wide" else ""
                    raise DataFormatError(path, lineno, f"missing {', '.join(missing)}{where_lang} (or empty; "
                                          f"columns: {_shown_columns(row)}; `fields` maps a role to a column)")
                try:
                    lang = langs.resolve(lang_code).code
                except langs.UnknownLanguageError as exc:
                    raise DataFormatError(path, lineno, str(exc)) from None
                where = f"{path}:{lineno}"
                if (sid, lang) in seen:
                    raise DataFormatError(path, lineno, f"item {sid!r} in {lang} is given twice (first at "
                                          f"{seen[sid, lang]})")
                seen[sid, lang] = where
                if src.limit and taken[lang] >= src.limit:
                    continue
                taken[lang] += 1
                reasoning, value = read_solution(path, lineno, answer, lang)
                if sid in values and values[sid][0] != value:
                    raise DataFormatError(path, lineno, f"item {sid!r}: answer {write_number(value, 'en')} in {lang} "
                                          f"differs from {write_number(values[sid][0], 'en')} at {values[sid][1]} "
                                          "(are the files aligned?)")
                values.setdefault(sid, (value, where))
                phrase = target_answer_phrase(lang)
                tail = answer_line(value, lang, phrase)
                solution = tail if reasoning is None else (reasoning if phrase in reasoning else f"{reasoning}\n{tail}")
                out.append(math_example(sid, lang, question.strip(), value, phrase, solution))
                kept.append((path, lineno, sid, lang, question, value))
            original = row.get(cols["english"]) if cols["english"] else None
            if isinstance(original, str) and original.strip() and sid in values:
                known = english.get(sid)
                if known and " ".join(known[0].split()) != " ".join(original.split()):
                    raise DataFormatError(path, lineno, f"item {sid!r}: English original differs from the one at "
                                          f"{known[2]} (are the files aligned?)")
                english.setdefault(sid, (original.strip(), values[sid][0], f"{path}:{lineno}"))
    for sid, (question, value, _) in english.items():
        if (sid, "en") not in seen and not (src.limit and taken["en"] >= src.limit):
            taken["en"] += 1
            out.append(math_example(sid, "en", question, value, ENGLISH_PHRASE, answer_line(value, "en")))
    check_repeated_questions(kept)
    return out
