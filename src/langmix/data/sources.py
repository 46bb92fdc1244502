"""One interface over the data a study trains and evaluates on, whatever its source.

`open_source(cfg)` gives an object with `pool(task, languages)` (a parallel training pool for the mixture
sampler) and `eval_examples(task, languages)`. The synthetic world and files on disk both provide it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

from langmix.config import ConfigError, DataConfig, FileSource
from langmix.data import api_data, math_data
from langmix.data.answers import check_repeated_questions
from langmix.data.files import DataFormatError, load_example_file
from langmix.data.synth import SynthWorld, to_example
from langmix.mixtures import MixtureError
from langmix.records import Example

log = logging.getLogger(__name__)

Render = Callable[[int, str], Example]


def check_task_examples(examples: list[Example], task: str, path: str, split: str,
                        label: str | None = None) -> list[Example]:
    """`examples` of `data.<task>.<split>`, refused (DataFormatError naming up to 5) when any is of another task,
    when an item repeats in one language (source id and language: it would count twice), when it has no question
    (no user message, or an empty one), when its few-shot count (`reference.shots`) does not fit its messages, or
    (train) when its last message is not the assistant's answer to learn, or that answer is empty.
    `label` names the examples in the message (default `data.<task>.<split>`)."""
    problems = [f"{ex.id!r} is a {ex.task!r} example" for ex in examples if ex.task != task]
    seen: set[tuple[str, str]] = set()
    problems += [f"source {ex.source_id!r} repeats in {ex.language!r} ({ex.id!r})" for ex in examples
                 if (ex.source_id, ex.language) in seen or seen.add((ex.source_id, ex.language))]
    problems += [f"{ex.id!r} has no question (no user message, or an empty one)" for ex in examples
                 if not (ex.last_user_turn() or "").strip()]
    problems += [f"{ex.id!r} {problem}" for ex in examples if (problem := _shots_problem(ex))]
    if split == "train":
        problems += [f"{ex.id!r} ends with a {ex.messages[-1]['role'] if ex.messages else 'missing'!r} message, "
                     f"not the assistant's answer" for ex in examples
                     if not ex.messages or ex.messages[-1]["role"] != "assistant"]
        problems += [f"{ex.id!r} has an empty answer (its last, assistant message)" for ex in examples
                     if ex.messages and ex.messages[-1]["role"] == "assistant" and not ex.target().strip()]
    if problems:
        raise DataFormatError(path, None, f"{len(problems)} problem(s) in {label or f'data.{task}.{split}'}: "
                              + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
    return examples


def _shots_problem(ex: Example) -> str:
    """Why `ex`'s few-shot count (`reference.shots`) does not fit its messages, or ''."""
    try:
        ex.exemplar_messages()
    except ValueError as exc:
        return str(exc)
    return ""


def share_tools(examples: list[Example]) -> list[Example]:
    """`examples`, those whose tool schemas encode to the same JSON given one shared list (validation gives each
    example its own copy). A run's predictions carry each example's schemas, and their writer encodes a list that
    many records share once per file (an API prediction is ~90% schemas: 72 vs 35 us per record, measured)."""
    shared: dict[str, list] = {}
    for ex in examples:
        if ex.tools:
            ex.tools = shared.setdefault(json.dumps(ex.tools, ensure_ascii=False), ex.tools)
    return examples


class _EvalSets:
    """What every source shares: an eval set (task, languages) is built once and the same list returned after (a
    study asks for it once per run). Sources define `_load_eval` and set `self._eval = {}`."""

    _eval: dict[tuple, list[Example]]

    def eval_examples(self, task: str, languages: list[str]) -> list[Example]:
        key = (task, tuple(languages))
        if key not in self._eval:
            self._eval[key] = share_tools(self._load_eval(task, languages))
        return self._eval[key]

    def _load_eval(self, task: str, languages: list[str]) -> list[Example]:
        raise NotImplementedError


class SynthSource(_EvalSets):
    def __init__(self, cfg: DataConfig) -> None:
        self.world = SynthWorld(cfg.seed, cfg.train_pool, cfg.eval_items)
        self._eval = {}

    def pool(self, task: str, languages: list[str]) -> tuple[int, Render]:
        items = self.world.train_source(task)
        return len(items), lambda i, lang: to_example(items[i], lang)

    def _load_eval(self, task: str, languages: list[str]) -> list[Example]:
        return self.world.eval_examples(task, languages)


def first_per_language(examples: list[Example], limit: int) -> list[Example]:
    """The first `limit` examples of each language, in file order (`limit` counts items per language: a file sorted
    by language must not give all of its first language and nothing of the others)."""
    taken: Counter = Counter()
    kept = []
    for ex in examples:
        if taken[ex.language] < limit:
            taken[ex.language] += 1
            kept.append(ex)
    return kept


