"""Re-score stored model outputs (from langmix, another harness or a hosted API) without a model.

Input: JSONL, one object per line with `language`, `output`, and `reference`:
- math: the answer as a finite number (or a string number); optional `answer_phrase` (strict extraction also
  accepts the language's registry phrases, `langmix.languages`);
- api: `{"functions": [...schemas], "possible_answer": [{func: {param: [values]}}]}` (BFCL's shape; `[]` for
  irrelevance); `ground_truth` is accepted for `possible_answer`; optional `request` (the user's text) and
  `verbatim_arguments` for translated items.
Output: one verdict per input line, in order, each with the checker `mode` for api. A line that cannot be read
(not UTF-8, not JSON, nested too deeply, a lone surrogate, a reference that is not a finite number or not in
BFCL's shape, a function schema the checker cannot read: `langmix.evaluate.schema`) is a verdict with reason
`bad_input` and its line number, never skipped; an error inside a scorer is raised, not turned into bad_input.
The verdicts file is written to a temporary file beside `out` and renamed into place, so it is complete or
absent.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from langmix import languages as langs
from langmix.data.files import iter_raw_lines
from langmix.evaluate import langid
from langmix.evaluate.ast_check import MODES, check
from langmix.evaluate.math import score_math
from langmix.evaluate.number_reading import reference_number

log = logging.getLogger(__name__)


def _expected(ref: dict[str, Any]) -> list[dict[str, dict[str, list[Any]]]]:
    """The expected calls; their shape and the schemas' are validated by the checker (`evaluate.schema`)."""
    expected = ref.get("possible_answer", ref.get("ground_truth"))
    if not isinstance(expected, list):
        raise ValueError("api reference needs a 'possible_answer' list")
    return expected


def _code(language: str) -> str:
    """The registry code of a language code or name; an unknown one as given (its lines are bad input)."""
    try:
        return langs.resolve(language).code
    except ValueError:
        return language


def _score_line(task: str, row: dict[str, Any], languages: list[str], api_mode: str) -> dict[str, Any]:
    lang, output, ref = row.get("language"), row.get("output"), row.get("reference")
    if not isinstance(lang, str) or not isinstance(output, str) or ref is None:
        raise ValueError("needs string 'language' and 'output', and a 'reference'")
    langs.resolve(lang)  # an unknown language is a bad input (UnknownLanguageError is a ValueError)
    if task == "math":
        phrase = row.get("answer_phrase") if isinstance(row.get("answer_phrase"), str) else ""
        v = score_math(output, reference_number(ref), phrase, lang)  # a language without phrases: English's, warned
        return {"correct": v.strict_correct, "correct_flexible": v.flexible_correct, "extracted": v.strict,
                "extracted_flexible": v.flexible, "reason": v.reason}
    if not isinstance(ref, dict):
        raise ValueError("api reference must be an object with 'functions' and 'possible_answer'")
    request = ref.get("request") if isinstance(ref.get("request"), str) else None
    verbatim = [x for x in ref.get("verbatim_arguments", []) if isinstance(x, str)] \
        if isinstance(ref.get("verbatim_arguments"), list) else []
    v = check(output, _expected(ref), ref.get("functions", []),
              lambda got, canonical: langid.wrong_language_argument(got, canonical, lang, languages, request),
              mode=api_mode, request=request, verbatim=verbatim, language=lang)
    return {"correct": v.correct, "name_correct": v.name_correct, "parsed_calls": v.calls, "reason": v.reason,
            "wrong_language_args": v.wrong_language_args, "detail": v.detail, "mode": v.mode,
            "leniencies": v.leniencies}


