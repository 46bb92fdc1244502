"""Re-score stored model outputs (from langmix, another harness or a hosted API) without a model.

Input: JSONL, one object per line with `language`, `output`, and `reference`:
- math: the answer as a number (or a string number); optional `answer_phrase` (else the MGSM phrase of the
  language);
- api: `{"functions": [...schemas], "possible_answer": [{func: {param: [values]}}]}` (BFCL's shape; `[]` for
  irrelevance); `ground_truth` is accepted for `possible_answer`.
Output: one verdict per input line, in order. A line that cannot be read is a verdict with reason `bad_input`
(and counted), never skipped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from langmix.data.math_data import ENGLISH_PHRASE, MGSM_ANSWER_PHRASES
from langmix.evaluate import langid
from langmix.evaluate.ast_check import check
from langmix.evaluate.math import parse_number, score_math


def _score_line(task: str, row: dict[str, Any], languages: list[str]) -> dict[str, Any]:
    lang, output, ref = row.get("language"), row.get("output"), row.get("reference")
    if not isinstance(lang, str) or not isinstance(output, str) or ref is None:
        raise ValueError("needs string 'language' and 'output', and a 'reference'")
    if task == "math":
        answer = ref if isinstance(ref, (int, float)) else parse_number(str(ref))
        if answer is None:
            raise ValueError(f"reference {ref!r} is not a number")
        phrase = row.get("answer_phrase") or MGSM_ANSWER_PHRASES.get(lang, ENGLISH_PHRASE)
        v = score_math(output, answer, phrase, lang)
        return {"correct": v.strict_correct, "correct_flexible": v.flexible_correct, "extracted": v.strict,
                "extracted_flexible": v.flexible, "reason": v.reason}
    if not isinstance(ref, dict):
        raise ValueError("api reference must be an object with 'functions' and 'possible_answer'")
    expected = ref.get("possible_answer", ref.get("ground_truth"))
    if not isinstance(expected, list):
        raise ValueError("api reference needs a 'possible_answer' list")
    v = check(output, expected, ref.get("functions", []),
              lambda got, canonical: langid.wrong_language_argument(got, canonical, lang, languages))
    return {"correct": v.correct, "name_correct": v.name_correct, "parsed_calls": v.calls, "reason": v.reason,
            "wrong_language_args": v.wrong_language_args, "detail": v.detail}


def rescore(task: str, predictions: Path, out: Path) -> dict[str, dict[str, float]]:
    """Write verdicts to `out`; return per-language totals {lang: {n, correct, accuracy, bad_input}}."""
    if task not in ("math", "api"):
        raise ValueError(f"unknown task {task!r} (expected math or api)")
    rows: list[tuple[int, dict | None, str | None]] = []
    with open(predictions, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append((lineno, row if isinstance(row, dict) else None, None if isinstance(row, dict)
                             else "not a JSON object"))
            except json.JSONDecodeError as exc:
                rows.append((lineno, None, f"not valid JSON ({exc.msg})"))
    languages = sorted({r["language"] for _, r, _ in rows if r and isinstance(r.get("language"), str)
                        and r["language"] in MGSM_ANSWER_PHRASES} | {"en"})
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "correct": 0, "bad_input": 0})
    with open(out, "w", encoding="utf-8") as f:
        for lineno, row, error in rows:
            lang = row.get("language") if row and isinstance(row.get("language"), str) else "?"
            verdict: dict[str, Any]
            if error is None:
                try:
                    verdict = _score_line(task, row, languages)
                except ValueError as exc:
                    error = str(exc)
            if error is not None:
                verdict = {"correct": False, "reason": "bad_input", "detail": f"line {lineno}: {error}"}
                totals[lang]["bad_input"] += 1
            totals[lang]["n"] += 1
            totals[lang]["correct"] += bool(verdict["correct"])
            f.write(json.dumps({"line": lineno, "language": lang, **verdict}, ensure_ascii=False) + "\n")
    for t in totals.values():
        t["accuracy"] = t["correct"] / t["n"] if t["n"] else 0.0
    return dict(totals)