def load_examples(src: FileSource, languages: list[str] | None = None) -> list[Example]:
    """The examples of one file source, in langmix's record. `languages` are the languages a per-language file
    set (`parallel` with a `{lang}`/`{language}` pattern) is looked up for; by default, every registry language."""
    path = Path(src.path)
    if src.format == "gsm8k":
        return math_data.load_gsm8k(path, limit=src.limit)
    if src.format == "mgsm":
        exemplars = math_data.load_mgsm_exemplars(src.exemplars) if src.exemplars else None
        return math_data.load_mgsm(path, languages, src.limit, exemplars, src.shots, src.offset,
                                   src.exemplars or "exemplars")
    if src.format == "parallel":
        return math_data.load_parallel(src, languages)
    if src.format == "examples":
        examples = load_example_file(path)
        return first_per_language(examples, src.limit) if src.limit else examples
    if src.format == "bfcl":
        return api_data.load_bfcl(path, src.category or "simple_python", src.limit)
    if src.format == "apibank":
        if not src.schemas:
            raise DataFormatError(path, None, "apibank needs `schemas` (the all_apis.csv path)")
        return api_data.load_apibank(path, api_data.load_apibank_schemas(src.schemas), src.limit)
    raise ValueError(f"unknown format {src.format!r}")


class FileDataSource(_EvalSets):
    def __init__(self, cfg: DataConfig) -> None:
        self.cfg = cfg
        self._train: dict[str, dict[str, dict[str, Example]]] = {}
        self._eval = {}
        self._warned: set[tuple[str, tuple[str, ...]]] = set()

    def _files(self, task: str):
        files = self.cfg.task_files(task)
        if files is None:
            raise ConfigError(f"data.source is 'files' but data.{task} is not configured")
        return files

    def _train_by_source(self, task: str) -> dict[str, dict[str, Example]]:
        if task not in self._train:
            files = self._files(task)
            if files.train is None:
                raise ConfigError(f"data.{task}.train is not configured: fine-tuned runs need training data")
            by_source: dict[str, dict[str, Example]] = defaultdict(dict)
            for ex in check_task_examples(load_examples(files.train), task, files.train.path, "train"):
                by_source[ex.source_id][ex.language] = ex
            self._train[task] = dict(by_source)
        return self._train[task]

    def pool(self, task: str, languages: list[str]) -> tuple[int, Render]:
        """Source items available in every language of the mixture (parallel data)."""
        by_source = self._train_by_source(task)
        ids = sorted(sid for sid, by_lang in by_source.items() if all(lang in by_lang for lang in languages))
        if not ids:
            have = sorted({lang for by_lang in by_source.values() for lang in by_lang})
            raise MixtureError(f"no training item of data.{task}.train exists in all of {languages} "
                               f"(languages present: {have}); translate the data first")
        partial = len(by_source) - len(ids)
        if partial and (task, tuple(languages)) not in self._warned:  # once, however often the pool is asked for
            self._warned.add((task, tuple(languages)))
            log.warning("%s: %d of %d training items lack one of %s and are not used", task, partial,
                        len(by_source), languages)
        return len(ids), lambda i, lang: by_source[ids[i]][lang]

    def item_rows(self, task: str) -> Callable[[Example], list[Example]]:
        """A training example -> the rows of its item in the training data's other languages: the lineage check
        compares each with the evaluation set (a mixture of es rows whose English rows are evaluation questions
        holds copies of them). The training data is read at the first call, not here (then kept): a recheck that a
        mixture's recorded check answers (`mixtures.recheck_lineage`) never reads it."""
        def related(ex: Example) -> list[Example]:
            by_lang = self._train_by_source(task).get(ex.source_id, {})
            return [row for lang, row in by_lang.items() if lang != ex.language]

        return related

    def _load_eval(self, task: str, languages: list[str]) -> list[Example]:
        src = self._files(task).eval
        examples = check_task_examples(load_examples(src, languages), task, src.path, "eval")
        if src.format == "examples" and task == "math":  # the other math formats' loaders check this themselves
            check_repeated_questions([(src.path, None, ex.id, ex.language, ex.last_user_turn() or "",
                                       ex.reference.get("answer")) for ex in examples], "the scores")
        kept = [ex for ex in examples if ex.language in languages]
        if len(kept) < len(examples):
            left = Counter(ex.language for ex in examples if ex.language not in languages)
            log.warning("%s: %d evaluation examples are in languages outside the study and are not used (%s)",
                        task, len(examples) - len(kept), ", ".join(f"{k}: {v}" for k, v in sorted(left.items())))
        missing = sorted(set(languages) - {ex.language for ex in kept})
        if missing:
            log.warning("%s: no evaluation data for %s; those languages get no %s results", task, missing, task)
        return kept


def open_source(cfg: DataConfig):
    return SynthSource(cfg) if cfg.source == "synth" else FileDataSource(cfg)