def _read(predictions: Path) -> list[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, row or None, error or None) for every non-blank line, decoded one line at a time."""
    rows: list[tuple[int, dict[str, Any] | None, str | None]] = []
    for lineno, raw in iter_raw_lines(predictions):  # a leading byte-order mark is dropped
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            rows.append((lineno, None, f"not UTF-8 (byte {exc.start})"))
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            json.dumps(row, ensure_ascii=False).encode("utf-8")  # lone surrogates cannot be written back
        except json.JSONDecodeError as exc:
            rows.append((lineno, None, f"not valid JSON ({exc.msg})"))
        except RecursionError:
            rows.append((lineno, None, "JSON nested too deeply"))
        except UnicodeEncodeError:
            rows.append((lineno, None, "contains a lone surrogate (\\ud800-\\udfff), not valid Unicode"))
        else:
            ok = isinstance(row, dict)
            rows.append((lineno, row if ok else None, None if ok else "not a JSON object"))
    return rows


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same resolved path (symlinks, `..`, relative paths) or, both
    existing, the same inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _dump(verdict: dict[str, Any]) -> str:
    """One verdict as a JSON line; parsed calls that JSON cannot hold (bytes, tuple keys) are written as text."""
    try:
        return json.dumps(verdict, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps({**verdict, "parsed_calls": repr(verdict.get("parsed_calls"))}, ensure_ascii=False,
                          default=repr)


def rescore(task: str, predictions: Path, out: Path, *, api_mode: str = "multilingual"
            ) -> dict[str, dict[str, float]]:
    """Write verdicts to `out`; return per-language totals {lang: {n, correct, accuracy, bad_input}, and for math
    correct_flexible}: n and accuracy count the lines that could be scored (accuracy None where none could),
    bad_input the others. `api_mode` is the AST checker's rule set (bfcl or multilingual); each api verdict records
    it."""
    if task not in ("math", "api"):
        raise ValueError(f"unknown task {task!r} (expected math or api)")
    if api_mode not in MODES:
        raise ValueError(f"unknown checker mode {api_mode!r} (expected one of {MODES})")
    if _same_file(Path(predictions), Path(out)):  # the predictions are read whole, then the verdicts replace them
        raise ValueError(f"the verdicts file {out} is the predictions file {predictions}: writing it would "
                         "overwrite the outputs; choose another --out")
    rows = _read(Path(predictions))
    for _, row, _ in rows:  # one code per language ('de-DE', 'German' -> 'de'), for the table and the scorers
        if row and isinstance(row.get("language"), str):
            row["language"] = _code(row["language"])
    # lingua's candidates for wrong_language_args: fixed, so a line's verdict does not depend on the rest of the file
    languages = sorted(set(langs.MGSM_LANGUAGES) | {"en"})
    totals: dict[str, dict[str, float]] = defaultdict(
        lambda: {"n": 0, "correct": 0, "bad_input": 0} | ({"correct_flexible": 0} if task == "math" else {}))
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:  # named by the path asked for, not the temporary file's
        raise OSError(f"cannot write {out}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for lineno, row, error in rows:
                lang = row.get("language") if row and isinstance(row.get("language"), str) else "?"
                verdict: dict[str, Any] = {}
                if error is None:
                    try:
                        verdict = _score_line(task, row, languages, api_mode)
                    except (ValueError, TypeError, RecursionError) as exc:
                        error = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
                if error is not None:  # counted apart: a line that cannot be scored is not a wrong answer
                    verdict = {"correct": False, "reason": "bad_input", "detail": f"line {lineno}: {error}"}
                    totals[lang]["bad_input"] += 1
                    log.warning("%s:%d: bad input: %s", predictions, lineno, error)
                else:
                    totals[lang]["n"] += 1
                    totals[lang]["correct"] += bool(verdict["correct"])
                    if task == "math":
                        totals[lang]["correct_flexible"] += bool(verdict["correct_flexible"])
                f.write(_dump({"line": lineno, "language": lang, **verdict}) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for t in totals.values():
        t["accuracy"] = t["correct"] / t["n"] if t["n"] else None  # nothing scored: no accuracy, not 0
    return dict(totals)
